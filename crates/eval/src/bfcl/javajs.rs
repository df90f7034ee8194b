//! Java and JavaScript: decoding prompting output with tree-sitter (spec §3.3, the same
//! grammar versions as upstream so error recovery agrees) and converting source-code strings
//! to values by the doc type (spec §7.7, §7.8).

use regex::Regex;
use std::sync::OnceLock;
use tree_sitter::{Node, Parser};

use super::{
    decode::{DecodeError, DecodedCall},
    value::PyVal,
};

/// Which of the two languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Java 8.
    Java,
    /// JavaScript.
    JavaScript,
}

fn has_error(node: Node<'_>) -> bool {
    if node.kind() == "ERROR" {
        return true;
    }
    let mut cursor = node.walk();
    node.children(&mut cursor).any(has_error)
}

fn text<'a>(node: Node<'_>, src: &'a str) -> &'a str {
    &src[node.byte_range()]
}

/// The concatenation of a node's leaf tokens with no whitespace.
fn tokens(node: Node<'_>, src: &str) -> String {
    if node.child_count() == 0 {
        return text(node, src).to_owned();
    }
    let mut out = String::new();
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        out.push_str(&tokens(child, src));
    }
    out
}

/// Decodes prompting output in `lang` (spec §3.3). `Ok(None)`: decoded, but to no call
/// (which then fails the shape check).
pub fn decode(raw: &str, lang: Lang) -> Result<Option<DecodedCall>, DecodeError> {
    let owned = super::decode::bracketed(raw);
    // Drop the first and last characters (the brackets).
    let mut chars = owned.chars();
    chars.next();
    chars.next_back();
    let src = chars.as_str();
    let mut parser = Parser::new();
    let language: tree_sitter::Language = match lang {
        Lang::Java => tree_sitter_java::LANGUAGE.into(),
        Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
    };
    parser
        .set_language(&language)
        .map_err(DecodeError::TreeSitter)?;
    let tree = parser.parse(src, None).ok_or(DecodeError::NoParse)?;
    let root = tree.root_node();
    if has_error(root) {
        return Err(DecodeError::Syntax);
    }
    match lang {
        Lang::Java => java_call(root, src),
        Lang::JavaScript => js_call(root, src),
    }
}

fn first_of_kind<'t>(node: Node<'t>, kind: &str) -> Option<Node<'t>> {
    if node.kind() == kind {
        return Some(node);
    }
    let mut cursor = node.walk();
    let children: Vec<Node<'t>> = node.children(&mut cursor).collect();
    children.into_iter().find_map(|c| first_of_kind(c, kind))
}

fn java_call(root: Node<'_>, src: &str) -> Result<Option<DecodedCall>, DecodeError> {
    let Some(inv) = first_of_kind(root, "method_invocation") else {
        return Ok(None);
    };
    let name_node = inv.child_by_field_name("name").ok_or(DecodeError::NoName)?;
    let name = match inv.child_by_field_name("object") {
        Some(obj) => format!("{}.{}", text(obj, src), text(name_node, src)),
        None => text(name_node, src).to_owned(),
    };
    let mut args: Vec<(Option<String>, PyVal)> = Vec::new();
    if let Some(list) = inv.child_by_field_name("arguments") {
        let mut cursor = list.walk();
        for child in list.named_children(&mut cursor) {
            match child.kind() {
                "assignment_expression" => {
                    let (Some(left), Some(right)) = (
                        child.child_by_field_name("left"),
                        child.child_by_field_name("right"),
                    ) else {
                        continue;
                    };
                    let key = text(left, src).to_owned();
                    if args.iter().any(|(k, _)| k.as_deref() == Some(key.as_str())) {
                        return Err(DecodeError::RepeatedArgument(key));
                    }
                    args.push((Some(key), PyVal::Str(java_value(right, src))));
                }
                "identifier" | "class_literal" | "set" => {
                    args.push((None, PyVal::Str(text(child, src).to_owned())))
                }
                _ => {}
            }
        }
    }
    Ok(Some(DecodedCall { name, args }))
}

