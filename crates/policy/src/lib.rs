//! Declarative policy for tool calls: [`Policy`] sees every call before it runs and decides
//! to allow it, deny it (with a reason the model reads), rewrite its arguments, or ask a
//! human ([`Approver`], such as the [`ApprovalQueue`]); per-agent capabilities hide tools and
//! limit call rates.
//!
//! A policy is a TOML (or YAML) file. Rules are tried in order and the first that matches
//! decides; a call no rule matches gets the default action. A rule whose tool and server
//! match but whose conditions the policy cannot decide (an `inside` test on a relative or
//! `~` path, on a symbolic link it may not read…) denies the call, whatever its action, with
//! a reason the model can act on ([`Truth`]).
//!
//! `inside` and `not_inside` decide on the place a path leads to on this machine: the
//! symbolic links of its existing parts followed, `.` and `..` resolved, names compared as
//! written and in Unicode NFC; a relative path needs `relative_to` on the condition. A policy
//! in front of a server whose files are on another machine says `paths = "lexical"`: then
//! only `.` and `..` are resolved and the test checks the string alone. Neither can see a
//! file swapped for a symbolic link between the check and the open, nor two spellings a
//! case-insensitive filesystem takes for one name.
//!
//! ```toml
//! default = "allow"
//!
//! [[rule]]
//! name = "writes stay in the sandbox"
//! tool = "write_*"                      # a glob on the tool name
//! when = [{ path = "/path", not_inside = "/tmp/sandbox" }]
//! action = "deny"
//! reason = "files may only be written under /tmp/sandbox"
//!
//! [[rule]]
//! tool = "transfer"
//! when = [{ path = "/amount", gt = 1000 }]
//! action = "ask"
//!
//! [[rule]]
//! tool = "search"
//! action = "rewrite"
//! clamp = { "/limit" = { max = 20 } }
//!
//! [agent.support]
//! tools = ["get_*", "search"]           # what this agent sees at all
//! rate = { search = "10/minute" }
//! ```
//!
//! ```
//! use agentry_policy::{Action, Policy};
//! use serde_json::json;
//!
//! let policy = Policy::from_toml(r#"
//!     [[rule]]
//!     tool = "delete_*"
//!     action = "deny"
//!     reason = "nothing is deleted here"
//! "#)?;
//! let v = policy.decide(None, None, "delete_file", &json!({"path": "/etc"}));
//! assert_eq!(v.action, Action::Deny);
//! assert_eq!(v.reason.as_deref(), Some("nothing is deleted here"));
//! assert_eq!(policy.decide(None, None, "read_file", &json!({})).action, Action::Allow);
//! # Ok::<(), agentry_policy::PolicyError>(())
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod approve;
mod enforce;
mod file;
mod rule;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::Value;

pub use approve::{
    Approval, ApprovalQueue, Approver, Pending, QueueError, QueueNotice, arguments_hash,
    is_approval_id,
};
pub use enforce::{CallToCheck, Enforced, enforce};
pub use rule::{Condition, Paths, Rule, Test, Truth};

/// What the policy does with a call (the trace records it as this type too).
pub use agentry_core::PolicyAction as Action;

/// The decision on one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// What happens.
    pub action: Action,
    /// The rule that decided (its name, or `rule N` from 1), or `None` for the default.
    pub rule: Option<String>,
    /// Why, in words the model can read (deny and ask).
    pub reason: Option<String>,
    /// The arguments to run with, after a rewrite.
    pub rewritten: Option<Value>,
}

/// Which tools an agent sees and how often it may call them.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    /// Globs of visible tool names (empty: all).
    tools: Vec<globset::GlobMatcher>,
    /// Globs of visible servers (empty: all).
    servers: Vec<globset::GlobMatcher>,
    /// Rate limits: tool glob, most calls, window.
    rates: Vec<(globset::GlobMatcher, String, u32, Duration)>,
}

