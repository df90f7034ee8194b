//! `agentry eval …`: BFCL here (checking results files, asking a model every entry, the
//! oracle's answers, one entry explained); τ-bench in `taubench`. The checking and the
//! report are `agentry_eval`'s; this module reads and writes the files and prints.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Instant,
};

use agentry_eval::bfcl::{
    Answerer, BfclMode, CATEGORIES, Entry, EntryResult, ORACLE_CANNOT_PASS, Report, UNPASSABLE,
    check_results, decode_python, decoded_from_tagged, load, oracle_output, prompt_messages,
    run_entries, select_categories,
};
use agentry_llm::OpenOptions;
use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use crate::args::ModelArgs;

/// `agentry eval`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The Berkeley Function-Calling Leaderboard.
    Bfcl {
        #[command(subcommand)]
        what: BfclCommand,
    },
    /// τ-bench: an agent serves simulated customers against a stateful database; judged by
    /// the final database and what it said, over K trials (pass^k).
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = crate::taubench::EXAMPLES
    )]
    Taubench(crate::taubench::Args),
}

#[derive(Debug, Subcommand)]
enum BfclCommand {
    /// Check model outputs already produced (JSON Lines of {"id", "result"}, the result raw
    /// text or decoded calls) exactly as the official checker does, without calling a model.
    #[command(after_help = "\
Example:
  $ agentry eval bfcl oracle --data ../shared/bfcl > oracle.jsonl
  $ agentry eval bfcl check --data ../shared/bfcl --results oracle.jsonl --out verdicts.jsonl

Checked: every single-turn category (simple_python, simple_java, simple_javascript,
multiple, parallel, parallel_multiple, irrelevance, live_*). Multi-turn and format
sensitivity results are reported as not checked.")]
    Check {
        /// The BFCL data directory (question files and possible_answer/).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The results file.
        #[arg(long, value_name = "FILE")]
        results: PathBuf,
        /// Write one verdict per entry here, as JSON Lines {"id", "valid", "error_type", "reason"}.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The model's function names had `.` replaced by `_` (the checker's underscore_to_dot).
        #[arg(long)]
        underscore_to_dot: bool,
    },
    /// Ask a model every entry (concurrently, resumably) and report accuracy and the SLM-survey
    /// metrics per category; `--model oracle` answers with the first possible answer.
    #[command(after_help = "\
Examples:
  $ agentry eval bfcl run --data ../shared/bfcl --model oracle
  $ agentry eval bfcl run --data ../shared/bfcl --model openai:gpt-4o-mini --category simple_python,live_* --concurrency 16
  $ agentry eval bfcl run --data ../shared/bfcl --model oracle --explain simple_python_3

Results go to a JSON Lines file as they arrive (default .agentry/bfcl/MODEL-MODE.jsonl); a
re-run skips the entries already there unless --fresh. A report (.report.json, .report.md)
and verdicts (.verdicts.jsonl) are written beside it.")]
    Run(RunArgs),
    /// Write the oracle's results: each entry answered with its first possible answer.
    Oracle {
        /// The BFCL data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

/// `agentry eval bfcl run`'s flags.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The BFCL data directory.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The model: oracle, local, local:PATH, sim:NAME, sim:PATH or openai:MODEL.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    local: ModelArgs,
    /// Prompting (Python call syntax in text) or native tool calls.
    #[arg(long, value_enum, default_value = "prompt")]
    mode: BfclModeArg,
    /// Categories, comma-separated (`live_*` matches a prefix), or all.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    category: Vec<String>,
    /// Entries asked at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Times each entry is asked; the report adds how many entries passed every trial.
    #[arg(long, default_value_t = 1)]
    trials: u32,
    /// At most this many entries per category.
    #[arg(long)]
    limit: Option<usize>,
    /// The results file.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Ignore earlier results and start over.
    #[arg(long)]
    fresh: bool,
    /// Show one entry instead of running: the prompt, the output in the results file, the
    /// decoded calls and the verdict.
    #[arg(long, value_name = "ID")]
    explain: Option<String>,
    /// Price per million prompt tokens, for the cost per successful entry.
    #[arg(long, value_name = "USD")]
    price_in: Option<f64>,
    /// Price per million completion tokens.
    #[arg(long, value_name = "USD")]
    price_out: Option<f64>,
}

/// `--mode` of `agentry eval bfcl run`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BfclModeArg {
    Prompt,
    Native,
}

