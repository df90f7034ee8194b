//! One run as the viewer shows it: [`RunView`] (timeline, critical path, plan graph) and
//! the detail of one step.

use std::collections::HashMap;

use agentry_core::{TraceEvent, TraceKind};
use agentry_trace::{StepKind, timeline};
use serde::Serialize;
use serde_json::{Value, json};

/// Longest text a step's detail carries; the rest is a download.
pub(crate) const DETAIL_LIMIT: usize = 64 * 1024;

/// A run for the viewer.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// Run id.
    pub id: String,
    /// The task.
    pub task: String,
    /// The model's name.
    pub model: String,
    /// `sequential` or `compiled`.
    pub mode: String,
    /// How it ended (`running` while it runs).
    pub status: String,
    /// The answer, or why there is none.
    pub answer: Option<String>,
    /// Wall time so far, microseconds.
    pub wall_us: u64,
    /// Tokens over all model requests.
    pub tokens: u64,
    /// Most steps running at once.
    pub max_parallel: usize,
    /// Model requests, calls and user replies by start time.
    pub steps: Vec<StepView>,
    /// Keys of the critical path, first to last.
    pub critical_path: Vec<String>,
    /// The plan of a compiled run: one layer per plan (replans add layers).
    pub plan: Vec<PlanLayer>,
    /// The last event's sequence number (the live view asks for what follows).
    pub last_seq: u64,
}

/// One bar of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Unique within the run: the model step (`m3`), the call's id, or `u3` for a reply.
    pub key: String,
    /// What the timeline calls it: `m3`, `t2` for plan task 2, or the call's id.
    pub id: String,
    /// `model`, `call` or `user`.
    pub kind: StepKind,
    /// `plan`, `join`, `turn`, or the tool's name.
    pub label: String,
    /// Start, microseconds into the run.
    pub start_us: u64,
    /// End, microseconds into the run.
    pub end_us: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Whether it has not finished (drawn to the run's last moment).
    pub unfinished: bool,
    /// Whether it lies on the critical path.
    pub critical: bool,
    /// A one-line summary (arguments and result, or tokens).
    pub summary: String,
}

/// The tasks of one plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanLayer {
    /// The model step that wrote the plan.
    pub step: String,
    /// Its tasks, by number.
    pub tasks: Vec<PlanTask>,
}

/// One task of a plan: a node of the graph.
#[derive(Debug, Clone, Serialize)]
pub struct PlanTask {
    /// The call's key in [`RunView::steps`].
    pub key: String,
    /// The task's number (`$N`).
    pub task: u32,
    /// The tool.
    pub label: String,
    /// The tasks whose results it takes (`$N` references): the graph's edges.
    pub deps: Vec<u32>,
    /// Whether it succeeded.
    pub ok: bool,
    /// Whether it lies on the critical path.
    pub critical: bool,
}

