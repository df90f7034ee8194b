//! The store on disk: writing, reading, crash safety, versions, bad files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_core::{RunStatus, ToolCall, ToolResult, TraceEvent, TraceKind};
use agentry_trace::{TraceError, TraceStore, TraceWriter, export_jsonl};
use pretty_assertions::assert_eq;
use serde_json::json;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("agentry-trace-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run_events(run: &str, n_calls: usize, finish: bool) -> Vec<TraceEvent> {
    let mut kinds = vec![TraceKind::RunStarted {
        task: format!("task {run}"),
        model: "sim:x".into(),
        mode: "sequential".into(),
        tools: vec!["f".into()],
        stop_tools: vec![],
        system: None,
    }];
    for i in 0..n_calls {
        let call = ToolCall::new(format!("c{i}"), "f", json!({"i": i}));
        kinds.push(TraceKind::CallStarted {
            call: call.clone(),
            task: None,
            after: vec![],
        });
        kinds.push(TraceKind::CallFinished {
            result: ToolResult::ok(&call, json!(i)),
            task: None,
            attempts: 1,
            duration_us: 5,
        });
    }
    if finish {
        kinds.push(TraceKind::RunFinished {
            status: RunStatus::Answered,
            answer: Some("42".into()),
            reason: None,
            calls: n_calls as u64,
            prompt_tokens: 10,
            completion_tokens: 5,
        });
    }
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| TraceEvent {
            run_id: run.into(),
            seq: i as u64,
            at_us: i as u64 * 10,
            kind,
        })
        .collect()
}

#[test]
fn runs_and_events_round_trip() {
    let d = dir("roundtrip");
    let db = d.join("nested/traces.db");
    let writer = TraceWriter::open(&db).unwrap();
    for e in run_events("r-a", 3, true)
        .iter()
        .chain(run_events("r-b", 1, true).iter())
    {
        writer.record(e);
    }
    writer.close().unwrap();
    let store = TraceStore::open(&db).unwrap();
    let runs = store.runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    let a = runs.iter().find(|r| r.id == "r-a").unwrap();
    assert_eq!(
        (a.status.as_str(), a.answer.as_deref(), a.calls, a.tokens),
        ("answered", Some("42"), 3, 15)
    );
    assert_eq!(store.events("r-a").unwrap(), run_events("r-a", 3, true));
    assert_eq!(store.resolve("r-b").unwrap(), "r-b");
    assert!(matches!(
        store.resolve("r-"),
        Err(TraceError::Ambiguous { count: 2, .. })
    ));
    assert!(matches!(store.resolve("zzz"), Err(TraceError::NoRun(_))));
    let lines = export_jsonl(&store.events("r-b").unwrap());
    assert_eq!(lines.lines().count(), 4);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(lines.lines().next().unwrap()).unwrap()["kind"],
        "run_started"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_unfinished_run_is_readable_while_it_runs() {
    let d = dir("crash");
    let db = d.join("traces.db");
    let writer = TraceWriter::open(&db).unwrap();
    for e in run_events("r-live", 2, false) {
        writer.record(&e);
    }
    writer.flush();
    // A second connection reads while the writer is still open (as after a crash, nothing more comes).
    let store = TraceStore::open(&db).unwrap();
    assert_eq!(store.runs(5).unwrap()[0].status, "running");
    assert_eq!(store.events("r-live").unwrap().len(), 5);
    drop(writer);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn missing_foreign_and_future_databases_are_refused_clearly() {
    let d = dir("bad");
    std::fs::create_dir_all(&d).unwrap();
    let err = TraceStore::open(&d.join("none.db"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no trace database at") && err.contains("agentry run"),
        "{err}"
    );
    let junk = d.join("junk.db");
    std::fs::write(
        &junk,
        b"this is not sqlite, just text that is long enough to look like a header .....",
    )
    .unwrap();
    let err = TraceStore::open(&junk).unwrap_err().to_string();
    assert!(err.contains("junk.db"), "{err}");
    let future = d.join("future.db");
    write_future_version(&future);
    let err = TraceStore::open(&future).unwrap_err();
    assert!(
        matches!(
            err,
            TraceError::Version {
                found: 99,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Makes a database whose schema version is from the future.
fn write_future_version(path: &std::path::Path) {
    TraceWriter::open(path).unwrap().close().unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
}
