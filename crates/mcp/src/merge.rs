//! An MCP server as a [`ToolSource`]: its tools join an agent's (`.mcp(server)`) or a
//! [`agentry_tools::Toolbox`] beside other tools, and are listed again when the server says
//! they changed (`notifications/tools/list_changed`).
//!
//! # Example
//!
//! ```
//! # async fn example() -> Result<(), agentry_tools::MergeError> {
//! use agentry_tools::Toolbox;
//! let base = agentry_tools::demo_tools(std::time::Duration::ZERO);
//! // No servers: the base tools, as they are. With servers:
//! // `Toolbox::new(base, vec![server as Arc<dyn ToolSource>])`.
//! let toolbox = Toolbox::new(base.filtered(|_| true), Vec::new());
//! assert_eq!(toolbox.current().await?.names(), base.names());
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use agentry_tools::{DynTool, ToolSource};
use futures::future::BoxFuture;

use crate::McpServer;

impl ToolSource for McpServer {
    fn alias(&self) -> &str {
        McpServer::alias(self)
    }

    fn tools<'a>(
        self: Arc<Self>,
        taken: &'a (dyn Fn(&str) -> bool + Sync),
    ) -> BoxFuture<'a, Vec<Arc<dyn DynTool>>> {
        Box::pin(async move {
            McpServer::tools(&self, taken)
                .await
                .into_iter()
                .map(|t| Arc::new(t) as Arc<dyn DynTool>)
                .collect()
        })
    }

    fn changed(&self) -> bool {
        self.tools_have_changed()
    }
}
