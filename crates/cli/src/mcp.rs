//! `agentry proxy` (the policy as the MCP proxy's gate), `agentry mcp serve`, and
//! `agentry mcp tools|call` (any server's tools by hand).

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use agentry_policy::{Action, Approver, Policy};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use futures::future::BoxFuture;

use crate::{args::ModelArgs, policy::ApproveMode};

/// `agentry mcp`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
        host: IpAddr,
        /// With --http: a name the server is reached by besides loopback and the address it
        /// listens on: NAME or NAME:PORT (repeatable). Requests naming another Host get 403
        /// (against DNS rebinding); with --host 0.0.0.0, give the names clients use.
        #[arg(long, value_name = "NAME[:PORT]", value_parser = crate::ui::host_name)]
        allowed_host: Vec<String>,
        #[command(flatten)]
        local: ModelArgs,
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

/// `agentry proxy`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct ProxyArgs {
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
    approve: ApproveMode,
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
}

/// Shown after `agentry proxy --help`.
pub(crate) const PROXY_EXAMPLES: &str = "\
Example (in an MCP client's server configuration, e.g. Claude Desktop's):
  \"command\": \"agentry\",
  \"args\": [\"proxy\", \"--policy\", \"/home/me/fs-policy.toml\", \"--server-name\", \"fs\", \"--\",
           \"npx\", \"-y\", \"@modelcontextprotocol/server-filesystem\", \"/home/me/notes\"]

Calls the policy marks `ask` wait in the approval queue (agentry approve ID); stdin belongs
to the MCP client, so there is no terminal prompt.";

/// `agentry mcp …`.
pub(crate) fn run(args: Args) -> Result<bool> {
    match args.what {
        Command::Serve {
            model,
            no_agent,
            policy,
            http,
            host,
            allowed_host,
            local,
        } => {
            let policy = policy.as_deref().map(crate::policy::load).transpose()?;
            let options = local.options(agentry_llm::ToolMode::Native);
            let http = http.map(|port| (SocketAddr::new(host, port), allowed_host));
            crate::runtime::block_on(serve(model, options, !no_agent, policy, http))
        }
        Command::Tools { env, server } => {
            let env = env_vars("--env", &env)?;
            crate::runtime::block_on(tools(server, env))
        }
        Command::Call {
            tool,
            args,
            elicit,
            env,
            server,
        } => {
            let elicitation = match elicit {
                Elicit::Decline => agentry_mcp::Elicitation::Decline,
                Elicit::Defaults => agentry_mcp::Elicitation::Defaults,
            };
            let env = env_vars("--env", &env)?;
            crate::runtime::block_on(call(server, env, &tool, &args, elicitation))
        }
    }
}

/// `agentry proxy`: runs until the client or the server goes away (stdio), or until Ctrl-C
/// (HTTP).
pub(crate) fn proxy(args: ProxyArgs) -> Result<bool> {
    let env = env_vars("--env", &args.env)?;
    if args.approve == ApproveMode::Terminal && args.http.is_none() {
        bail!(
            "--approve terminal cannot work in the proxy: its stdin is the MCP client's; use queue or never"
        );
    }
    let settings = ProxySettings {
        policy: crate::policy::load(&args.policy)?,
        approver: crate::policy::approver(args.approve, &args.approvals),
        agent: args.agent,
        server: args.server_name,
        audit: (!args.no_audit).then_some(args.audit),
        http: args.http,
        env,
        command: args.command,
    };
    // One thread: a message crosses the proxy without a hand-off between threads.
    crate::runtime::block_on_one_thread(run_proxy(settings))
}

/// The policy as the proxy's gate on `tools/call`, through the one enforcement path the
/// engine uses too ([`agentry_policy::enforce`]).
pub(crate) struct ProxyGate {
    pub(crate) policy: Arc<Policy>,
    pub(crate) approver: Option<Arc<dyn Approver>>,
    pub(crate) agent: Option<String>,
    pub(crate) server: Option<String>,
    pub(crate) calls: std::sync::atomic::AtomicU64,
    /// This proxy's run id in approvals: `proxy-PID-MILLISECONDS`.
    pub(crate) session: String,
    /// Each listed tool's schema, compiled: a rewrite must still fit it.
    pub(crate) schemas:
        std::sync::Mutex<std::collections::HashMap<String, agentry_schema::ArgValidator>>,
    /// Cancelled when the proxy stops: approval waits end then.
    pub(crate) stop: tokio_util::sync::CancellationToken,
}

