//! A run as a timeline: [`Timeline`] of model requests and calls, with the critical path.

use std::collections::HashMap;

use agentry_core::{ModelPurpose, TraceEvent, TraceKind};
use serde::Serialize;

/// What a step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A model request.
    Model,
    /// A tool call.
    Call,
    /// The user's reply to a model message (a conversation).
    User,
}

/// One bar of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// `m1`, `m2`… for model requests; `t3` for plan task 3; the call id otherwise.
    pub id: String,
    /// Model request or call.
    pub kind: StepKind,
    /// `plan`, `join`, `turn`, or the tool's name.
    pub label: String,
    /// Start, microseconds since the run started.
    pub start_us: u64,
    /// End, microseconds since the run started.
    pub end_us: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Whether it has not finished: still running, or the run ended without it. It is
    /// drawn up to the last moment the run recorded.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unfinished: bool,
    /// Arguments and result (calls) or tokens (model).
    pub detail: String,
    /// Steps it waited for.
    pub after: Vec<String>,
    /// Whether it lies on the critical path.
    pub critical: bool,
    /// The tool call's id (calls only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}

/// A run, drawn as steps on one time axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Run id.
    pub run_id: String,
    /// The task.
    pub task: String,
    /// The model's name.
    pub model: String,
    /// `sequential` or `compiled`.
    pub mode: String,
    /// How it ended (`running` if it has not).
    pub status: String,
    /// The answer, or why there is none.
    pub answer: Option<String>,
    /// Wall time, microseconds.
    pub wall_us: u64,
    /// The steps, by start time.
    pub steps: Vec<Step>,
    /// Ids of the critical path, first to last.
    pub critical_path: Vec<String>,
    /// Most steps running at one moment.
    pub max_parallel: usize,
}

/// Builds the timeline of a run's events.
pub fn timeline(events: &[TraceEvent]) -> Timeline {
    let mut t = Timeline {
        run_id: events.first().map(|e| e.run_id.clone()).unwrap_or_default(),
        task: String::new(),
        model: String::new(),
        mode: String::new(),
        status: "running".into(),
        answer: None,
        wall_us: events.last().map_or(0, |e| e.at_us),
        steps: Vec::new(),
        critical_path: Vec::new(),
        max_parallel: 0,
    };
    let mut open: HashMap<String, usize> = HashMap::new();
    for e in events {
        match &e.kind {
            TraceKind::RunStarted {
                task, model, mode, ..
            } => {
                t.task.clone_from(task);
                t.model.clone_from(model);
                t.mode.clone_from(mode);
            }
            TraceKind::ModelRequest { step, purpose, .. } => {
                let label = match purpose {
                    ModelPurpose::Turn => "turn",
                    ModelPurpose::Plan => "plan",
                    ModelPurpose::Join => "join",
                };
                open.insert(step.clone(), t.steps.len());
                t.steps.push(Step {
                    id: step.clone(),
                    kind: StepKind::Model,
                    label: label.into(),
                    start_us: e.at_us,
                    end_us: e.at_us,
                    ok: true,
                    unfinished: true,
                    detail: String::new(),
                    after: Vec::new(),
                    critical: false,
                    call_id: None,
                });
            }
            TraceKind::ModelResponse {
                step,
                prompt_tokens,
                completion_tokens,
                calls,
                text,
                ..
            } => {
                if let Some(&i) = open.get(step) {
                    let s = &mut t.steps[i];
                    s.end_us = e.at_us;
                    s.unfinished = false;
                    let shown: String = text.chars().take(80).collect();
                    s.detail = format!(
                        "{prompt_tokens}+{completion_tokens} tokens, {} call(s) {shown:?}",
                        calls.len()
                    );
                }
            }
            TraceKind::ModelFailed { step, error } => {
                if let Some(&i) = open.get(step) {
                    let s = &mut t.steps[i];
                    s.end_us = e.at_us;
                    s.ok = false;
                    s.unfinished = false;
                    s.detail.clone_from(error);
                }
            }
            TraceKind::CallStarted { call, task, after } => {
                let id = task.map_or_else(|| call.id.clone(), |n| format!("t{n}"));
                open.insert(format!("call:{}", call.id), t.steps.len());
                t.steps.push(Step {
                    id,
                    kind: StepKind::Call,
                    label: call.name.clone(),
                    start_us: e.at_us,
                    end_us: e.at_us,
                    ok: true,
                    unfinished: true,
                    detail: call.arguments.to_string(),
                    after: after.clone(),
                    critical: false,
                    call_id: Some(call.id.clone()),
                });
            }
            TraceKind::CallFinished { result, .. } => {
                if let Some(&i) = open.get(&format!("call:{}", result.tool_call_id)) {
                    let s = &mut t.steps[i];
                    s.end_us = e.at_us;
                    s.ok = result.outcome.is_ok();
                    s.unfinished = false;
                    let out: String = result.content_for_model().chars().take(120).collect();
                    s.detail = format!("{} -> {out}", s.detail);
                }
            }
            TraceKind::UserReply { step, text, ends } => {
                let start = open.get(step).map_or(e.at_us, |&i| t.steps[i].end_us);
                let shown: String = text.chars().take(120).collect();
                t.steps.push(Step {
                    id: format!("u{}", step.trim_start_matches('m')),
                    kind: StepKind::User,
                    label: if *ends { "user (ends)" } else { "user" }.into(),
                    start_us: start,
                    end_us: e.at_us,
                    ok: true,
                    unfinished: false,
                    detail: format!("{shown:?}"),
                    after: vec![step.clone()],
                    critical: false,
                    call_id: None,
                });
            }
            TraceKind::PolicyDecision {
                call_id,
                action,
                rule,
                approved,
                ..
            } => {
                if let Some(&i) = open.get(&format!("call:{call_id}")) {
                    let by = rule.as_deref().unwrap_or("default");
                    let answer = match approved {
                        Some(true) => ", approved",
                        Some(false) => ", refused",
                        None => "",
                    };
                    let s = &mut t.steps[i];
                    s.detail = format!("{} [policy: {action} by {by}{answer}]", s.detail);
                }
            }
            TraceKind::PlanRejected { .. }
            | TraceKind::ToolsChanged { .. }
            | TraceKind::TextDelta { .. }
            | TraceKind::TaskPlanned { .. }
            | TraceKind::ApprovalAsked { .. }
            | TraceKind::Replanning { .. } => {}
            TraceKind::RunFinished {
                status,
                answer,
                reason,
                ..
            } => {
                t.status = status.as_str().into();
                t.answer = answer.clone().or_else(|| reason.clone());
                t.wall_us = e.at_us;
            }
        }
    }
    for s in t.steps.iter_mut().filter(|s| s.unfinished) {
        s.end_us = t.wall_us.max(s.start_us);
    }
    t.steps.sort_by_key(|s| (s.start_us, s.end_us));
    t.max_parallel = max_parallel(&t.steps);
    t.critical_path = critical_path(&mut t.steps);
    t
}

