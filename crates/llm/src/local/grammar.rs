//! Grammars that constrain what the local model may write: [`calls`] and [`plan`].
//!
//! Written in llguidance's Lark dialect. Tool calls embed each tool's JSON Schema with
//! `%json{…}`, so a call names a real tool and its arguments are valid against that tool's
//! schema; plans are written in Python call syntax, so their argument values are
//! constrained by type (and enum) here and by the full schema at validation.

use std::fmt::Write as _;

use agentry_core::ToolSpec;
use serde_json::{Value, json};

use crate::ToolChoice;

/// The most tasks a constrained plan may have (its last line is `join()`).
pub const MAX_PLAN_TASKS: usize = 12;

/// A grammar for a reply to a request offering `tools` with `choice`, in the Hermes format
/// the model's chat template teaches (`<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`,
/// one or more in a row; a bare JSON call is accepted too). `None` when nothing is to be
/// constrained (no tools, or `ToolChoice::None`).
///
/// With `ToolChoice::Auto` the model may answer in free text instead, as long as the
/// answer does not start like a call (`<`, `{`, or a code fence). `loose` names tools whose schema the
/// grammar compiler rejected: their arguments are constrained to any JSON object. Without
/// `parallel`, a reply holds at most one call.
pub fn calls(
    tools: &[ToolSpec],
    choice: &ToolChoice,
    loose: &[String],
    parallel: bool,
) -> Option<String> {
    let offered: Vec<&ToolSpec> = match choice {
        ToolChoice::None => return None,
        ToolChoice::Function(name) => tools.iter().filter(|t| &t.name == name).collect(),
        ToolChoice::Auto | ToolChoice::Required => tools.iter().collect(),
    };
    if offered.is_empty() {
        return None;
    }
    let mut g = String::new();
    match choice {
        ToolChoice::Auto => g.push_str("start: TEXT | calls\nTEXT: /[^<{`\\s](.|\\n)*/\n"),
        _ => g.push_str("start: calls\n"),
    }
    g.push_str(if parallel {
        "calls: call (\"\\n\" call)*\n"
    } else {
        "calls: call\n"
    });
    g.push_str("call: \"<tool_call>\\n\" body \"\\n</tool_call>\" | body\n");
    let bodies: Vec<String> = (0..offered.len()).map(|i| format!("body_{i}")).collect();
    let _ = writeln!(g, "body: {}", bodies.join(" | "));
    for (i, tool) in offered.iter().enumerate() {
        let schema = if loose.contains(&tool.name) {
            json!({"type": "object"})
        } else {
            arguments_schema(&tool.parameters)
        };
        let _ = writeln!(
            g,
            "body_{i}: \"{{\\\"name\\\": \\\"{}\\\", \\\"arguments\\\": \" %json{} \"}}\"",
            lark_escape(&tool.name),
            schema
        );
    }
    Some(g)
}

/// A grammar for text that starts with one of `prefixes`.
pub fn starts_with(prefixes: &[String]) -> Option<String> {
    if prefixes.is_empty() {
        return None;
    }
    let alts: Vec<String> = prefixes
        .iter()
        .map(|p| format!("\"{}\"", lark_escape(p)))
        .collect();
    Some(format!(
        "start: ({}) REST\nREST: /(.|\\n)*/\n",
        alts.join(" | ")
    ))
}

