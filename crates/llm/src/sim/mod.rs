//! A deterministic simulated model: [`SimModel`] in process, [`SimServer`] over HTTP.
//!
//! A [`Script`] picks the reply for each conversation; a latency model (time to first token,
//! tokens per second, seeded jitter) spaces a real token stream, so a streaming consumer sees
//! calls arrive over time exactly as from a real model. Both transports build the same
//! chat-completion chunks ([`plan`]); in process they go straight to the assembler the HTTP
//! client uses, over HTTP they are served as an OpenAI-compatible event stream.
//!
//! # Tokens
//!
//! Usage is counted with one documented rule, close to BPE tokenizers on English and JSON: a
//! token is up to four consecutive letters or digits (with one leading space attached), or
//! any other single character. Prompt tokens are the tokens of every message's text, of each
//! earlier call's name and arguments, and of the tools' JSON.

mod script;
#[cfg(feature = "server")]
mod server;

use std::time::{Duration, Instant};

use agentry_core::{Message, ToolSpec};
use agentry_parse::Format;
use serde_json::{Value, json};

use crate::{
    ChatRequest, LlmError, Model, ModelStream, Usage,
    assemble::{Assembler, call_id},
    rng::SplitMix64,
};

pub use script::{Faults, Latency, Reply, Script, ScriptCall, Turn, When};
#[cfg(feature = "server")]
pub use server::{SimServer, sse_frames};

/// Splits text into tokens by the rule in the module docs.
pub fn tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / 3 + 1);
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let mut end = start + c.len_utf8();
        let word_start = if c == ' ' {
            match chars.peek() {
                Some(&(_, n)) if n.is_alphanumeric() => {
                    let (i, n) = chars.next().unwrap_or((end, n));
                    end = i + n.len_utf8();
                    true
                }
                _ => false,
            }
        } else {
            c.is_alphanumeric()
        };
        if word_start {
            let mut len = 1;
            while len < 4 {
                match chars.peek() {
                    Some(&(i, n)) if n.is_alphanumeric() => {
                        end = i + n.len_utf8();
                        chars.next();
                        len += 1;
                    }
                    _ => break,
                }
            }
        }
        out.push(&text[start..end]);
    }
    out
}

/// The number of tokens in `text` by the rule in the module docs.
pub fn count_tokens(text: &str) -> u64 {
    tokenize(text).len() as u64
}

/// Prompt tokens of a request by the rule in the module docs.
pub fn prompt_tokens(messages: &[Message], tools: &[ToolSpec]) -> u64 {
    let mut n = 0;
    for m in messages {
        n += m.text().map_or(0, count_tokens);
        if let Message::Assistant { tool_calls, .. } = m {
            for c in tool_calls {
                n += count_tokens(&c.name) + count_tokens(&c.arguments.to_string());
            }
        }
    }
    for t in tools {
        n += count_tokens(&serde_json::to_string(t).unwrap_or_default());
    }
    n
}

/// The chunks of one simulated response, each with when it is due after the request.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `(due, delta)`: the `delta` object of each streamed chunk.
    pub deltas: Vec<(Duration, Value)>,
    /// When the response ends (the last token's due time).
    pub end: Duration,
    /// Why it ends.
    pub finish_reason: &'static str,
    /// Tokens used.
    pub usage: Usage,
    /// The whole reply as a non-streamed `message`.
    pub message: Value,
}

