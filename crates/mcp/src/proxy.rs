//! A policy-enforcing MCP proxy over stdio: [`Proxy`] sits between an MCP client (on this
//! process's stdin/stdout) and an MCP server (a child process), forwards every message,
//! passes each `tools/call` through a [`CallGate`] first (a denied call never reaches the
//! server: the client gets an error result with the reason), and writes all traffic to an
//! audit trail.
//!
//! Messages are newline-delimited JSON-RPC, as MCP's stdio transport defines them. The
//! proxy parses a line only to find `tools/call` requests; everything else is forwarded as
//! the same bytes.

use std::{
    collections::BTreeMap,
    io,
    process::Stdio,
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    process::Command,
    sync::Mutex,
};

/// What the gate says about one `tools/call`.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Forward it, with these arguments instead when `Some` (a rewrite).
    Forward(Option<Value>),
    /// Answer the client with an error result carrying this reason; the server never sees it.
    Refuse(String),
}

/// Decides on `tools/call` requests (the policy, in agentry's binary).
pub trait CallGate: Send + Sync {
    /// The decision on a call of `tool` with `args`, and a record for the audit trail.
    fn check(self: Arc<Self>, tool: String, args: Value) -> BoxFuture<'static, (Gate, Value)>;

    /// The tools the server listed (`tools/list`'s `tools`, as the server sent them), so a
    /// rewrite can be checked against the tool's `inputSchema`.
    fn listed(&self, _tools: &Value) {}
}

/// The `tools` of a `tools/list` result in `line`, if it is one (a cheap look first: most
/// lines are not).
fn listed_tools(line: &[u8]) -> Option<Value> {
    if !line.windows(8).any(|w| w == b"\"tools\"") {
        return None;
    }
    let mut message: Value = serde_json::from_slice(line).ok()?;
    let tools = message.pointer_mut("/result/tools")?;
    tools.is_array().then(|| tools.take())
}

/// Largest message accepted in either direction by default (16 MiB).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The proxy's settings.
pub struct Proxy {
    /// The server's command line.
    pub command: Vec<String>,
    /// Variables the server gets beyond [`INHERITED_ENV`](crate::INHERITED_ENV), all it
    /// gets of the proxy's own environment.
    pub env: BTreeMap<String, String>,
    /// The gate for `tools/call`.
    pub gate: Arc<dyn CallGate>,
    /// Where every message and decision is written, one JSON object per line (by a thread
    /// of its own, off the forwarding path).
    pub audit: Option<Box<dyn io::Write + Send>>,
    /// Largest message in bytes.
    pub max_message: usize,
}

type Shared<W> = Arc<Mutex<W>>;

/// What the audit thread writes: a message's raw bytes or a decision.
enum Body {
    Message(Vec<u8>),
    Json(Value),
}

struct Entry {
    at_us: u64,
    since_start_us: u64,
    direction: &'static str,
    body: Body,
}

/// Hands entries to the audit thread; cheap to clone, free when there is no trail.
#[derive(Clone)]
pub(crate) struct Audit {
    tx: Option<std::sync::mpsc::Sender<Entry>>,
    started: Instant,
}

impl Audit {
    pub(crate) fn start(
        out: Option<Box<dyn io::Write + Send>>,
    ) -> (Self, Option<std::thread::JoinHandle<()>>) {
        let started = Instant::now();
        let Some(mut out) = out else {
            return (Self { tx: None, started }, None);
        };
        let (tx, rx) = std::sync::mpsc::channel::<Entry>();
        let thread = std::thread::Builder::new()
            .name("agentry-audit".into())
            .spawn(move || {
                let mut w = io::BufWriter::new(&mut out);
                while let Ok(first) = rx.recv() {
                    let mut next = Some(first);
                    while let Some(e) = next {
                        let _ = write_entry(&mut w, e);
                        next = rx.try_recv().ok();
                    }
                    let _ = io::Write::flush(&mut w);
                }
            })
            .ok();
        (
            Self {
                tx: Some(tx),
                started,
            },
            thread,
        )
    }

    fn message(&self, direction: &'static str, bytes: &[u8]) {
        self.send(direction, Body::Message(bytes.to_vec()));
    }

    pub(crate) fn json(&self, direction: &'static str, body: Value) {
        self.send(direction, Body::Json(body));
    }

