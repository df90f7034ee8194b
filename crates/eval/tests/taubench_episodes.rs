//! Whole episodes through the engine: the floor (`noop`), the ceiling (`oracle`, the ground
//! truth played as an agent), a wrong write, a conversation that never ends, an LLM user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, sync::Arc};

use agentry_core::TraceKind;
use agentry_eval::taubench::{
    DomainData, Report, Split,
    episode::{Agent, EpisodeConfig, Plan, UserModel, run_episode, run_episodes},
};
use agentry_exec::{Collect, NoObserver};
use agentry_llm::sim::{Script, SimModel};
use tokio_util::sync::CancellationToken;

fn data(split: Split) -> DomainData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/taubench");
    DomainData::load(&dir, "retail", split).expect("the τ-bench data must be at ../shared/taubench")
}

fn scripted() -> UserModel {
    UserModel::Scripted(vec!["Hi, I need help with an order.".into()])
}

async fn run_all(data: &DomainData, agent: Agent) -> Report {
    let plan = Plan {
        tasks: (0..data.tasks.len()).collect(),
        trials: 1,
        concurrency: 8,
    };
    let t = std::time::Instant::now();
    let episodes = run_episodes(
        data,
        &plan,
        &agent,
        &scripted(),
        &EpisodeConfig::default(),
        &NoObserver,
        &CancellationToken::new(),
        &|_| {},
    )
    .await;
    Report::new(
        data,
        agent.name(),
        "scripted".into(),
        1,
        episodes,
        t.elapsed(),
        Some((1.0, 2.0)),
    )
}

#[tokio::test]
async fn the_noop_agent_scores_the_specs_floor() {
    // DESIGN.md / SOURCE.md: tasks whose ground truth changes nothing and that need no
    // output are passed by an agent that writes nothing: 7 of 115 (test), 1 of 20 (dev),
    // 5 of 500 (train).
    for (split, floor) in [(Split::Test, 7), (Split::Dev, 1), (Split::Train, 5)] {
        let data = data(split);
        let report = run_all(&data, Agent::Noop).await;
        let passed: Vec<usize> = report
            .episodes
            .iter()
            .filter(|e| e.reward == 1.0)
            .map(|e| e.task_index)
            .collect();
        assert_eq!(passed.len(), floor, "{split:?}: {passed:?}");
        assert!(
            report
                .episodes
                .iter()
                .all(|e| e.ended == "terminal_tool" && e.calls == 1)
        );
        assert_eq!(report.pass_hat_k, [floor as f64 / data.tasks.len() as f64]);
    }
}

#[tokio::test]
async fn the_ground_truth_played_as_an_agent_scores_one_on_every_task() {
    for split in Split::ALL {
        let data = data(split);
        let report = run_all(&data, Agent::Oracle).await;
        let failed: Vec<String> = report
            .episodes
            .iter()
            .filter(|e| e.reward != 1.0)
            .map(|e| {
                format!(
                    "{}: {} db {} outputs {:?} {:?}",
                    e.task_index, e.ended, e.db_match, e.outputs, e.reason
                )
            })
            .collect();
        assert!(
            failed.is_empty(),
            "{split:?}: {} failed:\n{}",
            failed.len(),
            failed.join("\n")
        );
        assert_eq!(report.average_reward, 1.0);
        // The built-in agents use no tokens: they cost nothing.
        assert_eq!(
            (report.agent_cost_usd, report.cost_per_success_usd),
            (Some(0.0), Some(0.0))
        );
    }
}

fn agent(script: &str) -> Agent {
    Agent::Model(Arc::new(SimModel::new(
        Script::parse(script, "agent").unwrap(),
    )))
}

#[tokio::test]
async fn a_wrong_write_scores_zero_and_the_trace_shows_the_conversation() {
    // Dev task 0 cancels #W5442520 for "no longer needed"; this agent says "ordered by mistake".
    let data = data(Split::Dev);
    let agent = agent(
        r##"{"turns": [
        {"when": {"last": "user", "user": "^Hi"}, "calls": [{"name": "cancel_pending_order", "arguments": {"order_id": "#W5442520", "reason": "ordered by mistake"}}]},
        {"when": {"last": "tool"}, "text": "Your order is cancelled."}]}"##,
    );
    let trace = Collect::new();
    let r = run_episode(
        &data,
        0,
        0,
        &agent,
        &scripted(),
        &EpisodeConfig::default(),
        &trace,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        (r.reward, r.db_match, r.ended.as_str()),
        (0.0, false, "user_stop")
    );
    assert_eq!(r.calls, 1);
    // (Calls may start while the model's response is still streaming: they are left out.)
    let kinds: Vec<&str> = trace
        .events()
        .iter()
        .filter(|e| !e.kind.is_ephemeral())
        .map(|e| e.kind.name())
        .filter(|k| !k.starts_with("call_"))
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "model_request",
            "model_response",
            "model_request",
            "model_response",
            "user_reply",
            "run_finished"
        ]
    );
    // The same write with the right reason scores 1.
    let agent = agent_right();
    let r = run_episode(
        &data,
        0,
        0,
        &agent,
        &scripted(),
        &EpisodeConfig::default(),
        &NoObserver,
        CancellationToken::new(),
    )
    .await;
    assert_eq!((r.reward, r.db_match), (1.0, true));
}

