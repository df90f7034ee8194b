//! The policy-enforcing proxy over Streamable HTTP: [`serve`] answers MCP clients at
//! `http://ADDR/mcp` and passes their tool calls to an upstream server (stdio or HTTP)
//! through a [`CallGate`]. It works at the level of MCP requests, not bytes: it offers
//! what the upstream offers (tools, resources, prompts, completions), forwards
//! `tools/call` through the gate and the rest as it is; calls, reads, decisions and results
//! go to the audit trail.
//!
//! Each client session has an upstream session of its own: when a client initializes, the
//! proxy connects to the upstream for that client alone (for a command, a server process of
//! its own), and stops that connection when the session ends (the client deletes it, it
//! idles out, the proxy stops). So what the upstream sends on its own belongs to one client
//! with nothing to guess ([`Downstream`]): its log messages and its requests for a model
//! or for user input go to that client (a request on the stream of the call it came with,
//! when that is known), progress to the call whose progress token it carries, under the
//! client's own token, resource updates to the client that subscribed. One connection for
//! all clients cannot do this: in the 2025 revisions a log message or a request is tied to
//! no call, except by the HTTP stream it comes on (and over stdio not at all), so it could
//! only go to a guessed client. Requests outside a session (2026-07-28 clients, served
//! statelessly) share the connection made at start: there progress still goes to its call,
//! but log messages are dropped and requests for a model or for user input refused, as
//! they could be any client's. List changes are not passed on: a client sees the lists as
//! they are when it asks.

use std::{
    sync::{Arc, PoisonError, atomic::AtomicU64},
    time::Duration,
};

use agentry_core::ToolError;
use futures::future::BoxFuture;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult,
        CompleteRequestParams, CompleteResult, ContentBlock, GetExtensions, GetPromptRequestParams,
        GetPromptResponse, Implementation, InitializeRequestParams, InitializeResult,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        PaginatedRequestParams, ProgressToken, PromptsCapability, ReadResourceRequestParams,
        ReadResourceResponse, RequestId, ResourcesCapability, ServerCapabilities,
        ServerNotification, ServerRequest, SetLevelRequestParams, SubscribeRequestParams,
        UnsubscribeRequestParams,
    },
    service::{InboundStreamOrigin, OriginatingRequestId, Peer, RequestContext, ServiceError},
};
use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    McpServer,
    proxy::{Audit, CallGate, Gate},
};

/// A call running through the proxy.
struct Running {
    /// Its number among the connection's calls.
    n: u64,
    /// Its client.
    peer: Peer<RoleServer>,
    /// The client's id for the call.
    request: RequestId,
    /// The client's progress token, if it asked for progress.
    token: Option<ProgressToken>,
    /// The requests agentry sent upstream for it: id and progress token.
    sent: Vec<(RequestId, ProgressToken)>,
}

/// Where one upstream connection's own messages go, as the upstream's messages need the
/// clients: the calls running through the connection, who subscribed to what, and, for the
/// connection of one client's session, that client. [`Downstream::new`] is the relay of
/// the connection made at start, shared by requests outside a session: give it to that
/// connection as its [`Relay`](crate::Relay) and to [`serve`]. The proxy makes a relay for
/// each session's connection itself.
#[derive(Default)]
pub struct Downstream {
    /// The one client whose session the connection is, if it is one's.
    client: Option<Peer<RoleServer>>,
    calls: std::sync::Mutex<Vec<Running>>,
    subscribers: std::sync::Mutex<Vec<(String, Peer<RoleServer>)>>,
    seq: AtomicU64,
}

impl Downstream {
    /// The relay of a connection that no one client owns.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The relay of `client`'s own connection.
    fn for_client(client: Peer<RoleServer>) -> Arc<Self> {
        Arc::new(Self {
            client: Some(client),
            ..Self::default()
        })
    }

