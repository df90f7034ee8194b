//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, installed with
//! Node 22 by scripts/mcp-servers) against agentry, for both revisions it covers:
//!
//! - server mode: agentry's Streamable HTTP serving (`agentry_mcp::serve`) of a handler
//!   whose tools that agentry can express (text, errors, JSON Schema 2020-12) are an
//!   agentry `ToolSet` served by `ToolServer`, and whose other fixtures (image, audio and
//!   resource content, logging, progress, sampling, elicitation, resources, prompts) are
//!   the ones the suite names;
//! - client mode: the `agentry mcp tools|call` commands (tests/mcp/conformance-client.sh),
//!   authorization (OAuth) included.
//!
//! What fails is listed, each with its reason, in tests/mcp/conformance-expected.yaml; the
//! suite fails the test on an unexpected failure and on a listed one that now passes.
// The suite covers the 2025 revisions, whose logging and sampling 2026-07-28 deprecates.
#![allow(deprecated)]

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

mod common;

use agentry_core::{ToolError, ToolSpec};
use agentry_mcp::serve::ToolServer;
use agentry_tools::{FnTool, ToolSet};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
        CompleteResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, InitializeResult,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ServerCapabilities, SetLevelRequestParams, SubscribeRequestParams,
        UnsubscribeRequestParams,
    },
    service::RequestContext,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A 1×1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A WAV file with one silent sample.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==";

fn from_json<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("fixture JSON: {e}"))
}

/// The suite's tools that an agentry tool expresses, as an agentry `ToolSet`.
fn agentry_tools() -> ToolSet {
    let mut set = ToolSet::new();
    let simple = ToolSpec::new(
        "test_simple_text",
        "Returns simple text",
        json!({"type": "object", "properties": {}}),
    );
    let failing = ToolSpec::new(
        "test_error_handling",
        "Always fails",
        json!({"type": "object", "properties": {}}),
    );
    let modern = ToolSpec::new(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features",
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {"address": {"type": "object", "properties": {
                "street": {"type": "string"}, "city": {"type": "string"}}}},
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": false
        }),
    );
    let ok = |spec, text: &'static str| {
        FnTool::new(
            spec,
            move |_, _| async move { Ok(Value::String(text.into())) },
        )
    };
    for tool in [
        ok(simple, "This is a simple text response for testing."),
        ok(modern, "ok"),
        FnTool::new(failing, |_, _| async {
            Err(ToolError::failed(
                "This tool intentionally returns an error for testing",
            ))
        }),
    ] {
        set.add(tool).unwrap_or_else(|e| panic!("{e}"));
    }
    set
}

/// The suite's fixture server: agentry's `ToolServer` for the tools it can express, the
/// rest by hand.
#[derive(Clone)]
struct Fixture {
    tools: ToolServer,
    subscriptions: Arc<Mutex<BTreeSet<String>>>,
}

fn no_args(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description,
           "inputSchema": {"type": "object", "properties": {}}})
}

fn fixture_tools() -> Vec<rmcp::model::Tool> {
    let string_arg = |name: &str, description: &str, arg: &str| {
        json!({"name": name, "description": description, "inputSchema": {
            "type": "object", "properties": {arg: {"type": "string"}}, "required": [arg]}})
    };
    from_json(json!([
        no_args("test_image_content", "Returns an image"),
        no_args("test_audio_content", "Returns audio"),
        no_args("test_embedded_resource", "Returns an embedded resource"),
        no_args(
            "test_multiple_content_types",
            "Returns text, an image and a resource"
        ),
        no_args(
            "test_tool_with_logging",
            "Logs three messages while it runs"
        ),
        no_args("test_tool_with_progress", "Reports progress while it runs"),
        string_arg("test_sampling", "Asks the client's model", "prompt"),
        string_arg("test_elicitation", "Asks the client's user", "message"),
        no_args("test_elicitation_sep1034_defaults", "Asks with defaults"),
        no_args("test_elicitation_sep1330_enums", "Asks with enums"),
    ]))
}

fn text(t: &str) -> ContentBlock {
    ContentBlock::text(t.to_owned())
}

