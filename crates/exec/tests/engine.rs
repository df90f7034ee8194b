//! The engine end to end on the simulated model: parallelism, plans, failures, budgets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use agentry_core::{ErrorKind, RunStatus, ToolError, ToolSpec, TraceEvent, TraceKind};
use agentry_exec::{Budget, Collect, Engine, EngineConfig, Mode};
use agentry_llm::sim::{Script, SimModel};
use agentry_tools::{FnTool, ToolSet, demo_tools};
use pretty_assertions::assert_eq;
use serde_json::json;

fn engine(script: &str, tools: ToolSet, cfg: EngineConfig) -> Engine {
    let model = SimModel::new(Script::parse(script, "test").unwrap());
    Engine::new(Arc::new(model), Arc::new(tools), cfg)
}

fn tools() -> ToolSet {
    demo_tools(Duration::ZERO)
}

/// `(call name, start µs, end µs, result)` of every finished call.
fn calls(events: &[TraceEvent]) -> Vec<(String, u64, u64, Result<serde_json::Value, ErrorKind>)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::CallFinished {
                result,
                duration_us,
                ..
            } => Some((
                result.name.clone(),
                e.at_us - duration_us,
                e.at_us,
                result.outcome.clone().map_err(|err| err.kind()),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn sequential_runs_a_turns_calls_concurrently() {
    let script = r#"{"turns": [
        {"when": {"last": "user"}, "calls": [{"name": "sleep", "arguments": {"ms": 300, "tag": "a"}}, {"name": "sleep", "arguments": {"ms": 300, "tag": "b"}}]},
        {"when": {"last": "tool"}, "text": "both done"}]}"#;
    let e = engine(script, tools(), EngineConfig::new(Mode::Sequential));
    let trace = Collect::new();
    let t = Instant::now();
    let out = e.run("sleep twice", &trace).await;
    assert_eq!(out.status, RunStatus::Answered);
    assert_eq!(out.answer.as_deref(), Some("both done"));
    // One after the other, the two waits alone would take 600 ms.
    assert!(
        t.elapsed() < Duration::from_millis(590),
        "{:?}",
        t.elapsed()
    );
    let c = calls(&trace.events());
    assert_eq!(c.len(), 2);
    assert!(
        c[0].1 < c[1].2 && c[1].1 < c[0].2,
        "the two calls did not overlap: {c:?}"
    );
    let kinds: Vec<&str> = trace.events().iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    assert_eq!(out.calls, 2);
}

const PLAN: &str = r#"{"latency": {"ttft_ms": 10, "tokens_per_s": 300}, "format": "text", "turns": [
  {"when": {"user": "(?m)^Observations:"}, "text": "Compared: {{user}}"},
  {"when": {"last": "user"}, "text": "1. sleep(ms=120, tag=\"one\")\n2. sleep(ms=120, tag=\"two\")\n3. calculator(expression=\"$1.slept_ms + $2.slept_ms\")\n4. kv_set(key=\"sum\", value=$3)\n5. join()\n"}
]}"#;

