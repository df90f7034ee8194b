//! Each format the parser reads, whole and streamed, with what it repairs and refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_parse::{CallParser, Event, Format, Parsed, Repair, parse};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// (name, arguments) of each call, the trimmed text, and the malformed reasons.
fn summary(p: &Parsed) -> (Vec<(String, Value)>, String, Vec<String>) {
    (
        p.calls
            .iter()
            .map(|c| (c.name.clone(), c.arguments.clone()))
            .collect(),
        p.text.trim().to_owned(),
        p.malformed.iter().map(|m| m.reason.clone()).collect(),
    )
}

fn calls(format: Format, text: &str) -> Vec<(String, Value)> {
    let p = parse(format, text).unwrap();
    assert!(p.malformed.is_empty(), "{text:?} gave {:?}", p.malformed);
    p.calls
        .iter()
        .map(|c| (c.name.clone(), c.arguments.clone()))
        .collect()
}

fn one(name: &str, args: Value) -> Vec<(String, Value)> {
    vec![(name.to_owned(), args)]
}

#[test]
fn openai_tool_calls_with_string_or_object_arguments() {
    let text = r#"{"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "call_2", "type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}]}"#;
    for format in [Format::Auto, Format::OpenAi] {
        let p = parse(format, text).unwrap();
        assert_eq!(
            summary(&p),
            (
                vec![
                    ("get_weather".into(), json!({"city": "Paris"})),
                    ("add".into(), json!({"a": 1, "b": 2}))
                ],
                String::new(),
                vec![]
            )
        );
        assert_eq!(p.calls[0].id.as_deref(), Some("call_1"));
        assert_eq!(p.calls[0].format, Format::OpenAi);
    }
    assert_eq!(
        calls(
            Format::Auto,
            r#"[{"type":"function","function":{"name":"f","arguments":"{}"}}]"#
        ),
        one("f", json!({}))
    );
}

#[test]
fn hermes_tags_several_in_a_row_with_text_around() {
    let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>\nDone.";
    for format in [Format::Auto, Format::Hermes] {
        let p = parse(format, text).unwrap();
        let (calls, text, bad) = summary(&p);
        assert_eq!(
            calls,
            vec![
                ("get_weather".into(), json!({"city": "Oslo"})),
                ("get_time".into(), json!({}))
            ]
        );
        assert_eq!(text, "Let me check.\nDone.");
        assert!(bad.is_empty());
        assert!(
            p.calls
                .iter()
                .all(|c| c.format == Format::Hermes && c.is_clean())
        );
    }
}

#[test]
fn llama_json_with_and_without_python_tag() {
    let plain = r#"{"name": "get_weather", "parameters": {"city": "Rome"}}"#;
    let p = parse(Format::Auto, plain).unwrap();
    assert_eq!(summary(&p).0, one("get_weather", json!({"city": "Rome"})));
    assert_eq!(p.calls[0].format, Format::Llama);
    assert_eq!(
        calls(Format::Llama, plain),
        one("get_weather", json!({"city": "Rome"}))
    );
    let tagged =
        r#"<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "parameters": {}}"#;
    for format in [Format::Auto, Format::Llama] {
        let p = parse(format, tagged).unwrap();
        assert_eq!(
            summary(&p),
            (
                vec![("a".into(), json!({"x": 1})), ("b".into(), json!({}))],
                String::new(),
                vec![]
            )
        );
    }
}

#[test]
fn mistral_array_and_args_forms() {
    let text = r#"[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"y": "z"}}]"#;
    for format in [Format::Auto, Format::Mistral] {
        assert_eq!(
            calls(format, text),
            vec![
                ("a".into(), json!({"x": 1})),
                ("b".into(), json!({"y": "z"}))
            ]
        );
    }
    let v11 = r#"[TOOL_CALLS]get_weather[ARGS]{"city": "Lyon"}[TOOL_CALLS]get_time[CALL_ID]abc123[ARGS]{}"#;
    let p = parse(Format::Mistral, v11).unwrap();
    assert_eq!(
        summary(&p).0,
        vec![
            ("get_weather".into(), json!({"city": "Lyon"})),
            ("get_time".into(), json!({}))
        ]
    );
    assert_eq!(p.calls[1].id.as_deref(), Some("abc123"));
}

