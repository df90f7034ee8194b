//! One cgroup per run, for memory, process count and CPU: v2 where the controller is on the
//! unified hierarchy (and can be enabled below this process's cgroup), v1 otherwise.

use std::{
    fs,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::Limits;

/// The controllers a run may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Cpu => "cpu",
        }
    }
}

/// Where one controller's cgroups go: the directory of this process's cgroup in its
/// hierarchy, and which version the hierarchy is.
#[derive(Debug, Clone)]
struct Base {
    dir: PathBuf,
    v2: bool,
}

/// What this machine offers, found once per process.
#[derive(Debug)]
pub(crate) struct Hierarchies {
    bases: Vec<(Controller, Result<Base, String>)>,
}

static FOUND: OnceLock<Hierarchies> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(0);

impl Hierarchies {
    /// The hierarchies of this machine (probed once).
    pub(crate) fn get() -> &'static Hierarchies {
        FOUND.get_or_init(probe)
    }

    /// Where `c`'s cgroups go, or why it is not available.
    fn base(&self, c: Controller) -> Result<&Base, &str> {
        self.bases
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(Err("not probed"), |(_, b)| {
                b.as_ref().map_err(String::as_str)
            })
    }

    /// The controllers `limits` need (always `pids`: it is how every process of a run is
    /// found and killed).
    pub(crate) fn needed(limits: &Limits) -> Vec<Controller> {
        let mut need = vec![Controller::Pids];
        if limits.memory.is_some() {
            need.push(Controller::Memory);
        }
        if limits.cpus.is_some() {
            need.push(Controller::Cpu);
        }
        need
    }

    /// What the cgroup layer would enforce for `limits`, or why it cannot.
    pub(crate) fn describe(&self, limits: &Limits) -> Result<String, String> {
        let mut parts = Vec::new();
        for c in Self::needed(limits) {
            let base = self
                .base(c)
                .map_err(|why| format!("the {} controller: {why}", c.name()))?;
            let v = if base.v2 { "v2" } else { "v1" };
            parts.push(match c {
                Controller::Memory => format!(
                    "memory ≤ {} ({v})",
                    crate::bytes(limits.memory.unwrap_or_default())
                ),
                Controller::Pids => match limits.processes {
                    Some(n) => format!("processes ≤ {n} ({v})"),
                    None => format!("process tracking ({v})"),
                },
                Controller::Cpu => format!("cpus ≤ {} ({v})", limits.cpus.unwrap_or_default()),
            });
        }
        Ok(parts.join(", "))
    }
}

/// A run's cgroups, one per hierarchy; removed on drop after their processes are killed.
#[derive(Debug)]
pub(crate) struct RunGroup {
    dirs: Vec<(Controller, PathBuf, bool)>,
}

impl RunGroup {
    /// Makes the cgroups of one run with `limits` set.
    pub(crate) fn create(limits: &Limits) -> Result<RunGroup, String> {
        let h = Hierarchies::get();
        let name = format!(
            "agentry-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut group = RunGroup { dirs: Vec::new() };
        for c in Hierarchies::needed(limits) {
            let base = h
                .base(c)
                .map_err(|why| format!("the {} controller: {why}", c.name()))?;
            let dir = base.dir.join(&name);
            if !group.dirs.iter().any(|(_, d, _)| *d == dir) {
                fs::create_dir(&dir)
                    .map_err(|e| format!("cannot make the cgroup {}: {e}", dir.display()))?;
            }
            group.dirs.push((c, dir.clone(), base.v2));
            let set = |file: &str, value: String| {
                fs::write(dir.join(file), value)
                    .map_err(|e| format!("cannot set {}/{file}: {e}", dir.display()))
            };
            match (c, base.v2) {
                (Controller::Memory, v2) => {
                    let limit = limits.memory.unwrap_or(u64::MAX).to_string();
                    if v2 {
                        set("memory.max", limit.clone())?;
                        let _ = set("memory.swap.max", "0".into());
                    } else {
                        set("memory.limit_in_bytes", limit.clone())?;
                        // Without swap accounting the file is not there; then swap is unlimited.
                        if dir.join("memory.memsw.limit_in_bytes").exists() {
                            set("memory.memsw.limit_in_bytes", limit)?;
                        }
                    }
                }
                (Controller::Pids, _) => {
                    if let Some(n) = limits.processes {
                        set("pids.max", n.to_string())?;
                    }
                }
                (Controller::Cpu, v2) => {
                    let period = 100_000u64;
                    let quota = (limits.cpus.unwrap_or(1.0) * period as f64).max(1000.0) as u64;
                    if v2 {
                        set("cpu.max", format!("{quota} {period}"))?;
                    } else {
                        set("cpu.cfs_period_us", period.to_string())?;
                        set("cpu.cfs_quota_us", quota.to_string())?;
                    }
                }
            }
        }
        Ok(group)
    }

    /// The `cgroup.procs` files to join, opened for the child to write `0` to.
    pub(crate) fn procs_files(&self) -> Result<Vec<OwnedFd>, String> {
        let mut seen: Vec<&Path> = Vec::new();
        let mut fds = Vec::new();
        for (_, dir, _) in &self.dirs {
            if seen.contains(&dir.as_path()) {
                continue;
            }
            seen.push(dir);
            let file = fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .map_err(|e| format!("cannot open {}/cgroup.procs: {e}", dir.display()))?;
            fds.push(OwnedFd::from(file));
        }
        Ok(fds)
    }

    fn dir(&self, c: Controller) -> Option<(&Path, bool)> {
        self.dirs
            .iter()
            .find(|(k, _, _)| *k == c)
            .map(|(_, d, v2)| (d.as_path(), *v2))
    }

    /// The processes in the run's cgroup now.
    pub(crate) fn pids(&self) -> Vec<i32> {
        let Some((dir, _)) = self.dir(Controller::Pids) else {
            return Vec::new();
        };
        fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process in the cgroup; returns how many were found alive.
    pub(crate) async fn kill_all(&self) -> usize {
        let Some((dir, v2)) = self.dir(Controller::Pids) else {
            return 0;
        };
        let first = self.pids().len();
        if first == 0 {
            return 0;
        }
        // No new process from here on, then kill what is there until nothing is.
        let _ = fs::write(dir.join("pids.max"), "0");
        if v2 && fs::write(dir.join("cgroup.kill"), "1").is_ok() {
            return first;
        }
        for _ in 0..200 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        first
    }

    /// Peak memory of the run, in bytes.
    pub(crate) fn peak_memory(&self) -> Option<u64> {
        let (dir, v2) = self.dir(Controller::Memory)?;
        let file = if v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
    }

    /// Whether the OOM killer acted in the run's cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        let Some((dir, v2)) = self.dir(Controller::Memory) else {
            return false;
        };
        let file = if v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        counter(&dir.join(file), "oom_kill") > 0
            || (!v2 && counter(&dir.join("memory.failcnt"), "") > 0 && self.peak_at_limit(dir))
    }

