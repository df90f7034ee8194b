//! Property tests: the parser never panics or loops, and chunking never changes the result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_parse::{CallParser, Format, Parsed, parse};
use proptest::prelude::*;

const PIECES: &[&str] = &[
    "<tool_call>",
    "</tool_call>",
    "<|python_tag|>",
    "[TOOL_CALLS]",
    "[ARGS]",
    "[CALL_ID]",
    "Action:",
    "Action Input:",
    "```json\n",
    "```",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"name\"",
    "\"arguments\"",
    "\"parameters\"",
    "\"function\"",
    "\"tool_calls\"",
    "\"message\"",
    "\"id\"",
    "\"n\\u0061me\"",
    "\t",
    ":",
    ",",
    ";",
    "=",
    "\"f\"",
    "'x'",
    "\"",
    "'",
    "\\",
    "\n",
    " ",
    "True",
    "null",
    "1",
    "-2.5",
    "f",
    "get_weather",
    "city",
    "é",
    "日本",
    "<",
    "#",
    "\"\"\"",
    "r'",
    "math.pow",
    ".",
    "a b",
    "Thought: ",
];

fn model_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|p| p.concat())
}

fn any_format() -> impl Strategy<Value = Format> {
    prop::sample::select(vec![
        Format::Auto,
        Format::OpenAi,
        Format::Hermes,
        Format::Llama,
        Format::Mistral,
        Format::Python,
        Format::React,
    ])
}

/// Splits `text` at char boundaries chosen from `cuts`.
fn chunked(format: Format, text: &str, cuts: &[usize]) -> Parsed {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|c| c % (text.len() + 1))
        .filter(|&c| text.is_char_boundary(c))
        .collect();
    bounds.push(0);
    bounds.push(text.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut parser = CallParser::new(format);
    let mut parsed = Parsed::default();
    for pair in bounds.windows(2) {
        parsed.extend(parser.push(&text[pair[0]..pair[1]]).unwrap());
    }
    parsed.extend(parser.finish().unwrap());
    parsed
}

fn byte_by_byte(format: Format, text: &str) -> Parsed {
    let mut parser = CallParser::new(format);
    let mut parsed = Parsed::default();
    for b in text.as_bytes() {
        parsed.extend(parser.push_bytes(std::slice::from_ref(b)).unwrap());
    }
    parsed.extend(parser.finish().unwrap());
    parsed
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn chunking_never_changes_the_result(text in model_text(), format in any_format(), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let whole = parse(format, &text).unwrap();
        prop_assert_eq!(&chunked(format, &text, &cuts), &whole);
        prop_assert_eq!(&byte_by_byte(format, &text), &whole);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), format in any_format(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let whole = parse(format, &text).unwrap();
        prop_assert_eq!(&chunked(format, &text, &cuts), &whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), format in any_format()) {
        let mut parser = CallParser::new(format);
        let mut failed = false;
        for chunk in bytes.chunks(7) {
            if parser.push_bytes(chunk).is_err() {
                failed = true;
                break;
            }
        }
        if !failed {
            let _ = parser.finish();
        }
        prop_assert_eq!(failed, std::str::from_utf8(&bytes).is_err() && !bytes.is_empty() && {
            // A cut-off character at the very end is only an error at finish.
            let err = std::str::from_utf8(&bytes).unwrap_err();
            err.error_len().is_some()
        });
    }

    #[test]
    fn text_outside_calls_is_kept(text in "[a-zA-Z ,.!?]{0,200}") {
        let parsed = parse(Format::Auto, &text).unwrap();
        prop_assert!(parsed.calls.is_empty());
        prop_assert_eq!(parsed.text, text);
    }
}

