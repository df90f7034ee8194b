//! Why a model request failed: [`LlmError`].

use std::time::Duration;

/// A model request that could not produce a response.
///
/// A malformed *call* is not an error (it is a [`crate::ModelEvent::Malformed`] the model
/// reads back); these are failures of the backend or the transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The server could not be reached.
    #[error("cannot reach the model server at {url}: {reason}")]
    Connect {
        /// Where it was asked.
        url: String,
        /// The transport's reason.
        reason: String,
    },
    /// A deadline passed.
    #[error("the model server did not answer within {after:?} ({what})")]
    Timeout {
        /// Which wait timed out.
        what: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// The server answered with an error status.
    #[error("the model server answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The server's own message.
        message: String,
    },
    /// The server sent something that is not the protocol.
    #[error("the model server sent a malformed response: {message}; bytes: {bytes}")]
    Protocol {
        /// What was wrong.
        message: String,
        /// The offending bytes (escaped, cut to a few hundred).
        bytes: String,
    },
    /// The response ended before it was complete.
    #[error("the response ended early: {message}; last bytes: {bytes}")]
    Truncated {
        /// What was missing.
        message: String,
        /// The last bytes received.
        bytes: String,
    },
    /// The backend is set up wrongly (missing model name, bad URL).
    #[error("model configuration: {0}")]
    Config(String),
    /// The local model could not load or run (the message says how to fix it).
    #[error("local model: {0}")]
    Local(String),
    /// The prompt does not fit the model's context.
    #[error(
        "the prompt is {tokens} tokens and the context holds {context}; shorten the conversation or raise --context"
    )]
    TooLong {
        /// Prompt tokens.
        tokens: usize,
        /// Context size.
        context: usize,
    },
    /// The simulated model's script has no turn for this conversation.
    #[error("simulated model: {0}")]
    Script(String),
}

impl LlmError {
    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Protocol { .. }
            | Self::Truncated { .. }
            | Self::Config(_)
            | Self::Script(_)
            | Self::Local(_)
            | Self::TooLong { .. } => false,
        }
    }

    pub(crate) fn protocol(message: impl Into<String>, bytes: &[u8]) -> Self {
        Self::Protocol {
            message: message.into(),
            bytes: show_bytes(bytes),
        }
    }
}

/// Bytes as escaped text, cut to at most 300 characters.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let escaped: String = text.escape_debug().collect();
    if escaped.chars().count() <= 300 {
        return format!("\"{escaped}\"");
    }
    let head: String = escaped.chars().take(300).collect();
    format!("\"{head}…\" ({} bytes)", bytes.len())
}
