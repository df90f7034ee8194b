//! Rendering a conversation with the model's own chat template: [`ChatTemplate`].
//!
//! GGUF files carry their chat template (`tokenizer.chat_template`, Jinja); llama.cpp's own
//! template call cannot take tools, so the template is rendered here with `minijinja`, with
//! the conversation and tools in the OpenAI wire shape that Hugging Face templates expect.

use agentry_core::{Message, ToolSpec};
use minijinja::{Environment, Error, ErrorKind, Value as JinjaValue};
use serde::Serialize;
use serde_json::{Value, json};

use crate::LlmError;

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatTemplate")
    }
}

impl ChatTemplate {
    /// Compiles `source` (Jinja, as Hugging Face templates are written).
    pub fn new(source: &str) -> Result<Self, LlmError> {
        let mut env = Environment::new();
        // As Hugging Face renders templates: trim_blocks and lstrip_blocks on.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| LlmError::Config(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.to_owned())
            .map_err(|e| {
                LlmError::Config(format!("the model's chat template does not compile: {e:#}"))
            })?;
        Ok(Self { env })
    }

    /// The prompt text for `messages` offering `tools`, ending where the assistant's reply begins.
    pub fn render(&self, messages: &[Message], tools: &[ToolSpec]) -> Result<String, LlmError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| LlmError::Config(e.to_string()))?;
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        let ctx = json!({
            "messages": wire_messages(messages),
            "tools": if tools.is_empty() { Value::Null } else { Value::Array(tools) },
            "add_generation_prompt": true,
            "bos_token": "",
            "eos_token": "",
        });
        template
            .render(JinjaValue::from(minijinja::value::Serde(&ctx)))
            .map_err(|e| LlmError::Config(format!("the model's chat template failed: {e:#}")))
    }
}

/// Messages in the shape Hugging Face templates read: calls with arguments as objects.
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| match m {
            Message::System { content } => json!({"role": "system", "content": content}),
            Message::User { content } => json!({"role": "user", "content": content}),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect();
                let mut m =
                    json!({"role": "assistant", "content": content.clone().unwrap_or_default()});
                if !calls.is_empty() {
                    m["tool_calls"] = Value::Array(calls);
                }
                m
            }
            Message::Tool {
                tool_call_id,
                content,
            } => json!({"role": "tool", "tool_call_id": tool_call_id, "content": content}),
        })
        .collect()
}

/// `tojson` as Hugging Face defines it: Python's `json.dumps` (`", "` and `": "` separators,
/// no HTML escaping), which is what the model saw in training.
fn tojson(value: JinjaValue) -> Result<JinjaValue, Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value
        .serialize(&mut ser)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let text = String::from_utf8(out)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(JinjaValue::from_safe_string(text))
}

/// JSON with Python's default separators.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentry_core::ToolCall;
    use pretty_assertions::assert_eq;

    /// Qwen2.5's template, as the bundled model's GGUF metadata holds it.
    const QWEN: &str = include_str!("testdata/qwen2.5.jinja");

    #[test]
    fn qwen_template_renders_tools_calls_and_results() {
        let t = ChatTemplate::new(QWEN).unwrap();
        let tools = vec![ToolSpec::new(
            "get_weather",
            "Weather <now>.",
            json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        )];
        let msgs = vec![
            Message::system("Be brief."),
            Message::user("Weather in Oslo?"),
            Message::assistant_calls(vec![ToolCall::new(
                "c1",
                "get_weather",
                json!({"city": "Oslo"}),
            )]),
            Message::tool("c1", "{\"temp_c\": 3}"),
        ];
        let out = t.render(&msgs, &tools).unwrap();
        let expected = "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n\
{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather <now>.\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}\n\
</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n\
<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n\
<|im_start|>user\nWeather in Oslo?<|im_end|>\n\
<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call><|im_end|>\n\
<|im_start|>user\n<tool_response>\n{\"temp_c\": 3}\n</tool_response><|im_end|>\n\
<|im_start|>assistant\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn without_tools_the_plain_chat_shape_is_used() {
        let t = ChatTemplate::new(QWEN).unwrap();
        let out = t.render(&[Message::user("hi")], &[]).unwrap();
        assert!(out.starts_with("<|im_start|>system\nYou are Qwen"), "{out}");
        assert!(out.ends_with("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"));
    }

    #[test]
    fn broken_templates_are_errors_not_panics() {
        let err = ChatTemplate::new("{% if %}").unwrap_err().to_string();
        assert!(err.contains("does not compile"), "{err}");
        let t = ChatTemplate::new("{{ raise_exception('no tools here') }}").unwrap();
        let err = t
            .render(&[Message::user("hi")], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no tools here"), "{err}");
    }
}
