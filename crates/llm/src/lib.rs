//! Model backends behind one streaming trait: [`Model`].
//!
//! [`OpenAi`] talks to any OpenAI-compatible chat-completions server; [`sim::SimModel`] plays
//! a script in process with a latency model, and [`sim::SimServer`] serves the same script
//! over HTTP so agentry and other frameworks can be measured against the same model. Every
//! backend streams [`ModelEvent`]s: text as it is generated, each call the moment it is
//! complete (read by `agentry-parse`), then [`ModelEvent::Done`] with usage and timing.
//!
//! # Example
//!
//! ```
//! use agentry_core::Message;
//! use agentry_llm::{ChatRequest, complete, sim::{Script, SimModel}};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let script = Script::parse(r#"{"turns": [{"calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}]}"#, "demo")?;
//! let response = complete(&SimModel::new(script), ChatRequest::new(vec![Message::user("Weather in Oslo?")])).await?;
//! assert_eq!(response.calls[0].call.name, "get_weather");
//! # Ok::<(), agentry_llm::LlmError>(())
//! # }).unwrap();
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod assemble;
mod error;
#[cfg(feature = "local")]
pub mod local;
mod model;
mod openai;
pub mod prompt;
mod rng;
pub mod sim;
mod spec;
pub mod sse;
mod types;

pub use error::LlmError;
pub use model::{Model, ModelStream, complete};
pub use openai::{OpenAi, OpenAiConfig, RetryPolicy, StreamDecoder, ToolMode};
pub use rng::SplitMix64;
pub use spec::{BUNDLED_SCRIPTS, HAS_LOCAL, OpenOptions, bundled_script, local_ready, open};
pub use types::{
    ChatRequest, Completion, FinishReason, ModelCall, ModelEvent, ReplyShape, Response, Timing,
    ToolChoice, Usage,
};
