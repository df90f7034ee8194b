//! The engine: turns a model's calls into the fastest safe execution ([`Engine`]).
//!
//! Two modes ([`Mode`]): **sequential** (ReAct / OpenAI style: each turn's calls run
//! concurrently, results go back, repeat) and **compiled** (LLMCompiler style: the model
//! streams a numbered plan whose tasks name their inputs as `$N`; each task is dispatched
//! the moment its line is parsed and its inputs exist; a join answers or replans). Both
//! validate every call before it runs, bound it with a deadline, retry idempotent tools on
//! transient errors, catch panics, honour a run [`Budget`] and cancellation, and report
//! every step to an [`Observer`] (the trace store, a progress printer).
//!
//! # Example
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use agentry_exec::{Engine, EngineConfig, Mode, NoObserver};
//! use agentry_llm::sim::{Script, SimModel};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let script = Script::parse(r#"{"turns": [
//!     {"when": {"last": "user"}, "calls": [{"name": "calculator", "arguments": {"expression": "6 * 7"}}]},
//!     {"when": {"last": "tool"}, "text": "The answer is {{tool}}."}]}"#, "demo").unwrap();
//! let tools = Arc::new(agentry_tools::demo_tools(Duration::ZERO));
//! let engine = Engine::new(Arc::new(SimModel::new(script)), tools, EngineConfig::new(Mode::Sequential));
//! let outcome = engine.run("What is 6 times 7?", &NoObserver).await;
//! assert_eq!(outcome.answer.as_deref(), Some("The answer is 42."));
//! # });
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod agent;
mod call;
mod config;
mod dispatch;
mod engine;
mod prompts;
mod record;
mod replay;

pub use agent::{
    Agent, AgentBuilder, BuildError, Conversation, Event, Input, IntoModel, Outcome, RunError,
    RunStream,
};
pub use config::{Budget, EngineConfig, Mode};
pub use engine::{Engine, Interlocutor, Reply, ReplyError, RunOutcome, RunStart, new_run_id};
pub use record::{Collect, Fanout, NoObserver, Observer};
pub use replay::{Divergence, ReplayReport, compare, replay};
