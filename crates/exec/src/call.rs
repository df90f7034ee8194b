//! Running one call: validation, deadline, retries, panics, cancellation, result size.
//!
//! The per-call path cannot fail: every outcome, a panic included, becomes a [`ToolResult`]
//! the model can act on.

use std::{
    panic::AssertUnwindSafe,
    time::{Duration, Instant},
};

use agentry_core::{ToolCall, ToolError, ToolResult, TraceKind};
use agentry_policy::{CallToCheck, Policy, enforce};
use agentry_tools::{CallContext, Calls, ToolSet};
use futures::FutureExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{EngineConfig, record::Recorder};

/// Runs `call` to an outcome; returns it with the number of attempts made. The policy's
/// decision (and a request for approval) goes to `rec` as it happens; the tool sees
/// `traceparent`, its span's, if the run propagates its trace, and `calls`, if it calls the
/// run's other tools.
#[allow(clippy::too_many_arguments)] // the call's context, one argument each
pub(crate) async fn invoke(
    tools: &ToolSet,
    cfg: &EngineConfig,
    rec: &Recorder<'_>,
    call: &ToolCall,
    traceparent: Option<String>,
    calls: Option<Calls>,
    cancel: &CancellationToken,
) -> (ToolResult, u32) {
    let mut checked = match tools.check(&call.name, call.arguments.clone()) {
        Ok(checked) => checked,
        Err(e) => return (ToolResult::err(call, e), 0),
    };
    if let Some(policy) = &cfg.policy {
        let (outcome, record) =
            gate(policy, tools, cfg, rec, call, checked.arguments, cancel).await;
        rec.emit(record);
        match outcome {
            Ok(arguments) => checked.arguments = arguments,
            Err(e) => return (ToolResult::err(call, e), 0),
        }
    }
    let context = Context {
        run_id: &rec.run_id,
        traceparent,
        calls,
    };
    run(tools, cfg, call, checked.arguments, context, cancel).await
}

/// What a call's [`CallContext`] is made from, besides its id and deadline.
struct Context<'a> {
    run_id: &'a str,
    traceparent: Option<String>,
    calls: Option<Calls>,
}

/// The policy's decision on a validated call of `rec`'s run (the one enforcement path,
/// [`agentry_policy::enforce`]): the arguments to run with, or why not; and the decision
/// as a trace event.
async fn gate(
    policy: &Policy,
    tools: &ToolSet,
    cfg: &EngineConfig,
    rec: &Recorder<'_>,
    call: &ToolCall,
    arguments: Value,
    cancel: &CancellationToken,
) -> (Result<Value, ToolError>, TraceKind) {
    let server = tools.get(&call.name).and_then(|t| t.server());
    let checked = ToolCall::new(call.id.clone(), call.name.clone(), arguments);
    // A rewrite must still fit the tool's schema.
    let revalidate = |args: Value| tools.check(&call.name, args).map(|c| c.arguments);
    let enforced = enforce(
        policy,
        cfg.approver.as_deref(),
        CallToCheck {
            run_id: &rec.run_id,
            call: &checked,
            agent: cfg.agent.as_deref(),
            server,
        },
        Some(&revalidate),
        |request| {
            rec.emit(TraceKind::ApprovalAsked {
                call_id: call.id.clone(),
                rule: request.rule.clone(),
                reason: request.reason.clone(),
            });
        },
        cancel.cancelled(),
    )
    .await;
    let verdict = enforced.verdict;
    let record = TraceKind::PolicyDecision {
        call_id: call.id.clone(),
        action: verdict.action,
        rule: verdict.rule,
        reason: verdict.reason,
        rewritten: verdict.rewritten,
        approved: enforced.approved,
    };
    (enforced.outcome, record)
}

/// Runs a checked call: deadline, retries, panics, cancellation, result size.
async fn run(
    tools: &ToolSet,
    cfg: &EngineConfig,
    call: &ToolCall,
    arguments: Value,
    context: Context<'_>,
    cancel: &CancellationToken,
) -> (ToolResult, u32) {
    let Some(tool) = tools.get(&call.name) else {
        return (
            ToolResult::err(call, ToolError::unknown_tool(&call.name, &tools.names())),
            0,
        );
    };
    let idempotent = tool.is_idempotent();
    let timeout = cfg
        .tool_timeouts
        .get(&call.name)
        .copied()
        .unwrap_or(cfg.call_timeout);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let cx = CallContext {
            call_id: call.id.clone(),
            cancel: cancel.child_token(),
            deadline: Some(Instant::now() + timeout),
            traceparent: context.traceparent.clone(),
            run_id: Some(context.run_id.to_owned()),
            calls: context.calls.clone(),
        };
        let call_cancel = cx.cancel.clone();
        let running = AssertUnwindSafe(tool.call_json(arguments.clone(), cx)).catch_unwind();
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ToolError::unavailable("the run was cancelled before the call finished")),
            r = tokio::time::timeout(timeout, running) => match r {
                Err(_) => {
                    call_cancel.cancel();
                    Err(ToolError::timeout(timeout.as_millis() as u64))
                }
                Ok(Err(panic)) => Err(ToolError::failed("the tool crashed (it panicked); the call had no result")
                    .with_cause(panic_message(&panic))),
                Ok(Ok(result)) => result,
            },
        };
        match outcome {
            Ok(value) => {
                let size = serde_json::to_string(&value).map_or(usize::MAX, |s| s.len());
                if size > cfg.max_result_bytes {
                    let e = ToolError::failed(format!(
                        "the result is {size} bytes, more than the {} allowed; ask for less (a narrower query, fewer items)",
                        cfg.max_result_bytes
                    ));
                    return (ToolResult::err(call, e), attempt);
                }
                return (ToolResult::ok(call, value), attempt);
            }
            Err(e)
                if idempotent
                    && e.kind().is_retryable()
                    && attempt <= cfg.retries
                    && !cancel.is_cancelled() =>
            {
                let wait = cfg.retry_backoff.saturating_mul(1 << (attempt - 1).min(10));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => return (ToolResult::err(call, e), attempt),
                }
            }
            Err(e) => return (ToolResult::err(call, e), attempt),
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// Microseconds in `d`, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
