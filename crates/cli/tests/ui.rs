//! `agentry ui` in a real browser: headless Chromium driven by playwright-core
//! (tests/ui/e2e.mjs; both installed by scripts/browser). The store holds 100,000 runs, a
//! compiled run with parallel calls, a run of 10,000 calls, a run whose task, arguments
//! and result carry markup, and one with a 10 MB result; screenshots of every page go to
//! target/ui-e2e/. Also: `trace show --svg/--png`, and what the server says about a bad
//! store or a missing token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

mod common;

use agentry_core::{ModelPurpose, RunStatus, ToolCall, ToolResult, TraceEvent, TraceKind};
use agentry_trace::TraceWriter;
use serde_json::{Value, json};

fn agentry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Records one run of `calls` calls (in waves of 100 at once) whose task is `task` and
/// whose every result is `result`.
fn record(w: &TraceWriter, id: &str, task: &str, args: Value, result: &str, calls: usize) {
    let mut seq = 0;
    let mut at = 0;
    let mut emit = |at_us: u64, kind: TraceKind| {
        w.record(&TraceEvent {
            run_id: id.into(),
            seq,
            at_us,
            kind,
        });
        seq += 1;
    };
    emit(
        0,
        TraceKind::RunStarted {
            task: task.into(),
            model: "sim:test".into(),
            mode: "sequential".into(),
            tools: vec!["lookup".into()],
            stop_tools: vec![],
            system: None,
            parent: None,
        },
    );
    emit(
        10,
        TraceKind::ModelRequest {
            step: "m1".into(),
            purpose: ModelPurpose::Turn,
            messages: 1,
        },
    );
    let all: Vec<ToolCall> = (0..calls)
        .map(|i| ToolCall::new(format!("c{i}"), "lookup", args.clone()))
        .collect();
    emit(
        1_000,
        TraceKind::ModelResponse {
            step: "m1".into(),
            text: String::new(),
            calls: all.clone(),
            malformed: vec![],
            prompt_tokens: 100,
            completion_tokens: 20,
            ttft_us: Some(300),
        },
    );
    for wave in all.chunks(100) {
        at += 1_000;
        for c in wave {
            emit(
                at,
                TraceKind::CallStarted {
                    call: c.clone(),
                    task: None,
                    after: vec!["m1".into()],
                },
            );
        }
        at += 2_000;
        for c in wave {
            emit(
                at,
                TraceKind::CallFinished {
                    result: ToolResult::ok(c, Value::String(result.into())),
                    task: None,
                    attempts: 1,
                    duration_us: 2_000,
                },
            );
        }
    }
    emit(
        at + 500,
        TraceKind::RunFinished {
            status: RunStatus::Answered,
            answer: Some(format!("done: {}", &result[..result.len().min(40)])),
            reason: None,
            calls: calls as u64,
            prompt_tokens: 100,
            completion_tokens: 20,
        },
    );
}

