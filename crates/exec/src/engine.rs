//! The engine: [`Engine::run`] in sequential or compiled mode.
//!
//! Each run is one future. Tool calls run as futures inside it (a `FuturesUnordered` polled
//! together with the model stream), not as spawned tasks: that keeps the engine's own cost
//! per call to microseconds, lets a call start the moment the stream yields it, and means
//! dropping the run drops (cancels) everything it started.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use agentry_core::{
    ErrorKind, Message, ModelPurpose, RunSpans, RunStatus, ToolCall, ToolError, ToolResult,
    TraceKind, TraceParent,
};
use agentry_llm::{ChatRequest, Completion, Model, ModelEvent, ReplyShape, Usage};
use agentry_parse::plan::{PlanEvent, PlanParser, PlanTask, refs_in};
use agentry_tools::{Calls, MergeError, NestedCall, PythonTool, ToolSet, Toolbox, code_block};
use futures::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{
    EngineConfig, Mode, Observer,
    call::{invoke, micros},
    dispatch::{Ready, Round},
    prompts,
    record::Recorder,
};

/// How a run ended, with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The run's id (its key in the trace store).
    pub run_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// The answer, when the model gave one.
    pub answer: Option<String>,
    /// Why it stopped without an answer.
    pub reason: Option<String>,
    /// Tool calls started.
    pub calls: u64,
    /// Tokens over all model requests.
    pub usage: Usage,
    /// Wall time of the run.
    pub wall: Duration,
    /// Each call that ran, with its result, in the order they finished.
    pub results: Vec<(ToolCall, ToolResult)>,
    /// The conversation after the run, to continue it: the history it was given, the task
    /// as a user message, then the model's turns (sequential mode: its calls and their
    /// results too; compiled mode: its answer). The system prompt is not in it.
    pub messages: Vec<Message>,
}

/// Runs agents: a model, a set of tools, and how to drive them.
pub struct Engine {
    model: Arc<dyn Model>,
    /// The tools on offer (those the agent may see).
    tools: std::sync::RwLock<Arc<ToolSet>>,
    /// Where newer tool sets come from, when the tools can change during a run.
    toolbox: Option<Toolbox>,
    cfg: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.model.name())
            .field("tools", &self.tools())
            .field("cfg", &self.cfg)
            .finish()
    }
}

static RUN_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new run id: time-ordered and unique within and across processes.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seq = RUN_SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "r{:011x}{:04x}{:04x}",
        now.as_millis(),
        std::process::id() & 0xffff,
        seq & 0xffff
    )
}

/// Which run to start: its id, and the trace it belongs to when it is started on behalf of
/// work elsewhere (a parent agent's call, a request that carried a W3C `traceparent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    /// The run's id ([`new_run_id`]).
    pub id: String,
    /// The span it was started from, if any: the run's spans join that trace.
    pub parent: Option<TraceParent>,
}

impl RunStart {
    /// A run with a fresh id ([`new_run_id`]), started from `parent` if given.
    pub fn new(parent: Option<TraceParent>) -> Self {
        Self {
            id: new_run_id(),
            parent,
        }
    }
}

impl From<String> for RunStart {
    fn from(id: String) -> Self {
        Self { id, parent: None }
    }
}

impl From<&str> for RunStart {
    fn from(id: &str) -> Self {
        id.to_owned().into()
    }
}

/// The other side of a conversation: reads each of the model's messages and answers it, or
/// ends the conversation (a person at a terminal, a simulated user in an evaluation).
pub trait Interlocutor: Send + Sync {
    /// Answers the model's `message`; `Err` ends the run as failed.
    fn reply<'a>(&'a self, message: &'a str) -> BoxFuture<'a, Result<Reply, ReplyError>>;
}

/// Why an [`Interlocutor`] could not reply; the run ends as failed, saying this.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReplyError(Box<dyn std::error::Error + Send + Sync>);

impl ReplyError {
    /// The reply failed because of `error`.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl From<String> for ReplyError {
    fn from(why: String) -> Self {
        Self(why.into())
    }
}

impl From<&str> for ReplyError {
    fn from(why: &str) -> Self {
        Self(why.into())
    }
}

/// What an [`Interlocutor`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// This goes back to the model as a user message, and the run goes on.
    Say(String),
    /// The conversation is over; the text is kept in the trace.
    End(String),
}

pub(crate) enum Ended {
    Answer(String),
    Stopped(String),
    Loop(String),
    Budget(String),
    Failed(String),
    Cancelled,
}

/// A call that started: the call, its plan task, when.
type InFlight = (ToolCall, Option<u32>, Instant);

/// Counters shared by the parts of one run.
#[derive(Default)]
pub(crate) struct RunState {
    calls: AtomicU64,
    prompt: AtomicU64,
    completion: AtomicU64,
    steps: AtomicU32,
    inflight: Mutex<HashMap<String, InFlight>>,
    finished: Mutex<Vec<(ToolCall, ToolResult)>>,
}

impl RunState {
    fn next_step(&self) -> String {
        format!("m{}", self.steps.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt.load(Ordering::Relaxed),
            completion_tokens: self.completion.load(Ordering::Relaxed),
        }
    }
}

impl Engine {
    /// An engine driving `model` with `tools`.
    /// With a policy that names the agent, the tools it may not see are not offered.
    pub fn new(model: Arc<dyn Model>, tools: Arc<ToolSet>, cfg: EngineConfig) -> Self {
        let mut engine = Self {
            model,
            tools: std::sync::RwLock::default(),
            toolbox: None,
            cfg,
        };
        engine.tools = std::sync::RwLock::new(engine.visible(tools));
        engine
    }

    /// Takes its tools from `toolbox` (a base set and MCP servers, say): listed when a run
    /// starts, and again before a model turn when a source's tools changed.
    #[must_use]
    pub fn with_toolbox(mut self, toolbox: Toolbox) -> Self {
        self.toolbox = Some(toolbox);
        self
    }

    /// The tools the agent may see: with a policy that names the agent, not those its
    /// capabilities hide.
    fn visible(&self, tools: Arc<ToolSet>) -> Arc<ToolSet> {
        let (Some(policy), Some(agent)) = (&self.cfg.policy, self.cfg.agent.as_deref()) else {
            return tools;
        };
        let visible = |s: &agentry_core::ToolSpec| {
            let server = tools.get(&s.name).and_then(|t| t.server());
            policy.visible(Some(agent), server, &s.name)
        };
        if tools.specs().iter().all(visible) {
            tools
        } else {
            Arc::new(tools.filtered(visible))
        }
    }

