//! The simulated model as an OpenAI-compatible HTTP server: [`SimServer`].
//!
//! `POST /v1/chat/completions` (streamed or not), `GET /v1/models`, `GET /health`, on the
//! address it is given (loopback in tests and benchmarks), to requests whose `Host` it is
//! reached by ([`AllowedHosts`]; others get 403, against DNS rebinding). Faults from the script
//! (`fail_first`, `hang_after_chunks`, `close_after_chunks`, `chunk_bytes`, `garbage`) let
//! client tests exercise retries, hangs, cut connections and awkward chunk boundaries.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use agentry_core::{AllowedHosts, Message, ToolSpec};
use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{Plan, Script, plan};

struct Shared {
    script: Script,
    requests: AtomicU64,
    responses: AtomicU64,
    open_streams: std::sync::atomic::AtomicI64,
}

/// Counts a streamed response as open until it is dropped (finished or cut by the client).
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running simulated-model server; dropping it (or [`SimServer::close`]) stops it.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Serves `script` on `addr` (port 0 picks a free port), to the hosts
    /// [`AllowedHosts::for_bind`] names.
    pub async fn bind(script: Script, addr: SocketAddr) -> std::io::Result<Self> {
        Self::bind_allowing(script, addr, AllowedHosts::for_bind(addr.ip())).await
    }

    /// Serves `script` on `addr` to requests whose `Host` is one of `hosts`.
    pub async fn bind_allowing(
        script: Script,
        addr: SocketAddr,
        hosts: AllowedHosts,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script,
            requests: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            open_streams: std::sync::atomic::AtomicI64::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .route("/v1/models", get(models))
            .route("/health", get(|| async { "ok" }))
            .fallback(no_route)
            .layer(middleware::from_fn_with_state(Arc::new(hosts), host_guard))
            .with_state(Arc::clone(&shared));
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.cancelled().await });
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "sim server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// Requests received so far (failed ones included).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Streamed responses still being sent.
    pub fn open_streams(&self) -> i64 {
        self.shared.open_streams.load(Ordering::Relaxed)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients use (`http://127.0.0.1:PORT/v1`).
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stops accepting, lets open responses finish for up to `grace`, then cuts them.
    pub async fn close_with_timeout(mut self, grace: Duration) {
        self.stop.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            task.abort();
        }
    }

    /// Stops the server, giving open responses one second.
    pub async fn close(self) {
        self.close_with_timeout(Duration::from_secs(1)).await;
    }

    /// Waits until the server stops (after [`SimServer::close`] elsewhere or a fatal error).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Answers only requests whose `Host` the server is reached by.
async fn host_guard(
    State(hosts): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|h| hosts.allows(h)) {
        return next.run(request).await;
    }
    error(
        StatusCode::FORBIDDEN,
        "this server answers only the names it is reached by (the Host is not allowed)",
    )
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "code": status.as_u16()}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("script", &self.script.name())
            .finish()
    }
}

fn usage_json(plan: &Plan) -> Value {
    json!({"prompt_tokens": plan.usage.prompt_tokens, "completion_tokens": plan.usage.completion_tokens,
           "total_tokens": plan.usage.prompt_tokens + plan.usage.completion_tokens})
}

/// The event-stream frames of a planned response, each with when it is due: one chunk per
/// token, then the `finish_reason` chunk, the usage chunk (if asked for) and `[DONE]`.
pub fn sse_frames(
    plan: Plan,
    id: &str,
    model: &str,
    include_usage: bool,
) -> Vec<(Duration, String)> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let usage = usage_json(&plan);
    let mut frames: Vec<(Duration, String)> = Vec::with_capacity(plan.deltas.len() + 1);
    for (due, delta) in plan.deltas {
        frames.push((due, format!("data: {}\n\n", chunk(delta, Value::Null))));
    }
    let mut tail = format!("data: {}\n\n", chunk(json!({}), json!(plan.finish_reason)));
    if include_usage {
        let last = json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage});
        tail.push_str(&format!("data: {last}\n\n"));
    }
    tail.push_str("data: [DONE]\n\n");
    frames.push((plan.end, tail));
    frames
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let body = json!({"object": "list", "data": [{"id": format!("sim:{}", shared.script.name()), "object": "model", "owned_by": "agentry"}]});
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Any other path: a JSON error naming what is served, as the other errors are.
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no route for {method} {}; the simulated model serves POST /v1/chat/completions and GET /v1/models",
            uri.path()
        ),
    )
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // A body over the limit (413) or unreadable is answered in JSON, like every error here.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let started = Instant::now();
    let n = shared.requests.fetch_add(1, Ordering::Relaxed);
    let faults = &shared.script.faults;
    if n < faults.fail_first {
        let status = StatusCode::from_u16(faults.fail_status.unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(
            status,
            format!("injected failure {} of {}", n + 1, faults.fail_first),
        );
        if let Some(secs) = faults.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the request body is not JSON: {e}"),
            );
        }
    };
    let messages: Vec<Message> =
        match serde_json::from_value(request.get("messages").cloned().unwrap_or(Value::Null)) {
            Ok(m) => m,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`messages` is not a list of chat messages: {e}"),
                );
            }
        };
    let tools: Vec<ToolSpec> = request
        .get("tools")
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default();
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("sim")
        .to_owned();
    let plan = match plan(&shared.script, &messages, &tools) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let id = format!(
        "chatcmpl-sim-{}",
        shared.responses.fetch_add(1, Ordering::Relaxed)
    );
    let usage = usage_json(&plan);
    if !stream {
        tokio::time::sleep_until((started + plan.end).into()).await;
        let body = json!({"id": id, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": plan.message, "finish_reason": plan.finish_reason}], "usage": usage});
        return (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let faults = faults.clone();
    shared.open_streams.fetch_add(1, Ordering::Relaxed);
    let guard = OpenGuard(Arc::clone(&shared));
    let events = async_stream::stream! {
        let _guard = guard;
        let mut sent = 0usize;
        if let Some(garbage) = &faults.garbage {
            yield Ok::<Bytes, std::io::Error>(Bytes::from(format!("data: {garbage}\n\n")));
        }
        let frames = sse_frames(plan, &id, &model, include_usage);
        for (due, frame) in frames {
            if faults.hang_after_chunks == Some(sent) {
                std::future::pending::<()>().await;
            }
            if faults.close_after_chunks == Some(sent) {
                yield Err(std::io::Error::other("injected: connection cut mid-stream"));
                return;
            }
            tokio::time::sleep_until((started + due).into()).await;
            match faults.chunk_bytes.filter(|n| *n > 0) {
                None => yield Ok(Bytes::from(frame)),
                Some(n) => {
                    for piece in frame.as_bytes().chunks(n) {
                        yield Ok(Bytes::copy_from_slice(piece));
                        tokio::task::yield_now().await;
                    }
                }
            }
            sent += 1;
        }
    };
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