fn max_parallel(steps: &[Step]) -> usize {
    let mut edges: Vec<(u64, i32)> = steps
        .iter()
        .flat_map(|s| [(s.start_us, 1), (s.end_us.max(s.start_us + 1), -1)])
        .collect();
    edges.sort_unstable_by_key(|&(t, d)| (t, d));
    let mut now = 0i32;
    let mut best = 0i32;
    for (_, d) in edges {
        now += d;
        best = best.max(now);
    }
    best as usize
}

/// Walks back from the step that ended last, each time to the predecessor that ended last:
/// for a call, among the steps it waited for; for a model request, among the steps that
/// ended before it began.
fn critical_path(steps: &mut [Step]) -> Vec<String> {
    let Some(mut current) =
        (0..steps.len()).max_by_key(|&i| (steps[i].end_us, std::cmp::Reverse(i)))
    else {
        return Vec::new();
    };
    let mut path = vec![current];
    loop {
        let s = &steps[current];
        let candidates: Vec<usize> = match s.kind {
            StepKind::Call if !s.after.is_empty() => (0..steps.len())
                .filter(|&j| s.after.contains(&steps[j].id) && steps[j].start_us <= s.start_us)
                .collect(),
            _ => (0..steps.len())
                .filter(|&j| j != current && steps[j].end_us <= s.start_us)
                .collect(),
        };
        let Some(prev) = candidates
            .into_iter()
            .filter(|j| !path.contains(j))
            .max_by_key(|&j| steps[j].end_us)
        else {
            break;
        };
        path.push(prev);
        current = prev;
    }
    path.reverse();
    for &i in &path {
        steps[i].critical = true;
    }
    path.iter().map(|&i| steps[i].id.clone()).collect()
}

