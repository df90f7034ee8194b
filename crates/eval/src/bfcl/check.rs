//! BFCL's AST checker for Python categories (spec §2, §4–§7): dispatch by category, the
//! per-call check, the type check and the value checks, quirks included.

use serde_json::Value;

use super::{
    decode::DecodedCall,
    javajs::{Lang, java_convert, js_convert},
    value::{PyType, PyVal, standardize},
};

/// The language of a category, by the substring rule of spec §1.3.
fn language(category: &str) -> Option<Lang> {
    if category.contains("javascript") {
        Some(Lang::JavaScript)
    } else if category.contains("java") {
        Some(Lang::Java)
    } else {
        None
    }
}

/// The Python type a Java or JavaScript doc type maps to (spec §6.1).
fn map_type_lang(t: &str, lang: Lang) -> Option<PyType> {
    Some(match (lang, t) {
        (Lang::Java, "byte" | "short" | "integer" | "long") => PyType::Int,
        (Lang::Java, "float" | "double") => PyType::Float,
        (Lang::Java, "boolean") => PyType::Bool,
        (Lang::Java, "char" | "String" | "any") => PyType::Str,
        (Lang::Java, "Array" | "ArrayList" | "Queue" | "Stack") => PyType::List,
        (Lang::Java, "HashMap" | "Hashtable") => PyType::Dict,
        (Lang::JavaScript, "String" | "any") => PyType::Str,
        (Lang::JavaScript, "integer" | "Bigint") => PyType::Int,
        (Lang::JavaScript, "float") => PyType::Float,
        (Lang::JavaScript, "Boolean") => PyType::Bool,
        (Lang::JavaScript, "dict") => PyType::Dict,
        (Lang::JavaScript, "array") => PyType::List,
        _ => return None,
    })
}

/// The checker's verdict on one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the entry passes.
    pub valid: bool,
    /// The upstream-style label of the first failure.
    pub error_type: Option<String>,
    /// Why it failed, in words.
    pub reason: String,
}

impl Verdict {
    fn pass() -> Self {
        Self {
            valid: true,
            error_type: None,
            reason: String::new(),
        }
    }

    fn fail(error_type: &str, reason: impl Into<String>) -> Self {
        Self {
            valid: false,
            error_type: Some(error_type.to_owned()),
            reason: reason.into(),
        }
    }
}

/// A ground-truth call: the function name and, per param, its allowed values.
struct Expected {
    name: String,
    params: Vec<(String, Vec<PyVal>)>,
}

