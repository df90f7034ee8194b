//! `agentry run`: an agent on a task, its steps on stderr as they happen, its answer on stdout.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use agentry_core::{RunStatus, TraceEvent, TraceKind};
use agentry_exec::{Agent, Budget, EngineConfig, Mode, Observer};
use agentry_llm::OpenOptions;
use anyhow::{Context, Result, bail};
use futures::StreamExt;

use crate::{
    args::{McpArgs, ModeArg, ModelArgs, ToolModeArg},
    policy::ApproveMode,
};

/// `agentry run`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The task.
    task: String,
    /// How to drive the model: a streamed plan whose tasks run as they are written
    /// (compiled, the default), or ReAct-style turns (sequential).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// The model: local, local:PATH (a GGUF file), sim:NAME, sim:PATH or openai:MODEL
    /// (default: local once set up, else a bundled simulated model).
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    local: ModelArgs,
    /// Send tools natively, or render them into the prompt and read calls from the text.
    #[arg(long, value_enum, default_value = "native")]
    tool_mode: ToolModeArg,
    /// Where traces go.
    #[arg(long, value_name = "FILE", default_value = ".agentry/traces.db")]
    trace_db: PathBuf,
    /// Keep no trace.
    #[arg(long)]
    no_trace: bool,
    /// Wall-time budget of the run, in seconds (default 300).
    #[arg(long)]
    timeout: Option<f64>,
    /// Most tool calls the run may make (default 1000).
    #[arg(long)]
    max_calls: Option<u64>,
    /// Most tokens the run may use.
    #[arg(long)]
    max_tokens: Option<u64>,
    /// Deadline of each tool call, in seconds (default 60).
    #[arg(long)]
    call_timeout: Option<f64>,
    /// Simulated latency of the demo lookup tools (get_weather, search), in milliseconds.
    #[arg(long, default_value_t = 500)]
    tool_latency_ms: u64,
    /// Print only the answer.
    #[arg(long, short)]
    quiet: bool,
    /// Print the outcome as one JSON object (run id, status, answer, calls, tokens, time).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    mcp: McpArgs,
    /// Offer only the MCP servers' (and the config's) tools, not the demo tools.
    #[arg(long)]
    no_demo_tools: bool,
    /// Offer a `python` tool: the model's code runs in a sandboxed interpreter (no network,
    /// files only in the run's workspace) with the other tools as functions.
    #[arg(long, value_name = "INTERPRETER", num_args = 0..=1, default_missing_value = "python3")]
    python: Option<String>,
    /// Code is the model's only action (CodeAct): the python tool is the one offered, the
    /// other tools are functions in its code. Sequential mode.
    #[arg(long)]
    code_actions: bool,
    /// A config file (default: agentry.toml here, if there is one): model, base_url,
    /// api_key_env, mode, policy, agent, approve, [budget] (timeout, max_calls,
    /// max_tokens, call_timeout) and [mcp.ALIAS] servers (command = [...] with env = {…},
    /// or url = "..." with oauth = {…}), [tools.NAME] command tools (argv templates run in
    /// the sandbox), [sandbox] and python; flags given here win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The policy a run's calls pass.
#[derive(Debug, Clone, clap::Args)]
struct PolicyArgs {
    /// A policy file (TOML, or YAML by extension): every call is allowed, denied, rewritten
    /// or held for approval by its rules. See the README's Policy section.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The agent's name in the policy (its visible tools and rate limits).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Who approves calls the policy marks `ask`: a prompt on this terminal (the default),
    /// the approval queue (`agentry approve ID`), or no one (refused).
    #[arg(long, value_enum)]
    approve: Option<ApproveMode>,
    /// The approval queue's directory.
    #[arg(long, value_name = "DIR", default_value = ".agentry/approvals")]
    approvals: PathBuf,
}

/// Shown after `agentry run --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  $ agentry run \"How much warmer is Oslo than Paris?\"                   # compiled plan, local model
  $ agentry run \"How much warmer is Oslo than Paris?\" --mode sequential # ReAct-style turns
  $ agentry run \"How much warmer is Oslo than Paris?\" --model sim:plan  # the simulated model
  $ agentry trace show last                                              # the timeline of that run

The default model is the embedded local one (Qwen2.5-Coder-0.5B-Instruct on llama.cpp, calls
grammar-constrained), once `scripts/local-model` has fetched it; until then, the simulated
model with a bundled script (sim:trip for sequential, sim:plan for compiled). Tools: the
demo tools (get_weather, search, calculator, kv_set, kv_get, clock_now, sleep).

OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set (and the other standard OTEL_* variables,
or [otel] in agentry.toml), every run is exported as spans in the GenAI conventions to any
OTLP collector (Arize Phoenix, Jaeger, Tempo…); content only with
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.";

