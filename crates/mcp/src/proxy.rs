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
    /// The decision on a call of `tool` with `args`, and a line for the audit trail.
    fn check<'a>(&'a self, tool: &'a str, args: &'a Value) -> BoxFuture<'a, (Gate, Value)>;
}

/// Largest message accepted in either direction by default (16 MiB).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The proxy's settings.
pub struct Proxy {
    /// The server's command line.
    pub command: Vec<String>,
    /// The gate for `tools/call`.
    pub gate: Arc<dyn CallGate>,
    /// Where every message and decision is written, one JSON object per line.
    pub audit: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    /// Largest message in bytes.
    pub max_message: usize,
}

type Shared<W> = Arc<Mutex<W>>;

struct Audit {
    out: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    started: Instant,
}

impl Audit {
    async fn write(&mut self, direction: &str, body: Value) {
        let Some(out) = &mut self.out else { return };
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut line = json!({
            "at_us": at,
            "since_start_us": self.started.elapsed().as_micros() as u64,
            "direction": direction,
        });
        if let (Value::Object(l), Value::Object(b)) = (&mut line, body) {
            l.extend(b);
        }
        let mut text = line.to_string();
        text.push('\n');
        let _ = out.write_all(text.as_bytes()).await;
    }
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
        let (chunk, done) = match memchr(b'\n', available) {
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

fn memchr(b: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&x| x == b)
}

async fn send<W: AsyncWrite + Unpin>(w: &Shared<W>, line: &[u8]) -> io::Result<()> {
    let mut w = w.lock().await;
    w.write_all(line).await?;
    w.write_all(b"\n").await?;
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
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("the server's pipes are missing"));
        };
        let server_in = Arc::new(Mutex::new(server_in));
        let client_out = Arc::new(Mutex::new(client_out));
        let audit = Arc::new(Mutex::new(Audit {
            out: self.audit,
            started: Instant::now(),
        }));
        let max = self.max_message;

        // Server → client: forwarded as they come.
        let down = {
            let client_out = Arc::clone(&client_out);
            let audit = Arc::clone(&audit);
            tokio::spawn(async move {
                let mut r = BufReader::with_capacity(64 * 1024, server_out);
                let mut buf = Vec::new();
                while let Ok(Some(line)) = read_line(&mut r, max, &mut buf).await {
                    match line {
                        Ok(()) => {
                            audit
                                .lock()
                                .await
                                .write("server_to_client", json!({"message": raw(&buf)}))
                                .await;
                            if send(&client_out, &buf).await.is_err() {
                                break;
                            }
                        }
                        Err(len) => {
                            audit
                                .lock()
                                .await
                                .write("server_to_client", json!({"dropped": format!("a message of {len} bytes, over the {max}-byte limit")}))
                                .await;
                        }
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
                audit
                    .lock()
                    .await
                    .write("client_to_server", json!({"refused": format!("a message of {len} bytes, over the {max}-byte limit")}))
                    .await;
                let e = rpc_error(
                    Value::Null,
                    -32600,
                    &format!("the message is {len} bytes; the proxy accepts at most {max}"),
                );
                let _ = send(&client_out, e.to_string().as_bytes()).await;
                continue;
            }
            let parsed: Result<Value, _> = serde_json::from_slice(&buf);
            let message = match parsed {
                Ok(Value::Object(m)) => m,
                Ok(Value::Array(_)) => {
                    audit
                        .lock()
                        .await
                        .write(
                            "client_to_server",
                            json!({"refused": "a batch", "message": raw(&buf)}),
                        )
                        .await;
                    let e = rpc_error(
                        Value::Null,
                        -32600,
                        "the proxy does not forward JSON-RPC batches; send messages one by one",
                    );
                    let _ = send(&client_out, e.to_string().as_bytes()).await;
                    continue;
                }
                Ok(_) | Err(_) => {
                    audit
                        .lock()
                        .await
                        .write(
                            "client_to_server",
                            json!({"refused": "not a JSON-RPC message", "message": raw(&buf)}),
                        )
                        .await;
                    let e = rpc_error(
                        Value::Null,
                        -32700,
                        "parse error: the proxy received a line that is not a JSON object",
                    );
                    let _ = send(&client_out, e.to_string().as_bytes()).await;
                    continue;
                }
            };
            audit
                .lock()
                .await
                .write("client_to_server", json!({"message": raw(&buf)}))
                .await;
            if message.get("method").and_then(Value::as_str) != Some("tools/call") {
                if send(&server_in, &buf).await.is_err() {
                    break;
                }
                continue;
            }
            // A tools/call: decide off the reading loop, so a call held for approval does
            // not hold up the rest of the traffic.
            let gate = Arc::clone(&self.gate);
            let server_in = Arc::clone(&server_in);
            let client_out = Arc::clone(&client_out);
            let audit = Arc::clone(&audit);
            held.push(tokio::spawn(async move {
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
                let (gate, record) = gate.check(&tool, &args).await;
                audit
                    .lock()
                    .await
                    .write(
                        "decision",
                        json!({"id": id, "tool": tool, "decision": record}),
                    )
                    .await;
                match gate {
                    Gate::Forward(None) => {
                        let _ = send(
                            &server_in,
                            &serde_json::to_vec(&message).unwrap_or_default(),
                        )
                        .await;
                    }
                    Gate::Forward(Some(rewritten)) => {
                        let mut message = message;
                        if let Some(Value::Object(p)) = message.get_mut("params") {
                            p.insert("arguments".into(), rewritten);
                        }
                        let line = serde_json::to_vec(&message).unwrap_or_default();
                        audit
                            .lock()
                            .await
                            .write("proxy_to_server", json!({"message": raw(&line)}))
                            .await;
                        let _ = send(&server_in, &line).await;
                    }
                    Gate::Refuse(reason) => {
                        let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
                            "content": [{"type": "text", "text": reason}], "isError": true}});
                        let line = answer.to_string();
                        audit
                            .lock()
                            .await
                            .write("proxy_to_client", json!({"message": line}))
                            .await;
                        let _ = send(&client_out, line.as_bytes()).await;
                    }
                }
            }));
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
        if let Some(out) = &mut audit.lock().await.out {
            let _ = out.flush().await;
        }
        Ok(status)
    }
}

/// A message for the audit trail: its JSON when it is JSON, else its text.
fn raw(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