impl agentry_mcp::proxy::CallGate for ProxyGate {
    fn listed(&self, tools: &serde_json::Value) {
        let Ok(mut schemas) = self.schemas.lock() else {
            return;
        };
        for tool in tools.as_array().into_iter().flatten() {
            if let (Some(name), Some(schema)) = (tool["name"].as_str(), tool.get("inputSchema"))
                && let Ok(validator) = agentry_schema::ArgValidator::from_schema(name, schema)
            {
                schemas.insert(name.to_owned(), validator);
            }
        }
    }

    fn check(
        self: Arc<Self>,
        tool: String,
        args: serde_json::Value,
    ) -> BoxFuture<'static, (agentry_mcp::proxy::Gate, serde_json::Value)> {
        use agentry_mcp::proxy::Gate;
        Box::pin(async move {
            let n = self
                .calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let call = agentry_core::ToolCall::new(format!("call_{n:08}"), tool.clone(), args);
            let revalidate = |args: serde_json::Value| {
                let schemas = self
                    .schemas
                    .lock()
                    .map_err(|_| agentry_core::ToolError::failed("the schemas are poisoned"))?;
                match schemas.get(&tool) {
                    // A tool the client called without listing: nothing to check against.
                    None => Ok(args),
                    Some(v) => v
                        .check(args)
                        .map(|c| c.arguments)
                        .map_err(|e| e.to_tool_error()),
                }
            };
            let enforced = agentry_policy::enforce(
                &self.policy,
                self.approver.as_deref(),
                agentry_policy::CallToCheck {
                    run_id: &self.session,
                    call: &call,
                    agent: self.agent.as_deref(),
                    server: self.server.as_deref(),
                },
                Some(&revalidate),
                |_| {},
                self.stop.cancelled(),
            )
            .await;
            let mut record = serde_json::to_value(&enforced.verdict).unwrap_or_default();
            if let Some(approved) = enforced.approved {
                record["approved"] = serde_json::json!(approved);
            }
            let gate = match enforced.outcome {
                Ok(arguments) if enforced.verdict.action == Action::Rewrite => {
                    Gate::Forward(Some(arguments))
                }
                Ok(_) => Gate::Forward(None),
                Err(e) => Gate::Refuse(format!("denied by policy: {}", e.for_model())),
            };
            (gate, record)
        })
    }
}

/// What `agentry proxy` was asked to do: the flags, read.
struct ProxySettings {
    command: Vec<String>,
    policy: Arc<Policy>,
    approver: Option<Arc<dyn Approver>>,
    agent: Option<String>,
    server: Option<String>,
    audit: Option<PathBuf>,
    http: Option<u16>,
    /// Variables the server gets beyond the few it inherits.
    env: BTreeMap<String, String>,
}