#[test]
fn python_call_syntax() {
    let text = r#"[get_weather(city="Paris", days=3), convert(x=1.5, unit='C', flags=[True, None], opts={'a': (1, 2)})]"#;
    for format in [Format::Auto, Format::Python] {
        assert_eq!(
            calls(format, text),
            vec![
                ("get_weather".into(), json!({"city": "Paris", "days": 3})),
                (
                    "convert".into(),
                    json!({"x": 1.5, "unit": "C", "flags": [true, null], "opts": {"a": [1, 2]}})
                )
            ]
        );
    }
    assert_eq!(
        calls(Format::Python, "math.factorial(n=5)"),
        one("math.factorial", json!({"n": 5}))
    );
    assert_eq!(
        calls(Format::Auto, "math.factorial(n=-5)\n"),
        one("math.factorial", json!({"n": -5}))
    );
    assert_eq!(calls(Format::Python, "[]"), vec![]);
    assert_eq!(calls(Format::Python, "f(a=1), g(b=2)").len(), 2);
}

#[test]
fn python_positional_arguments_are_malformed_with_a_reason() {
    let p = parse(Format::Python, r#"[get_weather("Paris")]"#).unwrap();
    assert!(p.calls.is_empty());
    assert_eq!(p.malformed.len(), 1);
    assert!(
        p.malformed[0].reason.contains("name=value"),
        "{:?}",
        p.malformed
    );
    assert_eq!(p.malformed[0].excerpt, r#"get_weather("Paris")"#);
}

#[test]
fn react_action_and_input() {
    let text = "Thought: I need the weather.\nAction: get_weather\nAction Input: {\"city\": \"Paris\"}\nObservation:";
    for format in [Format::Auto, Format::React] {
        let p = parse(format, text).unwrap();
        let (calls, text, bad) = summary(&p);
        assert_eq!(calls, one("get_weather", json!({"city": "Paris"})));
        assert_eq!(text, "Thought: I need the weather.\nObservation:");
        assert!(bad.is_empty());
    }
    let p = parse(
        Format::React,
        "Action: search\nAction Input: rust parsers\n",
    )
    .unwrap();
    assert!(p.calls.is_empty());
    assert!(
        p.malformed[0].reason.contains("must be a JSON object"),
        "{:?}",
        p.malformed
    );
}

#[test]
fn prose_stays_text() {
    for text in [
        "Just an answer, no tools needed.",
        "Use {braces} carefully, and [brackets] too.",
        "Here is JSON: {\"a\": 1} and a list [1, 2].",
        "Note(this is prose) and print(x) mid-line.",
        "I'm sure {it's} fine; don't worry",
        "{\"name\": \"Bob\", \"age\": 3}",
    ] {
        let p = parse(Format::Auto, text).unwrap();
        assert_eq!(
            summary(&p),
            (vec![], text.trim().to_owned(), vec![]),
            "{text:?}"
        );
    }
}

#[test]
fn repairs_are_made_and_reported() {
    let cases: &[(&str, &[Repair])] = &[
        (
            "<tool_call>{'name': 'f', 'arguments': {'x': 1,},}</tool_call>",
            &[Repair::TrailingComma, Repair::SingleQuotes],
        ),
        (
            "<tool_call>{name: \"f\", arguments: {x: True}}</tool_call>",
            &[Repair::UnquotedKey, Repair::PythonLiteral],
        ),
        (
            "```json\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n```",
            &[Repair::CodeFence],
        ),
        (
            "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}",
            &[Repair::ClosedBrackets],
        ),
        (
            "{\"name\": \"f\", \"arguments\": {\"x\": 1}",
            &[Repair::ClosedBrackets],
        ),
        (
            "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}</tool_call>",
            &[Repair::ClosedBrackets],
        ),
        ("[f(x=true)]", &[Repair::JsonLiteralInPython]),
    ];
    for (text, want) in cases {
        let p = parse(Format::Auto, text).unwrap();
        assert_eq!(
            summary(&p),
            (
                one(
                    "f",
                    json!({"x": if text.contains("True") || text.contains("true") { json!(true) } else { json!(1) }})
                ),
                String::new(),
                vec![]
            ),
            "{text:?}"
        );
        assert_eq!(p.calls[0].repairs, want.to_vec(), "{text:?}");
    }
}

#[test]
fn unrepairable_calls_are_malformed_with_span() {
    let text = "ok <tool_call>{\"name\": \"f\", \"arguments\": {\"x\": }}</tool_call> after";
    let p = parse(Format::Auto, text).unwrap();
    assert!(p.calls.is_empty());
    assert_eq!(p.malformed.len(), 1);
    let m = &p.malformed[0];
    assert_eq!(
        &text[m.span.clone()],
        "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": }}</tool_call>"
    );
    assert_eq!(p.text, "ok  after");
    let p = parse(
        Format::Auto,
        "<tool_call>{\"name\": \"f\", \"arguments\": \"{broken\"}</tool_call>",
    )
    .unwrap();
    assert!(
        p.malformed[0]
            .reason
            .contains("arguments string of `f` is not JSON"),
        "{:?}",
        p.malformed
    );
    let p = parse(
        Format::Auto,
        "<tool_call>{\"name\": 42, \"arguments\": {}}</tool_call>",
    )
    .unwrap();
    assert!(
        p.malformed[0]
            .reason
            .contains("must be a string, not a number"),
        "{:?}",
        p.malformed
    );
    let p = parse(
        Format::Auto,
        "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": \"unterminated",
    )
    .unwrap();
    assert!(
        p.malformed[0].reason.contains("ended inside the call"),
        "{:?}",
        p.malformed
    );
}

