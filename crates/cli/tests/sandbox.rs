//! `agentry sandbox` and program tools from `agentry.toml`, as a user meets them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Command};

fn agentry(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sandbox_check_names_every_layer_and_run_contains_a_program() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("agentry.toml"),
        format!(
            "[sandbox]\nworkspaces = \"{}\"\n",
            dir.path().join("ws").display()
        ),
    )
    .unwrap();
    let (ok, out, err) = agentry(dir.path(), &["sandbox", "check"]);
    assert!(ok, "{out}{err}");
    for layer in [
        "process_group",
        "rlimits",
        "cgroup",
        "capabilities",
        "landlock",
        "seccomp",
    ] {
        assert!(out.contains(&format!("✓ {layer}")), "{layer}: {out}");
    }
    assert!(out.contains("program tools can run here"), "{out}");

    let (ok, _, err) = agentry(dir.path(), &["sandbox", "run", "--", "cat", "/etc/shadow"]);
    assert!(!ok);
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("exit status 1"), "{err}");

    // A typo in a layer's name is refused with the names there are.
    std::fs::write(
        dir.path().join("agentry.toml"),
        "[sandbox]\nmay_skip = [\"landlok\"]\n",
    )
    .unwrap();
    let (ok, _, err) = agentry(dir.path(), &["sandbox", "check"]);
    assert!(!ok);
    assert!(err.contains("unknown sandbox layer `landlok`"), "{err}");
    assert!(err.contains("process_group, rlimits, cgroup"), "{err}");
}

#[test]
fn command_tools_from_the_config_run_from_code_actions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("agentry.toml"),
        format!(
            r#"
model = "sim:{script}"

[tools.count_words]
description = "Counts the words of a text."
argv = ["wc", "-w"]
parameters = {{ type = "object", properties = {{}} }}
timeout = 5

[tools.shout]
description = "Prints a text in capitals."
argv = ["python3", "-c", "import sys; print(sys.argv[1].upper())", "{{text}}"]
parameters = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}

[sandbox]
workspaces = "{ws}"
"#,
            script = dir.path().join("code.yaml").display(),
            ws = dir.path().join("ws").display(),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("code.yaml"),
        r#"
turns:
  - when: { last: user }
    text: |
      ```python
      words = ["a; rm -rf ~", "$(id)", "b"]
      print([shout(text=w)["stdout"].strip() for w in words])
      ```
  - when: { last: tool }
    text: "{{tool}}"
"#,
    )
    .unwrap();
    let (ok, out, err) = agentry(
        dir.path(),
        &[
            "run",
            "Shout these.",
            "--code-actions",
            "--no-demo-tools",
            "--no-trace",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(r#"['A; RM -RF ~', '$(ID)', 'B']"#),
        "{out}{err}"
    );
    assert!(err.contains("python"), "{err}");

    // A bad template is refused when the config is read.
    std::fs::write(
        dir.path().join("agentry.toml"),
        "[tools.bad]\ndescription = \"x\"\nargv = [\"echo\", \"{nope}\"]\n",
    )
    .unwrap();
    let (ok, _, err) = agentry(dir.path(), &["run", "x", "--model", "sim:trip"]);
    assert!(!ok);
    assert!(
        err.contains("`{nope}` is not one of its parameters"),
        "{err}"
    );
}
