//! MCP servers as agentry tools: [`McpServer`] connects to a Model Context Protocol server
//! over stdio (a command line) or Streamable HTTP (a URL), and [`McpServer::tools`] offers each of its tools to the
//! engine as an ordinary tool (validated against its `inputSchema`, policy-checked with the
//! server's alias, traced).
//!
//! Built on the official Rust SDK (`rmcp`), which negotiates the protocol revision with the
//! server (2026-07-28 and the older `initialize` revisions). A server that crashes or whose
//! connection breaks fails the calls in flight with `Unavailable` and is started again on
//! the next call, with exponential backoff; a server that hangs is cut off by the engine's
//! per-call deadline. Nothing waits forever.
//!
//! An `Arc<McpServer>` is a [`agentry_tools::ToolSource`]: an agent's `.mcp(server)` puts
//! its tools beside the agent's own (a clashing name becomes `ALIAS__name`) and lists them
//! again when the server says they changed.
#![deny(clippy::print_stdout, clippy::print_stderr)]
// The proxy passes on logging and sampling, which revision 2026-07-28 deprecates but the
// 2025 revisions that most servers run still use.
#![allow(deprecated)]

mod auth;
mod child_env;
mod merge;
pub mod proxy;
pub mod proxy_http;
pub mod serve;

use std::{
    collections::BTreeMap,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use agentry_core::{ToolError, ToolSpec};
use agentry_tools::{CallContext, DynTool};
use futures::future::BoxFuture;
use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResponse, CallToolResult,
        CancelledNotificationParam, ClientCapabilities, ClientConfig, ClientRequest, ClientResult,
        ContentBlock, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
        ElicitResult, ElicitationAction, ElicitationCapability, FormElicitationCapability,
        GetExtensions, Implementation, InputRequest, InputResponses,
        LoggingMessageNotificationParam, Notification, ProgressNotificationParam, ProgressToken,
        ProtocolVersion, Request, RequestId, RequestParamsMeta, ResourceUpdatedNotificationParam,
        ServerNotification, ServerRequest, ServerResult,
    },
    service::{
        ClientInitializeError, ClientLifecycleMode, ClientServiceExt, InboundStreamOrigin,
        NotificationContext, Peer, PeerRequestOptions, RequestContext, RunningService,
        ServiceError,
    },
    transport::TokioChildProcess,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

pub use auth::{OAuthOptions, ShowAddress};
pub use child_env::INHERITED_ENV;

/// An MCP server to connect to: its alias (the `server` in policies, the prefix of its tool
/// names when they clash) and the command that starts it (stdio), or its URL (Streamable
/// HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Short name, e.g. `fs`.
    pub alias: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Environment variables the command gets beyond [`INHERITED_ENV`] (which is all it
    /// gets of agentry's own environment).
    pub env: BTreeMap<String, String>,
}

/// Where `scripts/mcp-servers` installs program `name` from npm:
/// `$AGENTRY_NPM_DIR/node_modules/.bin/NAME`, by default under `~/.cache/agentry/npm`.
pub fn npm_bin(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("AGENTRY_NPM_DIR").map_or_else(
        || {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/agentry/npm")
        },
        std::path::PathBuf::from,
    );
    dir.join("node_modules/.bin").join(name)
}

/// What goes wrong connecting to a server.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The spec is not `ALIAS=COMMAND …`.
    #[error("{0}")]
    Spec(String),
    /// The server could not be started or did not complete the handshake.
    #[error("the MCP server `{alias}` ({command}) could not be started: {why}")]
    Start {
        /// Its alias.
        alias: String,
        /// Its command line.
        command: String,
        /// Why.
        why: String,
    },
}