/// Plans the response of `script` to `request`.
pub fn plan(script: &Script, messages: &[Message], tools: &[ToolSpec]) -> Result<Plan, LlmError> {
    let reply = script.reply(messages)?;
    let mut pieces: Vec<Value> = Vec::new();
    let content = render_text(&script.format, &reply);
    let mut first = true;
    for token in tokenize(&content) {
        let mut delta = json!({"content": token});
        if first {
            delta["role"] = json!("assistant");
            first = false;
        }
        pieces.push(delta);
    }
    let mut tool_calls = Vec::new();
    let mut completion_tokens = pieces.len() as u64;
    if script.format == "openai" {
        for (index, (name, args)) in reply.calls.iter().enumerate() {
            let id = call_id();
            let args_text = args.to_string();
            tool_calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": args_text}}));
            let mut head = json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
            if first {
                head["role"] = json!("assistant");
                first = false;
            }
            pieces.push(head);
            completion_tokens += count_tokens(name);
            for token in tokenize(&args_text) {
                pieces.push(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": token}}]}),
                );
                completion_tokens += 1;
            }
        }
    }
    let l = script.latency;
    let mut rng = SplitMix64::new(l.seed ^ (messages.len() as u64).wrapping_mul(0x9E37_79B9));
    let mut jittered = |secs: f64| -> f64 {
        if l.jitter == 0.0 {
            secs
        } else {
            secs * (1.0 + l.jitter * (2.0 * rng.next_f64() - 1.0))
        }
    };
    let mut due = Duration::from_secs_f64(jittered(l.ttft_ms / 1000.0));
    let gap = if l.tokens_per_s > 0.0 {
        1.0 / l.tokens_per_s
    } else {
        0.0
    };
    let mut deltas = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.into_iter().enumerate() {
        if i > 0 {
            due += Duration::from_secs_f64(jittered(gap));
        }
        deltas.push((due, piece));
    }
    let finish_reason = if !tool_calls.is_empty()
        || (script.format != "openai" && script.format != "text" && !reply.calls.is_empty())
    {
        "tool_calls"
    } else {
        "stop"
    };
    let mut message = json!({"role": "assistant", "content": if content.is_empty() { Value::Null } else { json!(content) }});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Ok(Plan {
        end: due,
        deltas,
        finish_reason,
        usage: Usage {
            prompt_tokens: prompt_tokens(messages, tools),
            completion_tokens,
        },
        message,
    })
}

/// The reply's text, with its calls written in `format` when that is a text format.
fn render_text(format: &str, reply: &Reply) -> String {
    let mut out = reply.text.clone();
    if reply.calls.is_empty() || format == "openai" || format == "text" {
        return out;
    }
    let sep = |out: &mut String| {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    };
    match format {
        "hermes" => {
            for (name, args) in &reply.calls {
                sep(&mut out);
                out.push_str(&format!(
                    "<tool_call>\n{}\n</tool_call>",
                    json!({"name": name, "arguments": args})
                ));
            }
        }
        "llama" => {
            sep(&mut out);
            let parts: Vec<String> = reply
                .calls
                .iter()
                .map(|(n, a)| json!({"name": n, "parameters": a}).to_string())
                .collect();
            out.push_str(&format!("<|python_tag|>{}", parts.join("; ")));
        }
        "mistral" => {
            sep(&mut out);
            let list: Vec<Value> = reply
                .calls
                .iter()
                .map(|(n, a)| json!({"name": n, "arguments": a}))
                .collect();
            out.push_str(&format!("[TOOL_CALLS]{}", Value::Array(list)));
        }
        "python" => {
            sep(&mut out);
            let calls: Vec<String> = reply
                .calls
                .iter()
                .map(|(n, a)| format!("{n}({})", python_kwargs(a)))
                .collect();
            out.push_str(&format!("[{}]", calls.join(", ")));
        }
        _ => {
            for (name, args) in &reply.calls {
                sep(&mut out);
                out.push_str(&format!("Action: {name}\nAction Input: {args}"));
            }
        }
    }
    out
}

