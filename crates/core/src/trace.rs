//! What a run records, step by step: [`TraceEvent`].
//!
//! The engine emits these as it goes; the trace store persists them, `agentry trace show`
//! draws them, and replay compares them. Times are microseconds since the run started, so a
//! trace reads the same wherever it is replayed.

use serde::{Deserialize, Serialize};

use crate::{ToolCall, ToolResult};

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// The run it belongs to.
    pub run_id: String,
    /// Position in the run, from 0.
    pub seq: u64,
    /// Microseconds since the run started.
    pub at_us: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: TraceKind,
}

/// Why a model was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPurpose {
    /// A turn of the sequential loop.
    Turn,
    /// Writing a plan (compiled mode).
    Plan,
    /// Joining plan results into an answer or a replan (compiled mode).
    Join,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The model answered.
    Answered,
    /// A budget (time, tokens, calls, turns, replans) ran out first.
    BudgetExhausted,
    /// The run was cancelled.
    Cancelled,
    /// The model backend failed and the run could not go on.
    Failed,
    /// A call to a stop tool (a hand-off to a human, say) ended the run.
    Stopped,
    /// The model kept making the same call with the same arguments.
    LoopDetected,
    /// The process running it ended before the run did (killed, crashed); set when the
    /// trace store notices, not by the engine.
    Interrupted,
}

