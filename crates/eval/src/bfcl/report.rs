//! What a BFCL run adds up to: accuracy and the SLM-survey metrics per category
//! ([`Report`]), and the verdict on every answer ([`TrialVerdict`]).
//!
//! The report is plain data, serialized as the `.report.json` the trace viewer reads; its
//! Markdown ([`Report::to_markdown`]) is the table `agentry eval bfcl run` prints, under a
//! title. Percentages in the table are computed from the counts, so they read the same
//! however the rates in the JSON round.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    time::Duration,
};

use serde::Serialize;
use serde_json::Value;

use super::{
    BfclMode, Entry, EntryResult, Lang, Verdict, check_entry, decode_java_js, decode_python,
    decoded_from_tagged, schema_valid,
};
use crate::percentile;

impl EntryResult {
    /// The checker's verdict on this answer to `entry` (`native`: the function names had
    /// `.` replaced by `_`); an answer the model could not give fails as `model_error`.
    pub fn verdict(&self, entry: &Entry, native: bool) -> Verdict {
        if let Some(e) = &self.error {
            return Verdict {
                valid: false,
                error_type: Some("model_error".into()),
                reason: e.clone(),
            };
        }
        check_entry(entry, &self.result, native)
    }
}

/// The verdict on one answer, as a line of `.verdicts.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrialVerdict {
    /// The entry.
    pub id: String,
    /// Which trial of the entry (from 0).
    pub trial: u32,
    /// Whether the answer passed.
    pub valid: bool,
    /// The upstream-style label of the first failure.
    pub error_type: Option<String>,
    /// Why it failed, in words (empty when it passed).
    pub reason: String,
}

/// One category's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryReport {
    /// The category (`simple_python`, `live_multiple`…).
    pub category: String,
    /// Share of the answers that passed, 0–1.
    pub accuracy: f64,
    /// Answers checked (entries × trials that have an answer).
    pub entries: usize,
    /// Answers that passed.
    pub passed: usize,
    /// Share of the answers that decoded to at least one call, 0–1.
    pub decoded_rate: f64,
    /// Share of the answers whose calls all name an offered function with arguments valid
    /// against its schema, 0–1.
    pub schema_valid_rate: f64,
    /// Answers the model could not give (backend errors); they count as failed.
    pub model_errors: usize,
    /// Median time the model took for an answer, in milliseconds.
    pub latency_p50_ms: f64,
    /// 95th percentile of that time, in milliseconds.
    pub latency_p95_ms: f64,
    /// Prompt and completion tokens of all its answers.
    pub tokens: u64,
    /// Their cost in USD, when prices were given.
    pub cost: Option<f64>,
    /// Answers that decoded to at least one call (the JSON holds the rate).
    #[serde(skip)]
    pub decoded: usize,
    /// Answers whose calls were schema-valid (the JSON holds the rate).
    #[serde(skip)]
    pub schema_valid: usize,
}

/// A BFCL run: who answered and how, accuracy and the SLM-survey metrics per category, and
/// every answer's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Who answered: `oracle`, or the model's spec.
    pub model: String,
    /// How the entries were put to the model.
    pub mode: BfclMode,
    /// Times each entry was asked.
    pub trials: u32,
    /// Entries that passed every trial.
    pub pass_all_trials: usize,
    /// The categories, by name.
    pub categories: Vec<CategoryReport>,
    /// Share of all answers that passed, 0–1.
    pub accuracy: f64,
    /// Answers checked, over all categories.
    pub entries: usize,
    /// Wall time of the asking, in seconds (see [`Report::wall`]).
    pub wall_s: f64,
    /// Entries asked at once (see [`Report::concurrency`]).
    pub concurrency: usize,
    /// Whether prices were given: the table then has a cost column.
    #[serde(skip)]
    pub priced: bool,
    /// The verdict on every answer, by entry then trial; written beside the report as
    /// `.verdicts.jsonl` ([`Report::verdicts_jsonl`]), not part of its JSON.
    #[serde(skip)]
    pub verdicts: Vec<TrialVerdict>,
}

/// A category's sums while the answers are checked.
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

