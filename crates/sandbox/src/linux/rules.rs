//! The Landlock ruleset and the seccomp filters, built in the parent before any fork.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::Policy;

/// What every program may read and execute: the system's programs and libraries, the parts
/// of `/etc` they read, `/proc` (other processes' private files stay closed: Landlock
/// denies ptrace-mode access outside the sandbox).
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/bash.bashrc",
    "/etc/profile",
    "/etc/inputrc",
    "/etc/terminfo",
    "/etc/magic",
    "/etc/python3",
    "/proc",
    "/sys/devices/system/cpu",
    "/dev/urandom",
    "/dev/random",
];

/// Device files every program may read and write.
const DEVICES_RW: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

/// The Landlock ABI of this kernel, found once: `None` when Landlock is not there.
pub(crate) fn landlock_abi() -> Option<ABI> {
    static ABI_FOUND: OnceLock<Option<ABI>> = OnceLock::new();
    *ABI_FOUND.get_or_init(|| {
        let known = [
            ABI::V7,
            ABI::V6,
            ABI::V5,
            ABI::V4,
            ABI::V3,
            ABI::V2,
            ABI::V1,
        ];
        known.into_iter().find(|&abi| {
            Ruleset::default()
                .set_compatibility(CompatLevel::HardRequirement)
                .handle_access(AccessFs::from_all(abi))
                .and_then(|r| r.create())
                .is_ok()
        })
    })
}

/// The ABI's number (`1`…), for reports.
pub(crate) fn abi_number(abi: ABI) -> u8 {
    [
        ABI::V1,
        ABI::V2,
        ABI::V3,
        ABI::V4,
        ABI::V5,
        ABI::V6,
        ABI::V7,
    ]
    .iter()
    .position(|&a| a == abi)
    .map_or(0, |i| i as u8 + 1)
}

/// A built ruleset, and what it enforces in words.
pub(crate) struct Landlock {
    pub(crate) ruleset: RulesetCreated,
    pub(crate) detail: String,
}

/// The Landlock ruleset of `policy`: read-only where allowed, writable in the workspace (and
/// the policy's write paths), TCP denied without the network, signals and abstract sockets
/// scoped to the sandbox.
pub(crate) fn landlock(policy: &Policy, extra_read: &[PathBuf]) -> Result<Landlock, String> {
    let abi =
        landlock_abi().ok_or("the kernel has no Landlock (Linux ≥ 5.13 with lsm=landlock)")?;
    let all = AccessFs::from_all(abi);
    let read = AccessFs::from_read(abi);
    let file = AccessFs::from_file(abi);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .map_err(|e| e.to_string())?;
    let mut extras = Vec::new();
    if !policy.network && abi >= ABI::V4 {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(|e| e.to_string())?;
        extras.push("TCP denied");
    }
    if abi >= ABI::V6 {
        ruleset = ruleset
            .scope(Scope::from_all(abi))
            .map_err(|e| e.to_string())?;
        extras.push("signals and abstract sockets scoped");
    }
    let mut rules = Vec::new();
    let mut add = |path: &Path, access: BitFlags<AccessFs>| -> Result<(), String> {
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(()); // a path that is not there needs no rule
        };
        let access = if meta.is_dir() { access } else { access & file };
        let fd = PathFd::new(path).map_err(|e| format!("{}: {e}", path.display()))?;
        rules.push(Ok::<_, landlock::RulesetError>(PathBeneath::new(
            fd, access,
        )));
        Ok(())
    };
    for p in SYSTEM_READ {
        add(Path::new(p), read)?;
    }
    for p in policy.read.iter().chain(extra_read) {
        add(p, read)?;
    }
    for p in DEVICES_RW {
        add(Path::new(p), file)?;
    }
    add(&policy.workspace, all)?;
    for p in &policy.write {
        add(p, all)?;
    }
    let created = ruleset
        .create()
        .and_then(|r| r.add_rules(rules))
        .map_err(|e| e.to_string())?;
    let mut detail = format!(
        "ABI {}: read-only system paths{}, writable {}",
        abi_number(abi),
        if policy.read.is_empty() && extra_read.is_empty() {
            String::new()
        } else {
            format!(" and {} more", policy.read.len() + extra_read.len())
        },
        policy.workspace.display()
    );
    for e in extras {
        detail.push_str("; ");
        detail.push_str(e);
    }
    Ok(Landlock {
        ruleset: created,
        detail,
    })
}

/// The seccomp filters: one answering `EPERM` (network sockets without the network,
/// ptrace, namespaces, io_uring, bpf, keyrings, new sessions and process groups), one
/// answering `ENOSYS` to `clone3` (its flags cannot be inspected; the C library then uses
/// `clone`, whose namespace flags the first filter refuses).
pub(crate) fn seccomp(network: bool) -> Result<(Vec<BpfProgram>, String), String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_setsid,
        libc::SYS_setpgid,
    ] {
        denied.insert(nr, Vec::new());
    }
    let rule = |conds: Vec<SeccompCondition>| SeccompRule::new(conds).map_err(|e| e.to_string());
    let cond = |arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
    };
    let namespaces = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
    ];
    let mut clone_rules = Vec::new();
    for flag in namespaces {
        let flag = flag as u64;
        clone_rules.push(rule(vec![cond(0, SeccompCmpOp::MaskedEq(flag), flag)?])?);
    }
    denied.insert(libc::SYS_clone, clone_rules);
    if !network {
        let unix = libc::AF_UNIX as u64;
        let ne_unix = || -> Result<SeccompRule, String> {
            rule(vec![
                SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, unix)
                    .map_err(|e| e.to_string())?,
            ])
        };
        denied.insert(libc::SYS_socket, vec![ne_unix()?]);
        denied.insert(libc::SYS_socketpair, vec![ne_unix()?]);
    }
    let eperm = SeccompFilter::new(
        denied,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let enosys = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let programs = vec![
        BpfProgram::try_from(eperm).map_err(|e| e.to_string())?,
        BpfProgram::try_from(enosys).map_err(|e| e.to_string())?,
    ];
    let detail = if network {
        "ptrace, namespaces, io_uring, bpf, setsid denied; network allowed"
    } else {
        "sockets other than Unix-domain denied; ptrace, namespaces, io_uring, bpf, setsid denied"
    };
    Ok((programs, detail.to_owned()))
}
