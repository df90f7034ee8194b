//! The embedded local model, for real: the bundled GGUF on llama.cpp.
//!
//! Needs the model file (`scripts/local-model` fetches it; `scripts/test` runs that first and
//! sets `AGENTRY_REQUIRE_MODEL=1`, so a missing model fails these tests instead of skipping).
#![cfg(feature = "local")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use agentry_core::{Message, ToolSpec};
use agentry_llm::{
    ChatRequest, LlmError, Model, ModelEvent, ReplyShape, ToolChoice, complete,
    local::{LocalConfig, LocalModel, file},
};
use agentry_parse::plan::{PlanEvent, PlanParser};
use agentry_schema::Validators;
use futures::StreamExt;
use serde_json::json;

/// The bundled model, loaded once for this test binary; `None` (skip) only when it is
/// absent and not required.
fn model() -> Option<LocalModel> {
    static MODEL: OnceLock<Option<LocalModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = file::default_path();
            if !path.is_file() {
                assert!(
                    std::env::var_os("AGENTRY_REQUIRE_MODEL").is_none(),
                    "the local model is required but {} is missing; run scripts/local-model",
                    path.display()
                );
                eprintln!("skipping: {} is missing", path.display());
                return None;
            }
            let mut cfg = LocalConfig::new(path);
            cfg.threads = Some(2);
            cfg.max_tokens = 160;
            cfg.prompt_cache = None;
            Some(LocalModel::load(cfg).expect("the bundled model loads"))
        })
        .clone()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec::new(
            "get_weather",
            "The weather in a city now.",
            json!({"type": "object", "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["C", "F"]}},
                "required": ["city"], "additionalProperties": false}),
        ),
        ToolSpec::new(
            "convert",
            "Converts an amount between currencies.",
            json!({"type": "object", "properties": {
                "amount": {"type": "number", "minimum": 0},
                "from": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "to": {"type": "string", "pattern": "^[A-Z]{3}$"}},
                "required": ["amount", "from", "to"], "additionalProperties": false}),
        ),
        ToolSpec::new(
            "book_table",
            "Books a restaurant table.",
            json!({"type": "object", "properties": {
                "restaurant": {"type": "string", "minLength": 1},
                "people": {"type": "integer", "minimum": 1, "maximum": 12},
                "date": {"type": "string", "format": "date"}},
                "required": ["restaurant", "people", "date"], "additionalProperties": false}),
        ),
    ]
}

#[test]
fn constrained_calls_always_name_real_tools_and_satisfy_their_schemas() {
    let Some(model) = model() else { return };
    let validators = Validators::new(&tools()).unwrap();
    let rt = runtime();
    let prompts = [
        "What's the weather in Lisbon?",
        "Convert 250 euros to Japanese yen.",
        "Book a table for four at Chez Panisse on 2026-12-24.",
        "Weather in Oslo in Fahrenheit, and convert 10 USD to GBP.",
        "Do the thing with the stuff.",
        "Book something for a dozen people next week somewhere nice.",
    ];
    let mut calls = 0;
    for prompt in prompts {
        let request = ChatRequest::new(vec![Message::user(prompt)])
            .tools(tools())
            .tool_choice(ToolChoice::Required);
        let response = rt.block_on(complete(&model, request)).unwrap();
        assert!(
            response.malformed.is_empty(),
            "{prompt}: {:?}",
            response.malformed
        );
        assert!(
            !response.calls.is_empty(),
            "{prompt}: no call: {:?}",
            response.text
        );
        for call in &response.calls {
            let checked = validators.check(&call.call.name, call.call.arguments.clone());
            assert!(
                checked.is_ok(),
                "{prompt}: invalid call {:?}: {checked:?}",
                call.call
            );
            calls += 1;
        }
    }
    assert!(calls >= prompts.len());
}

#[test]
fn a_named_tool_choice_is_obeyed() {
    let Some(model) = model() else { return };
    let request = ChatRequest::new(vec![Message::user("What's the weather in Lisbon?")])
        .tools(tools())
        .tool_choice(ToolChoice::Function("convert".into()));
    let response = runtime().block_on(complete(&model, request)).unwrap();
    assert!(!response.calls.is_empty());
    assert!(response.calls.iter().all(|c| c.call.name == "convert"));
}

#[test]
fn constrained_plans_call_real_tools_and_refer_only_backwards() {
    let Some(model) = model() else { return };
    let system = "Write a plan: one numbered task per line, each a call in Python syntax with \
                  keyword arguments, $K for the result of task K, ending with `N. join()`.\n\
                  Tools: get_weather(city, unit), convert(amount, from, to), \
                  book_table(restaurant, people, date)";
    let request = ChatRequest::new(vec![
        Message::system(system),
        Message::user("Compare the weather in Rome and Madrid, then convert 100 EUR to USD."),
    ])
    .shape(ReplyShape::Plan(tools()));
    let response = runtime().block_on(complete(&model, request)).unwrap();
    let mut parser = PlanParser::new();
    let mut events = parser.push(&response.text);
    events.extend(parser.finish());
    let names: Vec<String> = tools().into_iter().map(|t| t.name).collect();
    let mut tasks = 0;
    let mut joined = false;
    for event in events {
        match event {
            PlanEvent::Task(task) => {
                tasks += 1;
                assert!(names.contains(&task.name), "{task:?}");
                assert!(task.deps.iter().all(|&d| d < task.index), "{task:?}");
            }
            PlanEvent::Join { .. } => joined = true,
            other => panic!("unexpected {other:?} in {:?}", response.text),
        }
    }
    assert!(tasks >= 1 && joined, "{:?}", response.text);
}

