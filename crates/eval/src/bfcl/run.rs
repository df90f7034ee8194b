//! Running BFCL entries through a model: rendering them as BFCL does ([`prompt_messages`],
//! [`fc_tools`]), asking concurrently ([`run_entries`]), and the metrics of a run.

use std::{sync::Arc, time::Instant};

use agentry_core::{Message, ToolSpec};
use agentry_llm::{ChatRequest, Model, complete};
use agentry_schema::ArgValidator;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Entry, oracle_output};

/// How the entries are put to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BfclMode {
    /// The functions in the system prompt; the answer is Python call syntax in text.
    Prompt,
    /// The functions as native tools (dots in names become `_`); the answer is tool calls.
    Native,
}

/// Who answers.
#[derive(Clone)]
pub enum Answerer {
    /// Each entry's first possible answer (the checker's ceiling).
    Oracle,
    /// A model backend.
    Model(Arc<dyn Model>),
}

/// One entry's answer, as stored in a results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryResult {
    /// The entry.
    pub id: String,
    /// Which trial of the entry (from 0).
    #[serde(default)]
    pub trial: u32,
    /// Raw text (prompt mode) or decoded calls `[{name: {param: value}}]` (native mode).
    pub result: Value,
    /// Milliseconds the model took.
    #[serde(default)]
    pub latency_ms: f64,
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// The model's text, when the result holds decoded calls (native mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The backend's error, when the model could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

const SYSTEM_PROMPT: &str = "You are an expert in composing functions. You are given a question and a set of possible functions. Based on the question, you will need to make one or more function/tool calls to achieve the purpose. If none of the functions can be used, point it out. If the given question lacks the parameters required by the function, also point it out.\n\nYou should only return the function calls in your response.\n\nIf you decide to invoke any of the function(s), you MUST put it in the format of [func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]\n\nYou SHOULD NOT include any other text in the response.\n\nHere is a list of functions in JSON format that you can invoke.\n";

/// The docs as BFCL shows them to a model (spec §1.4): a language hint on every description;
/// for Java and JavaScript every param's type rewritten to `string` with the real type in
/// words, array item types described and removed, JavaScript dict properties moved into text.
pub fn shown_docs(entry: &Entry) -> Vec<Value> {
    let lang = if entry.category.contains("javascript") {
        "JavaScript"
    } else if entry.category.contains("java") {
        "Java"
    } else {
        "Python"
    };
    let hint = match lang {
        "Java" => " Note that the provided function is in Java 8 SDK syntax.",
        "JavaScript" => " Note that the provided function is in JavaScript syntax.",
        _ => " Note that the provided function is in Python 3 syntax.",
    };
    entry
        .functions
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let desc = f["description"].as_str().unwrap_or("").to_owned();
            f["description"] = json!(format!("{desc}{hint}"));
            if lang != "Python"
                && let Some(props) = f.pointer_mut("/parameters/properties").and_then(Value::as_object_mut)
            {
                for p in props.values_mut() {
                    let ty = p["type"].as_str().unwrap_or("any").to_owned();
                    let mut note = format!(" This is {lang} {ty} type parameter in string representation.");
                    if let Some(items) = p.get("items").and_then(|i| i["type"].as_str()).map(str::to_owned) {
                        note.push_str(&format!(" The list elements are of type {items}; they are not in string representation."));
                        if let Some(o) = p.as_object_mut() {
                            o.remove("items");
                        }
                    }
                    if lang == "JavaScript"
                        && ty == "dict"
                        && let Some(props) = p.as_object_mut().and_then(|o| o.remove("properties"))
                    {
                        note.push_str(&format!(" The dictionary entries have the following schema; they are not in string representation. {props}"));
                    }
                    let d = p["description"].as_str().unwrap_or("").to_owned();
                    p["description"] = json!(format!("{d}{note}"));
                    p["type"] = json!("string");
                }
            }
            f
        })
        .collect()
}

/// The chat messages of an entry in prompting mode: BFCL's system prompt with the functions,
/// merged into the entry's own system message if it has one.
pub fn prompt_messages(entry: &Entry) -> Vec<Message> {
    let question = &entry.question;
    let docs = serde_json::to_string_pretty(&shown_docs(entry)).unwrap_or_default();
    let mut system = format!("{SYSTEM_PROMPT}{docs}\n");
    let mut out = Vec::new();
    for (i, m) in question.iter().enumerate() {
        let content = m["content"].as_str().unwrap_or("").to_owned();
        match m["role"].as_str() {
            Some("system") if i == 0 => system = format!("{system}\n{content}"),
            Some("system") => out.push(Message::system(content)),
            Some("assistant") => out.push(Message::assistant(content)),
            _ => out.push(Message::user(content)),
        }
    }
    out.insert(0, Message::system(system));
    out
}

fn fc_type(t: &str) -> &'static str {
    match t {
        "dict" | "HashMap" | "Hashtable" | "object" => "object",
        "float" | "double" | "number" => "number",
        "tuple" | "array" | "list" | "ArrayList" | "Array" | "Queue" | "Stack" => "array",
        "byte" | "short" | "long" | "Bigint" | "integer" => "integer",
        "bool" | "boolean" => "boolean",
        _ => "string",
    }
}