impl ServerSpec {
    /// A spec for `command` (or one URL) under `alias`, which must be letters, digits, `-`
    /// or `_`.
    pub fn new(alias: &str, command: Vec<String>) -> Result<Self, McpError> {
        let alias = alias.trim();
        if alias.is_empty()
            || !alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(McpError::Spec(format!(
                "the alias `{alias}` must be letters, digits, `-` or `_`"
            )));
        }
        if command.is_empty() {
            return Err(McpError::Spec(format!(
                "the server `{alias}` has no command"
            )));
        }
        Ok(Self {
            alias: alias.to_owned(),
            command,
            env: BTreeMap::new(),
        })
    }

    /// Gives the server's command the variable `name` with `value`.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// The server's URL when it is reached over Streamable HTTP (the command is one
    /// `http://` or `https://` URL).
    pub fn url(&self) -> Option<&str> {
        match self.command.as_slice() {
            [one] if one.starts_with("http://") || one.starts_with("https://") => Some(one),
            _ => None,
        }
    }

    /// Reads `ALIAS=COMMAND ARGS…` or `ALIAS=URL` (Streamable HTTP) (arguments split on spaces; single or double quotes keep
    /// spaces inside one argument).
    pub fn parse(text: &str) -> Result<Self, McpError> {
        let bad = |why: &str| {
            McpError::Spec(format!(
                "`{text}`: {why}; write ALIAS=COMMAND, e.g. 'fs=npx -y @modelcontextprotocol/server-filesystem /tmp'"
            ))
        };
        let (alias, command) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let command = split_words(command).map_err(|w| bad(&w))?;
        Self::new(alias, command).map_err(|e| bad(&e.to_string()))
    }
}

fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// How agentry answers a server's `elicitation/create` (a request for the user's input in
/// the middle of a call). An agent runs unattended, so the default declines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Elicitation {
    /// Decline every request (the elicitation capability is not announced).
    #[default]
    Decline,
    /// Accept a form with the defaults its schema gives; decline one whose required field
    /// has no default, and any URL elicitation.
    Defaults,
}

/// Notices the server's `notifications/tools/list_changed`; answers elicitation.
#[derive(Clone, Default)]
struct Handler {
    tools_changed: Arc<AtomicBool>,
    elicitation: Elicitation,
    relay: Option<Arc<dyn Relay>>,
    /// Held (written) from sending a relayed call's request until its id and progress
    /// token are recorded; the relay is told nothing while it is, so nothing the server
    /// sends about that request can reach the relay before the relay knows the request.
    sending: Arc<tokio::sync::RwLock<()>>,
}

/// Told the id and progress token of each request a call sends to the server (see
/// [`McpServer::call_relayed`]).
pub type OnSent<'a> = &'a (dyn Fn(&RequestId, &ProgressToken) + Sync);

impl Handler {
    /// Waits until every relayed request sent so far is recorded (see `sending`).
    async fn recorded(&self) {
        drop(self.sending.read().await);
    }

    /// Passes a notification on to the relay, if there is one.
    async fn pass_on(&self, notification: ServerNotification) {
        if let Some(relay) = &self.relay {
            self.recorded().await;
            relay.notify(notification).await;
        }
    }

    /// Asks the relay, with the stream the request came on when the transport tells it
    /// (Streamable HTTP: the response stream of the request it belongs to).
    async fn ask(
        &self,
        relay: &Arc<dyn Relay>,
        mut request: ServerRequest,
        context: &RequestContext<RoleClient>,
    ) -> Result<ClientResult, rmcp::ErrorData> {
        if let Some(origin) = context.extensions.get::<InboundStreamOrigin>() {
            request.extensions_mut().insert(origin.clone());
        }
        self.recorded().await;
        relay.ask(request).await
    }

    /// The answer to a request for the user's input.
    fn elicit(&self, request: ElicitRequestParams) -> ElicitResult {
        match (self.elicitation, request) {
            (
                Elicitation::Defaults,
                ElicitRequestParams::FormElicitationParams {
                    requested_schema, ..
                },
            ) => match serde_json::to_value(&requested_schema).map(|s| schema_defaults(&s)) {
                Ok(Some(content)) => ElicitResult::new(ElicitationAction::Accept)
                    .with_content(Value::Object(content)),
                _ => ElicitResult::new(ElicitationAction::Decline),
            },
            _ => ElicitResult::new(ElicitationAction::Decline),
        }
    }

    /// Calls a tool through `peer`, answering the server's `input_required` rounds
    /// (2026-07-28: elicitation and roots here; sampling is refused) and retrying.
    async fn call_tool(
        &self,
        peer: &Peer<RoleClient>,
        mut params: CallToolRequestParams,
        sent: Option<OnSent<'_>>,
    ) -> Result<CallToolResult, ServiceError> {
        for _ in 0..MAX_INPUT_ROUNDS {
            let pending = match self.call_tool_once(peer, params.clone(), sent).await? {
                CallToolResponse::Complete(result) => return Ok(result),
                CallToolResponse::InputRequired(pending) => pending,
                _ => return Err(ServiceError::UnexpectedResponse),
            };
            let mut answers = InputResponses::new();
            for (key, request) in pending.input_requests.unwrap_or_default() {
                let answer = match request {
                    InputRequest::Elicitation(r) => serde_json::to_value(self.elicit(r.params)),
                    InputRequest::ListRoots(_) => Ok(json!({"roots": []})),
                    _ => {
                        return Err(ServiceError::McpError(rmcp::ErrorData::invalid_request(
                            "agentry answers elicitation and roots only (no sampling)",
                            None,
                        )));
                    }
                };
                answers.insert(key, answer.map_err(|_| ServiceError::UnexpectedResponse)?);
            }
            params.input_responses = (!answers.is_empty()).then_some(answers);
            params.request_state = pending.request_state;
        }
        Err(ServiceError::InputRequiredRoundsExceeded {
            max_rounds: MAX_INPUT_ROUNDS,
        })
    }

