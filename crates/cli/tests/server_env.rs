//! What an MCP server started by agentry sees of agentry's environment. Regression test for
//! "secrets go to every MCP server": a stdio server inherited agentry's whole environment,
//! so `OPENAI_API_KEY=… agentry mcp call get-env -- mcp-server-everything` printed the key.
//! Needs server-everything (scripts/mcp-servers); skipped without it unless
//! AGENTRY_REQUIRE_MCP is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

mod common;

use common::mcp_bin;

/// A value no server may see unless it is given.
const SECRET: &str = "sk-agentry-test-9f3e1c";

fn agentry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .env("OPENAI_API_KEY", SECRET)
        .env("AGENTRY_TEST_SECRET", SECRET)
        .env("AGENTRY_OAUTH_CLIENT_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_server_sees_none_of_agentrys_environment_but_what_it_is_given() {
    let Some(everything) = mcp_bin("mcp-server-everything") else {
        return;
    };
    // By default: the inherited few (PATH, HOME…), no secrets.
    let out = agentry(&["mcp", "call", "get-env", "--", &everything]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PATH"), "{stdout}");
    for leak in [
        SECRET,
        "OPENAI_API_KEY",
        "AGENTRY_TEST_SECRET",
        "AGENTRY_OAUTH",
    ] {
        assert!(
            !stdout.contains(leak),
            "{leak} reached the server: {stdout}"
        );
    }

    // Given by value, or passed on by name: the server sees those, and only those.
    let out = agentry(&[
        "mcp",
        "call",
        "get-env",
        "--env",
        "GIVEN_HERE=to the server",
        "--env",
        "AGENTRY_TEST_SECRET",
        "--",
        &everything,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("GIVEN_HERE"), "{stdout}");
    assert!(stdout.contains("to the server"), "{stdout}");
    assert!(stdout.contains("AGENTRY_TEST_SECRET"), "{stdout}");
    assert!(!stdout.contains("OPENAI_API_KEY"), "{stdout}");

    // A name agentry does not have is an error, not an empty variable.
    let out = agentry(&[
        "mcp",
        "call",
        "get-env",
        "--env",
        "AGENTRY_SURELY_UNSET_VARIABLE",
        "--",
        &everything,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not set in agentry's environment"));
}

#[test]
fn through_run_a_server_gets_what_mcp_env_and_the_config_give_it() {
    let Some(everything) = mcp_bin("mcp-server-everything") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("agentry-server-env-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("env.yaml");
    std::fs::write(
        &script,
        "name: env\nformat: openai\nturns:\n  - when: { last: user }\n    calls:\n      - name: get-env\n        arguments: {}\n  - when: { last: tool }\n    text: \"{{tool}}\"\n",
    )
    .unwrap();
    let config = dir.join("agentry.toml");
    std::fs::write(
        &config,
        format!("[mcp.ev]\ncommand = [{everything:?}]\nenv = {{ FROM_CONFIG = \"yes\" }}\n"),
    )
    .unwrap();
    let model = format!("sim:{}", script.display());
    let db = dir.join("t.db");
    let out = agentry(&[
        "run",
        "show the environment",
        "--mode",
        "sequential",
        "--model",
        &model,
        "--config",
        config.to_str().unwrap(),
        "--mcp-env",
        "ev=FROM_FLAG=also",
        "--no-demo-tools",
        "--trace-db",
        db.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FROM_CONFIG") && stdout.contains("FROM_FLAG"),
        "{stdout}"
    );
    assert!(!stdout.contains(SECRET), "{stdout}");
    // Nor does the key reach the trace store through the server's answer.
    let store = std::fs::read(&db).unwrap();
    let wal = std::fs::read(dir.join("t.db-wal")).unwrap_or_default();
    for bytes in [&store, &wal] {
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the key is in the trace store"
        );
    }
    // A server the flag does not name is an error.
    let out = agentry(&[
        "run",
        "x",
        "--model",
        &model,
        "--config",
        config.to_str().unwrap(),
        "--mcp-env",
        "nope=A=b",
        "--no-trace",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no MCP server `nope`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
