//! Tools that run programs, as a library user meets them: command tools and code actions
//! (CodeAct) through an `Agent`, in the sandbox, every call validated, policy-checked,
//! counted and recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use agentry::{
    Budget, CommandSpec, CommandTool, TraceKind, Workspaces,
    exec::Collect,
    llm::sim::{Script, SimModel},
    policy::Policy,
    prelude::*,
    tools::tool_fn,
};
use serde_json::json;

fn model(script: &str) -> Arc<SimModel> {
    Arc::new(SimModel::new(Script::parse(script, "test").unwrap()))
}

/// `hop(node)`: the next node of a chain n0 → n1 → … → n10, which ends there.
fn hop() -> agentry::FnTool {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Node {
        /// The node to leave.
        node: String,
    }
    tool_fn(
        "hop",
        "The node after `node` in the chain.",
        |a: Node| async move {
            let n: u32 = a
                .node
                .trim_start_matches('n')
                .parse()
                .map_err(|_| "no such node")?;
            Ok::<_, String>(if n >= 10 {
                json!({"next": null})
            } else {
                json!({"next": format!("n{}", n + 1)})
            })
        },
    )
}

fn workspaces(dir: &tempfile::TempDir) -> Workspaces {
    Workspaces::new(dir.path().join("runs"))
}

const CODE_ACT: &str = r#"
turns:
  - when: { last: user }
    text: |
      I will follow the chain in one action.
      ```python
      node, path = "n0", []
      while node is not None:
          path.append(node)
          node = hop(node=node)["next"]
      print(" -> ".join(path))
      len(path)
      ```
  - when: { last: tool }
    text: "The chain: {{tool}}"
"#;

const JSON_CALLS: &str = r#"
turns:
  - when: { last: user }
    calls: [{ name: hop, arguments: { node: "n0" } }]
  - when: { last: tool, tool: '"next":"(?P<n>n\d+)"' }
    calls: [{ name: hop, arguments: { node: "{{n}}" } }]
  - when: { last: tool }
    text: "The chain ends."
"#;

