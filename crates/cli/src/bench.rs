//! `agentry bench parse`: parsing and validation speed, with baselines from the same run.
//!
//! Parsing is timed on generated model output in each format, whole and fed one byte at a
//! time, next to `serde_json` reading the same calls as one JSON document (the floor any
//! JSON-based parser pays). Validation is timed per call with a compiled schema, next to the
//! bare `jsonschema` `is_valid` it wraps.

use std::{hint::black_box, time::Instant};

use agentry_core::ToolSpec;
use agentry_parse::{CallParser, Format, Parsed};
use agentry_schema::ArgValidator;
use anyhow::{Result, ensure};
use clap::Subcommand;
use serde_json::{Value, json};

/// `agentry bench`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call parsing (MB/s, whole vs 1-byte chunks, against serde_json) and validation (µs per call).
    #[command(after_help = "Example:\n  $ cargo run --release -p agentry-cli -- bench parse")]
    Parse {
        /// Approximate size of each benchmark input, in MB.
        #[arg(long, default_value_t = 4)]
        mb: usize,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The embedded local model: prompt and generation speed against llama.cpp driven
    /// directly through its C API, constrained vs unconstrained decoding on BFCL simple_python (speed,
    /// schema-valid calls, AST accuracy), time to the first dispatched call, peak RSS.
    #[cfg(feature = "local")]
    #[command(
        after_help = "Example (bench/local/run builds the baseline against the same llama.cpp):\n  \
        $ bench/local/run\n  $ agentry bench local --baseline target/llama-baseline --data ../shared/bfcl"
    )]
    Local(crate::bench_local::Args),
    /// Sequential vs compiled makespan on plan shapes against the critical-path bound, engine
    /// overhead per call, and many concurrent runs with their peak memory.
    #[command(after_help = "Example:\n  $ cargo run --release -p agentry-cli -- bench dag")]
    Dag(crate::bench_dag::Args),
    /// The latency `agentry proxy` adds to an MCP tools/call round trip, against the same
    /// server called directly (server-everything's echo from scripts/mcp-servers).
    #[command(
        after_help = "Example:\n  $ bash scripts/mcp-servers && cargo run --release -p agentry-cli -- bench proxy"
    )]
    Proxy(crate::bench_proxy::Args),
    /// agentry against LangGraph and the OpenAI Agents SDK on the same simulated model and
    /// tools (bench/peers/run installs them and calls this): latency, CPU and memory per
    /// workload, as a table, JSON, Markdown and a PNG chart.
    Peers(crate::bench_peers::Args),
    /// One agentry contender of `bench peers` (a process of its own).
    #[command(hide = true)]
    Peer(crate::bench_peers::PeerArgs),
    /// The model client's CPU per streamed token, and the sim server under concurrent load.
    #[command(
        after_help = "Example:\n  $ cargo run --release -p agentry-cli -- bench llm --streams 1000"
    )]
    Llm(crate::bench_llm::Args),
}

/// `agentry bench …`.
pub(crate) fn run(args: Args) -> Result<bool> {
    match args.what {
        Command::Parse { mb, json } => parse(mb, json).map(|()| true),
        #[cfg(feature = "local")]
        Command::Local(args) => crate::bench_local::run(args).map(|()| true),
        Command::Dag(args) => crate::bench_dag::run(args).map(|()| true),
        Command::Proxy(args) => crate::bench_proxy::run(args).map(|()| true),
        Command::Peers(args) => crate::bench_peers::run(args),
        Command::Peer(args) => crate::bench_peers::run_peer(args),
        Command::Llm(args) => crate::bench_llm::run(args).map(|()| true),
    }
}

/// One call's arguments, the same in every format: nested object, list, numbers, a long-ish string.
fn arguments(i: usize) -> Value {
    json!({
        "city": format!("Paris {i}"),
        "days": 3 + i % 5,
        "units": "metric",
        "filters": {"min_temp": -5.5, "max_temp": 31.25, "tags": ["rain", "wind", "sun"]},
        "note": "Forecast requested by the user for planning a trip; include hourly detail if available."
    })
}

fn python_args(i: usize) -> String {
    format!(
        "city=\"Paris {i}\", days={}, units='metric', filters={{'min_temp': -5.5, 'max_temp': 31.25, 'tags': ['rain', 'wind', 'sun']}}, note=\"Forecast requested by the user for planning a trip; include hourly detail if available.\"",
        3 + i % 5
    )
}

