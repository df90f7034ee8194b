//! The policy-enforcing proxy over Streamable HTTP: [`serve`] answers MCP clients at
//! `http://ADDR/mcp` and passes their tool calls to an upstream server (stdio or HTTP)
//! through a [`CallGate`]. It works at the level of MCP requests, not bytes: it offers
//! what the upstream offers (tools, resources, prompts, completions), forwards
//! `tools/call` through the gate and the rest as it is; calls, reads, decisions and results
//! go to the audit trail. Notifications from the upstream (list changes, resource
//! updates, logs) are not passed on: the client sees the lists as they are when it asks.

use std::sync::Arc;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
        CompleteResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
        InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, PromptsCapability, ReadResourceRequestParams,
        ReadResourceResponse, ResourcesCapability, ServerCapabilities,
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
        let upstream = self.upstream.capabilities();
        let mut capabilities = ServerCapabilities::builder().enable_tools().build();
        // What the upstream offers, minus what needs notifications passed on.
        capabilities.prompts = upstream.prompts.map(|_| PromptsCapability::default());
        capabilities.resources = upstream.resources.map(|_| ResourcesCapability::default());
        capabilities.completions = upstream.completions;
        InitializeResult::new(capabilities).with_server_info(Implementation::new(
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

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.upstream
            .forward(|peer| {
                let request = request.clone();
                async move { peer.list_resources(request).await }
            })
            .await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.upstream
            .forward(|peer| {
                let request = request.clone();
                async move { peer.list_resource_templates(request).await }
            })
            .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.audit
            .json("client_to_server", json!({"read": request.uri}));
        let read = self
            .upstream
            .forward(|peer| {
                let request = request.clone();
                async move { peer.read_resource(request).await }
            })
            .await?;
        self.audit.json(
            "server_to_client",
            json!({"read": request.uri, "result": serde_json::to_value(&read).unwrap_or_default()}),
        );
        Ok(read.into())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.upstream
            .forward(|peer| {
                let request = request.clone();
                async move { peer.list_prompts(request).await }
            })
            .await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.audit
            .json("client_to_server", json!({"prompt": request.name}));
        self.upstream
            .forward(|peer| {
                let request = request.clone();
                async move { peer.get_prompt_once(request).await }
            })
            .await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.upstream
            .forward(|peer| {
                let request = request.clone();
                async move { peer.complete(request).await }
            })
            .await
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
