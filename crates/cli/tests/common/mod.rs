//! What the CLI's integration tests share (each test file uses part of it).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

/// Starts `agentry ARGS…` (a server) and returns it with the `http://` address it prints
/// on its first line.
pub(crate) fn serving(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start agentry: {e}"));
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .unwrap_or_else(|e| panic!("{e}"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, url)
}

/// The npm-installed program `name` (scripts/mcp-servers), or `None` (the test is skipped)
/// unless AGENTRY_REQUIRE_MCP says it must be there.
pub(crate) fn mcp_bin(name: &str) -> Option<String> {
    let path = agentry_mcp::npm_bin(name);
    if path.exists() {
        return Some(path.to_string_lossy().into_owned());
    }
    assert!(
        std::env::var_os("AGENTRY_REQUIRE_MCP").is_none(),
        "{} is missing: run scripts/mcp-servers",
        path.display()
    );
    None
}

/// A fresh directory `agentry-NAME-PID` under the temporary directory, with a served
/// folder `root` in it holding `a.txt` ("secret notes"); returns both.
pub(crate) fn notes_dir(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("agentry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("a.txt"), "secret notes").unwrap_or_else(|e| panic!("{e}"));
    (dir, root)
}