#[tokio::test]
async fn compiled_dispatches_tasks_while_the_plan_streams_and_respects_dependencies() {
    let e = engine(PLAN, tools(), EngineConfig::new(Mode::Compiled));
    let trace = Collect::new();
    let out = e.run("add two waits", &trace).await;
    assert_eq!(out.status, RunStatus::Answered, "{out:?}");
    let answer = out.answer.unwrap();
    assert!(
        answer.contains("3. calculator") && answer.contains("-> 240"),
        "{answer}"
    );
    let events = trace.events();
    // Task 1 starts before the plan's response has ended.
    let plan_done = events
        .iter()
        .find(|e| matches!(&e.kind, TraceKind::ModelResponse { step, .. } if step == "m1"))
        .unwrap()
        .at_us;
    let first_start = events
        .iter()
        .find(|e| matches!(&e.kind, TraceKind::CallStarted { task: Some(1), .. }))
        .unwrap()
        .at_us;
    assert!(
        first_start < plan_done,
        "task 1 started at {first_start} µs, the plan ended at {plan_done} µs"
    );
    let c = calls(&events);
    let by = |name: &str| c.iter().find(|x| x.0 == name).unwrap().clone();
    let (sleeps, calc, kv) = (
        c.iter()
            .filter(|x| x.0 == "sleep")
            .cloned()
            .collect::<Vec<_>>(),
        by("calculator"),
        by("kv_set"),
    );
    assert!(
        sleeps[0].1 < sleeps[1].2 && sleeps[1].1 < sleeps[0].2,
        "independent tasks must overlap: {sleeps:?}"
    );
    assert!(
        calc.1 >= sleeps[0].2.max(sleeps[1].2),
        "the calculator ran before its inputs: {c:?}"
    );
    assert!(kv.1 >= calc.2);
    assert_eq!(calc.3, Ok(json!(240)));
    // The task numbers and what each waited for are recorded.
    let after: Vec<Vec<String>> = events
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::CallStarted {
                task: Some(3),
                after,
                ..
            } => Some(after.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        after,
        vec![vec!["m1".to_owned(), "t1".to_owned(), "t2".to_owned()]]
    );
}

#[tokio::test]
async fn a_bad_plan_is_sent_back_for_a_replan() {
    let script = r#"{"format": "text", "turns": [
      {"when": {"user": "cannot run"}, "text": "1. calculator(expression=\"2 + 2\")\n2. join()"},
      {"when": {"user": "(?m)^Observations:"}, "text": "four"},
      {"when": {"last": "user"}, "text": "1. calculator(expression=\"$2\")\n2. teleport(to=\"Mars\")\n3. join()"}
    ]}"#;
    let e = engine(script, tools(), EngineConfig::new(Mode::Compiled));
    let trace = Collect::new();
    let out = e.run("2+2", &trace).await;
    assert_eq!(out.answer.as_deref(), Some("four"), "{out:?}");
    let rejected: Vec<String> = trace
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::PlanRejected { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0].contains("refers to $2, which is not an earlier task"),
        "{}",
        rejected[0]
    );
    assert!(
        rejected[0].contains("`teleport`, which is not a tool"),
        "{}",
        rejected[0]
    );
}

#[tokio::test]
async fn rejected_plans_end_the_run_when_no_replans_are_left() {
    let script = r#"{"format": "text", "turns": [{"text": "1. f(x=$1)\n2. join()"}]}"#;
    let cfg = EngineConfig::new(Mode::Compiled).budget(Budget {
        replans: 1,
        ..Budget::default()
    });
    let out = engine(script, tools(), cfg)
        .run("loop", &Collect::new())
        .await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(out.reason.unwrap().contains("refers to its own result $1"));
}

#[tokio::test]
async fn ten_thousand_tasks_are_refused_not_run() {
    let plan: String = (1..=10_000)
        .map(|i| format!("{i}. calculator(expression=\"{i}\")\n"))
        .collect();
    let script = json!({"format": "text", "turns": [{"text": plan}]}).to_string();
    let cfg = EngineConfig::new(Mode::Compiled).budget(Budget {
        replans: 0,
        tool_calls: None,
        ..Budget::default()
    });
    let out = engine(&script, tools(), cfg)
        .run("huge", &Collect::new())
        .await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(out.reason.unwrap().contains("more than 1000 tasks"));
    assert!(out.calls <= 1000, "{}", out.calls);
}

