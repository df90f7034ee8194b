//! `agentry chat`: a conversation with an agent at the terminal, each turn streamed.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use agentry_core::TraceKind;
use agentry_exec::{Agent, Conversation, EngineConfig, Mode, Observer};
use anyhow::{Context, Result};
use futures::StreamExt;
use rustyline::{DefaultEditor, error::ReadlineError};

use crate::args::{McpArgs, ModeArg, ModelArgs, ToolModeArg};

/// `agentry chat`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The model: local, local:PATH, sim:NAME, sim:PATH or openai:MODEL (default: local once
    /// set up, else the simulated model sim:weather).
    #[arg(long)]
    model: Option<String>,
    /// Turns (sequential, the default) or a streamed plan per message (compiled).
    #[arg(long, value_enum, default_value = "sequential")]
    mode: ModeArg,
    #[command(flatten)]
    local: ModelArgs,
    /// Send tools natively, or render them into the prompt and read calls from the text.
    #[arg(long, value_enum, default_value = "native")]
    tool_mode: ToolModeArg,
    /// A system prompt.
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// A policy file every call passes (asks are refused: there is no one to ask mid-turn).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where traces go (`/trace` draws the last turn's).
    #[arg(long, value_name = "FILE", default_value = ".agentry/traces.db")]
    trace_db: PathBuf,
    /// Keep no trace.
    #[arg(long)]
    no_trace: bool,
    /// Simulated latency of the demo lookup tools (get_weather, search), in milliseconds.
    #[arg(long, default_value_t = 500)]
    tool_latency_ms: u64,
    #[command(flatten)]
    mcp: McpArgs,
    /// Offer only the MCP servers' tools, not the demo tools.
    #[arg(long)]
    no_demo_tools: bool,
}

/// `agentry chat`'s examples.
pub(crate) const EXAMPLES: &str = "\
Examples:
  $ agentry chat                                   # the local model (or sim:weather)
  $ agentry chat --model openai:gpt-4o-mini --system \"Answer briefly.\"
  $ agentry chat --no-demo-tools --mcp 'fs=npx -y @modelcontextprotocol/server-filesystem /tmp'

In the session: /tools lists the tools, /trace draws the last turn's timeline, /save FILE and
/load FILE keep and restore the conversation (JSON), /reset starts afresh, /exit (or Ctrl-D)
leaves. Ctrl-C during a turn cancels that turn, not the session.";

const HELP: &str = "/tools  the tools\n/trace  the last turn's timeline\n/save FILE, /load FILE  the conversation as JSON\n/reset  start afresh\n/exit   leave (or Ctrl-D)";

