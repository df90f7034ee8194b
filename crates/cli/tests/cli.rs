//! The `agentry` binary as a user runs it: stdin in, stdout and exit code out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

mod common;

use common::{mcp_bin, notes_dir, serving};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn agentry(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn parse_prints_calls_as_a_json_array() {
    let out = agentry(
        &["parse"],
        br#"Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>"#,
    );
    assert!(out.status.success());
    assert_eq!(
        stdout_json(&out),
        json!([{"name": "get_weather", "arguments": {"city": "Paris"}}])
    );

    let out = agentry(
        &["parse", "--format", "python"],
        b"[get_weather(city='Paris', days=3), math.factorial(n=5)]",
    );
    assert_eq!(
        stdout_json(&out),
        json!([{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}, {"name": "math.factorial", "arguments": {"n": 5}}])
    );
}

#[test]
fn parse_reports_repairs_and_errors_on_stderr() {
    let out = agentry(
        &["parse"],
        b"<tool_call>{'name': 'f', 'arguments': {'x': 1,}}</tool_call>",
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("removed a trailing comma") && stderr.contains("single-quoted"),
        "{stderr}"
    );

    let out = agentry(
        &["parse"],
        b"<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": }}</tool_call>",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out), json!([]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("malformed hermes call"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = agentry(&["parse"], b"No tools needed.");
    assert!(out.status.success());
    assert_eq!(stdout_json(&out), json!([]));
}

#[test]
fn parse_refuses_invalid_utf8_clearly() {
    let out = agentry(&["parse"], b"abc\xff");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not valid UTF-8 at byte 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn parse_events_show_spans_and_text() {
    let out = agentry(
        &["parse", "--events"],
        b"Hi {\"name\": \"f\", \"arguments\": {}}",
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0], json!({"type": "text", "text": "Hi "}));
    assert_eq!(lines[1]["type"], "call");
    assert_eq!(lines[1]["span"], json!({"start": 3, "end": 33}));
}

