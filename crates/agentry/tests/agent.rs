//! `Agent` as a library user meets it: runs, streams, conversations, typed output, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use agentry::{
    BuildError, RunStatus, TraceEvent, TraceKind,
    exec::Collect,
    llm::sim::{Script, SimModel},
    prelude::*,
};

fn model(script: &str) -> Arc<SimModel> {
    Arc::new(SimModel::new(Script::parse(script, "test").unwrap()))
}

fn demo() -> agentry::ToolSet {
    agentry::tools::demo_tools(Duration::ZERO)
}

#[tokio::test]
async fn a_hundred_concurrent_runs_of_one_agent_are_independent() {
    let agent = Agent::builder("sim:weather")
        .tools(&demo())
        .build()
        .unwrap();
    // Names of letters only, as the script's pattern reads them: Qaa, Qab, …
    let cities: Vec<String> = (0u8..100)
        .map(|i| format!("Q{}{}", (b'a' + i / 26) as char, (b'a' + i % 26) as char))
        .collect();
    let runs = cities.iter().map(|city| {
        let agent = agent.clone();
        let task = format!("What is the weather in {city}?");
        tokio::spawn(async move { agent.run(task).await })
    });
    let outcomes = futures::future::join_all(runs).await;
    let mut ids = std::collections::HashSet::new();
    for (city, outcome) in cities.iter().zip(outcomes) {
        let out = outcome.unwrap().unwrap();
        assert!(out.answer.contains(city.as_str()), "{city}: {}", out.answer);
        assert_eq!(out.calls.len(), 1);
        assert_eq!(out.calls[0].0.arguments, json!({"city": city}));
        assert!(ids.insert(out.run_id));
    }
}

