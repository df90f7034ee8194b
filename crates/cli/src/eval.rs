//! `agentry eval bfcl …`: checking results files and writing the oracle's.

use std::{io::Write, path::Path, time::Instant};

use agentry_eval::bfcl::{PYTHON_CATEGORIES, UNPASSABLE, check_results, load, oracle_output};
use anyhow::{Context, Result};

/// `agentry eval bfcl check`: returns true (the verdicts are the output, not the exit code).
pub(crate) fn check(
    data: &Path,
    results: &Path,
    out: Option<&Path>,
    underscore_to_dot: bool,
) -> Result<bool> {
    let t = Instant::now();
    let entries = load(data, PYTHON_CATEGORIES)
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
    let entries = load(data, PYTHON_CATEGORIES)
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
