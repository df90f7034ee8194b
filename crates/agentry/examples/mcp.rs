//! An MCP server's tools as an agent's tools:
//! `cargo run -p agentry --features mcp --example mcp [-- SERVER COMMAND…]`.
//! Without a command it starts `mcp-server-everything` as `scripts/mcp-servers` installs it.
use std::sync::Arc;

use agentry::{
    llm::sim::{Script, SimModel},
    mcp::{McpServer, ServerSpec, npm_bin},
    prelude::*,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut command: Vec<String> = std::env::args().skip(1).collect();
    if command.is_empty() {
        let everything = npm_bin("mcp-server-everything");
        if !everything.exists() {
            return Err(format!(
                "{} is not installed: run scripts/mcp-servers, or give a server's command",
                everything.display()
            )
            .into());
        }
        command.push(everything.display().to_string());
    }
    let server = McpServer::connect(ServerSpec::new("everything", command)?).await?;
    // Offline, a model that calls the server's `echo`; AGENTRY_MODEL for a real one.
    let agent = match std::env::var("AGENTRY_MODEL") {
        Ok(spec) => Agent::builder(spec),
        Err(_) => Agent::builder(Arc::new(SimModel::new(Script::parse(
            r#"{"turns": [
                {"when": {"last": "user"}, "calls": [{"name": "echo", "arguments": {"message": "hello from agentry"}}]},
                {"when": {"last": "tool"}, "text": "The server said: {{tool}}"}]}"#,
            "mcp",
        )?))),
    }
    .mcp(Arc::clone(&server))
    .build()?;
    println!(
        "the server offers {} tools",
        agent.tools().await?.specs().len()
    );
    let out = agent.run("Ask the server to echo a greeting.").await?;
    println!("{}", out.answer);
    server.close().await;
    Ok(())
}
