use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;
use serde_json::json;

use crate::{Action, Policy, Truth, Verdict};

const POLICY: &str = r#"
default = "allow"

[[rule]]
name = "sandbox"
tool = "write_*"
when = [{ path = "/path", not_inside = "/tmp/sandbox" }]
action = "deny"
reason = "files may only be written under /tmp/sandbox"

[[rule]]
tool = "transfer"
when = [{ path = "$.amount", gt = 1000 }, { path = "/currency", one_of = ["USD", "EUR"] }]
action = "ask"

[[rule]]
name = "small pages"
tool = "search"
action = "rewrite"
set = { "/safe" = true }
clamp = { "/limit" = { max = 20 } }

[[rule]]
server = "shell"
action = "deny"

[[rule]]
tool = "email"
when = [{ path = "/to", not_regex = "@example\\.com$" }]
action = "deny"

[agent.support]
tools = ["search", "get_*", "write_*"]
rate = { search = "2/minute" }
"#;

fn policy() -> Policy {
    Policy::from_toml(POLICY).unwrap()
}

#[test]
fn first_matching_rule_decides() {
    let p = policy();
    let deny = p.decide(
        None,
        None,
        "write_file",
        &json!({"path": "/tmp/sandbox/../etc/passwd"}),
    );
    assert_eq!(deny.action, Action::Deny);
    assert_eq!(deny.rule.as_deref(), Some("sandbox"));
    assert_eq!(
        deny.reason.as_deref(),
        Some("files may only be written under /tmp/sandbox")
    );
    for ok in ["/tmp/sandbox/a.txt", "/tmp/sandbox/x/../b", "/tmp/sandbox"] {
        assert_eq!(
            p.decide(None, None, "write_file", &json!({"path": ok}))
                .action,
            Action::Allow,
            "{ok}"
        );
    }
    for bad in ["/tmp/sandbox2/a", "/etc/passwd", "/tmp/sandbox/../../etc"] {
        assert_eq!(
            p.decide(None, None, "write_file", &json!({"path": bad}))
                .action,
            Action::Deny,
            "{bad}"
        );
    }
    // A relative path may be relative to anything: the rule cannot be decided, and the call
    // is denied with why (it was allowed, taken as relative to the sandbox).
    for relative in ["notes/c.txt", "../x"] {
        let v = p.decide(None, None, "write_file", &json!({"path": relative}));
        assert_eq!(
            v,
            Verdict {
                action: Action::Deny,
                rule: Some("sandbox".into()),
                reason: Some(format!(
                    "cannot tell whether `/path` (\"{relative}\") is inside /tmp/sandbox: a relative \
                     path, which the tool resolves against a directory of its own; give an \
                     absolute path (sandbox)"
                )),
                rewritten: None,
            }
        );
    }
    // A missing path argument does not satisfy `not_inside`'s test, so the rule matches.
    assert_eq!(
        p.decide(None, None, "write_file", &json!({})).action,
        Action::Deny
    );

    let ask = p.decide(
        None,
        None,
        "transfer",
        &json!({"amount": 5000, "currency": "EUR"}),
    );
    assert_eq!(
        (ask.action, ask.rule.as_deref()),
        (Action::Ask, Some("rule 2"))
    );
    assert_eq!(
        p.decide(
            None,
            None,
            "transfer",
            &json!({"amount": 5000, "currency": "GBP"})
        )
        .action,
        Action::Allow
    );
    assert_eq!(
        p.decide(
            None,
            None,
            "transfer",
            &json!({"amount": 10, "currency": "EUR"})
        )
        .action,
        Action::Allow
    );

    let rw = p.decide(None, None, "search", &json!({"q": "x", "limit": 500}));
    assert_eq!(rw.action, Action::Rewrite);
    assert_eq!(
        rw.rewritten,
        Some(json!({"q": "x", "limit": 20, "safe": true}))
    );
    let rw = p.decide(None, None, "search", &json!({"q": "x", "limit": 5}));
    assert_eq!(
        rw.rewritten,
        Some(json!({"q": "x", "limit": 5, "safe": true}))
    );

    assert_eq!(
        p.decide(None, Some("shell"), "run", &json!({})).action,
        Action::Deny
    );
    assert_eq!(
        p.decide(None, Some("fs"), "run", &json!({})).action,
        Action::Allow
    );
    assert_eq!(
        p.decide(None, None, "email", &json!({"to": "a@evil.org"}))
            .action,
        Action::Deny
    );
    assert_eq!(
        p.decide(None, None, "email", &json!({"to": "a@example.com"}))
            .action,
        Action::Allow
    );
}

