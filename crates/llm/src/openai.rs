//! The OpenAI-compatible chat-completions client: [`OpenAi`].
//!
//! Talks to anything that serves `POST /v1/chat/completions` (vLLM, llama.cpp's server,
//! Ollama, LM Studio, OpenAI). Streaming by default: SSE chunks are decoded as they arrive and
//! each call is handed out the moment its arguments close. Tools are sent natively (`tools`,
//! `tool_choice`, `parallel_tool_calls`) or rendered into the prompt for models without
//! native support ([`ToolMode::Prompted`]). Connection failures, timeouts, 429 and 5xx are
//! retried with exponential backoff and full jitter, honouring `Retry-After`; other 4xx are
//! not, and surface with the server's message. Dropping the stream closes the connection.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use agentry_parse::Format;
use futures::StreamExt;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use crate::{
    ChatRequest, LlmError, Model, ModelStream, ToolChoice,
    assemble::{Assembler, server_error},
    error::show_bytes,
    prompt::render_messages,
    rng::SplitMix64,
    sse::SseDecoder,
};

/// How tools reach the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolMode {
    /// The server's own tool calling (`tools` in the request, `tool_calls` in the reply).
    Native,
    /// Tools rendered into the system prompt; calls parsed from text in this format.
    Prompted(Format),
}

/// Retry policy for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff before the first retry; doubles each time.
    pub base: Duration,
    /// Longest backoff (and longest `Retry-After` honoured).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base: Duration::from_millis(250),
            max: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): full jitter over an exponential cap,
    /// or the server's `Retry-After` when it gave one.
    pub fn backoff(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut SplitMix64,
    ) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max);
        }
        let cap = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max);
        cap.mul_f64(0.5 + 0.5 * rng.next_f64())
    }
}

/// Settings of an [`OpenAi`] client.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL up to and including `/v1`.
    pub base_url: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Model name sent in each request.
    pub model: String,
    /// Native or prompted tool calling.
    pub tool_mode: ToolMode,
    /// Stream the response (SSE) or wait for it whole.
    pub stream: bool,
    /// Deadline for connecting.
    pub connect_timeout: Duration,
    /// Deadline for the response headers.
    pub response_timeout: Duration,
    /// Longest silence allowed between two chunks of a streamed body.
    pub idle_timeout: Duration,
    /// Retries for transient failures.
    pub retry: RetryPolicy,
}

impl OpenAiConfig {
    /// A config for `model` at `base_url`.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            tool_mode: ToolMode::Native,
            stream: true,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }

    /// Reads `OPENAI_BASE_URL` (default `https://api.openai.com/v1`), `OPENAI_API_KEY` and
    /// `AGENTRY_MODEL`; `model` overrides the last when given.
    pub fn from_env(model: Option<&str>) -> Result<Self, LlmError> {
        let base =
            std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".into());
        let model = match model {
            Some(m) => m.to_owned(),
            None => std::env::var("AGENTRY_MODEL").map_err(|_| {
                LlmError::Config(
                    "no model name: pass one or set AGENTRY_MODEL (e.g. gpt-4o-mini)".into(),
                )
            })?,
        };
        let mut cfg = Self::new(base, model);
        cfg.api_key = std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        Ok(cfg)
    }

    /// Sets the API key.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the tool mode.
    #[must_use]
    pub fn tool_mode(mut self, mode: ToolMode) -> Self {
        self.tool_mode = mode;
        self
    }

    /// Streams (the default) or not.
    #[must_use]
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the response-header and between-chunk deadlines.
    #[must_use]
    pub fn timeouts(mut self, response: Duration, idle: Duration) -> Self {
        self.response_timeout = response;
        self.idle_timeout = idle;
        self
    }
}

/// An OpenAI-compatible chat-completions backend.
#[derive(Debug, Clone)]
pub struct OpenAi {
    cfg: Arc<OpenAiConfig>,
    http: reqwest::Client,
}