    /// One `tools/call` request; `sent`, if given, is told its id and progress token
    /// before anything the server sends about it is relayed.
    async fn call_tool_once(
        &self,
        peer: &Peer<RoleClient>,
        params: CallToolRequestParams,
        sent: Option<OnSent<'_>>,
    ) -> Result<CallToolResponse, ServiceError> {
        let Some(sent) = sent else {
            return peer.call_tool_once(params).await;
        };
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = {
            let _sending = self.sending.write().await;
            let handle = peer
                .send_request_with_option(request, PeerRequestOptions::no_options())
                .await?;
            sent(&handle.id, &handle.progress_token);
            handle
        };
        let mut abandoned = Abandoned {
            peer: peer.clone(),
            id: Some(handle.id.clone()),
        };
        let answer = handle.await_response().await;
        abandoned.disarm();
        match answer? {
            ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
            ServerResult::InputRequiredResult(pending) => {
                Ok(CallToolResponse::InputRequired(pending))
            }
            ServerResult::EmptyResult(_) => {
                Ok(CallToolResponse::Complete(CallToolResult::default()))
            }
            _ => Err(ServiceError::UnexpectedResponse),
        }
    }
}

/// A request whose caller stopped waiting: dropped before its answer came, it tells the
/// server (`notifications/cancelled`), as rmcp's own calls do.
struct Abandoned {
    peer: Peer<RoleClient>,
    id: Option<RequestId>,
}

impl Abandoned {
    /// The answer came: nothing to tell.
    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(id) = self.id.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let peer = self.peer.clone();
            runtime.spawn(async move {
                let reason = Some("the caller went away".to_owned());
                let _ = peer
                    .notify_cancelled(CancelledNotificationParam::new(Some(id), reason))
                    .await;
            });
        }
    }
}

/// How many `input_required` rounds one call may take.
const MAX_INPUT_ROUNDS: usize = 8;

impl ClientHandler for Handler {
    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.tools_changed.store(true, Ordering::Relaxed);
        std::future::ready(())
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        let Some(relay) = &self.relay else {
            return Ok(self.elicit(request));
        };
        let request = ServerRequest::ElicitRequest(Request::new(request));
        match self.ask(relay, request, &context).await? {
            ClientResult::ElicitResult(answer) => Ok(answer),
            _ => Err(rmcp::ErrorData::internal_error(
                "the client answered something else",
                None,
            )),
        }
    }

    async fn create_message(
        &self,
        request: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, rmcp::ErrorData> {
        let Some(relay) = &self.relay else {
            return Err(rmcp::ErrorData::invalid_request(
                "agentry does not lend its model to servers (sampling)",
                None,
            ));
        };
        let request = ServerRequest::CreateMessageRequest(Request::new(request));
        match self.ask(relay, request, &context).await? {
            ClientResult::CreateMessageResult(answer) => Ok(*answer),
            _ => Err(rmcp::ErrorData::internal_error(
                "the client answered something else",
                None,
            )),
        }
    }

    fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.pass_on(ServerNotification::ProgressNotification(Notification::new(
            params,
        )))
    }

    fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.pass_on(ServerNotification::LoggingMessageNotification(
            Notification::new(params),
        ))
    }

    fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.pass_on(ServerNotification::ResourceUpdatedNotification(
            Notification::new(params),
        ))
    }

    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        if self.relay.is_some() {
            // The client behind answers these; it says no when it cannot.
            capabilities.sampling = Some(Default::default());
        }
        if self.elicitation == Elicitation::Defaults || self.relay.is_some() {
            capabilities.elicitation =
                Some(ElicitationCapability::new().with_form(FormElicitationCapability::new()));
        }
        let mut config = ClientConfig::new(
            capabilities,
            Implementation::new("agentry", env!("CARGO_PKG_VERSION")),
        );
        // What `initialize` proposes; `server/discover` names the current revision itself.
        config.protocol_version = ProtocolVersion::LATEST_WITH_INITIALIZE;
        config
    }
}