#[test]
fn capabilities_hide_tools_and_limit_rates() {
    let p = policy();
    assert!(p.visible(Some("support"), None, "get_order"));
    assert!(!p.visible(Some("support"), None, "transfer"));
    assert!(p.visible(Some("someone else"), None, "transfer"));
    let hidden = p.decide(Some("support"), None, "transfer", &json!({}));
    assert_eq!(hidden.action, Action::Deny);
    assert_eq!(
        hidden.reason.as_deref(),
        Some("`transfer` is not available to this agent")
    );
    for _ in 0..2 {
        assert_eq!(
            p.decide(Some("support"), None, "search", &json!({})).action,
            Action::Rewrite
        );
    }
    let third = p.decide(Some("support"), None, "search", &json!({}));
    assert_eq!(third.action, Action::Deny);
    assert!(
        third
            .reason
            .unwrap()
            .contains("rate limit for `search` (2/minute)")
    );
    // Another agent, another count.
    assert_eq!(
        p.decide(None, None, "search", &json!({})).action,
        Action::Rewrite
    );
}

#[test]
fn a_bad_policy_is_refused_with_its_line_and_reason() {
    let cases = [
        (
            "[[rule]]\ntool = \"x\"\naction = \"alow\"\n",
            "line 1: rule 1: unknown action `alow`; expected allow, deny, rewrite or ask",
        ),
        (
            "default = \"allow\"\n\n[[rule]]\nname = \"r\"\nwhen = [{ path = \"/a\", regex = \"(\" }]\naction = \"deny\"\n",
            "line 3: rule `r`: the regex `(` does not compile",
        ),
        (
            "[[rule]]\naction = \"rewrite\"\n",
            "line 1: rule 1: a rewrite needs `set` or `clamp`",
        ),
        (
            "[[rule]]\naction = \"deny\"\nwhen = [{ path = \"/a\" }]\n",
            "the condition on `/a` has no test",
        ),
        (
            "[[rule]]\naction = \"deny\"\nwhen = [{ path = \"/a\", gt = 1, lt = 5 }]\n",
            "has 2 tests; write one condition per test",
        ),
        (
            "[[rule]]\naction = \"deny\"\ncolour = \"red\"\n",
            "line 3: unknown field `colour`",
        ),
        (
            "default = \"rewrite\"\n",
            "the default must be allow, deny or ask",
        ),
        (
            "[[rule]]\naction = \"deny\"\n[agent.a]\nrate = { x = \"ten a minute\" }\n",
            "agent `a`: rate of `x`: `ten a minute` is not a rate",
        ),
        ("[[rule]\n", "line 1"),
        (
            "default = \"deny\"\npaths = \"remote\"\n",
            "line 2: `paths = \"remote\"`: expected \"local\"",
        ),
        (
            "[[rule]]\naction = \"deny\"\nwhen = [{ path = \"/p\", inside = \"/srv\", relative_to = \"srv\" }]\n",
            "line 1: rule 1: `relative_to = \"srv\"` must be an absolute directory",
        ),
        (
            "[[rule]]\naction = \"deny\"\nwhen = [{ path = \"/p\", prefix = \"/srv\", relative_to = \"/srv\" }]\n",
            "`relative_to` only goes with inside or not_inside",
        ),
        (
            "[[rule]]\naction = \"deny\"\nwhen = [{ path = \"/p\", not_inside = \"tmp\" }]\n",
            "`not_inside = \"tmp\"` must be an absolute directory",
        ),
        (
            "[[rule]]\naction = \"deny\"\nwhen = [{ path = \"/p\", inside = \"tmp\" }]\n",
            "must be an absolute directory",
        ),
    ];
    for (text, want) in cases {
        let e = Policy::from_toml(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}\n  got: {e}\n want: {want}");
    }
}

