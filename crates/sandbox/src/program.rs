//! What to run ([`Program`]) and what came of it ([`Outcome`]).

use std::{path::PathBuf, time::Duration};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{DEFAULT_TIMEOUT, LayerStatus};

/// One program to run: argv (never a shell string), working directory, environment, input,
/// deadline and output caps.
#[derive(Debug)]
pub struct Program {
    /// The program and its arguments, each one argv element.
    pub argv: Vec<String>,
    /// Working directory; the workspace when `None`.
    pub cwd: Option<PathBuf>,
    /// The whole environment it sees (nothing is inherited but what is listed here).
    pub env: Vec<(String, String)>,
    /// Bytes on its standard input (then end of file).
    pub stdin: Vec<u8>,
    /// Past this, the program and everything it started are killed.
    pub timeout: Duration,
    /// Most bytes of stdout, and of stderr, kept; the rest is counted.
    pub output_cap: usize,
    /// Past this many bytes of stdout and stderr together, it is killed.
    pub output_limit: u64,
    /// Cancelling it kills the program and everything it started.
    pub cancel: CancellationToken,
    /// Extra pipes: the child sees each as file descriptor 3, 4, … (a local RPC channel).
    pub fds: Vec<std::os::fd::OwnedFd>,
}

impl Program {
    /// `argv` with the defaults: no input, `PATH`, `HOME` (the workspace) and `LANG` set, a
    /// 60-second deadline, 64 KiB of each output kept, killed past 64 MiB of output.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            cwd: None,
            env: vec![
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
                ("LANG".into(), "C.UTF-8".into()),
            ],
            stdin: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            output_cap: 64 * 1024,
            output_limit: 64 * 1024 * 1024,
            cancel: CancellationToken::new(),
            fds: Vec::new(),
        }
    }

    /// Sets the deadline.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets one environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Sets the standard input.
    #[must_use]
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets the cap on kept output.
    #[must_use]
    pub fn output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes;
        self
    }

    /// Kills it when cancelled.
    #[must_use]
    pub fn cancel_on(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }
}

/// How the program's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it (its number).
    Signal(i32),
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// The main process exited (or was killed by a limit of its own: CPU, memory, file size).
    Exited,
    /// The deadline passed; everything was killed.
    TimedOut,
    /// It was cancelled; everything was killed.
    Cancelled,
    /// It wrote more than the output limit; everything was killed.
    OutputLimit,
}

/// What came of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// How the main process ended.
    pub exit: Exit,
    /// Why the run ended.
    pub ended: Ended,
    /// Standard output, up to the cap.
    pub stdout: Vec<u8>,
    /// Standard error, up to the cap.
    pub stderr: Vec<u8>,
    /// Bytes of stdout past the cap, not kept.
    pub stdout_cut: u64,
    /// Bytes of stderr past the cap, not kept.
    pub stderr_cut: u64,
    /// Wall time.
    pub wall: Duration,
    /// Peak memory of all its processes (with a cgroup).
    pub peak_memory: Option<u64>,
    /// Whether the memory limit was reached and the OOM killer acted.
    pub oom_killed: bool,
    /// Whether a fork failed because the process limit was reached.
    pub process_limit_hit: bool,
    /// Processes still running when the main one ended, killed then.
    pub killed_leftovers: usize,
    /// Each layer and what it enforced.
    pub layers: Vec<LayerStatus>,
}

impl Outcome {
    /// Whether it exited with status 0 on its own.
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited && self.exit == Exit::Code(0)
    }

    /// A sentence on a limit that ended it, if one did: "the memory limit (256 MiB) was
    /// reached", "the CPU limit (2 s) was reached"…
    pub fn limit_reached(&self, limits: &crate::Limits) -> Option<String> {
        const SIGKILL: i32 = 9;
        const SIGXCPU: i32 = 24;
        const SIGXFSZ: i32 = 25;
        match (self.ended, self.exit) {
            (Ended::TimedOut, _) => return Some("the deadline passed".into()),
            (Ended::OutputLimit, _) => return Some("it wrote more output than allowed".into()),
            (Ended::Cancelled, _) => return Some("the call was cancelled".into()),
            _ => {}
        }
        if self.oom_killed {
            let limit = limits.memory.map(crate::bytes).unwrap_or_default();
            return Some(format!("the memory limit ({limit}) was reached"));
        }
        match self.exit {
            Exit::Signal(SIGXCPU) => Some(format!(
                "the CPU limit ({} s) was reached",
                limits.cpu_seconds.unwrap_or_default()
            )),
            Exit::Signal(SIGKILL)
                if limits.cpu_seconds.is_some_and(|s| self.wall.as_secs() >= s) =>
            {
                Some(format!(
                    "the CPU limit ({} s) was reached",
                    limits.cpu_seconds.unwrap_or_default()
                ))
            }
            Exit::Signal(SIGXFSZ) => Some(format!(
                "the file size limit ({}) was reached",
                limits.file_size.map(crate::bytes).unwrap_or_default()
            )),
            _ if self.process_limit_hit => Some(format!(
                "the process limit ({}) was reached",
                limits.processes.unwrap_or_default()
            )),
            _ => None,
        }
    }
}