/// The object of every property's `default` in an elicitation form's schema, or `None`
/// when a required property has no default.
fn schema_defaults(schema: &Value) -> Option<serde_json::Map<String, Value>> {
    let properties = schema.get("properties").and_then(Value::as_object);
    let defaults: serde_json::Map<String, Value> = properties
        .into_iter()
        .flatten()
        .filter_map(|(name, p)| Some((name.clone(), p.get("default")?.clone())))
        .collect();
    let required = schema.get("required").and_then(Value::as_array);
    let complete = required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .all(|name| defaults.contains_key(name));
    complete.then_some(defaults)
}

struct Connection {
    service: Option<RunningService<RoleClient, Handler>>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// Where a server's own messages go when agentry stands between it and another client
/// (the HTTP proxy): its notifications, and its requests for a model or for user input.
/// Neither reaches the relay before [`McpServer::call_relayed`] has told the relay about
/// the requests sent so far, so progress can be matched to its call by its token.
pub trait Relay: Send + Sync {
    /// A notification: progress, a log message, a resource update.
    fn notify(&self, notification: ServerNotification) -> BoxFuture<'_, ()>;
    /// A request (sampling, elicitation, roots), answered by the client behind. Its
    /// extensions hold the [`InboundStreamOrigin`] when the transport knows it (Streamable
    /// HTTP: the request on whose response stream it came).
    fn ask(&self, request: ServerRequest) -> BoxFuture<'_, Result<ClientResult, rmcp::ErrorData>>;
}

/// How agentry behaves as a client: how it answers elicitation, how it authorizes.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Answers to the server's requests for user input.
    pub elicitation: Elicitation,
    /// Authorization to servers that ask for it (HTTP only).
    pub oauth: OAuthOptions,
    /// Passes the server's notifications and requests on (instead of answering them here).
    /// The connection then uses the `initialize` handshake (2025-11-25) even with a server
    /// that knows 2026-07-28, which has no server-to-client requests or subscriptions to
    /// pass on.
    pub relay: Option<Arc<dyn Relay>>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("elicitation", &self.elicitation)
            .field("oauth", &self.oauth)
            .field("relay", &self.relay.is_some())
            .finish()
    }
}

impl ClientOptions {
    /// Elicitation declined; authorization settings from the environment
    /// ([`OAuthOptions::from_env`]).
    pub fn from_env() -> Self {
        Self {
            elicitation: Elicitation::Decline,
            oauth: OAuthOptions::from_env(),
            relay: None,
        }
    }
}

/// A connected MCP server.
pub struct McpServer {
    spec: ServerSpec,
    options: ClientOptions,
    conn: Mutex<Connection>,
    handler: Handler,
    /// The authorized HTTP client, once the server asked for authorization.
    auth: std::sync::Mutex<Option<auth::Authorized>>,
    tools: std::sync::Mutex<Vec<rmcp::model::Tool>>,
    protocol: std::sync::OnceLock<String>,
    capabilities: std::sync::OnceLock<rmcp::model::ServerCapabilities>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("alias", &self.spec.alias)
            .field("protocol", &self.protocol())
            .finish()
    }
}

/// Longest wait before restarting a crashed server.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How many times one operation may send agentry through authorization.
const MAX_AUTHORIZATIONS: u32 = 2;

impl McpServer {
    /// Starts the server, completes the handshake and lists its tools, with
    /// [`ClientOptions::from_env`].
    pub async fn connect(spec: ServerSpec) -> Result<Arc<Self>, McpError> {
        Self::connect_with(spec, ClientOptions::from_env()).await
    }

    /// [`McpServer::connect`] with these options.
    pub async fn connect_with(
        spec: ServerSpec,
        options: ClientOptions,
    ) -> Result<Arc<Self>, McpError> {
        Self::connect_authorized(spec, options, None).await
    }

    /// Another connection to the same server, a session of its own whose notifications
    /// and requests go to `relay` (the HTTP proxy opens one per client); the authorization
    /// this connection obtained is reused.
    pub async fn connect_again(&self, relay: Arc<dyn Relay>) -> Result<Arc<Self>, McpError> {
        let options = ClientOptions {
            relay: Some(relay),
            ..self.options.clone()
        };
        let auth = self.auth.lock().ok().and_then(|a| a.clone());
        Self::connect_authorized(self.spec.clone(), options, auth).await
    }

