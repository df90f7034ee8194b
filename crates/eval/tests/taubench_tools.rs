//! The retail tools on the real database: read-only tools byte for byte against Python's
//! output, and the bad input the spec lists (unknown ids, wrong types, forbidden actions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use agentry_eval::taubench::{DomainData, Env, Split};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

fn data() -> DomainData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/taubench");
    DomainData::load(&dir, "retail", Split::Dev)
        .expect("the τ-bench data must be at ../shared/taubench")
}

fn kw(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn step(env: &Env, name: &str, args: Value) -> String {
    env.step(name, &kw(args)).text
}

#[test]
fn read_only_tools_print_what_python_prints() {
    let env = data().env();
    assert_eq!(
        step(
            &env,
            "get_user_details",
            json!({"user_id": "yusuf_rossi_9620"})
        ),
        r##"{"name": {"first_name": "Yusuf", "last_name": "Rossi"}, "address": {"address1": "763 Broadway", "address2": "Suite 135", "city": "Philadelphia", "country": "USA", "state": "PA", "zip": "19122"}, "email": "yusuf.rossi7301@example.com", "payment_methods": {"credit_card_9513926": {"source": "credit_card", "brand": "mastercard", "last_four": "2478", "id": "credit_card_9513926"}}, "orders": ["#W6247578", "#W9711842", "#W4776164", "#W6679257", "#W2378156"]}"##
    );
    let types = step(&env, "list_all_product_types", json!({}));
    assert_eq!(types.len(), 1478);
    let digest: String = Sha256::digest(types.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest,
        "6765f563339e732cb768f71d24e5a3fd015db09627684bb76ee18f68b335cb55"
    );
    assert_eq!(
        step(
            &env,
            "find_user_id_by_name_zip",
            json!({"first_name": "yusuf", "last_name": "ROSSI", "zip": "19122"})
        ),
        "yusuf_rossi_9620"
    );
    assert_eq!(
        step(
            &env,
            "find_user_id_by_email",
            json!({"email": "Yusuf.Rossi7301@example.com"})
        ),
        "yusuf_rossi_9620"
    );
    for (expr, want) in [
        ("2 + 3 * 4", "14.0"),
        ("(8276.234 + 1) / 3", "2759.08"),
        ("100 - 15.5 * 2", "69.0"),
        ("7 // 2 ** 2", "1.0"),
        ("1/3", "0.33"),
        ("1 / 0", "Error: division by zero"),
        ("2 + x", "Error: invalid characters in expression"),
    ] {
        assert_eq!(
            step(&env, "calculate", json!({"expression": expr})),
            want,
            "{expr}"
        );
    }
    assert_eq!(step(&env, "think", json!({"thought": "hm"})), "");
    let transfer = env.step("transfer_to_human_agents", &kw(json!({"summary": "x"})));
    assert_eq!(
        (transfer.text.as_str(), transfer.done),
        ("Transfer successful", true)
    );
    assert!(
        env.db().changed_records().is_empty(),
        "read-only tools changed the database"
    );
}

#[test]
fn bad_input_gets_the_reference_error_text_and_changes_nothing() {
    let env = data().env();
    let cases = [
        (
            "get_order_details",
            json!({"order_id": "#W0000000"}),
            "Error: order not found",
        ),
        (
            "get_user_details",
            json!({"user_id": "nobody_1"}),
            "Error: user not found",
        ),
        (
            "get_product_details",
            json!({"product_id": "1"}),
            "Error: product not found",
        ),
        (
            "find_user_id_by_email",
            json!({"email": "no@example.com"}),
            "Error: user not found",
        ),
        // #W2378156 is delivered: it cannot be cancelled or modified.
        (
            "cancel_pending_order",
            json!({"order_id": "#W2378156", "reason": "no longer needed"}),
            "Error: non-pending order cannot be cancelled",
        ),
        (
            "modify_pending_order_address",
            json!({"order_id": "#W2378156", "address1": "a", "address2": "b",
            "city": "c", "state": "d", "country": "e", "zip": "f"}),
            "Error: non-pending order cannot be modified",
        ),
        (
            "exchange_delivered_order_items",
            json!({"order_id": "#W2378156", "item_ids": ["1151293680", "1151293680"],
            "new_item_ids": ["7706410293", "7706410293"], "payment_method_id": "credit_card_9513926"}),
            "Error: 1151293680 not found",
        ),
        (
            "exchange_delivered_order_items",
            json!({"order_id": "#W2378156", "item_ids": ["1151293680"],
            "new_item_ids": ["1"], "payment_method_id": "credit_card_9513926"}),
            "Error: new item 1 not found or available",
        ),
        (
            "exchange_delivered_order_items",
            json!({"order_id": "#W2378156", "item_ids": ["1151293680"],
            "new_item_ids": ["7706410293"], "payment_method_id": "paypal_1"}),
            "Error: payment method not found",
        ),
        (
            "return_delivered_order_items",
            json!({"order_id": "#W2378156", "item_ids": ["1151293680"],
            "payment_method_id": "paypal_1"}),
            "Error: payment method not found",
        ),
        // Wrong types and missing or extra arguments, as a model might send them unvalidated.
        (
            "get_order_details",
            json!({"order_id": 5}),
            "Error: argument 'order_id' of get_order_details() must be a string",
        ),
        (
            "cancel_pending_order",
            json!({"order_id": "#W2378156"}),
            "Error: cancel_pending_order() missing 1 required positional argument: 'reason'",
        ),
        (
            "think",
            json!({"thought": "x", "mood": "y"}),
            "Error: think() got an unexpected keyword argument 'mood'",
        ),
        (
            "return_delivered_order_items",
            json!({"order_id": "#W2378156", "item_ids": "1151293680",
            "payment_method_id": "credit_card_9513926"}),
            "Error: argument 'item_ids' of return_delivered_order_items() must be a list of strings",
        ),
        ("drop_table", json!({}), "Unknown action drop_table"),
    ];
    for (name, args, want) in cases {
        assert_eq!(step(&env, name, args.clone()), want, "{name} {args}");
    }
    assert!(
        env.db().changed_records().is_empty(),
        "a failed call changed the database"
    );
}

#[test]
fn a_write_changes_only_its_own_environment() {
    let data = data();
    let (a, b) = (data.env(), data.env());
    let out = step(
        &a,
        "modify_user_address",
        json!({"user_id": "yusuf_rossi_9620", "address1": "1 Main St",
        "address2": "", "city": "Austin", "state": "TX", "country": "USA", "zip": "78701"}),
    );
    assert!(out.contains(r#""address": {"address1": "1 Main St", "address2": "", "city": "Austin", "state": "TX", "country": "USA", "zip": "78701"}"#), "{out}");
    assert_eq!(a.db().changed_records()["users"].len(), 1);
    assert!(b.db().changed_records().is_empty());
    // The new zip is what the look-up sees now.
    assert_eq!(
        step(
            &a,
            "find_user_id_by_name_zip",
            json!({"first_name": "Yusuf", "last_name": "Rossi", "zip": "78701"})
        ),
        "yusuf_rossi_9620"
    );
    assert_eq!(
        step(
            &b,
            "find_user_id_by_name_zip",
            json!({"first_name": "Yusuf", "last_name": "Rossi", "zip": "78701"})
        ),
        "Error: user not found"
    );
}
