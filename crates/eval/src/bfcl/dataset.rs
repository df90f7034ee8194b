//! BFCL data on disk ([`load`]), checking a results file ([`check_results`]), and the oracle
//! that answers each entry with its first possible answer ([`oracle_output`]).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::Path,
};

use serde::Serialize;
use serde_json::Value;

use super::{
    Verdict, check_python, decode::decode_python, decoded_from_tagged, has_call, value::PyVal,
};

/// The single-turn categories (all of BFCL's but multi-turn and format sensitivity).
pub const CATEGORIES: &[&str] = &[
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "live_irrelevance",
    "live_relevance",
];

/// Entries the prompting-mode oracle cannot pass, with why (spec §11): besides the
/// unpassable ones, Java `HashMap` arguments (the prompting decoder drops the map's body) and
/// `String[]` arguments whose elements only pass unquoted but do not parse unquoted.
pub const ORACLE_CANNOT_PASS: &[(&str, &str)] = &[
    (
        "simple_java_1",
        "HashMap argument: only the native (FC) path keeps the map's entries",
    ),
    (
        "simple_java_67",
        "HashMap argument: only the native (FC) path keeps the map's entries",
    ),
    (
        "simple_java_68",
        "HashMap argument: only the native (FC) path keeps the map's entries",
    ),
    (
        "simple_java_35",
        "String[] elements pass only unquoted, and unquoted they do not parse",
    ),
    (
        "simple_java_85",
        "String[] elements pass only unquoted, and unquoted they do not parse",
    ),
];

/// Entries whose ground truth no model can meet (spec §11); the oracle fails them.
pub const UNPASSABLE: &[&str] = &[
    "live_simple_106-63-0",
    "live_simple_112-68-0",
    "live_multiple_862-181-3",
    "live_multiple_964-207-0",
    "simple_java_36",
    "simple_java_65",
];

/// Why data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file is missing or unreadable.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// A line is not what the file should hold.
    #[error("{path}, line {line}: {why}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// A category pattern that names none of [`CATEGORIES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown or unsupported category `{pattern}`; supported: {supported} (or all, live_*); multi-turn and format sensitivity are not supported yet",
    supported = CATEGORIES.join(", ")
)]
pub struct UnknownCategory {
    /// The pattern as given.
    pub pattern: String,
}

/// One single-turn entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its id (`simple_python_0`, `live_multiple_12-4-3`).
    pub id: String,
    /// Its category (`simple_python`, `live_multiple`).
    pub category: String,
    /// The function docs.
    pub functions: Vec<Value>,
    /// The chat messages of the (single) turn.
    pub question: Vec<Value>,
    /// The ground truth (none for the relevance categories).
    pub ground_truth: Option<Vec<Value>>,
}

/// The categories `patterns` name, in the order named: each a category, a prefix ending in
/// `*` (`live_*`), or `all` (as is an empty list). `Err` names a pattern that matches none.
pub fn select_categories(patterns: &[String]) -> Result<Vec<&'static str>, UnknownCategory> {
    if patterns.is_empty() || patterns.iter().any(|c| c == "all") {
        return Ok(CATEGORIES.to_vec());
    }
    let mut out = Vec::new();
    for c in patterns {
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
            return Err(UnknownCategory { pattern: c.clone() });
        }
        out.extend(matched);
    }
    out.dedup();
    Ok(out)
}

/// The category of an id: the id without its trailing `_N` or `_N-N-N`.
pub fn category_of(id: &str) -> &str {
    match id.rfind('_') {
        Some(i)
            if id[i + 1..].chars().all(|c| c.is_ascii_digit() || c == '-') && i + 1 < id.len() =>
        {
            &id[..i]
        }
        _ => id,
    }
}

fn read_jsonl(path: &Path) -> Result<Vec<Value>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| DataError::Line {
                path: path.display().to_string(),
                line: i + 1,
                why: format!("not JSON: {e}"),
            })
        })
        .collect()
}

