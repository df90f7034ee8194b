//! The viewer's HTTP routes: the page, its JSON API, and the live stream.

use std::{
    convert::Infallible,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use agentry_trace::{Cursor, RunFilter, TraceError, TraceStore};
use axum::{
    Json, Router,
    extract::{Path as UrlPath, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response, Sse, sse::Event},
    routing::get,
};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Ui,
    run::{full_result, run_view, step_detail},
};

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// The page may run only its own script and style, and talk only to this server.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

type Shared = Arc<Ui>;

pub(crate) fn router(ui: Ui, hosts: agentry_core::AllowedHosts) -> Router {
    let ui = Arc::new(ui);
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/status", get(status))
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}", get(run))
        .route("/api/runs/{id}/steps/{key}", get(step))
        .route("/api/runs/{id}/steps/{key}/result", get(result))
        .route("/api/runs/{id}/timeline.svg", get(picture))
        .route("/api/live", get(live))
        .route("/api/evals", get(evals))
        .route("/api/evals/{n}", get(eval))
        .layer(middleware::from_fn_with_state(Arc::clone(&ui), guard))
        // Outermost: a request by a name the viewer is not reached by gets nothing.
        .layer(middleware::from_fn_with_state(Arc::new(hosts), host_guard))
        .with_state(ui)
}

/// Answers only requests whose `Host` the viewer is reached by (against DNS rebinding).
async fn host_guard(
    State(hosts): State<Arc<agentry_core::AllowedHosts>>,
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
    (
        StatusCode::FORBIDDEN,
        "this agentry viewer answers only the names it is reached by (Host is not allowed; see --allowed-host)",
    )
        .into_response()
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// With a token set, every request carries it: `?token=` (the first visit, which sets
/// a cookie), the cookie, or `Authorization: Bearer`.
async fn guard(State(ui): State<Shared>, request: Request, next: Next) -> Response {
    let Some(token) = ui.token.as_deref() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("agentry_token="));
    let query = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("token="));
    if bearer == Some(token) || cookie == Some(token) {
        return next.run(request).await;
    }
    if query == Some(token) {
        let mut response = next.run(request).await;
        if let Ok(v) = HeaderValue::from_str(&format!(
            "agentry_token={token}; HttpOnly; SameSite=Strict; Path=/"
        )) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
        return response;
    }
    (
        StatusCode::UNAUTHORIZED,
        "this agentry viewer needs its token: open the address `agentry ui` printed",
    )
        .into_response()
}

