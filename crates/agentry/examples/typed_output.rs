//! An answer as a typed value: `cargo run -p agentry --example typed_output`.
use std::sync::Arc;

use agentry::{
    llm::sim::{Script, SimModel},
    prelude::*,
};

/// The weather, as the program wants it.
#[derive(Deserialize, JsonSchema)]
struct Weather {
    /// The city.
    city: String,
    /// Degrees Celsius.
    temp_c: i64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Offline, a model that first answers in prose and, told why that does not fit, in JSON.
    let agent = match std::env::var("AGENTRY_MODEL") {
        Ok(spec) => Agent::builder(spec),
        Err(_) => Agent::builder(Arc::new(SimModel::new(Script::parse(
            r#"{"turns": [
                {"when": {"turn": 1}, "text": "It is 21 degrees in Oslo."},
                {"when": {"last": "user", "user": "does not fit"}, "text": "{\"city\": \"Oslo\", \"temp_c\": 21}"}]}"#,
            "typed",
        )?))),
    }
    .build()?;
    let (weather, out) = agent
        .run_typed::<Weather>("What is the weather in Oslo?")
        .await?;
    println!(
        "{} is {} °C (answered in {} model turn(s))",
        weather.city,
        weather.temp_c,
        out.conversation.messages.len() / 2
    );
    Ok(())
}
