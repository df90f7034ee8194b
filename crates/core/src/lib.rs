//! The data every agentry crate speaks: messages, tool specs, calls, results and error kinds;
//! and the `Host` check every HTTP server of agentry shares ([`AllowedHosts`]).
//!
//! Pure data, no I/O. Every type serializes in the OpenAI chat-completions wire shape
//! (`{"role":"assistant","tool_calls":[{"id","type":"function","function":{…}}]}`), because
//! that is the shape models, servers and traces already share; deserialization is lenient
//! where real servers differ (arguments as a JSON string or an object, content as a string
//! or a list of text parts).
//!
//! # Example
//!
//! ```
//! use agentry_core::{Message, ToolCall};
//! let call = ToolCall::new("call_1", "get_weather", serde_json::json!({"city": "Oslo"}));
//! let msg = Message::assistant_calls(vec![call]);
//! let wire = serde_json::to_value(&msg)?;
//! assert_eq!(wire["tool_calls"][0]["function"]["arguments"], r#"{"city":"Oslo"}"#);
//! assert_eq!(serde_json::from_value::<Message>(wire)?, msg);
//! # Ok::<(), serde_json::Error>(())
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod call;
mod context;
mod error;
mod host;
mod message;
mod spec;
mod trace;

pub use call::{ToolCall, ToolResult};
pub use context::{RunSpans, SpanRole, TraceParent, hex};
pub use error::{ErrorKind, ToolError};
pub use host::AllowedHosts;
pub use message::Message;
pub use spec::ToolSpec;
pub use trace::{ModelPurpose, PolicyAction, RunStatus, TraceEvent, TraceKind};
