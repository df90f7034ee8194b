//! What `--help` shows a new user works as shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn agentry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap()
}

/// Every `$ agentry …` example line in `agentry policy --help` runs from the repository's
/// root, and prints what the help says it prints.
#[test]
fn the_policy_help_examples_run_as_shown() {
    let help = String::from_utf8(agentry(&["policy", "--help"]).stdout).unwrap();
    let lines: Vec<&str> = help.lines().map(str::trim).collect();
    let mut ran = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(command) = line.strip_prefix("$ agentry ") else {
            continue;
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("\"$AGENTRY\" {command}"))
            .env("AGENTRY", env!("CARGO_BIN_EXE_agentry"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("cannot read") && !stderr.contains("No such file"),
            "`{command}`: {stderr}"
        );
        // A line after the command that is not a command is its output.
        if let Some(shown) = lines
            .get(i + 1)
            .filter(|l| !l.starts_with('$') && !l.is_empty())
        {
            assert_eq!(stdout.trim(), *shown, "`{command}`");
        }
        ran += 1;
    }
    assert!(ran >= 2, "{help}");
}
