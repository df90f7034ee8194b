//! `agentry validate`: calls (a JSON array on stdin) checked against the tools' JSON Schemas.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use agentry_core::{ToolCall, ToolSpec};
use agentry_schema::{Coercion, Validators};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// `agentry validate`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A JSON array of tool definitions, OpenAI-style or bare {name, description, parameters}.
    #[arg(long, value_name = "TOOLS.json")]
    tools: PathBuf,
    /// Allow coercions (numeric strings to numbers, single values to arrays) and report them.
    #[arg(long)]
    coerce: bool,
    /// Print one JSON object per call instead of a line of text.
    #[arg(long)]
    json: bool,
}

/// Shown after `agentry validate --help`.
pub(crate) const EXAMPLES: &str = "\
Example:
  $ cat tools.json
  [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"…\",
    \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},
                   \"required\": [\"city\"]}}}]
  $ echo '[{\"name\": \"get_weather\", \"arguments\": {}}]' | agentry validate --tools tools.json
  invalid get_weather: `$`: the required property `city` is missing

The input is what `agentry parse` prints, so the two chain:
  $ agentry parse < reply.txt | agentry validate --tools tools.json
Exits 1 if any call is invalid.";

/// `agentry validate`: returns whether every call was valid.
pub(crate) fn run(args: Args) -> Result<bool> {
    validate(&args.tools, args.coerce, args.json)
}

/// Reads a JSON array of tool definitions (OpenAI-style or bare).
pub(crate) fn read_tools(path: &Path) -> Result<Vec<ToolSpec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ToolSpec::list_from_json(&text)
        .with_context(|| format!("{} is not a JSON array of tool definitions", path.display()))
}

/// Checks each call on stdin against its tool's schema; returns whether all were valid.
fn validate(tools_path: &Path, coerce: bool, as_json: bool) -> Result<bool> {
    let specs = read_tools(tools_path)?;
    let mut validators = Validators::new(&specs)?;
    if coerce {
        for spec in &specs {
            validators.allow_coercion(&spec.name, Coercion::ALL);
        }
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading calls from stdin")?;
    let calls: Vec<Value> = serde_json::from_str(&input)
        .context("stdin must be a JSON array of calls, e.g. [{\"name\": \"f\", \"arguments\": {}}] (what `agentry parse` prints)")?;
    let mut all_ok = true;
    let mut stdout = std::io::stdout().lock();
    for (i, raw) in calls.into_iter().enumerate() {
        let call: ToolCall = match serde_json::from_value(raw) {
            Ok(call) => call,
            Err(e) => bail!("call {i} on stdin is not a call: {e}"),
        };
        match validators.check(&call.name, call.arguments) {
            Ok(checked) => {
                if as_json {
                    let coerced: Vec<String> =
                        checked.coerced.iter().map(ToString::to_string).collect();
                    writeln!(
                        stdout,
                        "{}",
                        json!({"name": call.name, "ok": true, "arguments": checked.arguments, "coerced": coerced})
                    )?;
                } else {
                    writeln!(stdout, "ok {}", call.name)?;
                    for c in &checked.coerced {
                        writeln!(stdout, "  {c}")?;
                    }
                }
            }
            Err(err) => {
                all_ok = false;
                if as_json {
                    writeln!(
                        stdout,
                        "{}",
                        json!({"name": call.name, "ok": false, "kind": err.kind(), "error": err.for_model()})
                    )?;
                } else {
                    writeln!(
                        stdout,
                        "invalid {}: {}",
                        call.name,
                        strip_prefix(err.for_model(), &call.name)
                    )?;
                }
            }
        }
    }
    Ok(all_ok)
}

/// Drops the "invalid arguments for `name`: " lead, which the verdict line already says.
fn strip_prefix<'a>(sentence: &'a str, name: &str) -> &'a str {
    sentence
        .strip_prefix(&format!("invalid arguments for `{name}`: "))
        .unwrap_or(sentence)
}
