//! Turning chat-completion chunks into [`ModelEvent`]s: [`Assembler`].
//!
//! Text deltas go through `agentry-parse`'s [`CallParser`] (when the backend reads calls
//! from text); each native tool call's argument fragments go through an [`ArgumentStream`],
//! so a call is handed out the moment its arguments close, not when the response ends.
//! The same assembler serves the HTTP client and the in-process simulated model, so both
//! are measured on one code path.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use agentry_core::ToolCall;
use agentry_parse::{ArgumentStream, CallParser, Event, Format, Malformed};
use serde_json::Value;

use crate::{
    Completion, FinishReason, LlmError, ModelCall, ModelEvent, Timing, Usage, error::show_bytes,
};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a call the model wrote as text (servers give ids to native calls).
pub(crate) fn call_id() -> String {
    format!("call_{:08x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

#[derive(Debug)]
struct Pending {
    id: Option<String>,
    name: String,
    args: ArgumentStream,
    emitted: bool,
}

/// Assembles one response.
#[derive(Debug)]
pub(crate) struct Assembler {
    text_calls: Option<CallParser>,
    calls: Vec<Pending>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    started: Instant,
    first_token: Option<Instant>,
    deltas: u64,
    saw_any: bool,
    /// Calls read from text so far.
    text_calls_seen: usize,
}

impl Assembler {
    /// An assembler reading calls from text in `text_format` (or not at all).
    pub(crate) fn new(text_format: Option<Format>, started: Instant) -> Self {
        Self {
            text_calls: text_format.map(CallParser::new),
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
            started,
            first_token: None,
            deltas: 0,
            saw_any: false,
            text_calls_seen: 0,
        }
    }

    /// Reads one piece of generated text (one token's worth) from an in-process backend.
    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    pub(crate) fn text_piece(&mut self, text: &str) -> Vec<ModelEvent> {
        self.saw_any = true;
        self.token();
        let mut out = Vec::new();
        if !text.is_empty() {
            self.text(text, &mut out);
        }
        out
    }

    /// Sets the usage an in-process backend counted.
    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    pub(crate) fn set_usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }

    /// Sets why an in-process backend stopped.
    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    pub(crate) fn set_finish_reason(&mut self, reason: FinishReason) {
        self.finish_reason = Some(reason);
    }

    /// Whether any chunk arrived.
    pub(crate) fn saw_any(&self) -> bool {
        self.saw_any
    }

    /// Reads one streamed chunk (`raw` is its text, quoted in errors).
    pub(crate) fn chunk(&mut self, chunk: &Value, raw: &[u8]) -> Result<Vec<ModelEvent>, LlmError> {
        self.saw_any = true;
        if let Some(err) = chunk.get("error") {
            return Err(server_error(err, raw));
        }
        let mut out = Vec::new();
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(read_usage(usage));
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return Ok(out);
        };
        let delta = choice
            .get("delta")
            .or_else(|| choice.get("message"))
            .unwrap_or(&Value::Null);
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.token();
            self.text(text, &mut out);
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (position, call) in calls.iter().enumerate() {
                self.token();
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(position, |i| i as usize);
                self.call_delta(index, call, raw, &mut out)?;
            }
        } else if let Some(call) = delta.get("function_call").filter(|c| c.is_object()) {
            self.token();
            let wrapped = serde_json::json!({"function": call});
            self.call_delta(0, &wrapped, raw, &mut out)?;
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(FinishReason::from_wire(reason));
        }
        Ok(out)
    }

    fn token(&mut self) {
        self.deltas += 1;
        if self.first_token.is_none() {
            self.first_token = Some(Instant::now());
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<ModelEvent>) {
        match &mut self.text_calls {
            None => out.push(ModelEvent::Text(text.to_owned())),
            Some(parser) => {
                // The parser's only error is input past its size limit; keep the text as text then.
                match parser.push(text) {
                    Ok(events) => {
                        let before = out.len();
                        out.extend(events.into_iter().map(event));
                        self.text_calls_seen += out[before..]
                            .iter()
                            .filter(|e| matches!(e, ModelEvent::Call(_)))
                            .count();
                    }
                    Err(_) => out.push(ModelEvent::Text(text.to_owned())),
                }
            }
        }
    }

    fn call_delta(
        &mut self,
        index: usize,
        call: &Value,
        raw: &[u8],
        out: &mut Vec<ModelEvent>,
    ) -> Result<(), LlmError> {
        if index > self.calls.len() + 64 {
            return Err(LlmError::protocol(
                format!("tool call index {index} skips ahead"),
                raw,
            ));
        }
        // A new index means the calls before it are finished.
        if index >= self.calls.len() {
            for i in 0..self.calls.len() {
                self.finish_call(i, out);
            }
            while self.calls.len() <= index {
                self.calls.push(Pending {
                    id: None,
                    name: String::new(),
                    args: ArgumentStream::new(),
                    emitted: false,
                });
            }
        }
        let pending = &mut self.calls[index];
        if let Some(id) = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            pending.id = Some(id.to_owned());
        }
        let function = call.get("function").unwrap_or(&Value::Null);
        if let Some(name) = function.get("name").and_then(Value::as_str) {
            pending.name.push_str(name);
        }
        let fragment = match function.get("arguments") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(obj @ Value::Object(_)) => Some(obj.to_string()),
            Some(other) => {
                return Err(LlmError::protocol(
                    format!("tool call arguments must be a string, not {other}"),
                    raw,
                ));
            }
        };
        if let Some(fragment) = fragment
            && let Some(result) = pending.args.push(&fragment)
        {
            self.emit(index, result, out);
        }
        Ok(())
    }

    fn finish_call(&mut self, index: usize, out: &mut Vec<ModelEvent>) {
        if let Some(result) = self.calls[index].args.finish() {
            self.emit(index, result, out);
        }
    }

    fn emit(
        &mut self,
        index: usize,
        result: agentry_parse::ArgumentsResult,
        out: &mut Vec<ModelEvent>,
    ) {
        let pending = &mut self.calls[index];
        if pending.emitted {
            return;
        }
        pending.emitted = true;
        let id = pending.id.clone().unwrap_or_else(call_id);
        match result {
            Ok((arguments, repairs)) if !pending.name.is_empty() => {
                out.push(ModelEvent::Call(ModelCall {
                    call: ToolCall {
                        id,
                        name: pending.name.clone(),
                        arguments,
                    },
                    repairs,
                }))
            }
            Ok(_) => out.push(ModelEvent::Malformed(malformed(
                pending,
                "the tool call has no name",
            ))),
            Err(why) => out.push(ModelEvent::Malformed(malformed(pending, &why.to_string()))),
        }
    }

    /// Ends the response: what the text parser and open calls still hold, then `Done`.
    pub(crate) fn finish(&mut self, attempts: u32) -> Vec<ModelEvent> {
        let mut out = Vec::new();
        if let Some(parser) = &mut self.text_calls
            && let Ok(events) = parser.finish()
        {
            out.extend(events.into_iter().map(event));
        }
        for i in 0..self.calls.len() {
            self.finish_call(i, &mut out);
        }
        let now = Instant::now();
        let usage = self.usage.unwrap_or(Usage {
            prompt_tokens: 0,
            completion_tokens: self.deltas,
        });
        let ttft = self.first_token.map(|t| t.duration_since(self.started));
        let per_token = match (self.first_token, usage.completion_tokens) {
            (Some(first), n) if n > 1 => Some(now.duration_since(first) / (n as u32 - 1).max(1)),
            _ => None,
        };
        let has_calls = self.text_calls_seen > 0
            || self.calls.iter().any(|c| c.emitted)
            || out.iter().any(|e| matches!(e, ModelEvent::Call(_)));
        let finish_reason = match self.finish_reason {
            Some(FinishReason::Stop) if has_calls => FinishReason::ToolCalls,
            Some(r) => r,
            None if has_calls => FinishReason::ToolCalls,
            None => FinishReason::Stop,
        };
        out.push(ModelEvent::Done(Completion {
            finish_reason,
            usage,
            timing: Timing {
                time_to_first_token: ttft,
                time_per_output_token: per_token,
                total: now.duration_since(self.started),
                attempts,
            },
        }));
        out
    }

    /// Whether the server said why it stopped.
    pub(crate) fn has_finish_reason(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// Whether a native call is still waiting for its arguments to close.
    pub(crate) fn has_open_call(&self) -> bool {
        self.calls.iter().any(|c| !c.emitted)
    }
}

fn event(e: Event) -> ModelEvent {
    match e {
        Event::Text { text } => ModelEvent::Text(text),
        Event::Call(c) => {
            let repairs = c.repairs.clone();
            ModelEvent::Call(ModelCall {
                call: c.into_tool_call(call_id),
                repairs,
            })
        }
        Event::Malformed(m) => ModelEvent::Malformed(m),
    }
}

fn malformed(pending: &Pending, why: &str) -> Malformed {
    let text = pending.args.text();
    let reason = if pending.name.is_empty() {
        why.to_owned()
    } else {
        format!("`{}`: {why}", pending.name)
    };
    Malformed::new(0..text.len(), text, reason, Format::OpenAi)
}

pub(crate) fn read_usage(u: &Value) -> Usage {
    let get = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        prompt_tokens: get("prompt_tokens"),
        completion_tokens: get("completion_tokens"),
    }
}

/// An `{"error": {...}}` object as an error naming the server's message.
pub(crate) fn server_error(err: &Value, raw: &[u8]) -> LlmError {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| err.as_str().map(str::to_owned))
        .unwrap_or_else(|| show_bytes(raw));
    let status = err
        .get("code")
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .unwrap_or(500) as u16;
    LlmError::Status { status, message }
}
