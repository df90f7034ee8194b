//! The MCP client against real servers from npm (installed by scripts/mcp-servers):
//! `@modelcontextprotocol/server-everything` and `server-filesystem`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agentry_core::ErrorKind;
use agentry_mcp::{McpServer, ServerSpec};
use agentry_tools::{CallContext, DynTool};
use serde_json::json;

/// The npm bin directory, or `None` (test skipped) unless AGENTRY_REQUIRE_MCP is set.
fn bin(name: &str) -> Option<String> {
    let path = agentry_mcp::npm_bin(name);
    if path.exists() {
        return Some(path.to_string_lossy().into_owned());
    }
    assert!(
        std::env::var_os("AGENTRY_REQUIRE_MCP").is_none(),
        "{} is missing: run scripts/mcp-servers",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (scripts/mcp-servers installs it)",
        path.display()
    );
    None
}

fn tool<'a>(tools: &'a [agentry_mcp::McpTool], name: &str) -> &'a agentry_mcp::McpTool {
    tools
        .iter()
        .find(|t| t.spec().name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

async fn call(
    t: &agentry_mcp::McpTool,
    args: serde_json::Value,
) -> Result<serde_json::Value, agentry_core::ToolError> {
    t.call_json(args, CallContext::detached("c1")).await
}

#[tokio::test]
async fn everything_server_tools_are_agentry_tools() {
    let Some(everything) = bin("mcp-server-everything") else {
        return;
    };
    let server = McpServer::connect(ServerSpec {
        alias: "ev".into(),
        command: vec![everything],
        env: Default::default(),
    })
    .await
    .unwrap();
    assert!(!server.protocol().is_empty());
    let tools = server.tools(&|n| n == "echo").await;
    // A clashing name gets the alias; the schema comes from the server.
    let echo = tool(&tools, "ev__echo");
    assert_eq!(echo.server(), Some("ev"));
    assert_eq!(
        echo.spec().parameters["properties"]["message"]["type"],
        "string"
    );
    assert_eq!(
        call(echo, json!({"message": "hi"})).await.unwrap(),
        json!("Echo: hi")
    );
    assert_eq!(
        call(tool(&tools, "get-sum"), json!({"a": 2, "b": 40}))
            .await
            .unwrap(),
        json!("The sum of 2 and 40 is 42.")
    );
    // Structured output is kept beside the content blocks, and the output schema offered.
    let structured = tool(&tools, "get-structured-content");
    assert!(structured.spec().output_schema.is_some());
    let v = call(structured, json!({"location": "New York"}))
        .await
        .unwrap();
    assert!(v["structuredContent"]["temperature"].is_number(), "{v}");
    assert_eq!(v["content"][0]["type"], "text");
    // The server's own errors come back as tool errors.
    let e = call(tool(&tools, "get-sum"), json!({"a": "two"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ToolFailed, "{e:?}");
    server.close().await;
}

#[tokio::test]
async fn merged_tools_keep_the_first_name_and_alias_a_clash() {
    let Some(everything) = bin("mcp-server-everything") else {
        return;
    };
    let spec = |alias: &str| ServerSpec {
        alias: alias.into(),
        command: vec![everything.clone()],
        env: Default::default(),
    };
    let a = McpServer::connect(spec("a")).await.unwrap();
    let b = McpServer::connect(spec("b")).await.unwrap();
    let base = agentry_tools::demo_tools(Duration::ZERO);
    let servers: Vec<std::sync::Arc<dyn agentry_tools::ToolSource>> = vec![
        std::sync::Arc::clone(&a) as std::sync::Arc<dyn agentry_tools::ToolSource>,
        std::sync::Arc::clone(&b) as std::sync::Arc<dyn agentry_tools::ToolSource>,
    ];
    let toolbox = agentry_tools::Toolbox::new(base, servers);
    let tools = toolbox.current().await.unwrap();
    let names = tools.names();
    for name in ["get_weather", "echo", "b__echo"] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} is not in {names:?}"
        );
    }
    assert_eq!(tools.get("echo").and_then(|t| t.server()), Some("a"));
    assert_eq!(tools.get("b__echo").and_then(|t| t.server()), Some("b"));
    // Nothing changed: no new set; listed again, the same one.
    assert!(toolbox.changes().await.is_none());
    assert_eq!(toolbox.current().await.unwrap().names(), names);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_server_that_dies_is_restarted_and_calls_go_on() {
    let Some(everything) = bin("mcp-server-everything") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("agentry-mcp-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let script = format!("echo $$ > {}; exec {everything}", pidfile.display());
    let server = McpServer::connect(ServerSpec {
        alias: "ev".into(),
        command: vec!["sh".into(), "-c".into(), script],
        env: Default::default(),
    })
    .await
    .unwrap();
    let tools = server.tools(&|_| false).await;
    let echo = tool(&tools, "echo");
    assert_eq!(
        call(echo, json!({"message": "1"})).await.unwrap(),
        json!("Echo: 1")
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The call after the crash fails as unavailable (not a hang, not a panic)…
    let e = call(echo, json!({"message": "2"})).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
    // …and a later one reaches a restarted server.
    let mut answer = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(v) = call(echo, json!({"message": "3"})).await {
            answer = Some(v);
            break;
        }
    }
    assert_eq!(answer, Some(json!("Echo: 3")));
    let new_pid = std::fs::read_to_string(&pidfile).unwrap();
    assert_ne!(pid, new_pid, "the server was not restarted");
    server.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_server_that_cannot_start_says_so() {
    let e = McpServer::connect(ServerSpec {
        alias: "x".into(),
        command: vec!["/nonexistent/mcp-server".into()],
        env: Default::default(),
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("the MCP server `x` (/nonexistent/mcp-server) could not be started"),
        "{e}"
    );
    // A program that is not an MCP server (it exits at once) fails the handshake.
    let e = McpServer::connect(ServerSpec {
        alias: "t".into(),
        command: vec!["true".into()],
        env: Default::default(),
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("could not be started"), "{e}");
}

fn bad_server(mode: &str) -> Option<ServerSpec> {
    // Needs node, which scripts/mcp-servers installs with the servers.
    bin("mcp-server-everything")?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp/bad-server.mjs");
    Some(ServerSpec {
        alias: format!("bad-{mode}"),
        command: vec![
            "node".into(),
            script.to_string_lossy().into_owned(),
            mode.into(),
        ],
        env: Default::default(),
    })
}

#[tokio::test]
async fn a_hung_crashed_or_garbling_server_fails_the_call_and_nothing_blocks() {
    for mode in ["hang", "garbage", "crash"] {
        let Some(spec) = bad_server(mode) else { return };
        let server = McpServer::connect(spec).await.unwrap();
        let tools = server.tools(&|_| false).await;
        let work = tool(&tools, "work");
        // The engine bounds every call with a deadline; here the call's own token does.
        let cx = CallContext::detached("c1");
        let cancel = cx.cancel.clone();
        let started = std::time::Instant::now();
        let call = work.call_json(json!({"n": 1}), cx);
        let outcome = tokio::select! {
            r = call => r,
            () = async { tokio::time::sleep(Duration::from_millis(1500)).await; cancel.cancel(); std::future::pending().await } => unreachable!(),
        };
        let e = outcome.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{mode}: {e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{mode} took {:?}",
            started.elapsed()
        );
        server.close().await;
    }
}
