//! Prompted tool calling: tools rendered into the system prompt, calls read from text.
//!
//! For servers whose models have no native tool calling. The rendering follows the Hermes /
//! Qwen2.5 convention (a `<tools>` block in the system turn, `<tool_call>` for calls,
//! `<tool_response>` for results), which small open models are trained on and which
//! `agentry-parse` reads back.

use agentry_core::{Message, ToolSpec};
use serde_json::{Value, json};

use crate::ToolChoice;

/// The system-prompt text offering `tools`.
pub fn tools_prompt(tools: &[ToolSpec], choice: &ToolChoice) -> String {
    let mut out = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n",
    );
    for tool in tools {
        let sig = json!({"type": "function", "function": {
            "name": tool.name, "description": tool.description, "parameters": tool.parameters}});
        out.push_str(&sig.to_string());
        out.push('\n');
    }
    out.push_str(
        "</tools>\n\nFor each function call, return a json object with function name and arguments \
         within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \
         \"arguments\": <args-json-object>}\n</tool_call>",
    );
    match choice {
        ToolChoice::Auto => {}
        ToolChoice::None => out.push_str("\n\nDo not call any function now; answer directly."),
        ToolChoice::Required => out.push_str("\n\nYou must call at least one function."),
        ToolChoice::Function(name) => {
            out.push_str(&format!("\n\nYou must call the function `{name}`."))
        }
    }
    out
}

/// The conversation as plain chat messages: tools in the system turn, calls and results as text.
pub fn render_messages(
    messages: &[Message],
    tools: &[ToolSpec],
    choice: &ToolChoice,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    let tools_text = (!tools.is_empty()).then(|| tools_prompt(tools, choice));
    let mut system_done = tools_text.is_none();
    for message in messages {
        match message {
            Message::System { content } if !system_done => {
                let text = match &tools_text {
                    Some(t) => format!("{content}\n\n{t}"),
                    None => content.clone(),
                };
                out.push(json!({"role": "system", "content": text}));
                system_done = true;
            }
            Message::System { content } => out.push(json!({"role": "system", "content": content})),
            Message::User { content } => {
                if !system_done {
                    out.push(json!({"role": "system", "content": tools_text.clone().unwrap_or_default()}));
                    system_done = true;
                }
                out.push(json!({"role": "user", "content": content}));
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut text = content.clone().unwrap_or_default();
                for call in tool_calls {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    let body = json!({"name": call.name, "arguments": call.arguments});
                    text.push_str(&format!("<tool_call>\n{body}\n</tool_call>"));
                }
                out.push(json!({"role": "assistant", "content": text}));
            }
            Message::Tool { content, .. } => {
                out.push(json!({"role": "user", "content": format!("<tool_response>\n{content}\n</tool_response>")}));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentry_core::ToolCall;
    use pretty_assertions::assert_eq;

    #[test]
    fn calls_and_results_become_text() {
        let tools = vec![ToolSpec::new("f", "Does f.", json!({"type": "object"}))];
        let msgs = vec![
            Message::user("hi"),
            Message::assistant_calls(vec![ToolCall::new("c1", "f", json!({"x": 1}))]),
            Message::tool("c1", "42"),
        ];
        let out = render_messages(&msgs, &tools, &ToolChoice::Auto);
        assert_eq!(out.len(), 4);
        assert!(
            out[0]["content"]
                .as_str()
                .unwrap()
                .contains("<tools>\n{\"type\":\"function\"")
        );
        assert_eq!(
            out[2]["content"],
            "<tool_call>\n{\"name\":\"f\",\"arguments\":{\"x\":1}}\n</tool_call>"
        );
        assert_eq!(
            out[3],
            json!({"role": "user", "content": "<tool_response>\n42\n</tool_response>"})
        );
    }
}
