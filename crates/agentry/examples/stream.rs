//! Text and calls as they happen: `cargo run -p agentry --example stream`.
use agentry::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = std::env::var("AGENTRY_MODEL").unwrap_or_else(|_| "sim:plan".into());
    let agent = Agent::builder(model)
        .tools(&agentry::tools::demo_tools(
            std::time::Duration::from_millis(300),
        ))
        .mode(Mode::Compiled)
        .build()?;
    let mut events = agent.stream("How much warmer is Oslo than Paris right now?");
    while let Some(event) = events.next().await {
        let at = event.at_us as f64 / 1e6;
        match event.kind {
            TraceKind::TaskPlanned {
                task,
                name,
                arguments,
                ..
            } => {
                println!("{at:6.3}s  plan  t{task} {name} {arguments}")
            }
            TraceKind::CallStarted { call, .. } => {
                println!("{at:6.3}s  →     {} {}", call.name, call.arguments)
            }
            TraceKind::CallFinished { result, .. } => {
                println!(
                    "{at:6.3}s  ✓     {} {}",
                    result.name,
                    result.content_for_model()
                )
            }
            TraceKind::TextDelta { text, .. } => print!("{text}"),
            TraceKind::RunFinished { status, .. } => println!("\n{at:6.3}s  {}", status.as_str()),
            _ => {}
        }
    }
    Ok(())
}
