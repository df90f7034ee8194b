//! A run's events turned into OpenTelemetry spans ([`Spans`]), in the GenAI semantic
//! conventions (`gen_ai.*`) and OpenInference's attributes (which Arize Phoenix reads to draw
//! LLM, tool and agent spans).
//!
//! The tree: one `invoke_agent` span per run; under it, in sequential mode, a `chat` span
//! per model turn and an `execute_tool` span per call; in compiled mode, a `plan` span per
//! plan (its `chat` span and the calls it dispatched under it) and a `join` span (its `chat`
//! span under it). Policy decisions and approvals are events on their call's span. Span ids
//! come from [`RunSpans`], so they are the ones the engine sent as `traceparent`.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use agentry_core::{
    ModelPurpose, RunSpans, RunStatus, SpanRole, ToolCall, TraceEvent, TraceKind, TraceParent,
};
use opentelemetry::{
    Array, InstrumentationScope, KeyValue, Value,
    trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// Turns runs' events into finished spans, run by run, as the events come (several runs
/// may interleave).
pub(crate) struct Spans {
    runs: HashMap<String, Run>,
    scope: InstrumentationScope,
    /// Whether message and argument content goes into spans.
    content: bool,
}

struct Run {
    id: String,
    ids: RunSpans,
    /// Whether its spans are recorded (its parent's sampled flag).
    sampled: bool,
    start: SystemTime,
    task: String,
    model: String,
    mode: String,
    tools: usize,
    /// Events of the run itself (replans, rejected plans, tool-list changes).
    events: Vec<opentelemetry::trace::Event>,
    models: HashMap<String, OpenModel>,
    calls: HashMap<String, OpenCall>,
    phase: Option<Phase>,
    last_us: u64,
}

struct OpenModel {
    seq: u64,
    at_us: u64,
    purpose: ModelPurpose,
    messages: usize,
    parent: [u8; 8],
}

struct OpenCall {
    seq: u64,
    at_us: u64,
    call: ToolCall,
    task: Option<u32>,
    parent: [u8; 8],
    events: Vec<opentelemetry::trace::Event>,
    attributes: Vec<KeyValue>,
}

/// A plan or a join of compiled mode: open from its model request until the next one (or
/// the run's end); it ends when the last of its children does.
struct Phase {
    seq: u64,
    name: &'static str,
    step: String,
    at_us: u64,
    end_us: u64,
}

impl Spans {
    /// A new assembler; `content` puts tasks, messages, arguments and results in spans.
    pub(crate) fn new(content: bool) -> Self {
        Self {
            runs: HashMap::new(),
            scope: InstrumentationScope::builder("agentry")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            content,
        }
    }

    /// Takes one event; `started` is the wall-clock time of the run's start (needed with its
    /// `run_started`; later events are placed by their `at_us`). Spans the event ends go to
    /// `out`.
    pub(crate) fn event(
        &mut self,
        event: &TraceEvent,
        started: Option<SystemTime>,
        out: &mut Vec<SpanData>,
    ) {
        let content = self.content;
        if let TraceKind::RunStarted {
            task,
            model,
            mode,
            tools,
            parent,
            ..
        } = &event.kind
        {
            let parent = parent.as_deref().and_then(TraceParent::parse);
            let ids = RunSpans::new(&event.run_id, parent.as_ref());
            let start = started.unwrap_or_else(SystemTime::now);
            self.runs.insert(
                event.run_id.clone(),
                Run {
                    id: event.run_id.clone(),
                    sampled: ids.sampled,
                    ids,
                    start: start
                        .checked_sub(Duration::from_micros(event.at_us))
                        .unwrap_or(start),
                    task: task.clone(),
                    model: model.clone(),
                    mode: mode.clone(),
                    tools: tools.len(),
                    events: Vec::new(),
                    models: HashMap::new(),
                    calls: HashMap::new(),
                    phase: None,
                    last_us: event.at_us,
                },
            );
            return;
        }
        let Some(run) = self.runs.get_mut(&event.run_id) else {
            return;
        };
        run.last_us = run.last_us.max(event.at_us);
        let at = event.at_us;
        let root = run.ids.span_id(0, SpanRole::Step);
        let mut ended: Vec<Finished> = Vec::new();
        match &event.kind {
            TraceKind::RunStarted { .. } | TraceKind::TextDelta { .. } => {}
            TraceKind::TaskPlanned { .. } | TraceKind::UserReply { .. } => {}
            TraceKind::ModelRequest {
                step,
                purpose,
                messages,
            } => {
                let mut parent = root;
                if matches!(purpose, ModelPurpose::Plan | ModelPurpose::Join) {
                    if let Some(phase) = run.phase.take() {
                        ended.push(phase.finish(run));
                    }
                    let phase = Phase {
                        seq: event.seq,
                        name: if *purpose == ModelPurpose::Plan {
                            "plan"
                        } else {
                            "join"
                        },
                        step: step.clone(),
                        at_us: at,
                        end_us: at,
                    };
                    parent = run.ids.span_id(event.seq, SpanRole::Phase);
                    run.phase = Some(phase);
                }
                run.models.insert(
                    step.clone(),
                    OpenModel {
                        seq: event.seq,
                        at_us: at,
                        purpose: *purpose,
                        messages: *messages,
                        parent,
                    },
                );
            }
            TraceKind::ModelResponse {
                step,
                text,
                calls,
                malformed,
                prompt_tokens,
                completion_tokens,
                ttft_us,
            } => {
                if let Some(m) = run.models.remove(step) {
                    let mut attributes = vec![
                        KeyValue::new("gen_ai.usage.input_tokens", *prompt_tokens as i64),
                        KeyValue::new("gen_ai.usage.output_tokens", *completion_tokens as i64),
                        KeyValue::new("llm.token_count.prompt", *prompt_tokens as i64),
                        KeyValue::new("llm.token_count.completion", *completion_tokens as i64),
                        KeyValue::new(
                            "llm.token_count.total",
                            (*prompt_tokens + *completion_tokens) as i64,
                        ),
                        KeyValue::new("agentry.calls", calls.len() as i64),
                        KeyValue::new(
                            "gen_ai.response.finish_reasons",
                            Value::Array(Array::String(vec![
                                if calls.is_empty() {
                                    "stop"
                                } else {
                                    "tool_calls"
                                }
                                .into(),
                            ])),
                        ),
                    ];
                    if let Some(t) = ttft_us {
                        attributes.push(KeyValue::new(
                            "agentry.time_to_first_token_ms",
                            *t as f64 / 1000.0,
                        ));
                    }
                    if !malformed.is_empty() {
                        attributes.push(KeyValue::new("agentry.malformed", malformed.len() as i64));
                    }
                    if content {
                        attributes.extend(output_message(text, calls));
                    }
                    ended.push(model_span(run, step, m, at, attributes, Status::Ok));
                }
            }
            TraceKind::ModelFailed { step, error } => {
                if let Some(m) = run.models.remove(step) {
                    let attributes = vec![KeyValue::new("error.type", "model_failed")];
                    let status = Status::error(error.clone());
                    ended.push(model_span(run, step, m, at, attributes, status));
                }
            }
            TraceKind::CallStarted { call, task, .. } => {
                let parent = match &run.phase {
                    Some(p) if p.name == "plan" => run.ids.span_id(p.seq, SpanRole::Phase),
                    _ => root,
                };
                run.calls.insert(
                    call.id.clone(),
                    OpenCall {
                        seq: event.seq,
                        at_us: at,
                        call: call.clone(),
                        task: *task,
                        parent,
                        events: Vec::new(),
                        attributes: Vec::new(),
                    },
                );
            }
            TraceKind::ApprovalAsked {
                call_id,
                rule,
                reason,
            } => {
                if let Some(c) = run.calls.get_mut(call_id) {
                    let mut attributes = vec![KeyValue::new("agentry.reason", reason.clone())];
                    if let Some(rule) = rule {
                        attributes.push(KeyValue::new("agentry.policy.rule", rule.clone()));
                    }
                    c.events.push(span_event(
                        run.start,
                        at,
                        "agentry.approval_asked",
                        attributes,
                    ));
                }
            }
            TraceKind::PolicyDecision {
                call_id,
                action,
                rule,
                reason,
                rewritten,
                approved,
            } => {
                if let Some(c) = run.calls.get_mut(call_id) {
                    let mut attributes =
                        vec![KeyValue::new("agentry.policy.action", action.as_str())];
                    if let Some(rule) = rule {
                        attributes.push(KeyValue::new("agentry.policy.rule", rule.clone()));
                    }
                    if let Some(reason) = reason {
                        attributes.push(KeyValue::new("agentry.policy.reason", reason.clone()));
                    }
                    if let Some(approved) = approved {
                        attributes.push(KeyValue::new("agentry.policy.approved", *approved));
                    }
                    if content && let Some(args) = rewritten {
                        attributes
                            .push(KeyValue::new("agentry.policy.rewritten", args.to_string()));
                    }
                    c.attributes.extend(attributes.iter().cloned());
                    c.events.push(span_event(
                        run.start,
                        at,
                        "agentry.policy_decision",
                        attributes,
                    ));
                }
            }
            TraceKind::CallFinished {
                result, attempts, ..
            } => {
                if let Some(c) = run.calls.remove(&result.tool_call_id) {
                    ended.push(call_span(run, c, at, result, *attempts, content));
                }
            }
            TraceKind::Replanning { reason } | TraceKind::PlanRejected { reason } => {
                let name = if matches!(event.kind, TraceKind::Replanning { .. }) {
                    "agentry.replanning"
                } else {
                    "agentry.plan_rejected"
                };
                run.events.push(span_event(
                    run.start,
                    at,
                    name,
                    vec![KeyValue::new("agentry.reason", reason.clone())],
                ));
            }
            TraceKind::ToolsChanged { tools } => {
                run.events.push(span_event(
                    run.start,
                    at,
                    "agentry.tools_changed",
                    vec![KeyValue::new("agentry.tools", tools.len() as i64)],
                ));
            }
            TraceKind::RunFinished {
                status,
                answer,
                reason,
                calls,
                prompt_tokens,
                completion_tokens,
            } => {
                if let Some(mut run) = self.runs.remove(&event.run_id) {
                    let mut out_run = Vec::new();
                    run.close_open(at, &mut out_run);
                    if run.sampled {
                        out.extend(out_run.into_iter().map(|f| f.data(&run, &self.scope)));
                        let end = RunEnd {
                            status: *status,
                            answer: answer.as_deref(),
                            reason: reason.as_deref(),
                            calls: *calls,
                            prompt_tokens: *prompt_tokens,
                            completion_tokens: *completion_tokens,
                        };
                        out.push(run_span(run, at, end, content, &self.scope));
                    }
                }
                return;
            }
        }
        if run.sampled {
            out.extend(ended.into_iter().map(|f| f.data(run, &self.scope)));
        }
    }

    /// Ends every open run at its last event, as unfinished (the process is going away).
    pub(crate) fn close_all(&mut self, out: &mut Vec<SpanData>) {
        for (_, mut run) in self.runs.drain() {
            let at = run.last_us;
            let mut ended = Vec::new();
            run.close_open(at, &mut ended);
            if !run.sampled {
                continue;
            }
            out.extend(ended.into_iter().map(|f| f.data(&run, &self.scope)));
            let end = RunEnd {
                status: RunStatus::Interrupted,
                answer: None,
                reason: Some("the run had not finished when its spans were exported"),
                calls: 0,
                prompt_tokens: 0,
                completion_tokens: 0,
            };
            out.push(run_span(run, at, end, self.content, &self.scope));
        }
    }
}

/// A span that has ended, before it becomes [`SpanData`].
struct Finished {
    span_id: [u8; 8],
    parent: [u8; 8],
    name: String,
    kind: SpanKind,
    start_us: u64,
    end_us: u64,
    attributes: Vec<KeyValue>,
    events: Vec<opentelemetry::trace::Event>,
    status: Status,
}

impl Finished {
    fn data(self, run: &Run, scope: &InstrumentationScope) -> SpanData {
        SpanData {
            span_context: context(&run.ids, self.span_id),
            parent_span_id: SpanId::from_bytes(self.parent),
            parent_span_is_remote: false,
            span_kind: self.kind,
            name: self.name.into(),
            start_time: run.start + Duration::from_micros(self.start_us),
            end_time: run.start + Duration::from_micros(self.end_us.max(self.start_us)),
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events: span_events(self.events),
            links: SpanLinks::default(),
            status: self.status,
            instrumentation_scope: scope.clone(),
        }
    }
}

impl Run {
    /// Ends what is still open (the current phase, calls cut by the run's end, a model
    /// request that never answered) at `at`.
    fn close_open(&mut self, at: u64, out: &mut Vec<Finished>) {
        let steps: Vec<String> = self.models.keys().cloned().collect();
        for step in steps {
            if let Some(m) = self.models.remove(&step) {
                let status = Status::error("the run ended before the model answered");
                out.push(model_span(self, &step, m, at, Vec::new(), status));
            }
        }
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            if let Some(c) = self.calls.remove(&id) {
                let result = agentry_core::ToolResult::err(
                    &c.call,
                    agentry_core::ToolError::unavailable("the run ended before the call did"),
                );
                out.push(call_span(self, c, at, &result, 0, false));
            }
        }
        if let Some(phase) = self.phase.take() {
            out.push(phase.finish(self));
        }
    }

    fn provider_and_model(&self) -> (&str, &str) {
        match self.model.split_once(':') {
            Some(("sim", m)) => ("agentry.sim", m),
            Some((p, m)) => (p, m),
            None => ("llama_cpp", self.model.as_str()),
        }
    }
}

