//! One episode: an agent, through the ordinary agentry engine (validation, one call per
//! turn, the domain's tools, traces), talks with a simulated user until the user stops, a
//! terminal tool is called, or the step limit passes; then the reward.
//!
//! The reward (DESIGN.md §4): 1 when the final database equals the one obtained by replaying
//! the task's ground truth on a fresh database, and every required output appears in some
//! message the agent sent the user (case-insensitive, commas removed from the agent's text);
//! 0 otherwise, and 0 when the episode did not end (step limit, failure).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use agentry_core::{Message, RunStatus, ToolCall};
use agentry_exec::{
    Budget, Engine, EngineConfig, Interlocutor, Mode, Observer, Reply, ReplyError, new_run_id,
};
use agentry_llm::{
    ChatRequest, Completion, FinishReason, LlmError, Model, ModelCall, ModelEvent, ModelStream,
    Timing, Usage, complete,
};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{DomainData, Task, replay_task};

/// The greeting the simulated user answers first (τ-bench's fixed text).
pub const GREETING: &str = "Hi! How can I help you today?";

/// The text with which the simulated user ends the conversation.
pub const STOP: &str = "###STOP###";

/// τ-bench's user-simulator system prompt (strategy `llm`) for `instruction`.
pub fn user_prompt(instruction: &str) -> String {
    let instruction = if instruction.is_empty() {
        String::new()
    } else {
        format!("\n\nInstruction: {instruction}\n")
    };
    format!(
        "You are a user interacting with an agent.{instruction}
Rules:
- Just generate one line at a time to simulate the user's message.
- Do not give away all the instruction at once. Only provide the information that is necessary for the current step.
- Do not hallucinate information that is not provided in the instruction. For example, if the agent asks for the order id but it is not mentioned in the instruction, do not make up an order id, just say you do not remember or have it.
- If the instruction goal is satisified, generate '###STOP###' as a standalone message without anything else to end the conversation.
- Do not repeat the exact instruction in the conversation. Instead, use your own words to convey the same information.
- Try to make the conversation as natural as possible, and stick to the personalities in the instruction."
    )
}

/// Who plays the user.
#[derive(Clone)]
pub enum UserModel {
    /// An LLM prompted with the task's instruction, sampling at this temperature.
    Llm(Arc<dyn Model>, f32),
    /// Says these lines in order, then [`STOP`] (tests, and runs that need no real user).
    Scripted(Vec<String>),
}

impl std::fmt::Debug for UserModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl UserModel {
    /// Its name in reports.
    pub fn name(&self) -> String {
        match self {
            Self::Llm(m, _) => m.name(),
            Self::Scripted(_) => "scripted".into(),
        }
    }
}

/// One episode's simulated user; it keeps every message the agent sent it.
struct SimUser {
    model: UserModel,
    history: Mutex<Vec<Message>>,
    said: Mutex<usize>,
    heard: Mutex<Vec<String>>,
    usage: Mutex<Usage>,
}

impl SimUser {
    fn new(model: UserModel, instruction: &str) -> Self {
        Self {
            model,
            history: Mutex::new(vec![
                Message::system(user_prompt(instruction)),
                Message::user(GREETING),
            ]),
            said: Mutex::new(0),
            heard: Mutex::new(Vec::new()),
            usage: Mutex::new(Usage::default()),
        }
    }

    /// The user's next line, from the script or the model.
    async fn next_line(&self) -> Result<String, String> {
        match &self.model {
            UserModel::Scripted(lines) => {
                let mut said = self.said.lock().map_err(|e| e.to_string())?;
                let line = lines.get(*said).cloned().unwrap_or_else(|| STOP.to_owned());
                *said += 1;
                Ok(line)
            }
            UserModel::Llm(model, temperature) => {
                let messages = self.history.lock().map_err(|e| e.to_string())?.clone();
                let mut request = ChatRequest::new(messages);
                request.temperature = Some(*temperature);
                let response = complete(model.as_ref(), request)
                    .await
                    .map_err(|e| format!("the user model failed: {e}"))?;
                if let Ok(mut u) = self.usage.lock() {
                    u.prompt_tokens += response.completion.usage.prompt_tokens;
                    u.completion_tokens += response.completion.usage.completion_tokens;
                }
                let line = response.text.trim().to_owned();
                if let Ok(mut h) = self.history.lock() {
                    h.push(Message::assistant(line.clone()));
                }
                Ok(line)
            }
        }
    }
}

