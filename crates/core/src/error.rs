//! Why a call did not produce a value: [`ErrorKind`] and [`ToolError`].
//!
//! A tool error is data that goes back to the model, not an `Err` that ends a run. The
//! sentence the model reads and the cause the operator reads are separate fields, so a raw
//! source error (a stack trace, a path on the host) never reaches the model.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a tool call did not produce a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Arguments failed the tool's JSON Schema.
    InvalidArguments,
    /// The model named a tool it was not offered.
    UnknownTool,
    /// The call outlived its deadline.
    Timeout,
    /// The tool ran and failed, or panicked.
    ToolFailed,
    /// Policy refused the call.
    Denied,
    /// The backend (MCP server, subprocess) cannot take calls now.
    Unavailable,
    /// Model output could not be read as a call.
    Malformed,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 7] = [
        Self::InvalidArguments,
        Self::UnknownTool,
        Self::Timeout,
        Self::ToolFailed,
        Self::Denied,
        Self::Unavailable,
        Self::Malformed,
    ];

    /// Whether an idempotent tool may be retried after this error.
    pub fn is_retryable(self) -> bool {
        match self {
            Self::Timeout | Self::Unavailable => true,
            Self::InvalidArguments
            | Self::UnknownTool
            | Self::ToolFailed
            | Self::Denied
            | Self::Malformed => false,
        }
    }

    /// The snake_case name used on the wire and in traces (`invalid_arguments`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArguments => "invalid_arguments",
            Self::UnknownTool => "unknown_tool",
            Self::Timeout => "timeout",
            Self::ToolFailed => "tool_failed",
            Self::Denied => "denied",
            Self::Unavailable => "unavailable",
            Self::Malformed => "malformed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call: its kind, a sentence the model can act on, a cause for the trace.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {for_model}")]
pub struct ToolError {
    kind: ErrorKind,
    for_model: String,
    #[source]
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ToolError {
    /// An error of `kind` whose sentence for the model is `for_model`.
    pub fn new(kind: ErrorKind, for_model: impl Into<String>) -> Self {
        Self {
            kind,
            for_model: for_model.into(),
            cause: None,
        }
    }

    /// Arguments failed validation; `why` names the path and the rule.
    pub fn invalid_arguments(why: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArguments, why)
    }

    /// The model called `name`, which is not among `offered`.
    pub fn unknown_tool<S: AsRef<str>>(name: &str, offered: &[S]) -> Self {
        let list: Vec<&str> = offered.iter().map(AsRef::as_ref).collect();
        let sentence = if list.is_empty() {
            format!("there is no tool named `{name}`; no tools are available")
        } else {
            format!(
                "there is no tool named `{name}`; available tools: {}",
                list.join(", ")
            )
        };
        Self::new(ErrorKind::UnknownTool, sentence)
    }

    /// The call did not finish within `millis` milliseconds.
    pub fn timeout(millis: u64) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("the call did not finish within {millis} ms"),
        )
    }

    /// The tool ran and failed; `why` is what the model should know.
    pub fn failed(why: impl Into<String>) -> Self {
        Self::new(ErrorKind::ToolFailed, why)
    }

    /// Policy refused the call for `reason`.
    pub fn denied(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Denied, reason)
    }

    /// The tool's backend cannot take calls now.
    pub fn unavailable(why: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, why)
    }

    /// Model output could not be read as a call.
    pub fn malformed(why: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, why)
    }

    /// Attaches the operator-facing cause; it is recorded, never shown to the model.
    #[must_use]
    pub fn with_cause(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Why the call failed.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The sentence the model reads.
    pub fn for_model(&self) -> &str {
        &self.for_model
    }

    /// The operator-facing cause, if one was attached.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }
}

/// A message becomes a [`ErrorKind::ToolFailed`] error, so a tool can write
/// `Err(format!(…))?` or `Err("no such city")?`.
impl From<String> for ToolError {
    fn from(why: String) -> Self {
        Self::failed(why)
    }
}

impl From<&str> for ToolError {
    fn from(why: &str) -> Self {
        Self::failed(why)
    }
}

impl Clone for ToolError {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            for_model: self.for_model.clone(),
            cause: self
                .cause
                .as_ref()
                .map(|c| Box::new(CauseText(c.to_string())) as _),
        }
    }
}

impl PartialEq for ToolError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.for_model == other.for_model
            && self.cause.as_ref().map(ToString::to_string)
                == other.cause.as_ref().map(ToString::to_string)
    }
}

/// A cause kept as text (after a clone or a round trip through a trace).
#[derive(Debug)]
struct CauseText(String);

impl fmt::Display for CauseText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CauseText {}

#[derive(Serialize, Deserialize)]
struct ToolErrorWire {
    kind: ErrorKind,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
}

impl Serialize for ToolError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ToolErrorWire {
            kind: self.kind,
            message: self.for_model.clone(),
            cause: self.cause.as_ref().map(ToString::to_string),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ToolError {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = ToolErrorWire::deserialize(d)?;
        Ok(Self {
            kind: w.kind,
            for_model: w.message,
            cause: w.cause.map(|c| Box::new(CauseText(c)) as _),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn kind_names_match_serde() {
        for kind in ErrorKind::ALL {
            let wire = serde_json::to_value(kind).unwrap();
            assert_eq!(wire, serde_json::Value::String(kind.as_str().to_owned()));
            assert_eq!(serde_json::from_value::<ErrorKind>(wire).unwrap(), kind);
        }
    }

    #[test]
    fn only_transient_kinds_are_retryable() {
        let retryable: Vec<_> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.is_retryable())
            .collect();
        assert_eq!(retryable, vec![ErrorKind::Timeout, ErrorKind::Unavailable]);
    }

    #[test]
    fn cause_is_kept_apart_from_the_model_sentence() {
        let io = std::io::Error::other("/etc/secret: permission denied");
        let err = ToolError::failed("could not read the file").with_cause(io);
        assert_eq!(err.for_model(), "could not read the file");
        assert_eq!(err.to_string(), "tool_failed: could not read the file");
        assert_eq!(
            err.cause().unwrap().to_string(),
            "/etc/secret: permission denied"
        );

        let wire = serde_json::to_string(&err).unwrap();
        let back: ToolError = serde_json::from_str(&wire).unwrap();
        assert_eq!(back, err);
        assert_eq!(back.clone(), err);
    }

    #[test]
    fn unknown_tool_lists_what_is_offered() {
        let err = ToolError::unknown_tool("get_wether", &["get_weather", "search"]);
        assert_eq!(err.kind(), ErrorKind::UnknownTool);
        assert_eq!(
            err.for_model(),
            "there is no tool named `get_wether`; available tools: get_weather, search"
        );
    }
}