    fn send(&self, direction: &'static str, body: Body) {
        let Some(tx) = &self.tx else { return };
        let at_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let _ = tx.send(Entry {
            at_us,
            since_start_us: self.started.elapsed().as_micros() as u64,
            direction,
            body,
        });
    }
}

fn write_entry(w: &mut impl io::Write, e: Entry) -> io::Result<()> {
    write!(
        w,
        "{{\"at_us\":{},\"since_start_us\":{},\"direction\":\"{}\"",
        e.at_us, e.since_start_us, e.direction
    )?;
    match e.body {
        Body::Message(bytes) => {
            // A message that is JSON goes in as it is; anything else as a string.
            if serde_json::from_slice::<Value>(&bytes).is_ok() {
                w.write_all(b",\"message\":")?;
                w.write_all(&bytes)?;
            } else {
                let text = Value::String(String::from_utf8_lossy(&bytes).into_owned());
                write!(w, ",\"message\":{text}")?;
            }
        }
        Body::Json(Value::Object(map)) => {
            for (k, v) in map {
                write!(w, ",{}:{v}", Value::String(k))?;
            }
        }
        Body::Json(other) => write!(w, ",\"body\":{other}")?,
    }
    w.write_all(b"}\n")
}

/// Reads one newline-terminated line of at most `max` bytes (without the newline); `None`
/// at the end of input; `Err(len)` for a longer line, which is skipped.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Option<Result<(), usize>>> {
    buf.clear();
    let mut too_long = 0usize;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() && too_long == 0 {
                None
            } else if too_long > 0 {
                Some(Err(too_long))
            } else {
                Some(Ok(()))
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if too_long > 0 || buf.len() + chunk.len() > max {
            too_long += buf.len() + chunk.len();
            buf.clear();
        } else {
            buf.extend_from_slice(chunk);
        }
        let used = done.unwrap_or(available.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(if too_long > 0 { Err(too_long) } else { Ok(()) }));
        }
    }
}

/// Writes `line` and its newline in one write: two writes would wake the reader twice.
async fn send<W: AsyncWrite + Unpin>(w: &Shared<W>, line: &[u8]) -> io::Result<()> {
    let mut framed = Vec::with_capacity(line.len() + 1);
    framed.extend_from_slice(line);
    framed.push(b'\n');
    let mut w = w.lock().await;
    w.write_all(&framed).await?;
    w.flush().await
}

fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