fn failing_tools(attempts: Arc<AtomicU32>) -> ToolSet {
    let mut set = tools();
    let spec = |name: &str| ToolSpec::new(name, "test tool", json!({"type": "object"}));
    let a = Arc::clone(&attempts);
    set.add(
        FnTool::new(spec("flaky"), move |_, _| {
            let n = a.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                if n < 3 {
                    Err(ToolError::unavailable("try again"))
                } else {
                    Ok(json!({"attempt": n}))
                }
            }
        })
        .idempotent(true),
    )
    .unwrap();
    set.add(FnTool::new(spec("unsafe_flaky"), |_, _| async {
        Err(ToolError::unavailable("down"))
    }))
    .unwrap();
    set.add(FnTool::new(spec("boom"), |_, _| async {
        panic!("tool bug: index out of range")
    }))
    .unwrap();
    set.add(FnTool::new(spec("huge"), |_, _| async {
        Ok(json!("x".repeat(50 * 1024 * 1024)))
    }))
    .unwrap();
    set.add(FnTool::new(spec("forever"), |_, _| std::future::pending()))
        .unwrap();
    set
}

#[tokio::test]
async fn failures_become_results_the_model_sees() {
    let script = r#"{"turns": [
        {"when": {"last": "user"}, "calls": [
            {"name": "flaky"}, {"name": "unsafe_flaky"}, {"name": "boom"}, {"name": "huge"}, {"name": "forever"},
            {"name": "nope"}, {"name": "get_weather", "arguments": {"town": "Paris"}}]},
        {"when": {"last": "tool"}, "text": "saw: {{tool}}"}]}"#;
    let attempts = Arc::new(AtomicU32::new(0));
    let cfg = EngineConfig {
        call_timeout: Duration::from_secs(30),
        retry_backoff: Duration::from_millis(1),
        ..EngineConfig::new(Mode::Sequential)
    }
    .tool_timeout("forever", Duration::from_millis(100));
    let trace = Collect::new();
    let t = Instant::now();
    let out = engine(script, failing_tools(Arc::clone(&attempts)), cfg)
        .run("break things", &trace)
        .await;
    assert_eq!(out.status, RunStatus::Answered);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let results: Vec<(String, Result<serde_json::Value, ErrorKind>)> = calls(&trace.events())
        .into_iter()
        .map(|c| (c.0, c.3))
        .collect();
    let find = |n: &str| results.iter().find(|r| r.0 == n).unwrap().1.clone();
    assert_eq!(find("flaky"), Ok(json!({"attempt": 3})));
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert_eq!(find("unsafe_flaky"), Err(ErrorKind::Unavailable));
    assert_eq!(find("boom"), Err(ErrorKind::ToolFailed));
    assert_eq!(find("huge"), Err(ErrorKind::ToolFailed));
    assert_eq!(find("forever"), Err(ErrorKind::Timeout));
    assert_eq!(find("nope"), Err(ErrorKind::UnknownTool));
    assert_eq!(find("get_weather"), Err(ErrorKind::InvalidArguments));
    let attempts_of = |name: &str| {
        trace.events().iter().find_map(|e| match &e.kind {
            TraceKind::CallFinished {
                result, attempts, ..
            } if result.name == name => Some(*attempts),
            _ => None,
        })
    };
    assert_eq!(attempts_of("flaky"), Some(3));
    assert_eq!(
        attempts_of("unsafe_flaky"),
        Some(1),
        "a tool not declared idempotent is not retried"
    );
    // The panic's message stays out of what the model reads.
    let answer = out.answer.unwrap();
    assert!(!answer.contains("index out of range"), "{answer}");
}

#[tokio::test]
async fn a_wall_budget_ends_the_run_and_records_the_cut_call() {
    let script = r#"{"turns": [{"when": {"last": "user"}, "calls": [{"name": "sleep", "arguments": {"ms": 10000}}]}, {"text": "never"}]}"#;
    let cfg = EngineConfig::new(Mode::Sequential).budget(Budget {
        wall: Some(Duration::from_millis(150)),
        ..Budget::default()
    });
    let trace = Collect::new();
    let t = Instant::now();
    let out = engine(script, tools(), cfg).run("wait", &trace).await;
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(out.status, RunStatus::BudgetExhausted);
    assert!(out.reason.unwrap().contains("wall-time budget"));
    assert_eq!(calls(&trace.events())[0].3, Err(ErrorKind::Unavailable));
}