/// Renders `(name, args)` calls in `format`, with prose around them.
fn render(
    format: Format,
    calls: &[(String, serde_json::Map<String, serde_json::Value>)],
) -> String {
    use serde_json::{Value, json};
    let json_of = |name: &str, args: &serde_json::Map<String, Value>, key: &str| {
        json!({"name": name, key: args}).to_string()
    };
    let py_of = |name: &str, args: &serde_json::Map<String, Value>| {
        let kw: Vec<String> = args
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={}", serde_json::to_string(s).unwrap()),
                Value::Bool(true) => format!("{k}=True"),
                Value::Bool(false) => format!("{k}=False"),
                other => format!("{k}={other}"),
            })
            .collect();
        format!("{name}({})", kw.join(", "))
    };
    match format {
        Format::Hermes | Format::Auto => calls
            .iter()
            .map(|(n, a)| {
                format!(
                    "<tool_call>\n{}\n</tool_call>\n",
                    json_of(n, a, "arguments")
                )
            })
            .collect::<String>(),
        Format::OpenAi => {
            let list: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (n, a))| json!({"id": format!("call_{i}"), "type": "function", "function": {"name": n, "arguments": Value::Object(a.clone()).to_string()}}))
                .collect();
            json!({"role": "assistant", "content": null, "tool_calls": list}).to_string()
        }
        Format::Llama => {
            let parts: Vec<String> = calls
                .iter()
                .map(|(n, a)| json_of(n, a, "parameters"))
                .collect();
            format!("<|python_tag|>{}", parts.join("; "))
        }
        Format::Mistral => {
            let list: Vec<Value> = calls
                .iter()
                .map(|(n, a)| json!({"name": n, "arguments": a}))
                .collect();
            format!("[TOOL_CALLS]{}", Value::Array(list))
        }
        Format::Python => {
            let parts: Vec<String> = calls.iter().map(|(n, a)| py_of(n, a)).collect();
            format!("[{}]", parts.join(", "))
        }
        Format::React => calls
            .iter()
            .map(|(n, a)| {
                format!(
                    "Thought: go\nAction: {n}\nAction Input: {}\nObservation: ok\n",
                    Value::Object(a.clone())
                )
            })
            .collect(),
    }
}

fn call_list() -> impl Strategy<Value = Vec<(String, serde_json::Map<String, serde_json::Value>)>> {
    let value = prop_oneof![
        any::<i32>().prop_map(serde_json::Value::from),
        "[ -~]{0,12}".prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
    ];
    let args = prop::collection::btree_map("[a-z][a-z_]{0,6}", value, 0..4)
        .prop_map(|m| m.into_iter().collect::<serde_json::Map<_, _>>());
    // Python keywords cannot name a function in call syntax.
    let name = "[a-z][a-z_]{0,8}".prop_filter("a Python keyword", |n| {
        ![
            "if", "in", "is", "or", "and", "not", "for", "def", "del", "else", "elif", "from",
            "with", "as", "try", "pass", "while", "class", "raise", "yield", "await", "async",
            "break", "except", "global", "import", "lambda", "return", "assert", "finally",
            "continue", "nonlocal",
        ]
        .contains(&n.as_str())
    });
    prop::collection::vec((name, args), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn well_formed_calls_come_back_exactly(calls in call_list(), format in any_format(), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let text = render(format, &calls);
        for parsed in [parse(format, &text).unwrap(), chunked(format, &text, &cuts), parse(Format::Auto, &text).unwrap()] {
            prop_assert!(parsed.malformed.is_empty(), "{:?} in {}", parsed.malformed, text);
            let got: Vec<_> = parsed.calls.iter().map(|c| (c.name.clone(), c.arguments.as_object().unwrap().clone())).collect();
            prop_assert_eq!(&got, &calls, "{}", text);
            prop_assert!(parsed.calls.iter().all(|c| c.is_clean()), "{:?}", parsed.calls);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Plans read the same whole or in chunks, and never panic on arbitrary text.
    #[test]
    fn plans_read_the_same_in_any_chunks(
        lines in prop::collection::vec(prop_oneof![
            Just("1. get_weather(city=\"Paris\")".to_owned()),
            Just("2. calculator(expression=\"$1.temp_c - 3\")".to_owned()),
            Just("3. f(x=$2, y=[$1, {'k': $2.a}])".to_owned()),
            Just("Thought: plan it".to_owned()),
            Just("4. join()".to_owned()),
            "[0-9]{1,3}[.)] [a-z_]{1,8}\\([a-z]=[-0-9$\"a-z]{0,6}\\)",
            any::<String>(),
        ], 0..12),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        use agentry_parse::plan::PlanParser;
        let text = lines.join("\n");
        let mut whole = PlanParser::new();
        let mut want = whole.push(&text);
        want.extend(whole.finish());
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).filter(|&c| text.is_char_boundary(c)).collect();
        bounds.extend([0, text.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut chunked = PlanParser::new();
        let mut got = Vec::new();
        for pair in bounds.windows(2) {
            got.extend(chunked.push(&text[pair[0]..pair[1]]));
        }
        got.extend(chunked.finish());
        prop_assert_eq!(got, want);
    }
}
