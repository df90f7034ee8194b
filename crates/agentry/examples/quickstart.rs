//! A typed tool, an agent, one run: `cargo run -p agentry --example quickstart`.
//! Offline on the simulated model; `AGENTRY_MODEL=openai:gpt-4o-mini` (or any spec) for another.
use agentry::prelude::*;

/// Current weather in a city.
///
/// # Arguments
/// * `city` - The city's name, e.g. "Oslo".
#[agentry::tool]
async fn get_weather(city: String) -> Result<Value, ToolError> {
    Ok(json!({"city": city, "temp_c": 21, "condition": "clear"}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = std::env::var("AGENTRY_MODEL").unwrap_or_else(|_| "sim:weather".into());
    let agent = Agent::builder(model).tool(get_weather).build()?;
    let out = agent.run("What is the weather in Oslo?").await?;
    println!("{}", out.answer);
    Ok(())
}