impl From<BfclModeArg> for BfclMode {
    fn from(m: BfclModeArg) -> Self {
        match m {
            BfclModeArg::Prompt => Self::Prompt,
            BfclModeArg::Native => Self::Native,
        }
    }
}

/// `agentry eval …`.
pub(crate) fn run(args: Args) -> Result<bool> {
    match args.what {
        Command::Bfcl { what } => match what {
            BfclCommand::Check {
                data,
                results,
                out,
                underscore_to_dot,
            } => check(&data, &results, out.as_deref(), underscore_to_dot),
            BfclCommand::Oracle { data } => oracle(&data),
            BfclCommand::Run(args) => run_bfcl(args),
        },
        Command::Taubench(args) => crate::taubench::run(args),
    }
}

/// `agentry eval bfcl run`: one entry explained with `--explain`, else every entry asked.
fn run_bfcl(args: RunArgs) -> Result<bool> {
    let mode = BfclMode::from(args.mode);
    let native = mode == BfclMode::Native;
    if let Some(id) = &args.explain {
        let results = args
            .results
            .clone()
            .unwrap_or_else(|| default_results(&args.model, native));
        return explain(&args.data, &results, id, native);
    }
    let options = args.local.options(agentry_llm::ToolMode::Native);
    crate::runtime::block_on(ask_all(args, mode, options))
}

/// `agentry eval bfcl check`: returns true (the verdicts are the output, not the exit code).
fn check(data: &Path, results: &Path, out: Option<&Path>, underscore_to_dot: bool) -> Result<bool> {
    let t = Instant::now();
    let entries = load(data, CATEGORIES)
        .with_context(|| format!("reading the BFCL data in {}", data.display()))?;
    let loaded = t.elapsed();
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("reading {}", results.display()))?;
    let t = Instant::now();
    let report = check_results(&entries, &text, underscore_to_dot);
    let checked = t.elapsed();
    if let Some(out) = out {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
        );
        for v in &report.verdicts {
            writeln!(f, "{}", serde_json::to_string(v)?)?;
        }
        f.flush()?;
    }
    println!(
        "{:<24} {:>8} {:>8} {:>9}",
        "category", "passed", "checked", "accuracy"
    );
    let (mut passed, mut total) = (0, 0);
    for (category, (p, n)) in &report.categories {
        println!(
            "{category:<24} {p:>8} {n:>8} {:>8.2}%",
            100.0 * *p as f64 / (*n).max(1) as f64
        );
        passed += p;
        total += n;
    }
    println!(
        "{:<24} {passed:>8} {total:>8} {:>8.2}%",
        "all",
        100.0 * passed as f64 / total.max(1) as f64
    );
    let unpassable: Vec<&str> = report
        .verdicts
        .iter()
        .filter(|v| UNPASSABLE.contains(&v.id.as_str()))
        .map(|v| v.id.as_str())
        .collect();
    if !unpassable.is_empty() {
        println!(
            "\n{} of these entries cannot be passed with the shipped data (CHECKER_SPEC.md §11): {}",
            unpassable.len(),
            unpassable.join(", ")
        );
    }
    let prompt_only: Vec<String> = report
        .verdicts
        .iter()
        .filter_map(|v| {
            ORACLE_CANNOT_PASS
                .iter()
                .find(|(id, _)| *id == v.id)
                .map(|(id, why)| format!("{id} ({why})"))
        })
        .collect();
    if !prompt_only.is_empty() {
        println!(
            "{} cannot be passed from prompting-mode output: {}",
            prompt_only.len(),
            prompt_only.join("; ")
        );
    }
    if !report.skipped.is_empty() {
        println!(
            "\n{} line(s) of {} not checked:",
            report.skipped.len(),
            results.display()
        );
        for (line, why) in report.skipped.iter().take(20) {
            println!("  line {line}: {why}");
        }
        if report.skipped.len() > 20 {
            println!("  … and {} more", report.skipped.len() - 20);
        }
    }
    if report.missing > 0 {
        println!(
            "\n{} entries of the checked categories have no result.",
            report.missing
        );
    }
    eprintln!(
        "checked {total} entries in {:.0} ms (data loaded in {:.0} ms)",
        checked.as_secs_f64() * 1000.0,
        loaded.as_secs_f64() * 1000.0
    );
    Ok(true)
}

