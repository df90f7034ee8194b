//! Regression: with several clients on `agentry proxy --http`, what the upstream server sent
//! on its own (progress, log messages, sampling and elicitation requests) went to whichever
//! client's call had started last, so one user's prompts and data reached another. Each
//! client session now has an upstream session of its own, stopped when the session ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Sampling, which the proxy passes on, is deprecated by the 2026-07-28 revision.
#![allow(deprecated)]

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

mod common;

use common::{mcp_bin, serving};
use futures::future::BoxFuture;
use rmcp::{
    ErrorData,
    model::{
        ClientResult, CreateMessageResult, SamplingMessage, ServerNotification, ServerRequest,
    },
};
use serde_json::{Value, json};

/// One MCP client: what the proxy passed it that it did not ask for, and its model, which
/// answers every sampling request with its own name.
struct Client {
    name: &'static str,
    /// Progress notifications: progress and total.
    progress: Mutex<Vec<(f64, Option<f64>)>>,
    /// Log messages' data.
    logs: Mutex<Vec<Value>>,
    /// Sampling requests, as JSON.
    asked: Mutex<Vec<String>>,
}

impl Client {
    fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            progress: Mutex::default(),
            logs: Mutex::default(),
            asked: Mutex::default(),
        })
    }

    fn progress(&self) -> Vec<(f64, Option<f64>)> {
        let mut seen = self.progress.lock().unwrap().clone();
        seen.sort_by(|a, b| a.0.total_cmp(&b.0));
        seen
    }
}

impl agentry_mcp::Relay for Client {
    fn notify(&self, notification: ServerNotification) -> BoxFuture<'_, ()> {
        match notification {
            ServerNotification::ProgressNotification(n) => {
                let seen = (n.params.progress, n.params.total);
                self.progress.lock().unwrap().push(seen);
            }
            ServerNotification::LoggingMessageNotification(n) => {
                self.logs.lock().unwrap().push(n.params.data);
            }
            _ => {}
        }
        Box::pin(std::future::ready(()))
    }

    fn ask(&self, request: ServerRequest) -> BoxFuture<'_, Result<ClientResult, ErrorData>> {
        Box::pin(async move {
            let ServerRequest::CreateMessageRequest(request) = request else {
                return Err(ErrorData::invalid_request("this client samples only", None));
            };
            let asked = serde_json::to_string(&request.params).unwrap();
            self.asked.lock().unwrap().push(asked);
            let said = SamplingMessage::assistant_text(format!("answer from {}", self.name));
            let answer = CreateMessageResult::new(said, self.name.to_owned());
            Ok(ClientResult::CreateMessageResult(Box::new(answer)))
        })
    }
}

/// agentry's MCP client at `url`, passing what the server sends on its own to `client`.
async fn connect(url: &str, client: &Arc<Client>) -> Arc<agentry_mcp::McpServer> {
    let spec = agentry_mcp::ServerSpec::new(client.name, vec![url.to_owned()]).unwrap();
    let options = agentry_mcp::ClientOptions {
        relay: Some(client.clone()),
        ..agentry_mcp::ClientOptions::from_env()
    };
    agentry_mcp::McpServer::connect_with(spec, options)
        .await
        .unwrap()
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// The text of a tool result.
fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// Waits (20 s at most) until `done`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The state letter of process `pid` (`Z` for a zombie) and its parent's id, or `None`
/// when there is no such process.
fn state(pid: u32) -> Option<(String, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `PID (COMM) STATE PPID …`, where COMM may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_owned();
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Whether process `pid` is still running.
fn running(pid: u32) -> bool {
    state(pid).is_some_and(|(s, _)| s != "Z")
}

/// The processes `parent` started that are still running.
fn children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| running(pid) && state(pid).is_some_and(|(_, p)| p == parent))
        .collect()
}

/// server-everything's tools.
const LOG: &str = "toggle-simulated-logging";
const LONG: &str = "trigger-long-running-operation";
const SAMPLE: &str = "trigger-sampling-request";

