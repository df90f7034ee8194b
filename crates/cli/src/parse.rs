//! `agentry parse`: tool calls extracted from model text on stdin, printed as JSON.

use std::io::{Read, Write};

use agentry_parse::{CallParser, Event, Format};
use anyhow::{Context, Result};
use clap::ValueEnum;
use serde_json::{Value, json};

/// `agentry parse`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The syntax the model writes calls in; `auto` detects every format.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Print every event (text, call with span and repairs, malformed) as JSON lines.
    #[arg(long)]
    events: bool,
}

/// Shown after `agentry parse --help`.
pub(crate) const EXAMPLES: &str = "\
Example:
  $ echo '<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>' | agentry parse
  [{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}]

  $ echo '[get_weather(city=\"Paris\"), convert(x=1.5)]' | agentry parse --format python

Repairs (trailing commas, single quotes, a missing final brace…) and calls that could not be
read are reported on stderr. Exits 1 if nothing was parsed and errors occurred.";

/// `--format`: the syntax the model writes calls in.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Openai,
    Hermes,
    Llama,
    Mistral,
    Python,
    React,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Auto => Format::Auto,
            FormatArg::Openai => Format::OpenAi,
            FormatArg::Hermes => Format::Hermes,
            FormatArg::Llama => Format::Llama,
            FormatArg::Mistral => Format::Mistral,
            FormatArg::Python => Format::Python,
            FormatArg::React => Format::React,
        }
    }
}

/// `agentry parse`.
pub(crate) fn run(args: Args) -> Result<bool> {
    parse(args.format.into(), args.events)
}

/// `agentry parse`: returns whether the run succeeded.
fn parse(format: Format, print_events: bool) -> Result<bool> {
    let mut parser = CallParser::new(format);
    let mut stdin = std::io::stdin().lock();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut calls = Vec::new();
    let mut errors = 0usize;
    let mut stdout = std::io::stdout().lock();
    let mut handle = |events: Vec<Event>, stdout: &mut std::io::StdoutLock<'_>| -> Result<()> {
        for event in events {
            if print_events {
                writeln!(stdout, "{}", serde_json::to_string(&event)?)?;
            }
            match event {
                Event::Text { .. } => {}
                Event::Call(call) => {
                    for repair in &call.repairs {
                        eprintln!(
                            "repaired `{}` at bytes {}..{}: {repair}",
                            call.name, call.span.start, call.span.end
                        );
                    }
                    calls.push(json!({"name": call.name, "arguments": call.arguments}));
                }
                Event::Malformed(m) => {
                    errors += 1;
                    eprintln!(
                        "malformed {} call at bytes {}..{}: {}\n  text: {}",
                        m.format, m.span.start, m.span.end, m.reason, m.excerpt
                    );
                }
            }
        }
        Ok(())
    };
    loop {
        let n = stdin.read(&mut chunk).context("reading stdin")?;
        if n == 0 {
            break;
        }
        let events = parser
            .push_bytes(&chunk[..n])
            .context("reading the model text on stdin")?;
        handle(events, &mut stdout)?;
    }
    let events = parser.finish().context("reading the model text on stdin")?;
    handle(events, &mut stdout)?;
    if !print_events {
        writeln!(stdout, "{}", Value::Array(calls.clone()))?;
    }
    Ok(!(calls.is_empty() && errors > 0))
}
