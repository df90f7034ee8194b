//! `agentry.toml`: what a run uses when the command line does not say (MCP servers so far).
//!
//! ```toml
//! [mcp.fs]
//! command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp/x"]
//! env = { NOTES_READONLY = "1" }       # beyond HOME, PATH… (agentry's secrets stay out)
//!
//! [mcp.remote]
//! url = "http://127.0.0.1:8000/mcp"
//! ```

use std::{collections::BTreeMap, path::Path};

use agentry_mcp::ServerSpec;
use anyhow::{Result, bail};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    mcp: BTreeMap<String, McpEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct McpEntry {
    command: Option<Vec<String>>,
    url: Option<String>,
    /// Variables the command gets beyond the few it inherits.
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// The MCP servers `path` names, in alias order; a missing default file is no servers.
pub(crate) fn mcp_servers(path: &Path, explicit: bool) -> Result<Vec<ServerSpec>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) if !explicit => return Ok(Vec::new()),
        Err(e) => bail!("cannot read the config {}: {e}", path.display()),
    };
    let config: Config = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!("line {}: ", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default();
        anyhow::anyhow!(
            "the config {} is refused: {line}{}",
            path.display(),
            e.message().trim()
        )
    })?;
    let mut out = Vec::new();
    for (alias, entry) in config.mcp {
        let command = match (entry.command, entry.url) {
            (Some(c), None) if !c.is_empty() => c,
            (None, Some(url))
                if entry.env.is_empty()
                    && (url.starts_with("http://") || url.starts_with("https://")) =>
            {
                vec![url]
            }
            (None, Some(_)) if !entry.env.is_empty() => bail!(
                "the config {}: [mcp.{alias}] is reached by url; env = {{…}} is for a command",
                path.display()
            ),
            _ => bail!(
                "the config {}: [mcp.{alias}] needs either command = [\"program\", \"arg\"…] or url = \"http://…\"",
                path.display()
            ),
        };
        let mut spec = ServerSpec::new(&alias, command)
            .map_err(|e| anyhow::anyhow!("the config {}: {e}", path.display()))?;
        spec.env = entry.env;
        out.push(spec);
    }
    Ok(out)
}
