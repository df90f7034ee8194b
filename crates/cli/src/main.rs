//! The `agentry` command: flags, one library call, an exit code.
//!
//! This file is the table of subcommands. Each subcommand (or family of them) is a module
//! holding its flags (`Args`, its `--help`) and a `run` that makes the library call and
//! prints; `main` hands each its flags and turns the outcome into the exit code
//! (`finish`). What several commands share is in one place each: flags (`args`), the
//! async runtime (`runtime`), Ctrl-C (`signal`), progress bars (`progress`) and the
//! trace store's writer (`trace`).

mod args;
mod ask;
mod bench;
mod bench_dag;
mod bench_llm;
#[cfg(feature = "local")]
mod bench_local;
mod bench_peers;
mod bench_proxy;
mod chat;
mod config;
mod eval;
mod mcp;
mod otel;
mod parse;
mod policy;
mod progress;
mod run;
mod runtime;
mod sandbox;
mod signal;
mod sim_server;
mod taubench;
mod trace;
mod ui;
mod validate;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

// Parsing and validation allocate many small values (JSON maps and strings); mimalloc builds
// them about 25% faster than glibc's allocator here (`agentry bench parse`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A runtime for tool-using LLM agents: parallel, validated, policy-checked, recorded.
#[derive(Debug, Parser)]
#[command(name = "agentry", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an agent on a task: the model's calls run (in parallel where they can), validated,
    /// bounded and recorded; progress on stderr, the answer on stdout.
    #[command(after_help = run::EXAMPLES)]
    Run(run::Args),
    /// Talk with an agent: each message a run that continues the conversation, its text
    /// streamed, its calls shown; line editing and history, /tools, /trace, /reset.
    #[command(after_help = chat::EXAMPLES)]
    Chat(chat::Args),
    /// The trace viewer: a local web app of the runs (live), each run's timeline, plan
    /// and steps, and the eval reports.
    #[command(after_help = ui::EXAMPLES)]
    Ui(ui::Args),
    /// Look at recorded runs: list them, draw one as a timeline, export its events.
    Trace(trace::Args),
    /// Re-run a recorded run with its recorded model outputs and tool results, and check that
    /// every step comes out the same; a divergence names the first differing step.
    Replay(trace::ReplayArgs),
    /// Extract tool calls from model text on stdin and print them as JSON.
    #[command(after_help = parse::EXAMPLES)]
    Parse(parse::Args),
    /// Check calls (a JSON array on stdin) against the tools' JSON Schemas.
    #[command(after_help = validate::EXAMPLES)]
    Validate(validate::Args),
    /// Send one prompt to a model and stream its reply: text as it comes, each call as it completes.
    #[command(after_help = ask::EXAMPLES)]
    Ask(ask::Args),
    /// Serve a simulated model as an OpenAI-compatible endpoint (streaming and not).
    #[command(after_help = sim_server::EXAMPLES)]
    SimServer(sim_server::Args),
    /// Run the field's benchmarks: BFCL's AST checker, τ-bench's stateful tasks with pass^k.
    Eval(eval::Args),
    /// Check a policy file, or see what it decides for one call.
    #[command(after_help = policy::EXAMPLES)]
    Policy(policy::Args),
    /// Sit between an MCP client and an MCP server (stdio, or Streamable HTTP with --http):
    /// forward everything, put each
    /// tools/call through the policy (a denied call never reaches the server; the client gets
    /// an error result with the reason), and write all traffic to an audit trail.
    #[command(after_help = mcp::PROXY_EXAMPLES)]
    Proxy(mcp::ProxyArgs),
    /// agentry as an MCP server; any MCP server's tools, listed or called by hand.
    Mcp(mcp::Args),
    /// Approve (or --deny) a call waiting in the approval queue; without an id, list them
    /// (id, tool, arguments, run, reason). The call decided is shown, and the decision holds
    /// only for the arguments shown.
    Approve(policy::ApproveArgs),
    /// Measure agentry's own speed and print ratios against a baseline from the same run.
    Bench(bench::Args),
    /// The sandbox that program tools run in: check its layers here, run a program in it.
    #[command(after_help = sandbox::EXAMPLES)]
    Sandbox(sandbox::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Ui(args) => ui::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Replay(args) => trace::replay(args),
        Command::Parse(args) => parse::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Ask(args) => ask::run(args),
        Command::SimServer(args) => sim_server::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Proxy(args) => mcp::proxy(args),
        Command::Mcp(args) => mcp::run(args),
        Command::Approve(args) => policy::approve(args),
        Command::Bench(args) => bench::run(args),
        Command::Sandbox(args) => sandbox::run(args),
    };
    finish(result)
}

/// The exit code of a command's outcome: 0 when it succeeded, 1 when it ran but failed (a
/// call invalid, a run without an answer…), 2 when it could not run.
fn finish(result: Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