impl Fixture {
    async fn call(
        &self,
        name: &str,
        args: &serde_json::Map<String, Value>,
        cx: &RequestContext<RoleServer>,
    ) -> Result<Option<CallToolResult>, ErrorData> {
        let arg = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let peer = &cx.peer;
        let failed =
            |e: rmcp::service::ServiceError| ErrorData::internal_error(e.to_string(), None);
        let content = match name {
            "test_image_content" => vec![ContentBlock::image(PNG, "image/png")],
            "test_audio_content" => vec![ContentBlock::audio(WAV, "audio/wav")],
            "test_embedded_resource" => vec![from_json(json!({"type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain",
                "text": "This is an embedded resource content."}}))],
            "test_multiple_content_types" => vec![
                text("Multiple content types test:"),
                ContentBlock::image(PNG, "image/png"),
                from_json(json!({"type": "resource", "resource": {
                    "uri": "test://mixed-content-resource", "mimeType": "application/json",
                    "text": "{\"test\":\"data\",\"value\":123}"}})),
            ],
            "test_tool_with_logging" => {
                for (i, message) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    peer.notify_logging_message(from_json(
                        json!({"level": "info", "data": message}),
                    ))
                    .await
                    .map_err(failed)?;
                }
                vec![text("Logged three messages")]
            }
            "test_tool_with_progress" => {
                let token = cx.meta.get_progress_token();
                for (i, progress) in [0, 50, 100].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(token) = &token {
                        peer.notify_progress(from_json(json!({
                            "progressToken": token, "progress": progress, "total": 100})))
                            .await
                            .map_err(failed)?;
                    }
                }
                vec![text("Progress reported")]
            }
            "test_sampling" => {
                let answer = peer
                    .create_message(from_json(json!({"maxTokens": 100, "messages": [
                        {"role": "user", "content": {"type": "text", "text": arg("prompt")}}]})))
                    .await
                    .map_err(failed)?;
                let said = serde_json::to_value(&answer.message.content).unwrap_or_default();
                vec![text(&format!("LLM response: {said}"))]
            }
            "test_elicitation"
            | "test_elicitation_sep1034_defaults"
            | "test_elicitation_sep1330_enums" => {
                let schema = match name {
                    "test_elicitation" => json!({"type": "object", "properties": {
                        "username": {"type": "string", "description": "User's response"},
                        "email": {"type": "string", "description": "User's email address"}},
                        "required": ["username", "email"]}),
                    "test_elicitation_sep1034_defaults" => json!({"type": "object", "properties": {
                        "name": {"type": "string", "default": "John Doe"},
                        "age": {"type": "integer", "default": 30},
                        "score": {"type": "number", "default": 95.5},
                        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                        "verified": {"type": "boolean", "default": true}}}),
                    _ => json!({"type": "object", "properties": {
                        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                        "titledSingle": {"type": "string", "oneOf": [
                            {"const": "value1", "title": "First Option"},
                            {"const": "value2", "title": "Second Option"},
                            {"const": "value3", "title": "Third Option"}]},
                        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                            "enumNames": ["Option One", "Option Two", "Option Three"]},
                        "untitledMulti": {"type": "array", "items": {"type": "string",
                            "enum": ["option1", "option2", "option3"]}},
                        "titledMulti": {"type": "array", "items": {"anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"}]}}}}),
                };
                let message = match arg("message") {
                    m if m.is_empty() => "Please answer".to_owned(),
                    m => m,
                };
                let answer = peer
                    .create_elicitation(from_json(json!({
                        "mode": "form", "message": message, "requestedSchema": schema})))
                    .await
                    .map_err(failed)?;
                let said = serde_json::to_value(&answer).unwrap_or_default();
                vec![text(&format!("User response: {said}"))]
            }
            _ => return Ok(None),
        };
        Ok(Some(CallToolResult::success(content)))
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> InitializeResult {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        InitializeResult::new(capabilities)
    }

    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(from_json(
            json!({"completion": {"values": [], "total": 0, "hasMore": false}}),
        ))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut listed = self.tools.list_tools(request, context).await?;
        listed.tools.extend(fixture_tools());
        Ok(listed)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        match self.call(&request.name, &args, &context).await? {
            Some(result) => Ok(result.into()),
            None => self.tools.call_tool(request, context).await,
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(from_json(json!({"resources": [
            {"uri": "test://static-text", "name": "static-text", "description": "A text resource", "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "static-binary", "description": "A binary resource", "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "watched-resource", "description": "A resource to subscribe to", "mimeType": "text/plain"}
        ]})))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(from_json(
            json!({"resourceTemplates": [{"uriTemplate": "test://template/{id}/data",
            "name": "template", "description": "Data by id", "mimeType": "application/json"}]}),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let content = if let Some(id) = uri
            .strip_prefix("test://template/")
            .and_then(|rest| rest.strip_suffix("/data"))
        {
            json!({"uri": uri, "mimeType": "application/json",
                   "text": json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()})
        } else {
            match uri {
                "test://static-text" => json!({"uri": uri, "mimeType": "text/plain",
                    "text": "This is the content of the static text resource."}),
                "test://static-binary" => json!({"uri": uri, "mimeType": "image/png", "blob": PNG}),
                "test://watched-resource" => {
                    json!({"uri": uri, "mimeType": "text/plain", "text": "watched"})
                }
                _ => {
                    return Err(ErrorData::resource_not_found(
                        format!("no resource {uri}"),
                        None,
                    ));
                }
            }
        };
        let result: rmcp::model::ReadResourceResult = from_json(json!({"contents": [content]}));
        Ok(result.into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut s) = self.subscriptions.lock() {
            s.insert(request.uri);
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut s) = self.subscriptions.lock() {
            s.remove(&request.uri);
        }
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let arg = |name: &str| json!({"name": name, "description": name, "required": true});
        Ok(from_json(json!({"prompts": [
            {"name": "test_simple_prompt", "description": "A simple prompt"},
            {"name": "test_prompt_with_arguments", "description": "A prompt with arguments",
             "arguments": [arg("arg1"), arg("arg2")]},
            {"name": "test_prompt_with_embedded_resource", "description": "A prompt with a resource",
             "arguments": [arg("resourceUri")]},
            {"name": "test_prompt_with_image", "description": "A prompt with an image"}
        ]})))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
        let user = |content: Value| json!({"role": "user", "content": content});
        let words = |t: &str| user(json!({"type": "text", "text": t}));
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![words("This is a simple prompt for testing.")],
            "test_prompt_with_arguments" => vec![words(&format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                arg("arg1"),
                arg("arg2")
            ))],
            "test_prompt_with_embedded_resource" => vec![
                user(
                    json!({"type": "resource", "resource": {"uri": arg("resourceUri"),
                    "mimeType": "text/plain", "text": "Embedded resource content for testing."}}),
                ),
                words("Please process the embedded resource above."),
            ],
            "test_prompt_with_image" => vec![
                user(json!({"type": "image", "data": PNG, "mimeType": "image/png"})),
                words("Please analyze the image above."),
            ],
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no prompt {other}"),
                    None,
                ));
            }
        };
        let result: rmcp::model::GetPromptResult = from_json(json!({"messages": messages}));
        Ok(result.into())
    }
}

