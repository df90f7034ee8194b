//! Flags several commands share: how to reach the model ([`ModelArgs`]: the embedded local
//! model's settings, a server's address and key), how to drive it ([`ModeArg`]), how to
//! send it tools ([`ToolModeArg`]) and the MCP servers whose tools it gets ([`McpArgs`]).

use std::{collections::BTreeMap, sync::Arc};

use agentry_mcp::{McpServer, OAuthOptions, ServerSpec};
use agentry_parse::Format;
use anyhow::{Result, bail};
use clap::ValueEnum;

/// How to reach the model: the embedded local model's settings (`--model local` or
/// `local:PATH`), an OpenAI-compatible server's address and key (`--model openai:…`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ModelArgs {
    /// Local model: CPU threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<u32>,
    /// Local model: context size in tokens; a longer prompt is an error (default 4096;
    /// 16384 for τ-bench, whose policy and tools alone take 4,300).
    #[arg(long, value_name = "TOKENS")]
    pub(crate) context: Option<u32>,
    /// Local model: decode without the grammar that keeps calls valid (for comparison).
    #[arg(long)]
    pub(crate) no_constrain: bool,
    /// Base URL of an OpenAI-compatible server (instead of OPENAI_BASE_URL).
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// API key (instead of OPENAI_API_KEY).
    #[arg(long, value_name = "KEY")]
    pub(crate) api_key: Option<String>,
}

impl ModelArgs {
    /// The options that open a model with these settings and `tool_mode`.
    pub(crate) fn options(&self, tool_mode: agentry_llm::ToolMode) -> agentry_llm::OpenOptions {
        agentry_llm::OpenOptions {
            tool_mode: Some(tool_mode),
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone(),
            threads: self.threads,
            context: Some(self.context.unwrap_or(4096)),
            constrain: Some(!self.no_constrain),
        }
    }
}

/// `--mode`: how to drive the model.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
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

/// `--tool-mode`: send tools natively, or render them into the prompt.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ToolModeArg {
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

/// MCP servers whose tools an agent may call.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct McpArgs {
    /// An MCP server whose tools the agent may call: ALIAS=COMMAND (repeatable), e.g.
    /// 'fs=npx -y @modelcontextprotocol/server-filesystem /tmp/x'. A tool whose name is
    /// taken is offered as ALIAS__name; policies match the alias as `server`.
    #[arg(long, value_name = "ALIAS=COMMAND")]
    pub(crate) mcp: Vec<String>,
    /// A variable for the MCP server ALIAS (repeatable): ALIAS=KEY=VALUE, or ALIAS=KEY to
    /// pass on agentry's own KEY. A server inherits only HOME, LOGNAME, PATH, SHELL, TERM,
    /// USER, LANG, LC_ALL, LC_CTYPE and TMPDIR otherwise (no API keys).
    #[arg(long, value_name = "ALIAS=KEY[=VALUE]")]
    pub(crate) mcp_env: Vec<String>,
}

impl McpArgs {
    /// The servers these flags name, then `more` (a config file's), each with the
    /// variables `--mcp-env` gives it.
    pub(crate) fn specs(&self, more: Vec<ServerSpec>) -> Result<Vec<ServerSpec>> {
        let mut specs = self
            .mcp
            .iter()
            .map(|m| ServerSpec::parse(m))
            .collect::<Result<Vec<_>, _>>()?;
        specs.extend(more);
        give_env(&mut specs, &self.mcp_env)?;
        Ok(specs)
    }
}

/// Gives each `--mcp-env ALIAS=KEY[=VALUE]` to the server ALIAS of `servers`.
fn give_env(servers: &mut [ServerSpec], given: &[String]) -> Result<()> {
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
        let (key, value) = crate::mcp::env_var("--mcp-env", var)?;
        spec.env.insert(key, value);
    }
    Ok(())
}

/// Connects to each of `specs` (with its OAuth settings from `oauth`, by alias, if any),
/// saying on stderr what each offers unless `quiet`.
pub(crate) async fn connect_mcp(
    specs: &[ServerSpec],
    oauth: &BTreeMap<String, OAuthOptions>,
    quiet: bool,
) -> Result<Vec<Arc<McpServer>>> {
    let mut servers = Vec::new();
    for spec in specs {
        let mut options = agentry_mcp::ClientOptions::from_env();
        if let Some(oauth) = oauth.get(&spec.alias) {
            options.oauth = oauth.clone();
        }
        options.oauth.show = agentry_mcp::ShowAddress::new(|address| {
            eprintln!("agentry: open this address to authorize the MCP server:\n  {address}");
        });
        let server = McpServer::connect_with(spec.clone(), options).await?;
        if !quiet {
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
    Ok(servers)
}
