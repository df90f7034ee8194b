//! The simulated model's script: which reply each conversation gets ([`Script`]).

use std::{collections::BTreeMap, path::Path};

use agentry_core::Message;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::LlmError;

/// A script: turns matched against the conversation, a latency model, and optional faults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Name shown in traces (`sim:NAME`); defaults to the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// How fast the simulated model answers.
    #[serde(default)]
    pub latency: Latency,
    /// How calls are written: `openai` (native `tool_calls`) or a text format the parser reads.
    #[serde(default = "default_format")]
    pub format: String,
    /// Faults to inject (for testing clients).
    #[serde(default)]
    pub faults: Faults,
    /// The replies; the first whose `when` holds answers.
    pub turns: Vec<Turn>,
    #[serde(skip)]
    compiled: Vec<Compiled>,
}

fn default_format() -> String {
    "openai".into()
}

/// Time to first token and tokens per second, with optional seeded jitter.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Milliseconds before the first token.
    #[serde(default)]
    pub ttft_ms: f64,
    /// Output tokens per second after the first (0 or absent: all at once).
    #[serde(default)]
    pub tokens_per_s: f64,
    /// Each gap is multiplied by a factor uniform in `[1 - jitter, 1 + jitter]`.
    #[serde(default)]
    pub jitter: f64,
    /// Seed of the jitter.
    #[serde(default)]
    pub seed: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            ttft_ms: 0.0,
            tokens_per_s: 0.0,
            jitter: 0.0,
            seed: 0,
        }
    }
}

/// Faults the simulated server injects.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Answer the first N requests with `fail_status` instead.
    #[serde(default)]
    pub fail_first: u64,
    /// The status of those answers (default 500).
    #[serde(default)]
    pub fail_status: Option<u16>,
    /// A `Retry-After` header (seconds) on those answers.
    #[serde(default)]
    pub retry_after_s: Option<f64>,
    /// Stop sending after this many chunks and keep the connection open.
    #[serde(default)]
    pub hang_after_chunks: Option<usize>,
    /// Cut the connection after this many chunks.
    #[serde(default)]
    pub close_after_chunks: Option<usize>,
    /// Write the event stream in pieces of this many bytes.
    #[serde(default)]
    pub chunk_bytes: Option<usize>,
    /// Send this raw line instead of the first chunk (a malformed event).
    #[serde(default)]
    pub garbage: Option<String>,
}

/// One reply and when it applies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Conditions, all of which must hold; none means always.
    #[serde(default)]
    pub when: When,
    /// Text of the reply (before any calls). `{{var}}` is replaced.
    #[serde(default)]
    pub text: Option<String>,
    /// Calls of the reply.
    #[serde(default)]
    pub calls: Vec<ScriptCall>,
}

/// When a turn applies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// The assistant turn number (1 for the first reply in the conversation).
    #[serde(default)]
    pub turn: Option<usize>,
    /// The role of the last message: `user` or `tool`.
    #[serde(default)]
    pub last: Option<String>,
    /// A regex the last user message must match; named groups become `{{name}}`.
    #[serde(default)]
    pub user: Option<String>,
    /// A regex the last turn's tool results (joined by newlines) must match; named groups
    /// become `{{name}}`. `{{tool}}` is those results.
    #[serde(default)]
    pub tool: Option<String>,
}

/// A call in a scripted reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptCall {
    /// Tool name.
    pub name: String,
    /// Arguments; strings may hold `{{var}}`.
    #[serde(default)]
    pub arguments: Value,
}

#[derive(Debug, Clone)]
struct Compiled {
    user: Option<Regex>,
    tool: Option<Regex>,
}

/// The reply chosen for a conversation, with variables filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Text before calls.
    pub text: String,
    /// Calls, as (name, arguments).
    pub calls: Vec<(String, Value)>,
}