/// `agentry run`: the flags, over the config file, then the run; returns whether the agent
/// answered.
pub(crate) fn run(args: Args) -> Result<bool> {
    let Args {
        task,
        mode,
        model,
        local,
        tool_mode,
        trace_db,
        no_trace,
        timeout,
        max_calls,
        max_tokens,
        call_timeout,
        tool_latency_ms,
        quiet,
        json,
        policy,
        mcp,
        no_demo_tools,
        python,
        code_actions,
        config,
    } = args;
    let explicit = config.is_some();
    let path = config.unwrap_or_else(|| PathBuf::from("agentry.toml"));
    let file = crate::config::load(&path, explicit)?;
    let mcp = mcp.specs(file.servers)?;
    let policy_file = policy.policy.or(file.policy);
    let agent = policy.agent.or(file.agent);
    if agent.is_some() && policy_file.is_none() {
        bail!(
            "--agent names an agent of a policy; give the policy with --policy (or policy = \"…\" in the config)"
        );
    }
    let model = model.or(file.model);
    let code_actions = code_actions || file.code_actions.unwrap_or(false);
    if code_actions && matches!(mode, Some(ModeArg::Compiled)) {
        bail!("--code-actions runs turn by turn; it cannot be used with --mode compiled");
    }
    let settings = Settings {
        mode: if code_actions {
            Mode::Sequential
        } else {
            mode.map_or(file.mode.unwrap_or(Mode::Compiled), Into::into)
        },
        model: model.as_deref(),
        options: ModelArgs {
            base_url: local.base_url.or(file.base_url),
            api_key: local.api_key.or(file.api_key),
            ..local
        }
        .options(tool_mode.into()),
        trace_db: (!no_trace).then_some(trace_db.as_path()),
        budget: Budget {
            wall: Some(seconds(timeout.or(file.timeout).unwrap_or(300.0))),
            tokens: max_tokens.or(file.max_tokens),
            tool_calls: Some(max_calls.or(file.max_calls).unwrap_or(1000)),
            ..Budget::default()
        },
        call_timeout: seconds(call_timeout.or(file.call_timeout).unwrap_or(60.0)),
        tool_latency: Duration::from_millis(tool_latency_ms),
        quiet,
        json,
        policy: policy_file
            .as_deref()
            .map(crate::policy::load)
            .transpose()?,
        approver: crate::policy::approver(
            policy
                .approve
                .or(file.approve)
                .unwrap_or(ApproveMode::Terminal),
            &policy.approvals,
        ),
        agent,
        mcp,
        oauth: file.oauth,
        demo_tools: !no_demo_tools,
        otel: file.otel,
        command_tools: file.command_tools,
        workspaces: file.workspaces,
        python: python.or(file.python),
        code_actions,
    };
    crate::runtime::block_on(run_agent(&task, settings))
}

/// A duration from seconds given on the command line (negative or NaN counts as zero).
fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() && s > 0.0 {
        s.min(1e9)
    } else {
        0.0
    })
}

/// Settings of `agentry run` beyond the task: the flags over the config file.
struct Settings<'a> {
    mode: Mode,
    model: Option<&'a str>,
    options: OpenOptions,
    trace_db: Option<&'a Path>,
    budget: Budget,
    call_timeout: Duration,
    tool_latency: Duration,
    quiet: bool,
    json: bool,
    policy: Option<Arc<agentry_policy::Policy>>,
    approver: Option<Arc<dyn agentry_policy::Approver>>,
    agent: Option<String>,
    mcp: Vec<agentry_mcp::ServerSpec>,
    /// Authorization settings of the servers that have their own (from the config), by alias.
    oauth: std::collections::BTreeMap<String, agentry_mcp::OAuthOptions>,
    demo_tools: bool,
    /// OpenTelemetry export as `[otel]` sets it (the `OTEL_*` variables win).
    otel: Option<agentry_trace::otlp::OtlpConfig>,
    command_tools: Vec<agentry_tools::CommandTool>,
    workspaces: agentry_tools::Workspaces,
    python: Option<String>,
    code_actions: bool,
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
                if *action == agentry_core::PolicyAction::Allow {
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

/// `s`, cut to `n` characters with `…` when it is longer.
pub(crate) fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Runs one agent; returns whether it answered.
async fn run_agent(task: &str, args: Settings<'_>) -> Result<bool> {
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
    let servers = crate::args::connect_mcp(&args.mcp, &args.oauth, args.quiet).await?;
    let cfg = EngineConfig {
        budget: args.budget,
        call_timeout: args.call_timeout,
        policy: args.policy.clone(),
        approver: args.approver.clone(),
        agent: args.agent.clone(),
        ..EngineConfig::new(args.mode)
    };
    // A server that says its tools changed is listed again; the next turn offers the new set.
    let mut agent = Agent::builder(Arc::clone(&model))
        .tools(&base)
        .config(cfg)
        .workspaces(args.workspaces.clone());
    for tool in &args.command_tools {
        agent = agent.tool(tool.clone());
    }
    if let Some(python) = &args.python {
        agent = agent.python(python.clone());
    }
    if args.code_actions {
        agent = agent.code_actions();
    }
    for server in &servers {
        agent = agent.mcp(Arc::clone(server));
    }
    let writer = crate::trace::open_writer(args.trace_db)?;
    if let Some(w) = &writer {
        agent = agent.observer(Arc::clone(w) as Arc<dyn Observer>);
    }
    let otel = crate::otel::start(args.otel.clone())?;
    if let Some(exporter) = &otel {
        agent = agent.otlp(Arc::clone(exporter));
    }
    let agent = agent.build()?;
    let tools = agent.tools().await?;
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
    if !args.quiet {
        eprintln!(
            "agentry run · {} mode · model {} · task: {task}",
            args.mode.as_str(),
            model.name()
        );
    }
    // The run's events as they happen, printed; Ctrl-C cancels the run, whose calls in
    // flight are cut and recorded and which ends `cancelled`. A second Ctrl-C leaves at once.
    let progress = Progress {
        out: Mutex::new(std::io::stderr()),
        calls: Mutex::default(),
    };
    let cancel = crate::signal::cancel_on_ctrl_c();
    let mut events = agent.stream(task);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = cancel.cancelled(), if !cancel.is_cancelled() => {
                events.cancel();
                continue;
            }
        };
        let Some(event) = event else { break };
        if !args.quiet {
            progress.event(&event);
        }
    }
    let outcome = events
        .outcome()
        .cloned()
        .context("the run ended without an outcome")?;
    for server in servers {
        server.close().await;
    }
    crate::trace::close_writer(writer)?;
    drop(agent);
    crate::otel::finish(otel, args.quiet);
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