    fn started(
        &self,
        peer: Peer<RoleServer>,
        request: RequestId,
        token: Option<ProgressToken>,
    ) -> u64 {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Running {
                n,
                peer,
                request,
                token,
                sent: Vec::new(),
            });
        }
        n
    }

    /// Call `n` sent upstream the request `id` with progress token `token`.
    fn sent(&self, n: u64, id: &RequestId, token: &ProgressToken) {
        if let Ok(mut calls) = self.calls.lock()
            && let Some(call) = calls.iter_mut().find(|c| c.n == n)
        {
            call.sent.push((id.clone(), token.clone()));
        }
    }

    fn ended(&self, n: u64) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.retain(|c| c.n != n);
        }
    }

    /// The client, and its own token, of the call that sent the upstream request whose
    /// progress token is `token`.
    fn progress_to(&self, token: &ProgressToken) -> Option<(Peer<RoleServer>, ProgressToken)> {
        let calls = self.calls.lock().ok()?;
        let call = calls
            .iter()
            .find(|c| c.sent.iter().any(|(_, t)| t == token))?;
        Some((call.peer.clone(), call.token.clone()?))
    }

    /// The client's id for the call an upstream request belongs to: the call that sent
    /// the request on whose stream it came (Streamable HTTP says which), or, when the
    /// transport cannot say (stdio), the call running if it is the only one.
    fn call_of(&self, origin: Option<&InboundStreamOrigin>) -> Option<RequestId> {
        let calls = self.calls.lock().ok()?;
        match origin {
            Some(InboundStreamOrigin::OutboundRequest(id)) => calls
                .iter()
                .find(|c| c.sent.iter().any(|(s, _)| s == id))
                .map(|c| c.request.clone()),
            Some(InboundStreamOrigin::Unassociated) => None,
            None => match calls.as_slice() {
                [only] => Some(only.request.clone()),
                _ => None,
            },
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
                // knows its own. Progress no running call asked for goes nowhere.
                ServerNotification::ProgressNotification(mut n) => {
                    match self.progress_to(&n.params.progress_token) {
                        Some((peer, token)) => {
                            n.params.progress_token = token;
                            (vec![peer], ServerNotification::ProgressNotification(n))
                        }
                        None => return,
                    }
                }
                // Log messages: the session's client's; on a shared connection, anyone's,
                // so no one's.
                other => (self.client.iter().cloned().collect(), other),
            };
            for peer in to {
                let _ = peer.send_notification(notification.clone()).await;
            }
        })
    }

    fn ask(&self, request: ServerRequest) -> BoxFuture<'_, Result<ClientResult, ErrorData>> {
        Box::pin(async move {
            let Some(client) = self.client.clone() else {
                return Err(ErrorData::invalid_request(
                    "the proxy passes a request for a model or for user input only to a client \
                     with a session of its own (one that sent `initialize`)",
                    None,
                ));
            };
            let mut request = request;
            let origin = request.extensions_mut().remove::<InboundStreamOrigin>();
            if let Some(call) = self.call_of(origin.as_ref()) {
                // On the response stream of the client's call it belongs to.
                request.extensions_mut().insert(OriginatingRequestId(call));
            }
            // Sent from a task of its own: the task this runs in serves the upstream's
            // request, whose id rmcp would take for the client's call it comes from.
            let asked = tokio::spawn(async move { client.send_request(request).await });
            match asked.await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(ServiceError::McpError(e))) => Err(e),
                Ok(Err(other)) => Err(ErrorData::internal_error(other.to_string(), None)),
                Err(e) => Err(ErrorData::internal_error(e.to_string(), None)),
            }
        })
    }
}

/// `work`, unless the client cancels the request first (or its session ends).
async fn cancellable<T>(
    context: &RequestContext<RoleServer>,
    work: impl Future<Output = Result<T, ErrorData>>,
) -> Result<T, ErrorData> {
    tokio::select! {
        answer = work => answer,
        () = context.ct.cancelled() => {
            Err(ErrorData::internal_error("the request was cancelled", None))
        }
    }
}