#[tokio::test]
async fn call_and_turn_budgets() {
    let script = r#"{"turns": [{"calls": [{"name": "calculator", "arguments": {"expression": "1"}}, {"name": "calculator", "arguments": {"expression": "2"}}, {"name": "calculator", "arguments": {"expression": "3"}}]}]}"#;
    let cfg = EngineConfig::new(Mode::Sequential).budget(Budget {
        tool_calls: Some(2),
        ..Budget::default()
    });
    let out = engine(script, tools(), cfg)
        .run("count", &Collect::new())
        .await;
    assert_eq!(out.status, RunStatus::BudgetExhausted);
    assert_eq!(out.calls, 2);
    let cfg = EngineConfig::new(Mode::Sequential).budget(Budget {
        turns: 3,
        ..Budget::default()
    });
    let out = engine(script, tools(), cfg)
        .run("count", &Collect::new())
        .await;
    assert_eq!(out.status, RunStatus::BudgetExhausted);
    assert!(out.reason.unwrap().contains("within 3 turns"));
    assert_eq!(out.calls, 9);
}

#[tokio::test]
async fn garbage_from_the_model_goes_back_as_an_error_it_can_fix() {
    let script = r#"{"format": "hermes", "turns": [
        {"when": {"turn": 1}, "text": "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": }}</tool_call>"},
        {"when": {"last": "user", "user": "could not be read"}, "calls": [{"name": "calculator", "arguments": {"expression": "1 + 1"}}]},
        {"when": {"last": "tool"}, "text": "{{tool}}"}]}"#;
    let out = engine(script, tools(), EngineConfig::new(Mode::Sequential))
        .run("add", &Collect::new())
        .await;
    assert_eq!(out.answer.as_deref(), Some("2"), "{out:?}");
}

#[tokio::test]
async fn cancellation_stops_the_run() {
    let script = r#"{"turns": [{"calls": [{"name": "sleep", "arguments": {"ms": 10000}}]}]}"#;
    let e = engine(script, tools(), EngineConfig::new(Mode::Sequential));
    let cancel = tokio_util::sync::CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.cancel();
    });
    let t = Instant::now();
    let out = e.run_with("wait", &Collect::new(), cancel, "r-test").await;
    assert_eq!(out.status, RunStatus::Cancelled);
    assert_eq!(out.run_id, "r-test");
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_recorded_run_replays_step_for_step() {
    for (script, mode) in [
        (PLAN, Mode::Compiled),
        (
            r#"{"turns": [
        {"when": {"last": "user"}, "calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_weather", "arguments": {"city": "Lima"}}]},
        {"when": {"last": "tool"}, "text": "{{tool}}"}]}"#,
            Mode::Sequential,
        ),
    ] {
        let trace = Collect::new();
        let out = engine(script, tools(), EngineConfig::new(mode))
            .run("replay me", &trace)
            .await;
        assert_eq!(out.status, RunStatus::Answered);
        let recorded = trace.events();
        let report = agentry_exec::replay(&recorded, EngineConfig::new(mode)).await;
        assert_eq!(report.divergence, None, "{mode:?}");
        assert!(report.steps >= 6, "{}", report.steps);

        // A recording whose call does not match what the model asked for: the replay names it.
        let mut tampered = recorded.clone();
        for e in &mut tampered {
            if let TraceKind::CallStarted { call, .. } = &mut e.kind {
                call.arguments = json!({"tampered": true});
                break;
            }
        }
        let report = agentry_exec::replay(&tampered, EngineConfig::new(mode)).await;
        let d = report.divergence.expect("a divergence");
        assert!(
            d.expected.contains("tampered") || d.got.contains("not in the recording"),
            "{d}"
        );
    }
}

/// A user who answers from a list, then ends the conversation.
struct ListUser(
    std::sync::Mutex<Vec<&'static str>>,
    std::sync::Mutex<Vec<String>>,
);

