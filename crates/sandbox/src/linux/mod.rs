//! The sandbox on Linux.

mod cgroup;
mod child;
mod rules;

use std::{
    os::unix::{fs::DirBuilderExt, process::ExitStatusExt},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use rustix::process::Resource;
use seccompiler::BpfProgram;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::{
    Ended, Exit, Layer, LayerStatus, Outcome, Policy, Program, SandboxError,
    linux::cgroup::{Hierarchies, RunGroup},
};

/// Runs programs under a [`Policy`], every layer it requires in force.
#[derive(Debug, Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Policy,
    /// Paths besides the policy's the program may read (its interpreter's prefix, say).
    extra_read: Vec<PathBuf>,
    layers: Vec<LayerStatus>,
    seccomp: Option<Arc<Vec<BpfProgram>>>,
    drop_caps: bool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("policy", &self.policy)
            .field("layers", &self.layers)
            .finish()
    }
}

impl Sandbox {
    /// A sandbox for `policy`; makes its workspace (mode 0700) if it is not there. Fails
    /// when a layer the policy requires does not work here.
    pub fn new(policy: Policy) -> Result<Self, SandboxError> {
        Self::with_read(policy, Vec::new())
    }

    /// A sandbox for `policy` that may also read (and execute) `extra_read`.
    pub fn with_read(policy: Policy, extra_read: Vec<PathBuf>) -> Result<Self, SandboxError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&policy.workspace)
            .map_err(|e| {
                SandboxError::Setup(format!(
                    "cannot make the workspace {}: {e}",
                    policy.workspace.display()
                ))
            })?;
        let workspace = policy.workspace.canonicalize().map_err(|e| {
            SandboxError::Setup(format!("the workspace {}: {e}", policy.workspace.display()))
        })?;
        let policy = Policy {
            workspace,
            ..policy
        };
        let (layers, seccomp) = probe(&policy, &extra_read);
        for status in &layers {
            if !status.active && !policy.may_skip.contains(&status.layer) {
                return Err(SandboxError::Missing {
                    layer: status.layer,
                    why: status.detail.clone(),
                });
            }
        }
        let active = |l: Layer| layers.iter().any(|s| s.layer == l && s.active);
        let drop_caps = active(Layer::Capabilities) && holds_capabilities();
        let seccomp = seccomp.filter(|_| active(Layer::Seccomp));
        Ok(Self {
            inner: Arc::new(Inner {
                policy,
                extra_read,
                layers,
                seccomp,
                drop_caps,
            }),
        })
    }

    /// Its policy (the workspace made absolute).
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Each layer: whether it is in force, and what it enforces or why not.
    pub fn layers(&self) -> &[LayerStatus] {
        &self.inner.layers
    }

    /// Which layers would work for `policy` on this machine, and why not; makes nothing.
    pub fn check(policy: &Policy) -> Vec<LayerStatus> {
        probe(policy, &[]).0
    }

    fn active(&self, layer: Layer) -> bool {
        self.inner
            .layers
            .iter()
            .any(|s| s.layer == layer && s.active)
    }

    /// Runs `program` to its end (or its deadline, or cancellation), then kills everything
    /// it started. `Err` only when it could not start.
    pub async fn run(&self, mut program: Program) -> Result<Outcome, SandboxError> {
        let policy = &self.inner.policy;
        let Some(name) = program.argv.first().cloned() else {
            return Err(SandboxError::Program("the argv is empty".into()));
        };
        if program.argv.iter().any(|a| a.contains('\0')) {
            return Err(SandboxError::Program("an argument holds a NUL byte".into()));
        }
        let started = Instant::now();
        let group = if self.active(Layer::Cgroup) {
            Some(RunGroup::create(&policy.limits).map_err(SandboxError::Setup)?)
        } else {
            None
        };
        let cgroup_procs = match &group {
            Some(g) => g.procs_files().map_err(SandboxError::Setup)?,
            None => Vec::new(),
        };
        let landlock = if self.active(Layer::Landlock) {
            Some(
                rules::landlock(policy, &self.inner.extra_read)
                    .map_err(|e| SandboxError::Setup(format!("Landlock: {e}")))?
                    .ruleset,
            )
        } else {
            None
        };
        let mut cmd = std::process::Command::new(&name);
        cmd.args(&program.argv[1..])
            .env_clear()
            .envs(program.env.iter().map(|(k, v)| (k, v)))
            .current_dir(program.cwd.as_ref().unwrap_or(&policy.workspace))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !program.env.iter().any(|(k, _)| k == "HOME") {
            cmd.env("HOME", &policy.workspace);
        }
        if !program.env.iter().any(|(k, _)| k == "TMPDIR") {
            cmd.env("TMPDIR", &policy.workspace);
        }
        child::install(
            &mut cmd,
            child::Setup {
                cgroup_procs,
                fds: std::mem::take(&mut program.fds),
                rlimits: if self.active(Layer::Rlimits) {
                    rlimits(&policy.limits)
                } else {
                    Vec::new()
                },
                drop_caps: self.inner.drop_caps,
                landlock,
                seccomp: self.inner.seccomp.clone(),
            },
        );
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        let spawned = cmd.spawn();
        // The child's ends of the extra pipes were moved into the setup and are closed
        // with `cmd` now, so the parent sees end of file when the child is gone.
        drop(cmd);
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                if let Some(g) = group {
                    g.remove().await;
                }
                return Err(match child::decode(&e) {
                    Some((layer, e)) => SandboxError::Missing {
                        layer,
                        why: format!("applying it in the child failed: {e}"),
                    },
                    None => SandboxError::Spawn {
                        program: name,
                        why: e.to_string(),
                    },
                });
            }
        };
        let pid = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32));

        let written = Arc::new(AtomicU64::new(0));
        let limit_hit = Arc::new(tokio::sync::Notify::new());
        let reader = |pipe: Option<Box<dyn AsyncRead + Unpin + Send>>| {
            let written = Arc::clone(&written);
            let limit_hit = Arc::clone(&limit_hit);
            let (cap, limit) = (program.output_cap, program.output_limit);
            tokio::spawn(async move {
                let mut kept = Vec::new();
                let mut cut = 0u64;
                let Some(mut pipe) = pipe else {
                    return (kept, cut);
                };
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match pipe.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = cap.saturating_sub(kept.len()).min(n);
                            kept.extend_from_slice(&buf[..room]);
                            cut += (n - room) as u64;
                            if written.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > limit {
                                limit_hit.notify_one();
                            }
                        }
                    }
                }
                (kept, cut)
            })
        };
        let out = reader(child.stdout.take().map(|p| Box::new(p) as _));
        let err = reader(child.stderr.take().map(|p| Box::new(p) as _));
        if let Some(mut stdin) = child.stdin.take() {
            let input = std::mem::take(&mut program.stdin);
            tokio::spawn(async move {
                let _ = stdin.write_all(&input).await;
            });
        }

        let kill_group = || {
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        };
        let (status, ended) = tokio::select! {
            status = child.wait() => (status, Ended::Exited),
            () = tokio::time::sleep(program.timeout) => { kill_group(); (child.wait().await, Ended::TimedOut) }
            () = program.cancel.cancelled() => { kill_group(); (child.wait().await, Ended::Cancelled) }
            () = limit_hit.notified() => { kill_group(); (child.wait().await, Ended::OutputLimit) }
        };
        // Whatever it started dies with it: its process group, then what is left in its
        // cgroup (a process that left the group).
        let mut leftovers = match pid {
            Some(pid) if rustix::process::test_kill_process_group(pid).is_ok() => 1,
            _ => 0,
        };
        kill_group();
        if let Some(g) = &group {
            leftovers = leftovers.max(g.kill_all().await);
        }
        let status = status.map_err(|e| SandboxError::Spawn {
            program: name.clone(),
            why: format!("waiting for it failed: {e}"),
        })?;
        let exit = match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(-1),
        };
        // The pipes close once every process holding them is gone; one that escaped both
        // the group and the cgroup (without those layers) is not waited for.
        let grace = std::time::Duration::from_millis(500);
        let collect = |h: tokio::task::JoinHandle<(Vec<u8>, u64)>| async move {
            let abort = h.abort_handle();
            match tokio::time::timeout(grace, h).await {
                Ok(Ok(v)) => v,
                _ => {
                    abort.abort();
                    (Vec::new(), 0)
                }
            }
        };
        let ((stdout, stdout_cut), (stderr, stderr_cut)) = tokio::join!(collect(out), collect(err));
        let (peak_memory, oom_killed, process_limit_hit) = match &group {
            Some(g) => (g.peak_memory(), g.oom_killed(), g.process_limit_hit()),
            None => (None, false, false),
        };
        if let Some(g) = group {
            g.remove().await;
        }
        Ok(Outcome {
            exit,
            ended,
            stdout,
            stderr,
            stdout_cut,
            stderr_cut,
            wall: started.elapsed(),
            peak_memory,
            oom_killed,
            process_limit_hit,
            killed_leftovers: leftovers,
            layers: self.inner.layers.clone(),
        })
    }
}

