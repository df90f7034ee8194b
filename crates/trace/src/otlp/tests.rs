use std::time::{Duration, SystemTime};

use agentry_core::{
    ModelPurpose, PolicyAction, RunSpans, RunStatus, SpanRole, ToolCall, ToolError, ToolResult,
    TraceEvent, TraceKind, TraceParent,
};
use opentelemetry::{
    KeyValue,
    trace::{SpanId, SpanKind, Status},
};
use opentelemetry_sdk::trace::SpanData;
use serde_json::json;

use super::{OtlpConfig, OtlpProtocol, otlp_json, spans::Spans};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A compiled run: a plan whose two calls run in parallel (one denied by the policy), then
/// a join that answers.
fn compiled_run(parent: Option<&str>) -> Vec<TraceEvent> {
    let a = ToolCall::new("t1", "get_weather", json!({"city": "Oslo"}));
    let b = ToolCall::new("t2", "send_email", json!({"to": "x@example.com"}));
    let kinds = vec![
        (
            0,
            TraceKind::RunStarted {
                task: "Weather in Oslo, mailed".into(),
                model: "openai:gpt-4o-mini".into(),
                mode: "compiled".into(),
                tools: vec!["get_weather".into(), "send_email".into()],
                stop_tools: vec![],
                system: None,
                parent: parent.map(str::to_owned),
            },
        ),
        (
            10,
            TraceKind::ModelRequest {
                step: "m1".into(),
                purpose: ModelPurpose::Plan,
                messages: 2,
            },
        ),
        (
            100,
            TraceKind::CallStarted {
                call: a.clone(),
                task: Some(1),
                after: vec!["m1".into()],
            },
        ),
        (
            120,
            TraceKind::CallStarted {
                call: b.clone(),
                task: Some(2),
                after: vec!["m1".into()],
            },
        ),
        (
            121,
            TraceKind::PolicyDecision {
                call_id: "t2".into(),
                action: PolicyAction::Deny,
                rule: Some("no mail".into()),
                reason: Some("mail is off".into()),
                rewritten: None,
                approved: None,
            },
        ),
        (
            122,
            TraceKind::CallFinished {
                result: ToolResult::err(&b, ToolError::denied("mail is off")),
                task: Some(2),
                attempts: 0,
                duration_us: 2,
            },
        ),
        (
            200,
            TraceKind::ModelResponse {
                step: "m1".into(),
                text: "1. get_weather(city=\"Oslo\")".into(),
                calls: vec![a.clone(), b.clone()],
                malformed: vec![],
                prompt_tokens: 50,
                completion_tokens: 20,
                ttft_us: Some(30),
            },
        ),
        (
            400,
            TraceKind::CallFinished {
                result: ToolResult::ok(&a, json!({"temp_c": 21})),
                task: Some(1),
                attempts: 1,
                duration_us: 300,
            },
        ),
        (
            410,
            TraceKind::ModelRequest {
                step: "m2".into(),
                purpose: ModelPurpose::Join,
                messages: 2,
            },
        ),
        (
            500,
            TraceKind::ModelResponse {
                step: "m2".into(),
                text: "Answer: 21 °C".into(),
                calls: vec![],
                malformed: vec![],
                prompt_tokens: 30,
                completion_tokens: 5,
                ttft_us: None,
            },
        ),
        (
            510,
            TraceKind::RunFinished {
                status: RunStatus::Answered,
                answer: Some("21 °C".into()),
                reason: None,
                calls: 2,
                prompt_tokens: 80,
                completion_tokens: 25,
            },
        ),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(seq, (at_us, kind))| TraceEvent {
            run_id: "r1".into(),
            seq: seq as u64,
            at_us,
            kind,
        })
        .collect()
}