/// Model output of about `bytes` bytes in `format`, and how many calls it holds.
fn workload(format: Format, bytes: usize) -> (String, usize) {
    let mut out = String::with_capacity(bytes + 1024);
    let mut n = 0;
    while out.len() < bytes {
        let name = format!("get_weather_{}", n % 7);
        let args = arguments(n);
        match format {
            Format::Hermes | Format::Auto => {
                out.push_str(&format!(
                    "<tool_call>\n{}\n</tool_call>\n",
                    json!({"name": name, "arguments": args})
                ));
            }
            Format::OpenAi => {
                let call = json!({"id": format!("call_{n}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}});
                out.push_str(&format!(
                    "{}\n",
                    json!({"role": "assistant", "content": null, "tool_calls": [call]})
                ));
            }
            Format::Llama => {
                out.push_str(&format!("{}\n", json!({"name": name, "parameters": args})))
            }
            Format::Mistral => out.push_str(&format!(
                "[TOOL_CALLS]{}\n",
                json!([{"name": name, "arguments": args}])
            )),
            Format::Python => out.push_str(&format!("[{name}({})]\n", python_args(n))),
            Format::React => {
                out.push_str(&format!(
                    "Thought: look it up\nAction: {name}\nAction Input: {args}\nObservation: ok\n"
                ));
            }
        }
        n += 1;
    }
    (out, n)
}

fn parse_whole(format: Format, text: &str) -> Parsed {
    let mut parser = CallParser::new(format).max_input_bytes(usize::MAX);
    let mut parsed = Parsed::default();
    parsed.extend(parser.push(text).unwrap_or_default());
    parsed.extend(parser.finish().unwrap_or_default());
    parsed
}

fn parse_bytewise(format: Format, text: &str) -> Parsed {
    let mut parser = CallParser::new(format).max_input_bytes(usize::MAX);
    let mut parsed = Parsed::default();
    // One push per character (per byte for ASCII text), as a token-by-token stream would.
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let (chunk, tail) = rest.split_at(c.len_utf8());
        rest = tail;
        let events = parser.push(chunk).unwrap_or_default();
        if !events.is_empty() {
            parsed.extend(events);
        }
    }
    parsed.extend(parser.finish().unwrap_or_default());
    parsed
}

/// Median seconds of `runs` runs of `f`.
fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    let times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    agentry_eval::median(times)
}

/// Median seconds `f` takes to produce its output; dropping the output is not timed (the
/// caller keeps what a parser produces).
fn median_produce<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    let times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = black_box(f());
            let took = t.elapsed().as_secs_f64();
            drop(out);
            took
        })
        .collect();
    agentry_eval::median(times)
}

