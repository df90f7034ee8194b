//! What a tool is, as offered to the model: [`ToolSpec`].

use serde::{Deserialize, Serialize, de::Error as _};
use serde_json::{Map, Value};

/// A tool as offered to the model: name, description, JSON Schema of its arguments.
///
/// Writes as OpenAI's `{"type":"function","function":{"name","description","parameters"}}`;
/// reads that and the bare `{"name","description","parameters"}` form (MCP's
/// `inputSchema`/`outputSchema` names are accepted too).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Name the model calls it by.
    pub name: String,
    /// One sentence for the model: what the tool does and when to use it.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the arguments object.
    pub parameters: Value,
    /// JSON Schema of the value the tool returns, when it declares one.
    pub output_schema: Option<Value>,
}

impl ToolSpec {
    /// A tool named `name` taking arguments described by `parameters`.
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            parameters,
            output_schema: None,
        }
    }

    /// Declares the schema of the tool's output.
    #[must_use]
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// Reads a list of tools: a JSON array of OpenAI-style or bare definitions.
    pub fn list_from_json(text: &str) -> Result<Vec<ToolSpec>, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[derive(Serialize)]
struct SpecOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_schema: Option<&'a Value>,
}

#[derive(Deserialize)]
struct SpecIn {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
    #[serde(flatten)]
    bare: FunctionIn,
}

#[derive(Deserialize, Default)]
struct FunctionIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, alias = "inputSchema", alias = "input_schema")]
    parameters: Option<Value>,
    #[serde(default, alias = "outputSchema")]
    output_schema: Option<Value>,
}

impl Serialize for ToolSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SpecOut {
            kind: "function",
            function: FunctionOut {
                name: &self.name,
                description: &self.description,
                parameters: &self.parameters,
                output_schema: self.output_schema.as_ref(),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ToolSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = SpecIn::deserialize(d)?;
        if let Some(kind) = w.kind.as_deref().filter(|k| *k != "function") {
            return Err(D::Error::custom(format!(
                "tool type `{kind}` is not supported; expected \"function\""
            )));
        }
        let f = w.function.unwrap_or(w.bare);
        let name = f.name.ok_or_else(|| D::Error::missing_field("name"))?;
        let parameters = match f.parameters {
            None | Some(Value::Null) => {
                let mut schema = Map::new();
                schema.insert("type".into(), "object".into());
                schema.insert("properties".into(), Value::Object(Map::new()));
                Value::Object(schema)
            }
            Some(p) => p,
        };
        Ok(Self {
            name,
            description: f.description.unwrap_or_default(),
            parameters,
            output_schema: f.output_schema,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn round_trips_in_openai_shape() {
        let spec = ToolSpec::new(
            "get_weather",
            "Current weather for a city.",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        );
        let wire = serde_json::to_value(&spec).unwrap();
        assert_eq!(wire["type"], "function");
        assert_eq!(wire["function"]["name"], "get_weather");
        assert_eq!(serde_json::from_value::<ToolSpec>(wire).unwrap(), spec);

        let typed = spec.clone().output_schema(json!({"type": "number"}));
        let back: ToolSpec = serde_json::from_value(serde_json::to_value(&typed).unwrap()).unwrap();
        assert_eq!(back, typed);
    }

    #[test]
    fn reads_bare_and_mcp_forms() {
        let tools = ToolSpec::list_from_json(
            r#"[{"name": "a", "description": "A", "parameters": {"type": "object"}},
                {"name": "b", "inputSchema": {"type": "object"}, "outputSchema": {"type": "string"}},
                {"name": "c"}]"#,
        )
        .unwrap();
        assert_eq!(tools[0].parameters, json!({"type": "object"}));
        assert_eq!(tools[1].output_schema, Some(json!({"type": "string"})));
        assert_eq!(
            tools[2].parameters,
            json!({"type": "object", "properties": {}})
        );
    }

    #[test]
    fn rejects_non_function_tools_and_missing_names() {
        let err = ToolSpec::list_from_json(r#"[{"type": "retrieval"}]"#).unwrap_err();
        assert!(err.to_string().contains("retrieval"), "{err}");
        let err = ToolSpec::list_from_json(r#"[{"description": "x"}]"#).unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
    }
}
