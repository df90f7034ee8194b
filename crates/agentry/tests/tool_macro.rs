//! `#[agentry::tool]`: the spec a function makes (name, description, JSON Schema with the
//! parameters' descriptions) and how its calls run (decoding, context, results, errors).
//!
//! Meant for the facade, as `crates/agentry/tests/tool_macro.rs`; it needs the dev-dependencies
//! `tokio` (macros, rt), `serde_json` and `pretty_assertions`.

use agentry::tools::{CallContext, DynTool, Tool, ToolSet};
use agentry::{ErrorKind, ToolError};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// Current weather for a city.
///
/// Uses the built-in table:
/// no network.
///
/// # Arguments
///
/// * `city` - The city name, e.g. "Oslo".
/// * `units` - `"c"` or `"f"`; Celsius when left out.
#[agentry::tool]
async fn get_weather(city: String, units: Option<String>) -> Result<Value, ToolError> {
    if city.trim().is_empty() {
        return Err(ToolError::invalid_arguments("`city` is empty; name a city"));
    }
    tokio::task::yield_now().await;
    Ok(json!({ "city": city, "units": units.unwrap_or_else(|| "c".to_owned()), "temp": 21 }))
}

/// Reads a note by its key.
#[agentry::tool]
fn read_note(
    #[describe("The note's key, e.g. \"todo\".")] key: String,
) -> Result<String, std::io::Error> {
    match key.as_str() {
        "todo" => Ok("buy milk".to_owned()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no note `{key}`; try `todo`"),
        )),
    }
}

/// Adds two integers.
///
/// # Arguments
///
/// - `a`: The first addend.
/// - `b`: The second addend.
#[agentry::tool(name = "add-numbers", idempotent)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Tells the id of the call it runs in.
#[agentry::tool(idempotent)]
async fn whoami(cx: CallContext) -> String {
    cx.call_id
}

/// Lists the most recent notes.
#[agentry::tool(description = "Lists recent notes, newest first.")]
fn list_notes(
    #[serde(default)]
    #[describe("How many; 0 or left out means all.")]
    limit: u32,
    cx: &CallContext,
) -> Vec<String> {
    let notes = vec![format!("note of {}", cx.call_id), "older".to_owned()];
    if limit == 0 {
        notes
    } else {
        notes.into_iter().take(limit as usize).collect()
    }
}

/// Forgets everything.
#[agentry::tool]
fn forget() {}

fn cx(id: &str) -> CallContext {
    CallContext::detached(id)
}

#[test]
fn the_doc_comment_and_its_arguments_section_make_the_spec() {
    let mut set = ToolSet::new();
    set.add(get_weather).unwrap();
    let spec = &set.specs()[0];
    assert_eq!(spec.name, "get_weather");
    assert_eq!(
        spec.description,
        "Current weather for a city.\n\nUses the built-in table: no network."
    );
    assert_eq!(
        spec.parameters,
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": { "description": "The city name, e.g. \"Oslo\".", "type": "string" },
                "units": {
                    "description": "`\"c\"` or `\"f\"`; Celsius when left out.",
                    "type": ["string", "null"],
                },
            },
            "required": ["city"],
        })
    );
    assert!(set.check("get_weather", json!({ "city": "Oslo" })).is_ok());
    assert!(set.check("get_weather", json!({ "city": 3 })).is_err());
    assert!(!DynTool::is_idempotent(&get_weather));
}

