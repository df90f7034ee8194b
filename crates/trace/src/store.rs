//! The SQLite trace store: [`TraceStore`] to read, [`TraceWriter`] to write off the hot path.
//!
//! One table of runs (a summary row each) and one of events (every [`TraceEvent`] as JSON).
//! The database runs in WAL mode, so readers (`agentry trace show`, the UI) never block a
//! running agent, and the writer commits a batch every few milliseconds: a crash loses at most
//! the batch in flight, and what was committed stays readable.

use std::{
    path::{Path, PathBuf},
    sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel},
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use agentry_core::{RunStatus, ToolError, ToolResult, TraceEvent, TraceKind};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::process;
use serde::Serialize;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 2;

/// Why the trace store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// SQLite failed (file missing, locked, corrupt, not a database).
    #[error("trace database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by another version of agentry.
    #[error(
        "trace database {path} has schema version {found}; this agentry reads version {expected} (move the file aside to start a new one)"
    )]
    Version {
        /// The database file.
        path: String,
        /// Its version.
        found: i64,
        /// The version this build reads.
        expected: i64,
    },
    /// No run matches.
    #[error("no run matches `{0}`; `agentry trace list` shows the runs")]
    NoRun(String),
    /// Several runs match a prefix.
    #[error("`{prefix}` matches {count} runs; give more of the id")]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// How many runs it matches.
        count: usize,
    },
    /// A stored event is not readable.
    #[error("run {run}, event {seq}: {why}")]
    Corrupt {
        /// The run.
        run: String,
        /// The event's position.
        seq: i64,
        /// What is wrong.
        why: String,
    },
    /// The file system refused to create the database's directory or file.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory or file.
        path: String,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// There is no database to read.
    #[error("no trace database at {path}; run an agent first (`agentry run …`) or pass --trace-db")]
    NoDatabase {
        /// Where it was looked for.
        path: String,
    },
    /// The writer's thread could not be started.
    #[error("cannot start the trace writer: {0}")]
    Spawn(#[source] std::io::Error),
    /// The writer's thread panicked.
    #[error("the trace writer thread panicked")]
    WriterPanicked,
}

/// A run's summary row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// Start, in milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// The task.
    pub task: String,
    /// The model's name.
    pub model: String,
    /// `sequential` or `compiled`.
    pub mode: String,
    /// `running`, or how it ended: `answered`, `budget_exhausted`, `cancelled`, `failed`,
    /// `stopped`, `loop_detected` or `interrupted`.
    pub status: String,
    /// The answer, if any.
    pub answer: Option<String>,
    /// Tool calls made.
    pub calls: i64,
    /// Prompt plus completion tokens.
    pub tokens: i64,
    /// Wall time in microseconds (0 while running).
    pub wall_us: i64,
}