    /// [`McpServer::connect_with`], sending `auth`'s token from the start (HTTP).
    async fn connect_authorized(
        spec: ServerSpec,
        options: ClientOptions,
        auth: Option<auth::Authorized>,
    ) -> Result<Arc<Self>, McpError> {
        let handler = Handler {
            elicitation: options.elicitation,
            relay: options.relay.clone(),
            ..Handler::default()
        };
        let server = Arc::new(Self {
            spec,
            options,
            conn: Mutex::new(Connection {
                service: None,
                failures: 0,
                retry_at: None,
            }),
            handler,
            auth: std::sync::Mutex::new(auth),
            tools: std::sync::Mutex::default(),
            protocol: std::sync::OnceLock::new(),
            capabilities: std::sync::OnceLock::new(),
        });
        let service = server
            .open()
            .await
            .map_err(|why| start_error(&server.spec, why))?;
        server.conn.lock().await.service = Some(service);
        let listed = server
            .authorized(|peer| async move { peer.list_all_tools().await })
            .await
            .map_err(|e| start_error(&server.spec, e.for_model().to_owned()))?
            .map_err(|e| start_error(&server.spec, e.to_string()))?;
        if let Ok(mut tools) = server.tools.lock() {
            *tools = listed;
        }
        Ok(server)
    }

    /// Starts the server and completes the handshake, going through authorization when
    /// the server asks for it.
    async fn open(&self) -> Result<RunningService<RoleClient, Handler>, String> {
        // Tokens from an earlier run, if any: no browser needed then.
        if let Some(url) = self.spec.url()
            && self.auth.lock().is_ok_and(|a| a.is_none())
            && let Some(client) = auth::remembered(url, &self.options.oauth).await
            && let Ok(mut slot) = self.auth.lock()
        {
            *slot = Some(client);
        }
        for _ in 0..=MAX_AUTHORIZATIONS {
            let auth = self.auth.lock().ok().and_then(|a| a.clone());
            match start(&self.spec, &self.handler, auth).await {
                Ok(service) => {
                    if let Some(info) = service.peer_info() {
                        let _ = self.protocol.set(info.protocol_version.to_string());
                        let _ = self.capabilities.set(info.capabilities.clone());
                    }
                    return Ok(service);
                }
                Err(Handshake::Unauthorized(challenge)) => self.authorize(&challenge).await?,
                Err(Handshake::Refused(why) | Handshake::Failed(why)) => return Err(why),
            }
        }
        Err("the server still refuses agentry after authorization".into())
    }

    /// Authorizes agentry to the server (it asked with `challenge`); the next connection
    /// sends the token.
    async fn authorize(&self, challenge: &str) -> Result<(), String> {
        let url = self
            .spec
            .url()
            .ok_or("the server asked for authorization, which only HTTP servers can")?;
        tracing::info!(server = %self.spec.alias, "the MCP server asks for authorization");
        let client = auth::authorize(url, challenge, &self.options.oauth).await?;
        if let Ok(mut slot) = self.auth.lock() {
            *slot = Some(client);
        }
        Ok(())
    }

