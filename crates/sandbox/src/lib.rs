//! Running programs under limits: a [`Sandbox`] runs a [`Program`] in layers, each of which
//! can be checked ([`Sandbox::check`]) and is reported with every run ([`Outcome::layers`]):
//!
//! - [`Layer::ProcessGroup`]: a new session and process group, killed whole on timeout,
//!   cancellation or exit of the main process, so nothing it started outlives the call;
//! - [`Layer::Rlimits`]: CPU seconds, address space, file size, open files, no core dumps;
//! - [`Layer::Cgroup`]: one cgroup per run for memory, process count and CPU share (cgroup
//!   v2 where the controller is there and delegated, v1 otherwise); its peak memory and OOM
//!   kills are read back, and every process in it is killed at the end;
//! - [`Layer::Capabilities`]: every capability dropped, so a program run as root cannot
//!   raise its limits, mount, or load modules;
//! - [`Layer::Landlock`]: the filesystem read-only where allowed (system directories and
//!   the paths the policy names), writable only in the workspace, invisible elsewhere
//!   (`~/.ssh`, `/etc/shadow`); TCP bind and connect denied without the network; signals
//!   to processes outside the sandbox denied;
//! - [`Layer::Seccomp`]: sockets other than Unix-domain ones denied without the network;
//!   `ptrace`, namespaces, `io_uring`, `bpf`, `setsid`/`setpgid` denied always.
//!
//! A layer that does not work on this machine makes the run fail before the program
//! starts, unless [`Policy::may_skip`] names it: the sandbox fails closed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentry_sandbox::SandboxError> {
//! use agentry_sandbox::{Policy, Program, Sandbox};
//!
//! let sandbox = Sandbox::new(Policy::new("/tmp/work"))?;
//! let out = sandbox.run(Program::new(["echo", "hi"])).await?;
//! assert_eq!(out.stdout, b"hi\n");
//! # Ok(()) }
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::{collections::BTreeSet, fmt, path::PathBuf, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

#[cfg(target_os = "linux")]
mod linux;
mod program;

#[cfg(target_os = "linux")]
pub use linux::Sandbox;
pub use program::{Ended, Exit, Outcome, Program};

/// One of the sandbox's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// A new process group, killed whole.
    ProcessGroup,
    /// Resource limits (`setrlimit`).
    Rlimits,
    /// A cgroup for memory, processes and CPU.
    Cgroup,
    /// Every capability dropped.
    Capabilities,
    /// Landlock filesystem (and TCP, signal) rules.
    Landlock,
    /// A seccomp filter on system calls.
    Seccomp,
}

impl Layer {
    /// Every layer, in the order they are applied.
    pub const ALL: [Layer; 6] = [
        Layer::ProcessGroup,
        Layer::Rlimits,
        Layer::Cgroup,
        Layer::Capabilities,
        Layer::Landlock,
        Layer::Seccomp,
    ];

    /// Its name in configuration and reports (`process_group`, `rlimits`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProcessGroup => "process_group",
            Self::Rlimits => "rlimits",
            Self::Cgroup => "cgroup",
            Self::Capabilities => "capabilities",
            Self::Landlock => "landlock",
            Self::Seccomp => "seccomp",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Layer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Layer::ALL.iter().map(|l| l.as_str()).collect();
                format!(
                    "unknown sandbox layer `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Whether a layer works here, and what it does or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStatus {
    /// The layer.
    pub layer: Layer,
    /// Whether it is in force (in a check: whether it can be).
    pub active: bool,
    /// What it enforces, or why it cannot.
    pub detail: String,
}

/// Resource limits of one run; `None` leaves a resource unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// CPU time, in seconds (`RLIMIT_CPU`): past it the program gets `SIGXCPU`, then `SIGKILL`.
    pub cpu_seconds: Option<u64>,
    /// Memory of all its processes together, in bytes (cgroup; the OOM killer acts past it).
    pub memory: Option<u64>,
    /// Virtual address space of each process, in bytes (`RLIMIT_AS`).
    pub address_space: Option<u64>,
    /// Processes and threads alive at once (cgroup `pids.max`).
    pub processes: Option<u64>,
    /// Largest file it may write, in bytes (`RLIMIT_FSIZE`).
    pub file_size: Option<u64>,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
    /// CPU share, in cores (cgroup CPU quota): `0.5` is half of one core.
    pub cpus: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_seconds: Some(60),
            memory: Some(1 << 30),
            address_space: None,
            processes: Some(256),
            file_size: Some(1 << 30),
            open_files: Some(1024),
            cpus: None,
        }
    }
}