fn assemble(events: &[TraceEvent], content: bool) -> Vec<SpanData> {
    let mut spans = Spans::new(content);
    let mut out = Vec::new();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for e in events {
        let started = matches!(e.kind, TraceKind::RunStarted { .. }).then_some(start);
        spans.event(e, started, &mut out);
    }
    out
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span `{name}` in {:?}", names(spans)))
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv: &&KeyValue| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[test]
fn a_compiled_run_is_a_tree_of_plan_calls_and_join() {
    let spans = assemble(&compiled_run(None), false);
    assert_eq!(spans.len(), 7, "{:?}", names(&spans));
    let run = named(&spans, "invoke_agent agentry");
    let plan = named(&spans, "plan");
    let join = named(&spans, "join");
    let weather = named(&spans, "execute_tool get_weather");
    let email = named(&spans, "execute_tool send_email");
    let chats: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "chat gpt-4o-mini")
        .collect();
    assert_eq!(chats.len(), 2);
    let id = |s: &SpanData| s.span_context.span_id();
    assert_eq!(run.parent_span_id, SpanId::INVALID);
    assert_eq!(plan.parent_span_id, id(run));
    assert_eq!(join.parent_span_id, id(run));
    assert_eq!(weather.parent_span_id, id(plan));
    assert_eq!(email.parent_span_id, id(plan));
    assert_eq!(chats[0].parent_span_id, id(plan));
    assert_eq!(chats[1].parent_span_id, id(join));
    // One trace; the ids are the ones the engine sends as `traceparent`.
    let ids = RunSpans::new("r1", None);
    assert!(
        spans
            .iter()
            .all(|s| s.span_context.trace_id().to_bytes() == ids.trace_id)
    );
    assert_eq!(id(weather).to_bytes(), ids.traceparent(2).span_id);
    assert_eq!(id(chats[0]).to_bytes(), ids.traceparent(1).span_id);
    assert_eq!(id(plan).to_bytes(), ids.span_id(1, SpanRole::Phase));
    // The plan lasts until its last call ends; the calls overlap.
    assert!(plan.end_time >= weather.end_time);
    assert!(email.start_time < weather.end_time && weather.start_time < email.end_time);
    assert_eq!(
        run.end_time
            .duration_since(run.start_time)
            .unwrap()
            .as_micros(),
        510
    );
    // Kinds and the conventions' attributes.
    assert_eq!(chats[0].span_kind, SpanKind::Client);
    assert_eq!(
        attr(chats[0], "gen_ai.operation.name").unwrap().as_str(),
        "chat"
    );
    assert_eq!(
        attr(chats[0], "gen_ai.provider.name").unwrap().as_str(),
        "openai"
    );
    assert_eq!(
        attr(chats[0], "gen_ai.usage.input_tokens"),
        Some(&50.into())
    );
    assert_eq!(attr(chats[0], "llm.token_count.total"), Some(&70.into()));
    assert_eq!(
        attr(chats[0], "openinference.span.kind").unwrap().as_str(),
        "LLM"
    );
    assert_eq!(
        attr(weather, "gen_ai.tool.name").unwrap().as_str(),
        "get_weather"
    );
    assert_eq!(attr(weather, "gen_ai.tool.call.id").unwrap().as_str(), "t1");
    assert_eq!(
        attr(weather, "openinference.span.kind").unwrap().as_str(),
        "TOOL"
    );
    assert_eq!(
        attr(run, "openinference.span.kind").unwrap().as_str(),
        "AGENT"
    );
    assert_eq!(attr(run, "gen_ai.usage.output_tokens"), Some(&25.into()));
    assert_eq!(weather.status, Status::Ok);
    // The denied call: an error span with the policy's decision as an event.
    assert_eq!(email.status, Status::error("mail is off"));
    assert_eq!(attr(email, "error.type").unwrap().as_str(), "denied");
    assert_eq!(
        attr(email, "agentry.policy.action").unwrap().as_str(),
        "deny"
    );
    assert_eq!(email.events.len(), 1);
    assert_eq!(email.events[0].name, "agentry.policy_decision");
}

#[test]
fn content_is_left_out_unless_asked_for() {
    let content_keys = [
        "input.value",
        "output.value",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.output.messages",
    ];
    let off = assemble(&compiled_run(None), false);
    for s in &off {
        for k in content_keys {
            assert!(attr(s, k).is_none(), "{} has {k}", s.name);
        }
    }
    let on = assemble(&compiled_run(None), true);
    let run = named(&on, "invoke_agent agentry");
    assert_eq!(
        attr(run, "input.value").unwrap().as_str(),
        "Weather in Oslo, mailed"
    );
    assert_eq!(attr(run, "output.value").unwrap().as_str(), "21 °C");
    let weather = named(&on, "execute_tool get_weather");
    assert_eq!(
        attr(weather, "gen_ai.tool.call.arguments")
            .unwrap()
            .as_str(),
        r#"{"city":"Oslo"}"#
    );
    assert_eq!(
        attr(weather, "output.value").unwrap().as_str(),
        r#"{"temp_c":21}"#
    );
}

