//! `--policy` for runs, the approvers behind `ask`, and `agentry policy …` / `agentry approve`.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use agentry_policy::{Action, Approval, Approver, Policy};
use anyhow::{Context, Result, bail};
use futures::future::BoxFuture;

/// Where `ask` decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ApproveMode {
    /// Prompt on this terminal (refuse when there is none).
    Terminal,
    /// Hold the call until `agentry approve ID` (or `--deny`) decides it.
    Queue,
    /// Refuse every call that needs approval.
    Never,
}

/// Reads `path`, refusing a bad policy with its line and reason.
pub(crate) fn load(path: &Path) -> Result<Arc<Policy>> {
    Policy::load(path)
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("the policy {} is refused: {e}", path.display()))
}

/// The approver for `mode`.
pub(crate) fn approver(mode: ApproveMode, queue: &Path) -> Option<Arc<dyn Approver>> {
    match mode {
        ApproveMode::Terminal => Some(Arc::new(Terminal::default())),
        ApproveMode::Queue => Some(Arc::new(Queue {
            dir: queue.to_owned(),
        })),
        ApproveMode::Never => None,
    }
}

/// Asks at the terminal, one question at a time.
#[derive(Debug, Default)]
struct Terminal {
    one_at_a_time: Arc<Mutex<()>>,
}

impl Approver for Terminal {
    fn approve<'a>(&'a self, request: &'a Approval) -> BoxFuture<'a, bool> {
        let question = format!(
            "\n⚖ {} wants to run {} {}\n  ({})\n  approve? [y/N] ",
            request.rule.as_deref().unwrap_or("the policy"),
            request.call.name,
            request.call.arguments,
            request.reason
        );
        let lock = Arc::clone(&self.one_at_a_time);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let _one = lock.lock();
                let stdin = std::io::stdin();
                if !stdin.is_terminal() {
                    return false;
                }
                let mut err = std::io::stderr();
                let _ = write!(err, "{question}");
                let _ = err.flush();
                let mut line = String::new();
                if stdin.lock().read_line(&mut line).is_err() {
                    return false;
                }
                matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
            })
            .await
            .unwrap_or(false)
        })
    }
}

/// Holds calls as files in a directory until `agentry approve` decides them.
#[derive(Debug)]
struct Queue {
    dir: PathBuf,
}

impl Approver for Queue {
    fn approve<'a>(&'a self, request: &'a Approval) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let id = request.call.id.clone();
            let pending = self.dir.join(format!("{id}.json"));
            if std::fs::create_dir_all(&self.dir).is_err()
                || std::fs::write(
                    &pending,
                    serde_json::to_vec_pretty(request).unwrap_or_default(),
                )
                .is_err()
            {
                return false;
            }
            eprintln!(
                "⚖ {} waits for approval: agentry approve {id} (or --deny)",
                request.call.name
            );
            let verdict = loop {
                if let Some(ok) = decided(&self.dir, &id) {
                    break ok;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let _ = std::fs::remove_file(&pending);
            verdict
        })
    }
}

/// The decision recorded for `id`, if any (and removes it).
fn decided(dir: &Path, id: &str) -> Option<bool> {
    for (ext, ok) in [("approved", true), ("denied", false)] {
        let answer = dir.join(format!("{id}.{ext}"));
        if answer.exists() {
            let _ = std::fs::remove_file(&answer);
            return Some(ok);
        }
    }
    None
}

