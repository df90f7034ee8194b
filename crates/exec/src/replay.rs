//! Re-running a recorded run: [`replay`] with the recorded model outputs and tool results,
//! checking that every step comes out the same ([`compare`]).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use agentry_core::{ToolError, ToolSpec, TraceEvent, TraceKind};
use agentry_llm::{
    ChatRequest, Completion, FinishReason, LlmError, Model, ModelCall, ModelEvent, ModelStream,
    Timing, Usage,
};
use agentry_parse::Malformed;
use agentry_tools::{FnTool, ToolSet};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use futures::future::BoxFuture;

use crate::{Collect, Engine, EngineConfig, Interlocutor, Mode, Reply, ReplyError};

/// Where a replay first differed from the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Position among the compared steps (from 1).
    pub step: usize,
    /// The recorded step.
    pub expected: String,
    /// The replayed step.
    pub got: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {} differs:\n  recorded: {}\n  replayed: {}",
            self.step, self.expected, self.got
        )
    }
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    /// Steps compared.
    pub steps: usize,
    /// The first difference, if any.
    pub divergence: Option<Divergence>,
    /// The replayed events.
    pub events: Vec<TraceEvent>,
}

struct Recorded {
    text: String,
    calls: Vec<agentry_core::ToolCall>,
    /// What the model read about output that could not be read as calls.
    malformed: Vec<String>,
    usage: Usage,
}

/// A model that answers with a recording's responses, in order.
struct ReplayModel {
    name: String,
    responses: Mutex<VecDeque<Recorded>>,
}

impl Model for ReplayModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn stream(&self, _request: ChatRequest) -> ModelStream {
        let next = self.responses.lock().ok().and_then(|mut q| q.pop_front());
        let events: Vec<Result<ModelEvent, LlmError>> = match next {
            None => vec![Err(LlmError::Script(
                "the recording has no more model responses".into(),
            ))],
            Some(r) => {
                let mut out = Vec::new();
                if !r.text.is_empty() {
                    out.push(Ok(ModelEvent::Text(r.text)));
                }
                let finish = if r.calls.is_empty() {
                    FinishReason::Stop
                } else {
                    FinishReason::ToolCalls
                };
                out.extend(r.calls.into_iter().map(|call| {
                    Ok(ModelEvent::Call(ModelCall {
                        call,
                        repairs: Vec::new(),
                    }))
                }));
                out.extend(
                    r.malformed
                        .into_iter()
                        .map(|m| Ok(ModelEvent::Malformed(Malformed::recorded(m)))),
                );
                out.push(Ok(ModelEvent::Done(Completion {
                    finish_reason: finish,
                    usage: r.usage,
                    timing: Timing::default(),
                })));
                out
            }
        };
        Box::pin(futures::stream::iter(events))
    }
}

/// A user who says what the recording says they said, in order.
struct RecordedUser(Mutex<VecDeque<Reply>>);

impl Interlocutor for RecordedUser {
    fn reply<'a>(&'a self, _message: &'a str) -> BoxFuture<'a, Result<Reply, ReplyError>> {
        let next = self.0.lock().ok().and_then(|mut q| q.pop_front());
        Box::pin(async move {
            next.ok_or_else(|| ReplyError::from("the recording has no more user replies"))
        })
    }
}

fn key(name: &str, args: &Value) -> String {
    format!("{name} {args}")
}