/// `100 × part / whole`, a whole of 0 counting as 1.
fn percent(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

/// The calls an answer decodes to, as the category's language reads them; `None` when it
/// does not decode.
fn decoded_calls(entry: &Entry, result: &Value) -> Option<Vec<super::DecodedCall>> {
    match result {
        Value::String(text) if entry.category.contains("java") => {
            let lang = if entry.category.contains("javascript") {
                Lang::JavaScript
            } else {
                Lang::Java
            };
            decode_java_js(text, lang).ok().flatten().map(|c| vec![c])
        }
        Value::String(text) => decode_python(text).ok(),
        Value::Null => None,
        other => decoded_from_tagged(other).ok(),
    }
}

impl Report {
    /// Checks the answers in `results` to `entries` (trials `0..trials`; answers to other
    /// entries or trials are left out) and sums them up per category. `prices` are USD per
    /// million prompt and completion tokens. Wall time and concurrency are zero until set
    /// with [`Report::wall`] and [`Report::concurrency`].
    pub fn new<'a>(
        model: &str,
        mode: BfclMode,
        entries: &[Entry],
        results: impl IntoIterator<Item = &'a EntryResult>,
        trials: u32,
        prices: Option<(f64, f64)>,
    ) -> Self {
        let native = mode == BfclMode::Native;
        let trials = trials.max(1);
        let (price_in, price_out) = prices.unwrap_or((0.0, 0.0));
        let answers: HashMap<(&str, u32), &EntryResult> = results
            .into_iter()
            .map(|r| ((r.id.as_str(), r.trial), r))
            .collect();
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let mut verdicts = Vec::new();
        let mut pass_all_trials = 0usize;
        for e in entries {
            let mut every = true;
            let mut any_result = false;
            for t in 0..trials {
                let Some(r) = answers.get(&(e.id.as_str(), t)) else {
                    every = false;
                    continue;
                };
                any_result = true;
                let v = r.verdict(e, native);
                every &= v.valid;
                let row = rows.entry(e.category.clone()).or_default();
                row.n += 1;
                row.passed += usize::from(v.valid);
                row.errors += usize::from(r.error.is_some());
                if let Some(calls) = decoded_calls(e, &r.result).filter(|c| !c.is_empty()) {
                    row.decoded += 1;
                    row.schema_valid += usize::from(schema_valid(e, &calls, native) == Some(true));
                }
                row.latencies.push(r.latency_ms);
                row.tokens += r.prompt_tokens + r.completion_tokens;
                row.cost += price_in * r.prompt_tokens as f64 / 1e6
                    + price_out * r.completion_tokens as f64 / 1e6;
                verdicts.push(TrialVerdict {
                    id: e.id.clone(),
                    trial: t,
                    valid: v.valid,
                    error_type: v.error_type,
                    reason: v.reason,
                });
            }
            pass_all_trials += usize::from(any_result && every);
        }
        let priced = prices.is_some();
        let (mut all_pass, mut all_n) = (0, 0);
        let mut categories = Vec::with_capacity(rows.len());
        for (category, mut row) in rows {
            row.latencies.sort_by(f64::total_cmp);
            all_pass += row.passed;
            all_n += row.n;
            categories.push(CategoryReport {
                category,
                accuracy: percent(row.passed, row.n) / 100.0,
                entries: row.n,
                passed: row.passed,
                decoded_rate: percent(row.decoded, row.n) / 100.0,
                schema_valid_rate: percent(row.schema_valid, row.n) / 100.0,
                model_errors: row.errors,
                latency_p50_ms: percentile(&row.latencies, 0.5),
                latency_p95_ms: percentile(&row.latencies, 0.95),
                tokens: row.tokens,
                cost: priced.then_some(row.cost),
                decoded: row.decoded,
                schema_valid: row.schema_valid,
            });
        }
        Self {
            model: model.to_owned(),
            mode,
            trials,
            pass_all_trials,
            categories,
            accuracy: all_pass as f64 / all_n.max(1) as f64,
            entries: all_n,
            wall_s: 0.0,
            concurrency: 0,
            priced,
            verdicts,
        }
    }

    /// Sets the wall time of the asking.
    #[must_use]
    pub fn wall(mut self, wall: Duration) -> Self {
        self.wall_s = wall.as_secs_f64();
        self
    }

    /// Sets how many entries were asked at once.
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Answers that passed, over all categories.
    pub fn passed(&self) -> usize {
        self.categories.iter().map(|c| c.passed).sum()
    }

    /// Answers the model could not give, over all categories.
    pub fn model_errors(&self) -> usize {
        self.categories.iter().map(|c| c.model_errors).sum()
    }

    /// The per-category table in Markdown, with a last row for all categories.
    pub fn table(&self) -> String {
        let mut table = String::from(
            "| category | accuracy | entries | decoded to calls | schema-valid calls | p50 ms | p95 ms | tokens |",
        );
        if self.priced {
            table.push_str(" cost / success |");
        }
        table.push('\n');
        table.push_str(if self.priced {
            "|---|---|---|---|---|---|---|---|---|\n"
        } else {
            "|---|---|---|---|---|---|---|---|\n"
        });
        for c in &self.categories {
            let _ = write!(
                table,
                "| {} | {:.2}% | {} | {:.1}% | {:.1}% | {:.0} | {:.0} | {} |",
                c.category,
                percent(c.passed, c.entries),
                c.entries,
                percent(c.decoded, c.entries),
                percent(c.schema_valid, c.entries),
                c.latency_p50_ms,
                c.latency_p95_ms,
                c.tokens
            );
            if self.priced {
                let cost = c.cost.unwrap_or(0.0);
                let _ = write!(table, " ${:.5} |", cost / c.passed.max(1) as f64);
            }
            table.push('\n');
        }
        let _ = writeln!(
            table,
            "| **all** | {:.2}% | {} | | | | | |",
            percent(self.passed(), self.entries),
            self.entries
        );
        table
    }

    /// The report in Markdown: a title naming the model and mode, then [`Report::table`].
    pub fn to_markdown(&self) -> String {
        let mode = match self.mode {
            BfclMode::Prompt => "prompt",
            BfclMode::Native => "native",
        };
        format!("# BFCL · {} · {mode} mode\n\n{}", self.model, self.table())
    }

    /// The verdicts as JSON Lines, one answer a line.
    pub fn verdicts_jsonl(&self) -> String {
        self.verdicts
            .iter()
            .map(|v| format!("{}\n", serde_json::to_string(v).unwrap_or_default()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(id: &str, category: &str) -> Entry {
        Entry {
            id: id.into(),
            category: category.into(),
            functions: vec![json!({"name": "f", "description": "", "parameters": {
                "type": "dict", "properties": {"x": {"type": "integer"}}, "required": ["x"]}})],
            question: Vec::new(),
            ground_truth: Some(vec![json!({"f": {"x": [1]}})]),
        }
    }

    fn answer(id: &str, trial: u32, text: &str, latency_ms: f64) -> EntryResult {
        EntryResult {
            id: id.into(),
            trial,
            result: json!(text),
            latency_ms,
            prompt_tokens: 100,
            completion_tokens: 10,
            text: None,
            error: None,
        }
    }

    #[test]
    fn the_report_counts_per_category_and_keeps_the_viewers_fields() {
        let entries = [
            entry("simple_python_0", "simple_python"),
            entry("simple_python_1", "simple_python"),
        ];
        let results = [
            answer("simple_python_0", 0, "[f(x=1)]", 10.0),
            answer("simple_python_1", 0, "[f(x=2)]", 30.0),
            answer("elsewhere_0", 0, "[f(x=1)]", 99.0),
        ];
        let prices = Some((1.0, 2.0));
        let report = Report::new("oracle", BfclMode::Prompt, &entries, &results, 1, prices)
            .wall(Duration::from_secs(2))
            .concurrency(4);
        assert_eq!((report.entries, report.passed()), (2, 1));
        assert_eq!(report.pass_all_trials, 1);
        assert_eq!(report.verdicts.len(), 2);
        let c = &report.categories[0];
        assert_eq!((c.entries, c.passed, c.decoded), (2, 1, 2));
        assert_eq!(c.latency_p50_ms, 30.0);
        let json = serde_json::to_value(&report).unwrap_or_default();
        let keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "model",
                "mode",
                "trials",
                "pass_all_trials",
                "categories",
                "accuracy",
                "entries",
                "wall_s",
                "concurrency"
            ]
        );
        assert_eq!(json["mode"], "prompt");
        assert_eq!(json["accuracy"], 0.5);
        assert_eq!(json["wall_s"], 2.0);
        assert_eq!(json["categories"][0]["decoded_rate"], 1.0);
        assert!(json["categories"][0].get("decoded").is_none());
        let md = report.to_markdown();
        assert!(
            md.starts_with("# BFCL · oracle · prompt mode\n\n| category |"),
            "{md}"
        );
        assert!(
            md.contains("| simple_python | 50.00% | 2 | 100.0% | "),
            "{md}"
        );
        assert!(md.contains(" | 30 | 30 | 220 | $0.00024 |\n"), "{md}");
        assert!(md.ends_with("| **all** | 50.00% | 2 | | | | | |\n"), "{md}");
        assert_eq!(
            report.verdicts_jsonl().lines().next(),
            Some(
                r#"{"id":"simple_python_0","trial":0,"valid":true,"error_type":null,"reason":""}"#
            )
        );
    }
}