impl Interlocutor for SimUser {
    fn reply<'a>(&'a self, message: &'a str) -> BoxFuture<'a, Result<Reply, ReplyError>> {
        Box::pin(async move {
            if let Ok(mut heard) = self.heard.lock() {
                heard.push(message.to_owned());
            }
            if let Ok(mut h) = self.history.lock() {
                h.push(Message::user(message));
            }
            let line = self.next_line().await?;
            Ok(if line.contains(STOP) {
                Reply::End(line)
            } else {
                Reply::Say(line)
            })
        })
    }
}

/// The agent under test.
#[derive(Clone)]
pub enum Agent {
    /// A model backend, driven by the engine.
    Model(Arc<dyn Model>),
    /// Does nothing: hands the customer to a human at once. Shows the benchmark's floor.
    Noop,
    /// Calls the task's ground-truth actions one per turn, then says its outputs. Shows the
    /// ceiling and checks the harness end to end.
    Oracle,
}

impl Agent {
    /// Its name in reports.
    pub fn name(&self) -> String {
        match self {
            Self::Model(m) => m.name(),
            Self::Noop => "noop".into(),
            Self::Oracle => "oracle".into(),
        }
    }
}

/// How episodes run.
#[derive(Debug, Clone)]
pub struct EpisodeConfig {
    /// Agent steps (model requests) before the episode is cut off with reward 0.
    pub max_steps: u32,
    /// Wall time of one episode.
    pub wall: Duration,
    /// Deadline of each tool call.
    pub call_timeout: Duration,
    /// A policy every call of the agent passes (its denials go back to the agent).
    pub policy: Option<Arc<agentry_policy::Policy>>,
}

impl Default for EpisodeConfig {
    fn default() -> Self {
        Self {
            max_steps: 30,
            wall: Duration::from_secs(1800),
            call_timeout: Duration::from_secs(30),
            policy: None,
        }
    }
}

/// What one episode came to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeResult {
    /// The task's id.
    pub task_index: usize,
    /// Which trial (from 0).
    pub trial: usize,
    /// 1.0 or 0.0.
    pub reward: f64,
    /// How the episode ended: `user_stop`, `terminal_tool`, `max_steps`, `failed`,
    /// `cancelled`.
    pub ended: String,
    /// Why, in words, when it did not end normally.
    pub reason: Option<String>,
    /// Whether the final database matched the ground truth's.
    pub db_match: bool,
    /// Each required output and whether the agent said it.
    pub outputs: Vec<(String, bool)>,
    /// Canonical hash of the episode's changes to the database (equal changes, equal hash).
    pub db_hash: String,
    /// The run's id in the trace store.
    pub run_id: String,
    /// Tool calls made.
    pub calls: u64,
    /// Agent tokens.
    pub agent_usage: Usage,
    /// User-simulator tokens.
    pub user_usage: Usage,
    /// Wall time.
    pub wall_ms: u64,
}