/// Reads the trace store.
#[derive(Debug)]
pub struct TraceStore {
    conn: Connection,
    path: PathBuf,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> TraceError + '_ {
    move |source| TraceError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `dir` and whichever of its parents are missing, each 0700 (records of runs are
/// for their owner only); leaves a directory that exists as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_private_dir(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `path` empty and 0600 unless it exists (an existing file keeps its mode). SQLite
/// then opens it as a new database and gives its `-wal` and `-shm` files the same mode.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens (creating if needed) the database at `path` and checks its schema version.
fn connect(path: &Path, create: bool) -> Result<Connection, TraceError> {
    // Traces hold what tools returned, secrets included: a new store is its owner's only.
    if create {
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|source| TraceError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        create_private_file(path).map_err(|source| TraceError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    if !create && !path.exists() {
        return Err(TraceError::NoDatabase {
            path: path.display().to_string(),
        });
    }
    let conn = Connection::open(path).map_err(sqlite(path))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sqlite(path))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    match version {
        0 => conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS runs (
               id TEXT PRIMARY KEY, started_at_ms INTEGER NOT NULL, task TEXT NOT NULL, model TEXT NOT NULL,
               mode TEXT NOT NULL, status TEXT NOT NULL, answer TEXT, reason TEXT, calls INTEGER NOT NULL DEFAULT 0,
               tokens INTEGER NOT NULL DEFAULT 0, wall_us INTEGER NOT NULL DEFAULT 0, writer TEXT);
             CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at_ms);
             CREATE INDEX IF NOT EXISTS runs_running ON runs (status) WHERE status = 'running';
             CREATE TABLE IF NOT EXISTS events (
               run_id TEXT NOT NULL, seq INTEGER NOT NULL, at_us INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
               PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
             PRAGMA user_version = 2;",
            )
            .map_err(sqlite(path))?,
        // Version 1 did not know which process wrote a run.
        1 => conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
             BEGIN IMMEDIATE;
             ALTER TABLE runs ADD COLUMN writer TEXT;
             CREATE INDEX IF NOT EXISTS runs_running ON runs (status) WHERE status = 'running';
             PRAGMA user_version = 2;
             COMMIT;",
            )
            .map_err(sqlite(path))?,
        SCHEMA_VERSION => conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite(path))?,
        found => {
            return Err(TraceError::Version {
                path: path.display().to_string(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite(path))?;
    Ok(conn)
}

impl TraceStore {
    /// Opens an existing store for reading; runs whose process has died are marked
    /// `interrupted` first ([`TraceStore::settle`]).
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let store = Self {
            conn: connect(path, false)?,
            path: path.to_owned(),
        };
        // Best effort: a store this user may only read is shown as it is.
        let _ = store.settle();
        Ok(store)
    }

    /// Opens a store, creating it if needed; runs whose process has died are marked
    /// `interrupted` first.
    pub fn create(path: &Path) -> Result<Self, TraceError> {
        let store = Self {
            conn: connect(path, true)?,
            path: path.to_owned(),
        };
        let _ = store.settle();
        Ok(store)
    }

    /// Finishes the runs still marked `running` whose process is known to have ended
    /// (killed, crashed, the machine restarted): each call it left in flight gets an
    /// `unavailable` result saying it did not finish, and the run ends `interrupted` with
    /// its calls, tokens and time so far. Returns the ids of the runs it finished.
    pub fn settle(&self) -> Result<Vec<String>, TraceError> {
        let path = &self.path;
        let candidates: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id, writer FROM runs WHERE status = 'running' AND writer IS NOT NULL",
                )
                .map_err(sqlite(path))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sqlite(path))?
                .collect::<Result<_, _>>()
                .map_err(sqlite(path))?
        };
        let mut settled = Vec::new();
        for (id, writer) in candidates {
            if process::has_ended(&writer) && self.interrupt(&id, &writer)? {
                settled.push(id);
            }
        }
        Ok(settled)
    }

    /// Ends run `id`, whose process `writer` is gone, as `interrupted`; `false` when
    /// another reader did it first.
    fn interrupt(&self, id: &str, writer: &str) -> Result<bool, TraceError> {
        let path = &self.path;
        let events = self.events(id)?;
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(sqlite(path))?;
        let status: Option<String> = tx
            .query_row("SELECT status FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sqlite(path))?;
        if status.as_deref() != Some("running") {
            return Ok(false);
        }
        let last_us = events.iter().map(|e| e.at_us).max().unwrap_or(0);
        let mut seq = events.iter().map(|e| e.seq).max().map_or(0, |s| s + 1);
        let (mut calls, mut tokens) = (0u64, 0u64);
        let mut open: Vec<(&agentry_core::ToolCall, Option<u32>, u64)> = Vec::new();
        for e in &events {
            match &e.kind {
                TraceKind::CallStarted { call, task, .. } => {
                    calls += 1;
                    open.push((call, *task, e.at_us));
                }
                TraceKind::CallFinished { result, .. } => {
                    open.retain(|(c, ..)| c.id != result.tool_call_id);
                }
                TraceKind::ModelResponse {
                    prompt_tokens,
                    completion_tokens,
                    ..
                } => tokens += prompt_tokens + completion_tokens,
                _ => {}
            }
        }
        let pid = process::pid(writer).unwrap_or("?");
        let mut ending: Vec<TraceEvent> = Vec::new();
        for (call, task, started) in open {
            let error = ToolError::unavailable(
                "not finished: the process running the run ended while the call ran",
            );
            ending.push(TraceEvent {
                run_id: id.to_owned(),
                seq,
                at_us: last_us,
                kind: TraceKind::CallFinished {
                    result: ToolResult::err(call, error),
                    task,
                    attempts: 1,
                    duration_us: last_us - started,
                },
            });
            seq += 1;
        }
        ending.push(TraceEvent {
            run_id: id.to_owned(),
            seq,
            at_us: last_us,
            kind: TraceKind::RunFinished {
                status: RunStatus::Interrupted,
                answer: None,
                reason: Some(format!(
                    "interrupted: the process running it (pid {pid}) ended before the run did"
                )),
                calls,
                prompt_tokens: tokens,
                completion_tokens: 0,
            },
        });
        let batch: Vec<Box<TraceEvent>> = ending.into_iter().map(Box::new).collect();
        write_events(&tx, path, &batch, None)?;
        tx.commit().map_err(sqlite(path))?;
        Ok(true)
    }

    /// The newest runs first, at most `limit`.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, TraceError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at_ms, task, model, mode, status, answer, calls, tokens, wall_us
                 FROM runs ORDER BY started_at_ms DESC, id DESC LIMIT ?1",
            )
            .map_err(sqlite(&self.path))?;
        let rows = stmt
            .query_map([limit as i64], summary)
            .map_err(sqlite(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sqlite(&self.path))
    }