#[test]
fn a_run_started_inside_a_trace_joins_it_and_an_unsampled_one_is_not_exported() {
    let spans = assemble(&compiled_run(Some(PARENT)), false);
    let parent = TraceParent::parse(PARENT).unwrap();
    let run = named(&spans, "invoke_agent agentry");
    assert_eq!(run.parent_span_id.to_bytes(), parent.span_id);
    assert!(run.parent_span_is_remote);
    assert!(
        spans
            .iter()
            .all(|s| s.span_context.trace_id().to_bytes() == parent.trace_id)
    );
    let unsampled = PARENT.replace("-01", "-00");
    assert!(assemble(&compiled_run(Some(&unsampled)), false).is_empty());
}

#[test]
fn a_run_that_never_finished_ends_as_interrupted() {
    let events = compiled_run(None);
    let mut spans = Spans::new(false);
    let mut out = Vec::new();
    for e in &events[..4] {
        spans.event(e, Some(SystemTime::now()), &mut out);
    }
    assert!(out.is_empty());
    spans.close_all(&mut out);
    // The run, the plan, its model request and two calls, all ended.
    assert_eq!(out.len(), 5, "{:?}", names(&out));
    let run = named(&out, "invoke_agent agentry");
    assert_eq!(
        attr(run, "agentry.run.status").unwrap().as_str(),
        "interrupted"
    );
    assert!(matches!(run.status, Status::Error { .. }));
}

#[test]
fn otlp_json_has_hex_ids_and_string_times() {
    let json = otlp_json(
        &compiled_run(None),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        "svc",
        false,
    );
    let rs = &json["resourceSpans"][0];
    let service = rs["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "service.name")
        .unwrap();
    assert_eq!(service["value"]["stringValue"], "svc");
    let spans = rs["scopeSpans"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 7);
    let ids = RunSpans::new("r1", None);
    for s in spans {
        assert_eq!(s["traceId"], agentry_core::hex(&ids.trace_id));
        assert_eq!(s["spanId"].as_str().unwrap().len(), 16);
    }
    let run = spans
        .iter()
        .find(|s| s["name"] == "invoke_agent agentry")
        .unwrap();
    assert_eq!(run["startTimeUnixNano"], "1800000000000000000");
    assert_eq!(run["endTimeUnixNano"], "1800000000000510000");
}

#[test]
fn the_standard_variables_configure_it() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(OtlpConfig::from_vars(vars(&[])).unwrap(), None);
    assert_eq!(
        OtlpConfig::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "true")
        ]))
        .unwrap(),
        None
    );
    assert_eq!(
        OtlpConfig::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "none")
        ]))
        .unwrap(),
        None
    );
    let cfg = OtlpConfig::from_vars(vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317/"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x=1"),
        ("OTEL_SERVICE_NAME", "shop"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "TRUE"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(cfg.protocol, OtlpProtocol::Grpc);
    assert_eq!(cfg.traces_url(), "http://c:4317/");
    assert_eq!(
        cfg.headers,
        vec![("api-key".into(), "a b".into()), ("x".into(), "1".into())]
    );
    assert_eq!(cfg.service_name, "shop");
    assert_eq!(cfg.timeout, Duration::from_millis(2500));
    assert!(cfg.capture_content);
    let full = OtlpConfig::from_vars(vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:9/custom/path",
        ),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(full.traces_url(), "http://c:9/custom/path");
    for bad in [
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp"),
        ][..],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ][..],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ][..],
    ] {
        let err = OtlpConfig::from_vars(|name: &str| {
            bad.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("OpenTelemetry export"), "{err}");
    }
}

#[test]
fn a_collector_that_is_not_there_costs_a_count_not_the_run() {
    // Nothing listens on port 9 of loopback: every export fails quickly.
    let mut cfg = OtlpConfig::new("http://127.0.0.1:9");
    cfg.timeout = Duration::from_secs(2);
    let exporter = super::OtlpExporter::start(cfg).unwrap();
    for e in compiled_run(None) {
        exporter.record(&e);
    }
    exporter.flush();
    let stats = exporter.shutdown();
    assert_eq!(stats.exported, 0);
    assert_eq!(stats.failed, 7);
    assert!(stats.last_error.is_some());
}

#[test]
fn a_full_queue_drops_and_counts() {
    let mut cfg = OtlpConfig::new("http://127.0.0.1:9");
    cfg.queue = 16;
    let exporter = super::OtlpExporter::start(cfg).unwrap();
    let events = compiled_run(None);
    for _ in 0..1000 {
        for e in &events {
            exporter.record(e);
        }
    }
    let stats = exporter.shutdown();
    assert!(stats.dropped > 0, "{stats:?}");
}

#[test]
fn a_malformed_endpoint_fails_at_start() {
    let err = super::OtlpExporter::start(OtlpConfig::new("not a url")).unwrap_err();
    assert!(err.to_string().contains("not a url"), "{err}");
}
