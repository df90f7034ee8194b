use pretty_assertions::assert_eq;
use serde_json::json;

use crate::{Action, Policy};

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
    for ok in [
        "/tmp/sandbox/a.txt",
        "/tmp/sandbox/x/../b",
        "notes/c.txt",
        "/tmp/sandbox",
    ] {
        assert_eq!(
            p.decide(None, None, "write_file", &json!({"path": ok}))
                .action,
            Action::Allow,
            "{ok}"
        );
    }
    for bad in [
        "/tmp/sandbox2/a",
        "../x",
        "/etc/passwd",
        "/tmp/sandbox/../../etc",
    ] {
        assert_eq!(
            p.decide(None, None, "write_file", &json!({"path": bad}))
                .action,
            Action::Deny,
            "{bad}"
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