/// Relays until the client or the server goes away (stdio), or until Ctrl-C (HTTP).
async fn run_proxy(args: ProxySettings) -> Result<bool> {
    let audit: Option<Box<dyn std::io::Write + Send>> = match &args.audit {
        Some(path) => Some(Box::new(open_audit(path)?)),
        None => None,
    };
    // Over HTTP, Ctrl-C stops the proxy and ends the approval waits; over stdio the client
    // ends the proxy (by closing its stdin), and Ctrl-C keeps its default meaning.
    let stop = if args.http.is_some() {
        crate::signal::stop_on_ctrl_c()
    } else {
        tokio_util::sync::CancellationToken::new()
    };
    let gate = Arc::new(ProxyGate {
        policy: args.policy,
        approver: args.approver,
        agent: args.agent,
        server: args.server.clone(),
        calls: std::sync::atomic::AtomicU64::new(0),
        schemas: std::sync::Mutex::default(),
        stop: stop.clone(),
        session: format!(
            "proxy-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        ),
    });
    if let Some(port) = args.http {
        let spec = agentry_mcp::ServerSpec {
            alias: args.server.unwrap_or_else(|| "upstream".into()),
            command: args.command,
            env: args.env,
        };
        // What the upstream sends on its own goes to the client it concerns.
        let downstream = agentry_mcp::proxy_http::Downstream::new();
        let options = agentry_mcp::ClientOptions {
            relay: Some(downstream.clone()),
            ..agentry_mcp::ClientOptions::from_env()
        };
        let upstream = agentry_mcp::McpServer::connect_with(spec, options).await?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        agentry_mcp::proxy_http::serve(
            Arc::clone(&upstream),
            downstream,
            gate,
            audit,
            addr,
            stop,
            |bound| {
                println!("proxying MCP at http://{bound}/mcp (Ctrl-C to stop)");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            },
        )
        .await?;
        upstream.close().await;
        return Ok(true);
    }
    let proxy = agentry_mcp::proxy::Proxy {
        command: args.command.clone(),
        env: args.env,
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

/// `agentry mcp serve`: the demo tools, and an agent as the tool `agent`, over stdio (or
/// Streamable HTTP at `http`, answering the Host names given with it, until Ctrl-C).
async fn serve(
    model: Option<String>,
    options: agentry_llm::OpenOptions,
    with_agent: bool,
    policy: Option<Arc<Policy>>,
    http: Option<(SocketAddr, Vec<String>)>,
) -> Result<bool> {
    let demo = agentry_tools::demo_tools(Duration::ZERO);
    let mut tools = demo.filtered(|_| true);
    let otel = crate::otel::start(None)?;
    if with_agent {
        let spec = model.unwrap_or_else(|| {
            if agentry_llm::local_ready() {
                "local".into()
            } else {
                "sim:plan".into()
            }
        });
        let model = agentry_llm::open(&spec, &options)?;
        let mut agent = agentry_exec::Agent::builder(model)
            .tools(&demo)
            .mode(agentry_exec::Mode::Compiled);
        if let Some(policy) = policy {
            agent = agent.policy(policy);
        }
        // A request's `traceparent` (in `_meta` or the HTTP header) makes the agent's run a
        // part of the caller's trace.
        if let Some(exporter) = &otel {
            agent = agent.otlp(Arc::clone(exporter));
        }
        let tool = agent.build()?.as_tool(
            "agent",
            format!(
                "An agentry agent ({spec}) with the tools get_weather, search, calculator, kv_set, kv_get, clock_now: give it a task, get its answer."
            ),
        );
        tools
            .add(tool)
            .map_err(|e| anyhow::anyhow!("the agent tool: {e}"))?;
    }
    let tools = Arc::new(tools);
    match http {
        None => agentry_mcp::serve::serve_stdio(tools).await?,
        Some((addr, allowed_hosts)) => {
            let stop = crate::signal::stop_on_ctrl_c();
            agentry_mcp::serve::serve_http(tools, addr, &allowed_hosts, stop, |bound| {
                // The line a script waits for before it connects.
                println!("serving MCP at http://{bound}/mcp (Ctrl-C to stop)");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            })
            .await?;
        }
    }
    crate::otel::finish(otel, true);
    Ok(true)
}

/// Connects to the server named by `words` (one URL, or a command line that gets `env`).
async fn connect(
    words: Vec<String>,
    env: BTreeMap<String, String>,
    elicitation: agentry_mcp::Elicitation,
) -> Result<Arc<agentry_mcp::McpServer>> {
    let mut spec = agentry_mcp::ServerSpec::new("server", words)?;
    spec.env = env;
    let options = agentry_mcp::ClientOptions {
        elicitation,
        ..agentry_mcp::ClientOptions::from_env()
    };
    let server = agentry_mcp::McpServer::connect_with(spec, options).await?;
    eprintln!("connected (protocol {})", server.protocol());
    Ok(server)
}

/// `agentry mcp tools`: the server's tools as JSON on stdout.
async fn tools(server: Vec<String>, env: BTreeMap<String, String>) -> Result<bool> {
    let server = connect(server, env, agentry_mcp::Elicitation::Decline).await?;
    let listed = server.listed_tools().await;
    server.close().await;
    println!("{}", serde_json::to_string_pretty(&listed)?);
    Ok(true)
}

/// `agentry mcp call`: one call, its result as JSON on stdout; `false` when it is an error.
async fn call(
    server: Vec<String>,
    env: BTreeMap<String, String>,
    tool: &str,
    args: &str,
    elicitation: agentry_mcp::Elicitation,
) -> Result<bool> {
    let args: serde_json::Value =
        serde_json::from_str(args).context("--args must be a JSON object")?;
    let serde_json::Value::Object(args) = args else {
        anyhow::bail!("--args must be a JSON object, not {args}");
    };
    let server = connect(server, env, elicitation).await?;
    let result = server.call_as_is(tool, args).await;
    server.close().await;
    let result = result.map_err(|e| anyhow::anyhow!("{}", e.for_model()))?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(result["isError"] != true)
}

/// `--env KEY=VALUE`, or `--env KEY` for agentry's own value of KEY: one variable for an MCP
/// server (`flag` names the option in messages).
pub(crate) fn env_var(flag: &str, text: &str) -> Result<(String, String)> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, value.to_owned()),
        None => match std::env::var(text) {
            Ok(value) => (text, value),
            Err(_) => bail!(
                "{flag} {text}: {text} is not set in agentry's environment (give {text}=VALUE to set it)"
            ),
        },
    };
    if name.is_empty() || name.contains('\0') {
        bail!("{flag} {text}: write KEY=VALUE, or KEY to pass agentry's own value on");
    }
    Ok((name.to_owned(), value))
}

