//! [`Agent`]: a model, tools and settings, built once and run many times.
//!
//! An agent is cheap to clone and shared between tasks; each run is independent. It runs a
//! task to an [`Outcome`] ([`Agent::run`]), streams every step of a run as one [`Event`]
//! type ([`Agent::stream`]; dropping the stream cancels the run, and the trace says so),
//! continues a [`Conversation`], and returns an answer as a typed value
//! ([`Agent::run_typed`]).

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use agentry_core::{
    Message, RunStatus, ToolCall, ToolError, ToolResult, ToolSpec, TraceEvent, TraceParent,
};
use agentry_llm::{Model, Usage};
use agentry_policy::{Approver, Policy};
use agentry_schema::ArgValidator;
use agentry_tools::{
    DynTool, FnTool, MergeError, PythonTool, ToolSet, ToolSource, Toolbox, Workspaces,
};
use futures::{Stream, future::BoxFuture};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    Budget, Engine, EngineConfig, Fanout, Interlocutor, Mode, Observer, Reply, ReplyError,
    RunOutcome, RunStart,
};

/// Everything a run does, as it happens: the one event type of [`Agent::stream`], the
/// trace store and the viewer.
pub type Event = TraceEvent;

/// A model, given as a value or as a spec string (`"sim:weather"`, `"local"`,
/// `"openai:gpt-4o-mini"`).
pub trait IntoModel {
    /// The model, or why the spec names none.
    fn into_model(self) -> Result<Arc<dyn Model>, BuildError>;
}

impl IntoModel for &str {
    fn into_model(self) -> Result<Arc<dyn Model>, BuildError> {
        agentry_llm::open(self, &agentry_llm::OpenOptions::default()).map_err(BuildError::Model)
    }
}

impl IntoModel for String {
    fn into_model(self) -> Result<Arc<dyn Model>, BuildError> {
        self.as_str().into_model()
    }
}

impl IntoModel for Arc<dyn Model> {
    fn into_model(self) -> Result<Arc<dyn Model>, BuildError> {
        Ok(self)
    }
}

impl<M: Model + 'static> IntoModel for Arc<M> {
    fn into_model(self) -> Result<Arc<dyn Model>, BuildError> {
        Ok(self)
    }
}

/// Why an agent cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The model spec names no model that can be opened.
    #[error("the model cannot be opened: {0}")]
    Model(#[source] agentry_llm::LlmError),
    /// Two tools have one name.
    #[error(
        "two tools are named `{name}`: the {first} and the {second} added (\"{first_description}\" and \"{second_description}\"); rename one"
    )]
    DuplicateTool {
        /// The name.
        name: String,
        /// Which tool added first had it (`1st`, `2nd`…).
        first: String,
        /// Which tool added later has it.
        second: String,
        /// The first one's description.
        first_description: String,
        /// The second one's description.
        second_description: String,
    },
    /// A tool's schema does not compile.
    #[error(transparent)]
    Schema(#[from] agentry_schema::SchemaError),
    /// The code tool cannot be made (no Python interpreter).
    #[error("the python tool cannot be made: {0}")]
    Code(String),
}

/// Why a run gave no answer (or none of the wanted type).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run ended without an answer: a budget ran out, the model failed, a stop tool
    /// ended it, it looped or was cancelled. The run's record is kept.
    #[error("the run ended without an answer ({}): {reason}", .status.as_str())]
    Ended {
        /// How it ended.
        status: RunStatus,
        /// Why.
        reason: String,
        /// What it did before it ended.
        run: Box<Outcome>,
    },
    /// The model's answers never fit the output type ([`Agent::run_typed`]).
    #[error("the answer does not fit the output type: {last}")]
    Output {
        /// Why the last answer did not fit, as the model was told.
        last: String,
        /// The run, whose `answer` is the last answer given.
        run: Box<Outcome>,
    },
}

/// A message history that runs continue, in either mode; serialisable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The messages, oldest first (no system prompt: the agent adds its own).
    pub messages: Vec<Message>,
}

