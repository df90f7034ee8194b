//! The one enforcement path: [`enforce`] puts a validated call through a [`Policy`] and,
//! for `ask`, an [`Approver`], and says what runs. The engine and both MCP proxies use it,
//! so a call is treated the same wherever it comes from: a rewrite is checked against the
//! tool's schema again, an approval wait ends when the caller gives up, and the sentences
//! the model (or the MCP client) reads are the same.

use std::future::Future;

use agentry_core::{ToolCall, ToolError};
use serde_json::Value;

use crate::{Action, Approval, Approver, Policy, Verdict};

/// One call to decide on.
#[derive(Debug, Clone, Copy)]
pub struct CallToCheck<'a> {
    /// The run (or proxy session) it belongs to, for approvals.
    pub run_id: &'a str,
    /// The call, with its arguments as validated.
    pub call: &'a ToolCall,
    /// The agent making it, for capabilities and rate limits.
    pub agent: Option<&'a str>,
    /// The server its tool comes from (an MCP server's alias), for `server = …` rules.
    pub server: Option<&'a str>,
}

/// What [`enforce`] decided.
#[derive(Debug, Clone)]
pub struct Enforced {
    /// The arguments to run with, or why the call does not run (kind `denied`).
    pub outcome: Result<Value, ToolError>,
    /// The policy's verdict.
    pub verdict: Verdict,
    /// For `ask`: whether a human approved (`None` when no one was asked).
    pub approved: Option<bool>,
}

/// Decides on `check`'s call: the policy's verdict; a rewrite's arguments checked by
/// `revalidate` (the tool's schema) when one is given; for `ask`, the `approver`'s answer,
/// with `asking` told first, given up (refused) when `cancelled` completes.
pub async fn enforce(
    policy: &Policy,
    approver: Option<&dyn Approver>,
    check: CallToCheck<'_>,
    revalidate: Option<&(dyn Fn(Value) -> Result<Value, ToolError> + Sync)>,
    asking: impl FnOnce(&Approval),
    cancelled: impl Future<Output = ()>,
) -> Enforced {
    let call = check.call;
    let verdict = policy.decide(check.agent, check.server, &call.name, &call.arguments);
    let reason = verdict.reason.clone().unwrap_or_default();
    let mut approved = None;
    let outcome = match verdict.action {
        Action::Allow => Ok(call.arguments.clone()),
        Action::Deny => Err(ToolError::denied(reason)),
        Action::Rewrite => {
            let rewritten = verdict
                .rewritten
                .clone()
                .unwrap_or_else(|| call.arguments.clone());
            match revalidate {
                None => Ok(rewritten),
                Some(check) => check(rewritten).map_err(|e| {
                    ToolError::denied(format!(
                        "the policy rewrote the arguments into ones the tool refuses: {}",
                        e.for_model()
                    ))
                }),
            }
        }
        Action::Ask => match approver {
            None => Err(ToolError::denied(format!(
                "{reason}, and no approver is configured, so the call did not run"
            ))),
            Some(approver) => {
                let request = Approval::new(
                    check.run_id,
                    call.clone(),
                    verdict.rule.clone(),
                    reason.clone(),
                );
                asking(&request);
                let answer = tokio::select! {
                    ok = approver.approve(&request) => Some(ok),
                    () = cancelled => None,
                };
                approved = Some(answer == Some(true));
                match answer {
                    Some(true) => Ok(call.arguments.clone()),
                    Some(false) => Err(ToolError::denied(format!(
                        "a human refused this call ({reason})"
                    ))),
                    None => Err(ToolError::denied(format!(
                        "{reason}; the wait for a human's approval was given up (cancelled)"
                    ))),
                }
            }
        },
    };
    Enforced {
        outcome,
        verdict,
        approved,
    }
}
