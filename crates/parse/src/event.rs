//! What the parser hands back: [`Event`]s carrying [`ParsedCall`]s, text and [`Malformed`] spans.

use std::{fmt, ops::Range, str::FromStr};

use agentry_core::{ToolCall, ToolError};
use serde::Serialize;
use serde_json::Value;

/// A syntax models use to write tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Detect every format below, wherever it appears.
    Auto,
    /// OpenAI `tool_calls` JSON: `{"tool_calls":[{"function":{"name","arguments"}}]}`.
    OpenAi,
    /// Hermes / Qwen2.5: `<tool_call>{"name":…,"arguments":…}</tool_call>`.
    Hermes,
    /// Llama 3.x JSON: `{"name":…,"parameters":…}`, optionally after `<|python_tag|>`.
    Llama,
    /// Mistral: `[TOOL_CALLS][{…}]` or `[TOOL_CALLS]name[ARGS]{…}`.
    Mistral,
    /// Python call syntax: `[get_weather(city="Paris"), math.factorial(n=5)]`.
    Python,
    /// ReAct text: `Action: name` then `Action Input: {…}`.
    React,
}

impl Format {
    /// Every concrete format (all but [`Format::Auto`]).
    pub const CONCRETE: [Format; 6] = [
        Self::OpenAi,
        Self::Hermes,
        Self::Llama,
        Self::Mistral,
        Self::Python,
        Self::React,
    ];

    /// The name used on the command line (`openai`, `hermes`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::OpenAi => "openai",
            Self::Hermes => "hermes",
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Python => "python",
            Self::React => "react",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = [
            Self::Auto,
            Self::OpenAi,
            Self::Hermes,
            Self::Llama,
            Self::Mistral,
            Self::Python,
            Self::React,
        ];
        all.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            format!("unknown format `{s}`; expected one of auto, openai, hermes, llama, mistral, python, react")
        })
    }
}

/// Something the parser fixed in a call so that it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// A comma before `}` or `]` was dropped.
    TrailingComma,
    /// A `'single-quoted'` string was read as a JSON string.
    SingleQuotes,
    /// An unquoted object key was quoted.
    UnquotedKey,
    /// `True`, `False` or `None` was read as `true`, `false`, `null`.
    PythonLiteral,
    /// A raw control character (a newline, a tab) inside a string was escaped.
    ControlCharacter,
    /// A number in a form JSON forbids (`+1`, `.5`, `1.`, `0x1F`) was read.
    NumberForm,
    /// Brackets the output left open at its end were closed.
    ClosedBrackets,
    /// A Markdown code fence around the call was removed.
    CodeFence,
    /// A closing tag (`</tool_call>`) was missing.
    MissingCloseTag,
    /// A JSON literal (`true`, `null`) inside Python call syntax was read as Python's.
    JsonLiteralInPython,
}

impl Repair {
    /// One sentence saying what was repaired.
    pub fn describe(self) -> &'static str {
        match self {
            Self::TrailingComma => "removed a trailing comma",
            Self::SingleQuotes => "read single-quoted strings as JSON strings",
            Self::UnquotedKey => "quoted unquoted object keys",
            Self::PythonLiteral => "read Python True/False/None as JSON true/false/null",
            Self::ControlCharacter => "escaped raw control characters inside strings",
            Self::NumberForm => "read numbers written in a form JSON does not allow",
            Self::ClosedBrackets => "closed brackets left open at the end of the output",
            Self::CodeFence => "removed a Markdown code fence around the call",
            Self::MissingCloseTag => "the closing tag was missing",
            Self::JsonLiteralInPython => "read JSON true/false/null inside a Python call",
        }
    }
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A call read from model text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedCall {
    /// The id the model gave the call, if its format carries one.
    pub id: Option<String>,
    /// The tool's name.
    pub name: String,
    /// The arguments; always a JSON object.
    pub arguments: Value,
    /// The syntax it was written in.
    pub format: Format,
    /// Byte range of the call in the whole input.
    pub span: Range<usize>,
    /// What had to be fixed to read it; empty for well-formed output.
    pub repairs: Vec<Repair>,
}

impl ParsedCall {
    /// Whether the call needed no repair.
    pub fn is_clean(&self) -> bool {
        self.repairs.is_empty()
    }

    /// The call as a [`ToolCall`], using `fallback_id` when the model gave none.
    pub fn into_tool_call(self, fallback_id: impl FnOnce() -> String) -> ToolCall {
        ToolCall {
            id: self.id.unwrap_or_else(fallback_id),
            name: self.name,
            arguments: self.arguments,
        }
    }
}

/// Text that looked like a call but could not be read as one, even after repairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformed {
    /// Byte range of the offending text in the whole input.
    pub span: Range<usize>,
    /// The offending text (at most [`Malformed::MAX_EXCERPT`] bytes of it).
    pub excerpt: String,
    /// Why it could not be read, as a sentence a model can act on.
    pub reason: String,
    /// The syntax it seemed to be written in.
    pub format: Format,
    /// The sentence the model read, when this was read back from a trace.
    #[serde(skip)]
    recorded: Option<String>,
}

impl Malformed {
    /// Longest excerpt kept; longer offending text is cut in the middle.
    pub const MAX_EXCERPT: usize = 400;

    /// Offending `text` at `span`, unreadable because of `reason`.
    pub fn new(span: Range<usize>, text: &str, reason: impl Into<String>, format: Format) -> Self {
        Self {
            span,
            excerpt: excerpt(text),
            reason: reason.into(),
            format,
            recorded: None,
        }
    }

    /// Malformed output read back from a trace: the sentence the model read then, which
    /// [`Malformed::to_tool_error`] gives again word for word (for replays).
    pub fn recorded(sentence: impl Into<String>) -> Self {
        let sentence = sentence.into();
        Self {
            span: 0..0,
            excerpt: String::new(),
            reason: sentence.clone(),
            format: Format::Auto,
            recorded: Some(sentence),
        }
    }

    /// The error the model reads, naming the offending text.
    pub fn to_tool_error(&self) -> ToolError {
        if let Some(sentence) = &self.recorded {
            return ToolError::malformed(sentence.clone());
        }
        ToolError::malformed(format!(
            "could not read a {} tool call: {}. The text was: {}",
            self.format, self.reason, self.excerpt
        ))
    }
}

fn excerpt(text: &str) -> String {
    if text.len() <= Malformed::MAX_EXCERPT {
        return text.to_owned();
    }
    let half = Malformed::MAX_EXCERPT / 2;
    let mut head = half;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - half;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{} … [{} bytes] … {}",
        &text[..head],
        text.len() - head - (text.len() - tail),
        &text[tail..]
    )
}

/// One thing the parser found in the stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Text outside any call, in order.
    Text {
        /// The text.
        text: String,
    },
    /// A complete call.
    Call(ParsedCall),
    /// Text that looked like a call but could not be read.
    Malformed(Malformed),
}

/// Why the parser cannot go on at all (as opposed to one malformed call).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input grew past the configured limit.
    #[error("the input is larger than the limit of {limit} bytes")]
    InputTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The input bytes are not UTF-8.
    #[error("the input is not valid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// More input arrived after [`crate::CallParser::finish`].
    #[error("the parser was already finished")]
    Finished,
}