/// `agentry approve`: lists the waiting calls, or decides one.
pub(crate) fn approve(dir: &Path, id: Option<&str>, deny: bool) -> Result<bool> {
    let Some(id) = id else {
        let mut waiting = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "json") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    waiting.push(format!(
                        "{}  {} {}  ({})",
                        path.file_stem().unwrap_or_default().to_string_lossy(),
                        v["call"]["function"]["name"].as_str().unwrap_or("?"),
                        v["call"]["function"]["arguments"].as_str().unwrap_or(""),
                        v["reason"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        if waiting.is_empty() {
            println!("no call is waiting for approval in {}", dir.display());
        }
        for w in waiting {
            println!("{w}");
        }
        return Ok(true);
    };
    let pending = dir.join(format!("{id}.json"));
    if !pending.exists() {
        bail!(
            "no call `{id}` is waiting for approval in {} (agentry approve lists them)",
            dir.display()
        );
    }
    let ext = if deny { "denied" } else { "approved" };
    std::fs::write(dir.join(format!("{id}.{ext}")), b"")
        .with_context(|| format!("writing the decision into {}", dir.display()))?;
    println!("{id} {ext}");
    Ok(true)
}

/// `agentry policy check`: reads the file and says what it holds.
pub(crate) fn check(path: &Path) -> Result<bool> {
    let policy = load(path)?;
    println!(
        "{}: {} rule(s), default {}",
        path.display(),
        policy.rules().len(),
        policy.default_action().as_str()
    );
    for (i, rule) in policy.rules().iter().enumerate() {
        let line = rule.line.map(|l| format!("line {l}: ")).unwrap_or_default();
        println!(
            "  {line}{} → {} ({} condition(s))",
            rule.label(i),
            rule.action.as_str(),
            rule.when.len()
        );
    }
    for agent in policy.agents() {
        println!("  agent {agent}");
    }
    Ok(true)
}

/// `agentry policy decide`: the decision on one call, as JSON.
pub(crate) fn decide(
    path: &Path,
    tool: &str,
    args: &str,
    agent: Option<&str>,
    server: Option<&str>,
) -> Result<bool> {
    let policy = load(path)?;
    let args: serde_json::Value =
        serde_json::from_str(args).context("--args must be a JSON object")?;
    let verdict = policy.decide(agent, server, tool, &args);
    println!("{}", serde_json::to_string(&verdict)?);
    Ok(verdict.action != Action::Deny)
}

/// The policy as the proxy's gate on `tools/call`.
pub(crate) struct ProxyGate {
    pub(crate) policy: Arc<Policy>,
    pub(crate) approver: Option<Arc<dyn Approver>>,
    pub(crate) agent: Option<String>,
    pub(crate) server: Option<String>,
    pub(crate) calls: std::sync::atomic::AtomicU64,
}

impl agentry_mcp::proxy::CallGate for ProxyGate {
    fn check(
        self: Arc<Self>,
        tool: String,
        args: serde_json::Value,
    ) -> BoxFuture<'static, (agentry_mcp::proxy::Gate, serde_json::Value)> {
        use agentry_mcp::proxy::Gate;
        Box::pin(async move {
            let v = self
                .policy
                .decide(self.agent.as_deref(), self.server.as_deref(), &tool, &args);
            let mut record = serde_json::to_value(&v).unwrap_or_default();
            let reason = v.reason.clone().unwrap_or_default();
            let gate = match v.action {
                Action::Allow => Gate::Forward(None),
                Action::Rewrite => Gate::Forward(v.rewritten.clone()),
                Action::Deny => Gate::Refuse(format!("denied by policy: {reason}")),
                Action::Ask => {
                    let n = self
                        .calls
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let request = Approval {
                        call: agentry_core::ToolCall::new(
                            format!("proxy-{}-{n}", std::process::id()),
                            tool.clone(),
                            args.clone(),
                        ),
                        rule: v.rule.clone(),
                        reason: reason.clone(),
                    };
                    let approved = match &self.approver {
                        Some(a) => a.approve(&request).await,
                        None => false,
                    };
                    record["approved"] = serde_json::json!(approved);
                    if approved {
                        Gate::Forward(None)
                    } else {
                        Gate::Refuse(format!("denied by policy: {reason} (not approved)"))
                    }
                }
            };
            (gate, record)
        })
    }
}

/// What `agentry proxy` was asked to do.
pub(crate) struct ProxyArgs {
    pub(crate) command: Vec<String>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) approver: Option<Arc<dyn Approver>>,
    pub(crate) agent: Option<String>,
    pub(crate) server: Option<String>,
    pub(crate) audit: Option<PathBuf>,
    pub(crate) http: Option<u16>,
}