impl Script {
    /// Reads a script from YAML or JSON text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, LlmError> {
        let trimmed = text.trim_start();
        let mut script: Script = if trimmed.starts_with('{') {
            serde_json::from_str(text).map_err(|e| LlmError::Script(format!("{origin}: {e}")))?
        } else {
            serde_norway::from_str(text).map_err(|e| LlmError::Script(format!("{origin}: {e}")))?
        };
        script.compile(origin)?;
        Ok(script)
    }

    /// Reads a script file (`.yaml`, `.yml` or `.json`).
    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LlmError::Script(format!("cannot read {}: {e}", path.display())))?;
        let mut script = Self::parse(&text, &path.display().to_string())?;
        if script.name.is_none() {
            script.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        Ok(script)
    }

    fn compile(&mut self, origin: &str) -> Result<(), LlmError> {
        if self.turns.is_empty() {
            return Err(LlmError::Script(format!(
                "{origin}: the script has no turns"
            )));
        }
        let formats = [
            "openai", "hermes", "llama", "mistral", "python", "react", "text",
        ];
        if !formats.contains(&self.format.as_str()) {
            return Err(LlmError::Script(format!(
                "{origin}: unknown format `{}`; expected one of {}",
                self.format,
                formats.join(", ")
            )));
        }
        let l = self.latency;
        if !(l.ttft_ms >= 0.0 && l.tokens_per_s >= 0.0 && (0.0..1.0).contains(&l.jitter)) {
            return Err(LlmError::Script(format!(
                "{origin}: latency needs ttft_ms >= 0, tokens_per_s >= 0 and 0 <= jitter < 1"
            )));
        }
        let regex = |i: usize,
                     what: &str,
                     re: &Option<String>|
         -> Result<Option<Regex>, LlmError> {
            re.as_deref()
                .map(|r| {
                    Regex::new(r).map_err(|e| {
                        LlmError::Script(format!("{origin}: turn {} `{what}` regex: {e}", i + 1))
                    })
                })
                .transpose()
        };
        self.compiled = self
            .turns
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(Compiled {
                    user: regex(i, "user", &t.when.user)?,
                    tool: regex(i, "tool", &t.when.tool)?,
                })
            })
            .collect::<Result<_, LlmError>>()?;
        for (i, t) in self.turns.iter().enumerate() {
            if let Some(last) = t
                .when
                .last
                .as_deref()
                .filter(|l| !matches!(*l, "user" | "tool"))
            {
                return Err(LlmError::Script(format!(
                    "{origin}: turn {}: `last` must be user or tool, not `{last}`",
                    i + 1
                )));
            }
            if t.text.is_none() && t.calls.is_empty() {
                return Err(LlmError::Script(format!(
                    "{origin}: turn {} has neither text nor calls",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    /// The name shown in traces.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("script")
    }

    /// The reply for `messages`, or an error naming the turn and what the script expected.
    pub fn reply(&self, messages: &[Message]) -> Result<Reply, LlmError> {
        let turn = messages
            .iter()
            .filter(|m| matches!(m, Message::Assistant { .. }))
            .count()
            + 1;
        let last_user = messages.iter().rev().find_map(|m| match m {
            Message::User { content } => Some(content.as_str()),
            _ => None,
        });
        // The tool results of the last turn: the tool messages after the last assistant message.
        let tool_results: Vec<&str> = messages
            .iter()
            .rev()
            .take_while(|m| !matches!(m, Message::Assistant { .. }))
            .filter_map(|m| match m {
                Message::Tool { content, .. } => Some(content.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let joined = tool_results.join("\n");
        let last_tool = (!tool_results.is_empty()).then_some(joined.as_str());
        let last_role = messages.last().map(Message::role).unwrap_or("none");
        'turns: for (t, c) in self.turns.iter().zip(&self.compiled) {
            let mut vars = BTreeMap::new();
            vars.insert("turn".to_owned(), turn.to_string());
            vars.insert("user".to_owned(), last_user.unwrap_or_default().to_owned());
            vars.insert("tool".to_owned(), last_tool.unwrap_or_default().to_owned());
            if t.when.turn.is_some_and(|n| n != turn)
                || t.when.last.as_deref().is_some_and(|l| l != last_role)
            {
                continue;
            }
            for (re, text) in [(&c.user, last_user), (&c.tool, last_tool)] {
                let Some(re) = re else { continue };
                let Some(caps) = text.and_then(|s| re.captures(s)) else {
                    continue 'turns;
                };
                for name in re.capture_names().flatten() {
                    if let Some(m) = caps.name(name) {
                        vars.insert(name.to_owned(), m.as_str().to_owned());
                    }
                }
            }
            return Ok(Reply {
                text: t
                    .text
                    .as_deref()
                    .map(|s| fill(s, &vars))
                    .unwrap_or_default(),
                calls: t
                    .calls
                    .iter()
                    .map(|call| (call.name.clone(), fill_value(&call.arguments, &vars)))
                    .collect(),
            });
        }
        let last_text = messages.last().and_then(Message::text).unwrap_or("");
        let expected: Vec<String> = self
            .turns
            .iter()
            .enumerate()
            .map(|(i, t)| format!("#{} {}", i + 1, describe(&t.when)))
            .collect();
        Err(LlmError::Script(format!(
            "`{}` has no turn for assistant turn {turn} (last message: {last_role} {:?}); its turns: {}",
            self.name(),
            last_text.chars().take(120).collect::<String>(),
            expected.join("; ")
        )))
    }
}

fn describe(w: &When) -> String {
    let mut parts = Vec::new();
    if let Some(t) = w.turn {
        parts.push(format!("turn {t}"));
    }
    if let Some(l) = &w.last {
        parts.push(format!("last message from {l}"));
    }
    if let Some(u) = &w.user {
        parts.push(format!("user matches /{u}/"));
    }
    if let Some(t) = &w.tool {
        parts.push(format!("tool result matches /{t}/"));
    }
    if parts.is_empty() {
        "always".into()
    } else {
        format!("when {}", parts.join(" and "))
    }
}

fn fill(template: &str, vars: &BTreeMap<String, String>) -> String {
    if !template.contains("{{") {
        return template.to_owned();
    }
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

fn fill_value(v: &Value, vars: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_value(x, vars)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_value(x, vars)))
                .collect(),
        ),
        Value::Null => Value::Object(Default::default()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    const WEATHER: &str = r#"
turns:
  - when: { last: user, user: "(?i)\\b(?:in|for) (?P<city>[A-Z][a-z]+)" }
    calls: [{ name: get_weather, arguments: { city: "{{city}}" } }]
  - when: { last: tool }
    text: "It is {{tool}}."
"#;

    #[test]
    fn turns_match_and_fill_variables() {
        let s = Script::parse(WEATHER, "test").unwrap();
        let reply = s
            .reply(&[Message::user("What is the weather in Paris?")])
            .unwrap();
        assert_eq!(
            reply,
            Reply {
                text: String::new(),
                calls: vec![("get_weather".into(), json!({"city": "Paris"}))]
            }
        );
        let convo = vec![
            Message::user("weather in Paris?"),
            Message::assistant_calls(vec![agentry_core::ToolCall::new(
                "c",
                "get_weather",
                json!({}),
            )]),
            Message::tool("c", "sunny, 21 C"),
        ];
        assert_eq!(s.reply(&convo).unwrap().text, "It is sunny, 21 C.");
    }

    #[test]
    fn unmatched_conversation_names_turn_and_expectations() {
        let s = Script::parse(WEATHER, "test").unwrap();
        let err = s.reply(&[Message::user("hello")]).unwrap_err().to_string();
        assert!(err.contains("no turn for assistant turn 1"), "{err}");
        assert!(
            err.contains("#1 when last message from user and user matches"),
            "{err}"
        );
    }

    #[test]
    fn bad_scripts_are_refused_with_a_reason() {
        for (text, want) in [
            ("turns: []", "no turns"),
            ("format: xml\nturns: [{text: hi}]", "unknown format `xml`"),
            ("turns: [{when: {user: '('}, text: hi}]", "regex"),
            (
                "turns: [{when: {last: bot}, text: hi}]",
                "must be user or tool",
            ),
            ("turns: [{}]", "neither text nor calls"),
            ("turns: [{text: hi, colour: red}]", "unknown field `colour`"),
            ("latency: {jitter: 2}\nturns: [{text: hi}]", "jitter"),
        ] {
            let err = Script::parse(text, "s.yaml").unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