fn expected(gt: &Value) -> Option<Expected> {
    let (name, params) = gt.as_object()?.iter().next()?;
    let params = params
        .as_object()?
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_array()
                    .map(|a| a.iter().map(PyVal::from_tagged).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    Some(Expected {
        name: name.clone(),
        params,
    })
}

/// The Python type a doc type string maps to (spec §6.1).
fn map_type(t: &str) -> Option<PyType> {
    Some(match t {
        "string" | "any" => PyType::Str,
        "integer" => PyType::Int,
        "float" => PyType::Float,
        "boolean" => PyType::Bool,
        "array" | "tuple" => PyType::List,
        "dict" => PyType::Dict,
        _ => return None,
    })
}

/// Checks decoded calls against an entry (spec §4), for a Python category.
pub fn check_python(
    category: &str,
    docs: &[Value],
    decoded: &[DecodedCall],
    ground_truth: &[Value],
    underscore_to_dot: bool,
) -> Verdict {
    let gts: Vec<Expected> = match ground_truth
        .iter()
        .map(expected)
        .collect::<Option<Vec<_>>>()
    {
        Some(g) => g,
        None => {
            return Verdict::fail(
                "data_error",
                "the ground truth is not a list of {name: {param: [allowed]}}",
            );
        }
    };
    let lang = language(category);
    let doc_named = |name: &str| {
        docs.iter()
            .find(|d| d.get("name").and_then(Value::as_str) == Some(name))
    };
    if category.contains("parallel") {
        if decoded.len() != gts.len() {
            return Verdict::fail(
                "parallel_function_checker_no_order:wrong_count",
                format!("expected {} calls, got {}", gts.len(), decoded.len()),
            );
        }
        let mut used = vec![false; decoded.len()];
        for gt in &gts {
            let Some(doc) = doc_named(&gt.name) else {
                return Verdict::fail("data_error", format!("no function doc named `{}`", gt.name));
            };
            let found = (0..decoded.len()).find(|&j| {
                !used[j] && check_call(doc, &decoded[j], gt, underscore_to_dot, lang).valid
            });
            match found {
                Some(j) => used[j] = true,
                None => {
                    return Verdict::fail(
                        "parallel_function_checker_no_order:cannot_find_match",
                        format!("no model call matches the expected call of `{}`", gt.name),
                    );
                }
            }
        }
        return Verdict::pass();
    }
    if category.contains("multiple") {
        if decoded.len() != gts.len() || gts.is_empty() {
            return Verdict::fail(
                "multiple_function_checker:wrong_count",
                format!("expected {} call(s), got {}", gts.len(), decoded.len()),
            );
        }
        let Some(doc) = doc_named(&gts[0].name) else {
            return Verdict::fail(
                "data_error",
                format!("no function doc named `{}`", gts[0].name),
            );
        };
        return check_call(doc, &decoded[0], &gts[0], underscore_to_dot, lang);
    }
    if decoded.len() != 1 {
        return Verdict::fail(
            "simple_function_checker:wrong_count",
            format!("expected 1 call, got {}", decoded.len()),
        );
    }
    match (docs.first(), gts.first()) {
        (Some(doc), Some(gt)) => check_call(doc, &decoded[0], gt, underscore_to_dot, lang),
        _ => Verdict::fail(
            "data_error",
            "the entry has no function doc or no ground truth",
        ),
    }
}

/// The per-call check (spec §5).
fn check_call(
    doc: &Value,
    call: &DecodedCall,
    gt: &Expected,
    underscore_to_dot: bool,
    lang: Option<Lang>,
) -> Verdict {
    let mut fname = doc
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if underscore_to_dot && fname.contains('.') {
        fname = fname.replace('.', "_");
    }
    if call.name != fname {
        return Verdict::fail(
            "simple_function_checker:wrong_func_name",
            format!("expected `{fname}`, got `{}`", call.name),
        );
    }
    let params = doc.get("parameters").unwrap_or(&Value::Null);
    let properties = params.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = params
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let has = |p: &str| call.args.iter().any(|(k, _)| k.as_deref() == Some(p));
    if let Some(missing) = required.iter().find(|r| !has(r)) {
        return Verdict::fail(
            "simple_function_checker:missing_required",
            format!("missing required parameter `{missing}`"),
        );
    }
    for (param, value) in &call.args {
        let Some(param) = param else {
            return Verdict::fail(
                "simple_function_checker:unexpected_param",
                "unexpected `**` argument",
            );
        };
        let prop = properties.and_then(|p| p.get(param));
        let allowed = gt.params.iter().find(|(k, _)| k == param).map(|(_, a)| a);
        let (Some(prop), Some(allowed)) = (prop, allowed) else {
            return Verdict::fail(
                "simple_function_checker:unexpected_param",
                format!("unexpected parameter `{param}`"),
            );
        };
        let t = prop.get("type").and_then(Value::as_str).unwrap_or("");
        let items_type = prop.pointer("/items/type").and_then(Value::as_str);
        let mut value = value.clone();
        let (e, n) = match lang {
            None => {
                if t == "tuple"
                    && let PyVal::Tuple(items) = value
                {
                    value = PyVal::List(items);
                }
                if t == "float"
                    && let PyVal::Int(i) = value
                {
                    value = PyVal::Float(i as f64);
                }
                let n = if t == "array" || t == "tuple" {
                    items_type.and_then(map_type)
                } else {
                    None
                };
                (map_type(t), n)
            }
            Some(l) => {
                let Some(source) = value.as_str() else {
                    let label = if l == Lang::Java {
                        "type_error:java"
                    } else {
                        "type_error:js"
                    };
                    return Verdict::fail(label, format!("`{param}` must be a source-code string"));
                };
                let nested = match l {
                    Lang::Java => matches!(t, "Array" | "ArrayList"),
                    Lang::JavaScript => t == "array",
                };
                let items_for = if nested { items_type } else { None };
                value = match l {
                    Lang::Java => java_convert(source, t, items_for),
                    Lang::JavaScript => js_convert(source, t, items_for),
                };
                (
                    map_type_lang(t, l),
                    items_for.and_then(|it| map_type_lang(it, l)),
                )
            }
        };
        let Some(e) = e else {
            return Verdict::fail("data_error", format!("unknown type `{t}` for `{param}`"));
        };
        let is_variable = match type_check(&value, allowed, e, n) {
            Some(v) => v,
            None => {
                let label = if n.is_some() && value.ty() == e {
                    "type_error:nested"
                } else {
                    "type_error:simple"
                };
                return Verdict::fail(
                    label,
                    format!(
                        "`{param}` has the wrong type ({:?}, expected {:?})",
                        value.ty(),
                        e
                    ),
                );
            }
        };
        let ok = if is_variable {
            value.is_in(allowed)
        } else if e == PyType::Dict {
            dict_check(&value, allowed)
        } else if e == PyType::List && n == Some(PyType::Dict) {
            list_of_dict_check(&value, allowed)
        } else if e == PyType::Str {
            string_check(&value, allowed)
        } else if e == PyType::List {
            list_check(&value, allowed)
        } else {
            value.is_in(allowed)
        };
        if !ok {
            let label = match e {
                PyType::Str => "value_error:string",
                PyType::List => "value_error:list/tuple",
                PyType::Dict => "value_error:dict_value",
                _ => "value_error:others",
            };
            return Verdict::fail(label, format!("`{param}` has a value that is not allowed"));
        }
    }
    for (param, allowed) in &gt.params {
        if !has(param) && !allowed.iter().any(|a| a.as_str() == Some("")) {
            return Verdict::fail(
                "simple_function_checker:missing_optional",
                format!("missing parameter `{param}`"),
            );
        }
    }
    Verdict::pass()
}

/// Spec §6.2: `Some(is_variable)` when the type is acceptable.
fn type_check(value: &PyVal, allowed: &[PyVal], e: PyType, n: Option<PyType>) -> Option<bool> {
    let pa_type = allowed
        .iter()
        .find(|a| a.as_str() != Some(""))
        .map(PyVal::ty);
    let is_variable = pa_type.is_some_and(|p| p != e);
    if value.ty() == e {
        let Some(n) = n else { return Some(is_variable) };
        for cand in allowed {
            let PyVal::List(cand_items) = cand else {
                return Some(is_variable);
            };
            let items: &[PyVal] = match value {
                PyVal::List(v) | PyVal::Tuple(v) => v,
                _ => &[],
            };
            if items
                .iter()
                .all(|item| type_check(item, cand_items, n, None).is_some())
            {
                return Some(is_variable);
            }
        }
        return None;
    }
    if pa_type.is_some_and(|p| p == value.ty()) {
        return Some(true);
    }
    None
}

fn std_val(v: &PyVal) -> PyVal {
    match v {
        PyVal::Str(s) => PyVal::Str(standardize(s)),
        other => other.clone(),
    }
}

/// Spec §7.1.
fn string_check(value: &PyVal, allowed: &[PyVal]) -> bool {
    let Some(v) = value.as_str() else {
        return false;
    };
    let v = standardize(v);
    allowed
        .iter()
        .filter_map(PyVal::as_str)
        .any(|c| standardize(c) == v)
}

/// A candidate iterated as a sequence: a list's elements, a string's characters.
fn as_sequence(c: &PyVal) -> Option<Vec<PyVal>> {
    match c {
        PyVal::List(items) | PyVal::Tuple(items) => Some(items.clone()),
        PyVal::Str(s) => Some(s.chars().map(|ch| PyVal::Str(ch.to_string())).collect()),
        PyVal::Dict(entries) => Some(entries.iter().map(|(k, _)| k.clone()).collect()),
        _ => None,
    }
}

/// Spec §7.2.
fn list_check(value: &PyVal, allowed: &[PyVal]) -> bool {
    let items: Vec<PyVal> = match value {
        PyVal::List(v) | PyVal::Tuple(v) => v.iter().map(std_val).collect(),
        _ => return false,
    };
    allowed.iter().any(|c| {
        let cand: Vec<PyVal> = match c {
            PyVal::Str(s) => standardize(s)
                .chars()
                .map(|ch| PyVal::Str(ch.to_string()))
                .collect(),
            other => match as_sequence(other) {
                Some(seq) => seq.iter().map(std_val).collect(),
                None => return false,
            },
        };
        cand.len() == items.len() && cand.iter().zip(&items).all(|(a, b)| a.py_eq(b))
    })
}

/// Spec §7.3.
fn dict_check(value: &PyVal, allowed: &[PyVal]) -> bool {
    let PyVal::Dict(model) = value else {
        return false;
    };
    allowed.iter().filter(|c| c.as_str() != Some("")).any(|c| {
        let PyVal::Dict(cand) = c else { return false };
        let lookup = |k: &PyVal| cand.iter().find(|(ck, _)| ck.py_eq(k)).map(|(_, v)| v);
        for (k, v) in model {
            let Some(options) = lookup(k) else {
                return false;
            };
            let v = std_val(v);
            let Some(seq) = as_sequence(options) else {
                return false;
            };
            let seq: Vec<PyVal> = seq.iter().map(std_val).collect();
            if !v.is_in(&seq) {
                return false;
            }
        }
        for (k, options) in cand {
            if model.iter().any(|(mk, _)| mk.py_eq(k)) {
                continue;
            }
            let optional = match options {
                PyVal::Str(_) => true,
                other => {
                    as_sequence(other).is_some_and(|seq| seq.iter().any(|x| x.as_str() == Some("")))
                }
            };
            if !optional {
                return false;
            }
        }
        true
    })
}

/// Spec §7.4.
fn list_of_dict_check(value: &PyVal, allowed: &[PyVal]) -> bool {
    let items: &[PyVal] = match value {
        PyVal::List(v) | PyVal::Tuple(v) => v,
        _ => return false,
    };
    allowed.iter().any(|c| {
        let Some(cand) = as_sequence(c) else {
            return false;
        };
        cand.len() == items.len()
            && items
                .iter()
                .zip(&cand)
                .all(|(m, cd)| dict_check(m, std::slice::from_ref(cd)))
    })
}