    /// Runs `op` on a live connection; when the server answers that it wants
    /// authorization (401) or a wider scope (403), authorizes and runs it again.
    async fn authorized<T, F, Fut>(&self, op: F) -> Result<Result<T, ServiceError>, ToolError>
    where
        F: Fn(Peer<RoleClient>) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        let mut authorizations = 0;
        loop {
            let outcome = op(self.peer().await?).await;
            if let Err(e) = &outcome
                && let Some(challenge) = auth::challenge(e)
                && authorizations < MAX_AUTHORIZATIONS
            {
                authorizations += 1;
                self.authorize(&challenge)
                    .await
                    .map_err(ToolError::unavailable)?;
                // The connection that was refused goes; the next one sends the token.
                let refused = self.conn.lock().await.service.take();
                if let Some(old) = refused {
                    let _ = old.cancel().await;
                }
                continue;
            }
            return Ok(outcome);
        }
    }

    /// Its alias.
    pub fn alias(&self) -> &str {
        &self.spec.alias
    }

    /// The protocol revision the server and agentry agreed on.
    pub fn protocol(&self) -> &str {
        self.protocol.get().map_or("", String::as_str)
    }

    /// What the server said it offers at the handshake (tools, resources, prompts…).
    pub fn capabilities(&self) -> rmcp::model::ServerCapabilities {
        self.capabilities.get().cloned().unwrap_or_default()
    }

    /// Sends the server a request as it is, through `op` on its connection (restarted
    /// and authorized as needed); the server's own error comes back as it sent it.
    pub async fn forward<T, F, Fut>(&self, op: F) -> Result<T, rmcp::ErrorData>
    where
        F: Fn(Peer<RoleClient>) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        match self.authorized(op).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(ServiceError::McpError(e))) => Err(e),
            Ok(Err(other)) => Err(rmcp::ErrorData::internal_error(
                format!("the MCP server `{}` failed: {other}", self.spec.alias),
                None,
            )),
            Err(e) => Err(rmcp::ErrorData::internal_error(
                e.for_model().to_owned(),
                None,
            )),
        }
    }

    /// Whether the server said its tools changed (`notifications/tools/list_changed`)
    /// since [`McpServer::tools`] or [`McpServer::listed_tools`] last listed them.
    pub fn tools_have_changed(&self) -> bool {
        self.handler.tools_changed.load(Ordering::Relaxed)
    }

    /// The server's tools as agentry tools, each named `name`, or `ALIAS__name` when
    /// `taken` says the plain name is used already.
    pub async fn tools(self: &Arc<Self>, taken: &(dyn Fn(&str) -> bool + Sync)) -> Vec<McpTool> {
        self.listed_tools()
            .await
            .into_iter()
            .map(|t| {
                let remote = t.name.to_string();
                let name = if taken(&remote) {
                    format!("{}__{remote}", self.spec.alias)
                } else {
                    remote.clone()
                };
                let mut spec = ToolSpec::new(
                    name,
                    t.description.as_deref().unwrap_or_default(),
                    Value::Object((*t.input_schema).clone()),
                );
                if let Some(out) = &t.output_schema {
                    spec = spec.output_schema(Value::Object((**out).clone()));
                }
                let hints = t.annotations.as_ref();
                let idempotent = hints.is_some_and(|a| {
                    a.read_only_hint == Some(true) || a.idempotent_hint == Some(true)
                });
                McpTool {
                    server: Arc::clone(self),
                    remote,
                    spec,
                    idempotent,
                }
            })
            .collect()
    }

    /// A live connection's peer, restarting the server if it went away and its backoff
    /// has passed.
    async fn peer(&self) -> Result<Peer<RoleClient>, ToolError> {
        let mut conn = self.conn.lock().await;
        if let Some(service) = &conn.service {
            if !service.is_closed() && !service.peer().is_transport_closed() {
                return Ok(service.peer().clone());
            }
            conn.service = None;
            conn.failures += 1;
            conn.retry_at = Some(Instant::now() + backoff(conn.failures));
        }
        if let Some(at) = conn.retry_at
            && Instant::now() < at
        {
            return Err(ToolError::unavailable(format!(
                "the MCP server `{}` stopped; it is restarted in {:.1} s",
                self.spec.alias,
                at.saturating_duration_since(Instant::now()).as_secs_f64()
            )));
        }
        match self.open().await {
            Ok(service) => {
                tracing::info!(server = %self.spec.alias, "MCP server restarted");
                let peer = service.peer().clone();
                conn.service = Some(service);
                conn.failures = 0;
                conn.retry_at = None;
                Ok(peer)
            }
            Err(why) => {
                conn.failures += 1;
                conn.retry_at = Some(Instant::now() + backoff(conn.failures));
                Err(ToolError::unavailable(
                    start_error(&self.spec, why).to_string(),
                ))
            }
        }
    }

    /// The server's tools as it lists them: listed again when it said they changed.
    pub async fn listed_tools(&self) -> Vec<rmcp::model::Tool> {
        if self.handler.tools_changed.swap(false, Ordering::Relaxed) {
            let fresh = self
                .authorized(|peer| async move { peer.list_all_tools().await })
                .await;
            if let (Ok(Ok(fresh)), Ok(mut tools)) = (fresh, self.tools.lock()) {
                *tools = fresh;
            }
        }
        self.tools.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Calls a tool on the server as it is (no agentry validation), restarting the server
    /// first if it went away; a broken connection fails the call as `Unavailable`.
    pub async fn call_raw(
        &self,
        params: CallToolRequestParams,
    ) -> Result<CallToolResult, ToolError> {
        self.call(params, None).await
    }

    /// [`McpServer::call_raw`], telling `sent` the id and progress token of each request
    /// the call sends, before anything the server sends about that request reaches the
    /// [`Relay`]: how the HTTP proxy knows which call a progress notification or a request
    /// belongs to.
    pub async fn call_relayed(
        &self,
        params: CallToolRequestParams,
        sent: OnSent<'_>,
    ) -> Result<CallToolResult, ToolError> {
        self.call(params, Some(sent)).await
    }

    /// [`McpServer::call_raw`], with `sent` if given.
    async fn call(
        &self,
        params: CallToolRequestParams,
        sent: Option<OnSent<'_>>,
    ) -> Result<CallToolResult, ToolError> {
        let alias = &self.spec.alias;
        let outcome = self
            .authorized(|peer| {
                let params = params.clone();
                async move { self.handler.call_tool(&peer, params, sent).await }
            })
            .await?;
        match outcome {
            Ok(result) => Ok(result),
            Err(ServiceError::McpError(e)) => Err(ToolError::failed(format!(
                "the MCP server `{alias}` refused the call: {}",
                e.message
            ))),
            Err(ServiceError::UnexpectedResponse) => Err(ToolError::malformed(format!(
                "the MCP server `{alias}` sent an answer that is not a tool result"
            ))),
            Err(other) => {
                self.broken().await;
                Err(ToolError::unavailable(format!(
                    "the MCP server `{alias}` went away during the call ({other})"
                )))
            }
        }
    }

    /// Calls `tool` with `args` as they are and returns the server's result as its JSON
    /// (`content`, `structuredContent`, `isError`).
    pub async fn call_as_is(
        &self,
        tool: &str,
        args: serde_json::Map<String, Value>,
    ) -> Result<Value, ToolError> {
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
        let result = self.call_raw(params).await?;
        serde_json::to_value(result).map_err(|e| ToolError::malformed(e.to_string()))
    }

    /// Marks the connection broken so the next call restarts the server.
    async fn broken(&self) {
        let mut conn = self.conn.lock().await;
        if conn.service.take().is_some() {
            conn.failures += 1;
            conn.retry_at = Some(Instant::now() + backoff(conn.failures));
        }
    }

    /// Stops the server.
    pub async fn close(&self) {
        if let Some(service) = self.conn.lock().await.service.take() {
            let _ = service.cancel().await;
        }
    }
}