    fn peak_at_limit(&self, dir: &Path) -> bool {
        let read =
            |f: &str| -> Option<u64> { fs::read_to_string(dir.join(f)).ok()?.trim().parse().ok() };
        matches!((read("memory.max_usage_in_bytes"), read("memory.limit_in_bytes")), (Some(p), Some(l)) if p >= l)
    }

    /// Whether a fork failed at the process limit.
    pub(crate) fn process_limit_hit(&self) -> bool {
        self.dir(Controller::Pids)
            .is_some_and(|(dir, _)| counter(&dir.join("pids.events"), "max") > 0)
    }

    /// Removes the cgroups (their processes must be gone; retried briefly while the kernel
    /// finishes reaping).
    pub(crate) async fn remove(self) {
        for (_, dir, _) in &self.dirs {
            for _ in 0..50 {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                }
            }
        }
    }
}

/// The number after `key` in a `key value` file (or the file's only number, for `key = ""`).
fn counter(path: &Path, key: &str) -> u64 {
    let text = fs::read_to_string(path).unwrap_or_default();
    if key.is_empty() {
        return text.trim().parse().unwrap_or(0);
    }
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Finds each controller's hierarchy and this process's place in it, and checks that a
/// cgroup can be made there.
fn probe() -> Hierarchies {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut v1: Vec<(Vec<String>, PathBuf)> = Vec::new();
    let mut v2: Option<PathBuf> = None;
    for line in mountinfo.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNT OPTS [TAGS] - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount = left.split(' ').nth(4).map(PathBuf::from);
        let mut r = right.split(' ');
        let (fstype, _source, superopts) = (r.next(), r.next(), r.next().unwrap_or(""));
        match (fstype, mount) {
            (Some("cgroup2"), Some(m)) => v2 = v2.or(Some(m)),
            (Some("cgroup"), Some(m)) => {
                v1.push((superopts.split(',').map(str::to_owned).collect(), m));
            }
            _ => {}
        }
    }
    let own_path = |hierarchy: &dyn Fn(&str) -> bool| -> Option<String> {
        own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            hierarchy(names).then(|| path.trim_start_matches('/').to_owned())
        })
    };
    let bases = Controller::ALL
        .into_iter()
        .map(|c| {
            let name = c.name();
            let on_v2 = v2.as_ref().and_then(|m| {
                let path = own_path(&|names| names.is_empty())?;
                let root_controllers = fs::read_to_string(m.join("cgroup.controllers")).ok()?;
                root_controllers
                    .split_whitespace()
                    .any(|n| n == name)
                    .then(|| m.join(path))
            });
            let base = if let Some(dir) = on_v2 {
                enable_v2(&dir, name).map(|()| Base { dir, v2: true })
            } else if let Some((_, m)) = v1.iter().find(|(opts, _)| opts.iter().any(|o| o == name))
            {
                match own_path(&|names| names.split(',').any(|n| n == name)) {
                    Some(path) => Ok(Base {
                        dir: m.join(path),
                        v2: false,
                    }),
                    None => Err(format!("this process is in no {name} cgroup")),
                }
            } else {
                Err(format!("no cgroup hierarchy has the {name} controller"))
            };
            (c, base.and_then(try_make))
        })
        .collect();
    Hierarchies { bases }
}

/// Enables `controller` for the children of the v2 cgroup `dir`.
fn enable_v2(dir: &Path, controller: &str) -> Result<(), String> {
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    if enabled.split_whitespace().any(|n| n == controller) {
        return Ok(());
    }
    fs::write(dir.join("cgroup.subtree_control"), format!("+{controller}")).map_err(|e| {
        format!(
            "cannot enable it below {} ({e}); run agentry in a delegated cgroup (systemd-run --user --scope -p Delegate=yes)",
            dir.display()
        )
    })
}

/// Checks that a cgroup can be made in `base`.
fn try_make(base: Base) -> Result<Base, String> {
    let probe = base
        .dir
        .join(format!("agentry-probe-{}", std::process::id()));
    match fs::create_dir(&probe) {
        Ok(()) => {
            let _ = fs::remove_dir(&probe);
            Ok(base)
        }
        Err(e) => Err(format!(
            "cannot make a cgroup in {}: {e}",
            base.dir.display()
        )),
    }
}