impl Proxy {
    /// Runs until the client closes its input (then the server is stopped) or the server
    /// exits (then the proxy ends too). Returns the server's exit code, if it exited.
    pub async fn run<R, W>(self, client_in: R, client_out: W) -> io::Result<Option<i32>>
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let Some((program, args)) = self.command.split_first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no server command",
            ));
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        crate::child_env::apply(&mut command, &self.env);
        let mut child = command.spawn()?;
        let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("the server's pipes are missing"));
        };
        let server_in = Arc::new(Mutex::new(server_in));
        let client_out = Arc::new(Mutex::new(client_out));
        let (audit, audit_thread) = Audit::start(self.audit);
        let max = self.max_message;

        // Server → client: forwarded as they come, then audited.
        let down = {
            let client_out = Arc::clone(&client_out);
            let audit = audit.clone();
            let gate = Arc::clone(&self.gate);
            tokio::spawn(async move {
                let mut r = BufReader::with_capacity(64 * 1024, server_out);
                let mut buf = Vec::new();
                while let Ok(Some(line)) = read_line(&mut r, max, &mut buf).await {
                    match line {
                        Ok(()) => {
                            if let Some(tools) = listed_tools(&buf) {
                                gate.listed(&tools);
                            }
                            let sent = send(&client_out, &buf).await;
                            audit.message("server_to_client", &buf);
                            if sent.is_err() {
                                break;
                            }
                        }
                        Err(len) => audit.json(
                            "server_to_client",
                            json!({"dropped": format!("a message of {len} bytes, over the {max}-byte limit")}),
                        ),
                    }
                }
            })
        };

        // Client → server: tools/call through the gate.
        let mut r = BufReader::with_capacity(64 * 1024, client_in);
        let mut buf = Vec::new();
        let mut held = Vec::new();
        loop {
            let line = tokio::select! {
                line = read_line(&mut r, max, &mut buf) => line?,
                _ = child.wait() => break,
            };
            let Some(line) = line else { break };
            if let Err(len) = line {
                audit.json(
                    "client_to_server",
                    json!({"refused": format!("a message of {len} bytes, over the {max}-byte limit")}),
                );
                let e = rpc_error(
                    Value::Null,
                    -32600,
                    &format!("the message is {len} bytes; the proxy accepts at most {max}"),
                );
                let _ = send(&client_out, e.to_string().as_bytes()).await;
                continue;
            }
            let message = match serde_json::from_slice::<Value>(&buf) {
                Ok(Value::Object(m)) => m,
                Ok(Value::Array(_)) => {
                    audit.json(
                        "client_to_server",
                        json!({"refused": "a batch", "message": raw(&buf)}),
                    );
                    let e = rpc_error(
                        Value::Null,
                        -32600,
                        "the proxy does not forward JSON-RPC batches; send messages one by one",
                    );
                    let _ = send(&client_out, e.to_string().as_bytes()).await;
                    continue;
                }
                Ok(_) | Err(_) => {
                    audit.json(
                        "client_to_server",
                        json!({"refused": "not a JSON-RPC message", "message": raw(&buf)}),
                    );
                    let e = rpc_error(
                        Value::Null,
                        -32700,
                        "parse error: the proxy received a line that is not a JSON object",
                    );
                    let _ = send(&client_out, e.to_string().as_bytes()).await;
                    continue;
                }
            };
            if message.get("method").and_then(Value::as_str) != Some("tools/call") {
                let sent = send(&server_in, &buf).await;
                audit.message("client_to_server", &buf);
                if sent.is_err() {
                    break;
                }
                continue;
            }
            audit.message("client_to_server", &buf);
            // A tools/call. A decision that is ready at once (no human asked) is applied
            // here; one that waits (approval) goes to a task of its own, so the rest of the
            // traffic is not held up.
            let id = message.get("id").cloned().unwrap_or(Value::Null);
            let params = message.get("params").cloned().unwrap_or(Value::Null);
            let tool = params
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let args = params
                .get("arguments")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let pass = Passage {
                server_in: Arc::clone(&server_in),
                client_out: Arc::clone(&client_out),
                audit: audit.clone(),
            };
            let mut check = Arc::clone(&self.gate).check(tool.clone(), args);
            match futures::FutureExt::now_or_never(&mut check) {
                Some(decision) => pass.apply(id, tool, message, &buf, decision).await,
                None => {
                    let original = buf.clone();
                    held.push(tokio::spawn(async move {
                        let decision = check.await;
                        pass.apply(id, tool, message, &original, decision).await;
                    }));
                }
            }
            held.retain(|h| !h.is_finished());
        }
        // The client is gone (or the server exited): stop what is held, close the server's
        // input, give it a moment to exit, then stop it.
        for h in held {
            h.abort();
        }
        drop(server_in);
        let status =
            match tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await {
                Ok(Ok(status)) => status.code(),
                _ => {
                    let _ = child.kill().await;
                    None
                }
            };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), down).await;
        drop(audit);
        if let Some(t) = audit_thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        Ok(status)
    }
}

/// Where a decided call goes.
struct Passage<S, C> {
    server_in: Shared<S>,
    client_out: Shared<C>,
    audit: Audit,
}

impl<S: AsyncWrite + Unpin, C: AsyncWrite + Unpin> Passage<S, C> {
    async fn apply(
        &self,
        id: Value,
        tool: String,
        message: serde_json::Map<String, Value>,
        original: &[u8],
        (gate, record): (Gate, Value),
    ) {
        match gate {
            Gate::Forward(None) => {
                let _ = send(&self.server_in, original).await;
            }
            Gate::Forward(Some(rewritten)) => {
                let mut message = message;
                if let Some(Value::Object(p)) = message.get_mut("params") {
                    p.insert("arguments".into(), rewritten);
                }
                let line = serde_json::to_vec(&message).unwrap_or_default();
                let _ = send(&self.server_in, &line).await;
                self.audit.message("proxy_to_server", &line);
            }
            Gate::Refuse(reason) => {
                let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
                    "content": [{"type": "text", "text": reason}], "isError": true}});
                let line = answer.to_string();
                let _ = send(&self.client_out, line.as_bytes()).await;
                self.audit.message("proxy_to_client", line.as_bytes());
            }
        }
        self.audit.json(
            "decision",
            json!({"id": id, "tool": tool, "decision": record}),
        );
    }
}

/// A message for the audit trail: its JSON when it is JSON, else its text.
fn raw(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