/// The variables `--env` gives, in a map.
fn env_vars(flag: &str, given: &[String]) -> Result<BTreeMap<String, String>> {
    given.iter().map(|text| env_var(flag, text)).collect()
}

/// Opens the audit trail for appending. A new trail is its owner's only (0600), in
/// directories made 0700; an existing file or directory keeps its mode.
fn open_audit(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        agentry_trace::create_private_dir(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let new = !path.exists();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening the audit trail {}", path.display()))?;
    if new {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_audit_trail_is_private() {
        let top = std::env::temp_dir().join(format!("agentry-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        let path = top.join("nested").join("audit.jsonl");
        drop(super::open_audit(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&top), 0o700);
        std::fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn env_is_given_or_passed_on_by_name() {
        let (k, v) = super::env_var("--env", "A=b=c").unwrap();
        assert_eq!((k.as_str(), v.as_str()), ("A", "b=c"));
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            super::env_var("--env", "PATH").unwrap(),
            ("PATH".to_owned(), path)
        );
        let e = super::env_var("--env", "AGENTRY_SURELY_UNSET_VARIABLE_1").unwrap_err();
        assert!(e.to_string().contains("is not set"), "{e}");
        assert!(super::env_var("--env", "=x").is_err());
    }
}

#[cfg(test)]
mod gate_tests {
    use std::sync::Arc;

    use agentry_mcp::proxy::{CallGate, Gate};
    use serde_json::json;

    use super::ProxyGate;

    fn gate(policy: &str) -> Arc<ProxyGate> {
        Arc::new(ProxyGate {
            policy: Arc::new(agentry_policy::Policy::from_toml(policy).unwrap()),
            approver: None,
            agent: None,
            server: None,
            calls: std::sync::atomic::AtomicU64::new(0),
            session: "proxy-test".into(),
            schemas: std::sync::Mutex::default(),
            stop: tokio_util::sync::CancellationToken::new(),
        })
    }

    #[tokio::test]
    async fn the_proxy_checks_a_rewrite_against_the_listed_schema_as_the_engine_does() {
        let g = gate(
            "[[rule]]\ntool = \"read\"\naction = \"rewrite\"\nset = { \"/head\" = \"ten\" }\n\n[[rule]]\ntool = \"ask_me\"\naction = \"ask\"\nreason = \"needs a human\"\n",
        );
        // Before the tools are listed there is nothing to check the rewrite against.
        let (before, _) = Arc::clone(&g)
            .check("read".into(), json!({"path": "/a"}))
            .await;
        assert_eq!(
            before,
            Gate::Forward(Some(json!({"path": "/a", "head": "ten"})))
        );
        g.listed(&json!([{"name": "read", "inputSchema": {"type": "object",
            "properties": {"path": {"type": "string"}, "head": {"type": "integer"}}}}]));
        let (after, record) = Arc::clone(&g)
            .check("read".into(), json!({"path": "/a"}))
            .await;
        match after {
            Gate::Refuse(why) => assert!(
                why.starts_with(
                    "denied by policy: the policy rewrote the arguments into ones the tool refuses"
                ),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(record["action"], "rewrite");
        // An ask with no approver says so, in the engine's words.
        let (asked, _) = Arc::clone(&g).check("ask_me".into(), json!({})).await;
        assert_eq!(
            asked,
            Gate::Refuse(
                "denied by policy: needs a human, and no approver is configured, so the call did not run".into()
            )
        );
    }
}
