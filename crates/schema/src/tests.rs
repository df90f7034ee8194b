use agentry_core::{ErrorKind, ToolSpec};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::{ArgValidator, Coerced, Coercion, Validators};

fn booking() -> ArgValidator {
    ArgValidator::from_schema(
        "book",
        &json!({
            "type": "object",
            "properties": {
                "date": {"type": "string", "format": "date"},
                "at": {"type": "string", "format": "date-time"},
                "email": {"type": "string", "format": "email"},
                "site": {"type": "string", "format": "uri"},
                "ref": {"type": "string", "format": "uuid"},
                "party": {"type": "integer", "minimum": 1, "maximum": 12},
                "price": {"type": "number", "exclusiveMinimum": 0},
                "name": {"type": "string", "minLength": 2, "maxLength": 10, "pattern": "^[A-Z]"},
                "unit": {"enum": ["C", "F"]},
                "kind": {"const": "table"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "where": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": false
                }
            },
            "required": ["date"],
            "additionalProperties": false
        }),
    )
    .unwrap()
}

fn sentences(v: &ArgValidator, args: Value) -> Vec<String> {
    v.check(args)
        .unwrap_err()
        .violations
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn each_rule_gets_a_sentence_with_path_and_value() {
    let v = booking();
    let cases = [
        (
            json!({"date": "tomorrow"}),
            "`$.date`: 'tomorrow' is not a date (YYYY-MM-DD)",
        ),
        (json!({}), "`$`: the required property `date` is missing"),
        (
            json!({"date": "2025-01-01", "at": "noon"}),
            "`$.at`: 'noon' is not a date-time (RFC 3339, e.g. 2025-05-01T12:00:00Z)",
        ),
        (
            json!({"date": "2025-01-01", "email": "bob"}),
            "`$.email`: 'bob' is not an email address",
        ),
        (
            json!({"date": "2025-01-01", "site": "example"}),
            "`$.site`: 'example' is not a URI with a scheme (e.g. https://example.com/)",
        ),
        (
            json!({"date": "2025-01-01", "ref": "nope"}),
            "`$.ref`: 'nope' is not a UUID (e.g. 123e4567-e89b-12d3-a456-426614174000)",
        ),
        (
            json!({"date": "2025-01-01", "party": "3"}),
            "`$.party`: '3' is not an integer",
        ),
        (
            json!({"date": "2025-01-01", "party": 0}),
            "`$.party`: 0 is less than the minimum 1",
        ),
        (
            json!({"date": "2025-01-01", "party": 13}),
            "`$.party`: 13 is greater than the maximum 12",
        ),
        (
            json!({"date": "2025-01-01", "price": 0}),
            "`$.price`: 0 must be greater than 0",
        ),
        (
            json!({"date": "2025-01-01", "name": "A"}),
            "`$.name`: 'A' is shorter than 2 characters",
        ),
        (
            json!({"date": "2025-01-01", "name": "Abcdefghijk"}),
            "`$.name`: 'Abcdefghijk' is longer than 10 characters",
        ),
        (
            json!({"date": "2025-01-01", "name": "bob"}),
            "`$.name`: 'bob' does not match the pattern `^[A-Z]`",
        ),
        (
            json!({"date": "2025-01-01", "unit": "K"}),
            "`$.unit`: 'K' is not one of 'C', 'F'",
        ),
        (
            json!({"date": "2025-01-01", "kind": "booth"}),
            "`$.kind`: 'booth' must be exactly 'table'",
        ),
        (
            json!({"date": "2025-01-01", "tags": ["a", 1]}),
            "`$.tags[1]`: 1 is not a string",
        ),
        (
            json!({"date": "2025-01-01", "tags": ["a", "b", "c"]}),
            "`$.tags`: [\"a\",\"b\",\"c\"] has more than 2 items",
        ),
        (
            json!({"date": "2025-01-01", "where": {}}),
            "`$.where`: the required property `city` is missing",
        ),
        (
            json!({"date": "2025-01-01", "where": {"city": "Oslo", "zip": 1}}),
            "`$.where`: unexpected property `zip`; remove it",
        ),
        (
            json!({"date": "2025-01-01", "colour": "red"}),
            "`$`: unexpected property `colour`; remove it",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(sentences(&v, args.clone()), vec![want.to_owned()], "{args}");
    }
}

#[test]
fn every_violation_is_reported_with_rule_and_value() {
    let v = booking();
    let err = v.check(json!({"party": 99, "unit": "K"})).unwrap_err();
    let rules: Vec<_> = err
        .violations
        .iter()
        .map(|x| (x.path.as_str(), x.rule, x.value.clone()))
        .collect();
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert!(rules.contains(&("$", "required", json!({"party": 99, "unit": "K"}))));
    assert!(rules.contains(&("$.party", "maximum", json!(99))));
    assert!(rules.contains(&("$.unit", "enum", json!("K"))));
    let tool_error = err.to_tool_error();
    assert_eq!(tool_error.kind(), ErrorKind::InvalidArguments);
    assert!(
        tool_error
            .for_model()
            .starts_with("invalid arguments for `book`: "),
        "{}",
        tool_error.for_model()
    );
}

#[test]
fn valid_arguments_pass_untouched() {
    let args = json!({"date": "2025-05-01", "at": "2025-05-01T19:30:00+02:00", "email": "a@b.co",
        "site": "https://x.org/a?b", "ref": "123e4567-e89b-12d3-a456-426614174000", "party": 4,
        "price": 9.5, "name": "Ann", "unit": "C", "kind": "table", "tags": ["x"], "where": {"city": "Oslo"}});
    let checked = booking().check(args.clone()).unwrap();
    assert_eq!(checked.arguments, args);
    assert!(checked.coerced.is_empty());
}

#[test]
fn coercion_is_off_by_default_and_reported_when_on() {
    let schema = json!({"type": "object", "properties": {
        "n": {"type": "integer"}, "x": {"type": "number"}, "ids": {"type": "array", "items": {"type": "integer"}}}});
    let strict = ArgValidator::from_schema("f", &schema).unwrap();
    let args = json!({"n": "3", "x": " 2.5", "ids": "7"});
    assert_eq!(strict.check(args.clone()).unwrap_err().violations.len(), 3);

    let lenient = ArgValidator::from_schema("f", &schema)
        .unwrap()
        .coercion(Coercion::ALL);
    let checked = lenient.check(args).unwrap();
    assert_eq!(checked.arguments, json!({"n": 3, "x": 2.5, "ids": [7]}));
    let mut paths: Vec<_> = checked.coerced.iter().map(|c| c.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, vec!["$.ids", "$.ids[0]", "$.n", "$.x"]);
    assert!(checked.coerced.contains(&Coerced {
        path: "$.n".into(),
        from: json!("3"),
        to: json!(3)
    }));

    let only_numbers = ArgValidator::from_schema("f", &schema)
        .unwrap()
        .coercion(Coercion {
            numeric_strings: true,
            single_to_array: false,
        });
    assert!(only_numbers.check(json!({"ids": 7})).is_err());
    assert!(lenient.check(json!({"n": "three"})).is_err());
    assert!(lenient.check(json!({"n": "2.5"})).is_err());
}

#[test]
fn registry_names_unknown_tools_and_bad_schemas() {
    let specs = vec![
        ToolSpec::new(
            "get_weather",
            "",
            json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        ),
        ToolSpec::new("search", "", json!({"type": "object"})),
    ];
    let validators = Validators::new(&specs).unwrap();
    let err = validators.check("get_wether", json!({})).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownTool);
    assert!(
        err.for_model()
            .contains("available tools: get_weather, search")
    );
    assert!(
        validators
            .check("get_weather", json!({"city": "Oslo"}))
            .is_ok()
    );

    let bad = ToolSpec::new("broken", "", json!({"type": "objekt"}));
    let err = Validators::new(&[bad]).unwrap_err();
    assert_eq!(err.tool, "broken");
    assert!(err.to_string().contains("not a valid JSON Schema"), "{err}");
}

#[test]
fn long_values_are_cut_in_messages() {
    let v = ArgValidator::from_schema(
        "f",
        &json!({"type": "object", "properties": {"s": {"type": "integer"}}}),
    )
    .unwrap();
    let long = "x".repeat(10_000);
    let msg = sentences(&v, json!({"s": long}));
    assert!(msg[0].len() < 200, "{}", msg[0]);
    assert!(msg[0].contains("(10002 bytes)"), "{}", msg[0]);
}