#[tokio::test]
async fn an_async_tool_decodes_its_arguments_and_passes_its_tool_error_on() {
    let out = get_weather
        .call_json(json!({ "city": "Oslo" }), cx("c1"))
        .await
        .unwrap();
    assert_eq!(out, json!({ "city": "Oslo", "units": "c", "temp": 21 }));

    let err = get_weather
        .call_json(json!({ "city": " " }), cx("c2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArguments);
    assert_eq!(err.for_model(), "`city` is empty; name a city");

    // Unknown fields are refused, as the schema says (`additionalProperties: false`).
    let err = get_weather
        .call_json(json!({ "city": "Oslo", "country": "NO" }), cx("c3"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArguments);

    // The function itself stays callable.
    let direct = get_weather::run("Oslo".to_owned(), Some("f".to_owned()))
        .await
        .unwrap();
    assert_eq!(direct["units"], "f");
}

#[tokio::test]
async fn a_sync_tool_turns_its_error_into_a_failure_the_model_reads() {
    let spec = read_note.spec();
    assert_eq!(spec.description, "Reads a note by its key.");
    assert_eq!(
        spec.parameters["properties"]["key"]["description"],
        "The note's key, e.g. \"todo\"."
    );
    let out = read_note
        .call_json(json!({ "key": "todo" }), cx("c1"))
        .await
        .unwrap();
    assert_eq!(out, json!("buy milk"));
    let err = read_note
        .call_json(json!({ "key": "shopping" }), cx("c2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ToolFailed);
    assert_eq!(err.for_model(), "no note `shopping`; try `todo`");
}

#[tokio::test]
async fn the_name_can_be_given_and_the_tool_declared_idempotent() {
    assert_eq!(<add as Tool>::NAME, "add-numbers");
    assert!(DynTool::is_idempotent(&add));
    let spec = add.spec();
    assert_eq!(spec.name, "add-numbers");
    assert_eq!(spec.description, "Adds two integers.");
    assert_eq!(
        spec.parameters,
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "a": { "description": "The first addend.", "type": "integer", "format": "int64" },
                "b": { "description": "The second addend.", "type": "integer", "format": "int64" },
            },
            "required": ["a", "b"],
        })
    );
    let out = add
        .call_json(json!({ "a": 2, "b": 3 }), cx("c1"))
        .await
        .unwrap();
    assert_eq!(out, json!(5));
    assert_eq!(add::run(2, 3), 5);
}

#[tokio::test]
async fn a_call_context_parameter_receives_the_context_and_is_no_argument() {
    let spec = whoami.spec();
    assert_eq!(
        spec.parameters,
        json!({ "type": "object", "additionalProperties": false })
    );
    assert!(DynTool::is_idempotent(&whoami));
    let out = whoami.call_json(json!({}), cx("call-7")).await.unwrap();
    assert_eq!(out, json!("call-7"));

    // By reference too, beside an argument whose `#[serde(default)]` makes it optional.
    let spec = list_notes.spec();
    assert_eq!(spec.description, "Lists recent notes, newest first.");
    assert_eq!(
        spec.parameters,
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "limit": {
                    "description": "How many; 0 or left out means all.",
                    "type": "integer",
                    "format": "uint32",
                    "minimum": 0,
                    "default": 0,
                },
            },
        })
    );
    let out = list_notes.call_json(json!({}), cx("c9")).await.unwrap();
    assert_eq!(out, json!(["note of c9", "older"]));
    let out = list_notes
        .call_json(json!({ "limit": 1 }), cx("c9"))
        .await
        .unwrap();
    assert_eq!(out, json!(["note of c9"]));
}

#[tokio::test]
async fn a_tool_returning_nothing_answers_null() {
    let out = forget.call_json(json!({}), cx("c1")).await.unwrap();
    assert_eq!(out, Value::Null);
}

#[test]
fn tools_made_by_the_macro_sit_in_one_set() {
    let mut set = ToolSet::new();
    set.add(get_weather).unwrap();
    set.add(read_note).unwrap();
    set.add(add).unwrap();
    set.add(whoami).unwrap();
    set.add(list_notes).unwrap();
    set.add(forget).unwrap();
    assert_eq!(
        set.names(),
        [
            "get_weather",
            "read_note",
            "add-numbers",
            "whoami",
            "list_notes",
            "forget"
        ]
    );
}
