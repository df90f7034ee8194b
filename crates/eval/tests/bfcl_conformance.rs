//! The BFCL checker against the conformance vectors shipped with the data (`../shared/bfcl`):
//! every Python vector's decoding and verdict must agree with the official checker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::{collections::HashMap, io::BufRead, path::PathBuf};

use agentry_eval::bfcl::{check_python, decode_python, decoded_from_tagged};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bfcl")
}

fn jsonl(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn python_vectors_agree_with_the_official_checker() {
    vectors_agree(&["python"], 19_000);
}

#[test]
fn java_and_javascript_vectors_agree_with_the_official_checker() {
    vectors_agree(&["java", "javascript"], 900);
}

fn vectors_agree(languages: &[&str], at_least: usize) {
    let dir = data_dir();
    let gz = std::fs::File::open(dir.join("conformance/ast_vectors.jsonl.gz"))
        .expect("the BFCL data must be at ../shared/bfcl");
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(gz));
    let mut docs: HashMap<String, HashMap<String, Value>> = HashMap::new();
    let mut answers: HashMap<String, HashMap<String, Value>> = HashMap::new();
    let (mut total, mut decode_mismatch, mut verdict_mismatch) = (0usize, Vec::new(), Vec::new());
    for line in reader.lines() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let language = v["language"].as_str().unwrap().to_owned();
        if !languages.contains(&language.as_str()) {
            continue;
        }
        total += 1;
        let category = v["category"].as_str().unwrap().to_owned();
        let id = v["test_id"].as_str().unwrap();
        let cat_docs = docs.entry(category.clone()).or_insert_with(|| {
            jsonl(&dir.join(format!("BFCL_v4_{category}.json")))
                .into_iter()
                .map(|e| (e["id"].as_str().unwrap().to_owned(), e["function"].clone()))
                .collect()
        });
        let functions = cat_docs[id].as_array().unwrap().clone();
        let cat_answers = answers.entry(category.clone()).or_insert_with(|| {
            jsonl(&dir.join(format!("possible_answer/BFCL_v4_{category}.json")))
                .into_iter()
                .map(|e| {
                    (
                        e["id"].as_str().unwrap().to_owned(),
                        e["ground_truth"].clone(),
                    )
                })
                .collect()
        });
        let gt = cat_answers[id].as_array().unwrap().clone();
        let expected = &v["expected"];
        let underscore = v["underscore_to_dot"].as_bool().unwrap_or(false);
        let decoded = if v["input_kind"] == "text" && language != "python" {
            let lang = if language == "java" {
                agentry_eval::bfcl::Lang::Java
            } else {
                agentry_eval::bfcl::Lang::JavaScript
            };
            let out = agentry_eval::bfcl::decode_java_js(v["model_output"].as_str().unwrap(), lang);
            if out.is_ok() != expected["decode_ok"].as_bool().unwrap() {
                decode_mismatch.push(format!(
                    "{id} {}: decode_ok {}, expected {}; {:?}",
                    v["variant"],
                    out.is_ok(),
                    expected["decode_ok"],
                    out.as_ref().err()
                ));
                continue;
            }
            match out {
                Ok(Some(call)) => {
                    let mine = Value::Array(vec![call.to_tagged()]);
                    if mine != expected["decoded"] {
                        decode_mismatch.push(format!(
                            "{id} {}: decoded {mine}, expected {}",
                            v["variant"], expected["decoded"]
                        ));
                    }
                    Some(vec![call])
                }
                _ => None,
            }
        } else if v["input_kind"] == "text" {
            let out = decode_python(v["model_output"].as_str().unwrap());
            let ok = out.is_ok();
            if ok != expected["decode_ok"].as_bool().unwrap() {
                decode_mismatch.push(format!(
                    "{id} {}: decode_ok {ok}, expected {}; {:?}",
                    v["variant"],
                    expected["decode_ok"],
                    out.as_ref().err()
                ));
                continue;
            }
            if let Ok(calls) = &out {
                let mine = Value::Array(calls.iter().map(|c| c.to_tagged()).collect());
                if mine != expected["decoded"] {
                    decode_mismatch.push(format!(
                        "{id} {}: decoded {mine}, expected {}",
                        v["variant"], expected["decoded"]
                    ));
                }
            }
            out.ok()
        } else {
            decoded_from_tagged(&v["model_output"]).ok()
        };
        let valid = match decoded {
            Some(calls) => check_python(&category, &functions, &calls, &gt, underscore).valid,
            None => false,
        };
        if valid != expected["valid"].as_bool().unwrap() {
            verdict_mismatch.push(format!(
                "{id} {} ({}): valid {valid}, expected {} ({})",
                v["variant"], v["input_kind"], expected["valid"], expected["error_type"]
            ));
        }
    }
    eprintln!(
        "{total} Python vectors: {} decoding and {} verdict disagreements",
        decode_mismatch.len(),
        verdict_mismatch.len()
    );
    for m in decode_mismatch.iter().take(15) {
        eprintln!("  decode: {m}");
    }
    for m in verdict_mismatch.iter().take(25) {
        eprintln!("  verdict: {m}");
    }
    assert!(total > at_least, "{total}");
    assert!(decode_mismatch.is_empty() && verdict_mismatch.is_empty());
}

