//! A new trace store is its owner's only: the database and SQLite's `-wal` and `-shm`
//! files 0600, the directories agentry makes for it 0700 (traces hold what tools
//! returned, secrets included). Regression test for "secrets go to every MCP server":
//! the store was created world-readable (0644).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use agentry_trace::{TraceStore, TraceWriter};
use pretty_assertions::assert_eq;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_store_and_its_new_directories_are_private() {
    let top = std::env::temp_dir().join(format!("agentry-trace-modes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    let db = top.join(".agentry").join("traces.db");
    let store = TraceStore::create(&db).unwrap();
    assert_eq!(mode(&db), 0o600);
    // While the store is open, SQLite's journal and shared memory files exist.
    for side in ["traces.db-wal", "traces.db-shm"] {
        let path = db.with_file_name(side);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{side}");
        }
    }
    assert_eq!(mode(db.parent().unwrap()), 0o700);
    assert_eq!(mode(&top), 0o700);
    drop(store);
    // The writer creates the same way.
    let other = top.join("w").join("t.db");
    TraceWriter::open(&other).unwrap().close().unwrap();
    assert_eq!(mode(&other), 0o600);
    assert_eq!(mode(other.parent().unwrap()), 0o700);
    // It is a working store.
    assert!(
        TraceStore::open(&other)
            .unwrap()
            .runs(10)
            .unwrap()
            .is_empty()
    );
    std::fs::remove_dir_all(&top).unwrap();
}

#[test]
fn a_directory_the_user_made_keeps_its_mode_and_an_existing_store_is_left_alone() {
    let top = std::env::temp_dir().join(format!("agentry-trace-theirs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    std::fs::create_dir_all(&top).unwrap();
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = top.join("traces.db");
    drop(TraceStore::create(&db).unwrap());
    assert_eq!(mode(&top), 0o755);
    assert_eq!(mode(&db), 0o600);
    // An existing store (the user chose its mode) opens as it is.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    drop(TraceStore::create(&db).unwrap());
    assert_eq!(mode(&db), 0o640);
    std::fs::remove_dir_all(&top).unwrap();
}
