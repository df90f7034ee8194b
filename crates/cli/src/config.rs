//! `agentry.toml`: what `agentry run` uses when the command line does not say. Every key is
//! optional; a flag given on the command line wins over the file.
//!
//! ```toml
//! model = "openai:gpt-4o-mini"          # as --model
//! base_url = "http://127.0.0.1:8000/v1" # as --base-url
//! api_key_env = "MY_SERVER_KEY"         # the variable holding the key (no keys in files)
//! mode = "sequential"                   # as --mode
//! policy = "policy.toml"                # as --policy (relative to this file)
//! agent = "reader"                      # as --agent
//! approve = "queue"                     # as --approve
//!
//! [budget]
//! timeout = 120                         # seconds, as --timeout
//! max_calls = 200                       # as --max-calls
//! max_tokens = 100000                   # as --max-tokens
//! call_timeout = 30                     # seconds, as --call-timeout
//!
//! [mcp.fs]
//! command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp/x"]
//! env = { NOTES_READONLY = "1" }       # beyond HOME, PATH… (agentry's secrets stay out)
//!
//! [otel]                                # OpenTelemetry export (OTEL_* variables win)
//! endpoint = "http://127.0.0.1:4318"    # as OTEL_EXPORTER_OTLP_ENDPOINT
//! protocol = "http/protobuf"            # or "grpc", "http/json"
//! service_name = "my-agent"             # as OTEL_SERVICE_NAME
//! capture_content = false               # tasks, messages, arguments, results in spans
//! headers_env = "OTLP_HEADERS"          # the variable holding `key=value,…` headers
//!
//! [mcp.remote]
//! url = "https://example.com/mcp"
//! oauth = { client_id = "agentry", client_secret_env = "REMOTE_SECRET", grant = "client_credentials" }
//!
//! python = "python3"                    # offer the python tool (code with the tools as functions)
//! code_actions = false                  # as --code-actions: code is the model's only action
//!
//! [tools.search_code]                   # a command tool, run in the sandbox
//! description = "Search the workspace's files for a regex."
//! argv = ["rg", "--json", "--", "{pattern}", "{path}"]
//! parameters = { type = "object", properties = { pattern = { type = "string" }, path = { type = "string" } }, required = ["pattern"] }
//! timeout = 10                          # seconds
//! output_cap = 65536                    # bytes of stdout (and of stderr) returned
//! idempotent = true
//! env = ["RIPGREP_CONFIG_PATH"]         # variables of agentry's environment it may see
//! network = false
//! limits = { memory = 268435456, cpu_seconds = 10 }
//!
//! [sandbox]                             # what every program tool starts from
//! workspaces = "~/.cache/agentry/workspaces"  # one directory per run
//! may_skip = []                         # layers allowed to be missing here ("cgroup", …)
//! read = ["/opt/data"]                  # readable besides the system's directories
//! limits = { memory = 1073741824, processes = 256, cpu_seconds = 60 }
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use agentry_mcp::{OAuthOptions, ServerSpec};
use agentry_trace::otlp::OtlpConfig;
use anyhow::{Result, bail};
use clap::ValueEnum;
use serde::Deserialize;

use crate::policy::ApproveMode;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    model: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    mode: Option<String>,
    policy: Option<PathBuf>,
    agent: Option<String>,
    approve: Option<String>,
    #[serde(default)]
    budget: BudgetEntry,
    #[serde(default)]
    mcp: BTreeMap<String, McpEntry>,
    otel: Option<OtelEntry>,
    #[serde(default)]
    tools: BTreeMap<String, agentry_tools::CommandSpec>,
    sandbox: Option<SandboxEntry>,
    python: Option<String>,
    code_actions: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxEntry {
    workspaces: Option<PathBuf>,
    #[serde(default)]
    may_skip: Vec<String>,
    #[serde(default)]
    read: Vec<PathBuf>,
    #[serde(default)]
    write: Vec<PathBuf>,
    #[serde(default)]
    network: bool,
    limits: Option<agentry_sandbox::Limits>,
}

/// The workspaces and base sandbox policy `entry` describes (the defaults without one).
pub(crate) fn workspaces(
    entry: Option<SandboxEntry>,
) -> std::result::Result<agentry_tools::Workspaces, String> {
    let entry = entry.unwrap_or_default();
    let root = match entry.workspaces {
        Some(p) => expand_home(&p),
        None => agentry_tools::Workspaces::default_root(),
    };
    let mut ws = agentry_tools::Workspaces::new(root);
    for name in entry.may_skip {
        let layer: agentry_sandbox::Layer = name
            .parse()
            .map_err(|e| format!("[sandbox] may_skip: {e}"))?;
        ws.base.may_skip.insert(layer);
    }
    ws.base.read = entry.read.iter().map(|p| expand_home(p)).collect();
    ws.base.write = entry.write.iter().map(|p| expand_home(p)).collect();
    ws.base.network = entry.network;
    if let Some(limits) = entry.limits {
        ws.base.limits = limits;
    }
    Ok(ws)
}