impl OpenAi {
    /// A client with `cfg`.
    pub fn new(cfg: OpenAiConfig) -> Result<Self, LlmError> {
        if !cfg.base_url.starts_with("http://") && !cfg.base_url.starts_with("https://") {
            return Err(LlmError::Config(format!(
                "base URL `{}` must start with http:// or https://",
                cfg.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            cfg: Arc::new(cfg),
            http,
        })
    }

    /// The request body for `request`, as sent.
    pub fn body(&self, request: &ChatRequest) -> Value {
        body(&self.cfg, request)
    }
}

fn body(cfg: &OpenAiConfig, request: &ChatRequest) -> Value {
    let mut body = json!({"model": cfg.model, "stream": cfg.stream});
    match cfg.tool_mode {
        ToolMode::Native => {
            body["messages"] = serde_json::to_value(&request.messages).unwrap_or(Value::Null);
            if !request.tools.is_empty() {
                let tools: Vec<Value> = request
                    .tools
                    .iter()
                    .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                    .collect();
                body["tools"] = Value::Array(tools);
                body["tool_choice"] = match &request.tool_choice {
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Required => json!("required"),
                    ToolChoice::Function(name) => {
                        json!({"type": "function", "function": {"name": name}})
                    }
                };
                if let Some(parallel) = request.parallel_tool_calls {
                    body["parallel_tool_calls"] = json!(parallel);
                }
            }
        }
        ToolMode::Prompted(_) => {
            body["messages"] = Value::Array(render_messages(
                &request.messages,
                &request.tools,
                &request.tool_choice,
            ));
        }
    }
    if cfg.stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(n) = request.max_tokens {
        body["max_tokens"] = json!(n);
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    body
}

impl Model for OpenAi {
    fn name(&self) -> String {
        format!("openai:{}", self.cfg.model)
    }

    fn stream(&self, request: ChatRequest) -> ModelStream {
        let cfg = Arc::clone(&self.cfg);
        let http = self.http.clone();
        Box::pin(async_stream::try_stream! {
            let started = Instant::now();
            let body = body(&cfg, &request);
            let (response, attempts) = send(&cfg, &http, &body, request.traceparent.as_deref()).await?;
            let text_format = match cfg.tool_mode {
                ToolMode::Native => None,
                ToolMode::Prompted(f) => Some(f),
            };
            let mut assembler = Assembler::new(text_format, started);
            if !cfg.stream {
                let bytes = tokio::time::timeout(cfg.response_timeout, response.bytes())
                    .await
                    .map_err(|_| LlmError::Timeout { what: "reading the response body", after: cfg.response_timeout })?
                    .map_err(|e| LlmError::Truncated { message: format!("the connection failed while reading the body: {e}"), bytes: String::new() })?;
                let value: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| LlmError::protocol(format!("the response is not JSON ({e})"), &bytes))?;
                for event in assembler.chunk(&value, &bytes)? {
                    yield event;
                }
                for event in assembler.finish(attempts) {
                    yield event;
                }
                return;
            }
            let mut body = response.bytes_stream();
            let mut decoder = StreamDecoder::with_assembler(assembler);
            while !decoder.is_done() {
                let next = tokio::time::timeout(cfg.idle_timeout, body.next())
                    .await
                    .map_err(|_| LlmError::Timeout { what: "waiting for the next streamed chunk", after: cfg.idle_timeout })?;
                let bytes = match next {
                    None => break,
                    Some(Ok(bytes)) => bytes,
                    Some(Err(e)) => Err(LlmError::Truncated {
                        message: format!("the connection failed mid-stream ({e})"),
                        bytes: show_bytes(decoder.last_bytes()),
                    })?,
                };
                for event in decoder.push(&bytes)? {
                    yield event;
                }
            }
            for event in decoder.finish(attempts)? {
                yield event;
            }
        })
    }
}

/// Decodes a streamed chat-completions body (server-sent events) into [`crate::ModelEvent`]s.
///
/// The client's own per-token work: framing, JSON, call assembly. Public so a recorded body
/// can be replayed through exactly the code that read it live.
#[derive(Debug)]
pub struct StreamDecoder {
    sse: SseDecoder,
    assembler: Assembler,
    done: bool,
    last: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder reading calls from text in `text_format` (or only native tool calls).
    pub fn new(text_format: Option<Format>) -> Self {
        Self::with_assembler(Assembler::new(text_format, Instant::now()))
    }

    fn with_assembler(assembler: Assembler) -> Self {
        Self {
            sse: SseDecoder::new(),
            assembler,
            done: false,
            last: Vec::new(),
        }
    }

    /// Whether `[DONE]` arrived.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The last bytes pushed, for error messages.
    pub fn last_bytes(&self) -> &[u8] {
        &self.last
    }

    /// Feeds body bytes; returns the events they completed. Bytes after `[DONE]` are ignored.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<crate::ModelEvent>, LlmError> {
        if self.done {
            return Ok(Vec::new());
        }
        self.last.clear();
        self.last
            .extend_from_slice(&bytes[bytes.len().saturating_sub(300)..]);
        let mut out = Vec::new();
        for event in self.sse.push(bytes)? {
            if event.data.trim() == "[DONE]" {
                self.done = true;
                break;
            }
            self.data(&event.data, &mut out)?;
        }
        Ok(out)
    }

    fn data(&mut self, data: &str, out: &mut Vec<crate::ModelEvent>) -> Result<(), LlmError> {
        let value: Value = serde_json::from_str(data).map_err(|e| {
            LlmError::protocol(
                format!("a streamed chunk is not JSON ({e})"),
                data.as_bytes(),
            )
        })?;
        out.extend(self.assembler.chunk(&value, data.as_bytes())?);
        Ok(())
    }

    /// Ends the body: an error if it stopped before `finish_reason` and `[DONE]`, else the
    /// remaining events and `Done`.
    pub fn finish(&mut self, attempts: u32) -> Result<Vec<crate::ModelEvent>, LlmError> {
        let mut out = Vec::new();
        if !self.done {
            if let Some(event) = self.sse.finish()
                && event.data.trim() != "[DONE]"
            {
                self.data(&event.data, &mut out)?;
            }
            if !self.assembler.has_finish_reason() {
                let message = if self.assembler.has_open_call() {
                    "the stream ended inside a tool call, before `finish_reason` and [DONE]"
                } else if self.assembler.saw_any() {
                    "the stream ended before `finish_reason` and [DONE]"
                } else {
                    "the stream ended before any chunk"
                };
                return Err(LlmError::Truncated {
                    message: message.into(),
                    bytes: show_bytes(&self.last),
                });
            }
        }
        out.extend(self.assembler.finish(attempts));
        Ok(out)
    }
}

/// Sends the request (with the `traceparent` header when there is one), retrying transient
/// failures; returns the response and attempts made.
async fn send(
    cfg: &OpenAiConfig,
    http: &reqwest::Client,
    body: &Value,
    traceparent: Option<&str>,
) -> Result<(reqwest::Response, u32), LlmError> {
    let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
    let payload = serde_json::to_vec(body)
        .map_err(|e| LlmError::Config(format!("cannot encode the request: {e}")))?;
    let mut rng = SplitMix64::from_clock();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut req = http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(payload.clone());
        if let Some(key) = &cfg.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(traceparent) = traceparent {
            req = req.header("traceparent", traceparent);
        }
        let (error, retry_after) = match tokio::time::timeout(cfg.response_timeout, req.send())
            .await
        {
            Err(_) => (
                LlmError::Timeout {
                    what: "waiting for the response headers",
                    after: cfg.response_timeout,
                },
                None,
            ),
            Ok(Err(e)) => (transport_error(&url, &e, cfg), None),
            Ok(Ok(response)) if response.status().is_success() => return Ok((response, attempt)),
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64);
                let bytes = tokio::time::timeout(Duration::from_secs(10), response.bytes())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                let message = match serde_json::from_slice::<Value>(&bytes) {
                    Ok(v) if v.get("error").is_some() => match server_error(&v["error"], &bytes) {
                        LlmError::Status { message, .. } => message,
                        other => other.to_string(),
                    },
                    _ if bytes.is_empty() => "(no body)".to_owned(),
                    _ => String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned(),
                };
                // A 404 from a base URL without its version part is the usual mistake.
                let message = if status == 404 {
                    let hint = if cfg.base_url.trim_end_matches('/').ends_with("/v1") {
                        String::new()
                    } else {
                        format!(
                            "; most servers serve it under /v1 (try --base-url {}/v1)",
                            cfg.base_url.trim_end_matches('/')
                        )
                    };
                    format!("{message} (POST {url}{hint})")
                } else {
                    message
                };
                (LlmError::Status { status, message }, retry_after)
            }
        };
        if !error.is_retryable() || attempt > cfg.retry.max_retries {
            return Err(error);
        }
        let wait = cfg.retry.backoff(attempt, retry_after, &mut rng);
        tracing::debug!(attempt, ?wait, %error, "retrying model request");
        tokio::time::sleep(wait).await;
    }
}

