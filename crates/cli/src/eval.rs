//! `agentry eval bfcl …`: checking results files and writing the oracle's.

use std::{io::Write, path::Path, time::Instant};

use agentry_eval::bfcl::{
    CATEGORIES, ORACLE_CANNOT_PASS, UNPASSABLE, check_results, load, oracle_output,
};
use anyhow::{Context, Result};

/// `agentry eval bfcl check`: returns true (the verdicts are the output, not the exit code).
pub(crate) fn check(
    data: &Path,
    results: &Path,
    out: Option<&Path>,
    underscore_to_dot: bool,
) -> Result<bool> {
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
pub(crate) fn oracle(data: &Path) -> Result<bool> {
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

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use agentry_eval::bfcl::{
    Answerer, BfclMode, Entry, EntryResult, Verdict, check_entry, decode_python,
    decoded_from_tagged, prompt_messages, run_entries, schema_valid,
};
use serde_json::{Value, json};

/// Settings of `agentry eval bfcl run`.
pub(crate) struct RunArgs {
    pub(crate) data: PathBuf,
    pub(crate) model: String,
    pub(crate) options: agentry_llm::OpenOptions,
    pub(crate) mode: BfclMode,
    pub(crate) categories: Vec<String>,
    pub(crate) concurrency: usize,
    pub(crate) trials: u32,
    pub(crate) limit: Option<usize>,
    pub(crate) results: Option<PathBuf>,
    pub(crate) fresh: bool,
    pub(crate) price_in: Option<f64>,
    pub(crate) price_out: Option<f64>,
}

fn categories(list: &[String]) -> Result<Vec<&'static str>> {
    if list.is_empty() || list.iter().any(|c| c == "all") {
        return Ok(CATEGORIES.to_vec());
    }
    let mut out = Vec::new();
    for c in list {
        let matched: Vec<&'static str> = if let Some(prefix) = c.strip_suffix('*') {
            CATEGORIES
                .iter()
                .copied()
                .filter(|k| k.starts_with(prefix))
                .collect()
        } else {
            CATEGORIES.iter().copied().filter(|k| *k == c).collect()
        };
        if matched.is_empty() {
            anyhow::bail!(
                "unknown or unsupported category `{c}`; supported: {} (or all, live_*); multi-turn and format sensitivity are not supported yet",
                CATEGORIES.join(", ")
            );
        }
        out.extend(matched);
    }
    out.dedup();
    Ok(out)
}

