//! The policy-enforcing proxy over Streamable HTTP: [`serve`] answers MCP clients at
//! `http://ADDR/mcp` and passes their tool calls to an upstream server (stdio or HTTP)
//! through a [`CallGate`]. It works at the level of MCP requests, not bytes: it offers
//! what the upstream offers (tools, resources, prompts, completions), forwards
//! `tools/call` through the gate and the rest as it is; calls, reads, decisions and results
//! go to the audit trail. What the upstream sends on its own goes to the client it
//! concerns ([`Downstream`]): progress and log messages and requests for a model or for
//! user input to the client whose call is running, resource updates to the clients that
//! subscribed. List changes are not passed on: a client sees the lists as they are when it
//! asks.

use std::sync::Arc;

use futures::future::BoxFuture;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult,
        CompleteRequestParams, CompleteResult, ContentBlock, GetPromptRequestParams,
        GetPromptResponse, Implementation, InitializeResult, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ProgressToken, PromptsCapability, ReadResourceRequestParams, ReadResourceResponse,
        ResourcesCapability, ServerCapabilities, ServerNotification, ServerRequest,
        SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams,
    },
    service::{Peer, RequestContext},
};
use serde_json::{Value, json};

use crate::{
    McpServer,
    proxy::{Audit, CallGate, Gate},
};

/// A call running through the proxy: its number, its client, the client's progress token.
type Running = (u64, Peer<RoleServer>, Option<ProgressToken>);

/// The proxy's clients, as the upstream's messages need them: whose calls are running, who
/// subscribed to what. Give it to the upstream's connection as its
/// [`Relay`](crate::Relay) and to [`serve`].
#[derive(Default)]
pub struct Downstream {
    calls: std::sync::Mutex<Vec<Running>>,
    subscribers: std::sync::Mutex<Vec<(String, Peer<RoleServer>)>>,
    seq: std::sync::atomic::AtomicU64,
}

impl Downstream {
    /// No clients yet.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The client whose call started last and is still running, with its progress token.
    fn current(&self) -> Option<(Peer<RoleServer>, Option<ProgressToken>)> {
        self.calls
            .lock()
            .ok()?
            .last()
            .map(|(_, p, t)| (p.clone(), t.clone()))
    }

    fn started(&self, peer: Peer<RoleServer>, token: Option<ProgressToken>) -> u64 {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((n, peer, token));
        }
        n
    }

    fn ended(&self, n: u64) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.retain(|(m, _, _)| *m != n);
        }
    }
}

impl crate::Relay for Downstream {
    fn notify(&self, notification: ServerNotification) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (to, notification): (Vec<Peer<RoleServer>>, _) = match notification {
                ServerNotification::ResourceUpdatedNotification(n) => {
                    let to = self
                        .subscribers
                        .lock()
                        .map(|s| {
                            s.iter()
                                .filter(|(uri, _)| *uri == n.params.uri)
                                .map(|(_, p)| p.clone())
                                .collect()
                        })
                        .unwrap_or_default();
                    (to, ServerNotification::ResourceUpdatedNotification(n))
                }
                // The upstream's progress carries the token agentry's call sent; the client
                // knows its own.
                ServerNotification::ProgressNotification(mut n) => match self.current() {
                    Some((peer, Some(token))) => {
                        n.params.progress_token = token;
                        (vec![peer], ServerNotification::ProgressNotification(n))
                    }
                    _ => return,
                },
                other => (self.current().map(|(p, _)| p).into_iter().collect(), other),
            };
            for peer in to {
                let _ = peer.send_notification(notification.clone()).await;
            }
        })
    }

    fn ask(&self, request: ServerRequest) -> BoxFuture<'_, Result<ClientResult, ErrorData>> {
        Box::pin(async move {
            let (peer, _) = self.current().ok_or_else(|| {
                ErrorData::invalid_request("no client call is running to ask", None)
            })?;
            peer.send_request(request).await.map_err(|e| match e {
                rmcp::service::ServiceError::McpError(e) => e,
                other => ErrorData::internal_error(other.to_string(), None),
            })
        })
    }
}

/// A request the proxy passes to the upstream as it is.
macro_rules! forward {
    ($method:ident, $params:ty, $answer:ty, $upstream:ident) => {
        async fn $method(
            &self,
            request: $params,
            _context: RequestContext<RoleServer>,
        ) -> Result<$answer, ErrorData> {
            self.upstream
                .forward(|peer| {
                    let request = request.clone();
                    async move { peer.$upstream(request).await }
                })
                .await
        }
    };
}

#[derive(Clone)]
struct Front {
    upstream: Arc<McpServer>,
    downstream: Arc<Downstream>,
    gate: Arc<dyn CallGate>,
    audit: Audit,
}

impl ServerHandler for Front {
    fn get_info(&self) -> InitializeResult {
        let upstream = self.upstream.capabilities();
        let mut capabilities = ServerCapabilities::builder().enable_tools().build();
        // What the upstream offers, minus list changes (not passed on).
        capabilities.prompts = upstream.prompts.map(|_| PromptsCapability::default());
        capabilities.resources = upstream.resources.map(|r| {
            let mut passed = ResourcesCapability::default();
            passed.subscribe = r.subscribe;
            passed
        });
        capabilities.completions = upstream.completions;
        capabilities.logging = upstream.logging;
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
        context: RequestContext<RoleServer>,
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
        // What the upstream sends during the call comes back to this client, progress
        // under the client's own token.
        let token = context.meta.get_progress_token();
        let n = self.downstream.started(context.peer.clone(), token);
        let result = self.upstream.call_raw(request).await;
        self.downstream.ended(n);
        let result = match result {
            Ok(r) => r,
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.for_model())]),
        };
        self.audit.json(
            "server_to_client",
            json!({"tool": tool, "result": serde_json::to_value(&result).unwrap_or_default()}),
        );
        Ok(result.into())
    }

    forward!(set_level, SetLevelRequestParams, (), set_level);
    forward!(
        list_resources,
        Option<PaginatedRequestParams>,
        ListResourcesResult,
        list_resources
    );
    forward!(
        list_resource_templates,
        Option<PaginatedRequestParams>,
        ListResourceTemplatesResult,
        list_resource_templates
    );
    forward!(
        list_prompts,
        Option<PaginatedRequestParams>,
        ListPromptsResult,
        list_prompts
    );
    forward!(complete, CompleteRequestParams, CompleteResult, complete);

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

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = request.uri.clone();
        self.upstream
            .forward(|peer| {
                let request = request.clone();
                async move { peer.subscribe(request).await }
            })
            .await?;
        if let Ok(mut s) = self.downstream.subscribers.lock() {
            s.push((uri, context.peer));
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut s) = self.downstream.subscribers.lock() {
            // Peers have no identity to compare; a client's own subscriptions go with the
            // uri once it unsubscribes.
            let _ = &context;
            s.retain(|(uri, _)| *uri != request.uri);
        }
        self.upstream
            .forward(|peer| {
                let request = request.clone();
                async move { peer.unsubscribe(request).await }
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
}

/// Serves the proxy at `http://ADDR/mcp` until `stop`; `ready` gets the address bound.
/// `downstream` must be the relay the upstream was connected with.
pub async fn serve(
    upstream: Arc<McpServer>,
    downstream: Arc<Downstream>,
    gate: Arc<dyn CallGate>,
    audit: Option<Box<dyn std::io::Write + Send>>,
    addr: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let (audit, audit_thread) = Audit::start(audit);
    let front = Front {
        upstream,
        downstream,
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