#[test]
fn python_decode_vectors_agree() {
    let mut checked = 0;
    let mut disagreements = Vec::new();
    for v in jsonl(&data_dir().join("conformance/decode_vectors.jsonl")) {
        if v["return_format"] != "python" || v["has_tool_call_tag"] != false {
            continue;
        }
        checked += 1;
        let text = v["text"].as_str().unwrap();
        let out = decode_python(text);
        if out.is_ok() != v["decode_ok"].as_bool().unwrap() {
            disagreements.push(format!(
                "{text:?}: decode_ok {}, expected {} ({:?})",
                out.is_ok(),
                v["decode_ok"],
                out.as_ref().err()
            ));
            continue;
        }
        if let Ok(calls) = &out {
            let mine = Value::Array(calls.iter().map(|c| c.to_tagged()).collect());
            if mine != v["decoded"] {
                disagreements.push(format!(
                    "{text:?}: decoded {mine}, expected {}",
                    v["decoded"]
                ));
            }
        }
        if let Some(want) = v["irrelevance_pass"].as_bool()
            && agentry_eval::bfcl::irrelevance_pass(text) != want
        {
            disagreements.push(format!("{text:?}: irrelevance_pass should be {want}"));
        }
        if let Some(want) = v["relevance_pass"].as_bool()
            && agentry_eval::bfcl::relevance_pass(text) != want
        {
            disagreements.push(format!("{text:?}: relevance_pass should be {want}"));
        }
    }
    for d in &disagreements {
        eprintln!("  {d}");
    }
    assert!(checked >= 80, "{checked}");
    assert!(
        disagreements.is_empty(),
        "{} of {checked} decode vectors disagree",
        disagreements.len()
    );
}

#[test]
fn the_oracle_passes_every_passable_entry() {
    use agentry_eval::bfcl::{
        CATEGORIES, ORACLE_CANNOT_PASS, UNPASSABLE, check_results, load, oracle_output,
    };
    let entries = load(&data_dir(), CATEGORIES).unwrap();
    assert!(entries.len() > 3600, "{}", entries.len());
    let results: String = entries
        .iter()
        .map(|e| serde_json::json!({"id": e.id, "result": oracle_output(e)}).to_string() + "\n")
        .collect();
    let report = check_results(&entries, &results, false);
    assert!(
        report.skipped.is_empty(),
        "{:?}",
        &report.skipped[..report.skipped.len().min(5)]
    );
    assert_eq!(report.missing, 0);
    let known =
        |id: &str| UNPASSABLE.contains(&id) || ORACLE_CANNOT_PASS.iter().any(|(k, _)| *k == id);
    for v in report
        .verdicts
        .iter()
        .filter(|v| !v.valid && !known(&v.id))
        .take(10)
    {
        eprintln!("  {} {:?}: {}", v.id, v.error_type, v.reason);
    }
    let mut failed: Vec<&str> = report
        .verdicts
        .iter()
        .filter(|v| !v.valid)
        .map(|v| v.id.as_str())
        .collect();
    failed.sort_unstable();
    let mut expected: Vec<&str> = UNPASSABLE
        .iter()
        .copied()
        .chain(ORACLE_CANNOT_PASS.iter().map(|(id, _)| *id))
        .collect();
    expected.sort_unstable();
    assert_eq!(failed, expected);
}