fn verdict_of(entry: &Entry, r: &EntryResult, native: bool) -> Verdict {
    if let Some(e) = &r.error {
        return Verdict {
            valid: false,
            error_type: Some("model_error".into()),
            reason: e.clone(),
        };
    }
    check_entry(entry, &r.result, native)
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Where `run` keeps results by default: `.agentry/bfcl/MODEL-MODE.jsonl`.
pub(crate) fn default_results(model: &str, native: bool) -> PathBuf {
    PathBuf::from(".agentry/bfcl").join(format!(
        "{}-{}.jsonl",
        slug(model),
        if native { "native" } else { "prompt" }
    ))
}

/// `agentry eval bfcl run`.
pub(crate) async fn run(args: RunArgs) -> Result<bool> {
    let cats = categories(&args.categories)?;
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
    let native = args.mode == BfclMode::Native;
    let mode_name = if native { "native" } else { "prompt" };
    let answerer = if args.model == "oracle" {
        Answerer::Oracle
    } else {
        Answerer::Model(agentry_llm::open(&args.model, &args.options)?)
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
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} · {msg} · {elapsed_precise} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let tally = Arc::new(Mutex::new((0usize, 0usize)));
    let started = Instant::now();
    let new_results = run_entries(todo, answerer, args.mode, args.concurrency, |r| {
        if let Ok(mut f) = file.lock() {
            let _ = writeln!(f, "{}", serde_json::to_string(r).unwrap_or_default());
            let _ = f.flush();
        }
        if let (Some(entry), Ok(mut t)) = (by_id.get(&r.id), tally.lock()) {
            t.1 += 1;
            t.0 += usize::from(verdict_of(entry, r, native).valid);
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

    // Report.
    #[derive(Default)]
    struct Row {
        passed: usize,
        n: usize,
        decoded: usize,
        schema_valid: usize,
        errors: usize,
        latencies: Vec<f64>,
        tokens: u64,
        cost: f64,
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut verdict_lines = Vec::new();
    let mut all_trials_pass = 0usize;
    for e in &entries {
        let mut every = true;
        let mut any_result = false;
        for t in 0..trials {
            let Some(r) = done.get(&(e.id.clone(), t)) else {
                every = false;
                continue;
            };
            any_result = true;
            let v = verdict_of(e, r, native);
            every &= v.valid;
            let row = rows.entry(e.category.clone()).or_default();
            row.n += 1;
            row.passed += usize::from(v.valid);
            row.errors += usize::from(r.error.is_some());
            let decoded = match &r.result {
                Value::String(text) if e.category.contains("java") => {
                    let lang = if e.category.contains("javascript") {
                        agentry_eval::bfcl::Lang::JavaScript
                    } else {
                        agentry_eval::bfcl::Lang::Java
                    };
                    agentry_eval::bfcl::decode_java_js(text, lang)
                        .ok()
                        .flatten()
                        .map(|c| vec![c])
                }
                Value::String(text) => decode_python(text).ok(),
                Value::Null => None,
                other => decoded_from_tagged(other).ok(),
            };
            if let Some(calls) = decoded.filter(|c| !c.is_empty()) {
                row.decoded += 1;
                row.schema_valid += usize::from(schema_valid(e, &calls, native) == Some(true));
            }
            row.latencies.push(r.latency_ms);
            row.tokens += r.prompt_tokens + r.completion_tokens;
            row.cost += args.price_in.unwrap_or(0.0) * r.prompt_tokens as f64 / 1e6
                + args.price_out.unwrap_or(0.0) * r.completion_tokens as f64 / 1e6;
            verdict_lines.push(json!({"id": e.id, "trial": t, "valid": v.valid, "error_type": v.error_type, "reason": v.reason}));
        }
        all_trials_pass += usize::from(any_result && every);
    }
    let priced = args.price_in.is_some() || args.price_out.is_some();
    let mut table = String::from(
        "| category | accuracy | entries | decoded to calls | schema-valid calls | p50 ms | p95 ms | tokens |",
    );
    if priced {
        table.push_str(" cost / success |");
    }
    table.push('\n');
    table.push_str(if priced {
        "|---|---|---|---|---|---|---|---|---|\n"
    } else {
        "|---|---|---|---|---|---|---|---|\n"
    });
    let mut report_rows = Vec::new();
    let (mut all_pass, mut all_n) = (0, 0);
    for (cat, row) in &mut rows {
        row.latencies.sort_by(f64::total_cmp);
        let pct = |x: usize| 100.0 * x as f64 / row.n.max(1) as f64;
        table.push_str(&format!(
            "| {cat} | {:.2}% | {} | {:.1}% | {:.1}% | {:.0} | {:.0} | {} |",
            pct(row.passed),
            row.n,
            pct(row.decoded),
            pct(row.schema_valid),
            percentile(&row.latencies, 0.5),
            percentile(&row.latencies, 0.95),
            row.tokens
        ));
        if priced {
            table.push_str(&format!(" ${:.5} |", row.cost / row.passed.max(1) as f64));
        }
        table.push('\n');
        all_pass += row.passed;
        all_n += row.n;
        report_rows.push(json!({"category": cat, "accuracy": pct(row.passed) / 100.0, "entries": row.n, "passed": row.passed,
            "decoded_rate": pct(row.decoded) / 100.0, "schema_valid_rate": pct(row.schema_valid) / 100.0, "model_errors": row.errors,
            "latency_p50_ms": percentile(&row.latencies, 0.5), "latency_p95_ms": percentile(&row.latencies, 0.95), "tokens": row.tokens,
            "cost": if priced { json!(row.cost) } else { Value::Null }}));
    }
    table.push_str(&format!(
        "| **all** | {:.2}% | {all_n} | | | | | |\n",
        100.0 * all_pass as f64 / all_n.max(1) as f64
    ));
    println!("{table}");
    let errors: usize = rows.values().map(|r| r.errors).sum();
    if errors > 0 {
        println!(
            "{errors} entries could not be asked (model errors); they count as failed and are retried on the next run."
        );
    }
    let stem = results_path.with_extension("");
    if trials > 1 {
        println!(
            "{trials} trials per entry: accuracy above is over all trials; every trial passed for {all_trials_pass} of {} entries (pass^{trials} {:.2}%).",
            entries.len(),
            100.0 * all_trials_pass as f64 / entries.len().max(1) as f64
        );
    }
    let report = json!({"model": args.model, "mode": mode_name, "trials": trials, "pass_all_trials": all_trials_pass, "categories": report_rows, "accuracy": all_pass as f64 / all_n.max(1) as f64,
        "entries": all_n, "wall_s": wall.as_secs_f64(), "concurrency": args.concurrency});
    std::fs::write(
        stem.with_extension("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(
        stem.with_extension("report.md"),
        format!("# BFCL · {} · {mode_name} mode\n\n{table}", args.model),
    )?;
    std::fs::write(
        stem.with_extension("verdicts.jsonl"),
        verdict_lines
            .iter()
            .map(|v| format!("{v}\n"))
            .collect::<String>(),
    )?;
    eprintln!(
        "asked {} entries in {:.2} s · results {} · report {}.report.{{json,md}}",
        done.len().min(all_n),
        wall.as_secs_f64(),
        results_path.display(),
        stem.display()
    );
    Ok(true)
}

/// `agentry eval bfcl explain`: one entry's prompt, answer, decoding and verdict.
pub(crate) fn explain(data: &Path, results: &Path, id: &str, native: bool) -> Result<bool> {
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
    let v = verdict_of(entry, &r, native);
    println!(
        "\n## Verdict\n{}{}",
        if v.valid { "valid" } else { "invalid" },
        v.error_type
            .map(|t| format!(" ({t}): {}", v.reason))
            .unwrap_or_default()
    );
    Ok(v.valid)
}