/// `agentry eval bfcl oracle`.
fn oracle(data: &Path) -> Result<bool> {
    let entries = load(data, CATEGORIES)
        .with_context(|| format!("reading the BFCL data in {}", data.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in &entries {
        writeln!(
            out,
            "{}",
            serde_json::json!({"id": e.id, "result": oracle_output(e)})
        )?;
    }
    out.flush()?;
    Ok(true)
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where `run` keeps results by default: `.agentry/bfcl/MODEL-MODE.jsonl`.
fn default_results(model: &str, native: bool) -> PathBuf {
    PathBuf::from(".agentry/bfcl").join(format!(
        "{}-{}.jsonl",
        slug(model),
        if native { "native" } else { "prompt" }
    ))
}

/// `agentry eval bfcl run` once `--explain` is ruled out.
async fn ask_all(args: RunArgs, mode: BfclMode, options: OpenOptions) -> Result<bool> {
    let cats = select_categories(&args.category)?;
    let mut entries = load(&args.data, &cats)
        .with_context(|| format!("reading the BFCL data in {}", args.data.display()))?;
    if let Some(limit) = args.limit {
        let mut per: HashMap<String, usize> = HashMap::new();
        entries.retain(|e| {
            let n = per.entry(e.category.clone()).or_default();
            *n += 1;
            *n <= limit
        });
    }
    let native = mode == BfclMode::Native;
    let mode_name = if native { "native" } else { "prompt" };
    let answerer = if args.model == "oracle" {
        Answerer::Oracle
    } else {
        Answerer::Model(agentry_llm::open(&args.model, &options)?)
    };
    let results_path = args
        .results
        .clone()
        .unwrap_or_else(|| default_results(&args.model, native));
    if let Some(dir) = results_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Resume: results already in the file are kept unless --fresh.
    let mut done: HashMap<(String, u32), EntryResult> = HashMap::new();
    if !args.fresh && results_path.exists() {
        let text = std::fs::read_to_string(&results_path)
            .with_context(|| format!("reading {}", results_path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Ok(r) = serde_json::from_str::<EntryResult>(line)
                && r.error.is_none()
            {
                done.insert((r.id.clone(), r.trial), r);
            }
        }
    }
    let trials = args.trials.max(1);
    let todo: Vec<(Entry, u32)> = entries
        .iter()
        .flat_map(|e| (0..trials).map(move |t| (e, t)))
        .filter(|(e, t)| !done.contains_key(&(e.id.clone(), *t)))
        .map(|(e, t)| (e.clone(), t))
        .collect();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(!args.fresh)
        .truncate(args.fresh)
        .open(&results_path)
        .with_context(|| format!("opening {}", results_path.display()))?;
    let file = Mutex::new(std::io::BufWriter::new(file));
    let by_id: HashMap<String, Entry> = entries.iter().map(|e| (e.id.clone(), e.clone())).collect();
    eprintln!(
        "BFCL · {} entries in {} categories · {} already in {} · model {} ({mode_name} mode) · concurrency {}",
        entries.len(),
        cats.len(),
        entries.len() * trials as usize - todo.len(),
        results_path.display(),
        args.model,
        args.concurrency
    );
    let bar = crate::progress::bar(todo.len() as u64);
    let tally = Arc::new(Mutex::new((0usize, 0usize)));
    let started = Instant::now();
    let new_results = run_entries(todo, answerer, mode, args.concurrency, |r| {
        if let Ok(mut f) = file.lock() {
            let _ = writeln!(f, "{}", serde_json::to_string(r).unwrap_or_default());
            let _ = f.flush();
        }
        if let (Some(entry), Ok(mut t)) = (by_id.get(&r.id), tally.lock()) {
            t.1 += 1;
            t.0 += usize::from(r.verdict(entry, native).valid);
            bar.set_message(format!(
                "accuracy so far {:.1}%",
                100.0 * t.0 as f64 / t.1 as f64
            ));
        }
        bar.inc(1);
    })
    .await;
    let wall = started.elapsed();
    bar.finish_and_clear();
    if !new_results.is_empty() && args.concurrency > 1 {
        let mean_ms =
            new_results.iter().map(|r| r.latency_ms).sum::<f64>() / new_results.len() as f64;
        let ideal = new_results.len() as f64 * mean_ms / 1000.0 / args.concurrency as f64;
        eprintln!(
            "wall {:.2} s for {} entries; entries × mean latency ({mean_ms:.0} ms) / concurrency = {ideal:.2} s; ratio {:.3}",
            wall.as_secs_f64(),
            new_results.len(),
            wall.as_secs_f64() / ideal.max(1e-9)
        );
    }
    for r in new_results {
        done.insert((r.id.clone(), r.trial), r);
    }
    let prices = match (args.price_in, args.price_out) {
        (None, None) => None,
        (price_in, price_out) => Some((price_in.unwrap_or(0.0), price_out.unwrap_or(0.0))),
    };
    let report = Report::new(&args.model, mode, &entries, done.values(), trials, prices)
        .wall(wall)
        .concurrency(args.concurrency);
    println!("{}", report.table());
    let errors = report.model_errors();
    if errors > 0 {
        println!(
            "{errors} entries could not be asked (model errors); they count as failed and are retried on the next run."
        );
    }
    let stem = results_path.with_extension("");
    if trials > 1 {
        println!(
            "{trials} trials per entry: accuracy above is over all trials; every trial passed for {} of {} entries (pass^{trials} {:.2}%).",
            report.pass_all_trials,
            entries.len(),
            100.0 * report.pass_all_trials as f64 / entries.len().max(1) as f64
        );
    }
    std::fs::write(
        stem.with_extension("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(stem.with_extension("report.md"), report.to_markdown())?;
    std::fs::write(
        stem.with_extension("verdicts.jsonl"),
        report.verdicts_jsonl(),
    )?;
    eprintln!(
        "asked {} entries in {:.2} s · results {} · report {}.report.{{json,md}}",
        done.len().min(report.entries),
        wall.as_secs_f64(),
        results_path.display(),
        stem.display()
    );
    Ok(true)
}

/// `agentry eval bfcl explain`: one entry's prompt, answer, decoding and verdict.
fn explain(data: &Path, results: &Path, id: &str, native: bool) -> Result<bool> {
    let category = agentry_eval::bfcl::category_of(id);
    let entries = load(data, &[category])
        .with_context(|| format!("reading the BFCL data in {}", data.display()))?;
    let entry = entries
        .iter()
        .find(|e| e.id == id)
        .with_context(|| format!("no entry `{id}` in category `{category}`"))?;
    println!("# {id} ({category})\n\n## Prompt");
    for m in prompt_messages(entry) {
        println!("[{}] {}", m.role(), m.text().unwrap_or(""));
    }
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("reading {}", results.display()))?;
    let Some(r) = text
        .lines()
        .filter_map(|l| serde_json::from_str::<EntryResult>(l).ok())
        .find(|r| r.id == id)
    else {
        println!("\n(no result for {id} in {})", results.display());
        return Ok(false);
    };
    println!(
        "\n## Model output\n{}",
        match &r.result {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    );
    let decoded = match &r.result {
        Value::String(t) => decode_python(t),
        other => decoded_from_tagged(other),
    };
    match &decoded {
        Ok(calls) => println!(
            "\n## Decoded\n{}",
            Value::Array(calls.iter().map(|c| c.to_tagged()).collect())
        ),
        Err(why) => println!("\n## Decoded\nfailed: {why}"),
    }
    if let Some(gt) = &entry.ground_truth {
        println!("\n## Possible answers\n{}", Value::Array(gt.clone()));
    }
    let v = r.verdict(entry, native);
    println!(
        "\n## Verdict\n{}{}",
        if v.valid { "valid" } else { "invalid" },
        v.error_type
            .map(|t| format!(" ({t}): {}", v.reason))
            .unwrap_or_default()
    );
    Ok(v.valid)
}