    /// The tools on offer now.
    fn tools(&self) -> Arc<ToolSet> {
        self.tools
            .read()
            .map_or_else(|p| Arc::clone(&p.into_inner()), |t| Arc::clone(&t))
    }

    /// Takes a newer tool set, if the tools changed; records the change (`rec`, when the
    /// run has started). A set that cannot be merged is not taken: the tools stay as they
    /// were, and the reason goes to the log (`tracing`, at warn).
    async fn refresh_tools(&self, rec: Option<&Recorder<'_>>) {
        match self.take_changes().await {
            Ok(Some(names)) => {
                if let Some(rec) = rec {
                    rec.emit(TraceKind::ToolsChanged { tools: names });
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("the tools changed but cannot be offered: {e}"),
        }
    }

    /// Takes the toolbox's changes, if any: the new tools' names.
    async fn take_changes(&self) -> Result<Option<Vec<String>>, MergeError> {
        let Some(toolbox) = &self.toolbox else {
            return Ok(None);
        };
        let Some(fresh) = toolbox.changes().await else {
            return Ok(None);
        };
        let fresh = self.visible(Arc::new(fresh?));
        let names = fresh.names();
        if let Ok(mut tools) = self.tools.write() {
            *tools = fresh;
        }
        Ok(Some(names))
    }

    /// The tools on offer now (those of MCP servers listed, or listed again if they
    /// changed); `Err` when a server's tool cannot join them.
    pub async fn current_tools(&self) -> Result<Arc<ToolSet>, MergeError> {
        self.take_changes().await?;
        Ok(self.tools())
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The model.
    pub fn model(&self) -> &Arc<dyn Model> {
        &self.model
    }

    /// Runs `task` to an answer or a budget; every step goes to `observer`.
    pub async fn run(&self, task: &str, observer: &dyn Observer) -> RunOutcome {
        self.run_with(task, observer, CancellationToken::new(), new_run_id())
            .await
    }

    /// [`Engine::run`] with a cancellation token and a chosen run id.
    pub async fn run_with(
        &self,
        task: &str,
        observer: &dyn Observer,
        cancel: CancellationToken,
        run: impl Into<RunStart>,
    ) -> RunOutcome {
        self.drive(&[], task, None, observer, cancel, run.into())
            .await
    }

    /// Runs `task` as the next message of a conversation whose earlier messages are
    /// `history` (a [`RunOutcome::messages`] of an earlier run, say); the outcome's
    /// `messages` continue it.
    pub async fn run_after(
        &self,
        history: &[Message],
        task: &str,
        observer: &dyn Observer,
        cancel: CancellationToken,
        run: impl Into<RunStart>,
    ) -> RunOutcome {
        self.drive(history, task, None, observer, cancel, run.into())
            .await
    }

    /// Runs a conversation: `opening` is the user's first message; each time the model
    /// answers without a call, `user` replies and the run goes on, until the user ends it, a
    /// stop tool is called, or a budget runs out. Always turn by turn (sequential), whatever
    /// the configured mode: a plan cannot span a person's replies.
    pub async fn converse(
        &self,
        opening: &str,
        user: &dyn Interlocutor,
        observer: &dyn Observer,
        cancel: CancellationToken,
        run: impl Into<RunStart>,
    ) -> RunOutcome {
        self.drive(&[], opening, Some(user), observer, cancel, run.into())
            .await
    }

    pub(crate) async fn drive(
        &self,
        history: &[Message],
        task: &str,
        user: Option<&dyn Interlocutor>,
        observer: &dyn Observer,
        cancel: CancellationToken,
        run: RunStart,
    ) -> RunOutcome {
        // The run starts with the tools on offer now (an MCP server's, listed).
        self.refresh_tools(None).await;
        let spans = (self.cfg.propagate || run.parent.is_some())
            .then(|| RunSpans::new(&run.id, run.parent.as_ref()));
        let rec = Recorder::new(run.id, observer, spans);
        let st = RunState::default();
        let mode = if user.is_some() {
            Mode::Sequential
        } else {
            self.cfg.mode
        };
        rec.emit(TraceKind::RunStarted {
            task: task.to_owned(),
            model: self.model.name(),
            mode: mode.as_str().to_owned(),
            tools: self.tools().names(),
            stop_tools: self.cfg.stop_tools.clone(),
            system: match mode {
                Mode::Sequential => self.cfg.system_prompt.clone(),
                Mode::Compiled => None,
            },
            parent: run.parent.map(|p| p.header()),
        });
        // A run dropped before it ends (its stream dropped, say) still ends in the trace.
        let mut guard = EndGuard {
            rec: &rec,
            st: &st,
            ended: false,
        };
        let mut messages: Vec<Message> = Vec::with_capacity(history.len() + 2);
        if mode == Mode::Sequential
            && let Some(system) = &self.cfg.system_prompt
        {
            messages.push(Message::system(system.clone()));
        }
        let system_len = messages.len();
        messages.extend(history.iter().cloned());
        messages.push(Message::user(task));
        let inner = async {
            match mode {
                Mode::Sequential => {
                    self.sequential(&mut messages, user, &rec, &st, &cancel)
                        .await
                }
                Mode::Compiled => self.compiled(task, history, &rec, &st, &cancel).await,
            }
        };
        let ended = match self.cfg.budget.wall {
            Some(wall) => match tokio::time::timeout(wall, inner).await {
                Ok(ended) => ended,
                Err(_) => Ended::Budget(format!(
                    "the run's wall-time budget of {:.1} s ran out",
                    wall.as_secs_f64()
                )),
            },
            None => inner.await,
        };
        guard.ended = true;
        let why = if matches!(ended, Ended::Cancelled) {
            "cancelled: the run was cancelled while the call ran"
        } else {
            "the run ended before the call finished"
        };
        cancel.cancel();
        // Calls cut short by the end of the run still get a recorded outcome.
        cut_calls(&rec, &st, why);
        let (status, answer, reason) = match ended {
            Ended::Answer(a) => (RunStatus::Answered, Some(a), None),
            Ended::Stopped(r) => (RunStatus::Stopped, None, Some(r)),
            Ended::Loop(r) => (RunStatus::LoopDetected, None, Some(r)),
            Ended::Budget(r) => (RunStatus::BudgetExhausted, None, Some(r)),
            Ended::Failed(r) => (RunStatus::Failed, None, Some(r)),
            Ended::Cancelled => (
                RunStatus::Cancelled,
                None,
                Some("the run was cancelled".to_owned()),
            ),
        };
        let usage = st.usage();
        let calls = st.calls.load(Ordering::Relaxed);
        rec.emit(TraceKind::RunFinished {
            status,
            answer: answer.clone(),
            reason: reason.clone(),
            calls,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        });
        messages.drain(..system_len);
        if let Some(a) = &answer
            && !matches!(messages.last(), Some(Message::Assistant { tool_calls, .. }) if tool_calls.is_empty())
        {
            messages.push(Message::assistant(a.clone()));
        }
        RunOutcome {
            run_id: rec.run_id.clone(),
            status,
            answer,
            reason,
            calls,
            usage,
            wall: rec.started().elapsed(),
            results: st
                .finished
                .lock()
                .map(|mut f| std::mem::take(&mut *f))
                .unwrap_or_default(),
            messages,
        }
    }

    /// Runs one call with its trace events; `key` travels with the result.
    #[allow(clippy::too_many_arguments)] // the run's context travels as three references
    pub(crate) async fn run_call<K>(
        &self,
        key: K,
        call: ToolCall,
        task: Option<u32>,
        after: Vec<String>,
        rec: &Recorder<'_>,
        st: &RunState,
        cancel: &CancellationToken,
    ) -> (K, ToolResult) {
        let seq = rec.emit(TraceKind::CallStarted {
            call: call.clone(),
            task,
            after,
        });
        let started = Instant::now();
        if let Ok(mut m) = st.inflight.lock() {
            m.insert(call.id.clone(), (call.clone(), task, started));
        }
        let traceparent = rec.traceparent(seq);
        let tools = self.tools();
        let (result, attempts) = if tools.get(&call.name).is_some_and(|t| t.calls_tools()) {
            let (calls, requests) = Calls::channel();
            let invoking = invoke(
                &tools,
                &self.cfg,
                rec,
                &call,
                traceparent,
                Some(calls),
                cancel,
            );
            self.serve_nested(invoking, requests, &call.id, rec, st, cancel)
                .await
        } else {
            invoke(&tools, &self.cfg, rec, &call, traceparent, None, cancel).await
        };
        if let Ok(mut m) = st.inflight.lock() {
            m.remove(&call.id);
        }
        rec.emit(TraceKind::CallFinished {
            result: result.clone(),
            task,
            attempts,
            duration_us: micros(started.elapsed()),
        });
        if let Ok(mut f) = st.finished.lock() {
            f.push((call, result.clone()));
        }
        (key, result)
    }

    /// Runs `invoking` (a call of a tool that calls other tools) while serving the calls it
    /// makes: each is a call of the run like the model's (validated, checked by the policy,
    /// taken from the budget, recorded), started after `parent`, its id `PARENT.N`.
    #[allow(clippy::too_many_arguments)] // the run's context travels as three references
    async fn serve_nested(
        &self,
        invoking: impl Future<Output = (ToolResult, u32)>,
        mut requests: tokio::sync::mpsc::Receiver<NestedCall>,
        parent: &str,
        rec: &Recorder<'_>,
        st: &RunState,
        cancel: &CancellationToken,
    ) -> (ToolResult, u32) {
        let mut invoking = std::pin::pin!(invoking);
        let mut running = FuturesUnordered::new();
        let mut made = 0u32;
        loop {
            tokio::select! {
                out = &mut invoking => return out,
                Some(nested) = requests.recv() => {
                    made += 1;
                    let call = ToolCall::new(format!("{parent}.{made}"), nested.name, nested.arguments);
                    if !self.take_call(st) {
                        let refused = ToolError::denied("the run's tool-call budget is used up");
                        let _ = nested.reply.send(Err(refused));
                        continue;
                    }
                    let after = vec![parent.to_owned()];
                    let reply = nested.reply;
                    running.push(async move {
                        let run = Box::pin(self.run_call((), call, None, after, rec, st, cancel));
                        let ((), result) = run.await;
                        (reply, result.outcome)
                    });
                }
                Some((reply, outcome)) = running.next(), if !running.is_empty() => {
                    let _ = reply.send(outcome);
                }
            }
        }
    }

    /// Takes one tool call from the budget; `false` when it is used up.
    pub(crate) fn take_call(&self, st: &RunState) -> bool {
        let n = st.calls.fetch_add(1, Ordering::Relaxed) + 1;
        match self.cfg.budget.tool_calls {
            Some(limit) if n > limit => {
                st.calls.fetch_sub(1, Ordering::Relaxed);
                false
            }
            _ => true,
        }
    }

    #[allow(clippy::too_many_arguments)] // one argument per recorded field
    pub(crate) fn record_response(
        &self,
        rec: &Recorder<'_>,
        st: &RunState,
        step: &str,
        text: &str,
        calls: &[ToolCall],
        malformed: &[String],
        done: &Completion,
    ) {
        st.prompt
            .fetch_add(done.usage.prompt_tokens, Ordering::Relaxed);
        st.completion
            .fetch_add(done.usage.completion_tokens, Ordering::Relaxed);
        rec.emit(TraceKind::ModelResponse {
            step: step.to_owned(),
            text: text.to_owned(),
            calls: calls.to_vec(),
            malformed: malformed.to_vec(),
            prompt_tokens: done.usage.prompt_tokens,
            completion_tokens: done.usage.completion_tokens,
            ttft_us: done.timing.time_to_first_token.map(micros),
        });
    }

    fn over_tokens(&self, st: &RunState) -> Option<Ended> {
        let limit = self.cfg.budget.tokens?;
        let used = st.usage();
        let total = used.prompt_tokens + used.completion_tokens;
        (total > limit).then(|| {
            Ended::Budget(format!(
                "the token budget of {limit} is used up ({total} tokens)"
            ))
        })
    }

    // ---- sequential ---------------------------------------------------------------

    async fn sequential(
        &self,
        messages: &mut Vec<Message>,
        user: Option<&dyn Interlocutor>,
        rec: &Recorder<'_>,
        st: &RunState,
        cancel: &CancellationToken,
    ) -> Ended {
        let keep = self.cfg.calls_per_turn.unwrap_or(usize::MAX);
        // How often each call (tool and arguments) was made in earlier turns.
        let mut made: HashMap<String, u32> = HashMap::new();
        for _ in 0..self.cfg.budget.turns {
            if let Some(ended) = self.over_tokens(st) {
                return ended;
            }
            self.refresh_tools(Some(rec)).await;
            let mut specs = self.tools().specs().to_vec();
            if self.cfg.code_actions {
                specs.retain(|s| s.name == PythonTool::NAME);
            }
            let step = st.next_step();
            let seq = rec.emit(TraceKind::ModelRequest {
                step: step.clone(),
                purpose: ModelPurpose::Turn,
                messages: messages.len(),
            });
            let mut request = ChatRequest::new(messages.clone())
                .tools(specs)
                .traceparent(rec.traceparent(seq));
            if keep == 1 {
                request.parallel_tool_calls = Some(false);
            }
            let stream = self.model.stream(request);
            let mut turn = Turn::new(step.clone(), &self.cfg, &mut made);
            let out_of_calls = match self
                .dispatch(stream, &mut turn, &step, "model", rec, st, cancel)
                .await
            {
                Ok(dispatched) => dispatched.out_of_calls,
                Err(ended) => return ended,
            };
            let Turn {
                text,
                calls,
                mut results,
                malformed,
                copies,
                over_cap,
                looping,
                cap,
                ..
            } = turn;
            if calls.is_empty() && malformed.is_empty() {
                let answer = text.trim().to_owned();
                let Some(user) = user else {
                    return Ended::Answer(answer);
                };
                let reply = tokio::select! {
                    reply = user.reply(&answer) => reply,
                    () = cancel.cancelled() => return Ended::Cancelled,
                };
                match reply {
                    Ok(Reply::Say(said)) => {
                        rec.emit(TraceKind::UserReply {
                            step,
                            text: said.clone(),
                            ends: false,
                        });
                        messages.push(Message::assistant(text));
                        messages.push(Message::user(said));
                        continue;
                    }
                    Ok(Reply::End(said)) => {
                        rec.emit(TraceKind::UserReply {
                            step,
                            text: said,
                            ends: true,
                        });
                        return Ended::Answer(answer);
                    }
                    Err(e) => return Ended::Failed(format!("the user could not reply: {e}")),
                }
            }
            for (copy, first) in copies {
                let shared = results[first].clone().map(|r| ToolResult {
                    tool_call_id: calls[copy].id.clone(),
                    ..r
                });
                results[copy] = shared;
            }
            let content = (!text.trim().is_empty()).then(|| text.clone());
            messages.push(Message::Assistant {
                content,
                tool_calls: calls.clone(),
            });
            let mut stopped = None;
            for (call, result) in calls.iter().zip(results) {
                let result = result.unwrap_or_else(|| {
                    ToolResult::err(call, ToolError::unavailable("the call did not run"))
                });
                if result.outcome.is_ok() && self.cfg.stop_tools.contains(&call.name) {
                    stopped.get_or_insert_with(|| call.name.clone());
                }
                messages.push(result.to_message());
            }
            if let Some(tool) = stopped {
                return Ended::Stopped(format!("`{tool}` ended the run"));
            }
            if let Some(why) = looping {
                return Ended::Loop(why);
            }
            if over_cap > 0 {
                messages.push(Message::user(format!(
                    "You made {} calls in one reply; only the first {cap} ran and the other {over_cap} did not. Make at most {cap} calls per reply, and do not repeat a call whose result you already have.",
                    cap + over_cap
                )));
            }
            if !malformed.is_empty() {
                messages.push(Message::user(format!(
                    "Some of your tool calls could not be read:\n- {}\nWrite those calls again, correctly.",
                    malformed.join("\n- ")
                )));
            }
            if out_of_calls {
                return Ended::Budget(format!(
                    "the tool-call budget of {} is used up",
                    self.cfg.budget.tool_calls.unwrap_or_default()
                ));
            }
        }
        let what = if user.is_some() {
            "the conversation did not end"
        } else {
            "the model did not answer"
        };
        Ended::Budget(format!("{what} within {} turns", self.cfg.budget.turns))
    }

    // ---- compiled -----------------------------------------------------------------

    async fn compiled(
        &self,
        task: &str,
        history: &[Message],
        rec: &Recorder<'_>,
        st: &RunState,
        cancel: &CancellationToken,
    ) -> Ended {
        let task = &prompts::with_history(task, history);
        self.refresh_tools(Some(rec)).await;
        let tools = self.tools();
        let planner = prompts::planner(tools.specs());
        let mut context: Vec<Message> = Vec::new();
        let mut replans_left = self.cfg.budget.replans;
        // Calls that failed in an earlier plan for a reason that would not change on a
        // second try: a later plan repeating one gets that failure back without running it.
        let mut failed_before: HashMap<String, ToolError> = HashMap::new();
        for _ in 0..self.cfg.budget.turns.max(1) {
            if let Some(ended) = self.over_tokens(st) {
                return ended;
            }
            let mut messages = vec![Message::system(planner.clone()), Message::user(task)];
            messages.extend(context.iter().cloned());
            let step = st.next_step();
            let seq = rec.emit(TraceKind::ModelRequest {
                step: step.clone(),
                purpose: ModelPurpose::Plan,
                messages: messages.len(),
            });
            let stream = self.model.stream(
                ChatRequest::new(messages)
                    .shape(ReplyShape::Plan(tools.specs().to_vec()))
                    .traceparent(rec.traceparent(seq)),
            );
            let mut round = PlanRound {
                step: step.clone(),
                plan: PlanRun::default(),
                parser: PlanParser::new(),
                tools: &tools,
                failed_before: &failed_before,
                dispatched: Vec::new(),
            };
            let out_of_calls = match self
                .dispatch(stream, &mut round, &step, "planner", rec, st, cancel)
                .await
            {
                Ok(dispatched) => dispatched.out_of_calls,
                Err(ended) => return ended,
            };
            let PlanRound {
                plan, dispatched, ..
            } = round;
            for (index, key) in dispatched {
                if let Some(Err(error)) = plan.results.get(&index).map(|r| &r.outcome)
                    && fails_again(error.kind())
                {
                    failed_before.entry(key).or_insert_with(|| error.clone());
                }
            }
            if out_of_calls {
                return Ended::Budget(format!(
                    "the tool-call budget of {} is used up",
                    self.cfg.budget.tool_calls.unwrap_or_default()
                ));
            }
            if plan.tasks.is_empty() && plan.problems.is_empty() {
                // No plan at all: the planner answered directly.
                return Ended::Answer(plan.text.trim().to_owned());
            }
            if !plan.problems.is_empty() {
                let reason = plan.problems.join("; ");
                rec.emit(TraceKind::PlanRejected {
                    reason: reason.clone(),
                });
                if replans_left == 0 {
                    return Ended::Failed(format!(
                        "the plan was rejected and no replans are left: {reason}"
                    ));
                }
                replans_left -= 1;
                context.push(Message::assistant(plan.text.clone()));
                context.push(Message::user(format!(
                    "{}\nThat plan cannot run: {reason}. Write a corrected plan; tasks that ran are listed above.",
                    prompts::observations(&plan.results())
                )));
                continue;
            }
            // Join.
            let observations = prompts::observations(&plan.results());
            let messages = vec![
                Message::system(prompts::JOINER),
                Message::user(format!("Task: {task}\n\n{observations}")),
            ];
            let step = st.next_step();
            let seq = rec.emit(TraceKind::ModelRequest {
                step: step.clone(),
                purpose: ModelPurpose::Join,
                messages: messages.len(),
            });
            let mut stream = self.model.stream(
                ChatRequest::new(messages)
                    .shape(ReplyShape::StartsWith(vec![
                        "Answer:".into(),
                        "Replan:".into(),
                    ]))
                    .traceparent(rec.traceparent(seq)),
            );
            let mut response = agentry_llm::Response::default();
            let mut shown = 0;
            let done = loop {
                let event = tokio::select! {
                    event = stream.next() => event,
                    () = cancel.cancelled() => return Ended::Cancelled,
                };
                match event {
                    Some(Ok(ModelEvent::Text(t))) => {
                        response.text.push_str(&t);
                        if let Some(more) = answer_delta(&response.text, &mut shown) {
                            rec.live(|| TraceKind::TextDelta {
                                step: step.clone(),
                                text: more.to_owned(),
                            });
                        }
                    }
                    Some(Ok(ModelEvent::Call(c))) => response.calls.push(c),
                    Some(Ok(ModelEvent::Malformed(m))) => response.malformed.push(m),
                    Some(Ok(ModelEvent::Done(done))) => break done,
                    Some(Err(e)) => {
                        return model_failed(
                            rec,
                            &step,
                            e.to_string(),
                            format!("the joiner failed: {e}"),
                        );
                    }
                    None => {
                        return model_failed(
                            rec,
                            &step,
                            NO_FINAL_EVENT.into(),
                            "the joiner's stream ended without a final event".into(),
                        );
                    }
                }
            };
            response.completion = done;
            let calls: Vec<ToolCall> = response.calls.iter().map(|c| c.call.clone()).collect();
            self.record_response(
                rec,
                st,
                &step,
                &response.text,
                &calls,
                &[],
                &response.completion,
            );
            let text = response.text.trim();
            if let Some(missing) = text.strip_prefix("Replan:") {
                if replans_left == 0 {
                    return Ended::Budget(format!(
                        "the joiner asked for a replan and none are left: {}",
                        missing.trim()
                    ));
                }
                replans_left -= 1;
                rec.emit(TraceKind::Replanning {
                    reason: missing.trim().to_owned(),
                });
                context.push(Message::assistant(plan.text.clone()));
                context.push(Message::user(observations));
                context.push(Message::assistant(text.to_owned()));
                context.push(Message::user(
                    "Write a new plan for what is missing; the results so far are above.",
                ));
                continue;
            }
            let answer = text
                .strip_prefix("Answer:")
                .or_else(|| text.strip_prefix("Final Answer:"))
                .unwrap_or(text);
            return Ended::Answer(answer.trim().to_owned());
        }
        Ended::Budget(format!(
            "no answer within {} plan-and-join rounds",
            self.cfg.budget.turns
        ))
    }
}

/// Ends the run in the trace when its future is dropped before it ended: the calls in
/// flight are recorded as cancelled and the run as `cancelled`.
struct EndGuard<'r, 'o> {
    rec: &'r Recorder<'o>,
    st: &'r RunState,
    ended: bool,
}

impl Drop for EndGuard<'_, '_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        cut_calls(
            self.rec,
            self.st,
            "cancelled: the run was dropped while the call ran",
        );
        let usage = self.st.usage();
        self.rec.emit(TraceKind::RunFinished {
            status: RunStatus::Cancelled,
            answer: None,
            reason: Some("the run was dropped before it ended".to_owned()),
            calls: self.st.calls.load(Ordering::Relaxed),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        });
    }
}

/// Records a result for each call still in flight, saying `why` it has none.
fn cut_calls(rec: &Recorder<'_>, st: &RunState, why: &str) {
    let cut: Vec<_> = st
        .inflight
        .lock()
        .map(|mut m| m.drain().collect())
        .unwrap_or_default();
    for (_, (call, task, started)) in cut {
        rec.emit(TraceKind::CallFinished {
            result: ToolResult::err(&call, ToolError::unavailable(why)),
            task,
            attempts: 1,
            duration_us: micros(started.elapsed()),
        });
    }
}

/// A plan line's task, for live consumers.
fn planned(rec: &Recorder<'_>, step: &str, event: &PlanEvent) {
    if let PlanEvent::Task(t) = event {
        rec.live(|| TraceKind::TaskPlanned {
            step: step.to_owned(),
            task: t.index,
            name: t.name.clone(),
            arguments: t.arguments.clone(),
            deps: t.deps.clone(),
        });
    }
}

/// The part of a joiner's reply `text` (so far) that is answer and not yet shown
/// (`shown` bytes of it were): nothing while it may still become `Replan:`, the text after
/// `Answer:` once it is one, all of it when it follows neither form.
fn answer_delta<'t>(text: &'t str, shown: &mut usize) -> Option<&'t str> {
    const FORMS: [&str; 3] = ["Answer:", "Final Answer:", "Replan:"];
    let lead = text.len() - text.trim_start().len();
    let body = &text[lead..];
    if FORMS.iter().any(|f| f.starts_with(body)) {
        return None; // not yet told apart
    }
    if body.starts_with("Replan:") {
        return None;
    }
    let start = FORMS[..2]
        .iter()
        .find(|f| body.starts_with(**f))
        .map_or(lead, |f| {
            let after = lead + f.len();
            after + (text[after..].len() - text[after..].trim_start().len())
        });
    if start >= text.len() {
        return None; // only blank space after the form so far
    }
    let from = start.max(*shown);
    *shown = text.len();
    (from < text.len()).then(|| &text[from..])
}