#[tokio::test]
async fn a_code_action_makes_ten_calls_in_one_model_turn() {
    let dir = tempfile::tempdir().unwrap();
    let events = Collect::new();
    let agent = Agent::builder(model(CODE_ACT))
        .tool(hop())
        .code_actions()
        .workspaces(workspaces(&dir))
        .observer(Arc::new(events.clone()))
        .build()
        .unwrap();
    let out = agent.run("Follow the chain from n0.").await.unwrap();
    assert!(out.answer.contains("n0 -> n1 -> n2"), "{}", out.answer);
    assert!(out.answer.contains("n10"), "{}", out.answer);
    assert!(out.answer.contains(r#""result":11"#), "{}", out.answer);
    let events = events.events();
    let requests = events
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::ModelRequest { .. }))
        .count();
    assert_eq!(requests, 2, "the action, then the answer");
    // Every call from the code is a call of the run: recorded, after the code's call.
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::CallStarted { call, after, .. } => Some((call.name.clone(), after.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 12, "{started:?}");
    assert_eq!(started[0].0, "python");
    for (name, after) in &started[1..] {
        assert_eq!(name, "hop");
        assert_eq!(after, &["m1-code"]);
    }
    // The model was offered the python tool alone, its description naming `hop`.
    let tools = agent.tools().await.unwrap();
    let python = tools.get("python").unwrap().spec();
    assert!(
        python.description.contains("hop(node: str)"),
        "{}",
        python.description
    );

    // The same chain by JSON calls takes a model turn per hop.
    let agent = Agent::builder(model(JSON_CALLS))
        .tool(hop())
        .build()
        .unwrap();
    let out = agent.run("Follow the chain from n0.").await.unwrap();
    assert_eq!(out.calls.len(), 11);
}

#[tokio::test]
async fn calls_from_code_pass_validation_policy_and_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
turns:
  - when: { last: user }
    calls:
      - name: python
        arguments:
          code: |
            for args in [{"node": 3}, {"city": "x"}]:
                try:
                    hop(**args)
                except ToolError as e:
                    print("refused:", e)
            try:
                forbidden()
            except ToolError as e:
                print("denied:", e)
            hop("n1")
  - when: { last: tool }
    text: "{{tool}}"
"#;
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Nothing {}
    let forbidden = tool_fn("forbidden", "Never allowed.", |_: Nothing| async move {
        Ok::<_, String>("ran")
    });
    let policy = Policy::from_toml(
        r#"
[[rule]]
tool = "forbidden"
action = "deny"
reason = "not from code"
"#,
    )
    .unwrap();
    let agent = Agent::builder(model(script))
        .tool(hop())
        .tool(forbidden)
        .python("python3")
        .policy(policy)
        .workspaces(workspaces(&dir))
        .build()
        .unwrap();
    let out = agent.run("go").await.unwrap();
    let answer = &out.answer;
    assert!(answer.contains("refused: invalid_arguments"), "{answer}");
    assert!(answer.contains("denied: denied: not from code"), "{answer}");
    assert!(answer.contains(r#""result":{"next":"n2"}"#), "{answer}");

    // A budget of three calls: the code's own call and two of its calls.
    let script = r#"
turns:
  - when: { last: user }
    calls:
      - name: python
        arguments:
          code: |
            for i in range(5):
                try:
                    hop(node="n1")
                    print("ok")
                except ToolError as e:
                    print("stopped:", e)
  - when: { last: tool }
    text: "{{tool}}"
"#;
    let agent = Agent::builder(model(script))
        .tool(hop())
        .python("python3")
        .budget(Budget {
            tool_calls: Some(3),
            ..Budget::default()
        })
        .workspaces(workspaces(&dir))
        .build()
        .unwrap();
    let out = agent.run("go").await.unwrap();
    assert_eq!(out.answer.matches("ok").count(), 2, "{}", out.answer);
    assert!(
        out.answer
            .contains("stopped: denied: the run's tool-call budget is used up")
    );
}

#[tokio::test]
async fn code_that_fails_or_escapes_gets_the_reason_back() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
turns:
  - when: { last: user }
    calls:
      - { name: python, arguments: { code: "open('/etc/shadow').read()" } }
      - { name: python, arguments: { code: "import socket; socket.create_connection(('127.0.0.1', 9))" } }
      - { name: python, arguments: { code: "print('x'" } }
      - { name: python, arguments: { code: "open('kept.txt', 'w').write('in the workspace')" } }
  - when: { last: tool }
    text: "done"
"#;
    let agent = Agent::builder(model(script))
        .python("python3")
        .workspaces(workspaces(&dir))
        .build()
        .unwrap();
    let out = agent.run("go").await.unwrap();
    let mut results: Vec<_> = out
        .calls
        .iter()
        .map(|(c, r)| (c.id.clone(), r.clone()))
        .collect();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let text = |i: usize| results[i].1.content_for_model();
    assert!(text(0).contains("PermissionError"), "{}", text(0));
    assert!(text(1).contains("PermissionError"), "{}", text(1));
    assert!(text(2).contains("SyntaxError"), "{}", text(2));
    assert!(results[3].1.outcome.is_ok(), "{}", text(3));
    let kept = dir.path().join("runs").join(&out.run_id).join("kept.txt");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "in the workspace");
}

#[tokio::test]
async fn a_command_tool_passes_each_value_as_one_argument() {
    let dir = tempfile::tempdir().unwrap();
    let spec: CommandSpec = toml::from_str(
        r#"
description = "Prints its arguments, one per line."
argv = ["printf", "%s\n", "{first}", "{rest}"]
parameters = { type = "object", properties = { first = { type = "string" }, rest = { type = "array", items = { type = "string" } } }, required = ["first"] }
timeout = 5
"#,
    )
    .unwrap();
    let spec = CommandSpec {
        name: "echo_args".into(),
        ..spec
    };
    let tool = CommandTool::new(spec, workspaces(&dir)).unwrap();
    let script = r#"
turns:
  - when: { last: user }
    calls:
      - name: echo_args
        arguments: { first: "a b; touch pwned", rest: ["$(touch pwned2)", "`id`", "| cat /etc/shadow"] }
      - name: echo_args
        arguments: { first: "--help" }
      - name: echo_args
        arguments: { first: 3 }
  - when: { last: tool }
    text: "done"
"#;
    let agent = Agent::builder(model(script)).tool(tool).build().unwrap();
    let out = agent.run("go").await.unwrap();
    let mut results: Vec<_> = out
        .calls
        .iter()
        .map(|(c, r)| (c.id.clone(), r.clone()))
        .collect();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let first = results[0].1.outcome.as_ref().unwrap();
    assert_eq!(first["exit_code"], 0);
    assert_eq!(
        first["stdout"],
        "a b; touch pwned\n$(touch pwned2)\n`id`\n| cat /etc/shadow\n"
    );
    let ws = dir.path().join("runs").join(&out.run_id);
    assert!(!ws.join("pwned").exists() && !ws.join("pwned2").exists());
    let refused = results[1].1.content_for_model();
    assert!(refused.contains("would read it as an option"), "{refused}");
    let invalid = results[2].1.content_for_model();
    assert!(invalid.contains("invalid_arguments"), "{invalid}");
    let _ = Duration::ZERO;
}
