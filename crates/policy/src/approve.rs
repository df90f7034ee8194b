//! Approvals: a call the policy marks `ask` waits for a human ([`Approval`], [`Approver`]);
//! [`ApprovalQueue`] holds such calls as files in a directory until `agentry approve`
//! decides them.
//!
//! A queued approval's id is agentry's, never the model's: `a` and the first 16 hex digits
//! of the SHA-256 of the run id, the call id, the tool and the canonical arguments
//! ([`Approval::id`]). Two runs whose calls share an id (`call_00000001`) therefore wait
//! side by side, and the id is always a safe file name. A decision names the SHA-256 of the
//! arguments the human was shown ([`arguments_hash`]); the waiting call accepts only a
//! decision whose hash is its own, so approving what one saw never lets other arguments
//! run. Files are written under a temporary name and renamed, so a reader never sees half
//! of one, and are readable by their owner only (0600, in a directory agentry makes 0700;
//! a directory that already exists keeps its mode). Library code prints nothing: what a
//! waiting queue has to say ([`QueueNotice`]) goes to the callback given to
//! [`ApprovalQueue::on_notice`].
//!
//! # Example
//!
//! ```
//! use agentry_core::ToolCall;
//! use agentry_policy::{Approval, arguments_hash};
//! use serde_json::json;
//!
//! let call = ToolCall::new("call_00000001", "transfer", json!({"to": "bob", "amount": 5000}));
//! let mine = Approval::new("r1", call.clone(), None, "over 1000");
//! let theirs = Approval::new("r2", call, None, "over 1000");
//! // The same call id in two runs: two approvals.
//! assert_ne!(mine.id(), theirs.id());
//! assert!(agentry_policy::is_approval_id(&mine.id()));
//! // The order of the keys does not change what the arguments are.
//! assert_eq!(mine.arguments_hash(), arguments_hash(&json!({"amount": 5000, "to": "bob"})));
//! ```

use std::{
    fmt,
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use agentry_core::ToolCall;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A call waiting for a human's decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// The run the call belongs to; with the call's id, what tells it from every other call.
    pub run_id: String,
    /// The call, with the arguments it would run with.
    pub call: ToolCall,
    /// The rule that asked, if one did.
    pub rule: Option<String>,
    /// Why it needs approval.
    pub reason: String,
}

impl Approval {
    /// An approval of `call`, made in run `run_id`.
    pub fn new(
        run_id: impl Into<String>,
        call: ToolCall,
        rule: Option<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            call,
            rule,
            reason: reason.into(),
        }
    }

    /// The id agentry gives it: `a` and the first 16 hex digits of the SHA-256 of the run
    /// id, the call id, the tool and the canonical arguments.
    pub fn id(&self) -> String {
        let key = Value::Array(vec![
            Value::String(self.run_id.clone()),
            Value::String(self.call.id.clone()),
            Value::String(self.call.name.clone()),
            canonical(&self.call.arguments),
        ]);
        let digest = hex(&Sha256::digest(key.to_string().as_bytes()));
        format!("a{}", &digest[..16])
    }

    /// [`arguments_hash`] of its arguments.
    pub fn arguments_hash(&self) -> String {
        arguments_hash(&self.call.arguments)
    }
}

/// SHA-256, as 64 hex digits, of `arguments` in canonical JSON (object keys sorted, no
/// spaces): what a decision names to say which arguments it was made on.
pub fn arguments_hash(arguments: &Value) -> String {
    hex(&Sha256::digest(canonical(arguments).to_string().as_bytes()))
}

