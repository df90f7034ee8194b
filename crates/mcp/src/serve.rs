//! agentry as an MCP server: [`serve_stdio`] offers a [`ToolSet`] (agentry's tools, and an
//! agent wrapped as one tool by the caller) to any MCP client over stdio. Each call is
//! validated against its schema before it runs; a tool's error comes back as an error
//! result the client's model can read.

use std::sync::Arc;

use agentry_tools::{CallContext, ToolSet};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        InitializeResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool,
    },
    service::RequestContext,
};
use serde_json::Value;

/// Serves `tools` to an MCP client.
#[derive(Clone)]
pub struct ToolServer {
    tools: Arc<ToolSet>,
    listed: Arc<Vec<Tool>>,
    calls: Arc<std::sync::atomic::AtomicU64>,
}

impl ToolServer {
    /// A server for `tools`.
    pub fn new(tools: Arc<ToolSet>) -> Self {
        let listed = tools
            .specs()
            .iter()
            .map(|s| {
                let schema = match &s.parameters {
                    Value::Object(m) => m.clone(),
                    _ => serde_json::Map::new(),
                };
                let mut tool = Tool::new(s.name.clone(), s.description.clone(), Arc::new(schema));
                if let Some(Value::Object(out)) = &s.output_schema {
                    tool.output_schema = Some(Arc::new(out.clone()));
                }
                tool
            })
            .collect();
        Self {
            tools,
            listed: Arc::new(listed),
            calls: Arc::default(),
        }
    }
}

impl ServerHandler for ToolServer {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agentry", env!("CARGO_PKG_VERSION")))
            .with_instructions("agentry's tools; `agent` (when offered) runs a whole task.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult {
            tools: (*self.listed).clone(),
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let Some(tool) = self.tools.get(&name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            ));
        };
        let args = Value::Object(request.arguments.unwrap_or_default());
        let checked = match self.tools.check(&name, args) {
            Ok(c) => c,
            Err(e) => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(e.for_model())]).into());
            }
        };
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cx = CallContext {
            call_id: format!("mcp-{n}"),
            cancel: context.ct.child_token(),
            deadline: None,
            traceparent: traceparent(&request.meta, &context),
            run_id: None,
            calls: None,
        };
        let result = match tool.call_json(checked.arguments, cx).await {
            Ok(Value::String(text)) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Ok(value @ Value::Object(_)) => CallToolResult::structured(value),
            Ok(other) => CallToolResult::success(vec![ContentBlock::text(other.to_string())]),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
                "{}: {}",
                e.kind(),
                e.for_model()
            ))]),
        };
        Ok(result.into())
    }
}

/// The W3C `traceparent` a request came with: in its `_meta` (SEP-414, any transport), or
/// as an HTTP header (Streamable HTTP); `None` when neither holds a valid one.
fn traceparent(
    meta: &Option<rmcp::model::RequestMetaObject>,
    context: &RequestContext<RoleServer>,
) -> Option<String> {
    let from_meta = meta
        .as_ref()
        .and_then(|m| m.get_traceparent())
        .or_else(|| context.meta.get_traceparent());
    let from_header = context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.headers.get("traceparent"))
        .and_then(|v| v.to_str().ok());
    [from_meta, from_header]
        .into_iter()
        .flatten()
        .find_map(agentry_core::TraceParent::parse)
        .map(|p| p.header())
}

/// Why a server could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while serving.
    #[error("the HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
    /// The client's MCP handshake over stdio failed (boxed: rmcp's error is large).
    #[error("the MCP handshake failed: {0}")]
    Handshake(#[source] Box<rmcp::service::ServerInitializeError>),
    /// The stdio session's task failed (it panicked or was cancelled).
    #[error("the MCP session failed: {0}")]
    Session(#[source] tokio::task::JoinError),
}

/// Serves `tools` over Streamable HTTP at `http://ADDR/mcp` until `stop` is cancelled;
/// `ready` receives the address bound (useful with port 0). Requests must name a loopback
/// host, the address bound, or one of `allowed_hosts` (`NAME` or `NAME:PORT`) as their
/// `Host` (against DNS rebinding).
pub async fn serve_http(
    tools: Arc<ToolSet>,
    addr: std::net::SocketAddr,
    allowed_hosts: &[String],
    stop: tokio_util::sync::CancellationToken,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), ServeError> {
    serve_streamable(ToolServer::new(tools), addr, allowed_hosts, stop, ready).await
}

/// Serves `handler` (one clone per session) at `http://ADDR/mcp` until `stop`, checking
/// Host and Origin against DNS rebinding: a request must name a loopback host, the address
/// bound, or one of `allowed_hosts`; `ready` gets the address bound.
pub async fn serve_streamable<S: ServerHandler + Clone>(
    handler: S,
    addr: std::net::SocketAddr,
    allowed_hosts: &[String],
    stop: tokio_util::sync::CancellationToken,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), ServeError> {
    use rmcp::transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    };
    let listen = |source: std::io::Error| ServeError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    let mut config =
        StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token());
    if !bound.ip().is_unspecified() && !bound.ip().is_loopback() {
        config.allowed_hosts.push(bound.ip().to_string());
    }
    config.allowed_hosts.extend(allowed_hosts.iter().cloned());
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        LocalSessionManager::default().into(),
        config,
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    ready(bound);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(ServeError::Http)
}

/// Serves `tools` on stdin/stdout until the client goes away.
pub async fn serve_stdio(tools: Arc<ToolSet>) -> Result<(), ServeError> {
    let service = ToolServer::new(tools)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Handshake(Box::new(e)))?;
    service.waiting().await.map_err(ServeError::Session)?;
    Ok(())
}