/// What a sandboxed program may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The one directory it may write (besides `/dev/null`); its default working directory.
    pub workspace: PathBuf,
    /// Paths it may read and execute, besides the system's (`/usr`, `/bin`, `/lib*`, parts
    /// of `/etc`, `/proc`, `/dev/null`, `/dev/urandom`…).
    pub read: Vec<PathBuf>,
    /// Paths besides the workspace it may write.
    pub write: Vec<PathBuf>,
    /// Whether it may open network sockets (TCP, UDP); Unix-domain sockets are always allowed.
    pub network: bool,
    /// Limits on its resources.
    pub limits: Limits,
    /// Layers that may be missing on this machine; any other missing layer fails the run.
    pub may_skip: BTreeSet<Layer>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::new(std::env::temp_dir().join("agentry-workspace"))
    }
}

impl Policy {
    /// The default policy with `workspace` as its writable directory: no network, the
    /// default limits, every layer required.
    pub fn new(workspace: impl Into<PathBuf>) -> Self {
        Self {
            workspace: workspace.into(),
            read: Vec::new(),
            write: Vec::new(),
            network: false,
            limits: Limits::default(),
            may_skip: BTreeSet::new(),
        }
    }

    /// Allows the network.
    #[must_use]
    pub fn network(mut self, yes: bool) -> Self {
        self.network = yes;
        self
    }

    /// Sets the limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds a path it may read (and execute).
    #[must_use]
    pub fn read(mut self, path: impl Into<PathBuf>) -> Self {
        self.read.push(path.into());
        self
    }

    /// Lets `layer` be missing on this machine.
    #[must_use]
    pub fn may_skip(mut self, layer: Layer) -> Self {
        self.may_skip.insert(layer);
        self
    }
}

/// Why a program could not be run in the sandbox (it did not start).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A required layer does not work on this machine.
    #[error(
        "the sandbox's {layer} layer is not available here: {why} (allow it to be missing with may_skip = [\"{layer}\"], or run `agentry sandbox check`)"
    )]
    Missing {
        /// The layer.
        layer: Layer,
        /// Why it is not available.
        why: String,
    },
    /// The program's description is not usable (an empty argv, a NUL byte).
    #[error("the program cannot be run: {0}")]
    Program(String),
    /// The program could not be started.
    #[error("`{program}` could not be started: {why}")]
    Spawn {
        /// The program (argv\[0\]).
        program: String,
        /// Why.
        why: String,
    },
    /// The sandbox could not be set up (the workspace, a cgroup).
    #[error("the sandbox could not be set up: {0}")]
    Setup(String),
}

/// A stand-in on systems other than Linux: every run fails, saying why.
#[cfg(not(target_os = "linux"))]
#[derive(Debug, Clone)]
pub struct Sandbox {
    policy: Policy,
}

#[cfg(not(target_os = "linux"))]
impl Sandbox {
    /// A sandbox with `policy`.
    pub fn new(policy: Policy) -> Result<Self, SandboxError> {
        Ok(Self { policy })
    }

    /// Its policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Every layer, unavailable.
    pub fn check(&self) -> Vec<LayerStatus> {
        Layer::ALL
            .into_iter()
            .map(|layer| LayerStatus {
                layer,
                active: false,
                detail: "the sandbox needs Linux".into(),
            })
            .collect()
    }

    /// Fails: the sandbox needs Linux.
    pub async fn run(&self, program: Program) -> Result<Outcome, SandboxError> {
        let _ = program;
        Err(SandboxError::Missing {
            layer: Layer::ProcessGroup,
            why: "the sandbox needs Linux".into(),
        })
    }
}

/// `n` bytes as "256 MiB", "1.5 GiB", "512 B".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A default used by [`Program`]: how long a program may run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
