//! MCP servers' tools beside other tools, in one set: [`merge_tools`] builds it, and a
//! [`Toolbox`] builds it again when a server says its tools changed
//! (`notifications/tools/list_changed`).
//!
//! A server's tool whose name is taken (by the base set or by an earlier server) is offered
//! as `ALIAS__name`: no tool hides another, and the model can tell them apart. The alias is
//! also what policies match as `server`. Names are given in order, so the same servers
//! give the same names every time.
//!
//! # Example
//!
//! ```
//! # async fn example() -> Result<(), agentry_mcp::McpError> {
//! let base = agentry_tools::demo_tools(std::time::Duration::ZERO);
//! // No servers: the base tools, as they are.
//! let tools = agentry_mcp::merge_tools(&base, &[]).await?;
//! assert_eq!(tools.names(), base.names());
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use agentry_tools::ToolSet;

use crate::{McpError, McpServer};

/// The tools on offer: `base`'s, then each server's in order; a server's tool whose name is
/// taken is offered as `ALIAS__name`.
pub async fn merge_tools(base: &ToolSet, servers: &[Arc<McpServer>]) -> Result<ToolSet, McpError> {
    let mut tools = base.filtered(|_| true);
    for server in servers {
        let taken = tools.names();
        for tool in server.tools(&|n| taken.iter().any(|t| t == n)).await {
            tools.add(tool).map_err(|e| McpError::Tool {
                alias: server.alias().to_owned(),
                why: e.to_string(),
            })?;
        }
    }
    Ok(tools)
}

/// A base set of tools and MCP servers whose tools can change during a run: asked before
/// each turn whether they [changed](Toolbox::changed), it gives the
/// [whole new set](Toolbox::current).
#[derive(Debug)]
pub struct Toolbox {
    base: ToolSet,
    servers: Vec<Arc<McpServer>>,
}

impl Toolbox {
    /// `base`'s tools and `servers`' tools.
    pub fn new(base: ToolSet, servers: Vec<Arc<McpServer>>) -> Self {
        Self { base, servers }
    }

    /// The servers, in the order their tools are named.
    pub fn servers(&self) -> &[Arc<McpServer>] {
        &self.servers
    }

    /// Whether a server said its tools changed since they were last listed.
    pub fn changed(&self) -> bool {
        self.servers.iter().any(|s| s.tools_have_changed())
    }

    /// The tools on offer now ([`merge_tools`]); a server whose tools changed is listed
    /// again.
    pub async fn current(&self) -> Result<ToolSet, McpError> {
        merge_tools(&self.base, &self.servers).await
    }

    /// The whole new set when a server said its tools changed, else `None`.
    pub async fn changes(&self) -> Option<Result<ToolSet, McpError>> {
        if self.changed() {
            Some(self.current().await)
        } else {
            None
        }
    }
}