/// Reads the entries of `categories` from the BFCL data directory, pairing question and
/// answer lines by position as upstream does, and refusing files whose ids do not match.
pub fn load(dir: &Path, categories: &[&str]) -> Result<Vec<Entry>, DataError> {
    let mut out = Vec::new();
    for &category in categories {
        let qpath = dir.join(format!("BFCL_v4_{category}.json"));
        let questions = read_jsonl(&qpath)?;
        let apath = dir
            .join("possible_answer")
            .join(format!("BFCL_v4_{category}.json"));
        let answers = if category.contains("relevance") {
            None
        } else {
            Some(read_jsonl(&apath)?)
        };
        if let Some(a) = &answers
            && a.len() != questions.len()
        {
            return Err(DataError::File {
                path: apath.display().to_string(),
                why: format!(
                    "{} answers for {} questions in {}",
                    a.len(),
                    questions.len(),
                    qpath.display()
                ),
            });
        }
        for (i, q) in questions.iter().enumerate() {
            let id = q["id"].as_str().ok_or_else(|| DataError::Line {
                path: qpath.display().to_string(),
                line: i + 1,
                why: "no \"id\"".into(),
            })?;
            let ground_truth = match &answers {
                Some(a) => {
                    if a[i]["id"].as_str() != Some(id) {
                        return Err(DataError::Line {
                            path: apath.display().to_string(),
                            line: i + 1,
                            why: format!("id {} does not match the question's {id}", a[i]["id"]),
                        });
                    }
                    Some(a[i]["ground_truth"].as_array().cloned().unwrap_or_default())
                }
                None => None,
            };
            out.push(Entry {
                id: id.to_owned(),
                category: category.to_owned(),
                functions: q["function"].as_array().cloned().unwrap_or_default(),
                question: q
                    .pointer("/question/0")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                ground_truth,
            });
        }
    }
    Ok(out)
}

/// Checks one entry's model result: raw text (decoded as Python calls) or decoded calls.
pub fn check_entry(entry: &Entry, result: &Value, underscore_to_dot: bool) -> Verdict {
    let lang = if entry.category.contains("javascript") {
        Some(super::Lang::JavaScript)
    } else if entry.category.contains("java") {
        Some(super::Lang::Java)
    } else {
        None
    };
    let decoded = match (result, lang) {
        (Value::String(text), None) => decode_python(text),
        (Value::String(text), Some(l)) => match super::decode_java_js(text, l) {
            Ok(Some(call)) => Ok(vec![call]),
            Ok(None) => {
                return Verdict {
                    valid: false,
                    error_type: Some("ast_decoder:decoder_wrong_output_format".into()),
                    reason: "the output holds no call".into(),
                };
            }
            Err(e) => Err(e),
        },
        (other, _) => decoded_from_tagged(other),
    };
    if entry.category.contains("irrelevance") {
        return if has_call(&decoded) {
            Verdict {
                valid: false,
                error_type: Some("irrelevance_error:decoder_success".into()),
                reason: "the model called a function".into(),
            }
        } else {
            Verdict {
                valid: true,
                error_type: None,
                reason: String::new(),
            }
        };
    }
    if entry.category.contains("relevance") {
        return if has_call(&decoded) {
            Verdict {
                valid: true,
                error_type: None,
                reason: String::new(),
            }
        } else {
            Verdict {
                valid: false,
                error_type: Some("relevance_error:decoder_failed".into()),
                reason: "the model made no call".into(),
            }
        };
    }
    let calls = match decoded {
        Ok(c) => c,
        Err(why) => {
            return Verdict {
                valid: false,
                error_type: Some("ast_decoder:decoder_failed".into()),
                reason: why.to_string(),
            };
        }
    };
    let gt = entry.ground_truth.as_deref().unwrap_or(&[]);
    check_python(
        &entry.category,
        &entry.functions,
        &calls,
        gt,
        underscore_to_dot,
    )
}

