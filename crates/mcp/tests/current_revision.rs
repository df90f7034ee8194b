//! The 2026-07-28 revision between agentry's client and an rmcp server over Streamable
//! HTTP: the revision is found through `server/discover`, and a tool that needs the
//! user's input answers `input_required` and gets it on the retry (multi round-trip
//! requests), as the client's elicitation setting says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agentry_mcp::{ClientOptions, Elicitation, McpServer, ServerSpec};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InitializeResult,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

/// One tool, `greet`, that asks for the user's name first.
#[derive(Clone)]
struct Asking;

impl ServerHandler for Asking {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(serde_json::from_value(json!({"tools": [{"name": "greet",
            "inputSchema": {"type": "object", "properties": {}}}]}))
        .unwrap())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(answers) = &request.input_responses else {
            // First round: ask, and keep where we are in the request state.
            let pending = json!({"resultType": "input_required", "requestState": "asked-once",
                "inputRequests": {"who": {"method": "elicitation/create", "params": {
                    "mode": "form", "message": "Your name?",
                    "requestedSchema": {"type": "object", "properties": {
                        "name": {"type": "string", "default": "Ada"}}, "required": ["name"]}}}}});
            return Ok(CallToolResponse::InputRequired(
                serde_json::from_value(pending).unwrap(),
            ));
        };
        assert_eq!(request.request_state.as_deref(), Some("asked-once"));
        let answer = &answers["who"];
        let text = match answer["action"].as_str() {
            Some("accept") => format!("hello {}", answer["content"]["name"].as_str().unwrap()),
            other => format!("no name ({})", other.unwrap_or("?")),
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

async fn greet(url: &str, elicitation: Elicitation) -> (String, Value) {
    let spec = ServerSpec::new("asking", vec![url.to_owned()]).unwrap();
    let options = ClientOptions {
        elicitation,
        ..ClientOptions::default()
    };
    let server = McpServer::connect_with(spec, options).await.unwrap();
    let protocol = server.protocol().to_owned();
    let result = server
        .call_as_is("greet", Default::default())
        .await
        .unwrap();
    server.close().await;
    (protocol, result)
}

#[tokio::test]
async fn the_current_revision_is_discovered_and_input_required_rounds_are_answered() {
    let stop = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let serving = tokio::spawn(agentry_mcp::serve::serve_streamable(
        Asking,
        ([127, 0, 0, 1], 0).into(),
        &[],
        stop.clone(),
        move |addr| {
            let _ = tx.send(addr);
        },
    ));
    let addr = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .unwrap()
        .unwrap();
    let url = format!("http://{addr}/mcp");

    let (protocol, result) = greet(&url, Elicitation::Defaults).await;
    assert_eq!(protocol, "2026-07-28");
    assert_eq!(result["content"][0]["text"], "hello Ada");

    // Declining is an answer too: the server hears it and finishes the call.
    let (_, result) = greet(&url, Elicitation::Decline).await;
    assert_eq!(result["content"][0]["text"], "no name (decline)");

    stop.cancel();
    let _ = serving.await;
}