fn agent_right() -> Agent {
    agent(
        r##"{"turns": [
        {"when": {"last": "user", "user": "^Hi"}, "calls": [{"name": "cancel_pending_order", "arguments": {"order_id": "#W5442520", "reason": "no longer needed"}}]},
        {"when": {"last": "tool"}, "text": "Your order is cancelled."}]}"##,
    )
}

#[tokio::test]
async fn bad_calls_go_back_to_the_model_and_an_endless_conversation_stops_at_the_step_limit() {
    let data = data(Split::Dev);
    // A call with a wrong type is refused by validation before the tool runs; an unknown
    // tool likewise; the agent then chats forever with a user who never stops.
    let agent = agent(
        r##"{"turns": [
        {"when": {"last": "user", "user": "^Hi"}, "calls": [{"name": "get_order_details", "arguments": {"order_id": 42}}]},
        {"when": {"last": "tool", "tool": "invalid_arguments"}, "calls": [{"name": "drop_all_orders", "arguments": {}}]},
        {"when": {"last": "tool"}, "text": "Could you say that again?"},
        {"when": {"last": "user"}, "text": "Could you say that again?"}]}"##,
    );
    let user = UserModel::Scripted(vec!["Hi".into(); 100]);
    let cfg = EpisodeConfig {
        max_steps: 6,
        ..EpisodeConfig::default()
    };
    let trace = Collect::new();
    let r = run_episode(
        &data,
        0,
        0,
        &agent,
        &user,
        &cfg,
        &trace,
        CancellationToken::new(),
    )
    .await;
    assert_eq!((r.reward, r.ended.as_str()), (0.0, "max_steps"));
    assert!(
        r.reason.as_deref().unwrap().contains("6 turns"),
        "{:?}",
        r.reason
    );
    let errors: Vec<String> = trace
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::CallFinished { result, .. } => {
                result.outcome.as_ref().err().map(|e| e.kind().to_string())
            }
            _ => None,
        })
        .collect();
    // Each time the user says "Hi" the agent starts over: a bad call, an unknown tool.
    assert_eq!(errors[..2], ["invalid_arguments", "unknown_tool"]);
    assert_eq!(errors.len() as u64, r.calls);
    assert!(
        errors
            .chunks(2)
            .all(|c| c[0] == "invalid_arguments" && c.get(1).is_none_or(|k| k == "unknown_tool"))
    );
}

#[tokio::test]
async fn an_llm_user_follows_the_tau_bench_prompt_and_stops() {
    let data = data(Split::Dev);
    // The user model sees the fixed greeting first, then the agent's messages.
    let user = SimModel::new(Script::parse(r#"{"turns": [
        {"when": {"last": "user", "user": "^Hi! How can I help you today\\?$"}, "text": "Hi, please cancel my order #W5442520, I no longer need it."},
        {"when": {"last": "user"}, "text": "Thanks! ###STOP###"}]}"#, "user").unwrap());
    let user = UserModel::Llm(Arc::new(user), 1.0);
    let agent = agent(
        r##"{"turns": [
        {"when": {"last": "user", "user": "cancel my order (?P<id>#W\\d+)"}, "calls": [{"name": "cancel_pending_order", "arguments": {"order_id": "{{id}}", "reason": "no longer needed"}}]},
        {"when": {"last": "tool"}, "text": "Done: the order is cancelled."}]}"##,
    );
    let trace = Collect::new();
    let r = run_episode(
        &data,
        0,
        0,
        &agent,
        &user,
        &EpisodeConfig::default(),
        &trace,
        CancellationToken::new(),
    )
    .await;
    assert_eq!((r.reward, r.ended.as_str()), (1.0, "user_stop"), "{r:?}");
    let opening = trace.events().iter().find_map(|e| match &e.kind {
        TraceKind::RunStarted { task, .. } => Some(task.clone()),
        _ => None,
    });
    assert_eq!(
        opening.as_deref(),
        Some("Hi, please cancel my order #W5442520, I no longer need it.")
    );
    assert!(
        agentry_eval::taubench::episode::user_prompt("Be Yusuf.")
            .contains("\n\nInstruction: Be Yusuf.\n")
    );
}

#[tokio::test]
async fn a_policy_sees_the_agents_calls() {
    // Dev task 0 cancels an order; a policy forbidding cancellations keeps the database
    // unchanged, so even the ground truth scores 0, and the agent read the reason.
    let data = data(Split::Dev);
    let policy = agentry_policy::Policy::from_toml(
        "[[rule]]\ntool = \"cancel_*\"\naction = \"deny\"\nreason = \"cancellations go through a human\"\n",
    )
    .unwrap();
    let cfg = EpisodeConfig {
        policy: Some(Arc::new(policy)),
        ..EpisodeConfig::default()
    };
    let trace = Collect::new();
    let r = run_episode(
        &data,
        0,
        0,
        &Agent::Oracle,
        &scripted(),
        &cfg,
        &trace,
        CancellationToken::new(),
    )
    .await;
    assert_eq!((r.reward, r.db_match), (0.0, false));
    let denied = trace.events().iter().any(|e| matches!(&e.kind,
        TraceKind::CallFinished { result, .. } if result.outcome.as_ref().is_err_and(|e| e.for_model() == "cancellations go through a human")));
    assert!(denied);
}
