//! A call the model asked for ([`ToolCall`]) and what came of it ([`ToolResult`]).

use serde::{Deserialize, Serialize, de::Error as _};
use serde_json::Value;

use crate::{ErrorKind, Message, ToolError};

/// One function call requested by the model.
///
/// On the wire it is OpenAI's `{"id","type":"function","function":{"name","arguments"}}`
/// with `arguments` as a JSON string; reading also accepts `arguments` as an object and the
/// flat form `{"id","name","arguments"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Identifier that ties the result to the call (`call_…`); unique within a turn.
    pub id: String,
    /// Name of the tool to run.
    pub name: String,
    /// Arguments as parsed JSON; an object for every well-formed call.
    pub arguments: Value,
}

impl ToolCall {
    /// A call of `name` with `arguments`, identified by `id`.
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments,
        }
    }
}

#[derive(Serialize)]
struct CallWireOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: String,
}

#[derive(Deserialize)]
struct CallWireIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

impl Serialize for ToolCall {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CallWireOut {
            id: &self.id,
            kind: "function",
            function: FunctionOut {
                name: &self.name,
                arguments: self.arguments.to_string(),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ToolCall {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = CallWireIn::deserialize(d)?;
        let (name, arguments) = match (w.function, w.name) {
            (Some(f), _) => (f.name, f.arguments),
            (None, Some(name)) => (name, w.arguments),
            (None, None) => return Err(D::Error::missing_field("function")),
        };
        let arguments = match arguments {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(Value::String(text)) if text.trim().is_empty() => {
                Value::Object(Default::default())
            }
            Some(Value::String(text)) => serde_json::from_str(&text).map_err(|e| {
                D::Error::custom(format!("arguments of `{name}` are not valid JSON: {e}"))
            })?,
            Some(other) => other,
        };
        Ok(Self {
            id: w.id.unwrap_or_default(),
            name,
            arguments,
        })
    }
}

/// What a call produced: a value, or an error the model can act on.
///
/// Serialized for traces as `{"tool_call_id","name","ok"}` or `{…,"error":{"kind","message"}}`;
/// [`ToolResult::to_message`] gives the OpenAI `tool` message the model reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The [`ToolCall::id`] this answers.
    pub tool_call_id: String,
    /// Name of the tool that was called.
    pub name: String,
    /// The value, or why there is none.
    #[serde(flatten, with = "outcome")]
    pub outcome: Result<Value, ToolError>,
}

impl ToolResult {
    /// A successful result for `call`.
    pub fn ok(call: &ToolCall, value: Value) -> Self {
        Self {
            tool_call_id: call.id.clone(),
            name: call.name.clone(),
            outcome: Ok(value),
        }
    }

    /// A failed result for `call`.
    pub fn err(call: &ToolCall, error: ToolError) -> Self {
        Self {
            tool_call_id: call.id.clone(),
            name: call.name.clone(),
            outcome: Err(error),
        }
    }

    /// The error kind, if the call failed.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.outcome.as_ref().err().map(ToolError::kind)
    }

    /// The text the model reads: a string value as is, any other value as JSON, an
    /// error as `Error (kind): sentence`.
    pub fn content_for_model(&self) -> String {
        match &self.outcome {
            Ok(Value::String(s)) => s.clone(),
            Ok(v) => v.to_string(),
            Err(e) => format!("Error ({}): {}", e.kind(), e.for_model()),
        }
    }

    /// The OpenAI `tool` message carrying this result.
    pub fn to_message(&self) -> Message {
        Message::Tool {
            tool_call_id: self.tool_call_id.clone(),
            content: self.content_for_model(),
        }
    }
}

mod outcome {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use crate::ToolError;

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Wire<T, E> {
        Ok(T),
        Error(E),
    }

    pub(super) fn serialize<S: Serializer>(
        v: &Result<Value, ToolError>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Ok(v) => Wire::<&Value, &ToolError>::Ok(v),
            Err(e) => Wire::Error(e),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Value, ToolError>, D::Error> {
        Ok(match Wire::<Value, ToolError>::deserialize(d)? {
            Wire::Ok(v) => Ok(v),
            Wire::Error(e) => Err(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn call_writes_arguments_as_a_json_string() {
        let call = ToolCall::new("call_1", "add", json!({"a": 1, "b": [2, 3]}));
        let wire = serde_json::to_value(&call).unwrap();
        assert_eq!(
            wire,
            json!({"id": "call_1", "type": "function",
                   "function": {"name": "add", "arguments": "{\"a\":1,\"b\":[2,3]}"}})
        );
        assert_eq!(serde_json::from_value::<ToolCall>(wire).unwrap(), call);
    }

    #[test]
    fn call_reads_object_arguments_and_flat_form() {
        let nested: ToolCall = serde_json::from_value(
            json!({"id": "c", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}),
        )
        .unwrap();
        let flat: ToolCall =
            serde_json::from_value(json!({"id": "c", "name": "f", "arguments": {"x": 1}})).unwrap();
        assert_eq!(nested, flat);
        let empty: ToolCall =
            serde_json::from_value(json!({"function": {"name": "f", "arguments": ""}})).unwrap();
        assert_eq!(empty.arguments, json!({}));
    }

    #[test]
    fn call_with_broken_arguments_string_names_the_tool() {
        let err = serde_json::from_value::<ToolCall>(
            json!({"id": "c", "function": {"name": "f", "arguments": "{\"x\": "}}),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("arguments of `f` are not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn result_round_trips_both_outcomes() {
        let call = ToolCall::new("c1", "f", json!({}));
        for result in [
            ToolResult::ok(&call, json!({"temp": 21})),
            ToolResult::err(&call, ToolError::timeout(500)),
        ] {
            let text = serde_json::to_string(&result).unwrap();
            assert_eq!(serde_json::from_str::<ToolResult>(&text).unwrap(), result);
        }
        let failed = ToolResult::err(
            &call,
            ToolError::denied("writes outside /tmp are not allowed"),
        );
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"tool_call_id": "c1", "name": "f",
                   "error": {"kind": "denied", "message": "writes outside /tmp are not allowed"}})
        );
        assert_eq!(failed.error_kind(), Some(ErrorKind::Denied));
    }

    #[test]
    fn result_becomes_a_tool_message() {
        let call = ToolCall::new("c1", "f", json!({}));
        let ok = ToolResult::ok(&call, json!("sunny"));
        assert_eq!(
            serde_json::to_value(ok.to_message()).unwrap(),
            json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"})
        );
        let err = ToolResult::err(&call, ToolError::timeout(250));
        assert_eq!(
            err.content_for_model(),
            "Error (timeout): the call did not finish within 250 ms"
        );
    }
}