#[test]
fn the_http_proxy_gives_each_client_only_what_its_own_calls_brought() {
    let Some(everything) = mcp_bin("mcp-server-everything") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("agentry-proxy-routing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p.toml");
    std::fs::write(
        &policy,
        "default = \"allow\"\n\n[[rule]]\ntool = \"get-env\"\naction = \"deny\"\n\
         reason = \"the environment is private\"\n",
    )
    .unwrap();
    let audit = dir.join("audit.jsonl");
    let (mut proxy, url) = serving(&[
        "proxy",
        "--http",
        "0",
        "--policy",
        policy.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
        "--",
        &everything,
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstreams = rt.block_on(async {
        let (a, b) = (Client::new("A"), Client::new("B"));
        let to_a = connect(&url, &a).await;
        let to_b = connect(&url, &b).await;

        // A has the server log (a message now, then one every 5 s) and starts a long
        // operation (progress 1, 2, 3 of 3); B starts one (1 to 6 of 6) once A's is under
        // way, so B's is the call that started last while A's log and progress come.
        to_a.call_as_is(LOG, args(json!({}))).await.unwrap();
        let a_long = tokio::spawn({
            let to_a = Arc::clone(&to_a);
            async move {
                let long = args(json!({"duration": 6, "steps": 3}));
                to_a.call_as_is(LONG, long).await
            }
        });
        until("A's first progress", || !a.progress().is_empty()).await;
        let b_long = tokio::spawn({
            let to_b = Arc::clone(&to_b);
            async move {
                let long = args(json!({"duration": 6, "steps": 6}));
                to_b.call_as_is(LONG, long).await
            }
        });
        until("B's first progress", || !b.progress().is_empty()).await;
        // Both ask for the model at once, each with its own secret.
        let (sampled_a, sampled_b) = tokio::join!(
            to_a.call_as_is(SAMPLE, args(json!({"prompt": "A's secret"}))),
            to_b.call_as_is(SAMPLE, args(json!({"prompt": "B's secret"}))),
        );
        // The policy still sees every call.
        let env = to_b.call_as_is("get-env", args(json!({}))).await.unwrap();
        assert_eq!(
            text(&env),
            "denied by policy: the environment is private",
            "{env}"
        );
        a_long.await.unwrap().unwrap();
        b_long.await.unwrap().unwrap();

        // Progress: each client's own, under its own token.
        let a_progress = a.progress();
        let b_progress = b.progress();
        assert!(
            !a_progress.is_empty() && a_progress.iter().all(|&(_, total)| total == Some(3.0)),
            "A: {a_progress:?}"
        );
        assert!(
            !b_progress.is_empty() && b_progress.iter().all(|&(_, total)| total == Some(6.0)),
            "B: {b_progress:?}"
        );
        // Sampling: each client was asked its own prompt, and its answer went to its call.
        let asked_a = a.asked.lock().unwrap().clone();
        let asked_b = b.asked.lock().unwrap().clone();
        assert!(
            asked_a.len() == 1 && asked_a[0].contains("A's secret"),
            "A was asked {asked_a:?}"
        );
        assert!(
            asked_b.len() == 1 && asked_b[0].contains("B's secret"),
            "B was asked {asked_b:?}"
        );
        let (sampled_a, sampled_b) = (sampled_a.unwrap(), sampled_b.unwrap());
        assert!(
            text(&sampled_a).contains("answer from A") && !text(&sampled_a).contains("from B"),
            "{sampled_a}"
        );
        assert!(
            text(&sampled_b).contains("answer from B") && !text(&sampled_b).contains("from A"),
            "{sampled_b}"
        );
        // Log messages: A's to A, none to B.
        assert!(!a.logs.lock().unwrap().is_empty(), "A got no log message");
        let b_logs = b.logs.lock().unwrap().clone();
        assert!(b_logs.is_empty(), "B got A's log messages: {b_logs:?}");

        // One server process for the proxy's own connection, one per client session; a
        // session that ends stops its own.
        let upstreams = children(proxy.id());
        assert_eq!(upstreams.len(), 3, "{upstreams:?}");
        to_b.close().await;
        let b_stopped = || children(proxy.id()).len() == 2;
        until("B's server process to stop", b_stopped).await;
        // The proxy stops (Ctrl-C) with A still connected: A's process stops too.
        let pid = proxy.id().to_string();
        let interrupted = Command::new("kill")
            .args(["-INT", pid.as_str()])
            .status()
            .unwrap();
        assert!(interrupted.success());
        until("the proxy to stop", || proxy.try_wait().unwrap().is_some()).await;
        to_a.close().await;
        upstreams
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstreams.iter().any(|&pid| running(pid)) {
        assert!(
            Instant::now() < deadline,
            "server processes outlived the proxy: {upstreams:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every call went through the policy and into the audit trail.
    let decisions: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["direction"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 6, "{decisions:?}");
    assert!(
        decisions
            .iter()
            .any(|d| d["tool"] == "get-env" && d["decision"]["action"] == "deny"),
        "{decisions:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