impl Conversation {
    /// An empty conversation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds what the user says next; the next run answers it.
    pub fn user(&mut self, text: impl Into<String>) -> &mut Self {
        self.messages.push(Message::user(text));
        self
    }

    /// The last answer in it, if any.
    pub fn last_answer(&self) -> Option<&str> {
        self.messages.iter().rev().find_map(|m| match m {
            Message::Assistant {
                content: Some(text),
                tool_calls,
            } if tool_calls.is_empty() => Some(text.as_str()),
            _ => None,
        })
    }
}

/// What a run is given: a task, or a conversation whose last message is the user's.
#[derive(Debug, Clone)]
pub struct Input {
    history: Vec<Message>,
    task: String,
    parent: Option<TraceParent>,
}

impl Input {
    /// Runs it inside the trace of `parent` (a W3C `traceparent` that came with a request,
    /// say): the run's spans join that trace under that span.
    #[must_use]
    pub fn within(mut self, parent: TraceParent) -> Self {
        self.parent = Some(parent);
        self
    }
}

impl From<&str> for Input {
    fn from(task: &str) -> Self {
        Self {
            history: Vec::new(),
            task: task.to_owned(),
            parent: None,
        }
    }
}

impl From<String> for Input {
    fn from(task: String) -> Self {
        Self {
            history: Vec::new(),
            task,
            parent: None,
        }
    }
}

impl From<&Conversation> for Input {
    fn from(c: &Conversation) -> Self {
        Conversation::clone(c).into()
    }
}

impl From<&mut Conversation> for Input {
    fn from(c: &mut Conversation) -> Self {
        Conversation::clone(c).into()
    }
}

impl From<Conversation> for Input {
    fn from(mut c: Conversation) -> Self {
        // The last user message is the task; anything after it (nothing, normally) and
        // everything before it is history.
        match c
            .messages
            .iter()
            .rposition(|m| matches!(m, Message::User { .. }))
        {
            Some(i) => {
                let Message::User { content } = c.messages.remove(i) else {
                    unreachable!("position of a user message")
                };
                Self {
                    history: c.messages,
                    task: content,
                    parent: None,
                }
            }
            None => Self {
                history: c.messages,
                task: String::new(),
                parent: None,
            },
        }
    }
}

/// A run that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The answer.
    pub answer: String,
    /// The run's id (its key in the trace store).
    pub run_id: String,
    /// How it ended (`answered` for an `Ok`).
    pub status: RunStatus,
    /// Each call that ran, with its result, in the order they finished.
    pub calls: Vec<(ToolCall, ToolResult)>,
    /// Tokens over all model requests.
    pub usage: Usage,
    /// Wall time of the run.
    pub wall: Duration,
    /// The conversation with this run's turns added, to continue it.
    pub conversation: Conversation,
}

impl From<RunOutcome> for Outcome {
    fn from(o: RunOutcome) -> Self {
        Self {
            answer: o.answer.unwrap_or_default(),
            run_id: o.run_id,
            status: o.status,
            calls: o.results,
            usage: o.usage,
            wall: o.wall,
            conversation: Conversation {
                messages: o.messages,
            },
        }
    }
}

/// The outcome as a `Result`: `Ok` when the model answered.
fn settle(outcome: RunOutcome) -> Result<Outcome, RunError> {
    if outcome.status == RunStatus::Answered {
        return Ok(outcome.into());
    }
    let reason = outcome
        .reason
        .clone()
        .unwrap_or_else(|| "the run ended".into());
    Err(RunError::Ended {
        status: outcome.status,
        reason,
        run: Box::new(outcome.into()),
    })
}

/// A model, tools and settings; built by [`Agent::builder`], cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    observers: Vec<Arc<dyn Observer>>,
    output_retries: u32,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("engine", &self.inner.engine)
            .finish()
    }
}