/// Whether a call that failed this way would fail the same way if made again unchanged.
fn fails_again(kind: ErrorKind) -> bool {
    match kind {
        ErrorKind::InvalidArguments
        | ErrorKind::UnknownTool
        | ErrorKind::ToolFailed
        | ErrorKind::Denied
        | ErrorKind::Malformed => true,
        ErrorKind::Timeout | ErrorKind::Unavailable => false,
    }
}

pub(crate) const NO_FINAL_EVENT: &str = "the stream ended without a final event";

/// Records a failed model request and ends the run with `reason`.
pub(crate) fn model_failed(rec: &Recorder<'_>, step: &str, error: String, reason: String) -> Ended {
    rec.emit(TraceKind::ModelFailed {
        step: step.to_owned(),
        error,
    });
    Ended::Failed(reason)
}

/// A sequential turn: each call runs as the reply yields it; identical calls in one reply
/// run once; a call made too often across turns is refused and ends the run.
struct Turn<'m> {
    step: String,
    /// Calls kept from one reply (`calls_per_turn`); those past `cap` (`turn_calls`) are
    /// counted, not run.
    keep: usize,
    cap: usize,
    repeats: Option<u32>,
    /// How often each call was made in earlier turns.
    made: &'m mut HashMap<String, u32>,
    text: String,
    calls: Vec<ToolCall>,
    results: Vec<Option<ToolResult>>,
    malformed: Vec<String>,
    queued: VecDeque<(usize, ToolCall)>,
    /// Identical calls in one reply run once: the first's index by call, and each copy with
    /// the index whose result it shares.
    first_of: HashMap<String, usize>,
    copies: Vec<(usize, usize)>,
    over_cap: usize,
    looping: Option<String>,
    /// Whether a fenced Python block in a reply without calls is a call of `python`.
    code_actions: bool,
}