/// `~/x` as `$HOME/x`.
fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_owned(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OtelEntry {
    endpoint: String,
    protocol: Option<String>,
    service_name: Option<String>,
    #[serde(default)]
    capture_content: bool,
    /// The variable holding the headers (no keys in files).
    headers_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetEntry {
    timeout: Option<f64>,
    max_calls: Option<u64>,
    max_tokens: Option<u64>,
    call_timeout: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct McpEntry {
    command: Option<Vec<String>>,
    url: Option<String>,
    /// Variables the command gets beyond the few it inherits.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// How to authorize to a server reached by URL.
    oauth: Option<OAuthEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthEntry {
    client_id: Option<String>,
    /// The variable holding the client's secret.
    client_secret_env: Option<String>,
    client_metadata_url: Option<String>,
    /// `client_credentials` (unattended) or `authorization_code` (a browser; the default).
    grant: Option<String>,
    /// Where tokens are kept between runs (`""`: not kept).
    token_dir: Option<PathBuf>,
}

/// What the file sets for a run; `None` where it says nothing.
#[derive(Debug, Default)]
pub(crate) struct RunConfig {
    pub(crate) model: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) mode: Option<agentry_exec::Mode>,
    pub(crate) policy: Option<PathBuf>,
    pub(crate) agent: Option<String>,
    pub(crate) approve: Option<ApproveMode>,
    pub(crate) timeout: Option<f64>,
    pub(crate) max_calls: Option<u64>,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) call_timeout: Option<f64>,
    /// The MCP servers, in alias order.
    pub(crate) servers: Vec<ServerSpec>,
    /// Authorization settings of the servers that have their own, by alias.
    pub(crate) oauth: BTreeMap<String, OAuthOptions>,
    /// OpenTelemetry export, if `[otel]` asks for it.
    pub(crate) otel: Option<OtlpConfig>,
    /// The command tools of `[tools]`.
    pub(crate) command_tools: Vec<agentry_tools::CommandTool>,
    /// Where program tools' workspaces go, and their base sandbox policy (`[sandbox]`).
    pub(crate) workspaces: agentry_tools::Workspaces,
    /// The python tool's interpreter, if it is offered.
    pub(crate) python: Option<String>,
    /// Whether code is the model's only action.
    pub(crate) code_actions: Option<bool>,
}

/// Reads `path`; a missing default file (not `explicit`) sets nothing.
pub(crate) fn load(path: &Path, explicit: bool) -> Result<RunConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) if !explicit => return Ok(RunConfig::default()),
        Err(e) => bail!("cannot read the config {}: {e}", path.display()),
    };
    let refused =
        |what: String| anyhow::anyhow!("the config {} is refused: {what}", path.display());
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!("line {}: ", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default();
        refused(format!("{line}{}", e.message().trim()))
    })?;
    let here = path.parent().unwrap_or(Path::new(""));
    let mut out =
        RunConfig {
            model: file.model,
            base_url: file.base_url,
            api_key: match file.api_key_env {
                None => None,
                Some(name) => Some(std::env::var(&name).map_err(|_| {
                    refused(format!("api_key_env names `{name}`, which is not set"))
                })?),
            },
            mode: match file.mode {
                None => None,
                Some(m) => Some(
                    m.parse()
                        .map_err(|e: String| refused(format!("mode: {e}")))?,
                ),
            },
            policy: file.policy.map(|p| here.join(p)),
            agent: file.agent,
            approve: match file.approve {
                None => None,
                Some(a) => Some(ApproveMode::from_str(&a, true).map_err(|_| {
                    refused(format!(
                        "approve = \"{a}\": expected \"terminal\", \"queue\" or \"never\""
                    ))
                })?),
            },
            timeout: file.budget.timeout,
            max_calls: file.budget.max_calls,
            max_tokens: file.budget.max_tokens,
            call_timeout: file.budget.call_timeout,
            servers: Vec::new(),
            oauth: BTreeMap::new(),
            otel: None,
            command_tools: Vec::new(),
            workspaces: workspaces(file.sandbox).map_err(refused)?,
            python: file.python,
            code_actions: file.code_actions,
        };
    out.command_tools = agentry_tools::command::command_tools(file.tools, &out.workspaces)
        .map_err(|e| refused(format!("[tools] {e}")))?;
    if let Some(otel) = file.otel {
        let mut cfg = OtlpConfig::new(otel.endpoint);
        if let Some(p) = otel.protocol {
            cfg.protocol = p.parse().map_err(|e| refused(format!("[otel] {e}")))?;
        }
        if let Some(name) = otel.service_name {
            cfg.service_name = name;
        }
        cfg.capture_content = otel.capture_content;
        if let Some(name) = otel.headers_env {
            let headers = std::env::var(&name).map_err(|_| {
                refused(format!(
                    "[otel] headers_env names `{name}`, which is not set"
                ))
            })?;
            cfg.headers = agentry_trace::otlp::parse_headers(&name, &headers)
                .map_err(|e| refused(e.to_string()))?;
        }
        out.otel = Some(cfg);
    }
    for (name, seconds) in [("timeout", out.timeout), ("call_timeout", out.call_timeout)] {
        if seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return Err(refused(format!(
                "budget.{name} must be a positive number of seconds"
            )));
        }
    }
    for (alias, entry) in file.mcp {
        let command = match (entry.command, entry.url) {
            (Some(c), None) if !c.is_empty() && entry.oauth.is_none() => c,
            (Some(_), None) if entry.oauth.is_some() => {
                return Err(refused(format!(
                    "[mcp.{alias}] is a command; oauth = {{…}} is for a server reached by url"
                )));
            }
            (None, Some(url))
                if entry.env.is_empty()
                    && (url.starts_with("http://") || url.starts_with("https://")) =>
            {
                vec![url]
            }
            (None, Some(_)) if !entry.env.is_empty() => {
                return Err(refused(format!(
                    "[mcp.{alias}] is reached by url; env = {{…}} is for a command"
                )));
            }
            _ => {
                return Err(refused(format!(
                    "[mcp.{alias}] needs either command = [\"program\", \"arg\"…] or url = \"http://…\""
                )));
            }
        };
        let mut spec = ServerSpec::new(&alias, command).map_err(|e| refused(e.to_string()))?;
        spec.env = entry.env;
        if let Some(oauth) = entry.oauth {
            let options =
                oauth_options(oauth).map_err(|e| refused(format!("[mcp.{alias}] {e}")))?;
            out.oauth.insert(alias.clone(), options);
        }
        out.servers.push(spec);
    }
    Ok(out)
}