/// A grammar for a compiled-mode plan over `tools`: numbered lines `N. tool(arg=value, …)`
/// in Python call syntax, required arguments first, references `$K` (or `$K.field`) only to
/// earlier tasks, ending with `N. join()`; at most [`MAX_PLAN_TASKS`] tasks.
pub fn plan(tools: &[ToolSpec]) -> String {
    let mut g = String::from(
        "start: line_1\n\
         STR_FREE: /[^\"\\\\$\\n]/\n\
         ESC: /\\\\[\\\\\"nt']/\n\
         INT: /-?(0|[1-9][0-9]*)/\n\
         NUM: /-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?/\n\
         FIELD: /\\.[A-Za-z_][A-Za-z0-9_]*/\n",
    );
    // A free Python literal, for arrays and objects (their insides are not referenced).
    g.push_str(
        "pylit: pystr_any | NUM | \"True\" | \"False\" | \"None\" \
         | \"[\" (pylit (\", \" pylit)*)? \"]\" | \"{\" (pystr_any \": \" pylit (\", \" pystr_any \": \" pylit)*)? \"}\"\n\
         pystr_any: \"\\\"\" (STR_FREE | ESC | \"$\")* \"\\\"\"\n",
    );
    for line in 1..=MAX_PLAN_TASKS {
        let join = format!("\"{line}. join()\"");
        if line == MAX_PLAN_TASKS {
            let _ = writeln!(g, "line_{line}: {join}");
            continue;
        }
        let calls: Vec<String> = (0..tools.len())
            .map(|t| format!("call_{line}_{t}"))
            .collect();
        if calls.is_empty() {
            let _ = writeln!(g, "line_{line}: {join}");
            continue;
        }
        let _ = writeln!(
            g,
            "line_{line}: {join} | \"{line}. \" ({}) \"\\n\" line_{}",
            calls.join(" | "),
            line + 1
        );
        // What may stand for a value in line `line`: a reference to an earlier task.
        if line > 1 {
            let earlier: Vec<String> = (1..line).map(|k| format!("\"${k}\"")).collect();
            let _ = writeln!(g, "ref_{line}: ({}) FIELD?", earlier.join(" | "));
            let _ = writeln!(
                g,
                "str_{line}: \"\\\"\" (STR_FREE | ESC | ref_{line})* \"\\\"\""
            );
        } else {
            let _ = writeln!(g, "str_{line}: \"\\\"\" (STR_FREE | ESC)* \"\\\"\"");
        }
        for (t, tool) in tools.iter().enumerate() {
            let _ = writeln!(
                g,
                "call_{line}_{t}: \"{}(\" {} \")\"",
                lark_escape(&tool.name),
                kwargs(tool, line)
            );
        }
    }
    g
}

/// The keyword arguments of `tool` in plan line `line`: required ones in schema order, then
/// any optional ones.
fn kwargs(tool: &ToolSpec, line: usize) -> String {
    let props = tool
        .parameters
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = tool
        .parameters
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let arg =
        |name: &str, schema: &Value| format!("\"{}=\" {}", lark_escape(name), value(schema, line));
    let mut parts: Vec<String> = Vec::new();
    for name in &required {
        let schema = props.get(*name).cloned().unwrap_or(Value::Bool(true));
        parts.push(arg(name, &schema));
    }
    let optional: Vec<String> = props
        .iter()
        .filter(|(k, _)| !required.contains(&k.as_str()))
        .map(|(k, s)| arg(k, s))
        .collect();
    let mut out = parts.join(" \", \" ");
    if !optional.is_empty() {
        let opt = format!("({})", optional.join(" | "));
        if out.is_empty() {
            out = format!("({opt} (\", \" {opt})*)?");
        } else {
            out = format!("{out} (\", \" {opt})*");
        }
    }
    out
}

/// The Lark expression for one argument value of `schema` in plan line `line`.
fn value(schema: &Value, line: usize) -> String {
    let reference = (line > 1).then(|| format!("ref_{line}"));
    let with_ref = |e: &str| match &reference {
        Some(r) => format!("({e} | {r})"),
        None => format!("({e})"),
    };
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        let lits: Vec<String> = options.iter().filter_map(py_literal).collect();
        if !lits.is_empty() {
            return with_ref(&lits.join(" | "));
        }
    }
    if let Some(c) = schema.get("const").and_then(py_literal) {
        return with_ref(&c);
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.is_empty() {
        return with_ref("pylit");
    }
    let alts: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "string" => format!("str_{line}"),
            "integer" => "INT".into(),
            "number" => "NUM".into(),
            "boolean" => "\"True\" | \"False\"".into(),
            "null" => "\"None\"".into(),
            _ => "pylit".into(),
        })
        .collect();
    with_ref(&alts.join(" | "))
}

