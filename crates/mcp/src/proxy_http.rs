//! The policy-enforcing proxy over Streamable HTTP: [`serve`] answers MCP clients at
//! `http://ADDR/mcp` and passes their tool calls to an upstream server (stdio or HTTP)
//! through a [`CallGate`]. It works at the level of MCP requests, not bytes: it offers the
//! upstream's tools and forwards `tools/call`; decisions and calls go to the audit trail.

use std::sync::Arc;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        InitializeResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use crate::{
    McpServer,
    proxy::{Audit, CallGate, Gate},
};

#[derive(Clone)]
struct Front {
    upstream: Arc<McpServer>,
    gate: Arc<dyn CallGate>,
    audit: Audit,
}

impl ServerHandler for Front {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                format!("agentry proxy for {}", self.upstream.alias()),
                env!("CARGO_PKG_VERSION"),
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult {
            tools: self.upstream.listed_tools().await,
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.to_string();
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        self.audit
            .json("client_to_server", json!({"tool": tool, "arguments": args}));
        let (gate, record) = Arc::clone(&self.gate).check(tool.clone(), args).await;
        self.audit
            .json("decision", json!({"tool": tool, "decision": record}));
        let mut request = request;
        match gate {
            Gate::Refuse(reason) => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(reason)]).into());
            }
            Gate::Forward(Some(Value::Object(rewritten))) => request.arguments = Some(rewritten),
            Gate::Forward(_) => {}
        }
        let result = match self.upstream.call_raw(request).await {
            Ok(r) => r,
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.for_model())]),
        };
        self.audit.json(
            "server_to_client",
            json!({"tool": tool, "result": serde_json::to_value(&result).unwrap_or_default()}),
        );
        Ok(result.into())
    }
}

/// Serves the proxy at `http://ADDR/mcp` until `stop`; `ready` gets the address bound.
pub async fn serve(
    upstream: Arc<McpServer>,
    gate: Arc<dyn CallGate>,
    audit: Option<Box<dyn std::io::Write + Send>>,
    addr: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let (audit, audit_thread) = Audit::start(audit);
    let front = Front {
        upstream,
        gate,
        audit: audit.clone(),
    };
    let served = crate::serve::serve_streamable(front, addr, stop, ready).await;
    drop(audit);
    if let Some(t) = audit_thread {
        // Sessions may still hold the trail for a moment; do not wait on them for long.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            tokio::task::spawn_blocking(move || t.join()),
        )
        .await;
    }
    served
}