impl agentry_exec::Interlocutor for ListUser {
    fn reply<'a>(
        &'a self,
        message: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<agentry_exec::Reply, agentry_exec::ReplyError>> {
        self.1.lock().unwrap().push(message.to_owned());
        let next = self.0.lock().unwrap().pop();
        Box::pin(async move {
            Ok(match next {
                Some(text) => agentry_exec::Reply::Say(text.to_owned()),
                None => agentry_exec::Reply::End("###STOP###".to_owned()),
            })
        })
    }
}

const CONVERSATION: &str = r#"{"turns": [
  {"when": {"last": "user", "user": "^hello"}, "text": "What shall I compute?"},
  {"when": {"last": "user", "user": "^six times (?P<n>\\d+)"}, "calls": [{"name": "calculator", "arguments": {"expression": "6 * {{n}}"}}, {"name": "kv_set", "arguments": {"key": "k", "value": "v"}}]},
  {"when": {"last": "tool"}, "text": "It is {{tool}}."},
  {"when": {"last": "user", "user": "^thanks"}, "text": "You are welcome."}]}"#;

#[tokio::test]
async fn a_conversation_goes_on_until_the_user_ends_it_and_replays() {
    let cfg = EngineConfig {
        calls_per_turn: Some(1),
        ..EngineConfig::new(Mode::Compiled) // a conversation is turn by turn whatever the mode
    };
    let e = engine(CONVERSATION, tools(), cfg.clone());
    let user = ListUser(
        std::sync::Mutex::new(vec!["thanks", "six times 7"]),
        std::sync::Mutex::default(),
    );
    let trace = Collect::new();
    let out = e
        .converse("hello", &user, &trace, Default::default(), "r-conv")
        .await;
    assert_eq!(out.status, RunStatus::Answered);
    assert_eq!(out.answer.as_deref(), Some("You are welcome."));
    // Only the first call of the turn ran: calls_per_turn = 1.
    assert_eq!(out.calls, 1);
    assert_eq!(
        *user.1.lock().unwrap(),
        ["What shall I compute?", "It is 42.", "You are welcome."]
    );
    let events = trace.events();
    let replies: Vec<(String, bool)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::UserReply { text, ends, .. } => Some((text.clone(), *ends)),
            _ => None,
        })
        .collect();
    assert_eq!(
        replies,
        [
            ("six times 7".to_owned(), false),
            ("thanks".to_owned(), false),
            ("###STOP###".to_owned(), true)
        ]
    );
    assert!(matches!(&events[0].kind, TraceKind::RunStarted { mode, .. } if mode == "sequential"));
    // The recording replays step for step, the user's replies included.
    let report = agentry_exec::replay(&events, cfg).await;
    assert_eq!(report.divergence, None);
    assert!(report.steps > 8, "{}", report.steps);
}

#[tokio::test]
async fn a_stop_tool_ends_the_run() {
    let script = r#"{"turns": [
        {"when": {"last": "user"}, "calls": [{"name": "kv_set", "arguments": {"key": "k", "value": "v"}}]},
        {"when": {"last": "tool"}, "text": "not reached"}]}"#;
    let cfg = EngineConfig {
        stop_tools: vec!["kv_set".into()],
        ..EngineConfig::new(Mode::Sequential)
    };
    let trace = Collect::new();
    let out = engine(script, tools(), cfg.clone())
        .run("store", &trace)
        .await;
    assert_eq!(out.status, RunStatus::Stopped);
    assert_eq!(out.reason.as_deref(), Some("`kv_set` ended the run"));
    let report = agentry_exec::replay(&trace.events(), EngineConfig::default()).await;
    assert_eq!(
        report.divergence, None,
        "the stop tools travel in the recording"
    );
}

#[derive(Debug)]
struct Human(bool);

impl agentry_policy::Approver for Human {
    fn approve<'a>(
        &'a self,
        request: &'a agentry_policy::Approval,
    ) -> futures::future::BoxFuture<'a, bool> {
        assert_eq!(request.call.name, "kv_set");
        Box::pin(async move { self.0 })
    }
}