impl<'m> Turn<'m> {
    fn new(step: String, cfg: &EngineConfig, made: &'m mut HashMap<String, u32>) -> Self {
        Self {
            step,
            keep: cfg.calls_per_turn.unwrap_or(usize::MAX),
            cap: cfg.budget.turn_calls.max(1),
            repeats: cfg.budget.repeats,
            made,
            text: String::new(),
            calls: Vec::new(),
            results: Vec::new(),
            malformed: Vec::new(),
            queued: VecDeque::new(),
            first_of: HashMap::new(),
            copies: Vec::new(),
            over_cap: 0,
            looping: None,
            code_actions: cfg.code_actions,
        }
    }

    fn call(&mut self, call: ToolCall) {
        if self.calls.len() >= self.keep {
            return; // over calls_per_turn: dropped
        }
        if self.calls.len() >= self.cap {
            self.over_cap += 1;
            return;
        }
        let i = self.calls.len();
        self.results.push(None);
        let key = format!("{} {}", call.name, call.arguments);
        if let Some(&first) = self.first_of.get(&key) {
            self.copies.push((i, first));
        } else {
            self.first_of.insert(key.clone(), i);
            let times = self.made.entry(key).or_insert(0);
            match self.repeats {
                Some(most) if *times > most => {
                    let why = format!(
                        "`{}` was called {} times with these same arguments; the run stops here",
                        call.name, *times
                    );
                    self.results[i] = Some(ToolResult::err(&call, ToolError::denied(why.clone())));
                    self.looping.get_or_insert(why);
                }
                _ => {
                    *times += 1;
                    self.queued.push_back((i, call.clone()));
                }
            }
        }
        self.calls.push(call);
    }
}