/// Whether `id` has the shape of an approval id (`a` and 16 lowercase hex digits), the
/// only names the queue reads or writes.
pub fn is_approval_id(id: &str) -> bool {
    id.len() == 17
        && id.starts_with('a')
        && id[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Someone who approves or refuses calls the policy marks `ask` (a person at a terminal,
/// an approval queue).
pub trait Approver: Send + Sync + fmt::Debug {
    /// `true` to let the call run.
    fn approve<'a>(&'a self, request: &'a Approval) -> BoxFuture<'a, bool>;
}

/// A call waiting in an [`ApprovalQueue`], as its file holds it: what `agentry approve`
/// shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Its approval id (the file is `ID.json`).
    pub id: String,
    /// The run that made the call.
    pub run_id: String,
    /// The call's id within its run (the model's; shown, never used as a name).
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// The arguments it would run with.
    pub arguments: Value,
    /// [`arguments_hash`] of the arguments, as the waiting call computed it.
    pub arguments_sha256: String,
    /// The rule that asked, if one did.
    pub rule: Option<String>,
    /// Why it needs approval.
    pub reason: String,
    /// When it began to wait, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// A decision's file: which call, yes or no, and the arguments it was made on.
#[derive(Debug, Serialize, Deserialize)]
struct Decision {
    id: String,
    approve: bool,
    arguments_sha256: String,
}

/// What a waiting [`ApprovalQueue`] has to tell its user (the CLI prints it).
#[derive(Debug, Clone, PartialEq)]
pub enum QueueNotice {
    /// A call waits: `agentry approve ID` (or `--deny`) decides it.
    Waiting(Box<Pending>),
    /// A decision on call `id` was refused (it named other arguments, or was unreadable);
    /// the call waits on.
    Refused {
        /// The approval id.
        id: String,
        /// Why.
        why: String,
    },
    /// Call `id` could not be queued, and is refused.
    Failed {
        /// The approval id.
        id: String,
        /// Why.
        why: String,
    },
}

/// Why the queue cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Not the shape of an approval id.
    #[error(
        "`{0}` is not an approval id (one looks like a0123456789abcdef; `agentry approve` lists them)"
    )]
    BadId(String),
    /// No call with this id is waiting.
    #[error("no call `{id}` is waiting for approval in {dir} (`agentry approve` lists them)")]
    NotWaiting {
        /// The id asked for.
        id: String,
        /// The queue's directory.
        dir: String,
    },
    /// A decision named other arguments than the waiting call's.
    #[error(
        "the call `{id}` waits with other arguments than the ones decided on (sha256 {expected}, not {given}); nothing was decided"
    )]
    Mismatch {
        /// The approval id.
        id: String,
        /// The waiting call's hash.
        expected: String,
        /// The decision's hash.
        given: String,
    },
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A file in the queue is not one agentry wrote.
    #[error("{path}: {why}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
}

impl QueueError {
    fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

type Notify = Arc<dyn Fn(&QueueNotice) + Send + Sync>;

/// Holds calls as files in a directory until `agentry approve` decides them: `ID.json`
/// while a call waits, `ID.decision` once someone decided.
#[derive(Clone)]
pub struct ApprovalQueue {
    dir: PathBuf,
    poll: Duration,
    notify: Option<Notify>,
}

impl fmt::Debug for ApprovalQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApprovalQueue")
            .field("dir", &self.dir)
            .field("poll", &self.poll)
            .finish()
    }
}