    /// One page of runs, newest first, that match `filter`: those that started before
    /// `before` (a cursor from [`RunPage::next`]), at most `limit`; and how many match.
    pub fn runs_page(
        &self,
        filter: &RunFilter,
        before: Option<&Cursor>,
        limit: usize,
    ) -> Result<RunPage, TraceError> {
        let mut clauses = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            clauses.push("(instr(lower(task), lower(?)) > 0 OR instr(id, ?) = 1 OR instr(lower(model), lower(?)) > 0)");
            args.extend(std::iter::repeat_n(text.to_owned().into(), 3));
        }
        if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
            clauses.push("status = ?");
            args.push(status.to_owned().into());
        }
        if let Some(mode) = filter.mode.as_deref().filter(|m| !m.is_empty()) {
            clauses.push("mode = ?");
            args.push(mode.to_owned().into());
        }
        let filtered = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let total: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM runs {filtered}"),
                rusqlite::params_from_iter(&args),
                |r| r.get(0),
            )
            .map_err(sqlite(&self.path))?;
        if let Some(c) = before {
            clauses.push("(started_at_ms < ? OR (started_at_ms = ? AND id < ?))");
            args.extend([
                c.started_at_ms.into(),
                c.started_at_ms.into(),
                c.id.clone().into(),
            ]);
        }
        let filtered = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        args.push((limit as i64 + 1).into());
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, started_at_ms, task, model, mode, status, answer, calls, tokens, wall_us
                 FROM runs {filtered} ORDER BY started_at_ms DESC, id DESC LIMIT ?"
            ))
            .map_err(sqlite(&self.path))?;
        let mut runs: Vec<RunSummary> = stmt
            .query_map(rusqlite::params_from_iter(&args), summary)
            .map_err(sqlite(&self.path))?
            .collect::<Result<_, _>>()
            .map_err(sqlite(&self.path))?;
        let next = (runs.len() > limit).then(|| {
            runs.truncate(limit);
            runs.last().map(|r| Cursor {
                started_at_ms: r.started_at_ms,
                id: r.id.clone(),
            })
        });
        Ok(RunPage {
            runs,
            next: next.flatten(),
            total: total as u64,
        })
    }

    /// These runs' summaries (those that exist).
    pub fn summaries(&self, ids: &[String]) -> Result<Vec<RunSummary>, TraceError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, started_at_ms, task, model, mode, status, answer, calls, tokens, wall_us
                 FROM runs WHERE id = ?1",
            )
            .map_err(sqlite(&self.path))?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(s) = stmt
                .query_row([id], summary)
                .optional()
                .map_err(sqlite(&self.path))?
            {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// A number that changes whenever another connection commits to the database (for
    /// noticing new runs and events without reading them).
    pub fn data_version(&self) -> Result<i64, TraceError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(sqlite(&self.path))
    }

    /// Runs whose row changed since `since_ms` started, or that are still running: what a
    /// live list must refresh.
    pub fn active_since(&self, since_ms: i64) -> Result<Vec<RunSummary>, TraceError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, started_at_ms, task, model, mode, status, answer, calls, tokens, wall_us
                 FROM runs WHERE started_at_ms >= ?1 OR status = 'running'
                 ORDER BY started_at_ms DESC, id DESC LIMIT 200",
            )
            .map_err(sqlite(&self.path))?;
        let rows = stmt
            .query_map([since_ms], summary)
            .map_err(sqlite(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sqlite(&self.path))
    }

    /// A run's events after `seq` (all of them with `None`), in order; empty when there
    /// are none yet.
    pub fn events_after(
        &self,
        run_id: &str,
        seq: Option<u64>,
    ) -> Result<Vec<TraceEvent>, TraceError> {
        let after = seq.map_or(-1, |s| s as i64);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, at_us, body FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(sqlite(&self.path))?;
        let rows = stmt
            .query_map(params![run_id, after], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sqlite(&self.path))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at_us, body) = row.map_err(sqlite(&self.path))?;
            let kind: TraceKind = serde_json::from_str(&body).map_err(|e| TraceError::Corrupt {
                run: run_id.into(),
                seq,
                why: e.to_string(),
            })?;
            out.push(TraceEvent {
                run_id: run_id.to_owned(),
                seq: seq as u64,
                at_us: at_us as u64,
                kind,
            });
        }
        Ok(out)
    }

    /// The run id named by `spec`: `last`, a whole id, or a unique prefix.
    pub fn resolve(&self, spec: &str) -> Result<String, TraceError> {
        if spec == "last" {
            return self
                .runs(1)?
                .into_iter()
                .next()
                .map(|r| r.id)
                .ok_or_else(|| TraceError::NoRun(spec.into()));
        }
        let exact: Option<String> = self
            .conn
            .query_row("SELECT id FROM runs WHERE id = ?1", [spec], |r| r.get(0))
            .optional()
            .map_err(sqlite(&self.path))?;
        if let Some(id) = exact {
            return Ok(id);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM runs WHERE substr(id, 1, ?2) = ?1 LIMIT 10")
            .map_err(sqlite(&self.path))?;
        let ids: Vec<String> = stmt
            .query_map(params![spec, spec.len() as i64], |r| r.get(0))
            .map_err(sqlite(&self.path))?
            .collect::<Result<_, _>>()
            .map_err(sqlite(&self.path))?;
        match ids.len() {
            0 => Err(TraceError::NoRun(spec.into())),
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            count => Err(TraceError::Ambiguous {
                prefix: spec.into(),
                count,
            }),
        }
    }

    /// Every event of a run, in order.
    pub fn events(&self, run_id: &str) -> Result<Vec<TraceEvent>, TraceError> {
        let out = self.events_after(run_id, None)?;
        if out.is_empty() {
            return Err(TraceError::NoRun(run_id.into()));
        }
        Ok(out)
    }
}

