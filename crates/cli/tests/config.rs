//! `agentry.toml` sets what `agentry run` uses when the command line does not say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn the_config_file_sets_the_run_and_flags_win_over_it() {
    let dir = std::env::temp_dir().join(format!("agentry-config-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.toml"),
        "[[rule]]\nname = \"typo\"\ntool = \"get_wether\"\naction = \"deny\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("agentry.toml"),
        "model = \"sim:trip\"\nmode = \"sequential\"\npolicy = \"rules.toml\"\n\n[budget]\nmax_calls = 1\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args([
                "run",
                "How much warmer is Oslo than Paris?",
                "--json",
                "--no-trace",
            ])
            .args(extra)
            .current_dir(&dir)
            .output()
            .unwrap();
        let line: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (line, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // From the file: the sequential script, one call at most, the policy (and its typo).
    let (out, stderr) = run(&[]);
    assert_eq!(out["status"], "budget_exhausted", "{out} {stderr}");
    assert_eq!(out["calls"], 1);
    assert!(
        stderr.contains("sequential mode · model sim:trip"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "warning: the policy's typo (line 1): tool = \"get_wether\" matches none of the tools on offer"
        ),
        "{stderr}"
    );
    // The command line wins.
    let (out, stderr) = run(&["--max-calls", "100"]);
    assert_eq!(out["status"], "answered", "{out} {stderr}");
    // A bad file is refused with its line.
    std::fs::write(
        dir.join("agentry.toml"),
        "model = \"sim:trip\"\nmdoe = \"x\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["run", "x", "--no-trace"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2: unknown field `mdoe`"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