impl Phase {
    fn finish(self, run: &Run) -> Finished {
        Finished {
            span_id: run.ids.span_id(self.seq, SpanRole::Phase),
            parent: run.ids.span_id(0, SpanRole::Step),
            name: self.name.to_owned(),
            kind: SpanKind::Internal,
            start_us: self.at_us,
            end_us: self.end_us,
            attributes: vec![
                KeyValue::new("openinference.span.kind", "CHAIN"),
                KeyValue::new("agentry.step", self.step),
            ],
            events: Vec::new(),
            status: Status::Unset,
        }
    }
}

/// Widens the open phase (if `parent` is it) to end no earlier than `end_us`.
fn widen(run: &mut Run, parent: [u8; 8], end_us: u64) {
    if let Some(p) = &mut run.phase
        && run.ids.span_id(p.seq, SpanRole::Phase) == parent
    {
        p.end_us = p.end_us.max(end_us);
    }
}

fn model_span(
    run: &mut Run,
    step: &str,
    m: OpenModel,
    end_us: u64,
    mut attributes: Vec<KeyValue>,
    status: Status,
) -> Finished {
    widen(run, m.parent, end_us);
    let (provider, model) = run.provider_and_model();
    let (provider, model) = (provider.to_owned(), model.to_owned());
    let purpose = match m.purpose {
        ModelPurpose::Turn => "turn",
        ModelPurpose::Plan => "plan",
        ModelPurpose::Join => "join",
    };
    attributes.extend([
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", provider.clone()),
        KeyValue::new("gen_ai.system", provider.clone()),
        KeyValue::new("gen_ai.request.model", model.clone()),
        KeyValue::new("openinference.span.kind", "LLM"),
        KeyValue::new("llm.model_name", model.clone()),
        KeyValue::new("llm.provider", provider),
        KeyValue::new("agentry.step", step.to_owned()),
        KeyValue::new("agentry.purpose", purpose),
        KeyValue::new("agentry.messages", m.messages as i64),
    ]);
    Finished {
        span_id: run.ids.span_id(m.seq, SpanRole::Step),
        parent: m.parent,
        name: format!("chat {model}"),
        kind: SpanKind::Client,
        start_us: m.at_us,
        end_us,
        attributes,
        events: Vec::new(),
        status,
    }
}

