//! The `agentry` command: flags, one library call, an exit code.

mod ask;
mod bench;
mod bench_dag;
mod bench_llm;
#[cfg(feature = "local")]
mod bench_local;
mod bench_peers;
mod bench_proxy;
mod config;
mod eval;
mod mcp;
mod policy;
mod run;
mod taubench;

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use agentry_core::{ToolCall, ToolSpec};
use agentry_parse::{CallParser, Event, Format};
use agentry_schema::{Coercion, Validators};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

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
    approve: Option<policy::ApproveMode>,
    /// The approval queue's directory.
    #[arg(long, value_name = "DIR", default_value = ".agentry/approvals")]
    approvals: PathBuf,
}

/// Settings of the embedded local model (`--model local` or `local:PATH`).
#[derive(Debug, Clone, clap::Args)]
struct LocalArgs {
    /// Local model: CPU threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<u32>,
    /// Local model: context size in tokens; a longer prompt is an error (default 4096;
    /// 16384 for τ-bench, whose policy and tools alone take 4,300).
    #[arg(long, value_name = "TOKENS")]
    context: Option<u32>,
    /// Local model: decode without the grammar that keeps calls valid (for comparison).
    #[arg(long)]
    no_constrain: bool,
}

impl LocalArgs {
    fn options(
        &self,
        tool_mode: agentry_llm::ToolMode,
        base_url: Option<String>,
        api_key: Option<String>,
    ) -> agentry_llm::OpenOptions {
        agentry_llm::OpenOptions {
            tool_mode: Some(tool_mode),
            base_url,
            api_key,
            threads: self.threads,
            context: Some(self.context.unwrap_or(4096)),
            constrain: Some(!self.no_constrain),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an agent on a task: the model's calls run (in parallel where they can), validated,
    /// bounded and recorded; progress on stderr, the answer on stdout.
    #[command(after_help = "\
Examples:
  $ agentry run \"How much warmer is Oslo than Paris?\"                   # compiled plan, local model
  $ agentry run \"How much warmer is Oslo than Paris?\" --mode sequential # ReAct-style turns
  $ agentry run \"How much warmer is Oslo than Paris?\" --model sim:plan  # the simulated model
  $ agentry trace show last                                              # the timeline of that run

The default model is the embedded local one (Qwen2.5-Coder-0.5B-Instruct on llama.cpp, calls
grammar-constrained), once `scripts/local-model` has fetched it; until then, the simulated
model with a bundled script (sim:trip for sequential, sim:plan for compiled). Tools: the
demo tools (get_weather, search, calculator, kv_set, kv_get, clock_now, sleep).")]
    Run {
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
        local: LocalArgs,
        /// Base URL of an OpenAI-compatible server (instead of OPENAI_BASE_URL).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// API key (instead of OPENAI_API_KEY).
        #[arg(long, value_name = "KEY")]
        api_key: Option<String>,
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
        /// An MCP server whose tools the agent may call: ALIAS=COMMAND (repeatable), e.g.
        /// 'fs=npx -y @modelcontextprotocol/server-filesystem /tmp/x'. A tool whose name is
        /// taken is offered as ALIAS__name; policies match the alias as `server`.
        #[arg(long, value_name = "ALIAS=COMMAND")]
        mcp: Vec<String>,
        /// A variable for the MCP server ALIAS (repeatable): ALIAS=KEY=VALUE, or ALIAS=KEY to
        /// pass on agentry's own KEY. A server inherits only HOME, LOGNAME, PATH, SHELL, TERM,
        /// USER, LANG, LC_ALL, LC_CTYPE and TMPDIR otherwise (no API keys).
        #[arg(long, value_name = "ALIAS=KEY[=VALUE]")]
        mcp_env: Vec<String>,
        /// Offer only the MCP servers' tools, not the demo tools.
        #[arg(long)]
        no_demo_tools: bool,
        /// A config file (default: agentry.toml here, if there is one): model, base_url,
        /// api_key_env, mode, policy, agent, approve, [budget] (timeout, max_calls,
        /// max_tokens, call_timeout) and [mcp.ALIAS] servers (command = [...] with env = {…},
        /// or url = "..." with oauth = {…}); flags given here win over it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The trace viewer: a local web app of the runs (live), each run's timeline, plan
    /// and steps, and the eval reports.
    #[command(after_help = "\
Examples:
  agentry ui                          http://127.0.0.1:7878/ over .agentry/traces.db
  agentry ui --port 0 --trace-db runs.db --reports results/
  agentry ui --host 0.0.0.0 --token S3CRET   (beyond this machine: a token is required)
  agentry ui --host 0.0.0.0 --token S3CRET --allowed-host box.lan   (reached as box.lan too)

The viewer answers only requests whose Host it is reached by (against DNS rebinding):
localhost, 127.0.0.1 and [::1] on any port; beyond loopback also the address it listens on
(any IP address with 0.0.0.0) and each --allowed-host. Others get 403.")]
    Ui {
        /// The port (0 picks a free one).
        #[arg(long, default_value_t = 7878)]
        port: u16,
        /// The address to listen on; anything but loopback needs --token.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// The trace store.
        #[arg(long, value_name = "FILE", default_value = ".agentry/traces.db")]
        trace_db: PathBuf,
        /// Where eval reports are (repeatable; searched three levels deep).
        #[arg(long, value_name = "DIR", default_values = [".agentry", "."])]
        reports: Vec<PathBuf>,
        /// A token every request must carry (the printed address includes it).
        #[arg(long)]
        token: Option<String>,
        /// A name the viewer is reached by besides loopback and the address it listens on:
        /// NAME or NAME:PORT (repeatable), e.g. the machine's name on the network.
        #[arg(long, value_name = "NAME[:PORT]", value_parser = host_name)]
        allowed_host: Vec<String>,
    },
    /// Look at recorded runs: list them, draw one as a timeline, export its events.
    Trace {
        #[command(subcommand)]
        what: TraceCommand,
        /// The trace store.
        #[arg(
            long,
            value_name = "FILE",
            default_value = ".agentry/traces.db",
            global = true
        )]
        trace_db: PathBuf,
    },
    /// Re-run a recorded run with its recorded model outputs and tool results, and check that
    /// every step comes out the same; a divergence names the first differing step.
    Replay {
        /// The run: its id, a unique prefix, or `last`.
        run: String,
        /// The trace store.
        #[arg(long, value_name = "FILE", default_value = ".agentry/traces.db")]
        trace_db: PathBuf,
    },
    /// Extract tool calls from model text on stdin and print them as JSON.
    #[command(after_help = "\
Example:
  $ echo '<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>' | agentry parse
  [{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}]

  $ echo '[get_weather(city=\"Paris\"), convert(x=1.5)]' | agentry parse --format python

Repairs (trailing commas, single quotes, a missing final brace…) and calls that could not be
read are reported on stderr. Exits 1 if nothing was parsed and errors occurred.")]
    Parse {
        /// The syntax the model writes calls in; `auto` detects every format.
        #[arg(long, value_enum, default_value = "auto")]
        format: FormatArg,
        /// Print every event (text, call with span and repairs, malformed) as JSON lines.
        #[arg(long)]
        events: bool,
    },
    /// Check calls (a JSON array on stdin) against the tools' JSON Schemas.
    #[command(after_help = "\
Example:
  $ cat tools.json
  [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"…\",
    \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},
                   \"required\": [\"city\"]}}}]
  $ echo '[{\"name\": \"get_weather\", \"arguments\": {}}]' | agentry validate --tools tools.json
  invalid get_weather: `$`: the required property `city` is missing

The input is what `agentry parse` prints, so the two chain:
  $ agentry parse < reply.txt | agentry validate --tools tools.json
Exits 1 if any call is invalid.")]
    Validate {
        /// A JSON array of tool definitions, OpenAI-style or bare {name, description, parameters}.
        #[arg(long, value_name = "TOOLS.json")]
        tools: PathBuf,
        /// Allow coercions (numeric strings to numbers, single values to arrays) and report them.
        #[arg(long)]
        coerce: bool,
        /// Print one JSON object per call instead of a line of text.
        #[arg(long)]
        json: bool,
    },
    /// Send one prompt to a model and stream its reply: text as it comes, each call as it completes.
    #[command(after_help = "\
Example:
  $ agentry ask \"What is the weather in Oslo?\" --model sim:weather
  → call get_weather {\"city\":\"Oslo\"}  [call_00000001]  +0.31s

Models: sim:NAME (bundled scripts: weather, hermes, plan, trip), sim:PATH (a script file, see
examples/sim/), openai:MODEL (any OpenAI-compatible server: OPENAI_BASE_URL, OPENAI_API_KEY).")]
    Ask {
        /// What to ask.
        prompt: String,
        /// The model: local, local:PATH (a GGUF file), sim:NAME, sim:PATH or openai:MODEL.
        #[arg(long, default_value = "sim:weather")]
        model: String,
        #[command(flatten)]
        local: LocalArgs,
        /// Tools to offer: a JSON array of tool definitions.
        #[arg(long, value_name = "TOOLS.json")]
        tools: Option<PathBuf>,
        /// Send tools natively, or render them into the prompt and read calls from the text.
        #[arg(long, value_enum, default_value = "native")]
        tool_mode: ToolModeArg,
        /// A system message.
        #[arg(long)]
        system: Option<String>,
        /// Base URL of an OpenAI-compatible server (instead of OPENAI_BASE_URL).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// API key (instead of OPENAI_API_KEY).
        #[arg(long, value_name = "KEY")]
        api_key: Option<String>,
    },
    /// Serve a simulated model as an OpenAI-compatible endpoint (streaming and not).
    #[command(after_help = "\
Example:
  $ agentry sim-server --script examples/sim/weather.yaml --port 8089
  serving sim:weather at http://127.0.0.1:8089/v1
  $ curl -s http://127.0.0.1:8089/v1/chat/completions -d '{\"model\": \"sim\", \"messages\": [{\"role\": \"user\", \"content\": \"weather in Rome?\"}]}'

Any OpenAI client pointed at that URL (LangGraph, the OpenAI Agents SDK, agentry itself)
gets the same replies with the same latency. Stops on Ctrl-C.")]
    SimServer {
        /// The script: a file (.yaml, .yml, .json) or a bundled name (weather, hermes, plan, trip).
        #[arg(long)]
        script: String,
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8089)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// A name the server is reached by besides loopback and the address it listens on:
        /// NAME or NAME:PORT (repeatable). Requests by other names get 403.
        #[arg(long, value_name = "NAME[:PORT]", value_parser = host_name)]
        allowed_host: Vec<String>,
    },
    /// Run the field's benchmarks: BFCL's AST checker, τ-bench's stateful tasks with pass^k.
    Eval {
        #[command(subcommand)]
        what: EvalCommand,
    },
    /// Check a policy file, or see what it decides for one call.
    #[command(after_help = "\
Examples:
  $ agentry policy check examples/policy/demo.toml
  $ agentry policy decide examples/policy/demo.toml --tool sleep --args '{\"ms\": 60000}'
  {\"action\":\"deny\",\"rule\":\"no long sleeps\",\"reason\":\"sleep at most 5 s\",\"rewritten\":null}")]
    Policy {
        #[command(subcommand)]
        what: PolicyCommand,
    },
    /// Sit between an MCP client and an MCP server (stdio, or Streamable HTTP with --http):
    /// forward everything, put each
    /// tools/call through the policy (a denied call never reaches the server; the client gets
    /// an error result with the reason), and write all traffic to an audit trail.
    #[command(after_help = "\
Example (in an MCP client's server configuration, e.g. Claude Desktop's):
  \"command\": \"agentry\",
  \"args\": [\"proxy\", \"--policy\", \"/home/me/fs-policy.toml\", \"--server-name\", \"fs\", \"--\",
           \"npx\", \"-y\", \"@modelcontextprotocol/server-filesystem\", \"/home/me/notes\"]

Calls the policy marks `ask` wait in the approval queue (agentry approve ID); stdin belongs
to the MCP client, so there is no terminal prompt.")]
    Proxy {
        /// The policy file.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The server's name in the policy (`server = …` in rules).
        #[arg(long, value_name = "NAME")]
        server_name: Option<String>,
        /// The calling agent's name in the policy.
        #[arg(long, value_name = "NAME")]
        agent: Option<String>,
        /// Who approves calls marked `ask`: the approval queue, or no one.
        #[arg(long, value_enum, default_value = "queue")]
        approve: policy::ApproveMode,
        /// The approval queue's directory.
        #[arg(long, value_name = "DIR", default_value = ".agentry/approvals")]
        approvals: PathBuf,
        /// The audit trail: every message both ways and every decision, as JSON lines.
        #[arg(long, value_name = "FILE", default_value = ".agentry/audit.jsonl")]
        audit: PathBuf,
        /// Keep no audit trail.
        #[arg(long)]
        no_audit: bool,
        /// Face the client over Streamable HTTP on this port (0 picks one) at /mcp, instead
        /// of stdio; the server behind may be a command or a URL.
        #[arg(long, value_name = "PORT")]
        http: Option<u16>,
        /// A variable for the server's command (repeatable): KEY=VALUE, or KEY to pass on
        /// agentry's own. Otherwise it inherits only HOME, LOGNAME, PATH, SHELL, TERM, USER,
        /// LANG, LC_ALL, LC_CTYPE and TMPDIR.
        #[arg(long, value_name = "KEY[=VALUE]")]
        env: Vec<String>,
        /// The MCP server's command line (or, with --http, its URL), after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// agentry as an MCP server; any MCP server's tools, listed or called by hand.
    Mcp {
        #[command(subcommand)]
        what: McpCommand,
    },
    /// Approve (or --deny) a call waiting in the approval queue; without an id, list them
    /// (id, tool, arguments, run, reason). The call decided is shown, and the decision holds
    /// only for the arguments shown.
    Approve {
        /// The approval's id (`a` and 16 hex digits), as the waiting run printed it.
        id: Option<String>,
        /// Refuse the call instead.
        #[arg(long)]
        deny: bool,
        /// The approval queue's directory.
        #[arg(long, value_name = "DIR", default_value = ".agentry/approvals")]
        approvals: PathBuf,
    },
    /// Measure agentry's own speed and print ratios against a baseline from the same run.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Call parsing (MB/s, whole vs 1-byte chunks, against serde_json) and validation (µs per call).
    #[command(after_help = "Example:\n  $ cargo run --release -p agentry-cli -- bench parse")]
    Parse {
        /// Approximate size of each benchmark input, in MB.
        #[arg(long, default_value_t = 4)]
        mb: usize,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The embedded local model: prompt and generation speed against llama.cpp driven
    /// directly through its C API, constrained vs unconstrained decoding on BFCL simple_python (speed,
    /// schema-valid calls, AST accuracy), time to the first dispatched call, peak RSS.
    #[cfg(feature = "local")]
    #[command(
        after_help = "Example (bench/local/run builds the baseline against the same llama.cpp):\n  \
        $ bench/local/run\n  $ agentry bench local --baseline target/llama-baseline --data ../shared/bfcl"
    )]
    Local(bench_local::Args),
    /// Sequential vs compiled makespan on plan shapes against the critical-path bound, engine
    /// overhead per call, and many concurrent runs with their peak memory.
    #[command(after_help = "Example:\n  $ cargo run --release -p agentry-cli -- bench dag")]
    Dag {
        /// Concurrent runs for the load test.
        #[arg(long, default_value_t = 10_000)]
        runs: usize,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The latency `agentry proxy` adds to an MCP tools/call round trip, against the same
    /// server called directly (server-everything's echo from scripts/mcp-servers).
    #[command(
        after_help = "Example:\n  $ bash scripts/mcp-servers && cargo run --release -p agentry-cli -- bench proxy"
    )]
    Proxy {
        /// Calls per side.
        #[arg(long, default_value_t = 4000)]
        calls: usize,
        /// Alternating rounds the calls are split into.
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        /// The MCP server command (default: server-everything from scripts/mcp-servers).
        #[arg(long)]
        server: Option<String>,
        /// Run the proxy without its audit trail.
        #[arg(long)]
        no_audit: bool,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// agentry against LangGraph and the OpenAI Agents SDK on the same simulated model and
    /// tools (bench/peers/run installs them and calls this): latency, CPU and memory per
    /// workload, as a table, JSON, Markdown and a PNG chart.
    Peers {
        /// The Python of the virtual environment with the contenders installed.
        #[arg(long, value_name = "PATH")]
        python: Option<PathBuf>,
        /// bench/peers/run's record of which contenders installed.
        #[arg(long, value_name = "FILE")]
        installed: Option<PathBuf>,
        /// Tasks per workload (a)–(c), one after another.
        #[arg(long, default_value_t = 10)]
        repeat: usize,
        /// Tasks at once in workload (d).
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Where react.yaml, plan.yaml and driver.py are.
        #[arg(long, value_name = "DIR", default_value = "bench/peers")]
        scripts: PathBuf,
        /// Where the results go.
        #[arg(long, value_name = "DIR", default_value = "bench/peers/results")]
        out: PathBuf,
    },
    /// One agentry contender of `bench peers` (a process of its own).
    #[command(hide = true)]
    Peer {
        #[arg(long)]
        workload: String,
        #[arg(long, value_enum)]
        mode: ModeArg,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 10)]
        repeat: usize,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// The model client's CPU per streamed token, and the sim server under concurrent load.
    #[command(
        after_help = "Example:\n  $ cargo run --release -p agentry-cli -- bench llm --streams 1000"
    )]
    Llm {
        /// Concurrent streaming requests for the load test.
        #[arg(long, default_value_t = 1000)]
        streams: usize,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// The Berkeley Function-Calling Leaderboard.
    Bfcl {
        #[command(subcommand)]
        what: BfclCommand,
    },
    /// τ-bench: an agent serves simulated customers against a stateful database; judged by
    /// the final database and what it said, over K trials (pass^k).
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = "\
Examples:
  $ agentry eval taubench --data ../shared/taubench --model noop              # the floor
  $ agentry eval taubench --data ../shared/taubench --model oracle            # the ceiling
  $ agentry eval taubench --data ../shared/taubench --model local --user-model local \\
        --split dev --task-ids 0-4 --trials 4
  $ agentry eval taubench --data ../shared/taubench --model openai:gpt-4o-mini \\
        --user-model openai:gpt-4o --trials 4 --concurrency 16
  $ agentry eval taubench replay --data ../shared/taubench                     # ground truth

The agent sees the domain's policy (wiki.md) as its system prompt and its tools; each step it
may make one call (validated against the tool's schema) or talk to the user. An episode ends
when the user says ###STOP###, the agent hands off to a human, or --max-steps pass (reward 0).
Reward 1 needs the final database to equal the ground truth's and every required output said.
Reports go to .agentry/taubench/DOMAIN-SPLIT-MODEL.{json,md}; every episode is in the trace
store (agentry trace list / show)."
    )]
    Taubench {
        #[command(subcommand)]
        what: Option<TaubenchCommand>,
        #[command(flatten)]
        run: Box<TaubenchRunArgs>,
    },
}