/// A JSON value as a quoted Lark literal of its Python spelling, for enums and consts.
fn py_literal(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        Value::Number(n) => n.to_string(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        _ => return None,
    };
    Some(format!("\"{}\"", lark_escape(&text)))
}

/// `s` escaped for the inside of a Lark string literal.
fn lark_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The schema the arguments object must satisfy: the tool's parameters, as an object schema.
fn arguments_schema(parameters: &Value) -> Value {
    match parameters {
        Value::Object(o) if !o.is_empty() => {
            let mut o = o.clone();
            o.entry("type").or_insert_with(|| json!("object"));
            // Descriptions and titles only make the grammar bigger.
            strip_annotations(&mut o);
            Value::Object(o)
        }
        _ => json!({"type": "object"}),
    }
}

fn strip_annotations(o: &mut serde_json::Map<String, Value>) {
    for key in ["description", "title", "examples", "$comment"] {
        // Only drop annotations, not properties that happen to have these names.
        if o.get(key)
            .is_some_and(|v| !v.is_object() || key == "examples")
        {
            o.remove(key);
        }
    }
    for (key, v) in o.iter_mut() {
        match v {
            Value::Object(inner) if key != "properties" => strip_annotations(inner),
            Value::Object(props) => {
                for p in props.values_mut() {
                    if let Value::Object(p) = p {
                        strip_annotations(p);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        strip_annotations(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llguidance::{Matcher, ParserFactory, api::TopLevelGrammar};
    use toktrie::ApproximateTokEnv;

    fn matcher(grammar: &str) -> Matcher {
        let env = ApproximateTokEnv::single_byte_env();
        let factory = ParserFactory::new_simple(&env).unwrap();
        let parser = factory
            .create_parser(TopLevelGrammar::from_lark(grammar.to_owned()))
            .unwrap();
        Matcher::new(Ok(parser))
    }

    /// Whether the grammar accepts `text` as a whole reply.
    fn accepts(grammar: &str, text: &str) -> bool {
        let mut m = matcher(grammar);
        let env = ApproximateTokEnv::single_byte_env();
        let tokens = env.tokenize_bytes(text.as_bytes());
        m.consume_tokens(&tokens).is_ok() && m.is_accepting().unwrap_or(false)
    }

    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "get_weather",
                "Weather now.",
                json!({"type": "object", "properties": {
                    "city": {"type": "string", "description": "A city."},
                    "unit": {"type": "string", "enum": ["C", "F"]}},
                    "required": ["city"], "additionalProperties": false}),
            ),
            ToolSpec::new(
                "calculator",
                "Arithmetic.",
                json!({"type": "object", "properties": {"expression": {"type": "string"}},
                       "required": ["expression"]}),
            ),
            ToolSpec::new(
                "repeat",
                "Repeats.",
                json!({"type": "object", "properties": {"n": {"type": "integer"}},
                       "required": ["n"]}),
            ),
        ]
    }

    #[test]
    fn calls_grammar_admits_valid_calls_and_free_text_only() {
        let g = calls(&tools(), &ToolChoice::Auto, &[], true).unwrap();
        assert!(accepts(
            &g,
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"
        ));
        assert!(accepts(
            &g,
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"C\"}}\n</tool_call>\n\
             <tool_call>\n{\"name\": \"repeat\", \"arguments\": {\"n\": 3}}\n</tool_call>"
        ));
        assert!(accepts(
            &g,
            "{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1+1\"}}"
        ));
        assert!(accepts(&g, "It is sunny in Oslo."));
        // A fenced call is not free text: the model must write the call itself.
        assert!(!accepts(&g, "```json\n{\"name\": \"x\"}\n```"));
        // Unknown tool, missing required, wrong type, enum, extra property.
        for bad in [
            "<tool_call>\n{\"name\": \"get_wether\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"repeat\", \"arguments\": {\"n\": \"3\"}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"K\"}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"x\": 1}}\n</tool_call>",
            "{\"name\": \"get_weather\"}",
        ] {
            assert!(!accepts(&g, bad), "accepted {bad}");
        }
        // Without parallel calls, one call and no more.
        let one = calls(&tools(), &ToolChoice::Auto, &[], false).unwrap();
        let call = "<tool_call>\n{\"name\": \"repeat\", \"arguments\": {\"n\": 3}}\n</tool_call>";
        assert!(accepts(&one, call));
        assert!(!accepts(&one, &format!("{call}\n{call}")));
    }

    #[test]
    fn required_and_named_choices_forbid_text_and_other_tools() {
        let g = calls(&tools(), &ToolChoice::Required, &[], true).unwrap();
        assert!(!accepts(&g, "It is sunny."));
        let g = calls(&tools(), &ToolChoice::Function("repeat".into()), &[], true).unwrap();
        assert!(accepts(
            &g,
            "<tool_call>\n{\"name\": \"repeat\", \"arguments\": {\"n\": 1}}\n</tool_call>"
        ));
        assert!(!accepts(
            &g,
            "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1\"}}\n</tool_call>"
        ));
        assert!(calls(&tools(), &ToolChoice::None, &[], true).is_none());
        assert!(calls(&[], &ToolChoice::Auto, &[], true).is_none());
    }

    #[test]
    fn loose_tools_take_any_object() {
        let g = calls(&tools(), &ToolChoice::Auto, &["repeat".into()], true).unwrap();
        assert!(accepts(
            &g,
            "<tool_call>\n{\"name\": \"repeat\", \"arguments\": {\"n\": \"x\", \"y\": [1]}}\n</tool_call>"
        ));
    }

    #[test]
    fn plan_grammar_admits_plans_with_backward_references_only() {
        let g = plan(&tools());
        assert!(accepts(
            &g,
            "1. get_weather(city=\"Paris\")\n2. get_weather(city=\"Oslo\", unit=\"C\")\n\
             3. calculator(expression=\"$2.temp_c - $1.temp_c\")\n4. join()"
        ));
        assert!(accepts(&g, "1. join()"));
        assert!(accepts(&g, "1. repeat(n=2)\n2. repeat(n=$1)\n3. join()"));
        for bad in [
            // A reference to itself or a later task.
            "1. repeat(n=$1)\n2. join()",
            "1. calculator(expression=\"$2 + 1\")\n2. repeat(n=1)\n3. join()",
            // Unknown tool, missing required argument, wrong type, bad enum.
            "1. get_wether(city=\"Paris\")\n2. join()",
            "1. get_weather()\n2. join()",
            "1. repeat(n=\"two\")\n2. join()",
            "1. get_weather(city=\"Paris\", unit=\"K\")\n2. join()",
            // Numbering out of order, no join.
            "2. repeat(n=1)\n3. join()",
            "1. repeat(n=1)",
        ] {
            assert!(!accepts(&g, bad), "accepted {bad:?}");
        }
    }

    #[test]
    fn prefixed_replies() {
        let g = starts_with(&["Answer:".into(), "Replan:".into()]).unwrap();
        assert!(accepts(&g, "Answer: 19 degrees.\nThat is all."));
        assert!(accepts(&g, "Replan: need Paris"));
        assert!(!accepts(&g, "The answer is 19."));
        assert!(starts_with(&[]).is_none());
    }

    #[test]
    fn plans_are_bounded() {
        let g = plan(&tools());
        let mut long = String::new();
        for i in 1..MAX_PLAN_TASKS {
            long.push_str(&format!("{i}. repeat(n=1)\n"));
        }
        assert!(accepts(&g, &format!("{long}{MAX_PLAN_TASKS}. join()")));
        assert!(!accepts(
            &g,
            &format!("{long}{MAX_PLAN_TASKS}. repeat(n=1)\n13. join()")
        ));
    }
}