fn call_span(
    run: &mut Run,
    c: OpenCall,
    end_us: u64,
    result: &agentry_core::ToolResult,
    attempts: u32,
    content: bool,
) -> Finished {
    widen(run, c.parent, end_us);
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", "execute_tool"),
        KeyValue::new("gen_ai.tool.name", c.call.name.clone()),
        KeyValue::new("gen_ai.tool.call.id", c.call.id.clone()),
        KeyValue::new("gen_ai.tool.type", "function"),
        KeyValue::new("openinference.span.kind", "TOOL"),
        KeyValue::new("tool.name", c.call.name.clone()),
        KeyValue::new("agentry.attempts", i64::from(attempts)),
    ];
    if let Some(task) = c.task {
        attributes.push(KeyValue::new("agentry.task", i64::from(task)));
    }
    attributes.extend(c.attributes);
    if content {
        let args = c.call.arguments.to_string();
        attributes.push(KeyValue::new("gen_ai.tool.call.arguments", args.clone()));
        attributes.push(KeyValue::new("input.value", args));
        attributes.push(KeyValue::new("input.mime_type", "application/json"));
    }
    let status = match &result.outcome {
        Ok(value) => {
            if content {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                attributes.push(KeyValue::new("gen_ai.tool.call.result", text.clone()));
                attributes.push(KeyValue::new("output.value", text));
            }
            Status::Ok
        }
        Err(e) => {
            attributes.push(KeyValue::new("error.type", e.kind().as_str()));
            Status::error(e.for_model().to_owned())
        }
    };
    Finished {
        span_id: run.ids.span_id(c.seq, SpanRole::Step),
        parent: c.parent,
        name: format!("execute_tool {}", c.call.name),
        kind: SpanKind::Internal,
        start_us: c.at_us,
        end_us,
        attributes,
        events: c.events,
        status,
    }
}