fn java_value(node: Node<'_>, src: &str) -> String {
    java_text(node, src, true)
}

/// The text of a Java value node: a top-level string or char literal without its quotes;
/// names, field accesses, class literals and calls as written; array and object creations
/// rebuilt (elements joined by `,`, constructor arguments by `, `); anything else as its
/// tokens with no whitespace.
fn java_text(node: Node<'_>, src: &str, top: bool) -> String {
    match node.kind() {
        "string_literal" | "character_literal" if top => {
            let t = text(node, src);
            t.get(1..t.len().saturating_sub(1)).unwrap_or("").to_owned()
        }
        "identifier" | "field_access" | "class_literal" | "method_invocation" => {
            text(node, src).to_owned()
        }
        "array_creation_expression" => {
            let ty = node
                .child_by_field_name("type")
                .map(|t| tokens(t, src))
                .unwrap_or_default();
            let init = node
                .child_by_field_name("value")
                .map(|v| {
                    let mut cursor = v.walk();
                    let items: Vec<String> = v
                        .named_children(&mut cursor)
                        .map(|c| java_text(c, src, false))
                        .collect();
                    format!("{{{}}}", items.join(","))
                })
                .unwrap_or_default();
            format!("new {ty}[]{init}")
        }
        "object_creation_expression" => {
            let ty = node
                .child_by_field_name("type")
                .map(|t| tokens(t, src))
                .unwrap_or_default();
            let args = node
                .child_by_field_name("arguments")
                .map(|a| {
                    let mut cursor = a.walk();
                    a.named_children(&mut cursor)
                        .map(|c| java_text(c, src, false))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("new {ty}({args})")
        }
        _ => tokens(node, src),
    }
}

fn js_call(root: Node<'_>, src: &str) -> Result<Option<DecodedCall>, DecodeError> {
    let mut cursor = root.walk();
    let statements: Vec<Node<'_>> = root.named_children(&mut cursor).collect();
    let call = statements
        .into_iter()
        .filter(|s| s.kind() == "expression_statement")
        .find_map(|s| {
            let mut c = s.walk();
            s.named_children(&mut c)
                .find(|n| n.kind() == "call_expression")
        });
    let Some(call) = call else { return Ok(None) };
    let name = call
        .child_by_field_name("function")
        .map(|f| text(f, src).to_owned())
        .unwrap_or_default();
    let mut args: Vec<(Option<String>, PyVal)> = Vec::new();
    if let Some(list) = call.child_by_field_name("arguments") {
        let mut cursor = list.walk();
        for child in list.named_children(&mut cursor) {
            match child.kind() {
                "assignment_expression" => {
                    let (Some(left), Some(right)) = (
                        child.child_by_field_name("left"),
                        child.child_by_field_name("right"),
                    ) else {
                        continue;
                    };
                    let key = text(left, src).to_owned();
                    if args.iter().any(|(k, _)| k.as_deref() == Some(key.as_str())) {
                        return Err(DecodeError::RepeatedArgument(key));
                    }
                    let raw = text(right, src);
                    let value = strip_one_pair(raw, &['"', '\'']).unwrap_or(raw);
                    args.push((Some(key), PyVal::Str(value.to_owned())));
                }
                "identifier" | "true" => args.push((None, PyVal::Str(text(child, src).to_owned()))),
                _ => {}
            }
        }
    }
    Ok(Some(DecodedCall { name, args }))
}

fn strip_one_pair<'a>(s: &'a str, quotes: &[char]) -> Option<&'a str> {
    let first = s.chars().next()?;
    if s.len() >= 2 && quotes.contains(&first) && s.ends_with(first) {
        return Some(&s[1..s.len() - 1]);
    }
    None
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| {
        Regex::new(pattern).unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
    })
}