/// `agentry bench parse`.
fn parse(mb: usize, as_json: bool) -> Result<()> {
    let bytes = mb.max(1) * 1024 * 1024;
    let mut rows = Vec::new();
    if !as_json {
        println!(
            "call parsing, {mb} MB of model output per format (median of 7 runs, 3 for 1-byte chunks; the time to produce the calls: dropping them is not timed, for serde_json either)\n"
        );
        println!(
            "{:<8} {:>7} {:>11} {:>14} {:>12} {:>13} {:>13}",
            "format",
            "calls",
            "whole MB/s",
            "1-byte MB/s",
            "1-byte/whole",
            "serde MB/s",
            "agentry/serde"
        );
    }
    for format in [
        Format::Hermes,
        Format::OpenAi,
        Format::Llama,
        Format::Mistral,
        Format::Python,
        Format::React,
    ] {
        let (text, calls) = workload(format, bytes);
        let check = parse_whole(format, &text);
        ensure!(
            check.calls.len() == calls && check.malformed.is_empty(),
            "benchmark input for {format} parsed to {} calls and {} errors, expected {calls} calls",
            check.calls.len(),
            check.malformed.len()
        );
        ensure!(
            parse_bytewise(format, &text) == check,
            "1-byte chunks gave a different result for {format}"
        );
        let size = text.len() as f64 / (1024.0 * 1024.0);
        let whole = median_produce(7, || parse_whole(format, black_box(&text)));
        let bytewise = median_produce(3, || parse_bytewise(format, black_box(&text)));
        // Baseline: serde_json reading the same calls as one JSON array of objects.
        let doc = Value::Array((0..calls).map(|i| json!({"name": format!("get_weather_{}", i % 7), "arguments": arguments(i)})).collect()).to_string();
        let serde = median_produce(7, || serde_json::from_str::<Value>(black_box(&doc)).ok());
        let whole_mbs = size / whole;
        let byte_mbs = size / bytewise;
        let serde_mbs = doc.len() as f64 / (1024.0 * 1024.0) / serde;
        if !as_json {
            println!(
                "{:<8} {:>7} {:>11.0} {:>14.0} {:>11.2}x {:>13.0} {:>12.2}x",
                format.as_str(),
                calls,
                whole_mbs,
                byte_mbs,
                bytewise / whole,
                serde_mbs,
                whole_mbs / serde_mbs
            );
        }
        rows.push(json!({"format": format.as_str(), "calls": calls, "bytes": text.len(), "whole_mb_s": whole_mbs,
            "bytewise_mb_s": byte_mbs, "bytewise_slowdown": bytewise / whole, "serde_json_mb_s": serde_mbs}));
    }

    let validation = bench_validation()?;
    if as_json {
        println!("{}", json!({"parse": rows, "validate": validation}));
    } else {
        println!(
            "\nvalidation of a typical call (5 arguments, nested object, a pattern), compiled schema:"
        );
        println!(
            "  agentry check: {:.2} µs median   bare jsonschema is_valid: {:.2} µs   ratio {:.2}x",
            validation["check_us_median"].as_f64().unwrap_or_default(),
            validation["is_valid_us_median"]
                .as_f64()
                .unwrap_or_default(),
            validation["ratio"].as_f64().unwrap_or_default()
        );
        println!(
            "  an invalid call with its error sentences: {:.2} µs median",
            validation["invalid_us_median"].as_f64().unwrap_or_default()
        );
        println!(
            "\ngoals: JSON formats >= 200 MB/s whole; 1-byte chunks <= 3x whole; validation < 2 µs"
        );
    }
    Ok(())
}

fn bench_validation() -> Result<Value> {
    let spec = ToolSpec::new(
        "book_flight",
        "Books a flight.",
        json!({
            "type": "object",
            "properties": {
                "from": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "to": {"type": "string", "minLength": 3},
                "date": {"type": "string"},
                "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
                "preferences": {
                    "type": "object",
                    "properties": {"seat": {"enum": ["aisle", "window"]}, "meal": {"type": "string"}},
                    "required": ["seat"]
                }
            },
            "required": ["from", "to", "date", "passengers"],
            "additionalProperties": false
        }),
    );
    let validator = ArgValidator::new(&spec)?;
    let raw = jsonschema::validator_for(&spec.parameters)?;
    let good = json!({"from": "OSL", "to": "CDG", "date": "2025-06-01", "passengers": 2,
        "preferences": {"seat": "aisle", "meal": "vegetarian"}});
    let bad = json!({"from": "oslo", "to": "CDG", "date": "2025-06-01", "passengers": 0,
        "preferences": {"meal": "none"}});
    ensure!(
        validator.check(good.clone()).is_ok() && validator.check(bad.clone()).is_err(),
        "validation bench inputs are wrong"
    );
    const BATCH: usize = 2000;
    let per_call = |f: &mut dyn FnMut()| {
        median_secs(51, || {
            for _ in 0..BATCH {
                f();
            }
        }) / BATCH as f64
            * 1e6
    };
    // `check` takes the arguments by value, as the engine hands them over; clone outside the timing
    // would not be possible per call, so the clone is timed in the baseline too.
    let check_us = per_call(&mut || {
        black_box(validator.check(black_box(good.clone())).is_ok());
    });
    let raw_us = per_call(&mut || {
        let args = black_box(good.clone());
        black_box(raw.is_valid(&args));
    });
    let invalid_us = per_call(&mut || {
        black_box(validator.check(black_box(bad.clone())).is_err());
    });
    Ok(
        json!({"check_us_median": check_us, "is_valid_us_median": raw_us, "ratio": check_us / raw_us, "invalid_us_median": invalid_us}),
    )
}