/// A request the proxy passes to the upstream as it is.
macro_rules! forward {
    ($method:ident, $params:ty, $answer:ty, $upstream:ident) => {
        async fn $method(
            &self,
            request: $params,
            context: RequestContext<RoleServer>,
        ) -> Result<$answer, ErrorData> {
            let forwarded = self.upstream().forward(|peer| {
                let request = request.clone();
                async move { peer.$upstream(request).await }
            });
            cancellable(&context, forwarded).await
        }
    };
}

/// The sessions' own upstream connections: each is stopped when its session ends, and all
/// are when the proxy stops.
struct Upstreams {
    stop: CancellationToken,
    watchers: std::sync::Mutex<tokio::task::JoinSet<()>>,
}

impl Upstreams {
    /// Stops `upstream` once the guard returned is dropped (its session ended) or the
    /// proxy stops.
    fn watch(&self, upstream: Arc<McpServer>) -> DropGuard {
        let ended = CancellationToken::new();
        let until = ended.clone();
        let stop = self.stop.clone();
        let watcher = async move {
            tokio::select! {
                () = until.cancelled() => {}
                () = stop.cancelled() => {}
            }
            upstream.close().await;
        };
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        // Watchers whose connection is stopped leave the set here.
        while watchers.try_join_next().is_some() {}
        watchers.spawn(watcher);
        ended.drop_guard()
    }

    /// Stops every session's connection still open; waits a few seconds at most.
    async fn stop_all(&self) {
        self.stop.cancel();
        let mut watchers =
            std::mem::take(&mut *self.watchers.lock().unwrap_or_else(PoisonError::into_inner));
        let stopped = async { while watchers.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(5), stopped).await;
    }
}

/// A client session's own upstream connection and its relay; dropping it (the session
/// ended) stops the connection.
struct Link {
    upstream: Arc<McpServer>,
    relay: Arc<Downstream>,
    _stops: DropGuard,
}

/// The proxy as one client sees it.
struct Front {
    /// The connection made at start: what the upstream offers, and requests outside a
    /// session.
    shared: Arc<McpServer>,
    /// Its relay.
    downstream: Arc<Downstream>,
    gate: Arc<dyn CallGate>,
    audit: Audit,
    upstreams: Arc<Upstreams>,
    /// The session's own connection, from its `initialize` on.
    session: tokio::sync::OnceCell<Link>,
}

/// rmcp's HTTP service makes the front of each session (and of each request outside one)
/// by cloning: a clone shares the connection made at start, the gate and the audit trail,
/// and has no session connection yet.
impl Clone for Front {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            downstream: Arc::clone(&self.downstream),
            gate: Arc::clone(&self.gate),
            audit: self.audit.clone(),
            upstreams: Arc::clone(&self.upstreams),
            session: tokio::sync::OnceCell::new(),
        }
    }
}

impl Front {
    /// The upstream connection this client's requests go to: its session's own, or
    /// outside a session the shared one; and that connection's relay.
    fn link(&self) -> (&Arc<McpServer>, &Arc<Downstream>) {
        match self.session.get() {
            Some(link) => (&link.upstream, &link.relay),
            None => (&self.shared, &self.downstream),
        }
    }

    fn upstream(&self) -> &Arc<McpServer> {
        self.link().0
    }

    /// Connects to the upstream for `client` alone.
    async fn open(&self, client: Peer<RoleServer>) -> Result<Link, ErrorData> {
        let relay = Downstream::for_client(client);
        let upstream = self
            .shared
            .connect_again(relay.clone())
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let stops = self.upstreams.watch(Arc::clone(&upstream));
        Ok(Link {
            upstream,
            relay,
            _stops: stops,
        })
    }
}