macro_rules! regex {
    ($pat:expr) => {{
        static CELL: OnceLock<Regex> = OnceLock::new();
        re(&CELL, $pat)
    }};
}

/// Python's `int(text)`: surrounding whitespace, `_` between digits, a sign.
fn py_int(t: &str) -> Option<i128> {
    let t = t.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    if !digits.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// Python's `float(text)`.
fn py_float(t: &str) -> Option<f64> {
    let t = t.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    if matches!(body, "inf" | "infinity" | "nan") {
        let v = if body == "nan" {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some(if lower.starts_with('-') { -v } else { v });
    }
    if t.contains("__") || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    let cleaned = t.replace('_', "");
    if cleaned
        .chars()
        .any(|c| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
    {
        return None;
    }
    cleaned.parse().ok()
}

fn java_literal(t: &str) -> PyVal {
    let t = t.trim();
    match t {
        "true" => return PyVal::Bool(true),
        "false" => return PyVal::Bool(false),
        _ => {}
    }
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        return PyVal::Str(t[1..t.len() - 1].to_owned());
    }
    if regex!(r"^-?\d+[lL]$").is_match(t) {
        return t[..t.len() - 1]
            .parse()
            .map(PyVal::Int)
            .unwrap_or_else(|_| PyVal::Str(t.to_owned()));
    }
    if regex!(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]$").is_match(t) {
        return t[..t.len() - 1]
            .parse()
            .map(PyVal::Float)
            .unwrap_or_else(|_| PyVal::Str(t.to_owned()));
    }
    if let Some(i) = py_int(t) {
        return PyVal::Int(i);
    }
    if let Some(f) = py_float(t) {
        return PyVal::Float(f);
    }
    PyVal::Str(t.to_owned())
}

/// Converts a Java source-code string by its doc type (spec §7.7).
pub fn java_convert(value: &str, ty: &str, items: Option<&str>) -> PyVal {
    let keep = || PyVal::Str(value.to_owned());
    match ty {
        "byte" | "short" | "integer" => {
            if regex!(r"^-?\d+$").is_match(value) {
                value.parse().map(PyVal::Int).unwrap_or_else(|_| keep())
            } else {
                keep()
            }
        }
        "long" => {
            if regex!(r"^-?\d+[lL]$").is_match(value) {
                value[..value.len() - 1]
                    .parse()
                    .map(PyVal::Int)
                    .unwrap_or_else(|_| keep())
            } else {
                keep()
            }
        }
        "float" => {
            if regex!(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]$").is_match(value) {
                value[..value.len() - 1]
                    .parse()
                    .map(PyVal::Float)
                    .unwrap_or_else(|_| keep())
            } else {
                keep()
            }
        }
        "double" => {
            if regex!(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$").is_match(value) {
                value.parse().map(PyVal::Float).unwrap_or_else(|_| keep())
            } else {
                keep()
            }
        }
        "boolean" => match value {
            "true" => PyVal::Bool(true),
            "false" => PyVal::Bool(false),
            _ => keep(),
        },
        "Array" => {
            let Some(c) = regex!(r"new\s+\w+\[\]\s*\{(.*?)\}").captures(value) else {
                return keep();
            };
            let inner = c.get(1).map_or("", |m| m.as_str());
            let items_out: Vec<PyVal> = inner
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| match items {
                    Some(t) => java_convert(p, t, None),
                    None => java_literal(p),
                })
                .collect();
            PyVal::List(items_out)
        }
        "ArrayList" => {
            let element = |p: &str| -> PyVal {
                let p = p.trim();
                match items {
                    Some("char" | "String") => {
                        PyVal::Str(p.get(1..p.len().saturating_sub(1)).unwrap_or("").to_owned())
                    }
                    Some(t) => java_convert(p, t, None),
                    None => java_literal(p),
                }
            };
            if let Some(c) =
                regex!(r"new\s+ArrayList<\w*>\(Arrays\.asList\((.+?)\)\)").captures(value)
            {
                return PyVal::List(
                    c.get(1)
                        .map_or("", |m| m.as_str())
                        .split(',')
                        .map(element)
                        .collect(),
                );
            }
            if let Some(c) =
                regex!(r"(?s)new\s+ArrayList<\w*>\(\)\s*\{\{\s*(.+?)\s*\}\}").captures(value)
            {
                let body = c.get(1).map_or("", |m| m.as_str());
                return PyVal::List(
                    regex!(r"add\((.+?)\)")
                        .captures_iter(body)
                        .map(|a| element(a.get(1).map_or("", |m| m.as_str())))
                        .collect(),
                );
            }
            if regex!(r"new\s+ArrayList<\w*>\(\)").is_match(value) {
                return PyVal::List(Vec::new());
            }
            keep()
        }
        "HashMap" => {
            if let Some(c) = regex!(r"(?s)new\s+HashMap<.*?>\s*\(\)\s*\{\s*\{?\s*(.*?)\s*\}?\s*\}")
                .captures(value)
            {
                let body = c.get(1).map_or("", |m| m.as_str());
                if !body.trim().is_empty() {
                    return PyVal::Dict(
                        regex!(r#"put\("(.*?)",\s*(.*?)\)"#)
                            .captures_iter(body)
                            .map(|p| {
                                let k = p.get(1).map_or("", |m| m.as_str());
                                let v = p.get(2).map_or("", |m| m.as_str());
                                (PyVal::Str(k.to_owned()), java_literal(v.trim()))
                            })
                            .collect(),
                    );
                }
            }
            if regex!(r"new\s+HashMap<.*?>\s*\(\)").is_match(value) {
                return PyVal::Dict(Vec::new());
            }
            keep()
        }
        _ => keep(),
    }
}

