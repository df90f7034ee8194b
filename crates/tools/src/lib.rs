//! Tools behind one trait: typed Rust functions ([`Tool`]), closures ([`FnTool`]), and the
//! demo tools ([`demo_tools`]).
//!
//! Authors implement [`Tool`] with a typed argument struct; its JSON Schema is derived from
//! the type (doc comments become descriptions), so the schema offered to the model cannot
//! drift from what the function decodes. Registries hold the object-safe [`DynTool`];
//! [`ToolSet`] compiles each schema once and checks every call before it runs.
//!
//! # Example
//!
//! ```
//! use agentry_tools::{CallContext, Tool, ToolSet};
//! use serde_json::{Value, json};
//!
//! /// Arguments of `greet`.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct GreetArgs {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! struct Greet;
//!
//! impl Tool for Greet {
//!     const NAME: &'static str = "greet";
//!     type Args = GreetArgs;
//!     fn description(&self) -> &str { "Greets someone by name." }
//!     async fn call(&self, args: GreetArgs, _cx: CallContext) -> Result<Value, agentry_core::ToolError> {
//!         Ok(json!(format!("Hello, {}!", args.name)))
//!     }
//! }
//!
//! let mut tools = ToolSet::new();
//! tools.add(Greet)?;
//! assert_eq!(tools.specs()[0].parameters["properties"]["name"]["description"], "Who to greet.");
//! assert!(tools.check("greet", json!({"name": 3})).is_err());
//! # Ok::<(), agentry_schema::SchemaError>(())
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod builtin;
pub mod calc;
pub mod command;
pub mod python;
mod set;
mod source;
mod tool;

pub use builtin::{
    Calculator, Clock, FakeClock, KvGet, KvSet, KvStore, Search, Sleep, Weather, demo_tools,
};
pub use command::{CommandSpec, CommandTool, Workspaces};
pub use python::{PythonTool, code_block};
pub use set::ToolSet;
pub use source::{MergeError, ToolSource, Toolbox};
pub use tool::{CallContext, Calls, DynTool, FnTool, NestedCall, Tool, schema_of, tool_fn};