impl ApprovalQueue {
    /// A queue in `dir` (created, 0700, when the first call waits).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            poll: Duration::from_millis(100),
            notify: None,
        }
    }

    /// How often a waiting call looks for its decision (default 100 ms).
    #[must_use]
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// Where what the queue has to say goes (a call waits, a decision is refused).
    #[must_use]
    pub fn on_notice(mut self, notify: impl Fn(&QueueNotice) + Send + Sync + 'static) -> Self {
        self.notify = Some(Arc::new(notify));
        self
    }

    /// The queue's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every call waiting, the longest-waiting first; none when the directory does not
    /// exist.
    pub fn list(&self) -> Result<Vec<Pending>, QueueError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.dir, e)),
        };
        let mut waiting = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let is_pending = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .is_some_and(is_approval_id);
            if !is_pending {
                continue;
            }
            match read_pending(&path) {
                Ok(pending) => waiting.push(pending),
                // Decided (and removed) since the directory was read.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        waiting.sort_by(|a, b| (a.since_ms, &a.id).cmp(&(b.since_ms, &b.id)));
        Ok(waiting)
    }

    /// The call waiting under `id`.
    pub fn get(&self, id: &str) -> Result<Pending, QueueError> {
        if !is_approval_id(id) {
            return Err(QueueError::BadId(id.to_owned()));
        }
        match read_pending(&self.file(id, "json")) {
            Err(e) if e.is_not_found() => Err(QueueError::NotWaiting {
                id: id.to_owned(),
                dir: self.dir.display().to_string(),
            }),
            other => other,
        }
    }

    /// Decides the call waiting under `id`: approves it (or refuses it), on the arguments
    /// whose [`arguments_hash`] is `arguments_sha256` (those the human was shown). Returns
    /// the call decided; a hash other than the waiting call's decides nothing.
    pub fn decide(
        &self,
        id: &str,
        approve: bool,
        arguments_sha256: &str,
    ) -> Result<Pending, QueueError> {
        let pending = self.get(id)?;
        if pending.arguments_sha256 != arguments_sha256 {
            return Err(QueueError::Mismatch {
                id: id.to_owned(),
                expected: pending.arguments_sha256,
                given: arguments_sha256.to_owned(),
            });
        }
        self.write_decision(id, approve, arguments_sha256)?;
        Ok(pending)
    }

    fn file(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    fn notify(&self, notice: &QueueNotice) {
        if let Some(notify) = &self.notify {
            notify(notice);
        }
    }

    fn write_decision(
        &self,
        id: &str,
        approve: bool,
        arguments_sha256: &str,
    ) -> Result<(), QueueError> {
        let decision = Decision {
            id: id.to_owned(),
            approve,
            arguments_sha256: arguments_sha256.to_owned(),
        };
        let body = serde_json::to_vec_pretty(&decision).map_err(|e| QueueError::Corrupt {
            path: self.file(id, "decision").display().to_string(),
            why: e.to_string(),
        })?;
        write_private(&self.dir, &format!("{id}.decision"), &body)
    }

    /// Writes `request` into the queue.
    fn enqueue(&self, request: &Approval) -> Result<Pending, QueueError> {
        let pending = Pending {
            id: request.id(),
            run_id: request.run_id.clone(),
            call_id: request.call.id.clone(),
            tool: request.call.name.clone(),
            arguments: request.call.arguments.clone(),
            arguments_sha256: request.arguments_hash(),
            rule: request.rule.clone(),
            reason: request.reason.clone(),
            since_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        create_private_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        // A decision written before the call waited was not made on it.
        let _ = std::fs::remove_file(self.file(&pending.id, "decision"));
        let body = serde_json::to_vec_pretty(&pending).map_err(|e| QueueError::Corrupt {
            path: self.file(&pending.id, "json").display().to_string(),
            why: e.to_string(),
        })?;
        write_private(&self.dir, &format!("{}.json", pending.id), &body)?;
        Ok(pending)
    }

    /// The decision on `pending`, if one was written (its file is then removed): whether
    /// it approves, or why it is refused.
    fn take_decision(&self, pending: &Pending) -> Option<Result<bool, QueueNotice>> {
        let path = self.file(&pending.id, "decision");
        let text = std::fs::read(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        let refused = |why: String| QueueNotice::Refused {
            id: pending.id.clone(),
            why,
        };
        Some(match serde_json::from_slice::<Decision>(&text) {
            Err(e) => Err(refused(format!("the decision is not readable: {e}"))),
            Ok(d) if d.id != pending.id || d.arguments_sha256 != pending.arguments_sha256 => {
                Err(refused(format!(
                    "the decision was made on arguments with sha256 {}, but the call waits with {}",
                    d.arguments_sha256, pending.arguments_sha256
                )))
            }
            Ok(d) => Ok(d.approve),
        })
    }
}

impl Approver for ApprovalQueue {
    fn approve<'a>(&'a self, request: &'a Approval) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let pending = match self.enqueue(request) {
                Ok(pending) => pending,
                Err(e) => {
                    self.notify(&QueueNotice::Failed {
                        id: request.id(),
                        why: e.to_string(),
                    });
                    return false;
                }
            };
            // However the wait ends (a decision, or the run cancelled and this future
            // dropped), the call leaves the queue.
            let _leave = Leave([
                self.file(&pending.id, "json"),
                self.file(&pending.id, "decision"),
            ]);
            self.notify(&QueueNotice::Waiting(Box::new(pending.clone())));
            loop {
                match self.take_decision(&pending) {
                    Some(Ok(approve)) => return approve,
                    Some(Err(notice)) => self.notify(&notice),
                    None => {}
                }
                tokio::time::sleep(self.poll).await;
            }
        })
    }
}

/// Removes its files when dropped.
struct Leave([PathBuf; 2]);

impl Drop for Leave {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn io_error(path: &Path, source: io::Error) -> QueueError {
    QueueError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read_pending(path: &Path) -> Result<Pending, QueueError> {
    let text = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let pending: Pending = serde_json::from_slice(&text).map_err(|e| QueueError::Corrupt {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    let named = path.file_stem().and_then(|s| s.to_str());
    if named != Some(pending.id.as_str()) {
        return Err(QueueError::Corrupt {
            path: path.display().to_string(),
            why: format!("it holds the approval `{}`", pending.id),
        });
    }
    Ok(pending)
}

/// Object keys sorted, at every depth.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `dir/name` through a temporary file renamed into place, so a reader
/// sees the whole file or none; the file is its owner's only (0600).
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), QueueError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let target = dir.join(name);
    let temp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, &target));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        io_error(&target, e)
    })
}

/// Creates `dir` and whichever of its parents are missing, each 0700; leaves a directory
/// that exists as it is.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_private_dir(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[path = "approve_tests.rs"]
mod tests;