fn js_literal(t: &str) -> PyVal {
    let t = t.trim();
    match t {
        "true" => return PyVal::Bool(true),
        "false" => return PyVal::Bool(false),
        _ => {}
    }
    if let Some(inner) = strip_one_pair(t, &['"', '\'']) {
        return PyVal::Str(inner.to_owned());
    }
    if let Some(i) = py_int(t) {
        return PyVal::Int(i);
    }
    if let Some(f) = py_float(t) {
        return PyVal::Float(f);
    }
    PyVal::Str(t.to_owned())
}

/// `findall ([^:]+):\s*(.*?)(?:,\s*(?=[^,]+:)|$)` by hand (the `regex` crate has no look-ahead).
fn js_pairs(inner: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = inner.as_bytes();
    let mut pos = 0;
    while pos < b.len() {
        // ([^:]+):
        let Some(colon) = inner[pos..].find(':').map(|k| pos + k) else {
            break;
        };
        if colon == pos {
            pos += 1;
            continue;
        }
        let key = &inner[pos..colon];
        let mut v = colon + 1;
        while v < b.len() && (b[v] as char).is_whitespace() {
            v += 1;
        }
        // (.*?) lazily, up to the first `,\s*` followed by `[^,]+:`, or the end.
        let mut end = None;
        let mut j = v;
        while j <= b.len() {
            if j == b.len() {
                end = Some((j, j));
                break;
            }
            if b[j] == b'\n' {
                // `.` does not match a newline and `$` only matches at the very end here.
                break;
            }
            if b[j] == b',' {
                let mut k = j + 1;
                while k < b.len() && (b[k] as char).is_whitespace() {
                    k += 1;
                }
                let rest = &inner[k..];
                let lookahead = rest
                    .find(':')
                    .is_some_and(|c| c > 0 && !rest[..c].contains(','));
                if lookahead {
                    end = Some((j, k));
                    break;
                }
            }
            j += 1;
        }
        let Some((value_end, next)) = end else { break };
        out.push((key.to_owned(), inner[v..value_end].to_owned()));
        if next <= pos {
            break;
        }
        pos = next;
        if value_end == b.len() {
            break;
        }
    }
    out
}