/// `agentry proxy`: runs until the client or the server goes away (stdio), or until Ctrl-C
/// (HTTP).
pub(crate) async fn proxy(args: ProxyArgs) -> Result<bool> {
    let audit: Option<Box<dyn std::io::Write + Send>> = match &args.audit {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the audit trail {}", path.display()))?;
            Some(Box::new(file))
        }
        None => None,
    };
    let gate = Arc::new(ProxyGate {
        policy: args.policy,
        approver: args.approver,
        agent: args.agent,
        server: args.server.clone(),
        calls: std::sync::atomic::AtomicU64::new(0),
    });
    if let Some(port) = args.http {
        let spec = agentry_mcp::ServerSpec {
            alias: args.server.unwrap_or_else(|| "upstream".into()),
            command: args.command,
        };
        let upstream = agentry_mcp::McpServer::connect(spec).await?;
        let stop = tokio_util::sync::CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        agentry_mcp::proxy_http::serve(Arc::clone(&upstream), gate, audit, addr, stop, |bound| {
            println!("proxying MCP at http://{bound}/mcp (Ctrl-C to stop)");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        })
        .await
        .map_err(anyhow::Error::msg)?;
        upstream.close().await;
        return Ok(true);
    }
    let proxy = agentry_mcp::proxy::Proxy {
        command: args.command.clone(),
        gate,
        audit,
        max_message: agentry_mcp::proxy::MAX_MESSAGE,
    };
    let status = proxy
        .run(tokio::io::stdin(), tokio::io::stdout())
        .await
        .with_context(|| format!("running the MCP server {}", args.command.join(" ")))?;
    Ok(status.is_none_or(|c| c == 0))
}

/// `agentry mcp serve`: the demo tools, and an agent as the tool `agent`, over stdio.
pub(crate) async fn mcp_serve(
    model: Option<String>,
    options: agentry_llm::OpenOptions,
    with_agent: bool,
    policy: Option<Arc<Policy>>,
    http: Option<std::net::SocketAddr>,
) -> Result<bool> {
    let demo = agentry_tools::demo_tools(Duration::ZERO);
    let mut tools = demo.filtered(|_| true);
    if with_agent {
        let spec = model.unwrap_or_else(|| {
            if agentry_llm::local_ready() {
                "local".into()
            } else {
                "sim:plan".into()
            }
        });
        let model = agentry_llm::open(&spec, &options)?;
        let engine = Arc::new(agentry_exec::Engine::new(
            model,
            Arc::new(demo),
            agentry_exec::EngineConfig {
                policy,
                ..agentry_exec::EngineConfig::new(agentry_exec::Mode::Compiled)
            },
        ));
        let tool = agentry_tools::FnTool::new(
            agentry_core::ToolSpec::new(
                "agent",
                format!(
                    "An agentry agent ({spec}) with the tools get_weather, search, calculator, kv_set, kv_get, clock_now: give it a task, get its answer."
                ),
                serde_json::json!({"type": "object", "properties": {"task": {"type": "string",
                    "description": "What to do, in a sentence or two."}}, "required": ["task"],
                    "additionalProperties": false}),
            ),
            move |args: serde_json::Value, _cx| {
                let engine = Arc::clone(&engine);
                async move {
                    let task = args["task"].as_str().unwrap_or_default().to_owned();
                    let out = engine.run(&task, &agentry_exec::NoObserver).await;
                    match out.answer {
                        Some(answer) => Ok(serde_json::Value::String(answer)),
                        None => Err(agentry_core::ToolError::failed(
                            out.reason
                                .unwrap_or_else(|| "the agent ended without an answer".into()),
                        )),
                    }
                }
            },
        );
        tools
            .add(tool)
            .map_err(|e| anyhow::anyhow!("the agent tool: {e}"))?;
    }
    let tools = Arc::new(tools);
    match http {
        None => agentry_mcp::serve::serve_stdio(tools)
            .await
            .map_err(anyhow::Error::msg)?,
        Some(addr) => {
            let stop = tokio_util::sync::CancellationToken::new();
            let on_signal = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    on_signal.cancel();
                }
            });
            agentry_mcp::serve::serve_http(tools, addr, stop, |bound| {
                // The line a script waits for before it connects.
                println!("serving MCP at http://{bound}/mcp (Ctrl-C to stop)");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            })
            .await
            .map_err(anyhow::Error::msg)?;
        }
    }
    Ok(true)
}
