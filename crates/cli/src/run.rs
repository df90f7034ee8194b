//! `agentry run`, `agentry trace …` and `agentry replay`: running agents and looking at runs.

use std::{
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use agentry_core::{RunStatus, TraceEvent, TraceKind};
use agentry_exec::{Budget, Engine, EngineConfig, Fanout, Mode, Observer};
use agentry_llm::OpenOptions;
use agentry_trace::{TraceStore, TraceWriter};
use anyhow::{Context, Result};

/// Settings of `agentry run` beyond the task.
pub(crate) struct RunArgs<'a> {
    pub(crate) mode: Mode,
    pub(crate) model: Option<&'a str>,
    pub(crate) options: OpenOptions,
    pub(crate) trace_db: Option<&'a Path>,
    pub(crate) budget: Budget,
    pub(crate) call_timeout: Duration,
    pub(crate) tool_latency: Duration,
    pub(crate) quiet: bool,
    pub(crate) json: bool,
    pub(crate) policy: Option<Arc<agentry_policy::Policy>>,
    pub(crate) approver: Option<Arc<dyn agentry_policy::Approver>>,
    pub(crate) agent: Option<String>,
    pub(crate) mcp: Vec<agentry_mcp::ServerSpec>,
    /// Authorization settings of the servers that have their own (from the config), by alias.
    pub(crate) oauth: std::collections::BTreeMap<String, agentry_mcp::OAuthOptions>,
    pub(crate) demo_tools: bool,
}

/// Prints each step as it starts and ends.
struct Progress {
    out: Mutex<std::io::Stderr>,
    calls: Mutex<std::collections::HashMap<String, String>>,
}

impl Observer for Progress {
    fn event(&self, e: &TraceEvent) {
        let secs = e.at_us as f64 / 1e6;
        let line = match &e.kind {
            TraceKind::ModelRequest { step, purpose, .. } => {
                format!("{secs:>7.3}s  ▸ {step} model ({purpose:?})")
            }
            TraceKind::ModelResponse {
                step,
                completion_tokens,
                calls,
                ..
            } => {
                let calls = if calls.is_empty() {
                    String::new()
                } else {
                    format!(", {} call(s)", calls.len())
                };
                format!("{secs:>7.3}s  ◂ {step} model done ({completion_tokens} tokens{calls})")
            }
            TraceKind::ModelFailed { step, error } => {
                format!("{secs:>7.3}s  ✗ {step} model failed: {error}")
            }
            TraceKind::CallStarted { call, task, .. } => {
                let id = task.map_or_else(|| call.id.clone(), |t| format!("t{t}"));
                if let Ok(mut m) = self.calls.lock() {
                    m.insert(call.id.clone(), id.clone());
                }
                format!(
                    "{secs:>7.3}s  → {id} {} {}",
                    call.name,
                    short(&call.arguments.to_string(), 80)
                )
            }
            TraceKind::CallFinished {
                result,
                duration_us,
                attempts,
                ..
            } => {
                let id = self
                    .calls
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&result.tool_call_id).cloned())
                    .unwrap_or_default();
                let (mark, text) = match &result.outcome {
                    Ok(v) => ('✓', short(&v.to_string(), 80)),
                    Err(err) => (
                        '✗',
                        format!("{}: {}", err.kind(), short(err.for_model(), 100)),
                    ),
                };
                let retries = if *attempts > 1 {
                    format!(" after {attempts} attempts")
                } else {
                    String::new()
                };
                format!(
                    "{secs:>7.3}s  {mark} {id} {} {:.3}s{retries}  {text}",
                    result.name,
                    *duration_us as f64 / 1e6
                )
            }
            TraceKind::PlanRejected { reason } => {
                format!("{secs:>7.3}s  ✗ plan rejected: {}", short(reason, 200))
            }
            TraceKind::PolicyDecision {
                call_id,
                action,
                rule,
                reason,
                approved,
                ..
            } => {
                if action == "allow" {
                    return;
                }
                let id = self
                    .calls
                    .lock()
                    .ok()
                    .and_then(|m| m.get(call_id).cloned())
                    .unwrap_or_default();
                let by = rule.as_deref().unwrap_or("the default");
                let answer = match approved {
                    Some(true) => " (approved)",
                    Some(false) => " (refused)",
                    None => "",
                };
                let why = reason
                    .as_deref()
                    .map(|r| format!(": {}", short(r, 100)))
                    .unwrap_or_default();
                format!("{secs:>7.3}s  ⚖ {id} policy {action}{answer} by {by}{why}")
            }
            TraceKind::UserReply { text, ends, .. } => {
                let end = if *ends { " (ends)" } else { "" };
                format!("{secs:>7.3}s  ☺ user{end}: {}", short(text, 120))
            }
            TraceKind::ToolsChanged { tools } => {
                format!(
                    "{secs:>7.3}s  ⟳ tools changed: {}",
                    short(&tools.join(", "), 120)
                )
            }
            TraceKind::Replanning { reason } => {
                format!("{secs:>7.3}s  ⟲ replan: {}", short(reason, 200))
            }
            TraceKind::ApprovalAsked { call_id, .. } => {
                let id = self
                    .calls
                    .lock()
                    .ok()
                    .and_then(|m| m.get(call_id).cloned())
                    .unwrap_or_default();
                format!("{secs:>7.3}s  ⚖ {id} waits for approval")
            }
            TraceKind::RunStarted { .. }
            | TraceKind::RunFinished { .. }
            | TraceKind::TextDelta { .. }
            | TraceKind::TaskPlanned { .. } => return,
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// The demo tools and the MCP servers' tools, offered again when a server's change.
struct Offer {
    base: agentry_tools::ToolSet,
    servers: Vec<Arc<agentry_mcp::McpServer>>,
}

impl agentry_exec::ToolUpdates for Offer {
    fn poll(&self) -> futures::future::BoxFuture<'_, Option<Arc<agentry_tools::ToolSet>>> {
        Box::pin(async move {
            if !self.servers.iter().any(|s| s.tools_have_changed()) {
                return None;
            }
            match offer(&self.base, &self.servers).await {
                Ok(set) => Some(Arc::new(set)),
                Err(e) => {
                    eprintln!("the MCP tools changed but cannot be offered: {e:#}");
                    None
                }
            }
        })
    }
}