impl Round for Turn<'_> {
    fn event(&mut self, event: ModelEvent, rec: &Recorder<'_>) {
        match event {
            ModelEvent::Text(t) => {
                rec.live(|| TraceKind::TextDelta {
                    step: self.step.clone(),
                    text: t.clone(),
                });
                self.text.push_str(&t);
            }
            ModelEvent::Call(c) => self.call(c.call),
            ModelEvent::Malformed(m) => self
                .malformed
                .push(m.to_tool_error().for_model().to_owned()),
            ModelEvent::Done(_) => {}
        }
    }

    fn close(&mut self, _rec: &Recorder<'_>) {
        if self.code_actions
            && self.calls.is_empty()
            && self.malformed.is_empty()
            && let Some(code) = code_block(&self.text)
        {
            let id = format!("{}-code", self.step);
            let arguments = serde_json::json!({ "code": code });
            self.call(ToolCall::new(id, PythonTool::NAME, arguments));
        }
    }

    fn ready(&mut self) -> Option<Ready> {
        let (i, call) = self.queued.pop_front()?;
        Some(Ready {
            key: i as u32,
            call,
            task: None,
            after: vec![self.step.clone()],
        })
    }

    fn finish(&mut self, key: u32, result: ToolResult) {
        if let Some(slot) = self.results.get_mut(key as usize) {
            *slot = Some(result);
        }
    }

    fn response(&self) -> (&str, &[ToolCall], &[String]) {
        (&self.text, &self.calls, &self.malformed)
    }
}