#[test]
fn each_call_arrives_as_soon_as_it_is_complete() {
    let text = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>";
    let first_end = text.find("}}").unwrap() + 2;
    let mut parser = CallParser::new(Format::Auto);
    let mut seen_at = Vec::new();
    for (i, ch) in text.char_indices() {
        for event in parser.push(&ch.to_string()).unwrap() {
            if let Event::Call(call) = event {
                seen_at.push((call.name, i + 1));
            }
        }
    }
    assert_eq!(seen_at[0], ("a".to_owned(), first_end));
    assert_eq!(seen_at[1], ("b".to_owned(), text.rfind("}}").unwrap() + 2));
}

#[test]
fn text_streams_out_before_the_end() {
    let mut parser = CallParser::new(Format::Auto);
    let events = parser.push("The weather in Paris is ").unwrap();
    assert_eq!(
        events,
        vec![Event::Text {
            text: "The weather in Paris is ".into()
        }]
    );
    // A possible tag start is held back until it is decided.
    assert_eq!(
        parser.push("sunny <tool").unwrap(),
        vec![Event::Text {
            text: "sunny ".into()
        }]
    );
    assert_eq!(
        parser.push("s> are fine").unwrap(),
        vec![Event::Text {
            text: "<tools> are fine".into()
        }]
    );
}

#[test]
fn invalid_utf8_and_oversized_input_are_errors() {
    let mut parser = CallParser::new(Format::Auto);
    let mut events = parser.push_bytes(&[b'-', b' ', b'h', 0xC3]).unwrap();
    events.extend(parser.push_bytes(&[0xA9]).unwrap());
    assert_eq!(Parsed::from_events(events).text, "- hé");
    let err = parser.push_bytes(&[b'a', 0xFF, b'b']).unwrap_err();
    assert_eq!(err.to_string(), "the input is not valid UTF-8 at byte 6");

    let mut small = CallParser::new(Format::Auto).max_input_bytes(10);
    small.push("0123456789").unwrap();
    assert_eq!(
        small.push("x").unwrap_err().to_string(),
        "the input is larger than the limit of 10 bytes"
    );
}

#[test]
fn deep_nesting_is_malformed_not_a_crash() {
    let deep = format!(
        "<tool_call>{{\"name\": \"f\", \"arguments\": {{\"x\": {}{}}}}}</tool_call>",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let p = parse(Format::Auto, &deep).unwrap();
    assert!(p.calls.is_empty());
    assert!(
        p.malformed[0].reason.contains("nested deeper than 128"),
        "{:?}",
        p.malformed[0].reason
    );
    let bare = "[".repeat(10_000);
    let p = parse(Format::Auto, &bare).unwrap();
    assert!(p.calls.is_empty());
}

#[test]
fn a_large_call_parses() {
    let big = "x".repeat(10 * 1024 * 1024);
    let text = format!(
        "<tool_call>{{\"name\": \"write\", \"arguments\": {{\"data\": \"{big}\"}}}}</tool_call>"
    );
    let p = parse(Format::Auto, &text).unwrap();
    assert_eq!(
        p.calls[0].arguments["data"].as_str().unwrap().len(),
        big.len()
    );
}