/// Runs task `index` once, trial `trial`, reporting every step to `observer`.
#[allow(clippy::too_many_arguments)] // one argument per independent choice of the run
pub async fn run_episode(
    data: &DomainData,
    index: usize,
    trial: usize,
    agent: &Agent,
    user: &UserModel,
    cfg: &EpisodeConfig,
    observer: &dyn Observer,
    cancel: CancellationToken,
) -> EpisodeResult {
    let started = Instant::now();
    let task = &data.tasks[index];
    let env = data.env();
    let run_id = new_run_id();
    let mut result = EpisodeResult {
        task_index: index,
        trial,
        reward: 0.0,
        ended: "failed".into(),
        reason: None,
        db_match: false,
        outputs: task.outputs.iter().map(|o| (o.clone(), false)).collect(),
        db_hash: String::new(),
        run_id: run_id.clone(),
        calls: 0,
        agent_usage: Usage::default(),
        user_usage: Usage::default(),
        wall_ms: 0,
    };
    let finish = |mut r: EpisodeResult| {
        r.db_hash = env.db().changes_hash();
        r.wall_ms = started.elapsed().as_millis() as u64;
        r
    };
    let tools = match env.toolset(&data.tools) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            result.reason = Some(e.to_string());
            return finish(result);
        }
    };
    let terminal: Vec<String> = data
        .domain
        .terminal_tools()
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let model: Arc<dyn Model> = match agent {
        Agent::Model(m) => Arc::clone(m),
        Agent::Noop => Arc::new(Scripted::noop(terminal.first().cloned())),
        Agent::Oracle => Arc::new(Scripted::oracle(task, &terminal)),
    };
    let engine = Engine::new(
        model,
        tools,
        EngineConfig {
            mode: Mode::Sequential,
            system_prompt: Some(data.wiki.clone()),
            calls_per_turn: Some(1),
            stop_tools: terminal,
            call_timeout: cfg.call_timeout,
            policy: cfg.policy.clone(),
            retries: 0,
            budget: Budget {
                wall: Some(cfg.wall),
                tokens: None,
                tool_calls: None,
                turns: cfg.max_steps,
                replans: 0,
                // τ-bench's own loop has no repeat limit: only its step limit ends an episode.
                repeats: None,
                ..Budget::default()
            },
            ..EngineConfig::default()
        },
    );
    let sim = SimUser::new(user.clone(), &task.instruction);
    let opening = match sim.next_line().await {
        Ok(line) => line,
        Err(e) => {
            result.reason = Some(e);
            return finish(result);
        }
    };
    let outcome = engine
        .converse(&opening, &sim, observer, cancel, run_id)
        .await;
    result.calls = outcome.calls;
    result.agent_usage = outcome.usage;
    result.user_usage = sim.usage.lock().map(|u| *u).unwrap_or_default();
    let (ended, done) = match outcome.status {
        RunStatus::Answered => ("user_stop", true),
        RunStatus::Stopped => ("terminal_tool", true),
        RunStatus::BudgetExhausted => ("max_steps", false),
        RunStatus::Cancelled => ("cancelled", false),
        RunStatus::Failed => ("failed", false),
        RunStatus::LoopDetected => ("loop_detected", false),
        RunStatus::Interrupted => ("interrupted", false),
    };
    result.ended = ended.into();
    if !done {
        result.reason = outcome.reason;
        return finish(result);
    }
    let heard = sim.heard.lock().map(|h| h.clone()).unwrap_or_default();
    let (reward, db_match, outputs) = reward(data, index, task, &env.db(), &heard);
    result.reward = reward;
    result.db_match = db_match;
    result.outputs = outputs;
    finish(result)
}

/// The reward of a finished episode: database against the replayed ground truth, and the
/// required outputs against what the agent told the user.
pub fn reward(
    data: &DomainData,
    index: usize,
    task: &Task,
    db: &super::Db,
    said: &[String],
) -> (f64, bool, Vec<(String, bool)>) {
    let (_, gold) = replay_task(data, index, task);
    let db_match = db.same_state(&gold);
    let said: Vec<String> = said
        .iter()
        .map(|s| s.to_lowercase().replace(',', ""))
        .collect();
    let outputs: Vec<(String, bool)> = task
        .outputs
        .iter()
        .map(|o| {
            let want = o.to_lowercase();
            (o.clone(), said.iter().any(|s| s.contains(&want)))
        })
        .collect();
    let ok = db_match && outputs.iter().all(|(_, found)| *found);
    (if ok { 1.0 } else { 0.0 }, db_match, outputs)
}