/// Replays a recorded run and compares it with the recording.
pub async fn replay(recorded: &[TraceEvent], cfg: EngineConfig) -> ReplayReport {
    let mut task = String::new();
    let mut model_name = String::from("replay");
    let mut mode = cfg.mode;
    let mut responses = VecDeque::new();
    let mut args_by_id: HashMap<String, (String, Value)> = HashMap::new();
    let mut results: HashMap<String, VecDeque<Result<Value, ToolError>>> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut stop_tools = Vec::new();
    let mut system = None;
    let mut replies: VecDeque<Reply> = VecDeque::new();
    for e in recorded {
        match &e.kind {
            TraceKind::RunStarted {
                task: t,
                model,
                mode: m,
                tools,
                stop_tools: stops,
                system: sys,
                ..
            } => {
                stop_tools.clone_from(stops);
                system.clone_from(sys);
                task.clone_from(t);
                model_name = format!("replay of {model}");
                mode = if m == "compiled" {
                    Mode::Compiled
                } else {
                    Mode::Sequential
                };
                names.extend(tools.iter().cloned());
            }
            TraceKind::ModelResponse {
                text,
                calls,
                malformed,
                prompt_tokens,
                completion_tokens,
                ..
            } => responses.push_back(Recorded {
                text: text.clone(),
                calls: calls.clone(),
                malformed: malformed.clone(),
                usage: Usage {
                    prompt_tokens: *prompt_tokens,
                    completion_tokens: *completion_tokens,
                },
            }),
            TraceKind::CallStarted { call, .. } => {
                args_by_id.insert(call.id.clone(), (call.name.clone(), call.arguments.clone()));
                if !names.contains(&call.name) {
                    names.push(call.name.clone());
                }
            }
            TraceKind::UserReply { text, ends, .. } => replies.push_back(if *ends {
                Reply::End(text.clone())
            } else {
                Reply::Say(text.clone())
            }),
            TraceKind::CallFinished { result, .. } => {
                if let Some((name, args)) = args_by_id.get(&result.tool_call_id) {
                    results
                        .entry(key(name, args))
                        .or_default()
                        .push_back(result.outcome.clone());
                }
            }
            _ => {}
        }
    }
    let results = Arc::new(Mutex::new(results));
    let mut tools = ToolSet::new();
    for name in names {
        let results = Arc::clone(&results);
        let spec = ToolSpec::new(name.clone(), "replayed", json!({"type": "object"}));
        let tool = FnTool::new(spec, move |args, _cx| {
            let outcome = results
                .lock()
                .ok()
                .and_then(|mut r| r.get_mut(&key(&name, &args)).and_then(VecDeque::pop_front));
            let name = name.clone();
            async move {
                outcome.unwrap_or_else(|| {
                    Err(ToolError::failed(format!(
                        "`{name}` with these arguments is not in the recording"
                    )))
                })
            }
        });
        // Names come from the recording and are unique here; a permissive schema always compiles.
        let _ = tools.add(tool);
    }
    let model = Arc::new(ReplayModel {
        name: model_name,
        responses: Mutex::new(responses),
    });
    let cfg = EngineConfig {
        mode,
        retries: 0,
        stop_tools,
        system_prompt: system,
        ..cfg
    };
    let engine = Engine::new(model, Arc::new(tools), cfg);
    let collect = Collect::new();
    let run_id = recorded
        .first()
        .map_or_else(crate::new_run_id, |e| format!("{}-replay", e.run_id));
    if replies.is_empty() {
        engine
            .run_with(&task, &collect, CancellationToken::new(), run_id)
            .await;
    } else {
        let user = RecordedUser(Mutex::new(replies));
        engine
            .converse(&task, &user, &collect, CancellationToken::new(), run_id)
            .await;
    }
    let events = collect.events();
    let (steps, divergence) = match compare(recorded, &events) {
        Ok(n) => (n, None),
        Err(d) => (d.step, Some(d)),
    };
    ReplayReport {
        steps,
        divergence,
        events,
    }
}

/// Compares two runs step by step, ignoring times and call ids, and the order of calls that
/// ran concurrently; returns the number of steps, or the first difference.
pub fn compare(recorded: &[TraceEvent], replayed: &[TraceEvent]) -> Result<usize, Divergence> {
    let a = signature(recorded);
    let b = signature(replayed);
    for (i, pair) in a.iter().zip(b.iter()).enumerate() {
        if pair.0 != pair.1 {
            return Err(Divergence {
                step: i + 1,
                expected: pair.0.clone(),
                got: pair.1.clone(),
            });
        }
    }
    if a.len() != b.len() {
        let i = a.len().min(b.len());
        return Err(Divergence {
            step: i + 1,
            expected: a
                .get(i)
                .cloned()
                .unwrap_or_else(|| "(the recording ends here)".into()),
            got: b
                .get(i)
                .cloned()
                .unwrap_or_else(|| "(the replay ends here)".into()),
        });
    }
    Ok(a.len())
}