fn cut(text: &str, n: usize) -> String {
    if text.len() <= n {
        return text.to_owned();
    }
    let mut end = n;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The run as the viewer shows it.
pub fn run_view(events: &[TraceEvent]) -> RunView {
    let t = timeline(events);
    let tokens = events
        .iter()
        .map(|e| match &e.kind {
            TraceKind::ModelResponse {
                prompt_tokens,
                completion_tokens,
                ..
            } => prompt_tokens + completion_tokens,
            _ => 0,
        })
        .sum();
    let key = |s: &agentry_trace::Step| s.call_id.clone().unwrap_or_else(|| s.id.clone());
    let critical: Vec<String> = t
        .steps
        .iter()
        .filter(|s| s.critical)
        .map(|s| (s.start_us, key(s)))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    let steps: Vec<StepView> = t
        .steps
        .iter()
        .map(|s| StepView {
            key: key(s),
            id: s.id.clone(),
            kind: s.kind,
            label: s.label.clone(),
            start_us: s.start_us,
            end_us: s.end_us,
            ok: s.ok,
            unfinished: s.unfinished,
            critical: s.critical,
            summary: cut(&s.detail, 160),
        })
        .collect();
    // The plan: each task call names its plan step and the tasks it waited for.
    let by_key: HashMap<&str, &StepView> = steps.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut layers: Vec<PlanLayer> = Vec::new();
    for e in events {
        if let TraceKind::CallStarted {
            call,
            task: Some(n),
            after,
        } = &e.kind
        {
            let plan_step = after.first().cloned().unwrap_or_default();
            let deps = after
                .iter()
                .filter_map(|a| a.strip_prefix('t')?.parse().ok())
                .collect();
            let shown = by_key.get(call.id.as_str());
            let task = PlanTask {
                key: call.id.clone(),
                task: *n,
                label: call.name.clone(),
                deps,
                ok: shown.is_none_or(|s| s.ok),
                critical: shown.is_some_and(|s| s.critical),
            };
            match layers.iter_mut().find(|l| l.step == plan_step) {
                Some(layer) => layer.tasks.push(task),
                None => layers.push(PlanLayer {
                    step: plan_step,
                    tasks: vec![task],
                }),
            }
        }
    }
    for layer in &mut layers {
        layer.tasks.sort_by_key(|t| t.task);
    }
    RunView {
        id: t.run_id.clone(),
        task: t.task.clone(),
        model: t.model.clone(),
        mode: t.mode.clone(),
        status: t.status.clone(),
        answer: t.answer.clone(),
        wall_us: t.wall_us,
        tokens,
        max_parallel: t.max_parallel,
        steps,
        critical_path: critical,
        plan: layers,
        last_seq: events.last().map_or(0, |e| e.seq),
    }
}

/// Everything recorded about one step (`key` as in [`StepView::key`]), with long texts
/// cut at 64 KiB (`truncated` then says how long the whole was); `None` if there is no
/// such step.
pub(crate) fn step_detail(events: &[TraceEvent], key: &str) -> Option<Value> {
    let mut detail = serde_json::Map::new();
    let mut found = false;
    for e in events {
        match &e.kind {
            TraceKind::ModelRequest {
                step,
                purpose,
                messages,
            } if step == key => {
                found = true;
                detail.insert("kind".into(), json!("model"));
                detail.insert("purpose".into(), json!(purpose));
                detail.insert("messages".into(), json!(messages));
                detail.insert("started_us".into(), json!(e.at_us));
            }
            TraceKind::ModelResponse {
                step,
                text,
                calls,
                malformed,
                prompt_tokens,
                completion_tokens,
                ttft_us,
            } if step == key => {
                detail.insert("text".into(), json!(cut(text, DETAIL_LIMIT)));
                detail.insert("calls".into(), json!(calls));
                detail.insert("malformed".into(), json!(malformed));
                detail.insert("prompt_tokens".into(), json!(prompt_tokens));
                detail.insert("completion_tokens".into(), json!(completion_tokens));
                detail.insert("ttft_us".into(), json!(ttft_us));
                detail.insert("ended_us".into(), json!(e.at_us));
            }
            TraceKind::ModelFailed { step, error } if step == key => {
                detail.insert("error".into(), json!(cut(error, DETAIL_LIMIT)));
                detail.insert("ended_us".into(), json!(e.at_us));
            }
            TraceKind::UserReply { step, text, ends }
                if format!("u{}", step.trim_start_matches('m')) == key =>
            {
                found = true;
                detail.insert("kind".into(), json!("user"));
                detail.insert("text".into(), json!(cut(text, DETAIL_LIMIT)));
                detail.insert("ends".into(), json!(ends));
            }
            TraceKind::CallStarted { call, task, after } if call.id == key => {
                found = true;
                detail.insert("kind".into(), json!("call"));
                detail.insert("tool".into(), json!(call.name));
                detail.insert("call_id".into(), json!(call.id));
                let args = call.arguments.to_string();
                if args.len() > DETAIL_LIMIT {
                    detail.insert("arguments_text".into(), json!(cut(&args, DETAIL_LIMIT)));
                    detail.insert("arguments_truncated".into(), json!(args.len()));
                } else {
                    detail.insert("arguments".into(), call.arguments.clone());
                }
                detail.insert("task".into(), json!(task));
                detail.insert("after".into(), json!(after));
                detail.insert("started_us".into(), json!(e.at_us));
            }
            TraceKind::PolicyDecision {
                call_id,
                action,
                rule,
                reason,
                rewritten,
                approved,
            } if call_id == key => {
                detail.insert(
                    "policy".into(),
                    json!({"action": action, "rule": rule, "reason": reason,
                           "rewritten": rewritten, "approved": approved}),
                );
            }
            TraceKind::CallFinished {
                result,
                attempts,
                duration_us,
                ..
            } if result.tool_call_id == key => {
                let content = result.content_for_model();
                detail.insert("ok".into(), json!(result.outcome.is_ok()));
                if let Err(err) = &result.outcome {
                    detail.insert("error_kind".into(), json!(err.kind()));
                }
                detail.insert("result".into(), json!(cut(&content, DETAIL_LIMIT)));
                if content.len() > DETAIL_LIMIT {
                    detail.insert("truncated".into(), json!(content.len()));
                }
                detail.insert("attempts".into(), json!(attempts));
                detail.insert("duration_us".into(), json!(duration_us));
                detail.insert("ended_us".into(), json!(e.at_us));
            }
            _ => {}
        }
    }
    found.then_some(Value::Object(detail))
}

/// The whole result text of call `key` (what the model was given), if it finished.
pub(crate) fn full_result(events: &[TraceEvent], key: &str) -> Option<String> {
    events.iter().find_map(|e| match &e.kind {
        TraceKind::CallFinished { result, .. } if result.tool_call_id == key => {
            Some(result.content_for_model())
        }
        _ => None,
    })
}
