//! What goes into a model and what comes out: [`ChatRequest`], [`ModelEvent`], [`Completion`].

use std::time::Duration;

use agentry_core::{Message, ToolCall, ToolSpec};
use agentry_parse::{Malformed, Repair};
use serde::{Deserialize, Serialize};

/// Whether and how the model must call tools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call at least one tool.
    Required,
    /// The model must call this tool.
    Function(String),
}

/// One request to a model: the conversation, the tools on offer and sampling settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Whether it must call them.
    pub tool_choice: ToolChoice,
    /// Whether several calls may come in one turn (`None`: the server's default).
    pub parallel_tool_calls: Option<bool>,
    /// Cap on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// The form the reply must take, beyond what the messages say; backends that constrain
    /// decoding enforce it, others rely on the prompt.
    pub shape: Option<ReplyShape>,
    /// The W3C `traceparent` of the request's span, sent to backends that take headers, so
    /// a model server that traces joins the run's trace.
    pub traceparent: Option<String>,
}

/// A form a reply must take (see [`ChatRequest::shape`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyShape {
    /// A compiled-mode plan over these tools: numbered calls in Python syntax, `$N`
    /// references to earlier tasks, ending with `join()`.
    Plan(Vec<ToolSpec>),
    /// Text that starts with one of these prefixes (a joiner's `Answer:` or `Replan:`).
    StartsWith(Vec<String>),
}

impl ChatRequest {
    /// A request with `messages` and no tools.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// Offers `tools` to the model.
    #[must_use]
    pub fn tools(mut self, tools: Vec<ToolSpec>) -> Self {
        self.tools = tools;
        self
    }

    /// Asks for a reply of this shape.
    #[must_use]
    pub fn shape(mut self, shape: ReplyShape) -> Self {
        self.shape = Some(shape);
        self
    }

    /// Sets the `traceparent` the request carries.
    #[must_use]
    pub fn traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// Sets the tool choice.
    #[must_use]
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = choice;
        self
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It finished its answer.
    #[default]
    Stop,
    /// It stopped to have tools called.
    ToolCalls,
    /// It hit the token limit.
    Length,
    /// The server filtered the output.
    ContentFilter,
}

impl FinishReason {
    /// Reads the server's `finish_reason` string.
    pub fn from_wire(s: &str) -> Self {
        match s {
            "tool_calls" | "function_call" => Self::ToolCalls,
            "length" => Self::Length,
            "content_filter" => Self::ContentFilter,
            _ => Self::Stop,
        }
    }
}

/// Tokens a request cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt (conversation and tools).
    pub prompt_tokens: u64,
    /// Tokens the model generated.
    pub completion_tokens: u64,
}

/// When things happened during a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// From sending the request to the first generated text or call fragment.
    pub time_to_first_token: Option<Duration>,
    /// Mean time per output token after the first.
    pub time_per_output_token: Option<Duration>,
    /// From sending the request to its end.
    pub total: Duration,
    /// Attempts made (more than 1 after retries).
    pub attempts: u32,
}

/// A call the model made, with what the parser had to repair to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCall {
    /// The call, with an id (the server's, or one made up for calls parsed from text).
    pub call: ToolCall,
    /// Repairs made to read it; empty for clean output.
    pub repairs: Vec<Repair>,
}

/// One thing a model stream produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    /// Generated text (outside any call).
    Text(String),
    /// A complete call, as soon as its last fragment arrived.
    Call(ModelCall),
    /// Output that looked like a call but could not be read.
    Malformed(Malformed),
    /// The end of the response.
    Done(Completion),
}

/// How a response ended, with its cost and timing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Tokens used.
    pub usage: Usage,
    /// Timing of the request.
    pub timing: Timing,
}

/// A whole response, collected from a stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// Text outside calls.
    pub text: String,
    /// Calls, in the order they completed.
    pub calls: Vec<ModelCall>,
    /// Output that could not be read as calls.
    pub malformed: Vec<Malformed>,
    /// How it ended.
    pub completion: Completion,
}

impl Response {
    /// The assistant message to append to the conversation.
    pub fn message(&self) -> Message {
        let content = (!self.text.is_empty()).then(|| self.text.clone());
        Message::Assistant {
            content,
            tool_calls: self.calls.iter().map(|c| c.call.clone()).collect(),
        }
    }
}
