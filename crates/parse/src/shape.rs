//! Reading a parsed JSON value as a call: which shapes count, and what is wrong with the rest.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::{Repair, lenient::parse_json};

/// A value read as a call.
pub(crate) struct CallParts {
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) arguments: Value,
    /// Whether the arguments were under `parameters` (Llama's key) rather than `arguments`.
    pub(crate) llama_style: bool,
}

pub(crate) enum Shape {
    Call(CallParts),
    NotACall,
    Bad(String),
}

/// Reads `value` as a call. With `strict`, an object needs an `arguments`/`parameters` key
/// or a `function` wrapper to count (bare JSON in prose); inside a call tag, `name` is enough.
/// The keys of an object that matter for reading it as a call; the rest are skipped unbuilt.
#[derive(Default, serde::Deserialize)]
pub(crate) struct CallKeys {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    function: Option<Value>,
}

impl CallKeys {
    /// Reads strict JSON text, building values only for the keys above.
    pub(crate) fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// Takes the call keys out of an object (for values read by the lenient path).
    /// A `null` counts as absent, as it does when the keys are deserialized.
    pub(crate) fn from_object(mut obj: Map<String, Value>) -> Self {
        let mut take = |key| obj.remove(key).filter(|v| !v.is_null());
        Self {
            id: take("id"),
            name: take("name"),
            arguments: take("arguments"),
            parameters: take("parameters"),
            function: take("function"),
        }
    }
}

pub(crate) fn interpret(value: Value, strict: bool, repairs: &mut BTreeSet<Repair>) -> Shape {
    let Value::Object(obj) = value else {
        return if strict {
            Shape::NotACall
        } else {
            Shape::Bad("expected a JSON object with \"name\" and \"arguments\"".into())
        };
    };
    interpret_keys(CallKeys::from_object(obj), strict, repairs)
}

/// Reads the keys of a call object as a call.
pub(crate) fn interpret_keys(
    keys: CallKeys,
    strict: bool,
    repairs: &mut BTreeSet<Repair>,
) -> Shape {
    let id = match keys.id {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let (name, args, llama_style, wrapped) = match keys.function {
        Some(Value::Object(mut f)) => {
            let (args, llama) = take_args(&mut f);
            (f.remove("name"), args, llama, true)
        }
        Some(Value::String(name)) => {
            let (args, llama) = own_args(keys.arguments, keys.parameters);
            (Some(Value::String(name)), args, llama, true)
        }
        Some(_) => {
            return Shape::Bad(
                "\"function\" must be an object with \"name\" and \"arguments\"".into(),
            );
        }
        None => {
            let (args, llama) = own_args(keys.arguments, keys.parameters);
            (keys.name, args, llama, false)
        }
    };
    if strict && !wrapped && args.is_none() {
        return Shape::NotACall;
    }
    let name = match name {
        Some(Value::String(n)) if n.trim().len() == n.len() && !n.is_empty() => n,
        Some(Value::String(n)) if !n.trim().is_empty() => n.trim().to_owned(),
        Some(Value::String(_)) => return Shape::Bad("the call's \"name\" is empty".into()),
        Some(other) => {
            return Shape::Bad(format!(
                "the call's \"name\" must be a string, not {}",
                kind(&other)
            ));
        }
        None if strict && !wrapped => return Shape::NotACall,
        None => return Shape::Bad("the call has no \"name\"".into()),
    };
    let arguments = match args {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(m)) => Value::Object(m),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => match parse_json(&s) {
            Ok((Value::Object(m), fixed)) => {
                repairs.extend(fixed);
                Value::Object(m)
            }
            Ok((other, _)) => {
                return Shape::Bad(format!(
                    "the arguments of `{name}` must be a JSON object, not {}",
                    kind(&other)
                ));
            }
            Err(why) => {
                return Shape::Bad(format!(
                    "the arguments string of `{name}` is not JSON ({why})"
                ));
            }
        },
        Some(other) => {
            return Shape::Bad(format!(
                "the arguments of `{name}` must be a JSON object, not {}",
                kind(&other)
            ));
        }
    };
    Shape::Call(CallParts {
        id,
        name,
        arguments,
        llama_style,
    })
}

fn own_args(arguments: Option<Value>, parameters: Option<Value>) -> (Option<Value>, bool) {
    match (arguments, parameters) {
        (Some(a), _) => (Some(a), false),
        (None, Some(p)) => (Some(p), true),
        (None, None) => (None, false),
    }
}

fn take_args(obj: &mut Map<String, Value>) -> (Option<Value>, bool) {
    if let Some(v) = obj.remove("arguments") {
        return (Some(v), false);
    }
    if let Some(v) = obj.remove("parameters") {
        return (Some(v), true);
    }
    (None, false)
}

/// A short name for a JSON value's type, for error sentences.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