fn backoff(failures: u32) -> Duration {
    let d = Duration::from_millis(250).saturating_mul(1 << failures.min(8));
    d.min(MAX_BACKOFF)
}

fn start_error(spec: &ServerSpec, why: String) -> McpError {
    McpError::Start {
        alias: spec.alias.clone(),
        command: spec.command.join(" "),
        why,
    }
}

/// Starts the server and completes the handshake: the current revision through
/// `server/discover` first, and for a server that answers that wrongly, the `initialize`
/// handshake again on a fresh connection. `auth` sends a token (HTTP).
async fn start(
    spec: &ServerSpec,
    handler: &Handler,
    auth: Option<auth::Authorized>,
) -> Result<RunningService<RoleClient, Handler>, Handshake> {
    if handler.relay.is_some() {
        return handshake(spec, handler, auth, ClientLifecycleMode::Initialize).await;
    }
    let auto = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::LATEST],
        legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
    };
    match handshake(spec, handler, auth.clone(), auto).await {
        Err(Handshake::Refused(why)) => {
            tracing::debug!(server = %spec.alias, %why, "server/discover failed; trying initialize");
            handshake(spec, handler, auth, ClientLifecycleMode::Initialize).await
        }
        other => other,
    }
}

/// What a transport error comes down to: its innermost cause ("Connection refused"),
/// after the outermost when they differ.
fn root_cause(e: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut inner: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let outer = e.to_string();
    let innermost = inner.to_string();
    if outer == innermost {
        outer
    } else {
        format!("{outer} ({innermost})")
    }
}

/// Why a handshake failed: the server wants authorization first (its challenge), it
/// answered but not as expected (worth another try with the older handshake), or it
/// could not be reached at all.
enum Handshake {
    Unauthorized(String),
    Refused(String),
    Failed(String),
}