/// The suite's runner (Node 22 and the package from npm), or `None` (skip) unless
/// AGENTRY_REQUIRE_MCP.
fn suite() -> Option<(PathBuf, PathBuf)> {
    Some((
        common::mcp_bin("node")?.into(),
        common::mcp_bin("conformance")?.into(),
    ))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the suite; panics with its report unless every failure is one `expected` lists.
fn run_suite(node: &Path, runner: &Path, expected: &str, args: &[&str]) -> String {
    let expected = repo().join("tests/mcp").join(expected);
    let out = Command::new(node)
        .arg(runner)
        .args(args)
        .arg("--expected-failures")
        .arg(&expected)
        .output()
        .unwrap_or_else(|e| panic!("running the conformance suite: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "conformance {args:?} failed:\n{report}"
    );
    report
}

/// The "Total: N passed, M failed" line(s) of a report, or its scenario verdict lines.
fn totals(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter(|l| l.starts_with("Total:") || l.contains("OVERALL") || l.starts_with("Passed:"))
        .collect()
}

#[test]
fn the_official_conformance_suite_passes_against_agentrys_server() {
    let Some((node, runner)) = suite() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let stop = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let fixture = Fixture {
        tools: ToolServer::new(Arc::new(agentry_tools())),
        subscriptions: Arc::default(),
    };
    let serving = {
        let stop = stop.clone();
        rt.spawn(async move {
            agentry_mcp::serve::serve_streamable(
                fixture,
                ([127, 0, 0, 1], 0).into(),
                &[],
                stop,
                move |addr| {
                    let _ = tx.send(addr);
                },
            )
            .await
        })
    };
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the fixture server did not start: {e}"));
    let url = format!("http://{addr}/mcp");
    for version in ["2025-06-18", "2025-11-25"] {
        let report = run_suite(
            &node,
            &runner,
            "conformance-expected.yaml",
            &["server", "--url", &url, "--spec-version", version],
        );
        eprintln!("server mode, {version}: {:?}", totals(&report));
    }
    // The same fixture behind `agentry proxy --http`: what the proxy passes on.
    let dir = std::env::temp_dir().join(format!("agentry-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let policy = dir.join("allow.toml");
    std::fs::write(&policy, "default = \"allow\"\n").unwrap_or_else(|e| panic!("{e}"));
    let audit = dir.join("audit.jsonl");
    let (mut proxy, proxied) = common::serving(&[
        "proxy",
        "--http",
        "0",
        "--policy",
        policy.to_str().unwrap_or_default(),
        "--audit",
        audit.to_str().unwrap_or_default(),
        "--",
        &url,
    ]);
    for version in ["2025-06-18", "2025-11-25"] {
        let report = run_suite(
            &node,
            &runner,
            "conformance-expected-proxy.yaml",
            &["server", "--url", &proxied, "--spec-version", version],
        );
        eprintln!(
            "server mode through the proxy, {version}: {:?}",
            totals(&report)
        );
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
    let trail = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(
        trail.contains("test://static-text"),
        "resource reads are audited"
    );
    let _ = std::fs::remove_dir_all(&dir);
    stop.cancel();
    let _ = rt.block_on(serving);
}

#[test]
fn the_official_conformance_suite_passes_against_agentrys_client() {
    let Some((node, runner)) = suite() else {
        return;
    };
    let script = repo().join("tests/mcp/conformance-client.sh");
    let command = format!(
        "bash {} {}",
        script.display(),
        env!("CARGO_BIN_EXE_agentry")
    );
    for version in [
        "2025-03-26",
        "2025-06-18",
        "2025-11-25",
        "draft",
        "extension",
    ] {
        let report = run_suite(
            &node,
            &runner,
            "conformance-expected.yaml",
            &[
                "client",
                "--command",
                &command,
                "--suite",
                "all",
                "--spec-version",
                version,
            ],
        );
        eprintln!("client mode, {version}: {:?}", totals(&report));
    }
}