#[tokio::test]
async fn the_policy_sees_every_call_and_its_decisions_are_recorded() {
    let script = r#"{"turns": [
        {"when": {"last": "user"}, "calls": [
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "calculator", "arguments": {"expression": "6 * 7"}},
            {"name": "kv_set", "arguments": {"key": "k", "value": "v"}}]},
        {"when": {"last": "tool"}, "text": "{{tool}}"}]}"#;
    for (approver, kv) in [
        (Some(true), "ok"),
        (Some(false), "a human refused this call"),
        (None, "no approver is configured"),
    ] {
        let cfg = EngineConfig {
            policy: Some(Arc::new(policy())),
            approver: approver.map(|a| Arc::new(Human(a)) as Arc<dyn agentry_policy::Approver>),
            ..EngineConfig::new(Mode::Sequential)
        };
        let trace = Collect::new();
        let out = engine(script, tools(), cfg).run("go", &trace).await;
        let results: Vec<(String, Result<serde_json::Value, String>)> = trace
            .events()
            .iter()
            .filter_map(|e| match &e.kind {
                TraceKind::CallFinished { result, .. } => Some((
                    result.name.clone(),
                    result
                        .outcome
                        .clone()
                        .map_err(|e| format!("{}: {}", e.kind(), e.for_model())),
                )),
                _ => None,
            })
            .collect();
        let find = |name: &str, pick: usize| {
            results
                .iter()
                .filter(|r| r.0 == name)
                .nth(pick)
                .unwrap()
                .1
                .clone()
        };
        let oslo_or_paris: Vec<_> = results
            .iter()
            .filter(|r| r.0 == "get_weather")
            .map(|r| r.1.is_ok())
            .collect();
        assert_eq!(
            oslo_or_paris.iter().filter(|ok| !**ok).count(),
            1,
            "{results:?}"
        );
        assert!(results.iter().any(|r| {
            r.1.as_ref()
                .err()
                .is_some_and(|e| e == "denied: Oslo is off limits")
        }));
        // The rewrite ran the calculator on the policy's expression.
        assert_eq!(find("calculator", 0).unwrap(), json!(2));
        match find("kv_set", 0) {
            Ok(_) => assert_eq!(kv, "ok"),
            Err(e) => assert!(e.starts_with("denied: ") && e.contains(kv), "{e}"),
        }
        let decisions: Vec<(agentry_core::PolicyAction, Option<bool>)> = trace
            .events()
            .iter()
            .filter_map(|e| match &e.kind {
                TraceKind::PolicyDecision {
                    action, approved, ..
                } => Some((*action, *approved)),
                _ => None,
            })
            .collect();
        assert_eq!(decisions.len(), 4, "{decisions:?}");
        assert!(decisions.contains(&(agentry_core::PolicyAction::Ask, approver)));
        assert!(decisions.contains(&(agentry_core::PolicyAction::Rewrite, None)));
        assert_eq!(out.status, RunStatus::Answered);
        // The run replays with its recorded outcomes, policy decisions included.
        let report = agentry_exec::replay(&trace.events(), EngineConfig::default()).await;
        assert_eq!(report.divergence, None);
    }

    // An agent sees only the tools its capabilities name.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cfg = EngineConfig {
        policy: Some(Arc::new(policy())),
        agent: Some("restricted".into()),
        ..EngineConfig::new(Mode::Sequential)
    };
    let model = Spy(Arc::clone(&seen));
    let e = Engine::new(Arc::new(model), Arc::new(tools()), cfg);
    e.run("what can you do?", &agentry_exec::NoObserver).await;
    let mut names = seen.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["calculator", "get_weather", "kv_set"]);
}

