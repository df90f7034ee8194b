//! The approval queue across runs. Regression test for "approvals can go to the wrong
//! call": two concurrent `agentry run --approve queue` runs both held `call_00000001`, the
//! queue showed one (the other was overwritten), `agentry approve call_00000001` released a
//! call whose arguments the human never saw, and the other run hung until its budget ended.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

fn agentry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Kills the run when the test ends, pass or fail.
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the sequential trip, whose Paris lookup (`call_00000001`) waits for approval.
fn start(policy: &Path, approvals: &Path) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args([
            "run",
            "How much warmer is Oslo than Paris?",
            "--mode",
            "sequential",
            "--model",
            "sim:trip",
            "--tool-latency-ms",
            "10",
            "--policy",
            policy.to_str().unwrap(),
            "--approve",
            "queue",
            "--approvals",
            approvals.to_str().unwrap(),
            "--no-trace",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Run(child)
}

/// `agentry approve`'s listing, one line per waiting call.
fn listed(approvals: &Path) -> Vec<String> {
    let out = agentry(&["approve", "--approvals", approvals.to_str().unwrap()]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("no call is waiting"))
        .map(str::to_owned)
        .collect()
}

/// The run id a listing line names: `… (run RUN, call …`.
fn run_of(line: &str) -> String {
    let rest = line.split("(run ").nth(1).unwrap();
    rest.split(',').next().unwrap().to_owned()
}

/// Waits (at most 20 s) until `run` ends; its `--json` outcome.
fn finished(run: &mut Run) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    while run.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the run did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(run.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn two_runs_holding_the_same_call_id_wait_apart_and_each_decision_releases_its_own_call() {
    let dir = std::env::temp_dir().join(format!("agentry-approvals-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nname = \"approve paris\"\ntool = \"get_weather\"\nwhen = [{ path = \"/city\", equals = \"Paris\" }]\naction = \"ask\"\n",
    )
    .unwrap();
    let approvals = dir.join("approvals");
    let mut runs = [start(&policy, &approvals), start(&policy, &approvals)];

    // Both wait, both are listed, under ids of agentry's own.
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let lines = listed(&approvals);
        if lines.len() == 2 {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "two calls never waited: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "{lines:?}");
    for (line, id) in lines.iter().zip(&ids) {
        assert!(agentry_policy::is_approval_id(id), "{line}");
        assert!(line.contains(r#"get_weather {"city":"Paris"}"#), "{line}");
        assert!(line.contains("call call_00000001"), "{line}");
    }
    let (first, second) = (run_of(&lines[0]), run_of(&lines[1]));
    assert_ne!(first, second);

    // Approving the first shows its call, and releases that run only.
    let out = agentry(&[
        "approve",
        ids[0],
        "--approvals",
        approvals.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(r#"get_weather {"city":"Paris"}"#), "{said}");
    assert!(said.contains(&format!("{} approved", ids[0])), "{said}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        if let Some(i) = runs
            .iter_mut()
            .position(|r| r.0.try_wait().unwrap().is_some())
        {
            break i;
        }
        assert!(Instant::now() < deadline, "the approved run did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    let outcome = finished(&mut runs[done]);
    assert_eq!(outcome["run_id"], first.as_str());
    assert_eq!(outcome["status"], "answered");
    std::thread::sleep(Duration::from_millis(300));
    let other = 1 - done;
    assert!(
        runs[other].0.try_wait().unwrap().is_none(),
        "the other run's call was released too"
    );
    let left = listed(&approvals);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(ids[1]), "{left:?}");

    // Deciding the second (refused) ends the other run; the model is told a human refused.
    let out = agentry(&[
        "approve",
        ids[1],
        "--deny",
        "--approvals",
        approvals.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let outcome = finished(&mut runs[other]);
    assert_eq!(outcome["run_id"], second.as_str());
    assert!(listed(&approvals).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn approve_takes_only_ids_agentry_made() {
    let dir = std::env::temp_dir().join(format!("agentry-approve-ids-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("approvals")).unwrap();
    // A file a path like `../x` would reach, which must stay untouched.
    std::fs::write(dir.join("x.json"), "{}").unwrap();
    for bad in ["../x", "a/../../x", "..", "/etc/passwd", "call_00000001"] {
        let out = agentry(&[
            "approve",
            bad,
            "--approvals",
            dir.join("approvals").to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("is not an approval id"), "{bad}: {stderr}");
    }
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(std::fs::read_dir(dir.join("approvals")).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