/// Python source for a value.
fn py_literal(v: &PyVal) -> String {
    match v {
        PyVal::None => "None".into(),
        PyVal::Bool(true) => "True".into(),
        PyVal::Bool(false) => "False".into(),
        PyVal::Int(i) => i.to_string(),
        PyVal::Float(f) => agentry_parse::python::PyExpr::Float(*f).render(),
        PyVal::Complex(re, im) => format!("complex({re}, {im})"),
        PyVal::Str(s) => agentry_parse::python::PyExpr::Str(s.clone()).render(),
        PyVal::Bytes(b) => agentry_parse::python::PyExpr::Bytes(b.clone()).render(),
        PyVal::List(items) => format!(
            "[{}]",
            items.iter().map(py_literal).collect::<Vec<_>>().join(", ")
        ),
        PyVal::Tuple(items) if items.len() == 1 => format!("({},)", py_literal(&items[0])),
        PyVal::Tuple(items) => format!(
            "({})",
            items.iter().map(py_literal).collect::<Vec<_>>().join(", ")
        ),
        PyVal::Dict(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", py_literal(k), py_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A candidate dict of the ground truth (`{key: [allowed…]}`) as a concrete dict: each key's
/// first allowed value that is not `""`, optional keys left out.
fn first_dict(v: &PyVal) -> PyVal {
    match v {
        PyVal::Dict(entries) => PyVal::Dict(
            entries
                .iter()
                .filter_map(|(k, allowed)| match allowed {
                    PyVal::List(options) => options
                        .iter()
                        .find(|o| o.as_str() != Some(""))
                        .map(|o| (k.clone(), o.clone())),
                    other => Some((k.clone(), other.clone())),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The oracle's answer: the entry's first possible answer as Python call syntax (no call
/// for irrelevance, a bare call of the first function for relevance).
pub fn oracle_output(entry: &Entry) -> String {
    if entry.category.contains("java") {
        return oracle_java_js(entry);
    }
    if entry.category.contains("irrelevance") {
        return "I cannot answer this with the functions I have.".into();
    }
    let Some(gt) = &entry.ground_truth else {
        let name = entry
            .functions
            .first()
            .and_then(|f| f["name"].as_str())
            .unwrap_or("f");
        return format!("[{name}()]");
    };
    let type_of = |fname: &str, param: &str| -> String {
        entry
            .functions
            .iter()
            .find(|f| f["name"].as_str() == Some(fname))
            .and_then(|f| f.pointer(&format!("/parameters/properties/{param}")))
            .map(|p| {
                (
                    p["type"].as_str().unwrap_or("").to_owned(),
                    p.pointer("/items/type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .map(|(t, items)| format!("{t}/{items}"))
            .unwrap_or_default()
    };
    let calls: Vec<String> = gt
        .iter()
        .filter_map(|call| call.as_object()?.iter().next())
        .map(|(name, params)| {
            let args: Vec<String> = params
                .as_object()
                .map(|p| {
                    p.iter()
                        .filter_map(|(param, allowed)| {
                            let doc = entry
                                .functions
                                .iter()
                                .find(|f| f["name"].as_str() == Some(name.as_str()));
                            // A param the doc does not define passes only when left out (spec §11).
                            doc.and_then(|d| {
                                d.pointer(&format!("/parameters/properties/{param}"))
                            })?;
                            let required = doc
                                .and_then(|d| d.pointer("/parameters/required"))
                                .and_then(Value::as_array)
                                .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(param)));
                            let options = allowed.as_array()?;
                            let Some(first) = options.iter().find(|a| a.as_str() != Some(""))
                            else {
                                // Only "" is allowed: omit it, unless the doc requires it ("" then passes).
                                return required.then(|| format!("{param}=''"));
                            };
                            let value = PyVal::from_tagged(first);
                            let value = match type_of(name, param).as_str() {
                                "dict/" => first_dict(&value),
                                t if t.ends_with("/dict") => match value {
                                    PyVal::List(items) => {
                                        PyVal::List(items.iter().map(first_dict).collect())
                                    }
                                    other => other,
                                },
                                _ => value,
                            };
                            Some(format!("{param}={}", py_literal(&value)))
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("{name}({})", args.join(", "))
        })
        .collect();
    format!("[{}]", calls.join(", "))
}

fn is_identifier_like(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
        && !matches!(s, "true" | "false" | "null")
}

fn java_type_name(t: &str) -> &str {
    match t {
        "integer" => "int",
        "any" => "Object",
        other => other,
    }
}

fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// A Java value as source code that BFCL's decoder and converter turn back into `v`.
fn java_source(v: &PyVal, ty: &str, items: Option<&str>) -> String {
    match (v, ty) {
        // Names, field accesses and constructor calls are written as code.
        (PyVal::Str(s), _) if is_identifier_like(s) || s.starts_with("new ") => s.clone(),
        (PyVal::Str(s), _) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        (PyVal::Bool(b), _) => b.to_string(),
        (PyVal::Int(i), "long") => format!("{i}L"),
        (PyVal::Int(i), "float") => format!("{i}.0f"),
        (PyVal::Int(i), "double") => format!("{i}.0"),
        (PyVal::Int(i), _) => i.to_string(),
        (PyVal::Float(f), "float") => format!("{}f", float_text(*f)),
        (PyVal::Float(f), _) => float_text(*f),
        (PyVal::List(xs), "ArrayList") => {
            let items_ty = items.unwrap_or("any");
            let parts: Vec<String> = xs
                .iter()
                .map(|x| match (x, items_ty) {
                    // Elements of String/char lists lose their first and last character.
                    (PyVal::Str(s), "String" | "char") => format!("\"{s}\""),
                    (x, t) => java_source(x, t, None),
                })
                .collect();
            format!("new ArrayList<>(Arrays.asList({}))", parts.join(", "))
        }
        (PyVal::List(xs), _) => {
            let items_ty = items.unwrap_or("any");
            // Array elements are converted unquoted (quoted String elements never match, §13).
            let parts: Vec<String> = xs
                .iter()
                .map(|x| match x {
                    PyVal::Str(s) => s.clone(),
                    other => java_source(other, items_ty, None),
                })
                .collect();
            format!("new {}[]{{{}}}", java_type_name(items_ty), parts.join(", "))
        }
        (PyVal::Dict(_), _) => "new HashMap<String, Object>()".into(),
        (PyVal::None, _) => "null".into(),
        (other, _) => py_literal(other),
    }
}

/// A JavaScript value as source code that BFCL's decoder and converter turn back into `v`.
fn js_source(v: &PyVal, ty: &str) -> String {
    match (v, ty) {
        (PyVal::Str(s), "String") => format!("\"{s}\""),
        (PyVal::Str(s), _) if is_identifier_like(s) => s.clone(),
        (PyVal::Str(s), _) => format!("\"{s}\""),
        (PyVal::Bool(b), _) => b.to_string(),
        (PyVal::Int(i), "Bigint") => format!("{i}n"),
        (PyVal::Int(i), _) => i.to_string(),
        (PyVal::Float(f), _) => float_text(*f),
        (PyVal::List(xs), _) => format!(
            "[{}]",
            xs.iter()
                .map(|x| js_source(x, "String"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (PyVal::Dict(entries), _) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, x)| format!("{}: {}", k.as_str().unwrap_or(""), js_source(x, "String")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (PyVal::None, _) => "null".into(),
        (other, _) => py_literal(other),
    }
}

/// The oracle for Java and JavaScript: the first possible answer as a call in that syntax.
fn oracle_java_js(entry: &Entry) -> String {
    let js = entry.category.contains("javascript");
    let Some(gt) = &entry.ground_truth else {
        return String::new();
    };
    let calls: Vec<String> = gt
        .iter()
        .filter_map(|call| call.as_object()?.iter().next())
        .map(|(name, params)| {
            let doc = entry
                .functions
                .iter()
                .find(|f| f["name"].as_str() == Some(name.as_str()));
            let args: Vec<String> = params
                .as_object()
                .map(|p| {
                    p.iter()
                        .filter_map(|(param, allowed)| {
                            let prop = doc.and_then(|d| {
                                d.pointer(&format!("/parameters/properties/{param}"))
                            })?;
                            let ty = prop["type"].as_str().unwrap_or("any");
                            let items = prop.pointer("/items/type").and_then(Value::as_str);
                            let first = allowed
                                .as_array()?
                                .iter()
                                .find(|a| a.as_str() != Some(""))?;
                            let value = PyVal::from_tagged(first);
                            let value = if matches!(ty, "dict" | "HashMap") {
                                first_dict(&value)
                            } else {
                                value
                            };
                            let source = if js {
                                js_source(&value, ty)
                            } else {
                                java_source(&value, ty, items)
                            };
                            Some(format!("{param}={source}"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("{name}({})", args.join(", "))
        })
        .collect();
    format!("[{}]", calls.join(", "))
}

/// One entry's verdict, as written to the verdicts file.
#[derive(Debug, Clone, Serialize)]
pub struct EntryVerdict {
    /// The entry.
    pub id: String,
    /// Whether it passed.
    pub valid: bool,
    /// The first failure's label.
    pub error_type: Option<String>,
    /// Why it failed.
    pub reason: String,
}

/// The outcome of checking a results file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Per category: `(passed, checked)`.
    pub categories: BTreeMap<String, (usize, usize)>,
    /// Every checked entry's verdict, in file order.
    pub verdicts: Vec<EntryVerdict>,
    /// Lines not checked, with their line number and why.
    pub skipped: Vec<(usize, String)>,
    /// Entries of the loaded categories that had no result.
    pub missing: usize,
}

/// Checks a results file (JSON Lines of `{"id", "result"}`) against the loaded entries.
pub fn check_results(entries: &[Entry], results: &str, underscore_to_dot: bool) -> CheckReport {
    let by_id: HashMap<&str, &Entry> = entries.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut report = CheckReport::default();
    for (i, line) in results.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                report.skipped.push((n, format!("not JSON: {e}")));
                continue;
            }
        };
        let Some(id) = v.get("id").and_then(Value::as_str) else {
            report.skipped.push((n, "no \"id\"".into()));
            continue;
        };
        let Some(entry) = by_id.get(id) else {
            let why = if CATEGORIES.contains(&category_of(id)) {
                format!("`{id}` is not in the data")
            } else {
                format!(
                    "`{id}`: category `{}` is not checked (only Python single-turn categories are)",
                    category_of(id)
                )
            };
            report.skipped.push((n, why));
            continue;
        };
        if !seen.insert(id.to_owned()) {
            report
                .skipped
                .push((n, format!("`{id}` appears again; the first result counts")));
            continue;
        }
        let Some(result) = v.get("result") else {
            report
                .skipped
                .push((n, format!("`{id}` has no \"result\"")));
            continue;
        };
        let verdict = check_entry(entry, result, underscore_to_dot);
        let slot = report.categories.entry(entry.category.clone()).or_default();
        slot.1 += 1;
        slot.0 += usize::from(verdict.valid);
        report.verdicts.push(EntryVerdict {
            id: id.to_owned(),
            valid: verdict.valid,
            error_type: verdict.error_type,
            reason: verdict.reason,
        });
    }
    report.missing = entries.iter().filter(|e| !seen.contains(&e.id)).count();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_from_ids() {
        assert_eq!(category_of("simple_python_12"), "simple_python");
        assert_eq!(category_of("live_multiple_12-4-3"), "live_multiple");
        assert_eq!(category_of("parallel_multiple_3"), "parallel_multiple");
        assert_eq!(category_of("irrelevance"), "irrelevance");
    }
}