#[test]
fn validate_prints_a_verdict_per_call() {
    let dir = std::env::temp_dir().join(format!("agentry-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tools = dir.join("tools.json");
    std::fs::write(
        &tools,
        json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather.",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}},
            {"name": "book", "description": "Book.", "parameters": {"type": "object", "properties": {"date": {"type": "string", "format": "date"}}}}
        ])
        .to_string(),
    )
    .unwrap();
    let tools = tools.to_str().unwrap();

    let calls = json!([{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "book", "arguments": {"date": "tomorrow"}}]);
    let out = agentry(
        &["validate", "--tools", tools],
        calls.to_string().as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok get_weather\ninvalid book: `$.date`: 'tomorrow' is not a date (YYYY-MM-DD)\n"
    );

    let out = agentry(
        &["validate", "--tools", tools],
        br#"[{"name": "nope", "arguments": {}}]"#,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("no tool named `nope`; available tools: get_weather, book")
    );

    let out = agentry(
        &["validate", "--tools", tools, "--coerce", "--json"],
        br#"[{"name": "get_weather", "arguments": {"city": "Oslo", "days": "3"}}]"#,
    );
    assert!(out.status.success());
    assert_eq!(
        stdout_json(&out),
        json!({"name": "get_weather", "ok": true, "arguments": {"city": "Oslo", "days": 3}, "coerced": ["`$.days`: coerced \"3\" to 3"]})
    );

    // `agentry parse` output chains into `agentry validate`.
    let parsed = agentry(
        &["parse"],
        br#"[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}]"#,
    );
    let out = agentry(&["validate", "--tools", tools], &parsed.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = agentry(&["validate", "--tools", "/nonexistent/tools.json"], b"[]");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/tools.json"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Kills the child when the test ends, pass or fail.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sim_server_serves_the_weather_script_to_the_openai_client() {
    use std::io::BufRead;
    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args(["sim-server", "--script", "weather", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
        "{url}"
    );

    let tools =
        std::env::temp_dir().join(format!("agentry-weather-tools-{}.json", std::process::id()));
    std::fs::write(&tools, include_str!("../../../examples/tools/weather.json")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args([
            "ask",
            "What is the weather in Lima?",
            "--model",
            "openai:sim",
            "--tools",
            tools.to_str().unwrap(),
        ])
        .env("OPENAI_BASE_URL", url)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    std::fs::remove_file(&tools).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("→ call get_weather {\"city\":\"Lima\"}"),
        "{stdout}"
    );
    assert!(stderr.contains("openai:sim: ToolCalls"), "{stderr}");
}

#[test]
fn ask_names_unknown_models_and_scripts() {
    let out = agentry(&["ask", "hi", "--model", "sim:nope"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bundled scripts: weather, hermes, plan, trip")
    );
    let out = agentry(
        &["sim-server", "--script", "/nonexistent.yaml", "--port", "0"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent.yaml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_records_a_trace_that_shows_exports_and_replays() {
    let dir = std::env::temp_dir().join(format!("agentry-run-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("traces.db");
    let db = db.to_str().unwrap();
    for mode in ["sequential", "compiled"] {
        let out = agentry(
            &[
                "run",
                "How much warmer is Oslo than Paris?",
                "--mode",
                mode,
                "--model",
                if mode == "sequential" {
                    "sim:trip"
                } else {
                    "sim:plan"
                },
                "--trace-db",
                db,
                "--tool-latency-ms",
                "20",
            ],
            b"",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Oslo is 19 °C warmer than Paris right now.\n"
        );
        assert!(
            stderr.contains("get_weather")
                && stderr.contains("calculator")
                && stderr.contains("answered in"),
            "{stderr}"
        );

        let out = agentry(&["trace", "show", "last", "--trace-db", db], b"");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && shown.contains(&format!("  {mode}  "))
                && shown.contains("critical path: m1"),
            "{shown}"
        );

        let out = agentry(&["trace", "export", "last", "--trace-db", db], b"");
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.first().unwrap()["kind"], "run_started");
        assert_eq!(lines.last().unwrap()["kind"], "run_finished");
        assert_eq!(
            lines
                .iter()
                .filter(|l| l["kind"] == "call_finished")
                .count(),
            3
        );

        let out = agentry(&["replay", "last", "--trace-db", db], b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("matches"));
    }
    let out = agentry(&["trace", "list", "--trace-db", db, "--json"], b"");
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(runs[0]["mode"], "compiled");

    let out = agentry(&["trace", "show", "nope", "--trace-db", db], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run matches `nope`"));
    let missing = dir.join("missing.db");
    let out = agentry(
        &["trace", "list", "--trace-db", missing.to_str().unwrap()],
        b"",
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no trace database at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_json_reports_the_outcome() {
    let out = agentry(
        &[
            "run",
            "How much warmer is Oslo than Paris?",
            "--mode",
            "sequential",
            "--model",
            "sim:trip",
            "--no-trace",
            "--json",
            "-q",
            "--tool-latency-ms",
            "5",
        ],
        b"",
    );
    assert!(out.status.success());
    let v = stdout_json(&out);
    assert_eq!(v["status"], "answered");
    assert_eq!(v["answer"], "Oslo is 19 °C warmer than Paris right now.");
    assert_eq!(v["calls"], 3);
    assert!(v["wall_ms"].as_f64().unwrap() > 0.0 && v["trace_db"].is_null());
}

#[test]
fn a_run_out_of_time_says_so() {
    let out = agentry(
        &[
            "run",
            "wait",
            "--model",
            "sim:trip",
            "--no-trace",
            "--timeout",
            "0.3",
            "--tool-latency-ms",
            "5000",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no answer: the run's wall-time budget of 0.3 s ran out"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bfcl_data() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/bfcl")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn eval_bfcl_oracle_check_run_and_explain() {
    let data = bfcl_data();
    let dir = std::env::temp_dir().join(format!("agentry-bfcl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let oracle = agentry(&["eval", "bfcl", "oracle", "--data", &data], b"");
    assert!(
        oracle.status.success(),
        "{}",
        String::from_utf8_lossy(&oracle.stderr)
    );
    let results = dir.join("oracle.jsonl");
    std::fs::write(&results, &oracle.stdout).unwrap();
    let verdicts = dir.join("verdicts.jsonl");
    let out = agentry(
        &[
            "eval",
            "bfcl",
            "check",
            "--data",
            &data,
            "--results",
            results.to_str().unwrap(),
            "--out",
            verdicts.to_str().unwrap(),
        ],
        b"",
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("simple_python                 400      400   100.00%"),
        "{table}"
    );
    assert!(
        table.contains("6 of these entries cannot be passed"),
        "{table}"
    );
    assert_eq!(
        std::fs::read_to_string(&verdicts).unwrap().lines().count(),
        3641
    );

    let run_results = dir.join("run.jsonl");
    let out = agentry(
        &[
            "eval",
            "bfcl",
            "run",
            "--data",
            &data,
            "--model",
            "oracle",
            "--category",
            "simple_python,live_*",
            "--limit",
            "20",
            "--results",
            run_results.to_str().unwrap(),
        ],
        b"",
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.contains("| simple_python | 100.00% | 20 |") && table.contains("| live_simple |"),
        "{table}"
    );
    assert!(dir.join("run.report.json").exists() && dir.join("run.report.md").exists());
    // A second run resumes: nothing is asked again.
    let out = agentry(
        &[
            "eval",
            "bfcl",
            "run",
            "--data",
            &data,
            "--model",
            "oracle",
            "--category",
            "simple_python",
            "--limit",
            "20",
            "--results",
            run_results.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("20 already in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = agentry(
        &[
            "eval",
            "bfcl",
            "run",
            "--data",
            &data,
            "--model",
            "oracle",
            "--results",
            run_results.to_str().unwrap(),
            "--explain",
            "simple_python_3",
        ],
        b"",
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("## Prompt")
            && shown.contains("## Decoded")
            && shown.contains("## Verdict\nvalid"),
        "{shown}"
    );

    let out = agentry(
        &[
            "eval",
            "bfcl",
            "run",
            "--data",
            &data,
            "--model",
            "oracle",
            "--category",
            "multi_turn_base",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("multi-turn and format sensitivity are not supported yet")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn taubench_data() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/taubench")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn eval_taubench_replay_matches_the_reference_and_emits_its_own() {
    let data = taubench_data();
    let out = agentry(&["eval", "taubench", "replay", "--data", &data], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("expected_dev.json: all 20 match"),
        "{stdout}"
    );
    assert!(
        stdout.contains("expected_train.json: all 500 match"),
        "{stdout}"
    );
    assert!(stdout.contains("635 tasks replayed"), "{stdout}");

    // --emit writes the expected file's structure; comparing with it again matches, and a
    // doctored copy is caught with its first difference.
    let dir = std::env::temp_dir().join(format!("agentry-tau-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mine = dir.join("mine.json");
    let out = agentry(
        &[
            "eval",
            "taubench",
            "replay",
            "--data",
            &data,
            "--split",
            "dev",
            "--emit",
            mine.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success());
    let mut emitted: Value = serde_json::from_slice(&std::fs::read(&mine).unwrap()).unwrap();
    assert_eq!(emitted["tasks"].as_array().unwrap().len(), 20);
    assert_eq!(emitted["tasks"][0]["task_index"], 0);
    emitted["tasks"][0]["changed_records"]["orders"]["#W5442520"]["status"] = json!("pending");
    let doctored = dir.join("doctored.json");
    std::fs::write(&doctored, emitted.to_string()).unwrap();
    let out = agentry(
        &[
            "eval",
            "taubench",
            "replay",
            "--data",
            &data,
            "--split",
            "dev",
            "--expected",
            doctored.to_str().unwrap(),
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 of 20 differ")
            && stdout.contains(
                r##"task 0: orders["#W5442520"].status: got "cancelled", expected "pending""##
            ),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_taubench_runs_episodes_into_reports_and_traces() {
    let data = taubench_data();
    let dir = std::env::temp_dir().join(format!("agentry-tau-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("traces.db");
    let report = dir.join("oracle");
    let out = agentry(
        &[
            "eval",
            "taubench",
            "--data",
            &data,
            "--split",
            "dev",
            "--model",
            "oracle",
            "--task-ids",
            "0-3,7",
            "--trials",
            "2",
            "--trace-db",
            db.to_str().unwrap(),
            "--out",
            report.to_str().unwrap(),
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("average reward  1.0000") && stdout.contains("pass^2          1.0000"),
        "{stdout}"
    );
    let json: Value =
        serde_json::from_slice(&std::fs::read(report.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["episodes"].as_array().unwrap().len(), 10);
    assert_eq!(json["pass_hat_k"], json!([1.0, 1.0]));
    let md = std::fs::read_to_string(report.with_extension("md")).unwrap();
    assert!(md.contains("| pass^2 | 1.0000 |"), "{md}");

    // Every episode is a run in the trace store: shown as a timeline and replayed exactly.
    let out = agentry(
        &[
            "trace",
            "list",
            "--trace-db",
            db.to_str().unwrap(),
            "--json",
        ],
        b"",
    );
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 10);
    let run = json["episodes"][0]["run_id"].as_str().unwrap();
    let out = agentry(
        &["trace", "show", run, "--trace-db", db.to_str().unwrap()],
        b"",
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && shown.contains("cancel_pending_order") && shown.contains("user"),
        "{shown}"
    );
    let out = agentry(&["replay", run, "--trace-db", db.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The floor: 1 of the 20 dev tasks is passed by doing nothing.
    let out = agentry(
        &[
            "eval",
            "taubench",
            "--data",
            &data,
            "--split",
            "dev",
            "--model",
            "noop",
            "--no-trace",
            "--out",
            dir.join("noop").to_str().unwrap(),
        ],
        b"",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("average reward  0.0500"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_taubench_refuses_bad_input_clearly() {
    let data = taubench_data();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--data", &data, "--model", "noop", "--domain", "airline"],
            "unknown domain `airline`; known: retail",
        ),
        (
            &["--data", &data, "--model", "noop", "--split", "tset"],
            "unknown split `tset`",
        ),
        (
            &[
                "--data",
                &data,
                "--model",
                "noop",
                "--split",
                "dev",
                "--task-ids",
                "19,20",
            ],
            "task id 20 is out of range: the dev split has tasks 0-19",
        ),
        (
            &["--data", &data, "--model", "noop", "--task-ids", "5-x"],
            "`5-x` is not a task id",
        ),
        (
            &["--data", "/nonexistent", "--model", "noop"],
            "holds no τ-bench `retail` domain",
        ),
        (&["--data", &data, "--model", "sim:nope"], "sim:nope"),
    ];
    for (args, want) in cases {
        let mut all = vec!["eval", "taubench", "--no-trace"];
        all.extend_from_slice(args);
        let out = agentry(&all, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{args:?}: {stderr}"
        );
    }
    let out = agentry(&["eval", "taubench", "--model", "noop"], b"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data"));
}

#[test]
fn run_with_a_policy_denies_rewrites_and_holds_calls_for_approval() {
    let dir = std::env::temp_dir().join(format!("agentry-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p.toml");
    std::fs::write(
        &policy,
        r#"
[[rule]]
name = "approve paris"
tool = "get_weather"
when = [{ path = "/city", equals = "Paris" }]
action = "ask"

[[rule]]
name = "no sums"
tool = "calculator"
action = "deny"
reason = "no arithmetic today"
"#,
    )
    .unwrap();
    let db = dir.join("t.db");
    let approvals = dir.join("approvals");
    let args = [
        "run",
        "How much warmer is Oslo than Paris?",
        "--mode",
        "sequential",
        "--model",
        "sim:trip",
        "--tool-latency-ms",
        "10",
        "--policy",
        policy.to_str().unwrap(),
        "--approve",
        "queue",
        "--approvals",
        approvals.to_str().unwrap(),
        "--trace-db",
        db.to_str().unwrap(),
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The Paris lookup waits in the queue until someone approves it.
    let id = (0..200)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::fs::read_dir(&approvals).ok()?.flatten().find_map(|e| {
                let p = e.path();
                (p.extension()? == "json")
                    .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
            })
        })
        .expect("a call waiting for approval");
    let listed = agentry(
        &["approve", "--approvals", approvals.to_str().unwrap()],
        b"",
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&format!("{id}  get_weather")));
    let out = agentry(
        &["approve", &id, "--approvals", approvals.to_str().unwrap()],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("policy deny by no sums: no arithmetic today"),
        "{stderr}"
    );
    assert!(
        stderr.contains("policy ask (approved) by approve paris"),
        "{stderr}"
    );
    // The decisions are in the trace.
    let out = agentry(
        &[
            "trace",
            "export",
            "last",
            "--trace-db",
            db.to_str().unwrap(),
        ],
        b"",
    );
    let decisions: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "policy_decision")
        .collect();
    assert_eq!(decisions.len(), 3, "{decisions:?}");
    assert!(
        decisions
            .iter()
            .any(|d| d["action"] == "deny" && d["rule"] == "no sums")
    );
    assert!(
        decisions
            .iter()
            .any(|d| d["action"] == "ask" && d["approved"] == true)
    );
    let out = agentry(
        &[
            "approve",
            "a0123456789abcdef",
            "--approvals",
            approvals.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no call `a0123456789abcdef` is waiting")
    );
    let out = agentry(
        &[
            "approve",
            "nope",
            "--approvals",
            approvals.to_str().unwrap(),
        ],
        b"",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope` is not an approval id"));

    // `--approve never` refuses what needs approval; a bad policy never runs.
    let out = agentry(
        &[
            "run",
            "How much warmer is Oslo than Paris?",
            "--mode",
            "sequential",
            "--model",
            "sim:trip",
            "--tool-latency-ms",
            "10",
            "--policy",
            policy.to_str().unwrap(),
            "--approve",
            "never",
            "--no-trace",
        ],
        b"",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no approver is configured"));
    std::fs::write(
        &policy,
        "[[rule]]\naction = \"allow\"\n\n[[rule]]\ntool = \"x\"\naction = \"nope\"\n",
    )
    .unwrap();
    let out = agentry(
        &[
            "run",
            "x",
            "--model",
            "sim:trip",
            "--policy",
            policy.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 4: rule 2: unknown action `nope`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = agentry(&["policy", "check", "../../examples/policy/demo.toml"], b"");
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 rule(s), default allow"));
    let out = agentry(
        &[
            "policy",
            "decide",
            "../../examples/policy/demo.toml",
            "--tool",
            "search",
            "--args",
            r#"{"query": "x", "k": 9}"#,
        ],
        b"",
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rewritten"], json!({"query": "x", "k": 3}));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_calls_mcp_filesystem_tools_and_the_policy_keeps_denied_writes_off_disk() {
    let Some(fs_server) = mcp_bin("mcp-server-filesystem") else {
        return;
    };
    let (dir, root) = notes_dir("mcp-fs");
    let script = dir.join("fs.yaml");
    std::fs::write(
        &script,
        format!(
            "name: fs\nformat: openai\nturns:\n  - when: {{ last: user }}\n    calls:\n      - name: read_text_file\n        arguments: {{ path: \"{0}/a.txt\" }}\n      - name: write_file\n        arguments: {{ path: \"{0}/b.txt\", content: \"written\" }}\n  - when: {{ last: tool }}\n    text: \"{{{{tool}}}}\"\n",
            root.display()
        ),
    )
    .unwrap();
    let policy = dir.join("p.toml");
    std::fs::write(&policy, "[[rule]]\nserver = \"fs\"\ntool = \"write_*\"\naction = \"deny\"\nreason = \"read-only today\"\n").unwrap();
    let mcp = format!("fs={fs_server} {}", root.display());
    // sim:PATH is how a script file is named.
    let model = format!("sim:{}", script.display());
    let out = agentry(
        &[
            "run",
            "read and write",
            "--mode",
            "sequential",
            "--model",
            model.as_str(),
            "--mcp",
            &mcp,
            "--no-demo-tools",
            "--no-trace",
            "--policy",
            policy.to_str().unwrap(),
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("MCP server fs (protocol"), "{stderr}");
    assert!(stdout.contains("secret notes"), "{stdout}");
    assert!(stdout.contains("read-only today"), "{stdout}");
    assert!(
        !root.join("b.txt").exists(),
        "a denied write reached the disk"
    );
    // Without the policy the same write happens: the denial above was the policy's doing.
    let out = agentry(
        &[
            "run",
            "read and write",
            "--mode",
            "sequential",
            "--model",
            model.as_str(),
            "--mcp",
            &mcp,
            "--no-demo-tools",
            "--no-trace",
        ],
        b"",
    );
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(root.join("b.txt")).unwrap(),
        "written"
    );
    // A bad --mcp is refused with an example.
    let out = agentry(&["run", "x", "--mcp", "no-equals-sign"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("write ALIAS=COMMAND"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_server_whose_tools_change_mid_run_has_its_new_tools_offered_at_the_next_turn() {
    // Needs node, which scripts/mcp-servers installs with the servers.
    if mcp_bin("mcp-server-everything").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("agentry-mcp-change-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("changing.yaml");
    std::fs::write(
        &script,
        "name: changing\nformat: openai\nturns:\n  - when: { last: user }\n    calls:\n      - name: unlock\n        arguments: {}\n  - when: { last: tool, turn: 2 }\n    calls:\n      - name: secret\n        arguments: {}\n  - when: { last: tool }\n    text: \"{{tool}}\"\n",
    )
    .unwrap();
    let server = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/mcp/changing-server.mjs");
    let mcp = format!("ch=node {}", server.display());
    let model = format!("sim:{}", script.display());
    let db = dir.join("t.db");
    let out = agentry(
        &[
            "run",
            "find the secret",
            "--mode",
            "sequential",
            "--model",
            &model,
            "--mcp",
            &mcp,
            "--no-demo-tools",
            "--trace-db",
            db.to_str().unwrap(),
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // `secret` did not exist when the run started; the model could call it only because
    // the server's list_changed was heard and the list read again before the next turn.
    // The server knows only `initialize`: agentry fell back to it from server/discover.
    assert!(
        stderr.contains("MCP server ch (protocol 2025-11-25): 1 tool(s): unlock"),
        "{stderr}"
    );
    assert!(stderr.contains("tools changed: unlock, secret"), "{stderr}");
    assert_eq!(stdout.trim(), "the secret is 42");
    // The change is in the trace.
    let out = agentry(
        &[
            "trace",
            "export",
            "last",
            "--trace-db",
            db.to_str().unwrap(),
        ],
        b"",
    );
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(events.contains("\"tools_changed\""), "{events}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_proxy_enforces_the_policy_between_a_real_client_and_server_and_audits_everything() {
    let Some(fs_server) = mcp_bin("mcp-server-filesystem") else {
        return;
    };
    let (dir, root) = notes_dir("proxy");
    let policy = dir.join("p.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nserver = \"fs\"\ntool = \"write_file\"\naction = \"deny\"\nreason = \"read-only today\"\n\n\
         [[rule]]\ntool = \"read_text_file\"\nwhen = [{ path = \"/path\", not_inside = \"ROOT\" }]\naction = \"deny\"\n"
            .replace("ROOT", root.to_str().unwrap()),
    )
    .unwrap();
    let audit = dir.join("audit.jsonl");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // agentry's own MCP client, talking to the server through `agentry proxy`.
        let spec = agentry_mcp::ServerSpec {
            alias: "fs".into(),
            command: vec![
                env!("CARGO_BIN_EXE_agentry").into(),
                "proxy".into(),
                "--policy".into(),
                policy.to_str().unwrap().into(),
                "--server-name".into(),
                "fs".into(),
                "--audit".into(),
                audit.to_str().unwrap().into(),
                "--".into(),
                fs_server,
                root.to_str().unwrap().into(),
            ],
            env: Default::default(),
        };
        let server = agentry_mcp::McpServer::connect(spec).await.unwrap();
        let tools = server.tools(&|_| false).await;
        let tool = |name: &str| {
            tools
                .iter()
                .find(|t| agentry_tools::DynTool::spec(*t).name == name)
                .unwrap()
        };
        let cx = || agentry_tools::CallContext::detached("c");
        use agentry_tools::DynTool;
        let read = tool("read_text_file")
            .call_json(json!({"path": root.join("a.txt")}), cx())
            .await
            .unwrap();
        assert_eq!(read["structuredContent"]["content"], json!("secret notes"));
        let write = tool("write_file")
            .call_json(json!({"path": root.join("b.txt"), "content": "x"}), cx())
            .await
            .unwrap_err();
        assert_eq!(write.for_model(), "denied by policy: read-only today");
        let outside = tool("read_text_file")
            .call_json(json!({"path": "/etc/hostname"}), cx())
            .await
            .unwrap_err();
        assert!(
            outside.for_model().starts_with("denied by policy"),
            "{outside:?}"
        );
        server.close().await;
    });
    assert!(
        !root.join("b.txt").exists(),
        "a denied write reached the disk"
    );
    // The audit trail holds the traffic both ways and the decisions.
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |d: &str| lines.iter().filter(|l| l["direction"] == d).count();
    assert!(
        count("client_to_server") >= 4 && count("server_to_client") >= 3,
        "{lines:?}"
    );
    let decisions: Vec<&Value> = lines
        .iter()
        .filter(|l| l["direction"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 3);
    assert!(
        decisions
            .iter()
            .any(|d| d["tool"] == "write_file" && d["decision"]["action"] == "deny")
    );
    assert_eq!(count("proxy_to_client"), 2);

    // Malformed input gets a JSON-RPC error, not a crash; a bad policy never starts.
    let out = agentry(
        &[
            "proxy",
            "--policy",
            policy.to_str().unwrap(),
            "--no-audit",
            "--",
            "cat",
        ],
        b"this is not json\n[1, 2]\n{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"ping\"}\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("-32700")
            && stdout.contains("batches")
            && stdout.contains("\"method\": \"ping\""),
        "{stdout}"
    );
    std::fs::write(&policy, "[[rule]]\naction = \"maybe\"\n").unwrap();
    let out = agentry(
        &["proxy", "--policy", policy.to_str().unwrap(), "--", "cat"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1: rule 1: unknown action `maybe`")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mcp_serve_offers_the_tools_and_an_agent_to_an_mcp_client_also_through_the_proxy() {
    let me: String = env!("CARGO_BIN_EXE_agentry").into();
    let dir = std::env::temp_dir().join(format!("agentry-mcp-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p.toml");
    std::fs::write(
        &policy,
        "[[rule]]\ntool = \"kv_set\"\naction = \"deny\"\nreason = \"the store is read-only\"\n",
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use agentry_tools::DynTool;
        let direct = vec![
            me.clone(),
            "mcp".into(),
            "serve".into(),
            "--model".into(),
            "sim:plan".into(),
        ];
        let mut proxied = vec![
            me.clone(),
            "proxy".into(),
            "--policy".into(),
            policy.to_str().unwrap().into(),
            "--no-audit".into(),
            "--".into(),
        ];
        proxied.extend(direct.iter().cloned());
        for (command, behind_proxy) in [(direct, false), (proxied, true)] {
            let server = agentry_mcp::McpServer::connect(agentry_mcp::ServerSpec {
                alias: "agentry".into(),
                command,
                env: Default::default(),
            })
            .await
            .unwrap();
            let tools = server.tools(&|_| false).await;
            let names: Vec<String> = tools.iter().map(|t| t.spec().name).collect();
            for want in ["get_weather", "calculator", "kv_set", "agent"] {
                assert!(names.iter().any(|n| n == want), "{names:?}");
            }
            let tool = |name: &str| tools.iter().find(|t| t.spec().name == name).unwrap();
            let cx = || agentry_tools::CallContext::detached("c");
            assert_eq!(
                tool("calculator")
                    .call_json(json!({"expression": "6 * 7"}), cx())
                    .await
                    .unwrap(),
                json!("42")
            );
            // Validation happens on the serving side too.
            let bad = tool("calculator")
                .call_json(json!({"expression": 42}), cx())
                .await
                .unwrap_err();
            assert!(
                bad.for_model()
                    .contains("`$.expression`: 42 is not a string"),
                "{bad:?}"
            );
            // The agent is one tool: a task in, its answer out.
            let answer = tool("agent")
                .call_json(json!({"task": "How much warmer is Oslo than Paris?"}), cx())
                .await
                .unwrap();
            assert_eq!(answer, json!("Oslo is 19 °C warmer than Paris right now."));
            let stored = tool("kv_set")
                .call_json(json!({"key": "k", "value": 1}), cx())
                .await;
            if behind_proxy {
                assert_eq!(
                    stored.unwrap_err().for_model(),
                    "denied by policy: the store is read-only"
                );
            } else {
                assert!(stored.is_ok(), "{stored:?}");
            }
            server.close().await;
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Starts `agentry ARGS` (a server over HTTP) and returns it with the URL its first line
/// names.
#[test]
fn mcp_serve_over_streamable_http_reaches_an_http_client() {
    let (mut child, url) = serving(&["mcp", "serve", "--http", "0", "--model", "sim:plan"]);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use agentry_tools::DynTool;
        // `--mcp 'alias=URL'` is how a run reaches an HTTP server; the spec reads the same.
        let spec = agentry_mcp::ServerSpec::parse(&format!("remote={url}")).unwrap();
        assert_eq!(spec.url(), Some(url.as_str()));
        let server = agentry_mcp::McpServer::connect(spec).await.unwrap();
        let tools = server.tools(&|_| false).await;
        let calc = tools
            .iter()
            .find(|t| t.spec().name == "calculator")
            .unwrap();
        let v = calc
            .call_json(
                json!({"expression": "2 ^ 10"}),
                agentry_tools::CallContext::detached("c"),
            )
            .await
            .unwrap();
        assert_eq!(v, json!("1024"));
        server.close().await;
    });
    child.kill().unwrap();
    let _ = child.wait();
}

/// Runs the TypeScript SDK's client (tests/mcp/ts-client.mjs) and returns its JSON line.
fn ts_client(args: &[&str]) -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp/ts-client.mjs");
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ts-client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn the_typescript_sdk_client_talks_to_mcp_serve_and_the_proxy_over_stdio_and_http() {
    // The SDK is installed with the servers; without them (and without AGENTRY_REQUIRE_MCP)
    // the test is skipped.
    if mcp_bin("mcp-server-everything").is_none() {
        return;
    }
    let me = env!("CARGO_BIN_EXE_agentry");
    // stdio, straight to agentry mcp serve.
    let v = ts_client(&[
        "stdio",
        "calculator",
        r#"{"expression": "6 * 7"}"#,
        "--",
        me,
        "mcp",
        "serve",
        "--model",
        "sim:plan",
    ]);
    assert_eq!(v["server"]["name"], "agentry");
    assert!(v["tools"].as_array().unwrap().iter().any(|t| t == "agent"));
    assert_eq!(v["result"]["content"][0]["text"], "42");
    let v = ts_client(&[
        "stdio",
        "agent",
        r#"{"task": "How much warmer is Oslo than Paris?"}"#,
        "--",
        me,
        "mcp",
        "serve",
        "--model",
        "sim:plan",
    ]);
    assert_eq!(
        v["result"]["content"][0]["text"],
        "Oslo is 19 °C warmer than Paris right now."
    );
    // stdio, through the proxy, whose policy refuses kv_set.
    let dir = std::env::temp_dir().join(format!("agentry-ts-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p.toml");
    std::fs::write(
        &policy,
        "[[rule]]\ntool = \"kv_set\"\naction = \"deny\"\nreason = \"no writes\"\n",
    )
    .unwrap();
    let v = ts_client(&[
        "stdio",
        "kv_set",
        r#"{"key": "k", "value": 1}"#,
        "--",
        me,
        "proxy",
        "--policy",
        policy.to_str().unwrap(),
        "--no-audit",
        "--",
        me,
        "mcp",
        "serve",
        "--no-agent",
    ]);
    assert_eq!(v["result"]["isError"], true);
    assert_eq!(
        v["result"]["content"][0]["text"],
        "denied by policy: no writes"
    );
    // Streamable HTTP.
    let (mut child, url) = serving(&["mcp", "serve", "--http", "0", "--no-agent"]);
    let v = ts_client(&["http", "get_weather", r#"{"city": "Oslo"}"#, &url]);
    assert!(v["result"]["structuredContent"]["city"] == "Oslo", "{v}");
    // Bad arguments come back as an error result the client's model can read.
    let v = ts_client(&["http", "get_weather", r#"{"town": "Oslo"}"#, &url]);
    assert_eq!(v["result"]["isError"], true, "{v}");
    child.kill().unwrap();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_config_file_names_mcp_servers_like_the_flag() {
    let Some(everything) = mcp_bin("mcp-server-everything") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("agentry-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("echo.yaml");
    std::fs::write(
        &script,
        "name: echo\nformat: openai\nturns:\n  - when: { last: user }\n    calls:\n      - name: echo\n        arguments: { message: \"from the config\" }\n  - when: { last: tool }\n    text: \"{{tool}}\"\n",
    )
    .unwrap();
    let config = dir.join("agentry.toml");
    std::fs::write(&config, format!("[mcp.ev]\ncommand = [{everything:?}]\n")).unwrap();
    let model = format!("sim:{}", script.display());
    let out = agentry(
        &[
            "run",
            "echo",
            "--mode",
            "sequential",
            "--model",
            &model,
            "--config",
            config.to_str().unwrap(),
            "--no-demo-tools",
            "--no-trace",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Echo: from the config\n"
    );
    std::fs::write(
        &config,
        "[mcp.ev]\ncommand = [\"x\"]\nurl = \"http://h/mcp\"\n",
    )
    .unwrap();
    let out = agentry(&["run", "echo", "--config", config.to_str().unwrap()], b"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[mcp.ev] needs either command"));
    std::fs::write(&config, "[mcp.ev]\ncomand = [\"x\"]\n").unwrap();
    let out = agentry(&["run", "echo", "--config", config.to_str().unwrap()], b"");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2: unknown field `comand`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_proxy_over_http_enforces_the_policy_for_an_http_client() {
    let Some(fs_server) = mcp_bin("mcp-server-filesystem") else {
        return;
    };
    let (dir, root) = notes_dir("proxy-http");
    let policy = dir.join("p.toml");
    std::fs::write(&policy, "[[rule]]\nserver = \"fs\"\ntool = \"write_file\"\naction = \"deny\"\nreason = \"read-only today\"\n").unwrap();
    let audit = dir.join("audit.jsonl");
    let (mut child, url) = serving(&[
        "proxy",
        "--http",
        "0",
        "--policy",
        policy.to_str().unwrap(),
        "--server-name",
        "fs",
        "--audit",
        audit.to_str().unwrap(),
        "--",
        &fs_server,
        root.to_str().unwrap(),
    ]);
    let read = ts_client(&[
        "http",
        "read_text_file",
        &json!({"path": root.join("a.txt")}).to_string(),
        &url,
    ]);
    assert_eq!(
        read["result"]["content"][0]["text"], "secret notes",
        "{read}"
    );
    let write = ts_client(&[
        "http",
        "write_file",
        &json!({"path": root.join("b.txt"), "content": "x"}).to_string(),
        &url,
    ]);
    assert_eq!(write["result"]["isError"], true);
    assert_eq!(
        write["result"]["content"][0]["text"],
        "denied by policy: read-only today"
    );
    assert!(
        !root.join("b.txt").exists(),
        "a denied write reached the disk"
    );
    child.kill().unwrap();
    let _ = child.wait();
    let trail = std::fs::read_to_string(&audit).unwrap();
    assert!(
        trail
            .lines()
            .any(|l| l.contains("\"decision\"") && l.contains("write_file") && l.contains("deny")),
        "{trail}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_peers_runs_agentry_in_both_modes_and_reports_a_contender_that_crashes() {
    let dir = std::env::temp_dir().join(format!("agentry-peers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers");
    // `false` stands in for a Python whose contenders crash at once.
    let out = agentry(
        &[
            "bench",
            "peers",
            "--python",
            "false",
            "--repeat",
            "1",
            "--concurrency",
            "3",
            "--scripts",
            scripts.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("peers.json")).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 16, "4 workloads × 4 contenders");
    let answer = |w: &str, c: &str| {
        rows.iter()
            .find(|r| r["workload"] == w && r["contender"] == c)
            .map(|r| r["answers"].to_string())
            .unwrap()
    };
    // Both agentry modes reach the scripted answers, the compiled one through its plan.
    for mode in ["agentry compiled", "agentry sequential"] {
        assert!(
            answer("a", mode).contains("The sum is 197"),
            "{}",
            answer("a", mode)
        );
        assert!(
            answer("c", mode).contains("The chain ends at 55"),
            "{}",
            answer("c", mode)
        );
        assert!(
            answer("d", mode).contains("The sum is 197"),
            "{}",
            answer("d", mode)
        );
    }
    // The crashed contenders are in the table as such; the rest ran.
    for r in rows.iter().filter(|r| r["contender"] == "LangGraph") {
        assert!(r["error"].as_str().unwrap().contains("crashed"), "{r}");
    }
    assert!(stdout.contains("crashed"), "{stdout}");
    assert!(dir.join("peers.md").exists());
    assert_eq!(&std::fs::read(dir.join("peers.png")).unwrap()[1..4], b"PNG");
    std::fs::remove_dir_all(&dir).unwrap();
}
