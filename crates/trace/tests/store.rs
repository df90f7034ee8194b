//! The store on disk: writing, reading, crash safety, versions, bad files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_core::{RunStatus, ToolCall, ToolResult, TraceEvent, TraceKind};
use agentry_trace::{TraceError, TraceStore, TraceWriter, export_jsonl, timeline};
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
        parent: None,
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
                expected: agentry_trace::SCHEMA_VERSION,
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

#[test]
fn a_run_whose_process_died_is_settled_as_interrupted_with_its_calls_unfinished() {
    let Ok(boot) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") else {
        return; // no /proc: nothing can be known, and runs are left as they are
    };
    let d = dir("interrupted");
    let db = d.join("traces.db");
    let writer = TraceWriter::open(&db).unwrap();
    // Two calls done, then one in flight when the process "died".
    let mut events = run_events("r-dead", 2, false);
    let call = ToolCall::new("c9", "f", json!({"i": 9}));
    events.push(TraceEvent {
        run_id: "r-dead".into(),
        seq: events.len() as u64,
        at_us: 1_000,
        kind: TraceKind::CallStarted {
            call,
            task: Some(3),
            after: vec![],
        },
    });
    for e in events.iter().chain(run_events("r-alive", 1, false).iter()) {
        writer.record(e);
    }
    writer.close().unwrap();
    // r-alive was written by this process, which lives; r-dead by a pid that is gone.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE runs SET writer = ?1 WHERE id = 'r-dead'",
        [format!("{}:4194303999:12345", boot.trim())],
    )
    .unwrap();
    drop(conn);

    let store = TraceStore::open(&db).unwrap();
    let runs = store.runs(10).unwrap();
    let dead = runs.iter().find(|r| r.id == "r-dead").unwrap();
    assert_eq!((dead.status.as_str(), dead.calls), ("interrupted", 3));
    assert_eq!(dead.wall_us, 1_000);
    let alive = runs.iter().find(|r| r.id == "r-alive").unwrap();
    assert_eq!(alive.status, "running");
    let events = store.events("r-dead").unwrap();
    let unfinished = events
        .iter()
        .find_map(|e| match &e.kind {
            TraceKind::CallFinished { result, task, .. } if result.tool_call_id == "c9" => {
                Some((result.outcome.clone().unwrap_err(), *task))
            }
            _ => None,
        })
        .unwrap();
    assert!(
        unfinished.0.for_model().contains("not finished"),
        "{:?}",
        unfinished.0
    );
    assert_eq!(unfinished.1, Some(3));
    assert!(matches!(
        events.last().unwrap().kind,
        TraceKind::RunFinished {
            status: RunStatus::Interrupted,
            ..
        }
    ));
    // Settling again finds nothing to do.
    assert!(store.settle().unwrap().is_empty());
    // The live run's call in flight is drawn as unfinished, not as a finished 0 ms bar.
    let t = timeline(&store.events("r-alive").unwrap());
    assert!(t.steps.iter().all(|s| !s.unfinished));
    let mut live = run_events("r-live", 0, false);
    live.push(TraceEvent {
        run_id: "r-live".into(),
        seq: 1,
        at_us: 50,
        kind: TraceKind::CallStarted {
            call: ToolCall::new("c1", "f", json!({})),
            task: None,
            after: vec![],
        },
    });
    live.push(TraceEvent {
        run_id: "r-live".into(),
        seq: 2,
        at_us: 900,
        kind: TraceKind::ModelRequest {
            step: "m1".into(),
            purpose: agentry_core::ModelPurpose::Turn,
            messages: 1,
        },
    });
    let t = timeline(&live);
    let call = t.steps.iter().find(|s| s.id == "c1").unwrap();
    assert!(call.unfinished);
    assert_eq!((call.start_us, call.end_us), (50, 900));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_store_of_schema_version_1_is_upgraded_in_place() {
    let d = dir("v1");
    std::fs::create_dir_all(&d).unwrap();
    let db = d.join("traces.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE runs (
           id TEXT PRIMARY KEY, started_at_ms INTEGER NOT NULL, task TEXT NOT NULL, model TEXT NOT NULL,
           mode TEXT NOT NULL, status TEXT NOT NULL, answer TEXT, reason TEXT, calls INTEGER NOT NULL DEFAULT 0,
           tokens INTEGER NOT NULL DEFAULT 0, wall_us INTEGER NOT NULL DEFAULT 0);
         CREATE INDEX runs_by_start ON runs (started_at_ms);
         CREATE TABLE events (
           run_id TEXT NOT NULL, seq INTEGER NOT NULL, at_us INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
           PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
         INSERT INTO runs (id, started_at_ms, task, model, mode, status) VALUES ('r-old', 1, 't', 'm', 'sequential', 'running');
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = TraceStore::open(&db).unwrap();
    // An old run's writer is unknown: it is left as it was.
    assert_eq!(store.runs(5).unwrap()[0].status, "running");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, agentry_trace::SCHEMA_VERSION);
    std::fs::remove_dir_all(&d).unwrap();
}
