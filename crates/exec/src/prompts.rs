//! The planner and joiner prompts of compiled mode.

use agentry_core::{Message, ToolResult, ToolSpec};
use serde_json::Value;

/// The planner's system prompt: the plan format and the tools.
pub(crate) fn planner(tools: &[ToolSpec]) -> String {
    let mut out = String::from(
        "You write plans of tool calls that run in parallel where they can.\n\
         Write one task per line, numbered from 1, each a single call in Python syntax with \
         keyword arguments: `N. tool_name(arg=value, ...)`. Use the result of an earlier task \
         by writing $K (or $K.field for one field of it), also inside strings. Tasks that do \
         not use each other's results run at the same time, so plan independent lookups as \
         separate tasks. End the plan with a line `N. join()`.\n\nTools:\n",
    );
    for t in tools {
        let params = t
            .parameters
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}: {}",
                            v.get("type").and_then(Value::as_str).unwrap_or("any")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        out.push_str(&format!(
            "- {}({}): {}\n",
            t.name,
            params.unwrap_or_default(),
            t.description
        ));
    }
    out.push_str(
        "\nExample question: How much warmer is Rome than Berlin?\nPlan:\n\
         1. get_weather(city=\"Rome\")\n2. get_weather(city=\"Berlin\")\n\
         3. calculator(expression=\"$1.temp_c - $2.temp_c\")\n4. join()\n\n\
         Every place, person or thing the question names gets its own lookup task.\n",
    );
    out
}

/// The joiner's system prompt.
pub(crate) const JOINER: &str = "Answer the task from the tool results, in one sentence starting with \
`Answer: `. (If a tool result is an error, reply `Replan: ` and what to try instead.)";

/// The observations message after a plan ran: one line per task, in task order.
pub(crate) fn observations(results: &[(u32, String, ToolResult)]) -> String {
    let mut out = String::from("Observations:\n");
    for (index, line, result) in results {
        let text = result.content_for_model();
        let text = if text.len() > 4000 {
            format!("{}… ({} bytes)", &text[..floor(&text, 4000)], text.len())
        } else {
            text
        };
        out.push_str(&format!("{index}. {line} -> {text}\n"));
    }
    out
}

fn floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `task` with the conversation before it, for a planner and joiner that see one message:
/// the earlier user and assistant texts, then the task. Without history, the task alone.
pub(crate) fn with_history(task: &str, history: &[Message]) -> String {
    let lines: Vec<String> = history
        .iter()
        .filter_map(|m| match m {
            Message::User { content } => Some(format!("User: {content}")),
            Message::Assistant {
                content: Some(text),
                ..
            } if !text.trim().is_empty() => Some(format!("Assistant: {}", text.trim())),
            _ => None,
        })
        .collect();
    if lines.is_empty() {
        return task.to_owned();
    }
    format!(
        "The conversation so far:\n{}\n\nThe user now says: {task}",
        lines.join("\n")
    )
}
