//! One turn of a conversation: [`Message`], in the OpenAI chat-completions shape.

use serde::{Deserialize, Deserializer, Serialize};

use crate::ToolCall;

/// One turn of a conversation, tagged by `role` as OpenAI's chat completions write it.
///
/// `content` reads as a string or as a list of `{"type":"text","text":…}` parts (joined);
/// it always writes as a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    /// Instructions from the application.
    System {
        /// The instructions.
        #[serde(deserialize_with = "text_content")]
        content: String,
    },
    /// What the user said.
    User {
        /// The user's words.
        #[serde(deserialize_with = "text_content")]
        content: String,
    },
    /// What the model said: text, calls, or both.
    Assistant {
        /// Text of the turn; `null` on the wire when the turn only calls tools.
        #[serde(default, deserialize_with = "optional_text_content")]
        content: Option<String>,
        /// Calls the model asked for, in order.
        #[serde(
            default,
            skip_serializing_if = "Vec::is_empty",
            deserialize_with = "null_as_empty"
        )]
        tool_calls: Vec<ToolCall>,
    },
    /// A tool's answer to one call.
    Tool {
        /// The [`ToolCall::id`] this answers.
        tool_call_id: String,
        /// The result as the model reads it.
        #[serde(deserialize_with = "text_content")]
        content: String,
    },
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::System {
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::User {
            content: content.into(),
        }
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::Assistant {
            content: Some(content.into()),
            tool_calls: Vec::new(),
        }
    }

    /// An assistant message that only calls tools.
    pub fn assistant_calls(tool_calls: Vec<ToolCall>) -> Self {
        Self::Assistant {
            content: None,
            tool_calls,
        }
    }

    /// A tool message answering `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::Tool {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
        }
    }

    /// The role name as on the wire.
    pub fn role(&self) -> &'static str {
        match self {
            Self::System { .. } => "system",
            Self::User { .. } => "user",
            Self::Assistant { .. } => "assistant",
            Self::Tool { .. } => "tool",
        }
    }

    /// The text of the message, if it has any.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::System { content } | Self::User { content } | Self::Tool { content, .. } => {
                Some(content)
            }
            Self::Assistant { content, .. } => content.as_deref(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

impl Content {
    fn into_text(self) -> String {
        match self {
            Self::Text(t) => t,
            Self::Parts(parts) => parts.into_iter().filter_map(|p| p.text).collect(),
        }
    }
}

fn text_content<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<Content>::deserialize(d)?
        .map(Content::into_text)
        .unwrap_or_default())
}

fn optional_text_content<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Content>::deserialize(d)?.map(Content::into_text))
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ToolCall>, D::Error> {
    Ok(Option::<Vec<ToolCall>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn every_role_round_trips() {
        let call = ToolCall::new("call_9", "search", json!({"q": "rust"}));
        let msgs = vec![
            Message::system("be brief"),
            Message::user("find rust"),
            Message::assistant_calls(vec![call]),
            Message::tool("call_9", "3 hits"),
            Message::assistant("done"),
        ];
        let wire = serde_json::to_value(&msgs).unwrap();
        assert_eq!(
            wire,
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "find rust"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_9", "type": "function",
                     "function": {"name": "search", "arguments": "{\"q\":\"rust\"}"}}]},
                {"role": "tool", "tool_call_id": "call_9", "content": "3 hits"},
                {"role": "assistant", "content": "done"}
            ])
        );
        assert_eq!(serde_json::from_value::<Vec<Message>>(wire).unwrap(), msgs);
    }

    #[test]
    fn reads_content_parts_and_null_tool_calls() {
        let user: Message = serde_json::from_value(json!({"role": "user", "content": [
            {"type": "text", "text": "hello "}, {"type": "text", "text": "there"}]}))
        .unwrap();
        assert_eq!(user, Message::user("hello there"));
        let asst: Message = serde_json::from_value(
            json!({"role": "assistant", "content": "hi", "tool_calls": null}),
        )
        .unwrap();
        assert_eq!(asst, Message::assistant("hi"));
        assert_eq!(asst.role(), "assistant");
        assert_eq!(asst.text(), Some("hi"));
    }

    #[test]
    fn unknown_role_is_an_error() {
        let err = serde_json::from_value::<Message>(json!({"role": "robot", "content": "x"}))
            .unwrap_err();
        assert!(err.to_string().contains("robot"), "{err}");
    }
}
