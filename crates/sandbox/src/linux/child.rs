//! What the child does between `fork` and `exec`: the only `unsafe` of the crate.
//!
//! Everything here was prepared by the parent (the Landlock ruleset, the compiled seccomp
//! filters, the open `cgroup.procs` files), so the child only makes system calls: it does
//! not allocate or take locks, as a child of a multithreaded process must not. A failing
//! step returns an OS error whose upper bits name its layer ([`encode`]), so the parent can
//! say which layer failed though only the error number crosses the fork.

use std::{
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    sync::Arc,
};

use landlock::{RulesetCreated, RulesetStatus};
use rustix::{
    process::{Resource, Rlimit, Signal},
    thread::{CapabilitiesSecureBits, CapabilitySet, CapabilitySets},
};
use seccompiler::BpfProgram;

use crate::Layer;

/// What the child applies to itself, in this order.
pub(crate) struct Setup {
    pub(crate) cgroup_procs: Vec<OwnedFd>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) rlimits: Vec<(Resource, u64, u64)>,
    pub(crate) drop_caps: bool,
    pub(crate) landlock: Option<RulesetCreated>,
    pub(crate) seccomp: Option<Arc<Vec<BpfProgram>>>,
}

/// An OS error tagged with the layer that failed.
fn encode(layer: Layer, errno: i32) -> io::Error {
    let index = Layer::ALL.iter().position(|&l| l == layer).unwrap_or(0) as i32;
    io::Error::from_raw_os_error(((index + 1) << 16) | (errno & 0xffff))
}

/// The layer and error a failed spawn carries, if the child's setup failed.
pub(crate) fn decode(e: &io::Error) -> Option<(Layer, io::Error)> {
    let code = e.raw_os_error()?;
    let index = (code >> 16) - 1;
    let layer = *Layer::ALL.get(usize::try_from(index).ok()?)?;
    Some((layer, io::Error::from_raw_os_error(code & 0xffff)))
}

fn errno(e: rustix::io::Errno) -> i32 {
    e.raw_os_error()
}

/// Installs `setup` to run in the child.
pub(crate) fn install(cmd: &mut std::process::Command, setup: Setup) {
    let mut setup = Some(setup);
    // SAFETY: the closure only makes system calls on values prepared before the fork; it
    // allocates nothing and takes no lock (see the module docs).
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || match setup.take() {
            Some(s) => apply(s),
            None => Ok(()),
        });
    }
}

fn apply(s: Setup) -> io::Result<()> {
    let pg = |e| encode(Layer::ProcessGroup, errno(e));
    rustix::process::setsid().map_err(pg)?;
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).map_err(pg)?;

    for fd in &s.cgroup_procs {
        rustix::io::write(fd, b"0").map_err(|e| encode(Layer::Cgroup, errno(e)))?;
    }

    for (i, fd) in s.fds.iter().enumerate() {
        let target = 3 + i as i32;
        let fail = |e| encode(Layer::ProcessGroup, errno(e));
        if fd.as_raw_fd() == target {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(fail)?;
        } else {
            // SAFETY: `target` is a descriptor number the child takes over; the `OwnedFd`
            // is forgotten, so it is never closed here.
            #[allow(unsafe_code)]
            let mut new = unsafe { OwnedFd::from_raw_fd(target) };
            let done = rustix::io::dup2(fd, &mut new);
            std::mem::forget(new);
            done.map_err(fail)?;
        }
    }

    for &(resource, soft, hard) in &s.rlimits {
        let limit = Rlimit {
            current: Some(soft),
            maximum: Some(hard),
        };
        rustix::process::setrlimit(resource, limit)
            .map_err(|e| encode(Layer::Rlimits, errno(e)))?;
    }

    if s.drop_caps {
        drop_capabilities().map_err(|e| encode(Layer::Capabilities, errno(e)))?;
    }

    if let Some(ruleset) = s.landlock {
        match ruleset.restrict_self() {
            Ok(status) if status.ruleset == RulesetStatus::FullyEnforced => {}
            Ok(_) => return Err(encode(Layer::Landlock, libc::EOPNOTSUPP)),
            Err(_) => return Err(encode(Layer::Landlock, libc::EPERM)),
        }
    }

    if let Some(programs) = &s.seccomp {
        for p in programs.iter() {
            seccompiler::apply_filter(p).map_err(|_| encode(Layer::Seccomp, libc::EINVAL))?;
        }
    }
    Ok(())
}

/// Drops every capability: the bounding set (so `exec` grants none back, even to root),
/// the ambient set, then the effective, permitted and inheritable sets; locks root's
/// special treatment off first.
fn drop_capabilities() -> Result<(), rustix::io::Errno> {
    let bits = CapabilitiesSecureBits::NO_ROOT
        | CapabilitiesSecureBits::NO_ROOT_LOCKED
        | CapabilitiesSecureBits::NO_SETUID_FIXUP
        | CapabilitiesSecureBits::NO_SETUID_FIXUP_LOCKED
        | CapabilitiesSecureBits::NO_CAP_AMBIENT_RAISE
        | CapabilitiesSecureBits::NO_CAP_AMBIENT_RAISE_LOCKED;
    rustix::thread::set_capabilities_secure_bits(bits)?;
    for bit in 0..64u32 {
        let cap = CapabilitySet::from_bits_retain(1u64 << bit);
        match rustix::thread::remove_capability_from_bounding_set(cap) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) => break, // past the kernel's last capability
            Err(e) => return Err(e),
        }
    }
    rustix::thread::clear_ambient_capability_set()?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )
}