/// One line per step; the calls a model step started follow that step's response, sorted,
/// so neither their completion order nor how they interleave with a streamed plan matters.
fn signature(events: &[TraceEvent]) -> Vec<String> {
    let mut args: HashMap<&str, (&str, &Value, String)> = HashMap::new();
    let mut by_step: HashMap<String, Vec<String>> = HashMap::new();
    for e in events {
        match &e.kind {
            TraceKind::CallStarted { call, after, .. } => {
                let step = after
                    .iter()
                    .find(|a| a.starts_with('m'))
                    .cloned()
                    .unwrap_or_default();
                args.insert(&call.id, (&call.name, &call.arguments, step));
            }
            TraceKind::CallFinished { result, task, .. } => {
                let (name, a, step) = args.get(result.tool_call_id.as_str()).cloned().unwrap_or((
                    &result.name,
                    &Value::Null,
                    String::new(),
                ));
                let outcome = match &result.outcome {
                    Ok(v) => format!("ok {v}"),
                    Err(e) => format!("{} {}", e.kind(), e.for_model()),
                };
                let task = task.map(|t| format!("task {t}: ")).unwrap_or_default();
                by_step
                    .entry(step)
                    .or_default()
                    .push(format!("call {task}{name}({a}) -> {outcome}"));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    fn take(by_step: &mut HashMap<String, Vec<String>>, step: &str, out: &mut Vec<String>) {
        if let Some(mut calls) = by_step.remove(step) {
            calls.sort();
            out.append(&mut calls);
        }
    }
    for e in events {
        match &e.kind {
            TraceKind::RunStarted { task, mode, .. } => {
                out.push(format!("run started ({mode}): {task}"))
            }
            TraceKind::ModelRequest {
                purpose, messages, ..
            } => out.push(format!("model request ({purpose:?}, {messages} messages)")),
            TraceKind::ModelResponse {
                step, text, calls, ..
            } => {
                let c: Vec<String> = calls
                    .iter()
                    .map(|c| format!("{}({})", c.name, c.arguments))
                    .collect();
                out.push(format!("model response: {text:?} calls [{}]", c.join(", ")));
                take(&mut by_step, step, &mut out);
            }
            TraceKind::ModelFailed { step, error } => {
                out.push(format!("model failed: {error}"));
                take(&mut by_step, step, &mut out);
            }
            // A call's recorded outcome carries what the policy did to it; a replay offers
            // every recorded tool from the start, so changes of the offer are not steps.
            TraceKind::CallStarted { .. }
            | TraceKind::CallFinished { .. }
            | TraceKind::PolicyDecision { .. }
            | TraceKind::ToolsChanged { .. }
            | TraceKind::TextDelta { .. }
            | TraceKind::TaskPlanned { .. }
            | TraceKind::ApprovalAsked { .. }
            | TraceKind::Replanning { .. } => {}
            TraceKind::PlanRejected { reason } => out.push(format!("plan rejected: {reason}")),
            TraceKind::UserReply { text, ends, .. } => out.push(format!(
                "user: {text:?}{}",
                if *ends { " (ends)" } else { "" }
            )),
            TraceKind::RunFinished {
                status,
                answer,
                reason,
                ..
            } => {
                let mut rest: Vec<String> = by_step.drain().flat_map(|(_, c)| c).collect();
                rest.sort();
                out.append(&mut rest);
                out.push(format!(
                    "run finished: {} {}",
                    status.as_str(),
                    answer.as_deref().or(reason.as_deref()).unwrap_or("")
                ));
            }
        }
    }
    out
}
