//! `inside` and `not_inside` in front of the real filesystem server: a path the policy lets
//! through leads where the server will open, and a path the policy cannot follow the way the
//! server does (relative, `~`, through a symbolic link, in another Unicode form) is refused.
//!
//! What `@modelcontextprotocol/server-filesystem` (2026.8.31, `dist/lib.js` `validatePath`,
//! `dist/path-utils.js`) does with a path, given ROOT as its one allowed directory:
//! - `~/x` and `~` are expanded with `os.homedir()` (`$HOME`) by `expandHome`;
//! - a relative path is resolved against the allowed directories
//!   (`resolveRelativePathAgainstAllowedDirectories`: `path.resolve(ROOT, p)`), not against
//!   any directory a policy rule names;
//! - `..` is removed as text (`path.resolve`) before anything is looked up;
//! - an existing path goes through `fs.realpath`, so a symbolic link is followed and its
//!   target accepted when it is under ROOT;
//! - a path that does not exist is matched component by component against the entries on
//!   disk up to Unicode NFC (`resolveUnicodeEquivalentPath`), so `prive\u{301}` opens `privé`.
//!
//! Each case below reaches a file under ROOT that the policy keeps out; the last part of the
//! test shows the server, asked directly, does read them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, path::Path};

use agentry_tools::DynTool;
use common::{mcp_bin, notes_dir};
use serde_json::{Value, json};

const SECRET: &str = "TOP SECRET";
const PRIVATE: &str = "PRIVATE NOTE";

/// Reads inside ROOT/allowed but not in its private directory; writes inside ROOT/allowed.
const POLICY: &str = r#"
default = "deny"

[[rule]]
name = "private"
tool = "read_*"
when = [{ path = "/path", inside = "ROOT/allowed/priv\u00e9" }]
action = "deny"
reason = "that directory is private"

[[rule]]
name = "reads"
tool = "read_*"
when = [{ path = "/path", inside = "ROOT/allowed" }]
action = "allow"

[[rule]]
name = "writes stay in allowed"
tool = "write_file"
when = [{ path = "/path", not_inside = "ROOT/allowed" }]
action = "deny"
reason = "writes stay in allowed"

[[rule]]
tool = "write_file"
action = "allow"
"#;

/// Connects to `command` with `$HOME` set to `home`; the tools it offers.
async fn connect(
    command: Vec<String>,
    home: &Path,
) -> (
    std::sync::Arc<agentry_mcp::McpServer>,
    Vec<agentry_mcp::McpTool>,
) {
    let spec = agentry_mcp::ServerSpec {
        alias: "fs".into(),
        command,
        env: BTreeMap::from([("HOME".to_owned(), home.to_str().unwrap().to_owned())]),
    };
    let server = agentry_mcp::McpServer::connect(spec).await.unwrap();
    let tools = server.tools(&|_| false).await;
    (server, tools)
}

/// Calls `name` with `args`: the result, or the sentence the model reads.
async fn call(tools: &[agentry_mcp::McpTool], name: &str, args: Value) -> Result<Value, String> {
    let tool = tools
        .iter()
        .find(|t| t.spec().name == name)
        .unwrap_or_else(|| panic!("the server offers no `{name}`"));
    tool.call_json(args, agentry_tools::CallContext::detached("c"))
        .await
        .map_err(|e| e.for_model().to_owned())
}

#[test]
fn inside_decides_on_the_file_the_server_opens_and_refuses_what_it_cannot_follow() {
    let Some(fs_server) = mcp_bin("mcp-server-filesystem") else {
        return;
    };
    let (dir, root) = notes_dir("policy-paths");
    let allowed = root.join("allowed");
    let outside = root.join("outside");
    let private = allowed.join("priv\u{e9}");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(allowed.join("ok.txt"), "fine").unwrap();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    std::fs::write(private.join("x.txt"), PRIVATE).unwrap();
    std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
    let root_str = root.to_str().unwrap().to_owned();
    let policy = dir.join("p.toml");
    std::fs::write(&policy, POLICY.replace("ROOT", &root_str)).unwrap();
    let at = |rel: &str| format!("{root_str}/{rel}");

    // The paths that reach what the policy keeps out: relative (resolved by the server
    // against ROOT), `~` (expanded by the server to $HOME, which is ROOT here), through a
    // link inside `allowed` to `outside`, and `privé` spelled in NFD (e + U+0301).
    let escapes = [
        ("outside/secret.txt".to_owned(), SECRET),
        ("~/outside/secret.txt".to_owned(), SECRET),
        (at("allowed/link/secret.txt"), SECRET),
        (at("allowed/prive\u{301}/x.txt"), PRIVATE),
    ];

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (server, tools) = connect(
            vec![
                env!("CARGO_BIN_EXE_agentry").into(),
                "proxy".into(),
                "--policy".into(),
                policy.to_str().unwrap().into(),
                "--server-name".into(),
                "fs".into(),
                "--no-audit".into(),
                "--".into(),
                fs_server.clone(),
                root_str.clone(),
            ],
            &root,
        )
        .await;
        // An allowed read still works: the refusals below are not a policy that refuses all.
        let read = call(
            &tools,
            "read_text_file",
            json!({ "path": at("allowed/ok.txt") }),
        )
        .await
        .unwrap();
        assert_eq!(read["structuredContent"]["content"], json!("fine"));
        for (path, text) in &escapes {
            let refused = call(&tools, "read_text_file", json!({ "path": path }))
                .await
                .expect_err(path);
            assert!(
                refused.starts_with("denied by policy: "),
                "{path}: {refused}"
            );
            assert!(!refused.contains(text), "{path}: {refused}");
        }
        let relative = call(
            &tools,
            "read_text_file",
            json!({ "path": "outside/secret.txt" }),
        )
        .await
        .unwrap_err();
        assert!(
            relative.contains("is inside ") && relative.contains("a relative path"),
            "{relative}"
        );
        let home = call(
            &tools,
            "read_text_file",
            json!({ "path": "~/outside/secret.txt" }),
        )
        .await
        .unwrap_err();
        assert!(
            home.contains("a `~` path is expanded by the tool"),
            "{home}"
        );

        // Writes under the `not_inside` rule: a relative path and a new file below the link
        // are refused and reach no disk; a new file in `allowed` is written.
        for path in ["outside/written.txt".to_owned(), at("allowed/link/new.txt")] {
            let refused = call(
                &tools,
                "write_file",
                json!({ "path": path, "content": "x" }),
            )
            .await
            .expect_err(&path);
            assert!(
                refused.starts_with("denied by policy: "),
                "{path}: {refused}"
            );
        }
        call(
            &tools,
            "write_file",
            json!({ "path": at("allowed/new.txt"), "content": "written" }),
        )
        .await
        .unwrap();
        server.close().await;
    });
    assert!(
        !outside.join("written.txt").exists(),
        "a relative write got out"
    );
    assert!(
        !outside.join("new.txt").exists(),
        "a write through the link got out"
    );
    assert_eq!(
        std::fs::read_to_string(allowed.join("new.txt")).unwrap(),
        "written"
    );

    // The same reads straight to the server, with no policy, reach the files: each refusal
    // above was the policy's doing, and each path a real way out.
    rt.block_on(async {
        let (server, tools) = connect(vec![fs_server, root_str.clone()], &root).await;
        for (path, text) in &escapes {
            let read = call(&tools, "read_text_file", json!({ "path": path }))
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(read["structuredContent"]["content"], json!(text), "{path}");
        }
        server.close().await;
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