/// The tools on offer: `base`'s and each server's; a server's tool whose name is taken is
/// offered as `ALIAS__name`.
async fn offer(
    base: &agentry_tools::ToolSet,
    servers: &[Arc<agentry_mcp::McpServer>],
) -> Result<agentry_tools::ToolSet> {
    let mut tools = base.filtered(|_| true);
    for server in servers {
        let taken = tools.names();
        for tool in server.tools(&|n| taken.iter().any(|t| t == n)).await {
            tools
                .add(tool)
                .with_context(|| format!("a tool of the MCP server `{}`", server.alias()))?;
        }
    }
    Ok(tools)
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Runs one agent; returns whether it answered.
pub(crate) async fn run(task: &str, args: RunArgs<'_>) -> Result<bool> {
    let spec = match args.model {
        Some(m) => m,
        None if agentry_llm::local_ready() => "local",
        None => {
            let sim = match args.mode {
                Mode::Sequential => "sim:trip",
                Mode::Compiled => "sim:plan",
            };
            if agentry_llm::HAS_LOCAL && !args.quiet {
                eprintln!(
                    "note: the local model is not set up (run scripts/local-model); using the simulated model {sim}"
                );
            }
            sim
        }
    };
    let model = agentry_llm::open(spec, &args.options)?;
    let base = if args.demo_tools {
        agentry_tools::demo_tools(args.tool_latency)
    } else {
        agentry_tools::ToolSet::new()
    };
    let mut servers = Vec::new();
    for spec in &args.mcp {
        let mut options = agentry_mcp::ClientOptions::from_env();
        if let Some(oauth) = args.oauth.get(&spec.alias) {
            options.oauth = oauth.clone();
        }
        let server = agentry_mcp::McpServer::connect_with(spec.clone(), options).await?;
        if !args.quiet {
            let listed = server.listed_tools().await;
            eprintln!(
                "MCP server {} (protocol {}): {} tool(s): {}",
                server.alias(),
                server.protocol(),
                listed.len(),
                listed
                    .iter()
                    .map(|t| t.name.as_ref())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        servers.push(server);
    }
    let tools = Arc::new(offer(&base, &servers).await?);
    if let Some(policy) = &args.policy {
        let offered: Vec<(&str, Option<&str>)> = tools
            .specs()
            .iter()
            .map(|s| {
                let server = tools.get(&s.name).and_then(|t| t.server());
                (s.name.as_str(), server)
            })
            .collect();
        for warning in policy.unmatched(&offered) {
            eprintln!("warning: the policy's {warning}");
        }
    }
    let cfg = EngineConfig {
        budget: args.budget,
        call_timeout: args.call_timeout,
        policy: args.policy.clone(),
        approver: args.approver.clone(),
        agent: args.agent.clone(),
        ..EngineConfig::new(args.mode)
    };
    let engine = Engine::new(Arc::clone(&model), Arc::clone(&tools), cfg);
    // A server that says its tools changed is listed again; the next turn offers the new set.
    let engine = if servers.is_empty() {
        engine
    } else {
        engine.with_tool_updates(Arc::new(Offer {
            base,
            servers: servers.clone(),
        }))
    };
    let writer = match args.trace_db {
        Some(path) => {
            Some(Arc::new(TraceWriter::open(path).with_context(|| {
                format!("opening the trace store {}", path.display())
            })?))
        }
        None => None,
    };
    let mut observers: Vec<Arc<dyn Observer>> = Vec::new();
    if !args.quiet {
        observers.push(Arc::new(Progress {
            out: Mutex::new(std::io::stderr()),
            calls: Mutex::default(),
        }));
    }
    if let Some(w) = &writer {
        observers.push(Arc::clone(w) as Arc<dyn Observer>);
    }
    if !args.quiet {
        eprintln!(
            "agentry run · {} mode · model {} · task: {task}",
            args.mode.as_str(),
            model.name()
        );
    }
    // Ctrl-C cancels the run: calls in flight are cut and recorded, the run ends
    // `cancelled`. A second Ctrl-C leaves at once.
    let cancel = crate::cancel_on_ctrl_c();
    let outcome = engine
        .run_with(task, &Fanout(observers), cancel, agentry_exec::new_run_id())
        .await;
    for server in servers {
        server.close().await;
    }
    if let Some(w) = writer {
        let path = w.path().to_owned();
        if let Ok(w) = Arc::try_unwrap(w) {
            w.close()
                .with_context(|| format!("writing the trace to {}", path.display()))?;
        }
    }
    if args.json {
        let line = serde_json::json!({
            "run_id": outcome.run_id,
            "status": outcome.status.as_str(),
            "answer": outcome.answer,
            "reason": outcome.reason,
            "calls": outcome.calls,
            "prompt_tokens": outcome.usage.prompt_tokens,
            "completion_tokens": outcome.usage.completion_tokens,
            "wall_ms": outcome.wall.as_secs_f64() * 1000.0,
            "trace_db": args.trace_db.map(|p| p.display().to_string()),
        });
        println!("{line}");
    } else {
        match &outcome.answer {
            Some(answer) => println!("{answer}"),
            None => eprintln!(
                "no answer: {}",
                outcome.reason.as_deref().unwrap_or("the run ended")
            ),
        }
    }
    for note in model.take_notes() {
        eprintln!("note: {note}");
    }
    if !args.quiet {
        let trace = match args.trace_db {
            Some(p) => format!(
                "trace {} in {} (agentry trace show {})",
                outcome.run_id,
                p.display(),
                outcome.run_id
            ),
            None => "no trace kept".to_owned(),
        };
        eprintln!(
            "— {} in {:.2}s · {} call(s) · {}+{} tokens · {trace}",
            outcome.status.as_str(),
            outcome.wall.as_secs_f64(),
            outcome.calls,
            outcome.usage.prompt_tokens,
            outcome.usage.completion_tokens
        );
    }
    Ok(outcome.status == RunStatus::Answered)
}

/// `agentry trace list`.
pub(crate) fn list(db: &Path, limit: usize, json: bool) -> Result<bool> {
    let store = TraceStore::open(db)?;
    let runs = store.runs(limit)?;
    if json {
        println!("{}", serde_json::to_string(&runs)?);
        return Ok(true);
    }
    if runs.is_empty() {
        println!("no runs in {}", db.display());
        return Ok(true);
    }
    println!(
        "{:<22} {:<10} {:<16} {:<17} {:>8} {:>5} {:>7}  task",
        "run", "mode", "model", "status", "seconds", "calls", "tokens"
    );
    for r in runs {
        println!(
            "{:<22} {:<10} {:<16} {:<17} {:>8.3} {:>5} {:>7}  {}",
            r.id,
            r.mode,
            short(&r.model, 16),
            r.status,
            r.wall_us as f64 / 1e6,
            r.calls,
            r.tokens,
            short(&r.task, 60)
        );
    }
    Ok(true)
}

/// `agentry trace show`.
pub(crate) fn show(
    db: &Path,
    run: &str,
    json: bool,
    width: usize,
    svg: Option<&Path>,
    png: Option<&Path>,
) -> Result<bool> {
    let store = TraceStore::open(db)?;
    let id = store.resolve(run)?;
    let events = store.events(&id)?;
    let t = agentry_trace::timeline(&events);
    if svg.is_some() || png.is_some() {
        let picture = agentry_ui::svg(&t, 1200);
        if let Some(path) = svg {
            std::fs::write(path, &picture)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("timeline of {id} drawn in {}", path.display());
        }
        if let Some(path) = png {
            let bytes = agentry_ui::png(&picture).map_err(anyhow::Error::msg)?;
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("timeline of {id} drawn in {}", path.display());
        }
    }
    if json {
        println!("{}", serde_json::to_string(&t)?);
    } else {
        print!("{}", agentry_trace::render(&t, width));
    }
    Ok(true)
}

/// `agentry trace export`.
pub(crate) fn export(db: &Path, run: &str) -> Result<bool> {
    let store = TraceStore::open(db)?;
    let id = store.resolve(run)?;
    print!("{}", agentry_trace::export_jsonl(&store.events(&id)?));
    Ok(true)
}

/// `agentry replay`: returns whether the replay matched.
pub(crate) async fn replay(db: &Path, run: &str) -> Result<bool> {
    let store = TraceStore::open(db)?;
    let id = store.resolve(run)?;
    let events = store.events(&id)?;
    let report = agentry_exec::replay(&events, EngineConfig::default()).await;
    match report.divergence {
        None => {
            println!("replay of {id} matches: {} steps identical", report.steps);
            Ok(true)
        }
        Some(d) => {
            println!("replay of {id} diverges at {d}");
            Ok(false)
        }
    }
}