/// The timeline as text: a header, one Gantt bar per step (critical ones starred), the
/// critical path and the answer.
pub fn render(t: &Timeline, width: usize) -> String {
    let secs = |us: u64| us as f64 / 1e6;
    let width = width.clamp(20, 200);
    let calls = t.steps.iter().filter(|s| s.kind == StepKind::Call).count();
    let mut out = format!(
        "run {}  {}  {}  {}  {:.3} s  {calls} call(s)  at most {} at once\ntask: {}\n\n",
        t.run_id,
        t.mode,
        t.model,
        t.status,
        secs(t.wall_us),
        t.max_parallel,
        t.task
    );
    let total = t.wall_us.max(1);
    let label_w = t
        .steps
        .iter()
        .map(|s| s.id.len() + s.label.len() + 1)
        .max()
        .unwrap_or(4)
        .min(32);
    out.push_str(&format!(
        "  {:<label_w$}  {:>7}  {:>7}  0{:>w$}\n",
        "step",
        "start",
        "took",
        format!("{:.3}s", secs(total)),
        w = width - 1
    ));
    for s in &t.steps {
        let a = (s.start_us as u128 * width as u128 / total as u128) as usize;
        let b = ((s.end_us as u128 * width as u128).div_ceil(total as u128) as usize)
            .max(a + 1)
            .min(width);
        let fill = match (s.unfinished, s.ok) {
            (true, _) => '░',
            (false, true) => '█',
            (false, false) => '▒',
        };
        let bar: String = (0..width)
            .map(|i| if i >= a && i < b { fill } else { ' ' })
            .collect();
        let name: String = format!("{} {}", s.id, s.label)
            .chars()
            .take(label_w)
            .collect();
        out.push_str(&format!(
            "{} {:<label_w$}  {:>7.3}  {:>7.3}  |{bar}|{}\n",
            if s.critical { '*' } else { ' ' },
            name,
            secs(s.start_us),
            secs(s.end_us - s.start_us),
            match (s.unfinished, s.ok) {
                (true, _) => " unfinished",
                (false, true) => "",
                (false, false) => " failed",
            }
        ));
    }
    out.push_str(&format!(
        "\ncritical path: {}\n",
        t.critical_path.join(" → ")
    ));
    if let Some(a) = &t.answer {
        out.push_str(&format!(
            "{}: {a}\n",
            if t.status == "answered" {
                "answer"
            } else {
                "ended"
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentry_core::{RunStatus, ToolCall, ToolResult};
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn ev(seq: u64, at_us: u64, kind: TraceKind) -> TraceEvent {
        TraceEvent {
            run_id: "r1".into(),
            seq,
            at_us,
            kind,
        }
    }

    #[test]
    fn critical_path_follows_dependencies() {
        let c = |id: &str, name: &str| ToolCall::new(id, name, json!({}));
        let events = vec![
            ev(
                0,
                0,
                TraceKind::RunStarted {
                    task: "t".into(),
                    model: "sim".into(),
                    mode: "compiled".into(),
                    tools: vec![],
                    stop_tools: vec![],
                    system: None,
                    parent: None,
                },
            ),
            ev(
                1,
                0,
                TraceKind::ModelRequest {
                    step: "m1".into(),
                    purpose: ModelPurpose::Plan,
                    messages: 2,
                },
            ),
            ev(
                2,
                10,
                TraceKind::CallStarted {
                    call: c("t1", "a"),
                    task: Some(1),
                    after: vec!["m1".into()],
                },
            ),
            ev(
                3,
                20,
                TraceKind::CallStarted {
                    call: c("t2", "b"),
                    task: Some(2),
                    after: vec!["m1".into()],
                },
            ),
            ev(
                4,
                30,
                TraceKind::ModelResponse {
                    step: "m1".into(),
                    text: String::new(),
                    calls: vec![],
                    malformed: vec![],
                    prompt_tokens: 1,
                    completion_tokens: 1,
                    ttft_us: None,
                },
            ),
            ev(
                5,
                50,
                TraceKind::CallFinished {
                    result: ToolResult::ok(&c("t1", "a"), json!(1)),
                    task: Some(1),
                    attempts: 1,
                    duration_us: 40,
                },
            ),
            ev(
                6,
                120,
                TraceKind::CallFinished {
                    result: ToolResult::ok(&c("t2", "b"), json!(2)),
                    task: Some(2),
                    attempts: 1,
                    duration_us: 100,
                },
            ),
            ev(
                7,
                120,
                TraceKind::CallStarted {
                    call: c("t3", "c"),
                    task: Some(3),
                    after: vec!["m1".into(), "t1".into(), "t2".into()],
                },
            ),
            ev(
                8,
                140,
                TraceKind::CallFinished {
                    result: ToolResult::ok(&c("t3", "c"), json!(3)),
                    task: Some(3),
                    attempts: 1,
                    duration_us: 20,
                },
            ),
            ev(
                9,
                140,
                TraceKind::ModelRequest {
                    step: "m2".into(),
                    purpose: ModelPurpose::Join,
                    messages: 4,
                },
            ),
            ev(
                10,
                160,
                TraceKind::ModelResponse {
                    step: "m2".into(),
                    text: "done".into(),
                    calls: vec![],
                    malformed: vec![],
                    prompt_tokens: 1,
                    completion_tokens: 1,
                    ttft_us: None,
                },
            ),
            ev(
                11,
                161,
                TraceKind::RunFinished {
                    status: RunStatus::Answered,
                    answer: Some("done".into()),
                    reason: None,
                    calls: 3,
                    prompt_tokens: 2,
                    completion_tokens: 2,
                },
            ),
        ];
        let t = timeline(&events);
        assert_eq!(t.critical_path, vec!["m1", "t2", "t3", "m2"]);
        assert_eq!(t.max_parallel, 3);
        assert_eq!(t.status, "answered");
        let text = render(&t, 40);
        assert!(text.contains("critical path: m1 → t2 → t3 → m2"), "{text}");
        assert!(text.contains("* t2 b"), "{text}");
    }
}