/// Builds an [`Agent`]: `Agent::builder(model).tool(t).system("…").build()?`.
#[must_use]
pub struct AgentBuilder {
    model: Result<Arc<dyn Model>, BuildError>,
    tools: Vec<Arc<dyn DynTool>>,
    cfg: EngineConfig,
    observers: Vec<Arc<dyn Observer>>,
    sources: Vec<Arc<dyn ToolSource>>,
    output_retries: u32,
    /// The `python` tool, if asked for: the interpreter.
    python: Option<String>,
    workspaces: Option<Workspaces>,
}

impl Agent {
    /// Starts building an agent on `model`: a [`Model`] (in an `Arc`) or a spec string.
    /// Sequential mode (turns, as every chat model API works) unless
    /// [`AgentBuilder::mode`] asks for compiled plans.
    pub fn builder(model: impl IntoModel) -> AgentBuilder {
        AgentBuilder {
            model: model.into_model(),
            tools: Vec::new(),
            cfg: EngineConfig::new(Mode::Sequential),
            observers: Vec::new(),
            sources: Vec::new(),
            output_retries: 2,
            python: None,
            workspaces: None,
        }
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The tools on offer now: its own and its MCP servers' (listed, or listed again if
    /// they changed); `Err` when a server's tool cannot join them.
    pub async fn tools(&self) -> Result<Arc<ToolSet>, MergeError> {
        self.inner.engine.current_tools().await
    }

    /// Runs `input` (a task, or a [`Conversation`] to continue) to an answer.
    pub async fn run(&self, input: impl Into<Input>) -> Result<Outcome, RunError> {
        let input = input.into();
        let observer = Fanout(self.inner.observers.clone());
        let outcome = self
            .inner
            .engine
            .run_after(
                &input.history,
                &input.task,
                &observer,
                CancellationToken::new(),
                RunStart::new(input.parent),
            )
            .await;
        settle(outcome)
    }

    /// Runs `input`, yielding every step as it happens: text as the model streams it,
    /// each task of a plan as its line is read, each call as it starts and ends, policy
    /// decisions and approvals, model usage, replans, and the run's end (always last).
    /// Dropping the stream cancels the run: calls in flight are cut, and the trace records
    /// them and the run as cancelled.
    pub fn stream(&self, input: impl Into<Input>) -> RunStream {
        let input = input.into();
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::clone(&self.inner);
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let run = async move {
            let mut observers = inner.observers.clone();
            observers.push(Arc::new(Sender(tx)));
            let observer = Fanout(observers);
            inner
                .engine
                .run_after(
                    &input.history,
                    &input.task,
                    &observer,
                    token,
                    RunStart::new(input.parent),
                )
                .await
        };
        RunStream {
            events: rx,
            run: Some(Box::pin(run)),
            outcome: None,
            cancel,
        }
    }

    /// Runs `input` and returns the answer as a `T`: the model is asked to answer with a
    /// JSON value fitting `T`'s JSON Schema, each answer is validated against it, and one
    /// that does not fit goes back to the model with the validation's sentences (at most
    /// [`AgentBuilder::output_retries`] times, then [`RunError::Output`]). The run is
    /// turn by turn (sequential) whatever the agent's mode, since the answer is checked
    /// after each turn.
    pub async fn run_typed<T: JsonSchema + DeserializeOwned + Send>(
        &self,
        input: impl Into<Input>,
    ) -> Result<(T, Outcome), RunError> {
        let input = input.into();
        let schema = agentry_tools::schema_of::<T>();
        let checker = OutputCheck::<T>::new(&schema, self.inner.output_retries);
        let opening = format!(
            "{}\n\nGive your final answer as only a JSON value (no other text) that fits this JSON Schema:\n{schema}",
            input.task
        );
        let observer = Fanout(self.inner.observers.clone());
        let outcome = self
            .inner
            .engine
            .drive(
                &input.history,
                &opening,
                Some(&checker),
                &observer,
                CancellationToken::new(),
                RunStart::new(input.parent),
            )
            .await;
        let verdict = checker.take();
        let mut outcome = settle(outcome)?;
        match verdict {
            Some(Ok(value)) => Ok((value, outcome)),
            Some(Err(last)) => Err(RunError::Output {
                last,
                run: Box::new(outcome),
            }),
            None => {
                outcome.status = RunStatus::Failed;
                Err(RunError::Output {
                    last: "the model gave no answer to check".into(),
                    run: Box::new(outcome),
                })
            }
        }
    }

    /// This agent as a tool of another agent: `name` takes `{"task": "…"}`, runs the task
    /// on this agent and returns its answer (a run without one fails the call with why).
    pub fn as_tool(&self, name: impl Into<String>, description: impl Into<String>) -> FnTool {
        let spec = ToolSpec::new(
            name,
            description,
            json!({
                "type": "object",
                "properties": {"task": {"type": "string", "description": "The task for this agent, in full."}},
                "required": ["task"],
                "additionalProperties": false,
            }),
        );
        let agent = self.clone();
        FnTool::new(spec, move |args: Value, cx| {
            let agent = agent.clone();
            async move {
                let task = args["task"].as_str().unwrap_or_default().to_owned();
                // The child run's spans nest under the call's.
                let mut input = Input::from(task);
                input.parent = cx.traceparent.as_deref().and_then(TraceParent::parse);
                let run = agent.run(input);
                tokio::select! {
                    outcome = run => outcome
                        .map(|o| Value::String(o.answer))
                        .map_err(|e| ToolError::failed(e.to_string())),
                    () = cx.cancel.cancelled() => Err(ToolError::unavailable("the sub-agent's run was cancelled")),
                }
            }
        })
    }
}

impl AgentBuilder {
    /// Adds a tool (a [`agentry_tools::Tool`], a `#[agentry::tool]` function, a
    /// [`agentry_tools::tool_fn`] closure, another agent's [`Agent::as_tool`]).
    pub fn tool(mut self, tool: impl DynTool + 'static) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }

    /// Adds every tool of `set`.
    pub fn tools(mut self, set: &ToolSet) -> Self {
        for spec in set.specs() {
            if let Some(tool) = set.get(&spec.name) {
                self.tools.push(Arc::clone(tool));
            }
        }
        self
    }

    /// Adds an MCP server's tools (an `agentry::mcp::McpServer`, or any other
    /// [`ToolSource`]): listed when a run starts, and again before a turn when the server
    /// says they changed. A tool whose name is taken is offered as `ALIAS__name`.
    pub fn mcp(mut self, server: Arc<impl ToolSource + 'static>) -> Self {
        self.sources.push(server);
        self
    }

    /// The system prompt (sequential mode; compiled mode's planner has its own).
    pub fn system(mut self, text: impl Into<String>) -> Self {
        self.cfg.system_prompt = Some(text.into());
        self
    }

    /// Sequential (turns; the default) or compiled (a streamed plan whose tasks run as
    /// they are written).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.cfg.mode = mode;
        self
    }

