//! `agentry ask`: one model turn, streamed to the terminal as it arrives.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Instant,
};

use agentry_core::Message;
use agentry_llm::{ChatRequest, ModelEvent, OpenOptions};
use anyhow::{Context, Result, bail};
use futures::StreamExt;

use crate::args::{ModelArgs, ToolModeArg};

/// `agentry ask`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to ask.
    prompt: String,
    /// The model: local, local:PATH (a GGUF file), sim:NAME, sim:PATH or openai:MODEL.
    #[arg(long, default_value = "sim:weather")]
    model: String,
    #[command(flatten)]
    local: ModelArgs,
    /// Tools to offer: a JSON array of tool definitions.
    #[arg(long, value_name = "TOOLS.json")]
    tools: Option<PathBuf>,
    /// Send tools natively, or render them into the prompt and read calls from the text.
    #[arg(long, value_enum, default_value = "native")]
    tool_mode: ToolModeArg,
    /// A system message.
    #[arg(long)]
    system: Option<String>,
}

/// Shown after `agentry ask --help`.
pub(crate) const EXAMPLES: &str = "\
Example:
  $ agentry ask \"What is the weather in Oslo?\" --model sim:weather
  → call get_weather {\"city\":\"Oslo\"}  [call_00000001]  +0.31s

Models: sim:NAME (bundled scripts: weather, hermes, plan, trip), sim:PATH (a script file, see
crates/llm/scripts/), openai:MODEL (any OpenAI-compatible server: OPENAI_BASE_URL, OPENAI_API_KEY).";

/// `agentry ask`: returns whether the model produced no malformed calls.
pub(crate) fn run(args: Args) -> Result<bool> {
    let options = args.local.options(args.tool_mode.into());
    crate::runtime::block_on(ask(
        &args.prompt,
        &args.model,
        args.tools.as_deref(),
        &options,
        args.system.as_deref(),
    ))
}

/// Streams one reply; returns whether the model produced no malformed calls.
async fn ask(
    prompt: &str,
    model: &str,
    tools: Option<&Path>,
    options: &OpenOptions,
    system: Option<&str>,
) -> Result<bool> {
    let specs = match tools {
        Some(path) => crate::validate::read_tools(path)?,
        None => Vec::new(),
    };
    let model = agentry_llm::open(model, options)?;
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(Message::system(system));
    }
    messages.push(Message::user(prompt));
    let started = Instant::now();
    let mut stream = model.stream(ChatRequest::new(messages).tools(specs));
    let mut stdout = std::io::stdout().lock();
    let mut clean = true;
    let mut at_line_start = true;
    while let Some(event) = stream.next().await {
        let at = started.elapsed().as_secs_f64();
        match event.with_context(|| format!("asking {}", model.name()))? {
            ModelEvent::Text(text) => {
                write!(stdout, "{text}")?;
                at_line_start = text.ends_with('\n');
                stdout.flush()?;
            }
            ModelEvent::Call(c) => {
                if !at_line_start {
                    writeln!(stdout)?;
                }
                let repaired = if c.repairs.is_empty() {
                    String::new()
                } else {
                    format!("  (repaired: {} fix(es))", c.repairs.len())
                };
                writeln!(
                    stdout,
                    "→ call {} {}  [{}]  +{at:.2}s{repaired}",
                    c.call.name, c.call.arguments, c.call.id
                )?;
                at_line_start = true;
            }
            ModelEvent::Malformed(m) => {
                clean = false;
                if !at_line_start {
                    writeln!(stdout)?;
                }
                writeln!(
                    stdout,
                    "✗ malformed {} call: {}  +{at:.2}s",
                    m.format, m.reason
                )?;
                at_line_start = true;
            }
            ModelEvent::Done(done) => {
                if !at_line_start {
                    writeln!(stdout)?;
                }
                let ttft = done
                    .timing
                    .time_to_first_token
                    .map_or("-".into(), |d| format!("{:.2}s", d.as_secs_f64()));
                eprintln!(
                    "— {}: {:?} · {} prompt + {} completion tokens · first token {ttft} · total {:.2}s",
                    model.name(),
                    done.finish_reason,
                    done.usage.prompt_tokens,
                    done.usage.completion_tokens,
                    done.timing.total.as_secs_f64()
                );
                for note in model.take_notes() {
                    eprintln!("note: {note}");
                }
                return Ok(clean);
            }
        }
    }
    bail!("{} ended its stream without finishing", model.name())
}