#[test]
fn bad_results_lines_are_reported_not_fatal() {
    use agentry_eval::bfcl::{check_results, load};
    let entries = load(&data_dir(), &["simple_python"]).unwrap();
    let results = "not json\n{\"result\": \"x\"}\n{\"id\": \"simple_python_0\", \"result\": \"[calculate_triangle_area(base=10, height=5)]\"}\n{\"id\": \"simple_python_0\", \"result\": \"[]\"}\n{\"id\": \"simple_python_99999\", \"result\": \"[]\"}\n{\"id\": \"multi_turn_base_1\", \"result\": \"x\"}\n{\"id\": \"simple_python_1\", \"result\": \"I think the answer is 120\"}\n";
    let report = check_results(&entries, results, false);
    let reasons: Vec<String> = report
        .skipped
        .iter()
        .map(|(n, why)| format!("{n}: {why}"))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].starts_with("1: not JSON"));
    assert!(reasons[1].contains("no \"id\""));
    assert!(reasons[2].contains("appears again"));
    assert!(reasons[3].contains("not in the data"));
    assert!(reasons[4].contains("not checked"));
    assert_eq!(report.categories["simple_python"], (1, 2));
    assert_eq!(
        report.verdicts[1].error_type.as_deref(),
        Some("ast_decoder:decoder_failed")
    );
    assert_eq!(report.missing, entries.len() - 2);

    // Huge and hostile outputs get a verdict, not a crash or a hang.
    let huge = serde_json::json!({"id": "simple_python_2", "result": "x".repeat(10 * 1024 * 1024)})
        .to_string();
    let deep = serde_json::json!({"id": "simple_python_3", "result": format!("[f(a={}1{})]", "[".repeat(50_000), "]".repeat(50_000))}).to_string();
    let many = serde_json::json!({"id": "simple_python_4", "result": format!("[{}]", vec!["f(a=1)"; 200_000].join(", "))}).to_string();
    let t = std::time::Instant::now();
    let report = check_results(&entries, &format!("{huge}\n{deep}\n{many}\n"), false);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(report.verdicts.len(), 3);
    assert!(
        report.verdicts.iter().all(|v| !v.valid),
        "{:?}",
        report.verdicts
    );
    assert!(
        report.verdicts[1].reason.contains("nested deeper"),
        "{}",
        report.verdicts[1].reason
    );
}

#[test]
fn java_and_javascript_decode_vectors_agree() {
    use agentry_eval::bfcl::{Lang, decode_java_js};
    let mut checked = 0;
    let mut disagreements = Vec::new();
    for v in jsonl(&data_dir().join("conformance/decode_vectors.jsonl")) {
        let lang = match v["return_format"].as_str() {
            Some("java") => Lang::Java,
            Some("javascript") => Lang::JavaScript,
            _ => continue,
        };
        checked += 1;
        let text = v["text"].as_str().unwrap();
        let out = decode_java_js(text, lang);
        if out.is_ok() != v["decode_ok"].as_bool().unwrap() {
            disagreements.push(format!(
                "{text:?}: decode_ok {}, expected {} ({:?})",
                out.is_ok(),
                v["decode_ok"],
                out.as_ref().err()
            ));
            continue;
        }
        if let Ok(call) = &out {
            let mine = match call {
                Some(c) => Value::Array(vec![c.to_tagged()]),
                None => Value::Null,
            };
            let want = &v["decoded"];
            let same = mine == *want
                || (call.is_none()
                    && (want.is_null()
                        || *want == serde_json::json!({})
                        || *want == serde_json::json!([])));
            if !same {
                disagreements.push(format!("{text:?}: decoded {mine}, expected {want}"));
            }
        }
    }
    for d in &disagreements {
        eprintln!("  {d}");
    }
    assert!(checked >= 38, "{checked}");
    assert!(
        disagreements.is_empty(),
        "{} of {checked} decode vectors disagree",
        disagreements.len()
    );
}