/// Options of a τ-bench run.
#[derive(Debug, clap::Args)]
struct TaubenchRunArgs {
    /// The τ-bench data directory (holding retail/), or the domain's directory itself.
    #[arg(long, value_name = "DIR", required = true)]
    data: Option<PathBuf>,
    /// The domain.
    #[arg(long, default_value = "retail")]
    domain: String,
    /// The task split.
    #[arg(long, default_value = "test", value_parser = parse_split)]
    split: agentry_eval::taubench::Split,
    /// The agent: noop (hands off at once: the floor), oracle (plays the ground truth: the
    /// ceiling), local, local:PATH, sim:NAME, sim:PATH or openai:MODEL.
    #[arg(long, required = true)]
    model: Option<String>,
    /// Who plays the user: scripted, or a model as for --model (default: scripted for
    /// noop/oracle, else the agent's model).
    #[arg(long)]
    user_model: Option<String>,
    /// Sampling temperature of the user model (τ-bench leaves the provider's default, 1.0).
    #[arg(long, default_value_t = 1.0)]
    user_temperature: f32,
    /// Trials per task; pass^1 … pass^K are reported.
    #[arg(long, default_value_t = 1)]
    trials: usize,
    /// Episodes at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Only these tasks: ids (positions in the split) and ranges, e.g. 0,3,10-19.
    #[arg(long, value_name = "IDS")]
    task_ids: Option<String>,
    /// Agent steps (model requests) before an episode is cut off with reward 0.
    #[arg(long, default_value_t = 30)]
    max_steps: u32,
    /// Where the reports go: PATH.json and PATH.md.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Where the episodes' traces go.
    #[arg(long, value_name = "FILE", default_value = ".agentry/traces.db")]
    trace_db: PathBuf,
    /// Keep no traces.
    #[arg(long)]
    no_trace: bool,
    /// A policy file every call of the agent passes (see `agentry policy`); what it denies
    /// goes back to the agent as an error. Calls it marks `ask` are refused.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The agent model's price per million prompt tokens, for its cost per successful task.
    #[arg(long, value_name = "USD", requires = "price_out")]
    price_in: Option<f64>,
    /// The agent model's price per million completion tokens.
    #[arg(long, value_name = "USD", requires = "price_in")]
    price_out: Option<f64>,
    #[command(flatten)]
    local: LocalArgs,
    /// Base URL of an OpenAI-compatible server (instead of OPENAI_BASE_URL).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// API key (instead of OPENAI_API_KEY).
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
enum McpCommand {
    /// Offer agentry's tools, and an agent as the tool `agent` (a task in, its answer out),
    /// to any MCP client over stdio (or Streamable HTTP with --http).
    #[command(after_help = "\
Example (an MCP client's server configuration):
  \"command\": \"agentry\", \"args\": [\"mcp\", \"serve\", \"--model\", \"local\"]

Tools: get_weather, search, calculator, kv_set, kv_get, clock_now, sleep, and agent.
Every call is validated against its schema before it runs.")]
    Serve {
        /// The agent's model: local, local:PATH, sim:NAME, sim:PATH or openai:MODEL (default:
        /// local once set up, else sim:plan).
        #[arg(long)]
        model: Option<String>,
        /// Do not offer the `agent` tool.
        #[arg(long)]
        no_agent: bool,
        /// A policy the agent's calls pass.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Serve over Streamable HTTP on this port (0 picks one) at /mcp, instead of stdio.
        #[arg(long, value_name = "PORT")]
        http: Option<u16>,
        /// The address to listen on with --http.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        #[command(flatten)]
        local: LocalArgs,
    },
    /// List an MCP server's tools as JSON: name, description, inputSchema, outputSchema.
    #[command(after_help = "\
Examples:
  agentry mcp tools http://127.0.0.1:8080/mcp
  agentry mcp tools -- npx -y @modelcontextprotocol/server-filesystem /tmp
  agentry mcp tools --env GITHUB_TOKEN -- npx -y @modelcontextprotocol/server-github")]
    Tools {
        /// A variable for the server's command (repeatable): KEY=VALUE, or KEY to pass on
        /// agentry's own. Otherwise it inherits only HOME, LOGNAME, PATH, SHELL, TERM, USER,
        /// LANG, LC_ALL, LC_CTYPE and TMPDIR.
        #[arg(long, value_name = "KEY[=VALUE]")]
        env: Vec<String>,
        /// The server: its URL (Streamable HTTP) or its command line (stdio).
        #[arg(required = true, trailing_var_arg = true, value_name = "SERVER")]
        server: Vec<String>,
    },
    /// Call one tool of an MCP server and print its result as the server sent it (exit 1 if
    /// the result is an error).
    #[command(after_help = "\
Example:
  agentry mcp call read_file --args '{\"path\": \"/tmp/a.txt\"}' -- npx -y @modelcontextprotocol/server-filesystem /tmp

A server over HTTP that asks for authorization gets OAuth: the address to approve goes to
$BROWSER (or is printed). A client registered beforehand: AGENTRY_OAUTH_CLIENT_ID and
AGENTRY_OAUTH_CLIENT_SECRET; unattended, with AGENTRY_OAUTH_GRANT=client_credentials.")]
    Call {
        /// The tool's name, as the server lists it.
        tool: String,
        /// Its arguments, a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// How to answer the server's requests for user input: decline, or accept with the
        /// form's defaults.
        #[arg(long, value_enum, default_value = "decline")]
        elicit: Elicit,
        /// A variable for the server's command (repeatable): KEY=VALUE, or KEY to pass on
        /// agentry's own. Otherwise it inherits only HOME, LOGNAME, PATH, SHELL, TERM, USER,
        /// LANG, LC_ALL, LC_CTYPE and TMPDIR.
        #[arg(long, value_name = "KEY[=VALUE]")]
        env: Vec<String>,
        /// The server: its URL (Streamable HTTP) or its command line (stdio).
        #[arg(required = true, trailing_var_arg = true, value_name = "SERVER")]
        server: Vec<String>,
    },
}

/// `--elicit`: how `agentry mcp call` answers elicitation.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Elicit {
    /// Decline every request.
    Decline,
    /// Accept a form with its schema's defaults (decline when a required field has none).
    Defaults,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
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

#[derive(Debug, Subcommand)]
enum TaubenchCommand {
    /// Replay every task's ground-truth actions on a fresh database; compare each tool's
    /// output and each changed record with the reference (expected_SPLIT.json beside the
    /// tasks, or --expected).
    #[command(after_help = "\
Examples:
  $ agentry eval taubench replay --data ../shared/taubench
  $ agentry eval taubench replay --data ../shared/taubench --split dev --emit mine.json
  $ agentry eval taubench replay --data ../shared/taubench --split dev --expected other.json

Exits 1 if any task differs from its reference.")]
    Replay {
        /// The τ-bench data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The domain.
        #[arg(long, default_value = "retail")]
        domain: String,
        /// The split, or all.
        #[arg(long, default_value = "all")]
        split: String,
        /// Compare with this file instead of expected_SPLIT.json (one split).
        #[arg(long, value_name = "FILE")]
        expected: Option<PathBuf>,
        /// Write agentry's replay results here, in the structure of expected_SPLIT.json.
        #[arg(long, value_name = "FILE")]
        emit: Option<PathBuf>,
    },
}

fn parse_split(s: &str) -> Result<agentry_eval::taubench::Split, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
enum BfclCommand {
    /// Check model outputs already produced (JSON Lines of {"id", "result"}, the result raw
    /// text or decoded calls) exactly as the official checker does, without calling a model.
    #[command(after_help = "\
Example:
  $ agentry eval bfcl oracle --data ../shared/bfcl > oracle.jsonl
  $ agentry eval bfcl check --data ../shared/bfcl --results oracle.jsonl --out verdicts.jsonl

Checked: every single-turn category (simple_python, simple_java, simple_javascript,
multiple, parallel, parallel_multiple, irrelevance, live_*). Multi-turn and format
sensitivity results are reported as not checked.")]
    Check {
        /// The BFCL data directory (question files and possible_answer/).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The results file.
        #[arg(long, value_name = "FILE")]
        results: PathBuf,
        /// Write one verdict per entry here, as JSON Lines {"id", "valid", "error_type", "reason"}.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The model's function names had `.` replaced by `_` (the checker's underscore_to_dot).
        #[arg(long)]
        underscore_to_dot: bool,
    },
    /// Ask a model every entry (concurrently, resumably) and report accuracy and the SLM-survey
    /// metrics per category; `--model oracle` answers with the first possible answer.
    #[command(after_help = "\
Examples:
  $ agentry eval bfcl run --data ../shared/bfcl --model oracle
  $ agentry eval bfcl run --data ../shared/bfcl --model openai:gpt-4o-mini --category simple_python,live_* --concurrency 16
  $ agentry eval bfcl run --data ../shared/bfcl --model oracle --explain simple_python_3

Results go to a JSON Lines file as they arrive (default .agentry/bfcl/MODEL-MODE.jsonl); a
re-run skips the entries already there unless --fresh. A report (.report.json, .report.md)
and verdicts (.verdicts.jsonl) are written beside it.")]
    Run {
        /// The BFCL data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The model: oracle, local, local:PATH, sim:NAME, sim:PATH or openai:MODEL.
        #[arg(long)]
        model: String,
        #[command(flatten)]
        local: LocalArgs,
        /// Prompting (Python call syntax in text) or native tool calls.
        #[arg(long, value_enum, default_value = "prompt")]
        mode: BfclModeArg,
        /// Categories, comma-separated (`live_*` matches a prefix), or all.
        #[arg(long, value_delimiter = ',', default_value = "all")]
        category: Vec<String>,
        /// Entries asked at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Times each entry is asked; the report adds how many entries passed every trial.
        #[arg(long, default_value_t = 1)]
        trials: u32,
        /// At most this many entries per category.
        #[arg(long)]
        limit: Option<usize>,
        /// The results file.
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        /// Ignore earlier results and start over.
        #[arg(long)]
        fresh: bool,
        /// Show one entry instead of running: the prompt, the output in the results file, the
        /// decoded calls and the verdict.
        #[arg(long, value_name = "ID")]
        explain: Option<String>,
        /// Price per million prompt tokens, for the cost per successful entry.
        #[arg(long, value_name = "USD")]
        price_in: Option<f64>,
        /// Price per million completion tokens.
        #[arg(long, value_name = "USD")]
        price_out: Option<f64>,
        /// Base URL of an OpenAI-compatible server.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// API key.
        #[arg(long, value_name = "KEY")]
        api_key: Option<String>,
    },
    /// Write the oracle's results: each entry answered with its first possible answer.
    Oracle {
        /// The BFCL data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TraceCommand {
    /// The newest runs first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// A run's timeline: what ran in parallel, how long each step took, the critical path.
    Show {
        /// The run: its id, a unique prefix, or `last`.
        #[arg(default_value = "last")]
        run: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Width of the bars, in characters.
        #[arg(long, default_value_t = 50)]
        width: usize,
        /// Also draw the timeline as an SVG picture into this file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Also draw the timeline as a PNG picture into this file.
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
    },
    /// A run's events.
    Export {
        /// The run: its id, a unique prefix, or `last`.
        #[arg(default_value = "last")]
        run: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BfclModeArg {
    Prompt,
    Native,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Sequential,
    Compiled,
}

impl From<ModeArg> for agentry_exec::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Sequential => Self::Sequential,
            ModeArg::Compiled => Self::Compiled,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ToolModeArg {
    Native,
    Prompted,
}

impl From<ToolModeArg> for agentry_llm::ToolMode {
    fn from(m: ToolModeArg) -> Self {
        match m {
            ToolModeArg::Native => Self::Native,
            ToolModeArg::Prompted => Self::Prompted(Format::Auto),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Openai,
    Hermes,
    Llama,
    Mistral,
    Python,
    React,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Auto => Format::Auto,
            FormatArg::Openai => Format::OpenAi,
            FormatArg::Hermes => Format::Hermes,
            FormatArg::Llama => Format::Llama,
            FormatArg::Mistral => Format::Mistral,
            FormatArg::Python => Format::Python,
            FormatArg::React => Format::React,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse { format, events } => parse(format.into(), events),
        Command::Validate {
            tools,
            coerce,
            json,
        } => validate(&tools, coerce, json),
        Command::Bench {
            what: BenchCommand::Parse { mb, json },
        } => bench::parse(mb, json).map(|()| true),
        Command::Bench {
            what: BenchCommand::Llm { streams, json },
        } => bench_llm::run(streams, json).map(|()| true),
        Command::Bench {
            what: BenchCommand::Dag { runs, json },
        } => bench_dag::run(runs, json).map(|()| true),
        Command::Bench {
            what:
                BenchCommand::Proxy {
                    calls,
                    rounds,
                    server,
                    no_audit,
                    json,
                },
        } => bench_proxy::run(calls, rounds.max(1), server, !no_audit, json).map(|()| true),
        Command::Bench {
            what:
                BenchCommand::Peers {
                    python,
                    installed,
                    repeat,
                    concurrency,
                    scripts,
                    out,
                },
        } => runtime().and_then(|rt| {
            rt.block_on(bench_peers::run(bench_peers::Args {
                python,
                installed,
                repeat: repeat.max(1),
                concurrency: concurrency.max(1),
                scripts,
                out,
            }))
        }),
        Command::Bench {
            what:
                BenchCommand::Peer {
                    workload,
                    mode,
                    url,
                    repeat,
                    concurrency,
                },
        } => runtime().and_then(|rt| {
            rt.block_on(bench_peers::peer(
                &workload,
                mode.into(),
                &url,
                repeat.max(1),
                concurrency,
            ))
        }),
        #[cfg(feature = "local")]
        Command::Bench {
            what: BenchCommand::Local(args),
        } => bench_local::run(args).map(|()| true),
        Command::Ask {
            prompt,
            model,
            tools,
            tool_mode,
            system,
            base_url,
            api_key,
            local,
        } => {
            let options = local.options(tool_mode.into(), base_url, api_key);
            runtime().and_then(|rt| {
                rt.block_on(ask::ask(
                    &prompt,
                    &model,
                    tools.as_deref(),
                    &options,
                    system.as_deref(),
                ))
            })
        }
        Command::Run {
            task,
            mode,
            model,
            base_url,
            api_key,
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
            local,
            policy,
            mcp,
            mcp_env,
            no_demo_tools,
            config,
        } => {
            let mut mcp = match mcp
                .iter()
                .map(|m| agentry_mcp::ServerSpec::parse(m))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(specs) => specs,
                Err(e) => return finish(Err(e.into())),
            };
            let explicit = config.is_some();
            let path = config.unwrap_or_else(|| PathBuf::from("agentry.toml"));
            let file = match config::load(&path, explicit) {
                Ok(file) => file,
                Err(e) => return finish(Err(e)),
            };
            mcp.extend(file.servers);
            if let Err(e) = give_env(&mut mcp, &mcp_env) {
                return finish(Err(e));
            }
            let policy_file = policy.policy.or(file.policy);
            let agent = policy.agent.or(file.agent);
            if agent.is_some() && policy_file.is_none() {
                return finish(Err(anyhow::anyhow!(
                    "--agent names an agent of a policy; give the policy with --policy (or policy = \"…\" in the config)"
                )));
            }
            let model = model.or(file.model);
            let args = run::RunArgs {
                mode: mode.map_or(
                    file.mode.unwrap_or(agentry_exec::Mode::Compiled),
                    Into::into,
                ),
                model: model.as_deref(),
                options: local.options(
                    tool_mode.into(),
                    base_url.or(file.base_url),
                    api_key.or(file.api_key),
                ),
                trace_db: (!no_trace).then_some(trace_db.as_path()),
                budget: agentry_exec::Budget {
                    wall: Some(seconds(timeout.or(file.timeout).unwrap_or(300.0))),
                    tokens: max_tokens.or(file.max_tokens),
                    tool_calls: Some(max_calls.or(file.max_calls).unwrap_or(1000)),
                    ..agentry_exec::Budget::default()
                },
                call_timeout: seconds(call_timeout.or(file.call_timeout).unwrap_or(60.0)),
                tool_latency: std::time::Duration::from_millis(tool_latency_ms),
                quiet,
                json,
                policy: match &policy_file {
                    Some(path) => match policy::load(path) {
                        Ok(p) => Some(p),
                        Err(e) => return finish(Err(e)),
                    },
                    None => None,
                },
                approver: policy::approver(
                    policy
                        .approve
                        .or(file.approve)
                        .unwrap_or(policy::ApproveMode::Terminal),
                    &policy.approvals,
                ),
                agent,
                mcp,
                oauth: file.oauth,
                demo_tools: !no_demo_tools,
            };
            runtime().and_then(|rt| rt.block_on(run::run(&task, args)))
        }
        Command::Ui {
            port,
            host,
            trace_db,
            reports,
            token,
            allowed_host,
        } => runtime().and_then(|rt| {
            rt.block_on(ui(
                agentry_ui::Ui {
                    db: trace_db,
                    reports,
                    token,
                    allowed_hosts: allowed_host,
                },
                std::net::SocketAddr::new(host, port),
            ))
        }),
        Command::Trace { what, trace_db } => match what {
            TraceCommand::List { limit, json } => run::list(&trace_db, limit, json),
            TraceCommand::Show {
                run,
                json,
                width,
                svg,
                png,
            } => run::show(&trace_db, &run, json, width, svg.as_deref(), png.as_deref()),
            TraceCommand::Export {
                run,
                format: ExportFormat::Jsonl,
            } => run::export(&trace_db, &run),
        },
        Command::Eval {
            what: EvalCommand::Bfcl { what },
        } => match what {
            BfclCommand::Check {
                data,
                results,
                out,
                underscore_to_dot,
            } => eval::check(&data, &results, out.as_deref(), underscore_to_dot),
            BfclCommand::Oracle { data } => eval::oracle(&data),
            BfclCommand::Run {
                data,
                model,
                mode,
                category,
                concurrency,
                trials,
                limit,
                results,
                fresh,
                explain,
                price_in,
                price_out,
                base_url,
                api_key,
                local,
            } => {
                let native = matches!(mode, BfclModeArg::Native);
                let results_file = results
                    .clone()
                    .unwrap_or_else(|| eval::default_results(&model, native));
                if let Some(id) = explain {
                    return finish(eval::explain(&data, &results_file, &id, native));
                }
                let args = eval::RunArgs {
                    data,
                    model,
                    options: local.options(agentry_llm::ToolMode::Native, base_url, api_key),
                    mode: match mode {
                        BfclModeArg::Prompt => agentry_eval::bfcl::BfclMode::Prompt,
                        BfclModeArg::Native => agentry_eval::bfcl::BfclMode::Native,
                    },
                    categories: category,
                    concurrency,
                    trials,
                    limit,
                    results,
                    fresh,
                    price_in,
                    price_out,
                };
                runtime().and_then(|rt| rt.block_on(eval::run(args)))
            }
        },
        Command::Eval {
            what: EvalCommand::Taubench {
                what: Some(what), ..
            },
        } => match what {
            TaubenchCommand::Replay {
                data,
                domain,
                split,
                expected,
                emit,
            } => {
                let splits = match split.as_str() {
                    "all" => agentry_eval::taubench::Split::ALL.to_vec(),
                    s => match s.parse() {
                        Ok(split) => vec![split],
                        Err(e) => return finish(Err(anyhow::anyhow!("{e} (or all)"))),
                    },
                };
                taubench::replay(taubench::ReplayArgs {
                    data,
                    domain,
                    splits,
                    expected,
                    emit,
                })
            }
        },
        Command::Eval {
            what: EvalCommand::Taubench { what: None, run },
        } => {
            let TaubenchRunArgs {
                data,
                domain,
                split,
                model,
                user_model,
                user_temperature,
                trials,
                concurrency,
                task_ids,
                max_steps,
                out,
                trace_db,
                no_trace,
                policy,
                price_in,
                price_out,
                local,
                base_url,
                api_key,
            } = *run;
            let task_ids = match task_ids.as_deref().map(taubench::parse_ids).transpose() {
                Ok(ids) => ids,
                Err(e) => return finish(Err(anyhow::anyhow!("--task-ids: {e}"))),
            };
            let args = taubench::RunArgs {
                data: data.unwrap_or_default(),
                domain,
                split,
                model: model.unwrap_or_default(),
                user_model,
                user_temperature,
                options: LocalArgs {
                    context: Some(local.context.unwrap_or(16_384)),
                    ..local
                }
                .options(agentry_llm::ToolMode::Native, base_url, api_key),
                trials,
                concurrency,
                task_ids,
                max_steps,
                out,
                trace_db: (!no_trace).then_some(trace_db),
                prices: price_in.zip(price_out),
                policy,
            };
            runtime().and_then(|rt| rt.block_on(taubench::run(args)))
        }
        Command::Policy { what } => match what {
            PolicyCommand::Check { file } => policy::check(&file),
            PolicyCommand::Decide {
                file,
                tool,
                args,
                agent,
                server,
            } => policy::decide(&file, &tool, &args, agent.as_deref(), server.as_deref()),
        },
        Command::Approve {
            id,
            deny,
            approvals,
        } => policy::approve(&approvals, id.as_deref(), deny),
        Command::Mcp {
            what:
                McpCommand::Serve {
                    model,
                    no_agent,
                    policy: file,
                    http,
                    host,
                    local,
                },
        } => {
            let policy = match file.as_deref().map(policy::load).transpose() {
                Ok(p) => p,
                Err(e) => return finish(Err(e)),
            };
            let options = local.options(agentry_llm::ToolMode::Native, None, None);
            let http = http.map(|port| std::net::SocketAddr::new(host, port));
            runtime()
                .and_then(|rt| rt.block_on(mcp::serve(model, options, !no_agent, policy, http)))
        }
        Command::Mcp {
            what: McpCommand::Tools { env, server },
        } => mcp::env_vars("--env", &env)
            .and_then(|env| runtime().and_then(|rt| rt.block_on(mcp::tools(server, env)))),
        Command::Mcp {
            what:
                McpCommand::Call {
                    tool,
                    args,
                    elicit,
                    env,
                    server,
                },
        } => {
            let elicitation = match elicit {
                Elicit::Decline => agentry_mcp::Elicitation::Decline,
                Elicit::Defaults => agentry_mcp::Elicitation::Defaults,
            };
            let env = match mcp::env_vars("--env", &env) {
                Ok(env) => env,
                Err(e) => return finish(Err(e)),
            };
            runtime().and_then(|rt| rt.block_on(mcp::call(server, env, &tool, &args, elicitation)))
        }
        Command::Proxy {
            policy: file,
            server_name,
            agent,
            approve,
            approvals,
            audit,
            no_audit,
            http,
            env,
            command,
        } => {
            let env = match mcp::env_vars("--env", &env) {
                Ok(env) => env,
                Err(e) => return finish(Err(e)),
            };
            if approve == policy::ApproveMode::Terminal && http.is_none() {
                return finish(Err(anyhow::anyhow!(
                    "--approve terminal cannot work in the proxy: its stdin is the MCP client's; use queue or never"
                )));
            }
            match policy::load(&file) {
                Err(e) => Err(e),
                // One thread: a message crosses the proxy without a hand-off between threads.
                Ok(p) => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the async runtime")
                    .and_then(|rt| {
                        let args = mcp::ProxyArgs {
                            command,
                            policy: p,
                            approver: policy::approver(approve, &approvals),
                            agent,
                            server: server_name,
                            audit: (!no_audit).then_some(audit),
                            http,
                            env,
                        };
                        rt.block_on(mcp::proxy(args))
                    }),
            }
        }
        Command::Replay { run, trace_db } => {
            runtime().and_then(|rt| rt.block_on(run::replay(&trace_db, &run)))
        }
        Command::SimServer {
            script,
            port,
            host,
            allowed_host,
        } => runtime().and_then(|rt| rt.block_on(sim_server(&script, host, port, &allowed_host))),
    };
    finish(result)
}

/// Gives each `--mcp-env ALIAS=KEY[=VALUE]` to the server ALIAS of `servers`.
fn give_env(servers: &mut [agentry_mcp::ServerSpec], given: &[String]) -> Result<()> {
    let known: Vec<String> = servers.iter().map(|s| s.alias.clone()).collect();
    for text in given {
        let Some((alias, var)) = text.split_once('=') else {
            bail!(
                "--mcp-env {text}: write ALIAS=KEY=VALUE, or ALIAS=KEY to pass agentry's own KEY on"
            );
        };
        let Some(spec) = servers.iter_mut().find(|s| s.alias == alias) else {
            bail!("--mcp-env {text}: there is no MCP server `{alias}` (there are {known:?})");
        };
        if spec.url().is_some() {
            bail!("--mcp-env {text}: `{alias}` is reached by URL; variables are for a command");
        }
        let (key, value) = mcp::env_var("--mcp-env", var)?;
        spec.env.insert(key, value);
    }
    Ok(())
}

/// The exit code of a command's outcome.
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

/// A duration from seconds given on the command line (negative or NaN counts as zero).
fn seconds(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(if s.is_finite() && s > 0.0 {
        s.min(1e9)
    } else {
        0.0
    })
}

/// A token cancelled by the first Ctrl-C; a second one ends the process at once (exit 130).
pub(crate) fn cancel_on_ctrl_c() -> tokio_util::sync::CancellationToken {
    use std::io::Write;
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = writeln!(
                std::io::stderr(),
                "\ncancelling (Ctrl-C again to quit at once)…"
            );
            on_signal.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    cancel
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `agentry ui`: serves until Ctrl-C.
async fn ui(ui: agentry_ui::Ui, addr: std::net::SocketAddr) -> Result<bool> {
    let stop = tokio_util::sync::CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let db = ui.db.clone();
    let token = ui.token.clone();
    agentry_ui::serve(ui, addr, stop, |bound| {
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        println!(
            "agentry ui at http://{bound}/{query} over {} (Ctrl-C to stop)",
            db.display()
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
    })
    .await
    .map_err(anyhow::Error::msg)?;
    Ok(true)
}

/// `--allowed-host`: a name, or a name and a port.
fn host_name(text: &str) -> Result<String, String> {
    if agentry_core::AllowedHosts::is_host(text) {
        Ok(text.to_owned())
    } else {
        Err("a host name or address, with a port if you like: box.lan, box.lan:7878".into())
    }
}

/// `agentry sim-server`: serves until Ctrl-C.
async fn sim_server(
    script: &str,
    host: std::net::IpAddr,
    port: u16,
    allowed: &[String],
) -> Result<bool> {
    let script = match agentry_llm::bundled_script(script) {
        Some(bundled) => bundled?,
        None => agentry_llm::sim::Script::from_file(Path::new(script))?,
    };
    let name = script.name().to_owned();
    let mut hosts = agentry_core::AllowedHosts::for_bind(host);
    for name in allowed {
        hosts = hosts.allow(name);
    }
    let addr = std::net::SocketAddr::new(host, port);
    let server = agentry_llm::sim::SimServer::bind_allowing(script, addr, hosts)
        .await
        .with_context(|| format!("listening on {host}:{port}"))?;
    println!("serving sim:{name} at {} (Ctrl-C to stop)", server.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.close().await;
    Ok(true)
}

/// `agentry parse`: returns whether the run succeeded.
fn parse(format: Format, print_events: bool) -> Result<bool> {
    let mut parser = CallParser::new(format);
    let mut stdin = std::io::stdin().lock();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut calls = Vec::new();
    let mut errors = 0usize;
    let mut stdout = std::io::stdout().lock();
    let mut handle = |events: Vec<Event>, stdout: &mut std::io::StdoutLock<'_>| -> Result<()> {
        for event in events {
            if print_events {
                writeln!(stdout, "{}", serde_json::to_string(&event)?)?;
            }
            match event {
                Event::Text { .. } => {}
                Event::Call(call) => {
                    for repair in &call.repairs {
                        eprintln!(
                            "repaired `{}` at bytes {}..{}: {repair}",
                            call.name, call.span.start, call.span.end
                        );
                    }
                    calls.push(json!({"name": call.name, "arguments": call.arguments}));
                }
                Event::Malformed(m) => {
                    errors += 1;
                    eprintln!(
                        "malformed {} call at bytes {}..{}: {}\n  text: {}",
                        m.format, m.span.start, m.span.end, m.reason, m.excerpt
                    );
                }
            }
        }
        Ok(())
    };
    loop {
        let n = stdin.read(&mut chunk).context("reading stdin")?;
        if n == 0 {
            break;
        }
        let events = parser
            .push_bytes(&chunk[..n])
            .context("reading the model text on stdin")?;
        handle(events, &mut stdout)?;
    }
    let events = parser.finish().context("reading the model text on stdin")?;
    handle(events, &mut stdout)?;
    if !print_events {
        writeln!(stdout, "{}", Value::Array(calls.clone()))?;
    }
    Ok(!(calls.is_empty() && errors > 0))
}

/// `agentry validate`: returns whether every call was valid.
/// Reads a JSON array of tool definitions (OpenAI-style or bare).
pub(crate) fn read_tools(path: &Path) -> Result<Vec<ToolSpec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ToolSpec::list_from_json(&text)
        .with_context(|| format!("{} is not a JSON array of tool definitions", path.display()))
}

fn validate(tools_path: &Path, coerce: bool, as_json: bool) -> Result<bool> {
    let specs = read_tools(tools_path)?;
    let mut validators = Validators::new(&specs)?;
    if coerce {
        for spec in &specs {
            validators.allow_coercion(&spec.name, Coercion::ALL);
        }
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading calls from stdin")?;
    let calls: Vec<Value> = serde_json::from_str(&input)
        .context("stdin must be a JSON array of calls, e.g. [{\"name\": \"f\", \"arguments\": {}}] (what `agentry parse` prints)")?;
    let mut all_ok = true;
    let mut stdout = std::io::stdout().lock();
    for (i, raw) in calls.into_iter().enumerate() {
        let call: ToolCall = match serde_json::from_value(raw) {
            Ok(call) => call,
            Err(e) => bail!("call {i} on stdin is not a call: {e}"),
        };
        match validators.check(&call.name, call.arguments) {
            Ok(checked) => {
                if as_json {
                    let coerced: Vec<String> =
                        checked.coerced.iter().map(ToString::to_string).collect();
                    writeln!(
                        stdout,
                        "{}",
                        json!({"name": call.name, "ok": true, "arguments": checked.arguments, "coerced": coerced})
                    )?;
                } else {
                    writeln!(stdout, "ok {}", call.name)?;
                    for c in &checked.coerced {
                        writeln!(stdout, "  {c}")?;
                    }
                }
            }
            Err(err) => {
                all_ok = false;
                if as_json {
                    writeln!(
                        stdout,
                        "{}",
                        json!({"name": call.name, "ok": false, "kind": err.kind(), "error": err.for_model()})
                    )?;
                } else {
                    writeln!(
                        stdout,
                        "invalid {}: {}",
                        call.name,
                        strip_prefix(err.for_model(), &call.name)
                    )?;
                }
            }
        }
    }
    Ok(all_ok)
}

/// Drops the "invalid arguments for `name`: " lead, which the verdict line already says.
fn strip_prefix<'a>(sentence: &'a str, name: &str) -> &'a str {
    sentence
        .strip_prefix(&format!("invalid arguments for `{name}`: "))
        .unwrap_or(sentence)
}