/// Runs the session until the user leaves.
pub(crate) fn run(args: Args) -> Result<bool> {
    let runtime = crate::runtime::multi_thread()?;
    let spec = match &args.model {
        Some(m) => m.clone(),
        None if agentry_llm::local_ready() => "local".into(),
        None => "sim:weather".into(),
    };
    let model = agentry_llm::open(&spec, &args.local.options(args.tool_mode.into()))?;
    let tools = if args.no_demo_tools {
        agentry_tools::ToolSet::new()
    } else {
        agentry_tools::demo_tools(Duration::from_millis(args.tool_latency_ms))
    };
    let specs = args.mcp.specs(Vec::new())?;
    let servers = runtime.block_on(crate::args::connect_mcp(&specs, &Default::default(), false))?;
    let cfg = EngineConfig {
        system_prompt: args.system,
        policy: args
            .policy
            .as_deref()
            .map(crate::policy::load)
            .transpose()?,
        ..EngineConfig::new(Mode::from(args.mode))
    };
    let trace_db = (!args.no_trace).then_some(args.trace_db.as_path());
    let writer = crate::trace::open_writer(trace_db)?;
    let mut agent = Agent::builder(Arc::clone(&model)).tools(&tools).config(cfg);
    for server in &servers {
        agent = agent.mcp(Arc::clone(server));
    }
    if let Some(w) = &writer {
        agent = agent.observer(Arc::clone(w) as Arc<dyn Observer>);
    }
    let otel = crate::otel::start(None)?;
    if let Some(exporter) = &otel {
        agent = agent.otlp(Arc::clone(exporter));
    }
    let agent = agent.build()?;
    let offered = runtime.block_on(agent.tools())?;
    let mut editor = DefaultEditor::new().context("starting the line editor")?;
    let history = Path::new(".agentry/chat_history");
    let _ = editor.load_history(history);
    eprintln!(
        "agentry chat · {} · {} tool(s) · /help for commands",
        model.name(),
        offered.specs().len()
    );
    let mut chat = Conversation::new();
    let mut last_run: Option<String> = None;
    loop {
        let line = match editor.readline("you> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading the next line"),
        };
        let said = line.trim();
        if said.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(said);
        let (command, rest) = said.split_once(' ').unwrap_or((said, ""));
        match command {
            "/exit" | "/quit" => break,
            "/help" => println!("{HELP}"),
            "/tools" => match runtime.block_on(agent.tools()) {
                Ok(tools) => {
                    for spec in tools.specs() {
                        println!("{}  {}", spec.name, spec.description);
                    }
                }
                Err(e) => println!("(the tools cannot be listed: {e})"),
            },
            "/reset" => {
                chat = Conversation::new();
                println!("(a new conversation)");
            }
            "/save" => match std::fs::write(rest.trim(), serde_json::to_vec_pretty(&chat)?) {
                Ok(()) => println!(
                    "(saved {} messages to {})",
                    chat.messages.len(),
                    rest.trim()
                ),
                Err(e) => println!("(cannot save to `{}`: {e})", rest.trim()),
            },
            "/load" => match std::fs::read(rest.trim())
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(loaded) => {
                    chat = loaded;
                    println!("(loaded {} messages)", chat.messages.len());
                }
                Err(e) => println!("(cannot load `{}`: {e})", rest.trim()),
            },
            "/trace" => match (&last_run, &writer) {
                (Some(run), Some(w)) => {
                    w.flush();
                    let store = agentry_trace::TraceStore::open(w.path())?;
                    let timeline = agentry_trace::timeline(&store.events(run)?);
                    print!("{}", agentry_trace::render(&timeline, 50));
                }
                (None, _) => println!("(no turn yet)"),
                (_, None) => println!("(no trace is kept: --no-trace)"),
            },
            c if c.starts_with('/') => println!("(unknown command {c}; /help lists them)"),
            _ => {
                chat.user(said);
                let (ended, run) = runtime.block_on(turn(&agent, &chat));
                last_run = Some(run);
                if let Some(next) = ended {
                    chat = next;
                } else {
                    // Cancelled or failed: the question is taken back, the session goes on.
                    chat.messages.pop();
                }
            }
        }
    }
    if let Some(dir) = history.parent() {
        let _ = agentry_trace::create_private_dir(dir);
    }
    let _ = editor.save_history(history);
    runtime.block_on(async {
        for server in servers {
            server.close().await;
        }
    });
    crate::trace::close_writer(writer)?;
    drop(agent);
    crate::otel::finish(otel, false);
    Ok(true)
}

/// One turn, streamed: the answer's text on stdout as it comes, calls on stderr. Returns
/// the conversation with the turn added (`None` when it gave no answer) and the run's id.
async fn turn(agent: &Agent, chat: &Conversation) -> (Option<Conversation>, String) {
    let mut events = agent.stream(chat);
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut run_id = String::new();
    let mut cancelled = false;
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = tokio::signal::ctrl_c(), if !cancelled => {
                cancelled = true;
                events.cancel();
                continue;
            }
        };
        let Some(event) = event else { break };
        run_id.clone_from(&event.run_id);
        match event.kind {
            TraceKind::TextDelta { text, .. } => {
                let _ = write!(out, "{text}");
                let _ = out.flush();
            }
            TraceKind::CallStarted { call, .. } => {
                let _ = writeln!(
                    err,
                    "  → {} {}",
                    call.name,
                    crate::run::short(&call.arguments.to_string(), 100)
                );
            }
            TraceKind::CallFinished { result, .. } => {
                let (mark, text) = match &result.outcome {
                    Ok(v) => ('✓', v.to_string()),
                    Err(e) => ('✗', format!("{}: {}", e.kind(), e.for_model())),
                };
                let _ = writeln!(
                    err,
                    "  {mark} {} {}",
                    result.name,
                    crate::run::short(&text, 100)
                );
            }
            TraceKind::RunFinished { status, reason, .. } => {
                let _ = writeln!(out);
                if status != agentry_core::RunStatus::Answered {
                    let _ = writeln!(err, "({}: {})", status.as_str(), reason.unwrap_or_default());
                }
            }
            _ => {}
        }
    }
    let next = events
        .result()
        .and_then(Result::ok)
        .map(|outcome| outcome.conversation);
    (next, run_id)
}
