//! Escape and exhaustion attempts: each must be contained, reported clearly, and leave the
//! machine as it was. Every layer is required (none may be skipped): on a machine where one
//! does not work these tests fail, saying which and why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use agentry_sandbox::{Ended, Exit, Layer, Limits, Outcome, Policy, Program, Sandbox};

struct Fixture {
    _dir: tempfile::TempDir,
    /// The sandbox's workspace.
    ws: PathBuf,
    /// A directory beside it, outside the sandbox.
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "the secret\n").unwrap();
    Fixture {
        _dir: dir,
        ws: ws.canonicalize().unwrap(),
        outside: outside.canonicalize().unwrap(),
    }
}

fn sandbox(f: &Fixture, limits: Limits) -> Sandbox {
    Sandbox::new(Policy::new(&f.ws).limits(limits)).expect("every layer works on this machine")
}

async fn sh(sb: &Sandbox, script: &str) -> Outcome {
    sb.run(Program::new(["/bin/sh", "-c", script]).timeout(Duration::from_secs(20)))
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn every_layer_is_in_force_and_a_plain_program_runs() {
    let f = fixture();
    let sb = sandbox(&f, Limits::default());
    for l in sb.layers() {
        assert!(l.active, "{}: {}", l.layer, l.detail);
    }
    let out = sb.run(Program::new(["echo", "hello"])).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "hello\n");
    assert_eq!(out.layers.len(), Layer::ALL.len());
    // It may write its workspace.
    let out = sh(&sb, "echo made > made.txt && cat made.txt").await;
    assert_eq!(text(&out.stdout), "made\n", "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(f.ws.join("made.txt")).unwrap(),
        "made\n"
    );
}

#[tokio::test]
async fn a_fork_bomb_is_held_at_the_process_limit_and_killed_whole() {
    let f = fixture();
    let limits = Limits {
        processes: Some(64),
        ..Limits::default()
    };
    let sb = sandbox(&f, limits.clone());
    let program = Program::new(["/bin/bash", "-c", "b(){ b|b& }; b; sleep 30"])
        .timeout(Duration::from_secs(3));
    let started = Instant::now();
    let out = sb.run(program).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(out.process_limit_hit, "{out:?}");
    let said = out.limit_reached(&limits).unwrap();
    assert!(
        said.contains("deadline") || said.contains("process limit"),
        "{said}"
    );
    // Nothing of it is left, and the machine still starts programs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count_processes("b|b"), 0);
    let again = sb.run(Program::new(["true"])).await.unwrap();
    assert!(again.success());
}

#[tokio::test]
async fn allocating_ten_gigabytes_meets_the_memory_limit() {
    let f = fixture();
    let limits = Limits {
        memory: Some(256 << 20),
        ..Limits::default()
    };
    let sb = sandbox(&f, limits.clone());
    let out = sb
        .run(Program::new([
            "python3",
            "-c",
            "b = bytearray(b'x') * (10 * 1024**3); print(len(b))",
        ]))
        .await
        .unwrap();
    assert!(!out.success());
    assert!(out.oom_killed, "{out:?}");
    assert_eq!(out.exit, Exit::Signal(9));
    let said = out.limit_reached(&limits).unwrap();
    assert_eq!(said, "the memory limit (256 MiB) was reached");
    assert!(out.peak_memory.unwrap() <= 256 << 20);
}

#[tokio::test]
async fn nothing_outside_the_workspace_can_be_written() {
    let f = fixture();
    let sb = sandbox(&f, Limits::default());
    let outside = f.outside.display().to_string();
    let attempts = [
        format!("echo x > {outside}/absolute"),
        "echo x > ../outside/dotdot".to_owned(),
        format!("ln -s {outside} link && echo x > link/through_symlink"),
        format!("ln {outside}/secret hard && echo x >> hard"),
        format!("mv {outside}/secret moved"),
        format!("rm {outside}/secret"),
        "echo x > /tmp/agentry-escape".to_owned(),
        format!("mkdir {outside}/dir"),
    ];
    for script in attempts {
        let out = sh(&sb, &script).await;
        assert!(!out.success(), "`{script}` succeeded");
        assert!(
            text(&out.stderr).contains("Permission denied")
                || text(&out.stderr).contains("Invalid cross-device link"),
            "`{script}`: {}",
            text(&out.stderr)
        );
    }
    let mut names: Vec<_> = std::fs::read_dir(&f.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["secret"]);
    assert_eq!(
        std::fs::read_to_string(f.outside.join("secret")).unwrap(),
        "the secret\n"
    );
    assert!(!Path::new("/tmp/agentry-escape").exists());
}

