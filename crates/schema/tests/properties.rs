//! Property tests: validation never panics, and what coercion lets through is valid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_schema::{ArgValidator, Coercion};
use proptest::prelude::*;
use serde_json::{Value, json};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        Just(json!("2025-05-01")),
        Just(json!("3")),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "date": {"type": "string", "format": "date"},
            "n": {"type": "integer", "minimum": 0, "maximum": 100},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "maxItems": 3},
            "inner": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
            "unit": {"enum": ["C", "F"]}
        },
        "required": ["date"],
        "additionalProperties": false
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn validation_never_panics_and_names_a_path(args in any_json()) {
        let v = ArgValidator::from_schema("f", &schema()).unwrap();
        match v.check(args.clone()) {
            Ok(checked) => prop_assert_eq!(checked.arguments, args),
            Err(invalid) => {
                prop_assert!(!invalid.violations.is_empty());
                for violation in &invalid.violations {
                    prop_assert!(violation.path.starts_with('$'));
                    prop_assert!(!violation.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn coerced_arguments_are_valid(args in any_json()) {
        let strict = ArgValidator::from_schema("f", &schema()).unwrap();
        let lenient = ArgValidator::from_schema("f", &schema()).unwrap().coercion(Coercion::ALL);
        if let Ok(checked) = lenient.check(args) {
            prop_assert!(strict.is_valid(&checked.arguments));
        }
    }
}