#[tokio::test]
async fn the_stream_has_every_step_and_ends_with_the_run() {
    let agent = Agent::builder("sim:plan")
        .tools(&demo())
        .mode(Mode::Compiled)
        .build()
        .unwrap();
    let events: Vec<Event> = agent
        .stream("How much warmer is Oslo than Paris right now?")
        .collect()
        .await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    let planned = kinds.iter().filter(|k| **k == "task_planned").count();
    let started = kinds.iter().filter(|k| **k == "call_started").count();
    assert_eq!((planned, started), (3, 3), "{kinds:?}");
    // Each task is planned before it starts, and the answer streams as text.
    let first_plan = kinds.iter().position(|k| *k == "task_planned").unwrap();
    let first_call = kinds.iter().position(|k| *k == "call_started").unwrap();
    assert!(first_plan < first_call);
    let text: String = events
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let answer = match &events.last().unwrap().kind {
        TraceKind::RunFinished { answer, .. } => answer.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(text.trim(), answer);
    assert!(!text.contains("Answer:"), "{text}");
    // Sequence numbers rise by one (no event is lost to a consumer).
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[tokio::test]
async fn dropping_the_stream_cancels_the_run_and_the_trace_says_so() {
    let script = r#"{"turns": [{"calls": [{"name": "sleep", "arguments": {"ms": 60000}}]}]}"#;
    let trace = Collect::new();
    let agent = Agent::builder(model(script))
        .tools(&demo())
        .observer(Arc::new(trace.clone()))
        .build()
        .unwrap();
    let mut stream = agent.stream("wait a minute");
    while let Some(event) = stream.next().await {
        if matches!(event.kind, TraceKind::CallStarted { .. }) {
            break;
        }
    }
    let started = std::time::Instant::now();
    drop(stream);
    assert!(started.elapsed() < Duration::from_secs(1));
    let events = trace.events();
    let cut = events
        .iter()
        .find_map(|e| match &e.kind {
            TraceKind::CallFinished { result, .. } => Some(result.clone()),
            _ => None,
        })
        .expect("the cut call is recorded");
    let error = cut.outcome.unwrap_err();
    assert!(error.for_model().contains("cancelled"), "{error:?}");
    assert!(matches!(
        events.last().unwrap().kind,
        TraceKind::RunFinished {
            status: RunStatus::Cancelled,
            ..
        }
    ));
}

#[tokio::test]
async fn a_conversation_goes_on_in_both_modes() {
    // Sequential: the second question is answered with the first in the history.
    let agent = Agent::builder("sim:weather")
        .tools(&demo())
        .build()
        .unwrap();
    let mut chat = Conversation::new();
    chat.user("What is the weather in Oslo?");
    chat = agent.run(&chat).await.unwrap().conversation;
    chat.user("And in Lima?");
    let out = agent.run(&chat).await.unwrap();
    assert!(out.answer.contains("Lima"), "{}", out.answer);
    let users = out
        .conversation
        .messages
        .iter()
        .filter(|m| matches!(m, agentry::Message::User { .. }))
        .count();
    assert_eq!(users, 2);
    let json = serde_json::to_string(&out.conversation).unwrap();
    let back: Conversation = serde_json::from_str(&json).unwrap();
    assert_eq!(back, out.conversation);

    // Compiled: the planner reads the conversation before the new message.
    let script = r#"{"format": "text", "turns": [
      {"when": {"user": "(?m)^Observations:"}, "text": "Answer: done"},
      {"when": {"last": "user", "user": "(?s)conversation so far:.*User: first.*Assistant: done.*now says: second"}, "text": "1. calculator(expression=\"2 + 2\")\n2. join()"},
      {"when": {"last": "user", "user": "^first$"}, "text": "1. calculator(expression=\"1 + 1\")\n2. join()"}
    ]}"#;
    let agent = Agent::builder(model(script))
        .tools(&demo())
        .mode(Mode::Compiled)
        .build()
        .unwrap();
    let mut chat = Conversation::new();
    chat.user("first");
    chat = agent.run(&chat).await.unwrap().conversation;
    chat.user("second");
    let out = agent.run(&chat).await.unwrap();
    assert_eq!(out.calls[0].0.arguments, json!({"expression": "2 + 2"}));
    assert_eq!(out.conversation.messages.len(), 4);
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Weather {
    city: String,
    temp_c: i64,
}

#[tokio::test]
async fn typed_output_is_validated_and_a_model_that_never_fits_is_an_output_error() {
    let script = r#"{"turns": [{"text": "{\"city\": \"Oslo\", \"temp_c\": \"warm\"}"}]}"#;
    let agent = Agent::builder(model(script)).build().unwrap();
    let err = agent
        .run_typed::<Weather>("Weather in Oslo?")
        .await
        .unwrap_err();
    match err {
        RunError::Output { last, run } => {
            assert!(last.contains("temp_c"), "{last}");
            assert!(run.answer.contains("warm"));
        }
        other => panic!("{other:?}"),
    }
    let fenced =
        r#"{"turns": [{"text": "Here:\n```json\n{\"city\": \"Oslo\", \"temp_c\": 21}\n```"}]}"#;
    let agent = Agent::builder(model(fenced)).build().unwrap();
    let (w, _) = agent.run_typed::<Weather>("Weather?").await.unwrap();
    assert_eq!((w.city.as_str(), w.temp_c), ("Oslo", 21));
}

#[tokio::test]
async fn two_tools_with_one_name_are_refused_naming_both() {
    let a = tool_fn("lookup", "Looks up a word.", |_: Value| async {
        Ok::<_, ToolError>(1)
    });
    let b = tool_fn("lookup", "Looks up a person.", |_: Value| async {
        Ok::<_, ToolError>(2)
    });
    let err = Agent::builder("sim:weather")
        .tool(a)
        .tools(&demo())
        .tool(b)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::DuplicateTool { .. }));
    let text = err.to_string();
    assert!(text.contains("two tools are named `lookup`"), "{text}");
    assert!(
        text.contains("Looks up a word.") && text.contains("Looks up a person."),
        "{text}"
    );
    let err = Agent::builder("sim:nope").build().unwrap_err().to_string();
    assert!(err.contains("bundled scripts"), "{err}");
}