fn scenario(dir: &Path) -> Value {
    let db = dir.join("traces.db");
    let w = TraceWriter::open(&db).unwrap();
    for i in 0..100_000 {
        w.record(&TraceEvent {
            run_id: format!("r0000bulk{i:06}"),
            seq: 0,
            at_us: 0,
            kind: TraceKind::RunStarted {
                task: format!("bulk task {i}"),
                model: "sim:bulk".into(),
                mode: if i % 2 == 0 { "sequential" } else { "compiled" }.into(),
                tools: vec![],
                stop_tools: vec![],
                system: None,
                parent: None,
            },
        });
        w.record(&TraceEvent {
            run_id: format!("r0000bulk{i:06}"),
            seq: 1,
            at_us: 1_000 + i,
            kind: TraceKind::RunFinished {
                status: RunStatus::Answered,
                answer: Some("ok".into()),
                reason: None,
                calls: 0,
                prompt_tokens: 1,
                completion_tokens: 1,
            },
        });
    }
    record(
        &w,
        "r0000big",
        "ten thousand lookups",
        json!({"q": "x"}),
        "ok",
        10_000,
    );
    record(
        &w,
        "r0000hostile",
        "hostile <img src=x onerror=\"window.__pwned=1\">",
        json!({"html": "<b onmouseover=\"window.__pwned=1\">hover</b>"}),
        "<script>window.__pwned=1</script>",
        1,
    );
    record(
        &w,
        "r0000huge",
        "a huge result",
        json!({}),
        &"x".repeat(10_000_001),
        1,
    );
    w.close().unwrap();
    // A compiled run by the engine itself: parallel calls, a plan with references.
    let out = agentry(&[
        "run",
        "What is the weather in Paris and Oslo, and how much warmer is Oslo?",
        "--mode",
        "compiled",
        "--model",
        "sim:plan",
        "--quiet",
        "--json",
        "--trace-db",
        db.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compiled: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Eval reports: one BFCL (with its verdicts beside it), one τ-bench.
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(
        reports.join("bfcl.report.json"),
        json!({"model": "sim:bfcl", "mode": "prompt", "trials": 1, "accuracy": 0.5, "entries": 2,
               "categories": [{"category": "simple", "accuracy": 0.5, "entries": 2, "passed": 1,
               "decoded_rate": 1.0, "schema_valid_rate": 1.0, "latency_p50_ms": 10.0, "tokens": 40}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        reports.join("bfcl.verdicts.jsonl"),
        "{\"id\":\"simple_0\",\"trial\":0,\"valid\":true,\"error_type\":null,\"reason\":null}\n{\"id\":\"simple_1\",\"trial\":0,\"valid\":false,\"error_type\":\"value_error\",\"reason\":\"wrong unit: celsius\"}\n",
    )
    .unwrap();
    std::fs::write(
        reports.join("retail-dev-noop.json"),
        json!({"domain": "retail", "split": "dev", "agent": "noop", "user": "scripted", "trials": 3,
               "tasks": 2, "average_reward": 0.5, "pass_hat_k": [0.5, 0.4, 0.3], "ended": {"answered": 6},
               "agent_tokens": 0, "user_tokens": 0, "episodes": []})
        .to_string(),
    )
    .unwrap();
    json!({"compiled": compiled["run_id"], "hostile": "r0000hostile", "huge": "r0000huge",
           "big": "r0000big", "runs": 100_004, "agentry": env!("CARGO_BIN_EXE_agentry"),
           "db": db.to_str().unwrap()})
}

/// Starts `agentry ui ARGS…` and returns it with the address it printed.
fn ui(args: &[&str]) -> (std::process::Child, String) {
    common::serving(&[&["ui"], args].concat())
}

/// The browser's pieces, or `None` (skip) unless AGENTRY_REQUIRE_BROWSER.
fn browser() -> Option<PathBuf> {
    let pw = agentry_mcp::npm_bin("node")
        .parent()
        .map(|bin| bin.join("../playwright-core"))
        .filter(|p| p.exists());
    let chromium = Path::new("/usr/bin/chromium").exists();
    if let (Some(pw), true) = (pw, chromium) {
        return Some(pw);
    }
    assert!(
        std::env::var_os("AGENTRY_REQUIRE_BROWSER").is_none(),
        "chromium or playwright-core is missing: run scripts/browser"
    );
    None
}

fn get(url: &str) -> (u16, String) {
    // A tiny HTTP/1.1 GET over loopback, without a client library.
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_viewer_works_in_a_real_browser() {
    let Some(_) = browser() else { return };
    let dir = std::env::temp_dir().join(format!("agentry-ui-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = scenario(&dir);
    let db = dir.join("traces.db");
    let (mut server, url) = ui(&[
        "--port",
        "0",
        "--trace-db",
        db.to_str().unwrap(),
        "--reports",
        dir.join("reports").to_str().unwrap(),
    ]);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-e2e");
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ui/e2e.mjs");
    let out = Command::new(agentry_mcp::npm_bin("node"))
        .arg(script)
        .arg(&url)
        .arg(&shots)
        .arg(scenario.to_string())
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    eprintln!("viewer in Chromium: {stdout}");
    for shot in [
        "runs",
        "run-compiled",
        "run-hostile",
        "run-10000-calls",
        "evals",
        "eval-bfcl",
        "eval-taubench",
    ] {
        assert!(
            shots.join(format!("{shot}.png")).exists(),
            "no screenshot {shot}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_store_or_a_missing_token_gets_a_clear_answer() {
    let dir = std::env::temp_dir().join(format!("agentry-ui-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // No database yet: the API says so (and the page shows the message).
    let missing = dir.join("none.db");
    let (mut server, url) = ui(&["--port", "0", "--trace-db", missing.to_str().unwrap()]);
    let (status, body) = get(&format!("{url}api/runs"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no trace database"), "{body}");
    let (status, page) = get(&url);
    assert_eq!(status, 200);
    assert!(page.contains("app.js"));
    let _ = server.kill();
    // Not a database at all, and one from another schema version.
    let junk = dir.join("junk.db");
    std::fs::write(&junk, "this is not SQLite").unwrap();
    let (mut server, url) = ui(&["--port", "0", "--trace-db", junk.to_str().unwrap()]);
    let (status, body) = get(&format!("{url}api/runs"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("junk.db"), "{body}");
    let _ = server.kill();
    // A store from another version of agentry: its schema version is named.
    let old = dir.join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let (mut server, url) = ui(&["--port", "0", "--trace-db", old.to_str().unwrap()]);
    let (status, body) = get(&format!("{url}api/runs"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("schema version 99"), "{body}");
    let _ = server.kill();
    // Beyond loopback without a token: refused before listening.
    let out = agentry(&["ui", "--host", "0.0.0.0", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --token"));
    // With a token: nothing without it, everything with it.
    let db = dir.join("t.db");
    TraceWriter::open(&db).unwrap().close().unwrap();
    let (mut server, url) = ui(&[
        "--port",
        "0",
        "--trace-db",
        db.to_str().unwrap(),
        "--token",
        "s3cret",
    ]);
    assert!(url.ends_with("?token=s3cret"), "{url}");
    let bare = url.trim_end_matches("?token=s3cret");
    assert_eq!(get(&format!("{bare}api/runs")).0, 401);
    assert_eq!(get(&format!("{bare}api/runs?token=wrong")).0, 401);
    let (status, body) = get(&format!("{bare}api/runs?token=s3cret"));
    assert_eq!(status, 200, "{body}");
    let _ = server.kill();
    let _ = server.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trace_show_draws_the_timeline_as_svg_and_png() {
    let dir = std::env::temp_dir().join(format!("agentry-ui-picture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("t.db");
    let w = TraceWriter::open(&db).unwrap();
    record(
        &w,
        "r0000pic",
        "a <task> & more",
        json!({"q": 1}),
        "fine",
        3,
    );
    w.close().unwrap();
    let svg = dir.join("t.svg");
    let png = dir.join("t.png");
    let out = agentry(&[
        "trace",
        "show",
        "r0000pic",
        "--trace-db",
        db.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{text}");
    // Four bars (the model turn and three calls), the task escaped.
    assert_eq!(text.matches("<title>").count(), 4, "{text}");
    assert!(text.contains("a &lt;task&gt; &amp; more"));
    // Each bar says how long it took (the calls took 2 ms each).
    assert_eq!(
        text.matches("fill=\"#555\">2.0 ms</text>").count(),
        3,
        "{text}"
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    assert!(bytes.len() > 2_000, "a real picture, not an empty one");
    std::fs::remove_dir_all(&dir).unwrap();
}