/// A fresh policy for each run (a policy holds its rate counters).
fn policy() -> agentry_policy::Policy {
    agentry_policy::Policy::from_toml(
        r#"
        [[rule]]
        name = "no oslo"
        tool = "get_weather"
        when = [{ path = "/city", equals = "Oslo" }]
        action = "deny"
        reason = "Oslo is off limits"

        [[rule]]
        tool = "calculator"
        action = "rewrite"
        set = { "/expression" = "1 + 1" }

        [[rule]]
        tool = "kv_set"
        action = "ask"

        [agent.restricted]
        tools = ["get_weather", "calculator", "kv_set"]
        "#,
    )
    .unwrap()
}

/// A model that records the tools it is offered and answers at once.
struct Spy(Arc<std::sync::Mutex<Vec<String>>>);

impl agentry_llm::Model for Spy {
    fn name(&self) -> String {
        "spy".into()
    }

    fn stream(&self, request: agentry_llm::ChatRequest) -> agentry_llm::ModelStream {
        *self.0.lock().unwrap() = request.tools.iter().map(|t| t.name.clone()).collect();
        let done = agentry_llm::Completion {
            finish_reason: agentry_llm::FinishReason::Stop,
            usage: Default::default(),
            timing: Default::default(),
        };
        Box::pin(futures::stream::iter(vec![
            Ok(agentry_llm::ModelEvent::Text("nothing".into())),
            Ok(agentry_llm::ModelEvent::Done(done)),
        ]))
    }
}

/// `(name, arguments, result)` of every call that started, in order.
fn started(events: &[TraceEvent]) -> Vec<(String, serde_json::Value)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::CallStarted { call, .. } => {
                Some((call.name.clone(), call.arguments.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_whole_reference_is_substituted_in_the_type_its_parameter_wants() {
    // What the local model writes: a number result into calculator's string parameter.
    let script = r#"{"format": "text", "turns": [
      {"when": {"user": "(?m)^Observations:"}, "text": "Answer: {{user}}"},
      {"when": {"last": "user"}, "text": "1. get_weather(city=\"Oslo\")\n2. calculator(expression=\"$1.temp_c\")\n3. join()"}
    ]}"#;
    let trace = Collect::new();
    let out = engine(script, tools(), EngineConfig::new(Mode::Compiled))
        .run("Oslo's temperature", &trace)
        .await;
    assert_eq!(out.status, RunStatus::Answered, "{out:?}");
    let events = trace.events();
    let calc = started(&events)
        .into_iter()
        .find(|(name, _)| name == "calculator")
        .unwrap();
    let temp = calls(&events)
        .into_iter()
        .find(|c| c.0 == "get_weather")
        .and_then(|c| c.3.ok())
        .unwrap()["temp_c"]
        .clone();
    assert_eq!(calc.1, json!({"expression": temp.to_string()}));
    let result = calls(&events)
        .into_iter()
        .find(|c| c.0 == "calculator")
        .unwrap();
    assert_eq!(result.3, Ok(temp));
}

#[tokio::test]
async fn a_replan_repeating_a_failed_call_does_not_run_it_again() {
    let script = r#"{"format": "text", "turns": [
      {"when": {"user": "(?m)^Observations:"}, "text": "Replan: {{user}}"},
      {"when": {"last": "user"}, "text": "1. calculator(expression=\"1 +\")\n2. join()"}
    ]}"#;
    let trace = Collect::new();
    let cfg = EngineConfig::new(Mode::Compiled).budget(Budget {
        replans: 2,
        ..Budget::default()
    });
    let out = engine(script, tools(), cfg).run("one plus", &trace).await;
    assert_eq!(out.status, RunStatus::BudgetExhausted, "{out:?}");
    // Three plans, one run of the failing call; the joiner reads why it was not run again.
    assert_eq!(started(&trace.events()).len(), 1);
    let reason = out.reason.unwrap();
    assert!(reason.contains("not run again"), "{reason}");
}