/// Which runs a page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Text in the task or model, or the start of the id.
    pub text: Option<String>,
    /// Exactly this status.
    pub status: Option<String>,
    /// Exactly this mode.
    pub mode: Option<String>,
}

/// Where a page of runs ends: the next page starts after this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The last run's start.
    pub started_at_ms: i64,
    /// The last run's id.
    pub id: String,
}

/// One page of runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunPage {
    /// Newest first.
    pub runs: Vec<RunSummary>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
    /// How many runs match the filter in all.
    pub total: u64,
}

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunSummary> {
    Ok(RunSummary {
        id: r.get(0)?,
        started_at_ms: r.get(1)?,
        task: r.get(2)?,
        model: r.get(3)?,
        mode: r.get(4)?,
        status: r.get(5)?,
        answer: r.get(6)?,
        calls: r.get(7)?,
        tokens: r.get(8)?,
        wall_us: r.get(9)?,
    })
}

enum Msg {
    Event(Box<TraceEvent>),
    Flush(SyncSender<()>),
}

/// Writes events on its own thread, in batches; cheap to call from the engine.
#[derive(Debug)]
pub struct TraceWriter {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<Result<(), TraceError>>>,
    path: PathBuf,
}

/// Events the writer may hold before the engine waits for it.
const CAPACITY: usize = 65_536;