impl ServerHandler for Front {
    fn get_info(&self) -> InitializeResult {
        let upstream = self.shared.capabilities();
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
            format!("agentry proxy for {}", self.shared.alias()),
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let answer = self.negotiate_initialize(&request)?;
        // The session's own upstream connection, before the client can send anything.
        self.session
            .get_or_try_init(|| self.open(context.peer.clone()))
            .await?;
        Ok(answer)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.upstream().listed_tools().await;
        if let Ok(listed) = serde_json::to_value(&tools) {
            self.gate.listed(&listed);
        }
        Ok(ListToolsResult {
            tools,
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
        // What the upstream sends about the call comes back to this client: progress
        // under the client's own token, requests on the call's stream.
        let (upstream, relay) = self.link();
        let token = context.meta.get_progress_token();
        let n = relay.started(context.peer.clone(), context.id.clone(), token);
        let sent = |id: &RequestId, token: &ProgressToken| relay.sent(n, id, token);
        let cancelled = context.ct.cancelled();
        let result = tokio::select! {
            result = upstream.call_relayed(request, &sent) => result,
            () = cancelled => Err(ToolError::unavailable("the client cancelled the call")),
        };
        relay.ended(n);
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
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.audit
            .json("client_to_server", json!({"prompt": request.name}));
        let got = self.upstream().forward(|peer| {
            let request = request.clone();
            async move { peer.get_prompt_once(request).await }
        });
        cancellable(&context, got).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = request.uri.clone();
        let (upstream, relay) = self.link();
        let subscribed = upstream.forward(|peer| {
            let request = request.clone();
            async move { peer.subscribe(request).await }
        });
        cancellable(&context, subscribed).await?;
        if let Ok(mut s) = relay.subscribers.lock() {
            s.push((uri, context.peer));
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (upstream, relay) = self.link();
        if let Ok(mut s) = relay.subscribers.lock() {
            // Peers have no identity to compare; on a session's own connection every
            // subscriber is its client, and on the shared one the uri goes for all.
            s.retain(|(uri, _)| *uri != request.uri);
        }
        let unsubscribed = upstream.forward(|peer| {
            let request = request.clone();
            async move { peer.unsubscribe(request).await }
        });
        cancellable(&context, unsubscribed).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.audit
            .json("client_to_server", json!({"read": request.uri}));
        let read = self.upstream().forward(|peer| {
            let request = request.clone();
            async move { peer.read_resource(request).await }
        });
        let read = cancellable(&context, read).await?;
        self.audit.json(
            "server_to_client",
            json!({"read": request.uri, "result": serde_json::to_value(&read).unwrap_or_default()}),
        );
        Ok(read.into())
    }
}

/// Serves the proxy at `http://ADDR/mcp` until `stop`; `ready` gets the address bound.
/// `upstream` is the connection made at start, and `downstream` the relay it was connected
/// with; each client session gets a connection of its own, stopped when the session ends
/// or the proxy stops.
pub async fn serve(
    upstream: Arc<McpServer>,
    downstream: Arc<Downstream>,
    gate: Arc<dyn CallGate>,
    audit: Option<Box<dyn std::io::Write + Send>>,
    addr: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), crate::serve::ServeError> {
    let (audit, audit_thread) = Audit::start(audit);
    let upstreams = Arc::new(Upstreams {
        stop: stop.child_token(),
        watchers: std::sync::Mutex::default(),
    });
    let front = Front {
        shared: upstream,
        downstream,
        gate,
        audit: audit.clone(),
        upstreams: Arc::clone(&upstreams),
        session: tokio::sync::OnceCell::new(),
    };
    let served = crate::serve::serve_streamable(front, addr, &[], stop, ready).await;
    upstreams.stop_all().await;
    drop(audit);
    if let Some(t) = audit_thread {
        // Sessions may still hold the trail for a moment; do not wait on them for long.
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::task::spawn_blocking(move || t.join()),
        )
        .await;
    }
    served
}
