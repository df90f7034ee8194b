#![doc = include_str!("../README.md")]
#![deny(clippy::print_stdout, clippy::print_stderr)]

// `#[agentry::tool]` expands to paths under `::agentry`, which this crate's own code reaches too.
extern crate self as agentry;

pub use agentry_core::{
    ErrorKind, Message, RunSpans, RunStatus, ToolCall, ToolError, ToolResult, ToolSpec, TraceEvent,
    TraceKind, TraceParent,
};
pub use agentry_exec::{
    Agent, AgentBuilder, Budget, BuildError, Conversation, Engine, EngineConfig, Event, Input,
    IntoModel, Mode, Observer, Outcome, RunError, RunOutcome, RunStart, RunStream,
};
pub use agentry_macros::tool;
pub use agentry_tools::{
    CallContext, CommandSpec, CommandTool, DynTool, FnTool, PythonTool, Tool, ToolSet, Workspaces,
    tool_fn,
};

/// Running programs under limits: rlimits, a cgroup, Landlock, seccomp, a process group
/// killed whole (`agentry-sandbox`).
pub mod sandbox {
    pub use agentry_sandbox::*;
}

/// Tool sources, the tool traits and the demo tools (`agentry-tools`).
pub mod tools {
    pub use agentry_tools::*;
}

/// Model backends behind one trait, model specs, the simulated model (`agentry-llm`).
pub mod llm {
    pub use agentry_llm::*;
}

/// Declarative policies, approvals and approvers (`agentry-policy`).
pub mod policy {
    pub use agentry_policy::*;
}

/// OpenTelemetry export of runs over OTLP (`agentry_trace::otlp`; feature `otlp`).
#[cfg(feature = "otlp")]
pub mod otlp {
    pub use agentry_trace::otlp::*;
}

/// The trace store, timelines and export (`agentry-trace`; feature `trace-sqlite`).
#[cfg(feature = "trace-sqlite")]
pub mod trace {
    pub use agentry_trace::*;
}

/// Extracting calls and plans from model text (`agentry-parse`).
pub mod parse {
    pub use agentry_parse::*;
}

/// JSON Schema validation of arguments (`agentry-schema`).
pub mod schema {
    pub use agentry_schema::*;
}

/// The engine's other parts: observers, replay, budgets (`agentry-exec`).
pub mod exec {
    pub use agentry_exec::*;
}

/// MCP servers' tools as an agent's tools, agentry as an MCP server, the proxy
/// (`agentry-mcp`).
#[cfg(feature = "mcp")]
pub mod mcp {
    pub use agentry_mcp::*;
}

/// The trace viewer (`agentry-ui`; feature `ui`).
#[cfg(feature = "ui")]
pub mod ui {
    pub use agentry_ui::*;
}

/// What most programs use: `use agentry::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Agent, CallContext, Conversation, Event, Mode, Outcome, RunError, Tool, ToolError,
        TraceKind, tool_fn,
    };
    pub use futures::StreamExt;
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

/// What `#[agentry::tool]` expands to refers to; not for use by hand.
#[doc(hidden)]
pub mod __private {
    pub use agentry_core::ToolError;
    pub use agentry_tools::{CallContext, Tool};
    pub use schemars;
    pub use serde;
    pub use serde_json;
    pub use serde_json::Value;
}