/// The environment's authorization settings with what `entry` says instead.
fn oauth_options(entry: OAuthEntry) -> Result<OAuthOptions, String> {
    let mut options = OAuthOptions::from_env();
    if let Some(id) = entry.client_id {
        options.client_id = Some(id);
    }
    if let Some(name) = entry.client_secret_env {
        options.client_secret =
            Some(std::env::var(&name).map_err(|_| {
                format!("oauth.client_secret_env names `{name}`, which is not set")
            })?);
    }
    if let Some(url) = entry.client_metadata_url {
        options.client_metadata_url = Some(url);
    }
    match entry.grant.as_deref() {
        None => {}
        Some("client_credentials") => options.client_credentials = true,
        Some("authorization_code") => options.client_credentials = false,
        Some(other) => {
            return Err(format!(
                "oauth.grant = \"{other}\": expected \"client_credentials\" or \"authorization_code\""
            ));
        }
    }
    if let Some(dir) = entry.token_dir {
        options.store = (!dir.as_os_str().is_empty()).then_some(dir);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("agentry-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agentry.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_config_sets_model_mode_policy_budgets_and_each_servers_oauth() {
        let path = write(
            "full",
            r#"
model = "openai:gpt-4o-mini"
base_url = "http://127.0.0.1:9/v1"
mode = "sequential"
policy = "rules.toml"
agent = "reader"
approve = "queue"

[budget]
timeout = 12.5
max_calls = 7
call_timeout = 3

[mcp.fs]
command = ["mcp-server-filesystem", "/tmp"]
env = { A = "1" }

[mcp.remote]
url = "https://example.com/mcp"
oauth = { client_id = "me", grant = "client_credentials", token_dir = "" }
"#,
        );
        let c = load(&path, true).unwrap();
        assert_eq!(c.model.as_deref(), Some("openai:gpt-4o-mini"));
        assert_eq!(c.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
        assert_eq!(c.mode, Some(agentry_exec::Mode::Sequential));
        assert_eq!(c.policy, Some(path.parent().unwrap().join("rules.toml")));
        assert_eq!(c.agent.as_deref(), Some("reader"));
        assert_eq!(c.approve, Some(ApproveMode::Queue));
        assert_eq!(
            (c.timeout, c.max_calls, c.max_tokens, c.call_timeout),
            (Some(12.5), Some(7), None, Some(3.0))
        );
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[0].env.get("A").map(String::as_str), Some("1"));
        let oauth = &c.oauth["remote"];
        assert_eq!(oauth.client_id.as_deref(), Some("me"));
        assert!(oauth.client_credentials);
        assert_eq!(oauth.store, None);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_bad_config_is_refused_with_its_line_and_reason() {
        for (text, want) in [
            ("modle = \"x\"\n", "line 1: unknown field `modle`"),
            ("mode = \"fast\"\n", "mode:"),
            (
                "approve = \"maybe\"\n",
                "expected \"terminal\", \"queue\" or \"never\"",
            ),
            (
                "[budget]\ntimeout = -1\n",
                "budget.timeout must be a positive number",
            ),
            (
                "api_key_env = \"AGENTRY_SURELY_UNSET_VAR\"\n",
                "`AGENTRY_SURELY_UNSET_VAR`, which is not set",
            ),
            (
                "[mcp.x]\ncommand = [\"a\"]\noauth = { client_id = \"me\" }\n",
                "oauth = {…} is for a server reached by url",
            ),
            (
                "[mcp.x]\nurl = \"https://e/mcp\"\noauth = { grant = \"implicit\" }\n",
                "oauth.grant = \"implicit\"",
            ),
        ] {
            let path = write("bad", text);
            let err = load(&path, true).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
