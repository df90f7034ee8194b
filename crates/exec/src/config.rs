//! How a run is driven and bounded: [`EngineConfig`], [`Mode`], [`Budget`].

use std::{collections::HashMap, str::FromStr, sync::Arc, time::Duration};

use agentry_policy::{Approver, Policy};

/// How the engine drives the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// ReAct / OpenAI style: a turn's calls run (concurrently), results go back, repeat.
    Sequential,
    /// LLMCompiler style: a streamed plan's tasks run as soon as their inputs exist; a join
    /// answers or replans.
    Compiled,
}

impl Mode {
    /// `sequential` or `compiled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Compiled => "compiled",
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sequential" => Ok(Self::Sequential),
            "compiled" => Ok(Self::Compiled),
            other => Err(format!(
                "unknown mode `{other}`; expected sequential or compiled"
            )),
        }
    }
}

/// Limits that end a run cleanly with what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Wall time of the whole run.
    pub wall: Option<Duration>,
    /// Prompt plus completion tokens over all model requests.
    pub tokens: Option<u64>,
    /// Tool calls started.
    pub tool_calls: Option<u64>,
    /// Model turns (sequential) or plan-and-join rounds (compiled).
    pub turns: u32,
    /// Replans after the first plan (compiled).
    pub replans: u32,
    /// Most calls run from one model reply (sequential); the model is told of the rest,
    /// which do not run.
    pub turn_calls: usize,
    /// How often a call may be made again with the same arguments in one run before the
    /// run ends as `loop_detected` (sequential; `None`: no limit). Identical calls within
    /// one reply run once and count once.
    pub repeats: Option<u32>,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            wall: Some(Duration::from_secs(300)),
            tokens: None,
            tool_calls: Some(1000),
            turns: 16,
            replans: 2,
            turn_calls: 16,
            repeats: Some(3),
        }
    }
}

/// Settings of an [`crate::Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sequential or compiled.
    pub mode: Mode,
    /// Most tool calls running at once within a run.
    pub max_concurrency: usize,
    /// Limits of the run.
    pub budget: Budget,
    /// Deadline of each tool call.
    pub call_timeout: Duration,
    /// Deadlines for particular tools, by name, instead of `call_timeout`.
    pub tool_timeouts: HashMap<String, Duration>,
    /// Retries of an idempotent tool after a retryable error (timeout, unavailable).
    pub retries: u32,
    /// Wait before the first retry; doubles each time.
    pub retry_backoff: Duration,
    /// Largest tool result passed on (its JSON text); a larger one becomes an error.
    pub max_result_bytes: usize,
    /// A system message before the task (sequential mode).
    pub system_prompt: Option<String>,
    /// Most calls kept from one model reply; later ones are dropped unrun (`None`: all).
    /// τ-bench's protocol keeps one.
    pub calls_per_turn: Option<usize>,
    /// Tools whose successful call ends the run (status `stopped`), e.g. a hand-off to a human.
    pub stop_tools: Vec<String>,
    /// The policy every call passes after validation; `None` allows everything.
    pub policy: Option<Arc<Policy>>,
    /// Who approves calls the policy marks `ask`; without one they are denied.
    pub approver: Option<Arc<dyn Approver>>,
    /// The agent's name, for the policy's capabilities (visible tools, rate limits).
    pub agent: Option<String>,
    /// Whether model requests and tool calls carry the W3C `traceparent` of their span
    /// (set when spans are exported); a run started inside a trace always does.
    pub propagate: bool,
    /// Code is the model's only action (CodeAct, sequential mode): it is offered the
    /// `python` tool alone, the other tools being functions in its code, and a reply that
    /// holds a fenced Python block and no call runs that block.
    pub code_actions: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Sequential,
            max_concurrency: 64,
            budget: Budget::default(),
            call_timeout: Duration::from_secs(60),
            tool_timeouts: HashMap::new(),
            retries: 2,
            retry_backoff: Duration::from_millis(100),
            max_result_bytes: 1024 * 1024,
            system_prompt: None,
            calls_per_turn: None,
            stop_tools: Vec::new(),
            policy: None,
            approver: None,
            agent: None,
            propagate: false,
            code_actions: false,
        }
    }
}

impl EngineConfig {
    /// The default settings in `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// Sets the per-call deadline.
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets the deadline of one tool's calls.
    #[must_use]
    pub fn tool_timeout(mut self, tool: impl Into<String>, timeout: Duration) -> Self {
        self.tool_timeouts.insert(tool.into(), timeout);
        self
    }

    /// Sets the budget.
    #[must_use]
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the concurrency limit.
    #[must_use]
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }
}