/// A compiled plan round: each task runs the moment its line is parsed and its inputs are
/// resolved; a call that failed in an earlier plan for a lasting reason is not made again.
struct PlanRound<'r> {
    step: String,
    plan: PlanRun,
    parser: PlanParser,
    tools: &'r ToolSet,
    failed_before: &'r HashMap<String, ToolError>,
    /// Each task sent to run, with its call's key (tool and arguments).
    dispatched: Vec<(u32, String)>,
}

impl PlanRound<'_> {
    fn parsed(&mut self, events: Vec<PlanEvent>, rec: &Recorder<'_>) {
        for e in events {
            planned(rec, &self.step, &e);
            self.plan.event(e, self.tools);
        }
    }
}

impl Round for PlanRound<'_> {
    fn event(&mut self, event: ModelEvent, rec: &Recorder<'_>) {
        match event {
            ModelEvent::Text(t) => {
                self.plan.text.push_str(&t);
                let events = self.parser.push(&t);
                self.parsed(events, rec);
            }
            ModelEvent::Call(c) => self.plan.native_call(c.call, self.tools),
            ModelEvent::Malformed(m) => self
                .plan
                .problems
                .push(m.to_tool_error().for_model().to_owned()),
            ModelEvent::Done(_) => {}
        }
    }

    fn close(&mut self, rec: &Recorder<'_>) {
        let events = self.parser.finish();
        self.parsed(events, rec);
        self.plan.close();
    }

    fn ready(&mut self) -> Option<Ready> {
        loop {
            let (index, call) = self.plan.ready.pop_front()?;
            let key = format!("{} {}", call.name, call.arguments);
            if let Some(error) = self.failed_before.get(&key) {
                let again = ToolError::new(
                    error.kind(),
                    format!(
                        "not run again: an earlier plan made this same call and it failed: {}",
                        error.for_model()
                    ),
                );
                self.plan.finish(index, ToolResult::err(&call, again));
                continue;
            }
            self.dispatched.push((index, key));
            let after = self.plan.after(index, &self.step);
            return Some(Ready {
                key: index,
                call,
                task: Some(index),
                after,
            });
        }
    }

    fn finish(&mut self, key: u32, result: ToolResult) {
        self.plan.finish(key, result);
    }

    fn response(&self) -> (&str, &[ToolCall], &[String]) {
        (&self.plan.text, &[], &self.plan.problems)
    }
}