fn fc_schema(p: &Value) -> Value {
    match p {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("type", Value::String(t)) => {
                        out.insert("type".into(), json!(fc_type(t)));
                        if t == "float" {
                            out.insert("format".into(), json!("float"));
                        }
                    }
                    ("properties", Value::Object(props)) => {
                        out.insert(
                            "properties".into(),
                            Value::Object(
                                props
                                    .iter()
                                    .map(|(n, s)| (n.clone(), fc_schema(s)))
                                    .collect(),
                            ),
                        );
                    }
                    ("items", s) => {
                        out.insert("items".into(), fc_schema(s));
                    }
                    ("optional", _) => {}
                    (_, v) => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// An entry's question as chat messages, for native tool calling (the tools go separately).
pub fn native_messages(entry: &Entry) -> Vec<Message> {
    entry
        .question
        .iter()
        .map(|m| {
            let content = m["content"].as_str().unwrap_or("");
            match m["role"].as_str() {
                Some("system") => Message::system(content),
                Some("assistant") => Message::assistant(content),
                _ => Message::user(content),
            }
        })
        .collect()
}

/// The functions of an entry as native tools, converted as BFCL does for FC models.
pub fn fc_tools(entry: &Entry) -> Vec<ToolSpec> {
    shown_docs(entry)
        .iter()
        .map(|f| {
            let name = f["name"].as_str().unwrap_or("").replace('.', "_");
            let desc = f["description"].as_str().unwrap_or("").to_owned();
            let mut params = fc_schema(&f["parameters"]);
            params["type"] = json!("object");
            ToolSpec::new(name, desc, params)
        })
        .collect()
}

/// Asks for every entry, `concurrency` at a time; `on_done` sees each result as it lands.
pub async fn run_entries(
    entries: Vec<(Entry, u32)>,
    answerer: Answerer,
    mode: BfclMode,
    concurrency: usize,
    on_done: impl Fn(&EntryResult),
) -> Vec<EntryResult> {
    let answerer = &answerer;
    let mut results = Vec::with_capacity(entries.len());
    let mut pending = stream::iter(entries.into_iter().map(|(entry, trial)| async move {
        let t = Instant::now();
        match answerer {
            Answerer::Oracle => {
                let text = oracle_output(&entry);
                EntryResult {
                    id: entry.id,
                    trial,
                    result: json!(text),
                    latency_ms: t.elapsed().as_secs_f64() * 1000.0,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    text: None,
                    error: None,
                }
            }
            Answerer::Model(model) => {
                let request = match mode {
                    BfclMode::Prompt => ChatRequest::new(prompt_messages(&entry)),
                    BfclMode::Native => {
                        ChatRequest::new(native_messages(&entry)).tools(fc_tools(&entry))
                    }
                };
                let outcome = complete(model.as_ref(), request).await;
                let latency_ms = t.elapsed().as_secs_f64() * 1000.0;
                match outcome {
                    Ok(r) => {
                        // Native mode: the calls as decoded; no call at all decodes to nothing (an
                        // empty list gets the same verdicts as upstream's failed decode).
                        let (result, text) = match mode {
                            BfclMode::Prompt => (json!(r.text), None),
                            BfclMode::Native => (
                                Value::Array(r.calls.iter().map(|c| json!({ c.call.name.clone(): c.call.arguments.clone() })).collect()),
                                Some(r.text.clone()),
                            ),
                        };
                        EntryResult {
                            id: entry.id,
                            trial,
                            result,
                            latency_ms,
                            prompt_tokens: r.completion.usage.prompt_tokens,
                            completion_tokens: r.completion.usage.completion_tokens,
                            text,
                            error: None,
                        }
                    }
                    Err(e) => EntryResult {
                        id: entry.id,
                        trial,
                        result: Value::Null,
                        latency_ms,
                        prompt_tokens: 0,
                        completion_tokens: 0,
                        text: None,
                        error: Some(e.to_string()),
                    },
                }
            }
        }
    }))
    .buffer_unordered(concurrency.max(1));
    while let Some(r) = pending.next().await {
        on_done(&r);
        results.push(r);
    }
    results
}

/// Whether every call in a decoded answer names an offered function and has arguments valid
/// against its (FC-converted) JSON Schema; `None` when nothing decoded.
pub fn schema_valid(
    entry: &Entry,
    decoded: &[super::DecodedCall],
    underscore_to_dot: bool,
) -> Option<bool> {
    if decoded.is_empty() {
        return None;
    }
    let tools = fc_tools(entry);
    Some(decoded.iter().all(|call| {
        let name = if underscore_to_dot {
            call.name.clone()
        } else {
            call.name.replace('.', "_")
        };
        let Some(spec) = tools.iter().find(|t| t.name == name) else {
            return false;
        };
        let Ok(validator) = ArgValidator::new(spec) else {
            return false;
        };
        let args = super::PyVal::Dict(
            call.args
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone().map_or(super::PyVal::None, super::PyVal::Str),
                        v.clone(),
                    )
                })
                .collect(),
        );
        validator.is_valid(&args.to_tagged())
    }))
}