/// An error the page shows as it is.
struct Problem(StatusCode, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<TraceError> for Problem {
    fn from(e: TraceError) -> Self {
        let status = match e {
            TraceError::NoRun(_) | TraceError::Ambiguous { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut text = e.to_string();
        if text.contains("database is locked") {
            text.push_str(" (a running agent holds it; the page retries)");
        }
        Problem(status, text)
    }
}

/// Runs `work` on the store, off the async threads.
async fn with_store<T: Send + 'static>(
    db: &Path,
    work: impl FnOnce(&TraceStore) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let db = db.to_owned();
    tokio::task::spawn_blocking(move || work(&TraceStore::open(&db)?))
        .await
        .map_err(|e| Problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

async fn status(State(ui): State<Shared>) -> Result<Json<Value>, Problem> {
    let db = ui.db.display().to_string();
    let total = with_store(&ui.db, |s| {
        Ok(s.runs_page(&RunFilter::default(), None, 0)?.total)
    })
    .await?;
    Ok(Json(json!({"db": db, "runs": total})))
}

#[derive(Deserialize)]
struct RunsQuery {
    q: Option<String>,
    status: Option<String>,
    mode: Option<String>,
    before_ms: Option<i64>,
    before_id: Option<String>,
    limit: Option<usize>,
}

async fn runs(
    State(ui): State<Shared>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, Problem> {
    let filter = RunFilter {
        text: q.q,
        status: q.status,
        mode: q.mode,
    };
    let cursor = match (q.before_ms, q.before_id) {
        (Some(started_at_ms), Some(id)) => Some(Cursor { started_at_ms, id }),
        _ => None,
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let page = with_store(&ui.db, move |s| {
        Ok(s.runs_page(&filter, cursor.as_ref(), limit)?)
    })
    .await?;
    Ok(Json(serde_json::to_value(page).unwrap_or_default()))
}

async fn events_of(ui: &Ui, id: String) -> Result<Vec<agentry_core::TraceEvent>, Problem> {
    with_store(&ui.db, move |s| {
        let id = s.resolve(&id)?;
        Ok(s.events(&id)?)
    })
    .await
}

async fn run(State(ui): State<Shared>, UrlPath(id): UrlPath<String>) -> Result<Response, Problem> {
    let events = events_of(&ui, id).await?;
    let view = tokio::task::spawn_blocking(move || run_view(&events))
        .await
        .map_err(|e| Problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(view).into_response())
}

async fn step(
    State(ui): State<Shared>,
    UrlPath((id, key)): UrlPath<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let events = events_of(&ui, id).await?;
    step_detail(&events, &key)
        .map(Json)
        .ok_or_else(|| Problem(StatusCode::NOT_FOUND, format!("the run has no step {key}")))
}

/// A call's whole result, as a download (never rendered by the browser).
async fn result(
    State(ui): State<Shared>,
    UrlPath((id, key)): UrlPath<(String, String)>,
) -> Result<Response, Problem> {
    let events = events_of(&ui, id).await?;
    let text = full_result(&events, &key).ok_or_else(|| {
        Problem(
            StatusCode::NOT_FOUND,
            format!("the run has no result for {key}"),
        )
    })?;
    let name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.txt\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok((headers, text).into_response())
}

async fn picture(
    State(ui): State<Shared>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, Problem> {
    let events = events_of(&ui, id).await?;
    let svg = crate::svg(&agentry_trace::timeline(&events), 1200);
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        svg,
    )
        .into_response())
}

#[derive(Deserialize)]
struct LiveQuery {
    run: Option<String>,
    after: Option<u64>,
}

/// Server-sent events: `runs` (the summaries of runs that are running or just began,
/// whenever the store changes) and, for `?run=ID`, `events` (how many new events that
/// run has; the page then asks for the run again).
async fn live(
    State(ui): State<Shared>,
    Query(q): Query<LiveQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    let db = ui.db.clone();
    // One connection per watcher: SQLite's data_version tells a connection whether
    // others committed since it last looked, without reading anything.
    std::thread::spawn(move || watch(&db, q.run, q.after, &tx));
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Sse::new(stream).keep_alive(axum::response::sse::KeepAlive::default())
}

fn watch(
    db: &Path,
    run: Option<String>,
    mut after: Option<u64>,
    tx: &tokio::sync::mpsc::Sender<Event>,
) {
    let mut seen = None;
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    while !tx.is_closed() {
        if let Ok(store) = TraceStore::open(db) {
            while !tx.is_closed() {
                let Ok(version) = store.data_version() else {
                    break;
                };
                if seen != Some(version) {
                    seen = Some(version);
                    if let Ok(active) = store.active_since(started_ms - 60_000) {
                        let data = serde_json::to_string(&active).unwrap_or_default();
                        if tx
                            .blocking_send(Event::default().event("runs").data(data))
                            .is_err()
                        {
                            return;
                        }
                    }
                    if let Some(id) = &run
                        && let Ok(new) = store.events_after(id, after)
                        && let Some(last) = new.last()
                    {
                        after = Some(last.seq);
                        let data =
                            json!({"run": id, "new": new.len(), "last_seq": last.seq}).to_string();
                        if tx
                            .blocking_send(Event::default().event("events").data(data))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A report `agentry eval …` wrote: BFCL (`*.report.json`) or τ-bench.
fn report_kind(v: &Value) -> Option<&'static str> {
    if v.get("categories").is_some() && v.get("accuracy").is_some() {
        Some("bfcl")
    } else if v.get("pass_hat_k").is_some() && v.get("average_reward").is_some() {
        Some("taubench")
    } else {
        None
    }
}

/// The reports under the report directories (three levels deep), newest first.
fn find_reports(dirs: &[PathBuf]) -> Vec<(PathBuf, &'static str, Value)> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && depth > 0 {
                walk(&p, depth - 1, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for d in dirs {
        walk(d, 3, &mut files);
    }
    let mut found: Vec<(PathBuf, &'static str, Value, std::time::SystemTime)> = files
        .into_iter()
        .filter(|p| p.metadata().is_ok_and(|m| m.len() < 64 * 1024 * 1024))
        .filter_map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            let kind = report_kind(&v)?;
            let at = p.metadata().and_then(|m| m.modified()).ok()?;
            Some((p, kind, v, at))
        })
        .collect();
    found.sort_by(|a, b| b.3.cmp(&a.3).then_with(|| a.0.cmp(&b.0)));
    found.into_iter().map(|(p, k, v, _)| (p, k, v)).collect()
}

async fn evals(State(ui): State<Shared>) -> Json<Value> {
    let dirs = ui.reports.clone();
    let found = tokio::task::spawn_blocking(move || find_reports(&dirs))
        .await
        .unwrap_or_default();
    let list: Vec<Value> = found
        .iter()
        .enumerate()
        .map(|(n, (path, kind, v))| {
            let headline = match *kind {
                "bfcl" => {
                    json!({"model": v["model"], "accuracy": v["accuracy"], "entries": v["entries"]})
                }
                _ => json!({"agent": v["agent"], "domain": v["domain"], "split": v["split"],
                            "average_reward": v["average_reward"], "pass_hat_k": v["pass_hat_k"]}),
            };
            json!({"n": n, "kind": kind, "path": path.display().to_string(), "headline": headline})
        })
        .collect();
    Json(json!({"dirs": ui.reports, "reports": list}))
}

/// One report, with BFCL's per-entry verdicts (the `.verdicts.jsonl` beside it) when
/// they are there.
async fn eval(
    State(ui): State<Shared>,
    UrlPath(n): UrlPath<usize>,
) -> Result<Json<Value>, Problem> {
    let dirs = ui.reports.clone();
    let found = tokio::task::spawn_blocking(move || find_reports(&dirs))
        .await
        .unwrap_or_default();
    let (path, kind, report) = found
        .into_iter()
        .nth(n)
        .ok_or_else(|| Problem(StatusCode::NOT_FOUND, format!("no report {n}")))?;
    let mut verdicts = Vec::new();
    if kind == "bfcl" {
        let name = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        let beside = path.with_file_name(name.replace(".report.json", ".verdicts.jsonl"));
        if let Ok(text) = std::fs::read_to_string(beside) {
            verdicts = text
                .lines()
                .take(20_000)
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect();
        }
    }
    Ok(Json(
        json!({"kind": kind, "path": path.display().to_string(), "report": report, "verdicts": verdicts}),
    ))
}