    /// The policy every call passes after validation.
    pub fn policy(mut self, policy: impl Into<Arc<Policy>>) -> Self {
        self.cfg.policy = Some(policy.into());
        self
    }

    /// The agent's name in the policy (its visible tools and rate limits).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.cfg.agent = Some(name.into());
        self
    }

    /// Who approves calls the policy marks `ask`.
    pub fn approver(mut self, approver: Arc<dyn Approver>) -> Self {
        self.cfg.approver = Some(approver);
        self
    }

    /// Exports every run as OpenTelemetry spans through `exporter`
    /// ([`agentry_trace::otlp::OtlpExporter`]), and sends each model request and tool call
    /// its span's W3C `traceparent` (an HTTP header to the model server, `_meta` to an MCP
    /// server, the parent of a sub-agent's run).
    #[cfg(feature = "otlp")]
    pub fn otlp(mut self, exporter: Arc<agentry_trace::otlp::OtlpExporter>) -> Self {
        self.cfg.propagate = true;
        self.observers.push(exporter);
        self
    }

    /// The limits of each run.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.cfg.budget = budget;
        self
    }

    /// The deadline of each tool call.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.cfg.call_timeout = timeout;
        self
    }

    /// Offers a `python` tool: the model's code runs in a fresh sandboxed interpreter, in the
    /// run's workspace, with the agent's other tools as functions (each call validated,
    /// policy-checked, counted and recorded like the model's). `python` is the interpreter
    /// (a path, or a name on `PATH`: `"python3"`).
    pub fn python(mut self, python: impl Into<String>) -> Self {
        self.python = Some(python.into());
        self
    }

    /// Makes code the model's only action (CodeAct): the `python` tool (see
    /// [`AgentBuilder::python`]; `python3` unless set) is the one tool offered, the others
    /// are functions in its code, and a reply with a fenced Python block runs it. Sequential
    /// mode.
    pub fn code_actions(mut self) -> Self {
        self.python.get_or_insert_with(|| "python3".into());
        self.cfg.code_actions = true;
        self.cfg.mode = Mode::Sequential;
        self
    }

    /// Where runs' workspaces are made and the sandbox policy the `python` tool starts from
    /// (default: [`Workspaces::default`], under `~/.cache/agentry/workspaces`).
    pub fn workspaces(mut self, workspaces: Workspaces) -> Self {
        self.workspaces = Some(workspaces);
        self
    }

    /// Most calls of one run running at once.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.cfg = self.cfg.max_concurrency(n);
        self
    }

    /// Where every step of every run goes as well (a trace writer, a progress printer).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Records every run in the trace store `writer` writes to.
    #[cfg(feature = "trace")]
    pub fn trace(self, writer: Arc<agentry_trace::TraceWriter>) -> Self {
        self.observer(writer)
    }

    /// How often [`Agent::run_typed`] sends a wrong answer back (default 2).
    pub fn output_retries(mut self, n: u32) -> Self {
        self.output_retries = n;
        self
    }

    /// Every other engine setting at once.
    pub fn config(mut self, cfg: EngineConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// The agent; fails on a model spec that opens no model, two tools with one name, or
    /// a tool whose schema does not compile.
    pub fn build(mut self) -> Result<Agent, BuildError> {
        let model = self.model?;
        if let Some(python) = &self.python {
            let specs: Vec<_> = self.tools.iter().map(|t| t.spec()).collect();
            let workspaces = self.workspaces.clone().unwrap_or_default();
            let tool = PythonTool::new(python, &specs, workspaces).map_err(BuildError::Code)?;
            self.tools.push(Arc::new(tool));
        }
        let mut set = ToolSet::new();
        for (i, tool) in self.tools.iter().enumerate() {
            let spec = tool.spec();
            if let Some(j) = self.tools[..i]
                .iter()
                .position(|t| t.spec().name == spec.name)
            {
                return Err(BuildError::DuplicateTool {
                    name: spec.name,
                    first: ordinal(j + 1),
                    second: ordinal(i + 1),
                    first_description: self.tools[j].spec().description,
                    second_description: spec.description,
                });
            }
            set.add_arc(Arc::clone(tool))?;
        }
        let engine = if self.sources.is_empty() {
            Engine::new(model, Arc::new(set), self.cfg)
        } else {
            let toolbox = Toolbox::new(set.filtered(|_| true), self.sources);
            Engine::new(model, Arc::new(set), self.cfg).with_toolbox(toolbox)
        };
        Ok(Agent {
            inner: Arc::new(Inner {
                engine,
                observers: self.observers,
                output_retries: self.output_retries,
            }),
        })
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Hands each event to a [`RunStream`].
struct Sender(mpsc::UnboundedSender<Event>);

impl Observer for Sender {
    fn event(&self, event: &Event) {
        let _ = self.0.send(event.clone());
    }

    fn live(&self) -> bool {
        true
    }
}

/// The events of one run, as they happen ([`Agent::stream`]); the run goes on only while
/// the stream is polled, and dropping it cancels the run.
#[must_use = "a run streams only while its stream is polled"]
pub struct RunStream {
    events: mpsc::UnboundedReceiver<Event>,
    run: Option<BoxFuture<'static, RunOutcome>>,
    outcome: Option<RunOutcome>,
    cancel: CancellationToken,
}

impl RunStream {
    /// Cancels the run and lets it end in order: the stream goes on to the calls cut and
    /// the run's end (`cancelled`), then ends, and [`RunStream::outcome`] has it.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// How the run ended, once the stream has ended.
    pub fn outcome(&self) -> Option<&RunOutcome> {
        self.outcome.as_ref()
    }

    /// How the run ended as a `Result`, once the stream has ended.
    pub fn result(&self) -> Option<Result<Outcome, RunError>> {
        self.outcome.clone().map(settle)
    }
}

impl std::fmt::Debug for RunStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStream")
            .field("running", &self.run.is_some())
            .finish()
    }
}

