//! Ground-truth replay of the retail tasks against the reference results in
//! `../shared/taubench/retail/expected_{dev,train}.json`: every tool's output byte for byte
//! and every changed record exactly (floats included).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use agentry_eval::taubench::{DomainData, ReplayFile, Split, first_difference, replay_task};

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/taubench")
}

fn check(split: Split) {
    let data = DomainData::load(&data(), "retail", split)
        .expect("the τ-bench data must be at ../shared/taubench");
    let path = data.dir.join(format!("expected_{}.json", split.as_str()));
    let text = std::fs::read_to_string(&path).expect("expected file");
    let expected: ReplayFile = serde_json::from_str(&text).expect("expected file parses");
    assert_eq!(expected.tasks.len(), data.tasks.len());
    let mut diffs = Vec::new();
    for (i, task) in data.tasks.iter().enumerate() {
        let (got, _) = replay_task(&data, i, task);
        if let Some(d) = first_difference(&data.db, &got, &expected.tasks[i]) {
            diffs.push(format!("task {i}: {d}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} tasks differ:\n{}",
        diffs.len(),
        data.tasks.len(),
        diffs.join("\n")
    );
}

#[test]
fn dev_replay_matches_the_reference() {
    check(Split::Dev);
}

#[test]
fn train_replay_matches_the_reference() {
    check(Split::Train);
}