fn js_dict(value: &str) -> Option<PyVal> {
    let v = value.trim();
    if v == "{}" {
        return Some(PyVal::Dict(Vec::new()));
    }
    let c = regex!(r"^\{(.*?)\}").captures(v)?;
    let inner = c.get(1).map_or("", |m| m.as_str());
    let mut out = Vec::new();
    for (k, val) in js_pairs(inner) {
        let key = k.trim().trim_matches(['\'', '"']).to_owned();
        let val = val.trim();
        let parsed = if val.starts_with('[') && val.ends_with(']') {
            js_convert(val, "array", None)
        } else if val.starts_with('{') && val.ends_with('}') {
            js_dict(val).unwrap_or_else(|| PyVal::Str(val.to_owned()))
        } else {
            js_literal(val.trim_matches(['\'', '"']))
        };
        out.push((PyVal::Str(key), parsed));
    }
    Some(PyVal::Dict(out))
}

/// Converts a JavaScript source-code string by its doc type (spec §7.8).
pub fn js_convert(value: &str, ty: &str, items: Option<&str>) -> PyVal {
    let keep = || PyVal::Str(value.to_owned());
    match ty {
        "String" => PyVal::Str(
            strip_one_pair(value, &['"', '\''])
                .unwrap_or(value)
                .to_owned(),
        ),
        "integer" => {
            if regex!(r"^-?\d+$").is_match(value) {
                value.parse().map(PyVal::Int).unwrap_or_else(|_| keep())
            } else {
                keep()
            }
        }
        "float" => {
            if regex!(r"^-?\d+(\.\d+)?$").is_match(value) {
                value.parse().map(PyVal::Float).unwrap_or_else(|_| keep())
            } else {
                keep()
            }
        }
        "Bigint" => {
            if regex!(r"^-?\d+n$").is_match(value) {
                value[..value.len() - 1]
                    .parse()
                    .map(PyVal::Int)
                    .unwrap_or_else(|_| keep())
            } else {
                keep()
            }
        }
        "Boolean" => match value {
            "true" => PyVal::Bool(true),
            "false" => PyVal::Bool(false),
            _ => keep(),
        },
        "dict" => js_dict(value).unwrap_or_else(keep),
        "array" => {
            let v = value.trim();
            let two_d = regex!(r"^\[\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\]")
                .find(v)
                .or_else(|| regex!(r"^\bnew\s+Array\(\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\)").find(v));
            if let Some(m) = two_d {
                let pieces: Vec<&str> = regex!(r"\[(.*?)\]")
                    .captures_iter(m.as_str())
                    .map(|c| c.get(1).map_or("", |x| x.as_str()))
                    .collect();
                return PyVal::List(
                    pieces
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            let p = if i == 0 {
                                p.strip_prefix('[').unwrap_or(p)
                            } else {
                                p
                            };
                            PyVal::List(p.split(',').map(js_literal).collect())
                        })
                        .collect(),
                );
            }
            let one_d = regex!(r"^\[(.*?)\]")
                .captures(v)
                .or_else(|| regex!(r"^\bnew\s+Array\((.*?)\)").captures(v));
            let Some(c) = one_d else { return keep() };
            let inner = c.get(1).map_or("", |m| m.as_str());
            if inner.is_empty() {
                return PyVal::List(Vec::new());
            }
            PyVal::List(
                inner
                    .split(',')
                    .map(|e| {
                        let e = e.trim();
                        match items {
                            Some("String") => {
                                PyVal::Str(strip_one_pair(e, &['"', '\'']).unwrap_or(e).to_owned())
                            }
                            Some(t @ ("integer" | "float")) => js_convert(e, t, None),
                            Some(t) => js_convert(e, t, None),
                            None => js_literal(e),
                        }
                    })
                    .collect(),
            )
        }
        _ => keep(),
    }
}