/// How a run ended, for its span.
struct RunEnd<'a> {
    status: RunStatus,
    answer: Option<&'a str>,
    reason: Option<&'a str>,
    calls: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

fn run_span(
    run: Run,
    end_us: u64,
    end: RunEnd<'_>,
    content: bool,
    scope: &InstrumentationScope,
) -> SpanData {
    let (provider, model) = run.provider_and_model();
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", "invoke_agent"),
        KeyValue::new("gen_ai.agent.name", "agentry"),
        KeyValue::new("gen_ai.provider.name", provider.to_owned()),
        KeyValue::new("gen_ai.request.model", model.to_owned()),
        KeyValue::new("gen_ai.usage.input_tokens", end.prompt_tokens as i64),
        KeyValue::new("gen_ai.usage.output_tokens", end.completion_tokens as i64),
        KeyValue::new("openinference.span.kind", "AGENT"),
        KeyValue::new("agent.name", "agentry"),
        KeyValue::new("agentry.run.id", run.id.clone()),
        KeyValue::new("agentry.mode", run.mode.clone()),
        KeyValue::new("agentry.run.status", end.status.as_str()),
        KeyValue::new("agentry.calls", end.calls as i64),
        KeyValue::new("agentry.tools", run.tools as i64),
    ];
    if content {
        attributes.push(KeyValue::new("input.value", run.task.clone()));
        if let Some(answer) = end.answer {
            attributes.push(KeyValue::new("output.value", answer.to_owned()));
        }
    }
    let status = match end.status {
        RunStatus::Answered | RunStatus::Stopped => Status::Ok,
        _ => {
            attributes.push(KeyValue::new("error.type", end.status.as_str()));
            Status::error(end.reason.unwrap_or(end.status.as_str()).to_owned())
        }
    };
    let root = run.ids.span_id(0, SpanRole::Step);
    SpanData {
        span_context: context(&run.ids, root),
        parent_span_id: run.ids.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: run.ids.parent.is_some(),
        span_kind: SpanKind::Internal,
        name: "invoke_agent agentry".into(),
        start_time: run.start,
        end_time: run.start + Duration::from_micros(end_us),
        attributes,
        dropped_attributes_count: 0,
        events: span_events(run.events),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

fn context(ids: &RunSpans, span_id: [u8; 8]) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(ids.trace_id),
        SpanId::from_bytes(span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

fn span_events(events: Vec<opentelemetry::trace::Event>) -> SpanEvents {
    let mut out = SpanEvents::default();
    out.events = events;
    out
}

fn span_event(
    start: SystemTime,
    at_us: u64,
    name: &'static str,
    attributes: Vec<KeyValue>,
) -> opentelemetry::trace::Event {
    opentelemetry::trace::Event::new(name, start + Duration::from_micros(at_us), attributes, 0)
}

/// The response as GenAI's `gen_ai.output.messages` and OpenInference's output attributes.
fn output_message(text: &str, calls: &[ToolCall]) -> Vec<KeyValue> {
    let mut parts = Vec::new();
    if !text.is_empty() {
        parts.push(serde_json::json!({"type": "text", "content": text}));
    }
    for c in calls {
        parts.push(serde_json::json!({"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments}));
    }
    let message = serde_json::json!([{"role": "assistant", "parts": parts}]);
    let mut out = vec![
        KeyValue::new("gen_ai.output.messages", message.to_string()),
        KeyValue::new("output.value", text.to_owned()),
        KeyValue::new("llm.output_messages.0.message.role", "assistant"),
        KeyValue::new("llm.output_messages.0.message.content", text.to_owned()),
    ];
    for (i, c) in calls.iter().enumerate() {
        let prefix = format!("llm.output_messages.0.message.tool_calls.{i}.tool_call");
        out.push(KeyValue::new(
            format!("{prefix}.function.name"),
            c.name.clone(),
        ));
        out.push(KeyValue::new(
            format!("{prefix}.function.arguments"),
            c.arguments.to_string(),
        ));
    }
    out
}
