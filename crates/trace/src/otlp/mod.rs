//! Runs as OpenTelemetry spans, exported over OTLP ([`OtlpExporter`]) or written as OTLP JSON
//! ([`otlp_json`]), in the GenAI semantic conventions with OpenInference's attributes beside.
//!
//! The exporter is fed the same events as the trace store. Recording an event costs the
//! engine a clone and a send on a bounded queue; spans are assembled and exported in
//! batches on the exporter's own thread. A full queue drops the event and counts it; a
//! collector that is down costs a warning in the log and a count, never the run.
//!
//! # Example
//!
//! ```
//! use agentry_trace::otlp::OtlpConfig;
//! // Nothing is exported unless OTEL_EXPORTER_OTLP_ENDPOINT (or the traces endpoint) is set.
//! let env = |name: &str| match name {
//!     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".to_owned()),
//!     _ => None,
//! };
//! let cfg = OtlpConfig::from_vars(env)?.expect("an endpoint is set");
//! assert_eq!(cfg.traces_url(), "http://127.0.0.1:4318/v1/traces");
//! # Ok::<(), agentry_trace::otlp::OtlpError>(())
//! ```

mod spans;

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, SyncSender, TryRecvError, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use agentry_core::{TraceEvent, TraceKind};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::{
    Resource,
    trace::{SpanData, SpanExporter},
};

use spans::Spans;

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (port 4317 by convention).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318; the specification's default).
    HttpProtobuf,
    /// OTLP over HTTP with JSON bodies.
    HttpJson,
}

impl FromStr for OtlpProtocol {
    type Err = OtlpError;

    fn from_str(s: &str) -> Result<Self, OtlpError> {
        match s.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "http/json" => Ok(Self::HttpJson),
            other => Err(OtlpError::Config(format!(
                "unknown OTLP protocol `{other}`: use `grpc`, `http/protobuf` or `http/json`"
            ))),
        }
    }
}

