//! A conversation that goes on: `cargo run -p agentry --example chat`.
use agentry::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = std::env::var("AGENTRY_MODEL").unwrap_or_else(|_| "sim:weather".into());
    let agent = Agent::builder(model)
        .tools(&agentry::tools::demo_tools(std::time::Duration::ZERO))
        .build()?;
    let mut chat = Conversation::new();
    for said in ["What is the weather in Oslo?", "And in Lima?"] {
        println!("> {said}");
        chat.user(said);
        chat = agent.run(&chat).await?.conversation;
        println!("{}", chat.last_answer().unwrap_or_default());
    }
    // A conversation is plain data: keep it, load it, go on later.
    println!(
        "({} messages, {} bytes as JSON)",
        chat.messages.len(),
        serde_json::to_string(&chat)?.len()
    );
    Ok(())
}