/// The rlimits of `limits`: (resource, soft, hard). CPU gets one second between the soft
/// limit (`SIGXCPU`) and the hard one (`SIGKILL`).
fn rlimits(limits: &crate::Limits) -> Vec<(Resource, u64, u64)> {
    let mut out = vec![(Resource::Core, 0, 0)];
    if let Some(s) = limits.cpu_seconds {
        out.push((Resource::Cpu, s, s + 1));
    }
    if let Some(b) = limits.address_space {
        out.push((Resource::As, b, b));
    }
    if let Some(b) = limits.file_size {
        out.push((Resource::Fsize, b, b));
    }
    if let Some(n) = limits.open_files {
        out.push((Resource::Nofile, n, n));
    }
    out
}

/// Whether this process holds any capability (root does).
fn holds_capabilities() -> bool {
    rustix::thread::capabilities(None).is_ok_and(|c| !c.permitted.is_empty())
}

/// Each layer's status for `policy`, and the seccomp filters when they compile.
fn probe(
    policy: &Policy,
    extra_read: &[PathBuf],
) -> (Vec<LayerStatus>, Option<Arc<Vec<BpfProgram>>>) {
    let mut seccomp = None;
    let layers = Layer::ALL
        .into_iter()
        .map(|layer| {
            let result: Result<String, String> = match layer {
                Layer::ProcessGroup => {
                    Ok("a new session; the whole group killed at the end".into())
                }
                Layer::Rlimits => {
                    let l = &policy.limits;
                    let mut parts = vec!["no core dumps".to_owned()];
                    if let Some(s) = l.cpu_seconds {
                        parts.push(format!("CPU {s} s"));
                    }
                    if let Some(b) = l.address_space {
                        parts.push(format!("address space {}", crate::bytes(b)));
                    }
                    if let Some(b) = l.file_size {
                        parts.push(format!("file size {}", crate::bytes(b)));
                    }
                    if let Some(n) = l.open_files {
                        parts.push(format!("{n} open files"));
                    }
                    Ok(parts.join(", "))
                }
                Layer::Cgroup => Hierarchies::get().describe(&policy.limits),
                Layer::Capabilities => Ok(if holds_capabilities() {
                    "all dropped (bounding, ambient, effective, permitted)".into()
                } else {
                    "none held".into()
                }),
                Layer::Landlock => rules::landlock(policy, extra_read).map(|l| l.detail),
                Layer::Seccomp => match seccomp_supported() {
                    Err(why) => Err(why),
                    Ok(()) => rules::seccomp(policy.network).map(|(programs, detail)| {
                        seccomp = Some(Arc::new(programs));
                        detail
                    }),
                },
            };
            let (active, detail) = match result {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            LayerStatus {
                layer,
                active,
                detail,
            }
        })
        .collect();
    (layers, seccomp)
}

/// Whether the kernel has seccomp filters.
fn seccomp_supported() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        Ok(())
    } else {
        Err("the kernel has no seccomp (CONFIG_SECCOMP_FILTER)".into())
    }
}
