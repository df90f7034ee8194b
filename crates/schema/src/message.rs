//! Turning a validator error into a sentence a model can act on, and coercions.

use std::fmt;

use jsonschema::{ValidationError, error::ValidationErrorKind, paths::LocationSegment};
use serde::Serialize;
use serde_json::Value;

use crate::{Coerced, Coercion};

/// Longest rendering of an offending value before it is cut.
const MAX_VALUE: usize = 80;

/// One broken rule: where, which rule, what value, and the sentence for the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// JSON path of the offending value, `$` for the whole arguments object.
    pub path: String,
    /// The JSON Schema keyword that failed (`type`, `required`, `format`, …).
    pub rule: &'static str,
    /// The offending value.
    pub value: Value,
    /// What is wrong, without the path: `'tomorrow' is not a date (YYYY-MM-DD)`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.path, self.message)
    }
}

impl Violation {
    pub(crate) fn from_error(e: &ValidationError<'_>) -> Self {
        let path = json_path(e);
        let value = e.instance().clone().into_owned();
        let v = show(&value);
        let (rule, message) = match e.kind() {
            ValidationErrorKind::Type { kind } => {
                let names: Vec<&str> = match kind {
                    jsonschema::error::TypeKind::Single(t) => vec![t.as_str()],
                    jsonschema::error::TypeKind::Multiple(set) => {
                        set.iter().map(|t| t.as_str()).collect()
                    }
                };
                let wanted: Vec<String> = names.iter().map(|n| with_article(n)).collect();
                ("type", format!("{v} is not {}", wanted.join(" or ")))
            }
            ValidationErrorKind::Required { property } => {
                let name = property
                    .as_str()
                    .map_or_else(|| property.to_string(), str::to_owned);
                (
                    "required",
                    format!("the required property `{name}` is missing"),
                )
            }
            ValidationErrorKind::Enum { options } => {
                ("enum", format!("{v} is not one of {}", list(options)))
            }
            ValidationErrorKind::Constant { expected_value } => (
                "const",
                format!("{v} must be exactly {}", show(expected_value)),
            ),
            ValidationErrorKind::Pattern { pattern } => (
                "pattern",
                format!("{v} does not match the pattern `{pattern}`"),
            ),
            ValidationErrorKind::Minimum { limit } => {
                ("minimum", format!("{v} is less than the minimum {limit}"))
            }
            ValidationErrorKind::Maximum { limit } => (
                "maximum",
                format!("{v} is greater than the maximum {limit}"),
            ),
            ValidationErrorKind::ExclusiveMinimum { limit } => (
                "exclusiveMinimum",
                format!("{v} must be greater than {limit}"),
            ),
            ValidationErrorKind::ExclusiveMaximum { limit } => {
                ("exclusiveMaximum", format!("{v} must be less than {limit}"))
            }
            ValidationErrorKind::MultipleOf { .. } => {
                ("multipleOf", format!("{v} {}", strip_instance(e)))
            }
            ValidationErrorKind::MinLength { limit } => (
                "minLength",
                format!("{v} is shorter than {limit} character{}", plural(*limit)),
            ),
            ValidationErrorKind::MaxLength { limit } => (
                "maxLength",
                format!("{v} is longer than {limit} character{}", plural(*limit)),
            ),
            ValidationErrorKind::MinItems { limit } => (
                "minItems",
                format!("{v} has fewer than {limit} item{}", plural(*limit)),
            ),
            ValidationErrorKind::MaxItems { limit } => (
                "maxItems",
                format!("{v} has more than {limit} item{}", plural(*limit)),
            ),
            ValidationErrorKind::MinProperties { limit } => (
                "minProperties",
                format!(
                    "the object has fewer than {limit} propert{}",
                    if *limit == 1 { "y" } else { "ies" }
                ),
            ),
            ValidationErrorKind::MaxProperties { limit } => (
                "maxProperties",
                format!(
                    "the object has more than {limit} propert{}",
                    if *limit == 1 { "y" } else { "ies" }
                ),
            ),
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let names: Vec<String> = unexpected.iter().map(|n| format!("`{n}`")).collect();
                let s = if unexpected.len() == 1 { "y" } else { "ies" };
                (
                    "additionalProperties",
                    format!(
                        "unexpected propert{s} {}; remove {}",
                        names.join(", "),
                        if unexpected.len() == 1 { "it" } else { "them" }
                    ),
                )
            }
            ValidationErrorKind::UniqueItems => ("uniqueItems", format!("{v} has duplicate items")),
            ValidationErrorKind::Format { format } => {
                ("format", format!("{v} is not {}", format_name(format)))
            }
            ValidationErrorKind::FalseSchema => ("false", "no value is allowed here".to_owned()),
            ValidationErrorKind::AnyOf { .. } => {
                ("anyOf", format!("{v} matches none of the allowed shapes"))
            }
            ValidationErrorKind::OneOfNotValid { .. } => {
                ("oneOf", format!("{v} matches none of the allowed shapes"))
            }
            ValidationErrorKind::OneOfMultipleValid { .. } => (
                "oneOf",
                format!("{v} matches more than one of the allowed shapes"),
            ),
            ValidationErrorKind::Not { .. } => ("not", format!("{v} is not allowed here")),
            _ => ("schema", strip_instance(e)),
        };
        Self {
            path,
            rule,
            value,
            message,
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn with_article(type_name: &str) -> String {
    match type_name {
        "integer" | "object" | "array" => format!("an {type_name}"),
        "null" => "null".to_owned(),
        other => format!("a {other}"),
    }
}

fn format_name(format: &str) -> String {
    match format {
        "date" => "a date (YYYY-MM-DD)".into(),
        "date-time" => "a date-time (RFC 3339, e.g. 2025-05-01T12:00:00Z)".into(),
        "time" => "a time (RFC 3339, e.g. 12:00:00Z)".into(),
        "email" => "an email address".into(),
        "uri" => "a URI with a scheme (e.g. https://example.com/)".into(),
        "uuid" => "a UUID (e.g. 123e4567-e89b-12d3-a456-426614174000)".into(),
        "ipv4" => "an IPv4 address".into(),
        "ipv6" => "an IPv6 address".into(),
        "hostname" => "a host name".into(),
        other => format!("in the `{other}` format"),
    }
}

/// The validator's own message, without the leading rendering of the instance.
fn strip_instance(e: &ValidationError<'_>) -> String {
    let text = e.to_string();
    let shown = e.instance().to_string();
    text.strip_prefix(&shown)
        .map_or(text.clone(), |rest| rest.trim_start().to_owned())
}

/// Renders a value for a sentence: strings in single quotes, long values cut.
pub(crate) fn show(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    if text.len() <= MAX_VALUE {
        return text;
    }
    let mut cut = MAX_VALUE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

fn list(options: &Value) -> String {
    match options {
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        other => show(other),
    }
}

/// `$.a.b[0]`, quoting keys that are not plain identifiers (`$["a b"]`).
fn json_path(e: &ValidationError<'_>) -> String {
    let mut path = String::from("$");
    for segment in e.instance_path() {
        match segment {
            LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
            LocationSegment::Property(p) => {
                let plain = !p.is_empty()
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !p.starts_with(|c: char| c.is_ascii_digit());
                if plain {
                    path.push('.');
                    path.push_str(&p);
                } else {
                    path.push_str(&format!("[{}]", Value::String(p.into_owned())));
                }
            }
        }
    }
    path
}

/// Applies the allowed coercion that fixes `error`, if there is one.
pub(crate) fn coerce(
    allowed: Coercion,
    error: &ValidationError<'_>,
    args: &mut Value,
) -> Option<Coerced> {
    let ValidationErrorKind::Type { kind } = error.kind() else {
        return None;
    };
    let wants = |name: &str| match kind {
        jsonschema::error::TypeKind::Single(t) => t.as_str() == name,
        jsonschema::error::TypeKind::Multiple(set) => set.iter().any(|t| t.as_str() == name),
    };
    let pointer = error.instance_path().as_str().to_owned();
    let target = args.pointer_mut(&pointer)?;
    let from = target.clone();
    let to = match &from {
        Value::String(s) if allowed.numeric_strings && (wants("integer") || wants("number")) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                Value::from(i)
            } else if wants("number") {
                let f: f64 = t.parse().ok().filter(|f: &f64| f.is_finite())?;
                Value::from(f)
            } else {
                // An integer written as "3.0" is still an integer.
                let f: f64 = t
                    .parse()
                    .ok()
                    .filter(|f: &f64| f.is_finite() && f.fract() == 0.0 && f.abs() < 9e15)?;
                Value::from(f as i64)
            }
        }
        other if allowed.single_to_array && wants("array") && !other.is_array() => {
            Value::Array(vec![other.clone()])
        }
        _ => return None,
    };
    *target = to.clone();
    Some(Coerced {
        path: json_path(error),
        from,
        to,
    })
}