/// Where and how runs are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The collector's base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`): `http://host:4318` for HTTP
    /// (spans go to `/v1/traces` under it), `http://host:4317` for gRPC.
    pub endpoint: String,
    /// Whether `endpoint` is the full traces URL (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), used
    /// as it is.
    pub endpoint_is_full: bool,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// Headers (or gRPC metadata) sent with each export, such as an API key.
    pub headers: Vec<(String, String)>,
    /// The `service.name` of the spans' resource.
    pub service_name: String,
    /// Whether tasks, messages, arguments and results go into spans (off unless asked:
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`).
    pub capture_content: bool,
    /// Events the queue holds before new ones are dropped (and counted).
    pub queue: usize,
    /// Deadline of one export.
    pub timeout: Duration,
}

impl OtlpConfig {
    /// Exports to `endpoint` (a base URL) over HTTP/protobuf, with the defaults.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            endpoint_is_full: false,
            protocol: OtlpProtocol::HttpProtobuf,
            headers: Vec::new(),
            service_name: "agentry".into(),
            capture_content: false,
            queue: 65_536,
            timeout: Duration::from_secs(10),
        }
    }

    /// The configuration the standard environment variables give; `None` when they ask for
    /// no export (no endpoint set, `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`).
    pub fn from_env() -> Result<Option<Self>, OtlpError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`OtlpConfig::from_env`] reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OtlpError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let yes = |name: &str| set(name).is_some_and(|v| is_true(&v));
        if yes("OTEL_SDK_DISABLED")
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none")
        {
            return Ok(None);
        }
        let mut cfg = match (
            set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(full), _) => Self {
                endpoint_is_full: true,
                ..Self::new(full.trim())
            },
            (None, Some(base)) => Self::new(base.trim()),
            (None, None) => return Ok(None),
        };
        if let Some(p) =
            set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
        {
            cfg.protocol = p.parse()?;
        }
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(h) = set(name) {
                cfg.headers.extend(parse_headers(name, &h)?);
            }
        }
        if let Some(name) = set("OTEL_SERVICE_NAME") {
            cfg.service_name = name.trim().to_owned();
        }
        if let Some(ms) =
            set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").or_else(|| set("OTEL_EXPORTER_OTLP_TIMEOUT"))
        {
            let ms: u64 = ms.trim().parse().map_err(|_| {
                OtlpError::Config(format!(
                    "OTEL_EXPORTER_OTLP_TIMEOUT must be milliseconds, not `{ms}`"
                ))
            })?;
            cfg.timeout = Duration::from_millis(ms.max(1));
        }
        cfg.capture_content = yes("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT");
        Ok(Some(cfg))
    }

    /// The URL spans are sent to: the traces path under the base URL over HTTP, the base
    /// URL itself over gRPC or when it is already the full URL.
    pub fn traces_url(&self) -> String {
        if self.endpoint_is_full || self.protocol == OtlpProtocol::Grpc {
            self.endpoint.clone()
        } else {
            format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
        }
    }

    fn resource(&self) -> Resource {
        Resource::builder()
            .with_service_name(self.service_name.clone())
            .build()
    }
}

fn is_true(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1")
}

/// Headers written as the OTLP exporter specification writes them (`key=value,key2=value2`,
/// values percent-encoded); `var` names where they came from, for the error.
pub fn parse_headers(var: &str, s: &str) -> Result<Vec<(String, String)>, OtlpError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| OtlpError::Config(format!("{var}: `{pair}` is not `key=value`")))?;
            Ok((k.trim().to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(Ok(b)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The configuration is not usable.
    #[error("OpenTelemetry export: {0}")]
    Config(String),
    /// The OTLP exporter could not be built (a malformed endpoint, say).
    #[error("OpenTelemetry export to {endpoint}: {reason}")]
    Build {
        /// Where it was to export.
        endpoint: String,
        /// The exporter's reason.
        reason: String,
    },
    /// The exporter's thread could not start.
    #[error("OpenTelemetry export: cannot start its thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the exporter did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpStats {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans lost because an export failed (collector down, rejected, too slow).
    pub failed: u64,
    /// Events dropped because the queue was full (their spans are incomplete or missing).
    pub dropped: u64,
    /// The last export's error, if the last export failed.
    pub last_error: Option<String>,
}

// Not boxed: a box would be one more allocation per event on the engine's path.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Event(TraceEvent, Option<SystemTime>),
    Flush(mpsc::Sender<()>),
    Stop,
}

#[derive(Default)]
struct Shared {
    /// Set when the exporter is asked to stop: what cannot be sent within one export's
    /// deadline from then is counted as lost, so stopping never hangs on a slow collector.
    stopping: std::sync::atomic::AtomicBool,
    exported: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Exports runs' spans to an OTLP collector, from their events ([`OtlpExporter::record`]).
pub struct OtlpExporter {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    url: String,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Spans sent per export at most.
const BATCH: usize = 512;
/// Longest a finished span waits before it is sent.
const LINGER: Duration = Duration::from_millis(500);
/// How long the exporter's thread sleeps when the queue is empty.
const POLL: Duration = Duration::from_millis(10);

impl OtlpExporter {
    /// Starts exporting as `cfg` says; fails when the exporter cannot be built (nothing is
    /// sent yet: a collector that is not there shows up as failed exports, not here).
    pub fn start(cfg: OtlpConfig) -> Result<Self, OtlpError> {
        let (tx, rx) = mpsc::sync_channel(cfg.queue.max(16));
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let url = cfg.traces_url();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("agentry-otlp".into())
                .spawn(move || worker(cfg, rx, shared, ready_tx))
                .map_err(OtlpError::Thread)?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                tx,
                shared,
                thread: Mutex::new(Some(thread)),
                url,
            }),
            Ok(Err(e)) => {
                thread.join().ok();
                Err(e)
            }
            Err(_) => Err(OtlpError::Config(
                "the exporter's thread ended before it started".into(),
            )),
        }
    }

    /// The URL spans go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Takes one event of a run (the engine's observer calls this); never blocks: when the
    /// queue is full the event is dropped and counted.
    pub fn record(&self, event: &TraceEvent) {
        if event.kind.is_ephemeral() {
            return;
        }
        let started = matches!(event.kind, TraceKind::RunStarted { .. }).then(SystemTime::now);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Event(event.clone(), started))
        {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Exports every span finished so far; returns when the collector answered (or the
    /// export's deadline passed).
    pub fn flush(&self) {
        let (ack, done) = mpsc::channel();
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            done.recv().ok();
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> OtlpStats {
        OtlpStats {
            exported: self.shared.exported.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            last_error: self.shared.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// Exports what is left (runs still open end as interrupted), stops the thread and
    /// returns what it did.
    pub fn shutdown(&self) -> OtlpStats {
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            self.shared.stopping.store(true, Ordering::Relaxed);
            self.tx.send(Msg::Stop).ok();
            handle.join().ok();
        }
        self.stats()
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The SDK's exporter for `cfg`'s transport.
fn build(cfg: &OtlpConfig) -> Result<opentelemetry_otlp::SpanExporter, OtlpError> {
    let url = cfg.traces_url();
    let built = match cfg.protocol {
        OtlpProtocol::Grpc => {
            let mut headers = reqwest::header::HeaderMap::new();
            for (k, v) in &cfg.headers {
                let key =
                    reqwest::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|_| {
                            OtlpError::Config(format!("`{k}` cannot be a gRPC metadata key"))
                        })?;
                let value = reqwest::header::HeaderValue::from_str(v)
                    .map_err(|_| OtlpError::Config(format!("the value of `{k}` cannot be sent")))?;
                headers.insert(key, value);
            }
            let metadata =
                opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(url.clone())
                .with_timeout(cfg.timeout)
                .with_metadata(metadata)
                .build()
        }
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => {
            let protocol = if cfg.protocol == OtlpProtocol::HttpJson {
                Protocol::HttpJson
            } else {
                Protocol::HttpBinary
            };
            let client = reqwest::Client::builder()
                .timeout(cfg.timeout)
                .build()
                .map_err(|e| OtlpError::Build {
                    endpoint: url.clone(),
                    reason: e.to_string(),
                })?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(Http(client))
                .with_protocol(protocol)
                .with_endpoint(url.clone())
                .with_timeout(cfg.timeout)
                .with_headers(cfg.headers.iter().cloned().collect::<HashMap<_, _>>())
                .build()
        }
    };
    built.map_err(|e| OtlpError::Build {
        endpoint: url,
        reason: e.to_string(),
    })
}

/// The exporter's thread: assembles spans from events and exports them in batches.
fn worker(
    cfg: OtlpConfig,
    rx: mpsc::Receiver<Msg>,
    shared: Arc<Shared>,
    ready: mpsc::Sender<Result<(), OtlpError>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ready.send(Err(OtlpError::Thread(e))).ok();
            return;
        }
    };
    // gRPC's channel is made inside the runtime.
    let exporter = match rt.block_on(async { build(&cfg) }) {
        Ok(mut exporter) => {
            exporter.set_resource(&cfg.resource());
            exporter
        }
        Err(e) => {
            ready.send(Err(e)).ok();
            return;
        }
    };
    ready.send(Ok(())).ok();
    let mut spans = Spans::new(cfg.capture_content);
    let mut batch: Vec<SpanData> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let mut failing = false;
    let mut stop_deadline: Option<Instant> = None;
    // One export of `batch`; a failed one is tried again (after 0.25 s, then 1 s) unless the
    // exporter is stopping, then its spans are counted as lost.
    let mut send = |batch: &mut Vec<SpanData>, stopping: bool| {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let stopping = stopping || shared.stopping.load(Ordering::Relaxed);
        if stopping {
            let deadline = *stop_deadline.get_or_insert_with(|| Instant::now() + cfg.timeout);
            if Instant::now() >= deadline {
                shared.failed.fetch_add(n, Ordering::Relaxed);
                if let Ok(mut last) = shared.last_error.lock() {
                    last.get_or_insert_with(|| {
                        "the exporter stopped before the collector took them".into()
                    });
                }
                batch.clear();
                return;
            }
        }
        let mut error = None;
        for (attempt, backoff) in [0, 250, 1000].into_iter().enumerate() {
            if attempt > 0 {
                if stopping {
                    break;
                }
                std::thread::sleep(Duration::from_millis(backoff));
            }
            let outcome = rt.block_on(async {
                tokio::time::timeout(cfg.timeout, exporter.export(batch.clone())).await
            });
            error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!(
                    "no answer within {:.1} s",
                    cfg.timeout.as_secs_f64()
                )),
            };
            if error.is_none() {
                break;
            }
        }
        batch.clear();
        match error {
            None => {
                shared.exported.fetch_add(n, Ordering::Relaxed);
                if failing {
                    tracing::info!(url = %cfg.traces_url(), "OpenTelemetry export works again");
                }
                failing = false;
                if let Ok(mut last) = shared.last_error.lock() {
                    *last = None;
                }
            }
            Some(e) => {
                shared.failed.fetch_add(n, Ordering::Relaxed);
                if !failing {
                    tracing::warn!(url = %cfg.traces_url(), error = %e, "OpenTelemetry export failed; spans are dropped until it works");
                }
                failing = true;
                if let Ok(mut last) = shared.last_error.lock() {
                    *last = Some(e);
                }
            }
        }
    };
    // The thread polls the queue rather than sleeping on it: a sender never has to wake it,
    // so recording an event stays a copy into the queue (no system call on the engine's
    // thread).
    loop {
        let mut stop = false;
        let mut flushes = Vec::new();
        let mut took = 0;
        loop {
            match rx.try_recv() {
                Ok(Msg::Event(event, started)) => {
                    took += 1;
                    let before = batch.len();
                    spans.event(&event, started, &mut batch);
                    if batch.len() > before && oldest.is_none() {
                        oldest = Some(Instant::now());
                    }
                    if batch.len() >= BATCH {
                        send(&mut batch, false);
                        oldest = None;
                    }
                }
                Ok(Msg::Flush(ack)) => flushes.push(ack),
                Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        if stop {
            spans.close_all(&mut batch);
            send(&mut batch, true);
            for ack in flushes {
                ack.send(()).ok();
            }
            break;
        }
        if !flushes.is_empty() || oldest.is_some_and(|t| t.elapsed() >= LINGER) {
            send(&mut batch, false);
            oldest = None;
            for ack in flushes {
                ack.send(()).ok();
            }
        }
        if took == 0 {
            std::thread::sleep(POLL);
        }
    }
    exporter.shutdown().ok();
}

/// The SDK's HTTP client trait over the workspace's reqwest (rustls on ring), so the OTLP
/// exporter adds no second HTTP and TLS stack.
#[derive(Debug)]
struct Http(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Http {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<bytes::Bytes>,
    ) -> Result<opentelemetry_http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        let mut out = opentelemetry_http::Response::builder().status(status);
        if let Some(h) = out.headers_mut() {
            *h = headers;
        }
        Ok(out.body(body)?)
    }
}

/// A recorded run's spans as an OTLP/JSON export request (what `POST /v1/traces` with
/// `Content-Type: application/json` takes); `started` is when the run began.
pub fn otlp_json(
    events: &[TraceEvent],
    started: SystemTime,
    service_name: &str,
    capture_content: bool,
) -> serde_json::Value {
    let mut assembler = Spans::new(capture_content);
    let mut spans = Vec::new();
    for e in events {
        let start = matches!(e.kind, TraceKind::RunStarted { .. }).then_some(started);
        assembler.event(e, start, &mut spans);
    }
    assembler.close_all(&mut spans);
    let resource = Resource::builder_empty()
        .with_service_name(service_name.to_owned())
        .build();
    let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans:
            opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(
                spans,
                &(&resource).into(),
            ),
    };
    serde_json::to_value(&request).unwrap_or_default()
}

#[cfg(test)]
mod tests;