/// One plan's tasks as they stream in, wait for inputs, run and finish.
#[derive(Default)]
struct PlanRun {
    text: String,
    tasks: BTreeMap<u32, PlanTask>,
    results: BTreeMap<u32, ToolResult>,
    waiting: Vec<u32>,
    ready: VecDeque<(u32, ToolCall)>,
    problems: Vec<String>,
    next_native: u32,
    /// The parameters' schema of each task that uses other tasks' results, so a result is
    /// substituted in the type the parameter wants.
    schemas: BTreeMap<u32, Value>,
}

impl PlanRun {
    fn event(&mut self, event: PlanEvent, tools: &ToolSet) {
        match event {
            PlanEvent::Task(task) => self.add(task, tools),
            PlanEvent::Invalid { line, reason } => {
                self.problems.push(format!("`{line}`: {reason}"))
            }
            PlanEvent::Join { .. } | PlanEvent::Thought { .. } => {}
        }
    }

    /// A model that answers the planner with native tool calls: each call is an independent task.
    fn native_call(&mut self, call: ToolCall, tools: &ToolSet) {
        self.next_native = self
            .next_native
            .max(self.tasks.keys().next_back().copied().unwrap_or(0))
            + 1;
        let task = PlanTask {
            index: self.next_native,
            name: call.name,
            arguments: call.arguments,
            deps: Vec::new(),
        };
        self.add(task, tools);
    }

    fn add(&mut self, task: PlanTask, tools: &ToolSet) {
        let index = task.index;
        if tools.get(&task.name).is_none() {
            let names = tools.names().join(", ");
            self.problems.push(format!(
                "task {index} calls `{}`, which is not a tool; tools: {names}",
                task.name
            ));
            let call = ToolCall::new(
                format!("t{index}"),
                task.name.clone(),
                task.arguments.clone(),
            );
            self.results.insert(
                index,
                ToolResult::err(&call, ToolError::unknown_tool(&task.name, &tools.names())),
            );
            self.tasks.insert(index, task);
            return;
        }
        if !task.deps.is_empty()
            && let Some(tool) = tools.get(&task.name)
        {
            self.schemas.insert(index, tool.spec().parameters);
        }
        self.tasks.insert(index, task);
        self.waiting.push(index);
        self.release();
    }

    /// The steps a task waited for: the planner's turn and the tasks it uses.
    fn after(&self, index: u32, plan_step: &str) -> Vec<String> {
        let mut after = vec![plan_step.to_owned()];
        if let Some(t) = self.tasks.get(&index) {
            after.extend(t.deps.iter().map(|d| format!("t{d}")));
        }
        after
    }

    fn finish(&mut self, index: u32, result: ToolResult) {
        self.results.insert(index, result);
        self.release();
    }

    /// Moves every waiting task whose inputs are all done to `ready` (or fails it when an input failed).
    fn release(&mut self) {
        let mut i = 0;
        while i < self.waiting.len() {
            let index = self.waiting[i];
            let Some(task) = self.tasks.get(&index) else {
                self.waiting.swap_remove(i);
                continue;
            };
            if !task.deps.iter().all(|d| self.results.contains_key(d)) {
                i += 1;
                continue;
            }
            self.waiting.swap_remove(i);
            let call_id = format!("t{index}");
            let failed = task.deps.iter().find_map(|d| {
                self.results
                    .get(d)
                    .and_then(|r| r.outcome.as_ref().err().map(|e| (*d, e.clone())))
            });
            if let Some((dep, error)) = failed {
                let call = ToolCall::new(call_id, task.name.clone(), task.arguments.clone());
                let e = ToolError::failed(format!(
                    "not run: it needs task {dep}, which failed ({})",
                    error.for_model()
                ));
                self.results.insert(index, ToolResult::err(&call, e));
                // Its dependents may be waiting on it: look again from the start.
                i = 0;
                continue;
            }
            match resolve(&task.arguments, &self.results, self.schemas.get(&index)) {
                Ok(arguments) => self
                    .ready
                    .push_back((index, ToolCall::new(call_id, task.name.clone(), arguments))),
                Err(why) => {
                    let call = ToolCall::new(call_id, task.name.clone(), task.arguments.clone());
                    self.results.insert(
                        index,
                        ToolResult::err(&call, ToolError::invalid_arguments(why)),
                    );
                    i = 0;
                }
            }
        }
    }

    /// The plan stream ended: tasks waiting for a task that was never planned (its line was
    /// invalid) can never run. Those waiting for running tasks are released as those finish.
    fn close(&mut self) {
        let (orphans, waiting): (Vec<u32>, Vec<u32>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|i| {
                self.tasks
                    .get(i)
                    .is_some_and(|t| t.deps.iter().any(|d| !self.tasks.contains_key(d)))
            });
        self.waiting = waiting;
        for index in orphans {
            if let Some(task) = self.tasks.get(&index) {
                let call = ToolCall::new(
                    format!("t{index}"),
                    task.name.clone(),
                    task.arguments.clone(),
                );
                let e = ToolError::failed("not run: an input it needs never became available");
                self.results.insert(index, ToolResult::err(&call, e));
            }
        }
    }

    /// `(index, "name(args)", result)` for every task, in order.
    fn results(&self) -> Vec<(u32, String, ToolResult)> {
        self.tasks
            .iter()
            .filter_map(|(i, t)| {
                self.results
                    .get(i)
                    .map(|r| (*i, format!("{}({})", t.name, t.arguments), r.clone()))
            })
            .collect()
    }
}