/// A built-in agent that follows a fixed list of moves, one per turn.
struct Scripted {
    name: &'static str,
    moves: Vec<Move>,
}

enum Move {
    Call(String, serde_json::Value),
    Say(String),
}

impl Scripted {
    fn noop(handoff: Option<String>) -> Self {
        let moves = match handoff {
            Some(tool) => vec![Move::Call(
                tool,
                json!({"summary": "The agent does nothing; handing the customer to a human."}),
            )],
            None => Vec::new(),
        };
        Self {
            name: "noop",
            moves,
        }
    }

    fn oracle(task: &Task, terminal: &[String]) -> Self {
        let mut moves: Vec<Move> = task
            .actions
            .iter()
            .filter(|a| !terminal.contains(&a.name))
            .map(|a| Move::Call(a.name.clone(), serde_json::Value::Object(a.kwargs.clone())))
            .collect();
        let said = if task.outputs.is_empty() {
            "Done.".to_owned()
        } else {
            format!("Done. {}", task.outputs.join("; "))
        };
        moves.push(Move::Say(said));
        Self {
            name: "oracle",
            moves,
        }
    }
}

impl Model for Scripted {
    fn name(&self) -> String {
        self.name.into()
    }

    fn stream(&self, request: ChatRequest) -> ModelStream {
        // Each assistant message so far is one move made.
        let made = request
            .messages
            .iter()
            .filter(|m| matches!(m, Message::Assistant { .. }))
            .count();
        let mut events = Vec::new();
        let finish = match self.moves.get(made) {
            Some(Move::Call(name, args)) => {
                let call = ToolCall::new(format!("call_{made}"), name.clone(), args.clone());
                events.push(Ok(ModelEvent::Call(ModelCall {
                    call,
                    repairs: Vec::new(),
                })));
                FinishReason::ToolCalls
            }
            Some(Move::Say(text)) => {
                events.push(Ok(ModelEvent::Text(text.clone())));
                FinishReason::Stop
            }
            None => {
                events.push(Ok(ModelEvent::Text(
                    "Is there anything else I can help you with?".into(),
                )));
                FinishReason::Stop
            }
        };
        events.push(Ok::<_, LlmError>(ModelEvent::Done(Completion {
            finish_reason: finish,
            usage: Usage::default(),
            timing: Timing::default(),
        })));
        Box::pin(futures::stream::iter(events))
    }
}

/// What to run: which tasks, how many trials, how many episodes at once.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Task ids (positions in the split).
    pub tasks: Vec<usize>,
    /// Trials per task.
    pub trials: usize,
    /// Episodes running at once.
    pub concurrency: usize,
}

/// Runs every task of `plan` `plan.trials` times (trial by trial, as the reference does),
/// `plan.concurrency` episodes at once; `on_done` sees each result as it comes.
#[allow(clippy::too_many_arguments)] // one argument per independent choice of the run
pub async fn run_episodes(
    data: &DomainData,
    plan: &Plan,
    agent: &Agent,
    user: &UserModel,
    cfg: &EpisodeConfig,
    observer: &dyn Observer,
    cancel: &CancellationToken,
    on_done: &(dyn Fn(&EpisodeResult) + Sync),
) -> Vec<EpisodeResult> {
    use futures::StreamExt;
    let jobs = (0..plan.trials).flat_map(|trial| plan.tasks.iter().map(move |&i| (i, trial)));
    futures::stream::iter(jobs)
        .map(|(index, trial)| async move {
            let r = run_episode(
                data,
                index,
                trial,
                agent,
                user,
                cfg,
                observer,
                cancel.child_token(),
            )
            .await;
            on_done(&r);
            r
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await
}