#[tokio::test]
async fn identical_calls_in_one_reply_run_once_and_each_gets_the_result() {
    let same = r#"{"name": "get_weather", "arguments": {"city": "Oslo"}}"#;
    let script = format!(
        r#"{{"turns": [
        {{"when": {{"last": "user"}}, "calls": [{}, {{"name": "get_weather", "arguments": {{"city": "Lima"}}}}]}},
        {{"when": {{"last": "tool"}}, "text": "done"}}]}}"#,
        [same; 12].join(", ")
    );
    let trace = Collect::new();
    let out = engine(&script, tools(), EngineConfig::new(Mode::Sequential))
        .run("weather", &trace)
        .await;
    assert_eq!(out.status, RunStatus::Answered, "{out:?}");
    let events = trace.events();
    assert_eq!(started(&events).len(), 2);
    assert_eq!(out.calls, 2);
    // The next request carried an answer for each of the 13 calls the model made.
    let requests: Vec<usize> = events
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::ModelRequest { messages, .. } => Some(*messages),
            _ => None,
        })
        .collect();
    assert_eq!(requests, vec![1, 1 + 1 + 13]);
    // And the replay agrees.
    let report = agentry_exec::replay(&events, EngineConfig::new(Mode::Sequential)).await;
    assert_eq!(report.divergence, None);
}

#[tokio::test]
async fn calls_past_the_per_reply_cap_do_not_run_and_the_model_is_told() {
    let many: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"name": "calculator", "arguments": {{"expression": "{i} + 1"}}}}"#))
        .collect();
    let script = format!(
        r#"{{"turns": [
        {{"when": {{"turn": 1}}, "calls": [{}]}},
        {{"when": {{"last": "user", "user": "only the first 16 ran and the other 4 did not"}}, "text": "understood"}}]}}"#,
        many.join(", ")
    );
    let trace = Collect::new();
    let out = engine(&script, tools(), EngineConfig::new(Mode::Sequential))
        .run("count", &trace)
        .await;
    assert_eq!(out.answer.as_deref(), Some("understood"), "{out:?}");
    assert_eq!(started(&trace.events()).len(), 16);
}

#[tokio::test]
async fn a_model_repeating_the_same_call_ends_the_run_as_a_loop() {
    let script =
        r#"{"turns": [{"calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}]}"#;
    let trace = Collect::new();
    let out = engine(script, tools(), EngineConfig::new(Mode::Sequential))
        .run("weather", &trace)
        .await;
    assert_eq!(out.status, RunStatus::LoopDetected, "{out:?}");
    assert_eq!(started(&trace.events()).len(), 4);
    let reason = out.reason.unwrap();
    assert!(
        reason.contains("`get_weather` was called 4 times"),
        "{reason}"
    );
    // Without the limit, the turn budget ends it.
    let cfg = EngineConfig::new(Mode::Sequential).budget(Budget {
        repeats: None,
        turns: 6,
        ..Budget::default()
    });
    let out = engine(script, tools(), cfg)
        .run("weather", &Collect::new())
        .await;
    assert_eq!(out.status, RunStatus::BudgetExhausted, "{out:?}");
    assert_eq!(out.calls, 6);
}

#[tokio::test]
async fn a_run_with_malformed_model_output_replays_step_for_step() {
    let script = r#"{"format": "hermes", "turns": [
        {"when": {"turn": 1}, "text": "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": }}</tool_call>"},
        {"when": {"last": "user", "user": "could not be read"}, "calls": [{"name": "calculator", "arguments": {"expression": "1 + 1"}}]},
        {"when": {"last": "tool"}, "text": "{{tool}}"}]}"#;
    // The corrective message sent back for the malformed call must be sent again.
    let trace = Collect::new();
    let out = engine(script, tools(), EngineConfig::new(Mode::Sequential))
        .run("add", &trace)
        .await;
    assert_eq!(out.answer.as_deref(), Some("2"), "{out:?}");
    let recorded = trace.events();
    let malformed = recorded.iter().any(
        |e| matches!(&e.kind, TraceKind::ModelResponse { malformed, .. } if !malformed.is_empty()),
    );
    assert!(malformed);
    let report = agentry_exec::replay(&recorded, EngineConfig::new(Mode::Sequential)).await;
    assert_eq!(report.divergence, None);
}
