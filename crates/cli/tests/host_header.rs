//! Every HTTP server agentry starts answers only the names it is reached by. Regression test
//! for "the viewer accepts any Host header": `curl -H 'Host: evil.example'
//! http://127.0.0.1:PORT/api/runs` got 200, which lets a page that re-points its own name at
//! 127.0.0.1 (DNS rebinding) read every trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use agentry_trace::TraceWriter;
use common::serving;

/// Sends `GET path` to `addr` (`127.0.0.1:PORT`) with `Host: host`; the status code.
fn status_for(addr: &str, path: &str, host: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// `127.0.0.1:PORT` out of `http://127.0.0.1:PORT/…`.
fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn the_viewer_answers_its_own_names_only() {
    let dir = std::env::temp_dir().join(format!("agentry-host-ui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("t.db");
    TraceWriter::open(&db).unwrap().close().unwrap();
    let (mut server, url) = serving(&[
        "ui",
        "--port",
        "0",
        "--trace-db",
        db.to_str().unwrap(),
        "--allowed-host",
        "viewer.test",
    ]);
    let addr = authority(&url);
    let port = addr.rsplit(':').next().unwrap();
    for host in [
        addr.clone(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("viewer.test:{port}"),
    ] {
        assert_eq!(status_for(&addr, "/api/runs", &host), 200, "{host}");
    }
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("192.168.1.20:{port}"),
    ] {
        assert_eq!(status_for(&addr, "/api/runs", &host), 403, "{host}");
        assert_eq!(status_for(&addr, "/", &host), 403, "{host}");
    }
    let _ = server.kill();
    let _ = server.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_sim_server_answers_its_own_names_only() {
    let (mut server, url) = serving(&["sim-server", "--script", "weather", "--port", "0"]);
    let addr = authority(&url);
    let port = addr.rsplit(':').next().unwrap();
    assert_eq!(status_for(&addr, "/health", &addr), 200);
    assert_eq!(
        status_for(&addr, "/v1/models", &format!("localhost:{port}")),
        200
    );
    for host in ["evil.example".to_owned(), format!("evil.example:{port}")] {
        assert_eq!(status_for(&addr, "/health", &host), 403, "{host}");
        assert_eq!(status_for(&addr, "/v1/models", &host), 403, "{host}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn an_allowed_host_must_read_as_one() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["ui", "--port", "0", "--allowed-host", "a/b"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
