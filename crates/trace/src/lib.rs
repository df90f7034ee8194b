//! The trace store: every step of every run in SQLite ([`TraceStore`], [`TraceWriter`]),
//! drawn as a timeline ([`timeline`], [`render`]) and exported as JSON Lines ([`export_jsonl`]).
//!
//! Writing happens on a background thread in batches, so recording costs the engine one
//! channel send per event; WAL mode keeps everything committed readable after a crash and lets
//! readers look at a run while it is still going.
//!
//! # Example
//!
//! ```
//! use agentry_core::{TraceEvent, TraceKind};
//! use agentry_trace::{TraceStore, TraceWriter};
//!
//! let dir = std::env::temp_dir().join(format!("agentry-doc-{}", std::process::id()));
//! let db = dir.join("traces.db");
//! let writer = TraceWriter::open(&db)?;
//! writer.record(&TraceEvent { run_id: "r1".into(), seq: 0, at_us: 0, kind: TraceKind::RunStarted {
//!     task: "hello".into(), model: "sim:weather".into(), mode: "sequential".into(), tools: vec![],
//!     stop_tools: vec![], system: None, parent: None } });
//! writer.close()?;
//! let store = TraceStore::open(&db)?;
//! assert_eq!(store.runs(10)?[0].task, "hello");
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), agentry_trace::TraceError>(())
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[cfg(feature = "otlp")]
pub mod otlp;
mod process;
mod store;
mod timeline;

use agentry_core::TraceEvent;

pub use store::{
    Cursor, RunFilter, RunPage, RunSummary, SCHEMA_VERSION, TraceError, TraceStore, TraceWriter,
    create_private_dir,
};
pub use timeline::{Step, StepKind, Timeline, render, timeline};

/// A run's events as JSON Lines, one event per line.
pub fn export_jsonl(events: &[TraceEvent]) -> String {
    let mut out = String::new();
    for e in events {
        if let Ok(line) = serde_json::to_string(e) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The default database path: `./.agentry/traces.db`.
pub fn default_path() -> std::path::PathBuf {
    std::path::Path::new(".agentry").join("traces.db")
}