/// A policy: ordered rules, a default, and per-agent capabilities. Cheap to share (`Arc`);
/// rate-limit counters live inside.
pub struct Policy {
    default: Action,
    rules: Vec<Rule>,
    agents: BTreeMap<String, Capabilities>,
    calls: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("default", &self.default)
            .field("rules", &self.rules.len())
            .field("agents", &self.agents.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A policy file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct PolicyError {
    /// The line (from 1), when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Policy {
    /// A policy that allows everything.
    pub fn allow_all() -> Self {
        Self::new(Action::Allow, Vec::new(), BTreeMap::new())
    }

    fn new(default: Action, rules: Vec<Rule>, agents: BTreeMap<String, Capabilities>) -> Self {
        Self {
            default,
            rules,
            agents,
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// Reads a policy in TOML.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        file::from_toml(text)
    }

    /// Reads a policy in YAML.
    pub fn from_yaml(text: &str) -> Result<Self, PolicyError> {
        file::from_yaml(text)
    }

    /// Reads a policy file: YAML when its name ends in `.yaml` or `.yml`, else TOML.
    pub fn load(path: &std::path::Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            line: None,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml {
            Self::from_yaml(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    /// The action for calls no rule matches.
    pub fn default_action(&self) -> Action {
        self.default
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Names of the agents with capabilities.
    pub fn agents(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    /// What in the policy can never apply to these tools (each a name and the server it
    /// comes from): a rule, an agent's visible-tool glob or a rate limit whose tool glob
    /// matches none of them, a rule whose server glob matches none of their servers. Each
    /// is a sentence naming the rule or agent, for a warning at load: a misspelt tool
    /// name would otherwise be accepted silently and never match.
    pub fn unmatched(&self, tools: &[(&str, Option<&str>)]) -> Vec<String> {
        let any_tool = |g: &globset::GlobMatcher| tools.iter().any(|(t, _)| g.is_match(t));
        let any_server =
            |g: &globset::GlobMatcher| tools.iter().any(|(_, s)| s.is_some_and(|s| g.is_match(s)));
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = rule
                .line
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default();
            if let Some(g) = &rule.tool
                && !any_tool(g)
            {
                out.push(format!(
                    "{}{at}: tool = \"{}\" matches none of the tools on offer",
                    rule.label(i),
                    g.glob()
                ));
            }
            if let Some(g) = &rule.server
                && !any_server(g)
            {
                out.push(format!(
                    "{}{at}: server = \"{}\" matches none of the servers on offer",
                    rule.label(i),
                    g.glob()
                ));
            }
        }
        for (agent, caps) in &self.agents {
            for g in caps.tools.iter().chain(caps.rates.iter().map(|r| &r.0)) {
                if !any_tool(g) {
                    out.push(format!(
                        "agent `{agent}`: \"{}\" matches none of the tools on offer",
                        g.glob()
                    ));
                }
            }
        }
        out
    }

    /// Whether `agent` may see tool `tool` (of `server`) at all. An agent the policy does
    /// not name sees everything.
    pub fn visible(&self, agent: Option<&str>, server: Option<&str>, tool: &str) -> bool {
        let Some(caps) = agent.and_then(|a| self.agents.get(a)) else {
            return true;
        };
        let tool_ok = caps.tools.is_empty() || caps.tools.iter().any(|g| g.is_match(tool));
        let server_ok = match server {
            None => true,
            Some(s) => caps.servers.is_empty() || caps.servers.iter().any(|g| g.is_match(s)),
        };
        tool_ok && server_ok
    }

    /// Decides on a call of `tool` (from `server`, by `agent`) with `args`: the first
    /// matching rule, else the default; an invisible tool or an exceeded rate is denied, and
    /// so is a call the first rule it may match cannot be decided for ([`Truth::Undecidable`]).
    /// Counts the call against its rate limit when it is not denied.
    pub fn decide(
        &self,
        agent: Option<&str>,
        server: Option<&str>,
        tool: &str,
        args: &Value,
    ) -> Verdict {
        if !self.visible(agent, server, tool) {
            return Verdict {
                action: Action::Deny,
                rule: Some(format!("capabilities of {}", agent.unwrap_or_default())),
                reason: Some(format!("`{tool}` is not available to this agent")),
                rewritten: None,
            };
        }
        let mut verdict = Verdict {
            action: self.default,
            rule: None,
            reason: match self.default {
                Action::Deny => Some(format!("the policy does not allow `{tool}`")),
                Action::Ask => Some(format!("`{tool}` needs a human's approval")),
                _ => None,
            },
            rewritten: None,
        };
        for (i, rule) in self.rules.iter().enumerate() {
            match rule.matches(server, tool, args) {
                Truth::Holds => {
                    verdict = rule.verdict(i, tool, args);
                    break;
                }
                Truth::Fails => {}
                // Refusing is the safe answer whatever the rule would do: an allow rule
                // cannot be proved to apply, a deny rule cannot be proved not to.
                Truth::Undecidable(why) => {
                    let label = rule.label(i);
                    verdict = Verdict {
                        action: Action::Deny,
                        reason: Some(format!("{why} ({label})")),
                        rule: Some(label),
                        rewritten: None,
                    };
                    break;
                }
            }
        }
        if verdict.action != Action::Deny
            && let Some(reason) = self.over_rate(agent, tool)
        {
            return Verdict {
                action: Action::Deny,
                rule: Some(format!("rate limit of {}", agent.unwrap_or_default())),
                reason: Some(reason),
                rewritten: None,
            };
        }
        verdict
    }

    /// Counts a call; the reason when it exceeds a rate limit.
    fn over_rate(&self, agent: Option<&str>, tool: &str) -> Option<String> {
        let agent = agent?;
        let caps = self.agents.get(agent)?;
        let (_, spec, most, window) = caps.rates.iter().find(|(g, ..)| g.is_match(tool))?;
        let now = Instant::now();
        let mut calls = self.calls.lock().ok()?;
        let seen = calls
            .entry((agent.to_owned(), tool.to_owned()))
            .or_default();
        while seen
            .front()
            .is_some_and(|t| now.duration_since(*t) >= *window)
        {
            seen.pop_front();
        }
        if seen.len() >= *most as usize {
            return Some(format!(
                "the rate limit for `{tool}` ({spec}) is reached; wait before calling it again"
            ));
        }
        seen.push_back(now);
        None
    }
}

#[cfg(test)]
mod tests;