impl RunStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
            Self::LoopDetected => "loop_detected",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What a policy did with a call: the `action` of a [`TraceKind::PolicyDecision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    /// The call runs as it is.
    Allow,
    /// The call does not run; the model reads the reason.
    Deny,
    /// The call runs with changed arguments.
    Rewrite,
    /// The call runs only if a human approves it.
    Ask,
}

impl PolicyAction {
    /// `allow`, `deny`, `rewrite` or `ask`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Rewrite => "rewrite",
            Self::Ask => "ask",
        }
    }
}

impl std::fmt::Display for PolicyAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened at a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceKind {
    /// The run began.
    RunStarted {
        /// The task as given.
        task: String,
        /// The model's name.
        model: String,
        /// `sequential` or `compiled`.
        mode: String,
        /// Names of the tools offered.
        tools: Vec<String>,
        /// Tools whose successful call ends the run.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stop_tools: Vec<String>,
        /// The system message the run began with, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<String>,
        /// The W3C `traceparent` of the span the run was started from (a sub-agent's
        /// caller, a request to `mcp serve`), when it was started inside a trace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
    },
    /// A model request was sent.
    ModelRequest {
        /// Step id (`m1`, `m2`, …).
        step: String,
        /// Why.
        purpose: ModelPurpose,
        /// Messages in the request.
        messages: usize,
    },
    /// Text the model streamed, as it came (not kept in the trace store: the response's
    /// whole text is in [`TraceKind::ModelResponse`]).
    TextDelta {
        /// Step id of the request.
        step: String,
        /// The new text.
        text: String,
    },
    /// A compiled plan's line was read: the task, before its inputs are there and it runs.
    TaskPlanned {
        /// Step id of the planner's request.
        step: String,
        /// Task number.
        task: u32,
        /// The tool it calls.
        name: String,
        /// Its arguments as written (`$N` references unresolved).
        arguments: serde_json::Value,
        /// The tasks it uses.
        deps: Vec<u32>,
    },
    /// A model response ended.
    ModelResponse {
        /// Step id of the request.
        step: String,
        /// Text outside calls.
        text: String,
        /// Calls it made.
        calls: Vec<ToolCall>,
        /// Malformed call text, as the sentences the model was sent back.
        malformed: Vec<String>,
        /// Prompt tokens.
        prompt_tokens: u64,
        /// Completion tokens.
        completion_tokens: u64,
        /// Microseconds to the first token, if any.
        ttft_us: Option<u64>,
    },
    /// The model request failed.
    ModelFailed {
        /// Step id of the request.
        step: String,
        /// Why.
        error: String,
    },
    /// A tool call started.
    CallStarted {
        /// The call.
        call: ToolCall,
        /// Plan task number in compiled mode.
        task: Option<u32>,
        /// Steps this call waited for (the model turn, or the tasks it references).
        after: Vec<String>,
    },
    /// A tool call ended.
    CallFinished {
        /// The result (value or error).
        result: ToolResult,
        /// Plan task number in compiled mode.
        task: Option<u32>,
        /// Attempts made (more than 1 after retries).
        attempts: u32,
        /// Microseconds the call took, retries included.
        duration_us: u64,
    },
    /// The policy decided on a call (after validation, before it ran).
    PolicyDecision {
        /// The call's id.
        call_id: String,
        /// What the policy did.
        action: PolicyAction,
        /// The rule that decided, or `None` for the policy's default.
        rule: Option<String>,
        /// Why, as the model reads it (deny, ask).
        reason: Option<String>,
        /// The arguments the call ran with after a rewrite (the call's own are in
        /// `call_started`).
        rewritten: Option<serde_json::Value>,
        /// For `ask`: whether a human approved.
        approved: Option<bool>,
    },
    /// A call the policy marks `ask` waits for a human (before its `policy_decision`).
    ApprovalAsked {
        /// The call's id.
        call_id: String,
        /// The rule that asked, if one did.
        rule: Option<String>,
        /// Why it needs approval.
        reason: String,
    },
    /// The joiner asked for another plan.
    Replanning {
        /// What it said is missing.
        reason: String,
    },
    /// The user answered the model's message (a run that is a conversation).
    UserReply {
        /// Step id of the model response answered.
        step: String,
        /// What the user said.
        text: String,
        /// Whether the reply ends the conversation.
        ends: bool,
    },
    /// The tools on offer changed during the run (a server's
    /// `notifications/tools/list_changed`); later model requests offer these.
    ToolsChanged {
        /// Names of the tools now on offer.
        tools: Vec<String>,
    },
    /// A plan was rejected (cycle, bad reference, unknown tool, too many tasks).
    PlanRejected {
        /// Why, as sent back to the model.
        reason: String,
    },
    /// The run ended.
    RunFinished {
        /// How.
        status: RunStatus,
        /// The answer, if there is one.
        answer: Option<String>,
        /// Why it stopped, when it did not answer.
        reason: Option<String>,
        /// Tool calls made.
        calls: u64,
        /// Prompt tokens over all requests.
        prompt_tokens: u64,
        /// Completion tokens over all requests.
        completion_tokens: u64,
    },
}

impl TraceKind {
    /// The snake_case name of the kind, as stored.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run_started",
            Self::ModelRequest { .. } => "model_request",
            Self::TextDelta { .. } => "text_delta",
            Self::TaskPlanned { .. } => "task_planned",
            Self::ApprovalAsked { .. } => "approval_asked",
            Self::Replanning { .. } => "replanning",
            Self::ModelResponse { .. } => "model_response",
            Self::ModelFailed { .. } => "model_failed",
            Self::CallStarted { .. } => "call_started",
            Self::CallFinished { .. } => "call_finished",
            Self::UserReply { .. } => "user_reply",
            Self::ToolsChanged { .. } => "tools_changed",
            Self::PolicyDecision { .. } => "policy_decision",
            Self::PlanRejected { .. } => "plan_rejected",
            Self::RunFinished { .. } => "run_finished",
        }
    }

    /// Whether the event is for live consumers only and not kept in the trace store: text
    /// deltas (the whole text is in the response) and planned tasks (each that runs is in
    /// its `call_started`).
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Self::TextDelta { .. } | Self::TaskPlanned { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolError;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn events_round_trip_with_their_kind_tag() {
        let call = ToolCall::new("c1", "f", json!({"x": 1}));
        let events = vec![
            TraceKind::RunStarted {
                task: "t".into(),
                model: "sim:x".into(),
                mode: "compiled".into(),
                tools: vec!["f".into()],
                stop_tools: vec!["handoff".into()],
                system: Some("Be brief.".into()),
                parent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            },
            TraceKind::PolicyDecision {
                call_id: "c1".into(),
                action: PolicyAction::Rewrite,
                rule: Some("small pages".into()),
                reason: None,
                rewritten: Some(json!({"x": 2})),
                approved: None,
            },
            TraceKind::UserReply {
                step: "m1".into(),
                text: "thanks".into(),
                ends: true,
            },
            TraceKind::CallStarted {
                call: call.clone(),
                task: Some(1),
                after: vec!["m1".into()],
            },
            TraceKind::CallFinished {
                result: ToolResult::err(&call, ToolError::timeout(5)),
                task: Some(1),
                attempts: 2,
                duration_us: 10,
            },
            TraceKind::RunFinished {
                status: RunStatus::Answered,
                answer: Some("a".into()),
                reason: None,
                calls: 1,
                prompt_tokens: 3,
                completion_tokens: 4,
            },
        ];
        for (seq, kind) in events.into_iter().enumerate() {
            let e = TraceEvent {
                run_id: "r".into(),
                seq: seq as u64,
                at_us: 5,
                kind,
            };
            let wire = serde_json::to_value(&e).unwrap();
            assert_eq!(wire["kind"], e.kind.name());
            assert_eq!(serde_json::from_value::<TraceEvent>(wire).unwrap(), e);
        }
    }
}