#[tokio::test]
async fn an_agent_is_a_tool_of_another_agent() {
    let weather = Agent::builder("sim:weather")
        .tools(&demo())
        .build()
        .unwrap();
    let boss_script = r#"{"turns": [
        {"when": {"last": "user"}, "calls": [{"name": "forecaster", "arguments": {"task": "What is the weather in Quito?"}}]},
        {"when": {"last": "tool"}, "text": "The forecaster says: {{tool}}"}]}"#;
    let boss = Agent::builder(model(boss_script))
        .tool(weather.as_tool("forecaster", "Answers questions about the weather."))
        .build()
        .unwrap();
    let out = boss.run("Ask the forecaster about Quito").await.unwrap();
    assert!(out.answer.contains("Quito"), "{}", out.answer);
    assert!(out.answer.contains("temp_c"), "{}", out.answer);
}

#[tokio::test]
async fn a_sub_agents_run_joins_its_callers_trace_under_the_call() {
    let child_events = Collect::new();
    let weather = Agent::builder("sim:weather")
        .tools(&demo())
        .observer(Arc::new(child_events.clone()))
        .build()
        .unwrap();
    let boss_script = r#"{"turns": [
        {"when": {"last": "user"}, "calls": [{"name": "forecaster", "arguments": {"task": "What is the weather in Quito?"}}]},
        {"when": {"last": "tool"}, "text": "{{tool}}"}]}"#;
    let boss_events = Collect::new();
    let boss = |propagate: bool| {
        let cfg = agentry::EngineConfig {
            propagate,
            ..Default::default()
        };
        Agent::builder(model(boss_script))
            .config(cfg)
            .tool(weather.as_tool("forecaster", "Answers questions about the weather."))
            .observer(Arc::new(boss_events.clone()))
            .build()
            .unwrap()
    };
    // Without propagation (no exporter), the child's run starts a trace of its own.
    boss(false).run("Ask about Quito").await.unwrap();
    let parent_of_child = |events: &[TraceEvent]| match &events[0].kind {
        TraceKind::RunStarted { parent, .. } => parent.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(parent_of_child(&child_events.events()), None);

    let out = boss(true).run("Ask about Quito").await.unwrap();
    let boss_run: Vec<TraceEvent> = boss_events
        .events()
        .into_iter()
        .filter(|e| e.run_id == out.run_id)
        .collect();
    let call = boss_run
        .iter()
        .find(
            |e| matches!(&e.kind, TraceKind::CallStarted { call, .. } if call.name == "forecaster"),
        )
        .unwrap();
    let expected = agentry::RunSpans::new(&out.run_id, None).traceparent(call.seq);
    let child_runs: Vec<TraceEvent> = child_events
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, TraceKind::RunStarted { .. }))
        .collect();
    assert_eq!(child_runs.len(), 2);
    let parent = parent_of_child(&child_runs[1..]).expect("the child run has a parent");
    assert_eq!(parent, expected.header());
    // The child's spans are in the boss's trace.
    let child = agentry::RunSpans::new(
        &child_runs[1].run_id,
        agentry::TraceParent::parse(&parent).as_ref(),
    );
    assert_eq!(child.trace_id, expected.trace_id);
    assert_eq!(child.parent, Some(expected.span_id));
}

#[tokio::test]
async fn a_run_without_an_answer_is_an_error_that_keeps_the_run() {
    let script =
        r#"{"turns": [{"calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}]}"#;
    let agent = Agent::builder(model(script))
        .tools(&demo())
        .build()
        .unwrap();
    match agent.run("weather").await.unwrap_err() {
        RunError::Ended {
            status,
            reason,
            run,
        } => {
            assert_eq!(status, RunStatus::LoopDetected);
            assert!(reason.contains("get_weather"), "{reason}");
            assert_eq!(run.calls.len(), 4);
        }
        other => panic!("{other:?}"),
    }
}
