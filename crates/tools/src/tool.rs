//! The tool traits: typed [`Tool`] for authors, object-safe [`DynTool`] for registries.

use std::{future::Future, sync::Arc, time::Instant};

use agentry_core::{ToolError, ToolSpec};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// What a running call knows about its situation.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The call's id.
    pub call_id: String,
    /// Cancelled when the run is cancelled or the call's deadline passes; long tools
    /// `select!` on it.
    pub cancel: CancellationToken,
    /// When the call will be abandoned, if it has a deadline.
    pub deadline: Option<Instant>,
    /// The W3C `traceparent` of the call's span, when the run propagates its trace: a tool
    /// that calls out (an MCP server, a sub-agent) passes it on.
    pub traceparent: Option<String>,
    /// The run's id (`None` outside a run): program tools keep one workspace per run.
    pub run_id: Option<String>,
    /// The agent's other tools, for a tool that calls them ([`DynTool::calls_tools`]);
    /// each call passes validation, policy, the budget and the trace like the model's.
    pub calls: Option<Calls>,
}

/// A call a running tool makes to another tool of the run.
#[derive(Debug)]
pub struct NestedCall {
    /// The tool called.
    pub name: String,
    /// Its arguments.
    pub arguments: Value,
    /// Where its outcome goes.
    pub reply: tokio::sync::oneshot::Sender<Result<Value, ToolError>>,
}

/// How a running tool calls the run's other tools: the engine receives the calls
/// ([`Calls::channel`]) and runs each as it runs the model's.
#[derive(Debug, Clone)]
pub struct Calls(tokio::sync::mpsc::Sender<NestedCall>);

impl Calls {
    /// A sender for a tool's context, and the receiver the engine runs calls from.
    pub fn channel() -> (Self, tokio::sync::mpsc::Receiver<NestedCall>) {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        (Self(tx), rx)
    }

    /// Calls tool `name` with `arguments` and waits for its outcome.
    pub async fn call(
        &self,
        name: impl Into<String>,
        arguments: Value,
    ) -> Result<Value, ToolError> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let call = NestedCall {
            name: name.into(),
            arguments,
            reply,
        };
        if self.0.send(call).await.is_err() {
            return Err(ToolError::unavailable(
                "the run is over; no more calls can be made",
            ));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(ToolError::unavailable(
                "the run ended before the call finished",
            ))
        })
    }
}

impl CallContext {
    /// A context with no deadline and its own cancellation token.
    pub fn detached(call_id: impl Into<String>) -> Self {
        Self {
            call_id: call_id.into(),
            cancel: CancellationToken::new(),
            deadline: None,
            traceparent: None,
            run_id: None,
            calls: None,
        }
    }
}

/// A tool with typed arguments; registries hold it as a [`DynTool`].
pub trait Tool: Send + Sync + 'static {
    /// Name the model calls it by; unique within a registry.
    const NAME: &'static str;
    /// Arguments, decoded once they pass the schema derived from this type.
    type Args: DeserializeOwned + JsonSchema + Send;
    /// One sentence for the model: what the tool does and when to use it.
    fn description(&self) -> &str;
    /// Whether running a call twice is harmless; retries need `true`.
    fn is_idempotent(&self) -> bool {
        false
    }
    /// Runs one call. `Err` goes back to the model; it does not end the run.
    fn call(
        &self,
        args: Self::Args,
        cx: CallContext,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;
}

/// The object-safe form of [`Tool`], held by registries and the executor.
pub trait DynTool: Send + Sync {
    /// Name, description and JSON Schema, as offered to the model.
    fn spec(&self) -> ToolSpec;
    /// Whether a call may be retried.
    fn is_idempotent(&self) -> bool;
    /// The server the tool comes from (an MCP server's alias), for policies; `None` for a
    /// tool of this process.
    fn server(&self) -> Option<&str> {
        None
    }
    /// Whether its calls get [`CallContext::calls`] to call the run's other tools (a code
    /// action, say).
    fn calls_tools(&self) -> bool {
        false
    }
    /// Decodes `args` and runs the call.
    fn call_json(&self, args: Value, cx: CallContext) -> BoxFuture<'_, Result<Value, ToolError>>;
}