fn python_kwargs(args: &Value) -> String {
    match args {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", python_literal(v)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

fn python_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(python_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The format the client should read calls in for a script's `format`.
pub fn text_format(format: &str) -> Option<Format> {
    format
        .parse::<Format>()
        .ok()
        .filter(|f| !matches!(f, Format::Auto | Format::OpenAi))
}

/// The simulated model in process: the script's replies, streamed with its latency.
#[derive(Debug, Clone)]
pub struct SimModel {
    script: std::sync::Arc<Script>,
}

impl SimModel {
    /// A model playing `script`.
    pub fn new(script: Script) -> Self {
        Self {
            script: std::sync::Arc::new(script),
        }
    }

    /// A model playing the script in `path` (`.yaml`, `.yml` or `.json`).
    pub fn from_file(path: &std::path::Path) -> Result<Self, LlmError> {
        Script::from_file(path).map(Self::new)
    }

    /// The script.
    pub fn script(&self) -> &Script {
        &self.script
    }
}

impl Model for SimModel {
    fn name(&self) -> String {
        format!("sim:{}", self.script.name())
    }

    fn stream(&self, request: ChatRequest) -> ModelStream {
        let script = std::sync::Arc::clone(&self.script);
        Box::pin(async_stream::try_stream! {
            let started = Instant::now();
            let plan = plan(&script, &request.messages, &request.tools)?;
            let mut assembler = Assembler::new(text_format(&script.format), started);
            for (due, delta) in plan.deltas {
                tokio::time::sleep_until((started + due).into()).await;
                let chunk = json!({"choices": [{"index": 0, "delta": delta}]});
                for event in assembler.chunk(&chunk, b"")? {
                    yield event;
                }
            }
            tokio::time::sleep_until((started + plan.end).into()).await;
            let last = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": plan.finish_reason}],
                              "usage": {"prompt_tokens": plan.usage.prompt_tokens, "completion_tokens": plan.usage.completion_tokens}});
            for event in assembler.chunk(&last, b"")? {
                yield event;
            }
            for event in assembler.finish(1) {
                yield event;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FinishReason, ModelEvent, complete};
    use pretty_assertions::assert_eq;

    #[test]
    fn tokens_follow_the_documented_rule() {
        assert_eq!(
            tokenize("Hello, weather in Paris!"),
            vec!["Hell", "o", ",", " weat", "her", " in", " Pari", "s", "!"]
        );
        assert_eq!(
            tokenize("{\"city\": \"Oslo\"}"),
            vec!["{", "\"", "city", "\"", ":", " ", "\"", "Oslo", "\"", "}"]
        );
        assert_eq!(count_tokens(""), 0);
        assert_eq!(tokenize("été 42"), vec!["été", " 42"]);
    }

    fn weather() -> Script {
        Script::parse(
            r#"{"latency": {"ttft_ms": 30, "tokens_per_s": 1000},
                "turns": [
                  {"when": {"last": "user"}, "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
                  {"when": {"last": "tool"}, "text": "The weather: {{tool}}"}]}"#,
            "test",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn in_process_model_streams_calls_and_text() {
        let model = SimModel::new(weather());
        let t = Instant::now();
        let r = complete(&model, ChatRequest::new(vec![Message::user("weather?")]))
            .await
            .unwrap();
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert_eq!(r.calls.len(), 1);
        assert_eq!(r.calls[0].call.name, "get_weather");
        assert_eq!(r.calls[0].call.arguments, json!({"city": "Paris"}));
        assert_eq!(r.completion.finish_reason, FinishReason::ToolCalls);
        assert!(r.completion.usage.completion_tokens > 5);
        let ttft = r.completion.timing.time_to_first_token.unwrap();
        assert!(ttft >= Duration::from_millis(30), "{ttft:?}");

        let mut convo = vec![Message::user("weather?"), r.message()];
        convo.push(Message::tool(r.calls[0].call.id.clone(), "sunny"));
        let r2 = complete(&model, ChatRequest::new(convo)).await.unwrap();
        assert_eq!(r2.text, "The weather: sunny");
        assert_eq!(r2.completion.finish_reason, FinishReason::Stop);
    }

    #[tokio::test]
    async fn text_formats_are_parsed_back() {
        for format in ["hermes", "llama", "mistral", "python", "react"] {
            let script = Script::parse(
                &format!(r#"{{"format": "{format}", "turns": [{{"text": "Sure.", "calls": [{{"name": "f", "arguments": {{"x": 1, "s": "a b"}}}}, {{"name": "g", "arguments": {{}}}}]}}]}}"#),
                "test",
            )
            .unwrap();
            let model = SimModel::new(script);
            let mut stream = model.stream(ChatRequest::new(vec![Message::user("go")]));
            let mut calls = Vec::new();
            while let Some(e) = futures::StreamExt::next(&mut stream).await {
                match e.unwrap() {
                    ModelEvent::Call(c) => calls.push((c.call.name, c.call.arguments)),
                    ModelEvent::Malformed(m) => panic!("{format}: {m:?}"),
                    _ => {}
                }
            }
            assert_eq!(calls.len(), 2, "{format}");
            assert_eq!(
                calls[0],
                ("f".to_owned(), json!({"x": 1, "s": "a b"})),
                "{format}"
            );
        }
    }

    #[tokio::test]
    async fn unmatched_conversation_is_a_clear_error() {
        let script =
            Script::parse(r#"{"turns": [{"when": {"turn": 1}, "text": "hi"}]}"#, "t").unwrap();
        let model = SimModel::new(script);
        let convo = vec![
            Message::user("a"),
            Message::assistant("hi"),
            Message::user("b"),
        ];
        let err = complete(&model, ChatRequest::new(convo)).await.unwrap_err();
        assert!(
            err.to_string().contains("no turn for assistant turn 2"),
            "{err}"
        );
    }
}