/// Replaces `$N` references in `args` with results: a string that is exactly one reference
/// becomes the referenced value, fitted to the parameter's schema (`schema`, the tool's
/// parameters); references inside longer strings become its text.
fn resolve(
    args: &Value,
    results: &BTreeMap<u32, ToolResult>,
    schema: Option<&Value>,
) -> Result<Value, String> {
    resolve_at(args, results, schema, schema)
}

fn resolve_at(
    args: &Value,
    results: &BTreeMap<u32, ToolResult>,
    schema: Option<&Value>,
    root: Option<&Value>,
) -> Result<Value, String> {
    let schema = schema.map(|s| deref(s, root));
    Ok(match args {
        Value::String(s) => {
            let refs = refs_in(s);
            if refs.is_empty() {
                return Ok(args.clone());
            }
            if refs.len() == 1 && refs[0].span == (0..s.len()) {
                return Ok(fit(lookup(&refs[0], results)?, schema, root));
            }
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for r in &refs {
                out.push_str(&s[last..r.span.start]);
                match lookup(r, results)? {
                    Value::String(text) => out.push_str(&text),
                    other => out.push_str(&other.to_string()),
                }
                last = r.span.end;
            }
            out.push_str(&s[last..]);
            Value::String(out)
        }
        Value::Array(items) => {
            let item = schema.and_then(|s| s.get("items"));
            Value::Array(
                items
                    .iter()
                    .map(|v| resolve_at(v, results, item, root))
                    .collect::<Result<_, _>>()?,
            )
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let property = schema.and_then(|s| {
                        s.get("properties")
                            .and_then(|p| p.get(k))
                            .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                    });
                    Ok((k.clone(), resolve_at(v, results, property, root)?))
                })
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// A local `$ref` (`#/$defs/…`) followed to its schema; anything else as it is.
fn deref<'a>(schema: &'a Value, root: Option<&'a Value>) -> &'a Value {
    let mut at = schema;
    for _ in 0..8 {
        match (at.get("$ref").and_then(Value::as_str), root) {
            (Some(r), Some(root)) if r.starts_with('#') => match root.pointer(&r[1..]) {
                Some(target) => at = target,
                None => break,
            },
            _ => break,
        }
    }
    at
}

/// A referenced value put where `schema` wants it: into a parameter that takes only strings,
/// a number, boolean, object or array becomes its JSON text. Anything else is left for
/// validation (and its coercion rules) to judge.
fn fit(value: Value, schema: Option<&Value>, root: Option<&Value>) -> Value {
    let wants_text = schema.is_some_and(|s| only_strings(s, root, 0));
    match value {
        Value::Number(_) | Value::Bool(_) | Value::Object(_) | Value::Array(_) if wants_text => {
            Value::String(value.to_string())
        }
        other => other,
    }
}

/// Whether `schema` accepts strings and nothing else.
fn only_strings(schema: &Value, root: Option<&Value>, depth: u8) -> bool {
    let schema = deref(schema, root);
    match schema.get("type") {
        Some(Value::String(t)) => return t == "string",
        Some(Value::Array(types)) => return types.iter().all(|t| t == "string"),
        _ => {}
    }
    if depth > 4 {
        return false;
    }
    ["anyOf", "oneOf"].iter().any(|k| {
        schema
            .get(*k)
            .and_then(Value::as_array)
            .is_some_and(|branches| {
                !branches.is_empty() && branches.iter().all(|b| only_strings(b, root, depth + 1))
            })
    })
}

fn lookup(
    r: &agentry_parse::plan::Ref,
    results: &BTreeMap<u32, ToolResult>,
) -> Result<Value, String> {
    let Some(Ok(value)) = results.get(&r.task).map(|res| res.outcome.as_ref()) else {
        return Err(format!("${} has no result", r.task));
    };
    let mut v = value;
    for (depth, seg) in r.path.iter().enumerate() {
        let next = match v {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        v = next.ok_or_else(|| {
            let at = if depth == 0 {
                format!("${}", r.task)
            } else {
                format!("${}.{}", r.task, r.path[..depth].join("."))
            };
            let fields = match v {
                Value::Object(m) => format!(
                    "; its fields: {}",
                    m.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                _ => String::new(),
            };
            format!("{at} has no field `{seg}`{fields}")
        })?;
    }
    Ok(v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn references_resolve_to_values_paths_and_text() {
        let mut results = BTreeMap::new();
        let c = ToolCall::new("t1", "get_weather", json!({}));
        results.insert(
            1,
            ToolResult::ok(
                &c,
                json!({"city": "Paris", "temp_c": 18, "tags": ["a", "b"]}),
            ),
        );
        results.insert(2, ToolResult::ok(&c, json!("sunny")));
        results.insert(3, ToolResult::err(&c, ToolError::timeout(5)));
        assert_eq!(
            resolve(&json!({"a": "$1", "b": "$1.temp_c", "c": "it is $2 in $1.city", "d": ["$1.tags.1"]}), &results, None).unwrap(),
            json!({"a": {"city": "Paris", "temp_c": 18, "tags": ["a", "b"]}, "b": 18, "c": "it is sunny in Paris", "d": ["b"]})
        );
        assert_eq!(
            resolve(&json!("$1.wind"), &results, None).unwrap_err(),
            "$1 has no field `wind`; its fields: city, temp_c, tags"
        );
        assert_eq!(
            resolve(&json!("$3"), &results, None).unwrap_err(),
            "$3 has no result"
        );
    }

    #[test]
    fn a_whole_reference_takes_the_type_its_parameter_wants() {
        let mut results = BTreeMap::new();
        let c = ToolCall::new("t1", "get_weather", json!({}));
        results.insert(
            1,
            ToolResult::ok(&c, json!({"temp_c": 24, "ok": true, "city": "Oslo"})),
        );
        let schema = json!({
            "type": "object",
            "properties": {
                "expression": {"type": "string"},
                "n": {"type": "number"},
                "any": {},
                "label": {"$ref": "#/$defs/Label"},
                "texts": {"type": "array", "items": {"type": "string"}},
                "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "$defs": {"Label": {"type": "string"}},
        });
        let args = json!({
            "expression": "$1.temp_c", "n": "$1.temp_c", "any": "$1.temp_c",
            "label": "$1.ok", "texts": ["$1.temp_c", "$1.city"], "maybe": "$1.temp_c",
        });
        assert_eq!(
            resolve(&args, &results, Some(&schema)).unwrap(),
            json!({
                "expression": "24", "n": 24, "any": 24, "label": "true",
                "texts": ["24", "Oslo"], "maybe": 24,
            })
        );
    }
}