fn transport_error(url: &str, e: &reqwest::Error, cfg: &OpenAiConfig) -> LlmError {
    if e.is_timeout() {
        return LlmError::Timeout {
            what: "connecting",
            after: cfg.connect_timeout,
        };
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    LlmError::Connect {
        url: url.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentry_core::{Message, ToolSpec};
    use pretty_assertions::assert_eq;

    #[test]
    fn native_body_has_tools_and_choice_without_extensions() {
        let cfg = OpenAiConfig::new("http://127.0.0.1:1/v1", "m");
        let spec = ToolSpec::new("f", "F.", json!({"type": "object"}))
            .output_schema(json!({"type": "string"}));
        let mut req = ChatRequest::new(vec![Message::user("hi")])
            .tools(vec![spec])
            .tool_choice(ToolChoice::Function("f".into()));
        req.parallel_tool_calls = Some(true);
        assert_eq!(
            body(&cfg, &req),
            json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "hi"}],
                   "tools": [{"type": "function", "function": {"name": "f", "description": "F.", "parameters": {"type": "object"}}}],
                   "tool_choice": {"type": "function", "function": {"name": "f"}},
                   "parallel_tool_calls": true})
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let mut rng = SplitMix64::new(1);
        for attempt in 1..=6 {
            let cap = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            let wait = policy.backoff(attempt, None, &mut rng);
            assert!(
                wait >= cap / 2 && wait <= cap,
                "attempt {attempt}: {wait:?} vs cap {cap:?}"
            );
        }
        assert_eq!(
            policy.backoff(1, Some(Duration::from_millis(30)), &mut rng),
            Duration::from_millis(30)
        );
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(99)), &mut rng),
            Duration::from_secs(1)
        );
    }
}
