//! The approval queue: ids agentry makes, decisions bound to the arguments shown.
//! Regression tests for "approvals can go to the wrong call".

use std::{
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use agentry_core::ToolCall;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentry-approve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn transfer(run: &str, amount: u64) -> Approval {
    Approval::new(
        run,
        ToolCall::new(
            "call_00000001",
            "transfer",
            json!({"to": "bob", "amount": amount}),
        ),
        Some("big transfers".into()),
        "over 1000",
    )
}

/// Waits (at most 5 s) until `n` calls wait in `queue`.
async fn until_waiting(queue: &ApprovalQueue, n: usize) -> Vec<Pending> {
    for _ in 0..500 {
        let waiting = queue.list().unwrap();
        if waiting.len() == n {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} call(s) never waited: {:?}", queue.list());
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Starts `approval` waiting in `queue` on a task of its own.
fn wait_for(queue: &ApprovalQueue, approval: Approval) -> tokio::task::JoinHandle<bool> {
    let queue = queue.clone();
    tokio::spawn(async move { queue.approve(&approval).await })
}

#[tokio::test]
async fn the_same_call_id_in_two_runs_waits_twice_and_a_decision_releases_only_its_call() {
    let dir = fresh_dir("two-runs");
    let queue = ApprovalQueue::new(&dir).poll(Duration::from_millis(10));
    let (first, second) = (transfer("r1", 5000), transfer("r2", 7000));
    assert_ne!(first.id(), second.id());
    let one = wait_for(&queue, first.clone());
    let two = wait_for(&queue, second.clone());
    let waiting = until_waiting(&queue, 2).await;
    let mut ids: Vec<String> = waiting.iter().map(|p| p.id.clone()).collect();
    ids.sort_unstable();
    let mut want = vec![first.id(), second.id()];
    want.sort_unstable();
    assert_eq!(ids, want);
    let shown = waiting.iter().find(|p| p.run_id == "r1").unwrap();
    assert_eq!(
        (
            shown.call_id.as_str(),
            shown.tool.as_str(),
            &shown.arguments
        ),
        (
            "call_00000001",
            "transfer",
            &json!({"to": "bob", "amount": 5000})
        )
    );
    assert_eq!(shown.rule.as_deref(), Some("big transfers"));

    // Approving the first releases the first only.
    queue
        .decide(&first.id(), true, &arguments_hash(&shown.arguments))
        .unwrap();
    let released = tokio::time::timeout(Duration::from_secs(5), one).await;
    assert!(released.unwrap().unwrap(), "the approved call runs");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!two.is_finished(), "the other run's call still waits");
    let left = queue.list().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, second.id());

    // Refusing the second releases it, refused.
    queue
        .decide(&second.id(), false, &arguments_hash(&left[0].arguments))
        .unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(5), two).await;
    assert!(!refused.unwrap().unwrap());
    assert_eq!(queue.list().unwrap(), Vec::<Pending>::new());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_decision_on_other_arguments_is_refused_and_the_call_waits_on() {
    let dir = fresh_dir("other-args");
    let notices = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&notices);
    let queue = ApprovalQueue::new(&dir)
        .poll(Duration::from_millis(10))
        .on_notice(move |n| heard.lock().unwrap().push(n.clone()));
    let approval = transfer("r1", 5000);
    let id = approval.id();
    let waiting = wait_for(&queue, approval.clone());
    until_waiting(&queue, 1).await;

    // Through the queue: refused at once, nothing written.
    let other = arguments_hash(&json!({"to": "mallory", "amount": 5000}));
    let e = queue.decide(&id, true, &other).unwrap_err();
    assert!(matches!(e, QueueError::Mismatch { .. }), "{e}");
    assert!(!dir.join(format!("{id}.decision")).exists());

    // Written by hand: the waiting call refuses it, says so, and waits on.
    queue.write_decision(&id, true, &other).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "a decision on other arguments released the call"
    );
    assert!(!dir.join(format!("{id}.decision")).exists());
    let refused = notices
        .lock()
        .unwrap()
        .iter()
        .any(|n| matches!(n, QueueNotice::Refused { id: i, .. } if *i == id));
    assert!(refused, "{:?}", notices.lock().unwrap());
    let said = notices.lock().unwrap().clone();
    assert!(matches!(&said[0], QueueNotice::Waiting(p) if p.id == id));

    // A file that is not a decision at all: refused too.
    std::fs::write(dir.join(format!("{id}.decision")), b"{\"approve\": true}").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());

    // The decision on the arguments shown releases it.
    queue.decide(&id, true, &approval.arguments_hash()).unwrap();
    let released = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    assert!(released.unwrap().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn only_agentrys_ids_are_read_or_written() {
    let dir = fresh_dir("ids");
    let queue = ApprovalQueue::new(&dir);
    for bad in [
        "../x",
        "a/../../etc/passwd",
        "..",
        "/etc/passwd",
        "call_00000001",
        "a0123456789ABCDEF",
        "a0123456789abcde",
        "a0123456789abcdef0",
        "",
    ] {
        assert!(!is_approval_id(bad), "{bad}");
        assert!(matches!(queue.get(bad), Err(QueueError::BadId(_))), "{bad}");
        assert!(
            matches!(queue.decide(bad, true, "x"), Err(QueueError::BadId(_))),
            "{bad}"
        );
    }
    assert!(is_approval_id("a0123456789abcdef"));
    assert!(matches!(
        queue.get("a0123456789abcdef"),
        Err(QueueError::NotWaiting { .. })
    ));
    assert!(!dir.exists(), "nothing was written");
}

#[test]
fn ids_and_hashes_depend_on_what_the_call_is() {
    let a = transfer("r1", 5000);
    assert_eq!(a.id(), transfer("r1", 5000).id());
    assert_ne!(a.id(), transfer("r1", 5001).id());
    let mut renamed = a.clone();
    renamed.call.name = "transfer_all".into();
    assert_ne!(a.id(), renamed.id());
    let mut other_call = a.clone();
    other_call.call.id = "call_00000002".into();
    assert_ne!(a.id(), other_call.id());
    // Canonical: key order and nesting order of keys do not matter; values do.
    let x: Value =
        serde_json::from_str(r#"{"b": {"y": 1, "x": [1, {"q": 2, "p": 3}]}, "a": "s"}"#).unwrap();
    let y: Value =
        serde_json::from_str(r#"{"a": "s", "b": {"x": [1, {"p": 3, "q": 2}], "y": 1}}"#).unwrap();
    assert_eq!(arguments_hash(&x), arguments_hash(&y));
    assert_ne!(arguments_hash(&x), arguments_hash(&json!({"a": "s"})));
    assert_eq!(arguments_hash(&x).len(), 64);
}

#[tokio::test]
async fn queue_files_are_private_and_a_cancelled_wait_leaves_the_queue() {
    let dir = fresh_dir("private").join("nested");
    let queue = ApprovalQueue::new(&dir).poll(Duration::from_millis(10));
    let approval = transfer("r1", 5000);
    let waiting = wait_for(&queue, approval.clone());
    until_waiting(&queue, 1).await;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(dir.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.join(format!("{}.json", approval.id()))), 0o600);
    // (A decision for a call nobody waits for, so that it stays to be looked at.)
    queue
        .write_decision("a0000000000000000", false, "not the hash")
        .unwrap();
    assert_eq!(mode(&dir.join("a0000000000000000.decision")), 0o600);
    std::fs::remove_file(dir.join("a0000000000000000.decision")).unwrap();
    // The run is cancelled: the wait is dropped, and the call is no longer listed.
    waiting.abort();
    let _ = waiting.await;
    assert_eq!(queue.list().unwrap(), Vec::<Pending>::new());
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}
