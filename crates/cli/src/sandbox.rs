//! `agentry sandbox`: which layers work on this machine, and a program run under them.

use std::path::PathBuf;

use agentry_sandbox::{Program, Sandbox};
use anyhow::{Result, bail};

/// `agentry sandbox`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print which layers work on this machine (process group, rlimits, cgroup,
    /// capabilities, Landlock, seccomp), what each enforces, and why one does not.
    Check(CheckArgs),
    /// Run one program in the sandbox, as a command tool's program runs, and print what
    /// came of it (exit status, limits reached, peak memory).
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The config whose [sandbox] section to check (default: agentry.toml here, if any).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the layers as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The config whose [sandbox] section to use (default: agentry.toml here, if any).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The workspace (writable, the working directory); default: the config's workspaces
    /// directory's `manual`.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Allow the network.
    #[arg(long)]
    network: bool,
    /// Seconds before it is killed.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// The program and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    argv: Vec<String>,
}

/// Shown after `agentry sandbox --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  $ agentry sandbox check                       # which layers work here, and why not
  $ agentry sandbox run -- cat /etc/shadow      # refused: outside what it may read
  $ agentry sandbox run -- python3 -c 'print(1)'

Every layer is required unless [sandbox] may_skip in agentry.toml names it: a program tool
fails, saying which layer is missing and why, rather than run with less isolation.";

pub(crate) fn run(args: Args) -> Result<bool> {
    match args.command {
        Command::Check(a) => check(a),
        Command::Run(a) => crate::runtime::block_on(exec(a)),
    }
}

fn workspaces(config: Option<PathBuf>) -> Result<agentry_tools::Workspaces> {
    let explicit = config.is_some();
    let path = config.unwrap_or_else(|| PathBuf::from("agentry.toml"));
    Ok(crate::config::load(&path, explicit)?.workspaces)
}

fn check(args: CheckArgs) -> Result<bool> {
    let ws = workspaces(args.config)?;
    let layers = Sandbox::check(&ws.base);
    let ok = layers
        .iter()
        .all(|l| l.active || ws.base.may_skip.contains(&l.layer));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&layers)?);
        return Ok(ok);
    }
    for l in &layers {
        let mark = match (l.active, ws.base.may_skip.contains(&l.layer)) {
            (true, _) => "✓",
            (false, true) => "~",
            (false, false) => "✗",
        };
        println!("{mark} {:<13} {}", l.layer.as_str(), l.detail);
    }
    let missing: Vec<&str> = layers
        .iter()
        .filter(|l| !l.active && !ws.base.may_skip.contains(&l.layer))
        .map(|l| l.layer.as_str())
        .collect();
    if missing.is_empty() {
        println!(
            "program tools can run here (workspaces in {})",
            ws.root.display()
        );
    } else {
        println!(
            "program tools will fail here: {} missing (allow with [sandbox] may_skip = [\"{}\"] in agentry.toml)",
            missing.join(", "),
            missing.join("\", \"")
        );
    }
    Ok(ok)
}

async fn exec(args: RunArgs) -> Result<bool> {
    let ws = workspaces(args.config)?;
    let mut policy = ws.base.clone();
    policy.workspace = args.workspace.unwrap_or_else(|| ws.root.join("manual"));
    policy.network = args.network;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let sandbox = Sandbox::new(policy)?;
    let program = Program::new(args.argv)
        .timeout(std::time::Duration::from_secs_f64(args.timeout))
        .output_cap(16 << 20);
    let out = sandbox.run(program).await?;
    use std::io::Write;
    std::io::stdout().write_all(&out.stdout)?;
    std::io::stderr().write_all(&out.stderr)?;
    let limits = &sandbox.policy().limits;
    let mut summary = match out.exit {
        agentry_sandbox::Exit::Code(c) => format!("exit status {c}"),
        agentry_sandbox::Exit::Signal(s) => format!("killed by signal {s}"),
    };
    if let Some(why) = out.limit_reached(limits) {
        summary.push_str(&format!(": {why}"));
    }
    if let Some(peak) = out.peak_memory {
        summary.push_str(&format!(" · peak memory {}", agentry_sandbox::bytes(peak)));
    }
    if out.killed_leftovers > 0 {
        summary.push_str(" · processes it left were killed");
    }
    let layers: Vec<&str> = out
        .layers
        .iter()
        .filter(|l| l.active)
        .map(|l| l.layer.as_str())
        .collect();
    eprintln!(
        "— {summary} · {:.3}s · layers: {}",
        out.wall.as_secs_f64(),
        layers.join(", ")
    );
    Ok(out.success())
}