/// The JSON Schema of `T`, as offered to the model (draft 2020-12, no `$schema`/`title` noise).
pub fn schema_of<T: JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
        map.remove("title");
    }
    schema
}

impl<T: Tool> DynTool for T {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new(T::NAME, self.description(), schema_of::<T::Args>())
    }

    fn is_idempotent(&self) -> bool {
        Tool::is_idempotent(self)
    }

    fn call_json(&self, args: Value, cx: CallContext) -> BoxFuture<'_, Result<Value, ToolError>> {
        Box::pin(async move {
            let args: T::Args = serde_json::from_value(args).map_err(|e| {
                ToolError::invalid_arguments(format!(
                    "the arguments of `{}` do not fit: {e}",
                    T::NAME
                ))
            })?;
            self.call(args, cx).await
        })
    }
}

type Handler =
    dyn Fn(Value, CallContext) -> BoxFuture<'static, Result<Value, ToolError>> + Send + Sync;

/// A tool made from a closure over JSON arguments, for tests, benchmarks and glue.
#[derive(Clone)]
pub struct FnTool {
    spec: ToolSpec,
    idempotent: bool,
    handler: Arc<Handler>,
}

impl std::fmt::Debug for FnTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnTool")
            .field("name", &self.spec.name)
            .finish()
    }
}

impl FnTool {
    /// A tool named by `spec` whose calls run `handler`.
    pub fn new<F, Fut>(spec: ToolSpec, handler: F) -> Self
    where
        F: Fn(Value, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, ToolError>> + Send + 'static,
    {
        Self {
            spec,
            idempotent: false,
            handler: Arc::new(move |args, cx| Box::pin(handler(args, cx))),
        }
    }

    /// Declares the tool idempotent (retries allowed).
    #[must_use]
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }
}

/// A tool made from a closure with typed arguments: the JSON Schema comes from `A`
/// (`schemars`, doc comments becoming descriptions), arguments are checked against it
/// before the closure runs, and what it returns (any `Serialize`) becomes the result.
///
/// ```
/// use agentry_tools::{ToolSet, tool_fn};
/// use schemars::JsonSchema;
/// use serde::Deserialize;
///
/// #[derive(Deserialize, JsonSchema)]
/// struct City {
///     /// The city's name.
///     city: String,
/// }
///
/// let weather = tool_fn("get_weather", "Current weather in a city.", |a: City| async move {
///     Ok::<_, String>(format!("sunny in {}", a.city))
/// });
/// let mut tools = ToolSet::new();
/// tools.add(weather)?;
/// assert_eq!(tools.specs()[0].parameters["required"][0], "city");
/// # Ok::<(), agentry_schema::SchemaError>(())
/// ```
pub fn tool_fn<A, F, Fut, T, E>(
    name: impl Into<String>,
    description: impl Into<String>,
    f: F,
) -> FnTool
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: serde::Serialize,
    E: Into<ToolError>,
{
    let name = name.into();
    let spec = ToolSpec::new(name.clone(), description, schema_of::<A>());
    let f = Arc::new(f);
    FnTool::new(spec, move |args, _cx| {
        let decoded = serde_json::from_value::<A>(args).map_err(|e| {
            ToolError::invalid_arguments(format!("the arguments of `{name}` do not fit: {e}"))
        });
        let f = Arc::clone(&f);
        async move {
            let value = f(decoded?).await.map_err(Into::into)?;
            serde_json::to_value(value).map_err(|e| {
                ToolError::failed(format!("the result cannot be written as JSON: {e}"))
            })
        }
    })
}

impl DynTool for FnTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    fn call_json(&self, args: Value, cx: CallContext) -> BoxFuture<'_, Result<Value, ToolError>> {
        (self.handler)(args, cx)
    }
}
