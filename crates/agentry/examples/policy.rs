//! A policy sees every call: `cargo run -p agentry --example policy`.
use agentry::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let policy = agentry::policy::Policy::from_toml(
        r#"
        [[rule]]
        tool = "get_weather"
        when = [{ path = "/city", equals = "Oslo" }]
        action = "deny"
        reason = "Oslo is off limits"
        "#,
    )?;
    let model = std::env::var("AGENTRY_MODEL").unwrap_or_else(|_| "sim:weather".into());
    let agent = Agent::builder(model)
        .tools(&agentry::tools::demo_tools(std::time::Duration::ZERO))
        .policy(policy)
        .build()?;
    let out = agent.run("What is the weather in Oslo?").await?;
    for (call, result) in &out.calls {
        println!(
            "{} {} → {}",
            call.name,
            call.arguments,
            result.content_for_model()
        );
    }
    println!("{}", out.answer);
    Ok(())
}
