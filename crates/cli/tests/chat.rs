//! `agentry chat` driven through its standard input, as a script or a pipe would drive it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    process::{Command, Stdio},
};

mod common;

/// Runs `agentry chat ARGS…` in `dir` with `input` on its stdin; returns whether it
/// succeeded, its stdout and its stderr.
fn chat(dir: &std::path::Path, args: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .arg("chat")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_chat_session_goes_on_across_turns_and_its_commands_work() {
    let dir = std::env::temp_dir().join(format!("agentry-chat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, stdout, stderr) = chat(
        &dir,
        &["--model", "sim:weather", "--tool-latency-ms", "0"],
        b"What is the weather in Oslo?\n/tools\nAnd in Lima?\n/trace\n/save saved.json\n/reset\n/nope\n/exit\n",
    );
    assert!(ok, "{stdout}\n{stderr}");
    // Two answers, the second in the same conversation as the first.
    assert!(stdout.contains("\"city\":\"Oslo\""), "{stdout}");
    assert!(stdout.contains("\"city\":\"Lima\""), "{stdout}");
    assert!(
        stderr.contains("→ get_weather {\"city\":\"Lima\"}"),
        "{stderr}"
    );
    // The commands.
    assert!(stdout.contains("calculator  "), "{stdout}");
    assert!(stdout.contains("critical path"), "{stdout}");
    assert!(stdout.contains("(a new conversation)"), "{stdout}");
    assert!(stdout.contains("unknown command /nope"), "{stdout}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("saved.json")).unwrap()).unwrap();
    let users = saved["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .count();
    assert_eq!(users, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_chat_session_calls_an_mcp_servers_tools() {
    let Some(everything) = common::mcp_bin("mcp-server-everything") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("agentry-chat-mcp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A model that calls the server's `echo`, then says what came back.
    let script = r#"{"turns": [
        {"when": {"last": "user"}, "calls": [{"name": "echo", "arguments": {"message": "hi from chat"}}]},
        {"when": {"last": "tool"}, "text": "The server said: {{tool}}"}]}"#;
    std::fs::write(dir.join("echo.json"), script).unwrap();
    let mcp = format!("ev={everything}");
    let (ok, stdout, stderr) = chat(
        &dir,
        &[
            "--model",
            "sim:echo.json",
            "--no-demo-tools",
            "--no-trace",
            "--mcp",
            &mcp,
        ],
        b"/tools\nSay hi through the server.\n/exit\n",
    );
    assert!(ok, "{stdout}\n{stderr}");
    // The server's tools, and only those, are on offer.
    assert!(stdout.contains("echo  Echoes"), "{stdout}");
    assert!(!stdout.contains("calculator  "), "{stdout}");
    // The call went to the server and its result back to the model.
    assert!(
        stderr.contains("→ echo {\"message\":\"hi from chat\"}"),
        "{stderr}"
    );
    assert!(stdout.contains("Echo: hi from chat"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
