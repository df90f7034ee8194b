//! `agentry run` stopped from outside: Ctrl-C cancels the run cleanly, and a killed run is
//! shown as interrupted with its calls in flight marked unfinished.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::BufRead,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use agentry_core::{RunStatus, TraceKind};
use agentry_trace::TraceStore;

/// A fresh directory with a simulated model that answers with one long `sleep` call.
fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("agentry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("slow.json");
    std::fs::write(
        &script,
        r#"{"name": "slow", "turns": [
            {"when": {"last": "user"}, "calls": [{"name": "sleep", "arguments": {"ms": 60000}}]},
            {"when": {"last": "tool"}, "text": "slept"}]}"#,
    )
    .unwrap();
    let db = dir.join("traces.db");
    (dir, script, db)
}

/// Starts `agentry run` and returns once its call is in flight.
fn start_run(script: &Path, db: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["run", "sleep a minute", "--mode", "sequential"])
        .arg("--model")
        .arg(format!("sim:{}", script.display()))
        .arg("--trace-db")
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        if line.contains("→") && line.contains("sleep") {
            break;
        }
    }
    // Keep reading, so the run can still write to its stderr.
    std::thread::spawn(move || stderr.for_each(drop));
    // The writer commits in batches of at most 200 ms.
    std::thread::sleep(std::time::Duration::from_millis(600));
    child
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} failed");
}

/// The one run in the store: its status and the sleep call's recorded error.
fn the_run(db: &Path) -> (String, Option<String>, i64) {
    let store = TraceStore::open(db).unwrap();
    let runs = store.runs(5).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let events = store.events(&runs[0].id).unwrap();
    let error = events.iter().find_map(|e| match &e.kind {
        TraceKind::CallFinished { result, .. } => result
            .outcome
            .as_ref()
            .err()
            .map(|e| e.for_model().to_owned()),
        _ => None,
    });
    (runs[0].status.clone(), error, runs[0].calls)
}

#[test]
fn ctrl_c_cancels_the_run_and_records_the_call_it_cut() {
    let (dir, script, db) = setup("ctrl-c");
    let mut child = start_run(&script, &db);
    let started = std::time::Instant::now();
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        started.elapsed().as_secs() < 10,
        "Ctrl-C did not stop the run"
    );
    let (status, error, calls) = the_run(&db);
    assert_eq!(status, RunStatus::Cancelled.as_str());
    assert_eq!(calls, 1);
    let error = error.expect("the cut call has a recorded outcome");
    assert!(error.contains("cancelled"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_run_is_shown_as_interrupted_with_its_call_unfinished() {
    if !Path::new("/proc/self/stat").exists() {
        return; // without /proc the store cannot tell a dead writer from a live one
    }
    let (dir, script, db) = setup("killed");
    let mut child = start_run(&script, &db);
    signal(&child, "KILL");
    child.wait().unwrap();
    let (status, error, calls) = the_run(&db);
    assert_eq!(status, RunStatus::Interrupted.as_str());
    assert_eq!(calls, 1);
    let error = error.expect("the call in flight is marked");
    assert!(error.contains("not finished"), "{error}");
    // `trace list` says so too.
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["trace", "list", "--trace-db"])
        .arg(&db)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("interrupted"), "{listed}");
    std::fs::remove_dir_all(&dir).unwrap();
}