#[tokio::test]
async fn secrets_outside_cannot_be_read() {
    let f = fixture();
    let sb = sandbox(&f, Limits::default());
    let home_ssh = std::env::var("HOME")
        .map(|h| format!("{h}/.ssh"))
        .unwrap_or_default();
    let outside = f.outside.display().to_string();
    for script in [
        "cat /etc/shadow".to_owned(),
        format!("cat {outside}/secret"),
        format!("ls {outside}"),
        format!("ls {home_ssh}"),
        "cat /proc/1/environ".to_owned(),
    ] {
        let out = sh(&sb, &script).await;
        assert!(
            !out.success(),
            "`{script}` succeeded: {}",
            text(&out.stdout)
        );
        assert!(!text(&out.stdout).contains("the secret"));
    }
    // …and a symlink made inside pointing out does not help.
    let out = sh(&sb, &format!("ln -s {outside}/secret s && cat s")).await;
    assert!(!out.success());
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn no_network_without_leave() {
    let f = fixture();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = sandbox(&f, Limits::default());
    for addr in [
        format!("('127.0.0.1', {port})"),
        "('192.0.2.1', 80)".to_owned(),
    ] {
        let code = format!("import socket; socket.create_connection({addr}, timeout=5)");
        let started = Instant::now();
        let out = sb
            .run(Program::new(["python3", "-c", &code]))
            .await
            .unwrap();
        assert!(!out.success(), "connected to {addr}");
        assert!(
            text(&out.stderr).contains("PermissionError"),
            "{addr}: {}",
            text(&out.stderr)
        );
        // Refused at once, not after a timeout.
        assert!(started.elapsed() < Duration::from_secs(4));
    }
    let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(accepted.is_err(), "the loopback listener saw a connection");

    // With the network allowed, the same connection is made.
    let open = Sandbox::new(Policy::new(&f.ws).network(true)).unwrap();
    let code = format!("import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)");
    let (out, accepted) = tokio::join!(
        open.run(Program::new(["python3", "-c", &code])),
        listener.accept()
    );
    assert!(out.unwrap().success());
    assert!(accepted.is_ok());
}

#[tokio::test]
async fn a_cpu_loop_stops_at_its_cpu_limit() {
    let f = fixture();
    let limits = Limits {
        cpu_seconds: Some(1),
        ..Limits::default()
    };
    let sb = sandbox(&f, limits.clone());
    let started = Instant::now();
    let out = sb
        .run(Program::new(["python3", "-c", "while True: pass"]).timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.ended, Ended::Exited);
    assert!(
        matches!(out.exit, Exit::Signal(24) | Exit::Signal(9)),
        "{:?}",
        out.exit
    );
    assert_eq!(
        out.limit_reached(&limits).unwrap(),
        "the CPU limit (1 s) was reached"
    );
}

#[tokio::test]
async fn a_gigabyte_of_output_is_cut_and_stopped() {
    let f = fixture();
    let sb = sandbox(&f, Limits::default());
    let mut program = Program::new(["head", "-c", "1G", "/dev/zero"]).output_cap(1000);
    program.output_limit = 8 << 20;
    let out = sb.run(program).await.unwrap();
    assert_eq!(out.ended, Ended::OutputLimit);
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.stdout_cut >= (8 << 20) - 1000, "{}", out.stdout_cut);
    assert!(out.stdout_cut < 1 << 30);
}

#[tokio::test]
async fn a_daemon_does_not_outlive_its_call() {
    let f = fixture();
    let sb = sandbox(&f, Limits::default());
    let code = r#"
import os, time
if os.fork() == 0:
    try:
        os.setsid()
    except OSError as e:
        print("setsid:", e.strerror, flush=True)
    if os.fork() == 0:
        open("daemon.pid", "w").write(str(os.getpid()))
        time.sleep(1000)
    os._exit(0)
time.sleep(0.5)
"#;
    let out = sb.run(Program::new(["python3", "-c", code])).await.unwrap();
    assert!(out.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("setsid: Operation not permitted"));
    assert!(out.killed_leftovers >= 1, "{out:?}");
    let pid: i32 = std::fs::read_to_string(f.ws.join("daemon.pid"))
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!alive(pid), "the daemon {pid} is still running");
}

#[tokio::test]
async fn a_timeout_and_a_cancellation_kill_the_whole_tree() {
    let f = fixture();
    let sb = sandbox(&f, Limits::default());
    let script = "sleep 1000 & sleep 1000 & echo $! > last.pid; wait";
    let started = Instant::now();
    let out = sb
        .run(Program::new(["/bin/sh", "-c", script]).timeout(Duration::from_millis(500)))
        .await
        .unwrap();
    assert_eq!(out.ended, Ended::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3));
    let pid: i32 = std::fs::read_to_string(f.ws.join("last.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid));

    let cancel = tokio_util::sync::CancellationToken::new();
    let later = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        later.cancel();
    });
    let out = sb
        .run(Program::new(["sleep", "1000"]).cancel_on(cancel))
        .await
        .unwrap();
    assert_eq!(out.ended, Ended::Cancelled);
}

#[tokio::test]
async fn limits_cannot_be_raised_and_privileges_are_gone() {
    let f = fixture();
    let sb = sandbox(&f, Limits::default());
    let code = r#"
import resource, os
try:
    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("raised")
except (ValueError, OSError) as e:
    print("refused")
print(open("/proc/self/status").read().split("CapEff:")[1].split()[0])
"#;
    let out = sb.run(Program::new(["python3", "-c", code])).await.unwrap();
    assert_eq!(
        text(&out.stdout),
        "refused\n0000000000000000\n",
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_missing_program_and_a_bad_argv_are_clear_errors() {
    let f = fixture();
    let sb = sandbox(&f, Limits::default());
    let e = sb
        .run(Program::new(["no-such-program-here"]))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("`no-such-program-here` could not be started"),
        "{e}"
    );
    let e = sb
        .run(Program::new(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("argv is empty"), "{e}");
    let e = sb.run(Program::new(["echo", "a\0b"])).await.unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie is dead; it waits only for its parent (or init) to reap it.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn count_processes(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            (alive(pid) && String::from_utf8_lossy(&cmdline).contains(needle)).then_some(())
        })
        .count()
}
