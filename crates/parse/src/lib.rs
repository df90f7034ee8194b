//! Extracting tool calls from model text, one chunk at a time.
//!
//! Models write calls as text (OpenAI `tool_calls`, Hermes `<tool_call>`, Llama JSON,
//! Mistral `[TOOL_CALLS]`, Python syntax, ReAct). [`CallParser::push`] takes a chunk and
//! returns every [`Event`] it completed, so a call can start while the model still writes.
//! The parser keeps a cursor and never rescans, which keeps chunked parsing linear; text it
//! cannot repair becomes an [`Event::Malformed`] with the offending span, and what it did
//! repair (trailing commas, single quotes, a missing final brace…) is listed on the call.
//!
//! # Example
//!
//! ```
//! use agentry_parse::{CallParser, Event, Format};
//! let mut parser = CallParser::new(Format::Hermes);
//! assert!(parser.push(r#"<tool_call>{"name": "get_weather", "#)?.is_empty());
//! let events = parser.push(r#""arguments": {"city": "Oslo"}}</tool_call>"#)?;
//! let Event::Call(call) = &events[0] else { panic!("expected a call") };
//! assert_eq!(call.name, "get_weather");
//! assert_eq!(call.arguments["city"], "Oslo");
//! # Ok::<(), agentry_parse::ParseError>(())
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod arguments;
mod event;
mod fast_json;
mod json_scan;
mod lenient;
mod parser;
pub mod plan;
mod py_scan;
pub mod python;
mod shape;

pub use arguments::{ArgumentStream, ArgumentsError, ArgumentsResult};
pub use event::{Event, Format, Malformed, ParseError, ParsedCall, Repair};
pub use parser::{CallParser, DEFAULT_MAX_INPUT, Parsed, parse};
