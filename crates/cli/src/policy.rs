//! `--policy` for runs, the approvers behind `ask`, and `agentry policy …` / `agentry approve`.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use agentry_policy::{
    Action, Approval, ApprovalQueue, Approver, Pending, Policy, QueueNotice, arguments_hash,
};
use anyhow::{Context, Result};
use clap::Subcommand;
use futures::future::BoxFuture;

/// `agentry policy`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: Command,
}

/// Shown after `agentry policy --help`; `tests/help.rs` runs each `$ agentry` line.
pub(crate) const EXAMPLES: &str = "\
Examples:
  $ agentry policy check examples/policy/demo.toml
  $ agentry policy decide examples/policy/demo.toml --tool sleep --args '{\"ms\": 60000}'
  {\"action\":\"deny\",\"rule\":\"no long sleeps\",\"reason\":\"sleep at most 5 s\",\"rewritten\":null}";

#[derive(Debug, Subcommand)]
enum Command {
    /// Read a policy file: its rules, or the line and reason it is refused for.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Print the decision on one call as JSON (exit 1 if it is denied).
    Decide {
        /// The policy file.
        file: PathBuf,
        /// The tool's name.
        #[arg(long)]
        tool: String,
        /// The call's arguments, a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// The calling agent.
        #[arg(long)]
        agent: Option<String>,
        /// The server the tool comes from.
        #[arg(long)]
        server: Option<String>,
    },
}

/// `agentry approve`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct ApproveArgs {
    /// The approval's id (`a` and 16 hex digits), as the waiting run printed it.
    id: Option<String>,
    /// Refuse the call instead.
    #[arg(long)]
    deny: bool,
    /// The approval queue's directory.
    #[arg(long, value_name = "DIR", default_value = ".agentry/approvals")]
    approvals: PathBuf,
}

/// `agentry policy …`.
pub(crate) fn run(args: Args) -> Result<bool> {
    match args.what {
        Command::Check { file } => check(&file),
        Command::Decide {
            file,
            tool,
            args,
            agent,
            server,
        } => decide(&file, &tool, &args, agent.as_deref(), server.as_deref()),
    }
}

/// `agentry approve`: lists the waiting calls, or decides one.
pub(crate) fn approve(args: ApproveArgs) -> Result<bool> {
    decide_waiting(&args.approvals, args.id.as_deref(), args.deny)
}

/// Where `ask` decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ApproveMode {
    /// Prompt on this terminal (without one, no one is asked and the call is refused).
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

/// The approver for `mode`; `None` when no one can be asked (`never`, or `terminal` without
/// a terminal), which the model is told.
pub(crate) fn approver(mode: ApproveMode, queue: &Path) -> Option<Arc<dyn Approver>> {
    match mode {
        ApproveMode::Terminal if std::io::stdin().is_terminal() => {
            Some(Arc::new(Terminal::default()))
        }
        ApproveMode::Terminal | ApproveMode::Never => None,
        ApproveMode::Queue => Some(Arc::new(ApprovalQueue::new(queue).on_notice(tell))),
    }
}

/// Prints what the approval queue says, on stderr.
fn tell(notice: &QueueNotice) {
    match notice {
        QueueNotice::Waiting(p) => eprintln!(
            "⚖ {} waits for approval (run {}, call {}): agentry approve {} (or --deny)",
            p.tool.escape_debug(),
            p.run_id.escape_debug(),
            p.call_id.escape_debug(),
            p.id
        ),
        QueueNotice::Refused { id, why } => {
            eprintln!("⚖ a decision on {id} is refused, and the call waits on: {why}");
        }
        QueueNotice::Failed { id, why } => {
            eprintln!("⚖ {id} could not wait for approval, so it is refused: {why}");
        }
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
            request
                .rule
                .as_deref()
                .unwrap_or("the policy")
                .escape_debug(),
            request.call.name.escape_debug(),
            request.call.arguments,
            request.reason.escape_debug()
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

/// One waiting call on one line: id, tool, arguments, run, call, rule and reason. What came
/// from the model is escaped, so it cannot move the cursor or hide text.
fn describe(p: &Pending) -> String {
    let rule = p
        .rule
        .as_deref()
        .map(|r| format!(", rule {}", r.escape_debug()))
        .unwrap_or_default();
    format!(
        "{}  {} {}  (run {}, call {}{rule}: {})",
        p.id,
        p.tool.escape_debug(),
        p.arguments,
        p.run_id.escape_debug(),
        p.call_id.escape_debug(),
        p.reason.escape_debug()
    )
}

/// Lists the calls waiting in the queue at `dir`, or decides the one with `id`.
fn decide_waiting(dir: &Path, id: Option<&str>, deny: bool) -> Result<bool> {
    let queue = ApprovalQueue::new(dir);
    let Some(id) = id else {
        let waiting = queue.list()?;
        if waiting.is_empty() {
            println!("no call is waiting for approval in {}", dir.display());
        }
        for p in &waiting {
            println!("{}", describe(p));
        }
        return Ok(true);
    };
    let pending = queue.get(id)?;
    // The decision is on what is shown here: it names the hash of these arguments, and
    // the waiting call accepts it only if they are the ones it would run with.
    println!("{}", describe(&pending));
    let shown = arguments_hash(&pending.arguments);
    queue
        .decide(id, !deny, &shown)
        .with_context(|| format!("deciding {id}"))?;
    println!(
        "{id} {} (arguments sha256 {})",
        if deny { "denied" } else { "approved" },
        &shown[..16]
    );
    Ok(true)
}

/// `agentry policy check`: reads the file and says what it holds.
fn check(path: &Path) -> Result<bool> {
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
fn decide(
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