#[test]
fn yaml_reads_the_same_policy() {
    let p = Policy::from_yaml(
        "default: deny\nrules:\n  - tool: 'get_*'\n    action: allow\n  - tool: put\n    when: [{path: /n, le: 3}]\n    action: allow\n",
    )
    .unwrap();
    assert_eq!(
        p.decide(None, None, "get_x", &json!({})).action,
        Action::Allow
    );
    assert_eq!(
        p.decide(None, None, "put", &json!({"n": 3})).action,
        Action::Allow
    );
    let d = p.decide(None, None, "put", &json!({"n": 4}));
    assert_eq!((d.action, d.rule), (Action::Deny, None));
    assert_eq!(d.reason.as_deref(), Some("the policy does not allow `put`"));
    let e = Policy::from_yaml("rules:\n  - action: nope\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("rule 1: unknown action `nope`"), "{e}");
    let e = Policy::from_yaml("rules:\n  - action: deny\n    bogus: 1\n").unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
}

/// A fresh directory `agentry-policy-NAME-PID` under the temporary directory, removed when
/// dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("agentry-policy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.0.display())
    }

    /// `text` with every `ROOT` replaced by this directory.
    fn policy(&self, text: &str) -> Policy {
        Policy::from_toml(&text.replace("ROOT", &self.0.display().to_string())).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn action(p: &Policy, tool: &str, path: &str) -> Action {
    p.decide(None, None, tool, &json!({ "path": path })).action
}

#[test]
fn a_relative_or_home_path_is_refused_unless_the_rule_says_what_it_is_relative_to() {
    let p = Policy::from_toml(
        r#"
default = "deny"

[[rule]]
tool = "read_*"
when = [{ path = "/path", inside = "/srv/notes" }]
action = "allow"
"#,
    )
    .unwrap();
    // The server resolves `outside/secret.txt` against its own roots, not /srv/notes.
    let v = p.decide(
        None,
        None,
        "read_file",
        &json!({"path": "outside/secret.txt"}),
    );
    assert_eq!(
        v,
        Verdict {
            action: Action::Deny,
            rule: Some("rule 1".into()),
            reason: Some(
                "cannot tell whether `/path` (\"outside/secret.txt\") is inside /srv/notes: a \
                 relative path, which the tool resolves against a directory of its own; give an \
                 absolute path (rule 1)"
                    .into()
            ),
            rewritten: None,
        }
    );
    assert!(matches!(
        p.rules()[0].matches(None, "read_file", &json!({"path": "x.txt"})),
        Truth::Undecidable(_)
    ));
    // The condition alone does not hold, and does not fail either.
    assert!(!p.rules()[0].when[0].holds(&json!({"path": "x.txt"})));
    let home = p.decide(None, None, "read_file", &json!({"path": "~/notes/a.txt"}));
    assert_eq!(home.action, Action::Deny);
    assert!(
        home.reason
            .as_deref()
            .unwrap()
            .contains("a `~` path is expanded by the tool, not by the policy"),
        "{home:?}"
    );
    for odd in ["", "~", "/srv/notes/a\u{0}b", "notes/a.txt"] {
        let v = p.decide(None, None, "read_file", &json!({ "path": odd }));
        assert_eq!(
            (v.action, v.rule.as_deref()),
            (Action::Deny, Some("rule 1")),
            "{odd:?}"
        );
    }
    assert_eq!(action(&p, "read_file", "/srv/notes/a.txt"), Action::Allow);
    // A glob that does not match leaves the path unexamined: the default decides.
    let other = p.decide(None, None, "list", &json!({"path": "x"}));
    assert_eq!((other.action, other.rule), (Action::Deny, None));

    // With `relative_to`, a relative path is decided; `~` still is not.
    let p = Policy::from_toml(
        r#"
default = "deny"

[[rule]]
tool = "read_*"
when = [{ path = "/path", inside = "/srv/notes", relative_to = "/srv/notes" }]
action = "allow"
"#,
    )
    .unwrap();
    assert_eq!(action(&p, "read_file", "a.txt"), Action::Allow);
    assert_eq!(action(&p, "read_file", "./sub/../a.txt"), Action::Allow);
    let up = p.decide(None, None, "read_file", &json!({"path": "../secret.txt"}));
    assert_eq!((up.action, up.rule), (Action::Deny, None));
    assert_eq!(action(&p, "read_file", "~/a.txt"), Action::Deny);

    // A relative write under a `not_inside` deny rule is refused too (it was allowed).
    let p = Policy::from_toml(
        r#"
[[rule]]
tool = "write_*"
when = [{ path = "/path", not_inside = "/srv/notes" }]
action = "deny"
"#,
    )
    .unwrap();
    assert_eq!(action(&p, "write_file", "outside/x.txt"), Action::Deny);
    assert_eq!(action(&p, "write_file", "~/x.txt"), Action::Deny);
    assert_eq!(action(&p, "write_file", "/srv/notes/x.txt"), Action::Allow);
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_followed_to_where_they_lead() {
    use std::os::unix::fs::symlink;
    let s = Scratch::new("links");
    write(&s.0.join("allowed/ok.txt"), "fine");
    write(&s.0.join("outside/secret.txt"), "secret");
    std::fs::create_dir_all(s.0.join("outside/sub")).unwrap();
    symlink(s.0.join("outside"), s.0.join("allowed/link")).unwrap();
    symlink("../outside", s.0.join("allowed/up")).unwrap();
    symlink(s.0.join("outside/sub"), s.0.join("allowed/deep")).unwrap();
    symlink("loop", s.0.join("allowed/loop")).unwrap();
    symlink(s.0.join("allowed"), s.0.join("alias")).unwrap();
    let p = s.policy(
        r#"
default = "deny"

[[rule]]
tool = "read_*"
when = [{ path = "/path", inside = "ROOT/allowed" }]
action = "allow"

[[rule]]
name = "writes stay in allowed"
tool = "write_*"
when = [{ path = "/path", not_inside = "ROOT/allowed" }]
action = "deny"

[[rule]]
tool = "write_*"
action = "allow"

[[rule]]
tool = "list"
when = [{ path = "/path", inside = "ROOT/alias" }]
action = "allow"
"#,
    );
    assert_eq!(
        action(&p, "read_file", &s.path("allowed/ok.txt")),
        Action::Allow
    );
    // A link inside that points outside, absolute or relative.
    for through in [
        "allowed/link/secret.txt",
        "allowed/up/secret.txt",
        "allowed/link",
    ] {
        let v = p.decide(None, None, "read_file", &json!({ "path": s.path(through) }));
        assert_eq!((v.action, v.rule), (Action::Deny, None), "{through}");
    }
    // A file that does not exist yet, below a linked directory: where it would be written.
    let v = p.decide(
        None,
        None,
        "write_file",
        &json!({ "path": s.path("allowed/link/new.txt") }),
    );
    assert_eq!(
        (v.action, v.rule.as_deref()),
        (Action::Deny, Some("writes stay in allowed"))
    );
    assert_eq!(
        action(&p, "write_file", &s.path("allowed/new/dir/x.txt")),
        Action::Allow
    );
    // `..` after a link is the target's parent to the kernel, the link's to Node: refused.
    let v = p.decide(
        None,
        None,
        "read_file",
        &json!({ "path": s.path("allowed/deep/../ok.txt") }),
    );
    assert_eq!(v.action, Action::Deny);
    assert!(
        v.reason.as_deref().unwrap().contains("more than one place"),
        "{v:?}"
    );
    // A loop cannot be resolved.
    let v = p.decide(
        None,
        None,
        "read_file",
        &json!({ "path": s.path("allowed/loop/x") }),
    );
    assert_eq!(v.action, Action::Deny);
    assert!(
        v.reason
            .as_deref()
            .unwrap()
            .contains("symbolic links to follow"),
        "{v:?}"
    );
    // The rule's directory is resolved too: a link to it names the same place.
    assert_eq!(action(&p, "list", &s.path("allowed/ok.txt")), Action::Allow);
    assert_eq!(action(&p, "list", &s.path("alias/ok.txt")), Action::Allow);
    assert_eq!(
        action(&p, "list", &s.path("outside/secret.txt")),
        Action::Deny
    );
}

#[test]
fn an_nfd_spelling_of_a_denied_nfc_directory_is_denied() {
    let s = Scratch::new("nfc");
    write(&s.0.join("allowed/priv\u{e9}/x.txt"), "private");
    write(&s.0.join("allowed/caf\u{e9}/menu.txt"), "menu");
    let text = r#"
default = "deny"

[[rule]]
name = "private"
tool = "read_*"
when = [{ path = "/path", inside = "ROOT/allowed/priv\u00e9" }]
action = "deny"
reason = "that directory is private"

[[rule]]
tool = "read_*"
when = [{ path = "/path", inside = "ROOT/allowed" }]
action = "allow"
"#;
    for p in [
        s.policy(text),
        s.policy(&format!("paths = \"lexical\"\n{text}")),
    ] {
        // NFD: `e` and a combining acute accent. The server opens the NFC directory.
        let v = p.decide(
            None,
            None,
            "read_file",
            &json!({ "path": s.path("allowed/prive\u{301}/x.txt") }),
        );
        assert_eq!(
            (v.action, v.rule.as_deref()),
            (Action::Deny, Some("private")),
            "{v:?}"
        );
        let v = p.decide(
            None,
            None,
            "read_file",
            &json!({ "path": s.path("allowed/priv\u{e9}/x.txt") }),
        );
        assert_eq!(
            (v.action, v.reason.as_deref()),
            (Action::Deny, Some("that directory is private"))
        );
        // Another directory's name in NFD, away from the private one, is still allowed.
        assert_eq!(
            action(&p, "read_file", &s.path("allowed/cafe\u{301}/menu.txt")),
            Action::Allow
        );
        assert_eq!(
            action(&p, "read_file", &s.path("allowed/caf\u{e9}/menu.txt")),
            Action::Allow
        );
    }
}

#[cfg(unix)]
#[test]
fn lexical_paths_check_the_string_and_leave_the_disk_alone() {
    use std::os::unix::fs::symlink;
    let s = Scratch::new("lexical");
    write(&s.0.join("outside/secret.txt"), "secret");
    std::fs::create_dir_all(s.0.join("allowed")).unwrap();
    symlink(s.0.join("outside"), s.0.join("allowed/link")).unwrap();
    let text = r#"
default = "deny"

[[rule]]
tool = "read_*"
when = [{ path = "/path", inside = "ROOT/allowed" }]
action = "allow"
"#;
    let through = s.path("allowed/link/secret.txt");
    assert_eq!(action(&s.policy(text), "read_file", &through), Action::Deny);
    let lexical = s.policy(&format!("paths = \"lexical\"\n{text}"));
    // The link is not looked at: the string is inside.
    assert_eq!(action(&lexical, "read_file", &through), Action::Allow);
    assert_eq!(
        action(
            &lexical,
            "read_file",
            &s.path("allowed/../outside/secret.txt")
        ),
        Action::Deny
    );
    assert_eq!(action(&lexical, "read_file", "allowed/x"), Action::Deny);
    assert_eq!(action(&lexical, "read_file", "~/x"), Action::Deny);
    let local = s.policy(&format!("paths = \"local\"\n{text}"));
    assert_eq!(action(&local, "read_file", &through), Action::Deny);
}

#[test]
fn rules_and_agents_naming_no_tool_on_offer_are_reported() {
    let policy = Policy::from_toml(
        r#"
[[rule]]
name = "typo"
tool = "get_wether"
action = "deny"

[[rule]]
tool = "get_*"
server = "fs"
action = "allow"

[[rule]]
tool = "search"
action = "allow"

[agent.reader]
tools = ["search", "kv_*"]
rate = { serch = "5/minute" }
"#,
    )
    .unwrap();
    let tools = [("get_weather", None), ("search", None)];
    let found = policy.unmatched(&tools);
    assert_eq!(
        found,
        vec![
            "typo (line 2): tool = \"get_wether\" matches none of the tools on offer".to_owned(),
            "rule 2 (line 7): server = \"fs\" matches none of the servers on offer".to_owned(),
            "agent `reader`: \"kv_*\" matches none of the tools on offer".to_owned(),
            "agent `reader`: \"serch\" matches none of the tools on offer".to_owned(),
        ]
    );
    // Offer what each names, and nothing is reported.
    let all = [
        ("get_wether", Some("fs")),
        ("search", None),
        ("kv_get", None),
        ("serch", None),
    ];
    assert_eq!(policy.unmatched(&all), Vec::<String>::new());
}