async fn handshake(
    spec: &ServerSpec,
    handler: &Handler,
    auth: Option<auth::Authorized>,
    lifecycle: ClientLifecycleMode,
) -> Result<RunningService<RoleClient, Handler>, Handshake> {
    use rmcp::transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    };
    let limit = Duration::from_secs(60);
    let timed_out = || Handshake::Failed("no answer to the handshake within 60 s".into());
    let handler = handler.clone();
    let outcome = match (spec.url(), auth) {
        // Streamable HTTP: one URL, no process.
        (Some(url), Some(client)) => {
            let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
            let transport = StreamableHttpClientTransport::with_client(client, config);
            let serving = handler.serve_with_lifecycle(transport, lifecycle);
            tokio::time::timeout(limit, serving).await
        }
        (Some(url), None) => {
            let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
            let serving = handler.serve_with_lifecycle(transport, lifecycle);
            tokio::time::timeout(limit, serving).await
        }
        (None, _) => {
            let mut cmd = tokio::process::Command::new(&spec.command[0]);
            cmd.args(&spec.command[1..]);
            // Only what it needs of agentry's environment: no API keys, no secrets.
            child_env::apply(&mut cmd, &spec.env);
            // The server's log lines are not ours to print.
            let (transport, _) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| Handshake::Failed(e.to_string()))?;
            let serving = handler.serve_with_lifecycle(transport, lifecycle);
            tokio::time::timeout(limit, serving).await
        }
    }
    .map_err(|_| timed_out())?;
    outcome.map_err(|e| {
        if let Some(challenge) = e.auth_challenge() {
            return Handshake::Unauthorized(challenge.to_owned());
        }
        match e {
            ClientInitializeError::TransportError { error, .. } => {
                Handshake::Failed(root_cause(error.error.as_ref()))
            }
            ClientInitializeError::ConnectionClosed(_) => Handshake::Failed(e.to_string()),
            other => Handshake::Refused(other.to_string()),
        }
    })
}

/// One tool of an MCP server, as an agentry tool.
pub struct McpTool {
    server: Arc<McpServer>,
    remote: String,
    spec: ToolSpec,
    idempotent: bool,
}

impl std::fmt::Debug for McpTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTool")
            .field("server", &self.server.spec.alias)
            .field("name", &self.spec.name)
            .finish()
    }
}

impl DynTool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    fn server(&self) -> Option<&str> {
        Some(&self.server.spec.alias)
    }

    fn call_json(&self, args: Value, cx: CallContext) -> BoxFuture<'_, Result<Value, ToolError>> {
        Box::pin(async move {
            let mut params = CallToolRequestParams::new(self.remote.clone());
            if let Value::Object(map) = args {
                params = params.with_arguments(map);
            }
            // The call's span goes with it (SEP-414), so a server that traces joins the run's
            // trace.
            if let Some(traceparent) = &cx.traceparent {
                params.set_traceparent(traceparent);
            }
            tokio::select! {
                r = self.server.call_raw(params) => outcome(r?),
                () = cx.cancel.cancelled() => Err(ToolError::unavailable("the call was cancelled")),
            }
        })
    }
}

/// A tool result as the model reads it: the text when it is all text, else the content
/// blocks; `structuredContent` kept beside; `isError` becomes a `ToolFailed` error.
fn outcome(result: CallToolResult) -> Result<Value, ToolError> {
    let texts: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect();
    let all_text = texts.len() == result.content.len();
    if result.is_error == Some(true) {
        let why = if texts.is_empty() {
            "the tool reported an error".to_owned()
        } else {
            texts.join("\n")
        };
        return Err(ToolError::failed(why));
    }
    Ok(match (result.structured_content, all_text) {
        (None, true) => Value::String(texts.join("\n")),
        (None, false) => json!({ "content": result.content }),
        (Some(structured), _) => {
            json!({ "structuredContent": structured, "content": result.content })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_alias_and_words() {
        let s = ServerSpec::parse("fs=npx -y @modelcontextprotocol/server-filesystem '/tmp/a b'")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.alias, "fs");
        assert_eq!(
            s.command,
            [
                "npx",
                "-y",
                "@modelcontextprotocol/server-filesystem",
                "/tmp/a b"
            ]
        );
        for bad in ["npx server", "=npx", "fs=", "f s=x", "fs=x 'open"] {
            assert!(ServerSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn elicitation_defaults_fill_a_form_only_when_every_required_field_has_one() {
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "note": {"type": "string"}
        }, "required": ["name"]});
        assert_eq!(
            schema_defaults(&schema).map(Value::Object),
            Some(json!({"name": "John Doe", "age": 30}))
        );
        let mut strict = schema.clone();
        strict["required"] = json!(["name", "note"]);
        assert_eq!(schema_defaults(&strict), None);
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(backoff(1) < backoff(2));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
