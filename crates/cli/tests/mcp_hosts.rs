//! `agentry mcp serve --http` answers only requests whose Host it is reached by (against DNS
//! rebinding): loopback names, and each `--allowed-host`. Before the flag, a server on
//! 0.0.0.0 could not be reached by any other name at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
};

mod common;

/// The status code of an MCP `initialize` POSTed to `url` with `host` as the Host header.
fn status(url: &str, host: &str) -> u16 {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[test]
fn mcp_serve_answers_loopback_and_the_allowed_hosts_only() {
    let (mut child, url) = common::serving(&[
        "mcp",
        "serve",
        "--no-agent",
        "--http",
        "0",
        "--allowed-host",
        "box.lan",
    ]);
    let port = url.rsplit(':').next().unwrap().trim_end_matches("/mcp");
    let loopback = status(&url, &format!("127.0.0.1:{port}"));
    let named = status(&url, &format!("box.lan:{port}"));
    let other = status(&url, &format!("evil.example:{port}"));
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(loopback, 200);
    assert_eq!(named, 200);
    assert_eq!(other, 403);
}