impl TraceWriter {
    /// Starts a writer for the store at `path` (created if needed).
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let conn = connect(path, true)?;
        let (tx, rx) = sync_channel(CAPACITY);
        let p = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("agentry-trace".into())
            .spawn(move || write_loop(conn, &p, rx))
            .map_err(TraceError::Spawn)?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one event (an ephemeral one, a text delta, is not kept). Blocks only if the
    /// writer is 65,536 events behind.
    pub fn record(&self, event: &TraceEvent) {
        if event.kind.is_ephemeral() {
            return;
        }
        if let Some(tx) = &self.tx {
            match tx.try_send(Msg::Event(Box::new(event.clone()))) {
                Ok(()) => {}
                Err(TrySendError::Full(msg)) => {
                    let _ = tx.send(msg);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Waits until every queued event is committed.
    pub fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done_tx, done_rx) = sync_channel(1);
            if tx.send(Msg::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }

    /// Commits what is queued and stops the writer, reporting a write failure if one happened.
    pub fn close(mut self) -> Result<(), TraceError> {
        self.tx.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(TraceError::WriterPanicked),
            None => Ok(()),
        }
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn write_loop(mut conn: Connection, path: &Path, rx: Receiver<Msg>) -> Result<(), TraceError> {
    let writer = process::current();
    let writer = writer.as_deref();
    let mut batch: Vec<Box<TraceEvent>> = Vec::with_capacity(1024);
    let mut waiters: Vec<SyncSender<()>> = Vec::new();
    loop {
        let first = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for msg in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(4096))
        {
            match msg {
                Msg::Event(e) => batch.push(e),
                Msg::Flush(w) => waiters.push(w),
            }
        }
        if !batch.is_empty() {
            commit(&mut conn, path, &batch, writer)?;
            batch.clear();
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Event(e) = msg {
            batch.push(e);
        }
    }
    commit(&mut conn, path, &batch, writer)
}

fn commit(
    conn: &mut Connection,
    path: &Path,
    batch: &[Box<TraceEvent>],
    writer: Option<&str>,
) -> Result<(), TraceError> {
    if batch.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction().map_err(sqlite(path))?;
    write_events(&tx, path, batch, writer)?;
    tx.commit().map_err(sqlite(path))
}

/// Writes `batch` in `tx`, keeping each run's summary row up to date; `writer` names the
/// process that runs the runs it starts.
fn write_events(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    batch: &[Box<TraceEvent>],
    writer: Option<&str>,
) -> Result<(), TraceError> {
    {
        let mut insert = tx
            .prepare_cached("INSERT OR REPLACE INTO events (run_id, seq, at_us, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(sqlite(path))?;
        for e in batch {
            let body = serde_json::to_string(&e.kind).unwrap_or_else(|_| "{}".into());
            insert
                .execute(params![
                    e.run_id,
                    e.seq as i64,
                    e.at_us as i64,
                    e.kind.name(),
                    body
                ])
                .map_err(sqlite(path))?;
            match &e.kind {
                TraceKind::RunStarted {
                    task, model, mode, ..
                } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO runs (id, started_at_ms, task, model, mode, status, writer) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
                        params![e.run_id, now_ms() - (e.at_us / 1000) as i64, task, model, mode, writer],
                    )
                    .map_err(sqlite(path))?;
                }
                TraceKind::RunFinished {
                    status,
                    answer,
                    reason,
                    calls,
                    prompt_tokens,
                    completion_tokens,
                } => {
                    tx.execute(
                        "UPDATE runs SET status = ?2, answer = ?3, reason = ?4, calls = ?5, tokens = ?6, wall_us = ?7 WHERE id = ?1",
                        params![
                            e.run_id,
                            status.as_str(),
                            answer,
                            reason,
                            *calls as i64,
                            (*prompt_tokens + *completion_tokens) as i64,
                            e.at_us as i64
                        ],
                    )
                    .map_err(sqlite(path))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}