#[test]
fn the_kv_cache_is_reused_across_turns_of_a_conversation() {
    let Some(model) = model() else { return };
    let rt = runtime();
    let system = Message::system(
        "You are a terse assistant for a travel agency. Answer in at most five words. ".repeat(8),
    );
    let first = vec![system.clone(), Message::user("Name a city in Italy.")];
    let reply = rt
        .block_on(complete(&model, ChatRequest::new(first.clone())))
        .unwrap();
    let mut second = first;
    second.push(Message::assistant(reply.text));
    second.push(Message::user("And one in Spain?"));
    rt.block_on(complete(&model, ChatRequest::new(second)))
        .unwrap();
    let stats = model.last_stats();
    assert!(
        stats.reused_tokens * 2 > stats.prompt_tokens,
        "only {} of {} prompt tokens reused",
        stats.reused_tokens,
        stats.prompt_tokens
    );
}

#[test]
fn a_prompt_longer_than_the_context_is_a_clear_error() {
    if model().is_none() {
        return;
    }
    let mut cfg = LocalConfig::new(file::default_path());
    cfg.context = 256;
    cfg.prompt_cache = None;
    let small = LocalModel::load(cfg).unwrap();
    let request = ChatRequest::new(vec![Message::user("lorem ipsum ".repeat(400))]);
    let err = runtime().block_on(complete(&small, request)).unwrap_err();
    assert!(
        matches!(err, LlmError::TooLong { context: 256, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("raise --context"), "{err}");
}

#[test]
fn dropping_a_stream_stops_generation_and_the_model_serves_the_next_request() {
    let Some(model) = model() else { return };
    let rt = runtime();
    rt.block_on(async {
        let mut stream = model.stream(ChatRequest::new(vec![Message::user(
            "Write a long story about a lighthouse keeper.",
        )]));
        let first = stream.next().await.unwrap().unwrap();
        assert!(matches!(first, ModelEvent::Text(_)), "{first:?}");
        drop(stream);
        let reply = complete(
            &model,
            ChatRequest::new(vec![Message::user("Say OK.")]).tools(vec![]),
        )
        .await
        .unwrap();
        assert!(!reply.text.is_empty());
    });
}

#[test]
fn a_schema_the_grammar_compiler_rejects_falls_back_to_validation_and_says_so() {
    let Some(model) = model() else { return };
    let odd = ToolSpec::new(
        "lookahead",
        "Takes a code.",
        json!({"type": "object", "properties": {"code": {"type": "string", "pattern": "^(?=A)[A-Z]+$"}},
               "required": ["code"]}),
    );
    let request = ChatRequest::new(vec![Message::user("Call lookahead with code ABC.")])
        .tools(vec![odd])
        .tool_choice(ToolChoice::Required);
    let response = runtime().block_on(complete(&model, request)).unwrap();
    assert!(!response.calls.is_empty() || !response.text.is_empty());
    let notes = model.take_notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`lookahead`") && n.contains("unconstrained")),
        "{notes:?}"
    );
}

#[test]
fn corrupt_and_foreign_files_are_errors_not_crashes() {
    let Some(_) = model() else { return };
    let dir = std::env::temp_dir().join(format!("agentry-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The first megabyte of a real GGUF: a valid header whose tensors lie past the end.
    let bytes = std::fs::read(file::default_path()).unwrap();
    let cut = dir.join("cut.gguf");
    std::fs::write(&cut, &bytes[..1 << 20]).unwrap();
    let err = LocalModel::load(LocalConfig::new(&cut))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("could not load") && err.contains("corrupt"),
        "{err}"
    );
    // A header with nothing after it.
    let empty = dir.join("empty.gguf");
    std::fs::write(&empty, b"GGUF\x03\0\0\0").unwrap();
    let err = LocalModel::load(LocalConfig::new(&empty))
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not load"), "{err}");
    let text = dir.join("notes.gguf");
    std::fs::write(&text, "not a model").unwrap();
    let err = LocalModel::load(LocalConfig::new(&text))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a GGUF model file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_long_prompt_is_read_back_from_disk_by_another_process() {
    if model().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("agentry-prompt-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = LocalConfig::new(file::default_path());
    cfg.context = 2048;
    cfg.max_tokens = 4;
    cfg.prompt_cache = Some(dir.clone());
    let system =
        Message::system("You plan trips for a travel agency; be brief and factual. ".repeat(30));
    let rt = runtime();
    let first = LocalModel::load(cfg.clone()).unwrap();
    rt.block_on(complete(
        &first,
        ChatRequest::new(vec![system.clone(), Message::user("A city in Italy?")]),
    ))
    .unwrap();
    assert!(!first.last_stats().from_disk);
    // Another context size makes another worker with an empty KV cache, as a new process has.
    cfg.context = 3072;
    let second = LocalModel::load(cfg).unwrap();
    rt.block_on(complete(
        &second,
        ChatRequest::new(vec![system, Message::user("A city in Spain?")]),
    ))
    .unwrap();
    let stats = second.last_stats();
    assert!(stats.from_disk, "{stats:?}");
    assert!(
        stats.reused_tokens > 300 && stats.reused_tokens < stats.prompt_tokens,
        "{stats:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