impl Stream for RunStream {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        loop {
            if let Poll::Ready(event) = this.events.poll_recv(cx) {
                return Poll::Ready(event);
            }
            let Some(run) = this.run.as_mut() else {
                // The run ended and its sender with it: the channel closes once drained.
                return Poll::Pending;
            };
            match run.as_mut().poll(cx) {
                Poll::Ready(outcome) => {
                    this.outcome = Some(outcome);
                    this.run = None;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Checks each answer of a typed run against the output type, and answers the model.
struct OutputCheck<T> {
    validator: Option<ArgValidator>,
    retries: u32,
    state: Mutex<CheckState<T>>,
}

struct CheckState<T> {
    tries: u32,
    verdict: Option<Result<T, String>>,
}

impl<T: DeserializeOwned> OutputCheck<T> {
    fn new(schema: &Value, retries: u32) -> Self {
        Self {
            validator: ArgValidator::from_schema("output", schema).ok(),
            retries,
            state: Mutex::new(CheckState {
                tries: 0,
                verdict: None,
            }),
        }
    }

    fn take(&self) -> Option<Result<T, String>> {
        self.state.lock().ok().and_then(|mut s| s.verdict.take())
    }

    /// The answer as a `T`, or the sentences that say why it is not one.
    fn check(&self, answer: &str) -> Result<T, String> {
        let value = json_in(answer).ok_or_else(|| {
            "the answer is not a JSON value; answer with only the JSON value".to_owned()
        })?;
        if let Some(validator) = &self.validator
            && let Err(invalid) = validator.check(value.clone())
        {
            return Err(invalid.to_string());
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

/// The JSON value an answer holds: all of it, or a fenced block in it.
fn json_in(answer: &str) -> Option<Value> {
    let text = answer.trim();
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    let fenced = text
        .split("```")
        .nth(1)
        .map(|block| block.trim_start_matches("json").trim())?;
    serde_json::from_str(fenced).ok()
}

impl<T: DeserializeOwned + Send> Interlocutor for OutputCheck<T> {
    fn reply<'a>(&'a self, message: &'a str) -> BoxFuture<'a, Result<Reply, ReplyError>> {
        let checked = self.check(message);
        let reply = match self.state.lock() {
            Err(_) => Err(ReplyError::from("the output check's state is poisoned")),
            Ok(mut state) => match checked {
                Ok(value) => {
                    state.verdict = Some(Ok(value));
                    Ok(Reply::End(String::new()))
                }
                Err(why) if state.tries < self.retries => {
                    state.tries += 1;
                    state.verdict = Some(Err(why.clone()));
                    Ok(Reply::Say(format!(
                        "That answer does not fit the required JSON Schema: {why}. Answer again with only the corrected JSON value."
                    )))
                }
                Err(why) => {
                    state.verdict = Some(Err(why));
                    Ok(Reply::End(String::new()))
                }
            },
        };
        Box::pin(async move { reply })
    }
}
