//! The retail domain's 16 tools, as `../shared/taubench/DESIGN.md` §3 specifies them: every
//! check in the reference order with its exact error text, every write in the reference
//! order (so float sums round the same way), and JSON returned as Python prints it.

use serde_json::{Map, Value, json};

use super::{
    Db, Domain,
    pyjson::{Num, dumps},
};

/// The retail domain: `orders`, `products`, `users`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retail;

/// The tool's return text, or the message of an error (shown as `Error: <message>`, the same
/// text whether the reference returns that string or raises).
type Out = Result<String, String>;

impl Domain for Retail {
    fn name(&self) -> &'static str {
        "retail"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["orders", "products", "users"]
    }

    fn terminal_tools(&self) -> &'static [&'static str] {
        &["transfer_to_human_agents"]
    }

    fn call(&self, db: &mut Db, name: &str, kwargs: &Map<String, Value>) -> Option<Out> {
        let params: &[&str] = match name {
            "calculate" => &["expression"],
            "cancel_pending_order" => &["order_id", "reason"],
            "exchange_delivered_order_items" | "modify_pending_order_items" => {
                &["order_id", "item_ids", "new_item_ids", "payment_method_id"]
            }
            "find_user_id_by_email" => &["email"],
            "find_user_id_by_name_zip" => &["first_name", "last_name", "zip"],
            "get_order_details" => &["order_id"],
            "get_product_details" => &["product_id"],
            "get_user_details" => &["user_id"],
            "list_all_product_types" => &[],
            "modify_pending_order_address" => &ADDRESS_ORDER,
            "modify_pending_order_payment" => &["order_id", "payment_method_id"],
            "modify_user_address" => &ADDRESS_USER,
            "return_delivered_order_items" => &["order_id", "item_ids", "payment_method_id"],
            "think" => &["thought"],
            "transfer_to_human_agents" => &["summary"],
            _ => return None,
        };
        let a = Args {
            tool: name,
            kw: kwargs,
        };
        Some(a.check(params).and_then(|()| match name {
            "calculate" => calculate(a.str("expression")?),
            "cancel_pending_order" => cancel(db, &a),
            "exchange_delivered_order_items" => exchange(db, &a),
            "find_user_id_by_email" => find_by_email(db, a.str("email")?),
            "find_user_id_by_name_zip" => find_by_name_zip(db, &a),
            "get_order_details" => details(db, "orders", a.str("order_id")?, "order"),
            "get_product_details" => details(db, "products", a.str("product_id")?, "product"),
            "get_user_details" => details(db, "users", a.str("user_id")?, "user"),
            "list_all_product_types" => Ok(product_types(db)),
            "modify_pending_order_address" => modify_order_address(db, &a),
            "modify_pending_order_items" => modify_items(db, &a),
            "modify_pending_order_payment" => modify_payment(db, &a),
            "modify_user_address" => modify_user_address(db, &a),
            "return_delivered_order_items" => return_items(db, &a),
            "think" => Ok(String::new()),
            _ => Ok("Transfer successful".to_owned()),
        }))
    }
}

const ADDRESS_ORDER: [&str; 7] = [
    "order_id", "address1", "address2", "city", "state", "country", "zip",
];
const ADDRESS_USER: [&str; 7] = [
    "user_id", "address1", "address2", "city", "state", "country", "zip",
];

/// A call's keyword arguments, read as Python would bind them.
struct Args<'a> {
    tool: &'a str,
    kw: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Python's binding errors: an unexpected or a missing keyword.
    fn check(&self, params: &[&str]) -> Result<(), String> {
        if let Some(k) = self.kw.keys().find(|k| !params.contains(&k.as_str())) {
            return Err(format!(
                "{}() got an unexpected keyword argument '{k}'",
                self.tool
            ));
        }
        let missing: Vec<String> = params
            .iter()
            .filter(|p| !self.kw.contains_key(**p))
            .map(|p| format!("'{p}'"))
            .collect();
        match missing.len() {
            0 => Ok(()),
            1 => Err(format!(
                "{}() missing 1 required positional argument: {}",
                self.tool, missing[0]
            )),
            n => Err(format!(
                "{}() missing {n} required positional arguments: {}",
                self.tool,
                missing.join(", ")
            )),
        }
    }

    fn value(&self, name: &str) -> &'a Value {
        self.kw.get(name).unwrap_or(&Value::Null)
    }

    fn str(&self, name: &str) -> Result<&'a str, String> {
        self.value(name)
            .as_str()
            .ok_or_else(|| format!("argument '{name}' of {}() must be a string", self.tool))
    }

    fn ids(&self, name: &str) -> Result<Vec<&'a str>, String> {
        let bad = || {
            format!(
                "argument '{name}' of {}() must be a list of strings",
                self.tool
            )
        };
        self.value(name)
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|v| v.as_str().ok_or_else(bad))
            .collect()
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("'{key}'"))
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    field(v, key)?
        .as_str()
        .ok_or_else(|| format!("'{key}' is not a string"))
}

fn num(v: &Value, key: &str) -> Result<Num, String> {
    Num::of(field(v, key)?).ok_or_else(|| format!("'{key}' is not a number"))
}

fn order<'a>(db: &'a Db, id: &str) -> Result<&'a Value, String> {
    db.get("orders", id)
        .ok_or_else(|| "order not found".to_owned())
}

fn status(order: &Value) -> &str {
    order.get("status").and_then(Value::as_str).unwrap_or("")
}

/// The user's payment method `id`, or `payment method not found`.
fn payment_method<'a>(db: &'a Db, user_id: &str, id: &str) -> Result<&'a Value, String> {
    db.get("users", user_id)
        .and_then(|u| u.get("payment_methods")?.get(id))
        .ok_or_else(|| "payment method not found".to_owned())
}

/// Sets the gift card's balance to `change(balance)` rounded to 2 decimals (Python `round`).
fn update_balance(
    db: &mut Db,
    user_id: &str,
    id: &str,
    change: impl Fn(Num) -> Num,
) -> Result<(), String> {
    let method = db
        .get_mut("users", user_id)
        .and_then(|u| u.get_mut("payment_methods")?.get_mut(id))
        .ok_or_else(|| format!("'{id}'"))?;
    let balance = num(method, "balance")?;
    method["balance"] = change(balance).round2().to_value();
    Ok(())
}

fn calculate(expression: &str) -> Out {
    if !expression
        .chars()
        .all(|c| c.is_ascii_digit() || "+-*/(). ".contains(c))
    {
        return Ok("Error: invalid characters in expression".to_owned());
    }
    match super::calc::eval(expression) {
        Ok(n) => Ok(super::pyjson::float_repr(super::pyjson::round2(n.f64()))),
        Err(e) => Ok(format!("Error: {e}")),
    }
}

fn cancel(db: &mut Db, a: &Args<'_>) -> Out {
    let (id, reason) = (a.str("order_id")?, a.str("reason")?);
    let o = order(db, id)?;
    if status(o) != "pending" {
        return Ok("Error: non-pending order cannot be cancelled".into());
    }
    if !["no longer needed", "ordered by mistake"].contains(&reason) {
        return Ok("Error: invalid reason".into());
    }
    let user_id = text(o, "user_id")?.to_owned();
    let history = field(o, "payment_history")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut refunds = Vec::with_capacity(history.len());
    for payment in &history {
        let method = text(payment, "payment_method_id")?;
        let amount = num(payment, "amount")?;
        refunds.push(json!({
            "transaction_type": "refund",
            "amount": payment["amount"],
            "payment_method_id": method,
        }));
        if method.contains("gift_card") {
            update_balance(db, &user_id, method, |b| b + amount)?;
        }
    }
    let o = db.get_mut("orders", id).ok_or("order not found")?;
    o["status"] = json!("cancelled");
    o["cancel_reason"] = json!(reason);
    if let Some(h) = o["payment_history"].as_array_mut() {
        h.extend(refunds);
    }
    Ok(dumps(o))
}

/// The order's items, as the "does the order contain these items" check needs them.
fn item_ids(order: &Value) -> Vec<&str> {
    order
        .get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("item_id")?.as_str())
                .collect()
        })
        .unwrap_or_default()
}

fn count(ids: &[&str], id: &str) -> usize {
    ids.iter().filter(|x| **x == id).count()
}

/// The first requested id the order does not hold that many times.
fn missing_item<'a>(order: &Value, requested: &[&'a str]) -> Option<&'a str> {
    let held = item_ids(order);
    requested
        .iter()
        .find(|id| count(requested, id) > count(&held, id))
        .copied()
}

/// Checks the new items and sums the price difference, pair by pair in the given order
/// (starting from the integer 0, as the reference does).
fn price_difference(db: &Db, order: &Value, old: &[&str], new: &[&str]) -> Result<Num, String> {
    let items = field(order, "items")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut diff = Num::Int(0);
    for (old_id, new_id) in old.iter().zip(new) {
        let item = items
            .iter()
            .find(|i| i.get("item_id").and_then(Value::as_str) == Some(old_id))
            .ok_or_else(|| "list index out of range".to_owned())?;
        let variant = new_variant(db, item, new_id)
            .ok_or_else(|| format!("new item {new_id} not found or available"))?;
        diff = diff + (num(variant, "price")? - num(item, "price")?);
    }
    Ok(diff)
}

/// The available variant `new_id` of the item's product.
fn new_variant<'a>(db: &'a Db, item: &Value, new_id: &str) -> Option<&'a Value> {
    let product = db.get("products", item.get("product_id")?.as_str()?)?;
    let variant = product.get("variants")?.get(new_id)?;
    (variant.get("available") == Some(&Value::Bool(true))).then_some(variant)
}

fn sorted(ids: &[&str]) -> Value {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    json!(ids)
}

fn exchange(db: &mut Db, a: &Args<'_>) -> Out {
    let id = a.str("order_id")?;
    let (old, new) = (a.ids("item_ids")?, a.ids("new_item_ids")?);
    let pm_id = a.str("payment_method_id")?;
    let o = order(db, id)?;
    if status(o) != "delivered" {
        return Ok("Error: non-delivered order cannot be exchanged".into());
    }
    if let Some(missing) = missing_item(o, &old) {
        return Ok(format!("Error: {missing} not found"));
    }
    if old.len() != new.len() {
        return Ok("Error: the number of items to be exchanged should match".into());
    }
    let diff = price_difference(db, o, &old, &new)?.round2();
    let user_id = text(o, "user_id")?;
    let Ok(method) = payment_method(db, user_id, pm_id) else {
        return Ok("Error: payment method not found".into());
    };
    if method.get("source").and_then(Value::as_str) == Some("gift_card")
        && num(method, "balance")?.lt(diff)
    {
        return Ok("Error: insufficient gift card balance to pay for the price difference".into());
    }
    let o = db.get_mut("orders", id).ok_or("order not found")?;
    o["status"] = json!("exchange requested");
    o["exchange_items"] = sorted(&old);
    o["exchange_new_items"] = sorted(&new);
    o["exchange_payment_method_id"] = json!(pm_id);
    o["exchange_price_difference"] = diff.to_value();
    Ok(dumps(o))
}

fn modify_items(db: &mut Db, a: &Args<'_>) -> Out {
    let id = a.str("order_id")?;
    let (old, new) = (a.ids("item_ids")?, a.ids("new_item_ids")?);
    let pm_id = a.str("payment_method_id")?;
    let o = order(db, id)?;
    if status(o) != "pending" {
        return Ok("Error: non-pending order cannot be modified".into());
    }
    if let Some(missing) = missing_item(o, &old) {
        return Ok(format!("Error: {missing} not found"));
    }
    if old.len() != new.len() {
        return Ok("Error: the number of items to be exchanged should match".into());
    }
    let diff = price_difference(db, o, &old, &new)?;
    let user_id = text(o, "user_id")?.to_owned();
    let Ok(method) = payment_method(db, &user_id, pm_id) else {
        return Ok("Error: payment method not found".into());
    };
    let gift_card = method.get("source").and_then(Value::as_str) == Some("gift_card");
    if gift_card && num(method, "balance")?.lt(diff) {
        return Ok("Error: insufficient gift card balance to pay for the new item".into());
    }
    // The new variants, looked up before the order is borrowed for writing.
    let items = field(o, "items")?.as_array().cloned().unwrap_or_default();
    let mut current: Vec<String> = items
        .iter()
        .map(|i| i["item_id"].as_str().unwrap_or("").to_owned())
        .collect();
    let mut updates = Vec::with_capacity(old.len());
    for (old_id, new_id) in old.iter().zip(&new) {
        let index = current
            .iter()
            .position(|c| c == old_id)
            .ok_or("list index out of range")?;
        let variant = new_variant(db, &items[index], new_id)
            .ok_or_else(|| format!("'{new_id}'"))?
            .clone();
        current[index] = (*new_id).to_owned();
        updates.push((index, *new_id, variant));
    }
    let kind = if diff.is_positive() {
        "payment"
    } else {
        "refund"
    };
    let o = db.get_mut("orders", id).ok_or("order not found")?;
    if let Some(h) = o["payment_history"].as_array_mut() {
        h.push(json!({
            "transaction_type": kind,
            "amount": diff.abs().to_value(),
            "payment_method_id": pm_id,
        }));
    }
    for (index, new_id, variant) in updates {
        let item = &mut o["items"][index];
        item["item_id"] = json!(new_id);
        item["price"] = variant["price"].clone();
        item["options"] = variant["options"].clone();
    }
    o["status"] = json!("pending (item modified)");
    let out = dumps(o);
    if gift_card {
        update_balance(db, &user_id, pm_id, |b| b - diff)?;
    }
    // The gift card is written after the order here, but the reference writes it before the
    // items; nothing reads the balance in between, so the state is the same.
    Ok(out)
}

fn modify_payment(db: &mut Db, a: &Args<'_>) -> Out {
    let (id, pm_id) = (a.str("order_id")?, a.str("payment_method_id")?);
    let o = order(db, id)?;
    if status(o) != "pending" {
        return Ok("Error: non-pending order cannot be modified".into());
    }
    let user_id = text(o, "user_id")?.to_owned();
    let Ok(method) = payment_method(db, &user_id, pm_id) else {
        return Ok("Error: payment method not found".into());
    };
    let history = field(o, "payment_history")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let first = history.first().ok_or("list index out of range")?;
    if history.len() > 1 || first.get("transaction_type") != Some(&json!("payment")) {
        return Ok("Error: there should be exactly one payment for a pending order".into());
    }
    let old_id = text(first, "payment_method_id")?.to_owned();
    if old_id == pm_id {
        return Ok("Error: the new payment method should be different from the current one".into());
    }
    let amount = num(first, "amount")?;
    let new_is_gift_card = method.get("source").and_then(Value::as_str) == Some("gift_card");
    if new_is_gift_card && num(method, "balance")?.lt(amount) {
        return Ok("Error: insufficient gift card balance to pay for the order".into());
    }
    let o = db.get_mut("orders", id).ok_or("order not found")?;
    if let Some(h) = o["payment_history"].as_array_mut() {
        h.push(json!({"transaction_type": "payment", "amount": first["amount"], "payment_method_id": pm_id}));
        h.push(json!({"transaction_type": "refund", "amount": first["amount"], "payment_method_id": old_id}));
    }
    let out = dumps(o);
    if new_is_gift_card {
        update_balance(db, &user_id, pm_id, |b| b - amount)?;
    }
    if old_id.contains("gift_card") {
        update_balance(db, &user_id, &old_id, |b| b + amount)?;
    }
    Ok(out)
}

fn address(a: &Args<'_>) -> Value {
    let mut out = Map::new();
    for key in &ADDRESS_ORDER[1..] {
        out.insert((*key).to_owned(), a.value(key).clone());
    }
    Value::Object(out)
}

fn modify_order_address(db: &mut Db, a: &Args<'_>) -> Out {
    let id = a.str("order_id")?;
    if status(order(db, id)?) != "pending" {
        return Ok("Error: non-pending order cannot be modified".into());
    }
    let o = db.get_mut("orders", id).ok_or("order not found")?;
    o["address"] = address(a);
    Ok(dumps(o))
}

fn modify_user_address(db: &mut Db, a: &Args<'_>) -> Out {
    let id = a.str("user_id")?;
    let Some(user) = db.get_mut("users", id) else {
        return Ok("Error: user not found".into());
    };
    user["address"] = address(a);
    Ok(dumps(user))
}

fn return_items(db: &mut Db, a: &Args<'_>) -> Out {
    let id = a.str("order_id")?;
    let ids = a.ids("item_ids")?;
    let pm_id = a.str("payment_method_id")?;
    let o = order(db, id)?;
    if status(o) != "delivered" {
        return Ok("Error: non-delivered order cannot be returned".into());
    }
    if payment_method(db, text(o, "user_id")?, pm_id).is_err() {
        return Ok("Error: payment method not found".into());
    }
    let original = o
        .get("payment_history")
        .and_then(|h| h.get(0))
        .ok_or("list index out of range")?;
    if !pm_id.contains("gift_card") && text(original, "payment_method_id")? != pm_id {
        return Ok(
            "Error: payment method should be either the original payment method or a gift card"
                .into(),
        );
    }
    if missing_item(o, &ids).is_some() {
        return Ok("Error: some item not found".into());
    }
    let o = db.get_mut("orders", id).ok_or("order not found")?;
    o["status"] = json!("return requested");
    o["return_items"] = sorted(&ids);
    o["return_payment_method_id"] = json!(pm_id);
    Ok(dumps(o))
}

fn find_by_email(db: &Db, email: &str) -> Out {
    let want = email.to_lowercase();
    Ok(db
        .records("users")
        .find(|(_, u)| {
            u.get("email")
                .and_then(Value::as_str)
                .map(str::to_lowercase)
                == Some(want.clone())
        })
        .map_or_else(
            || "Error: user not found".to_owned(),
            |(id, _)| id.to_owned(),
        ))
}

fn find_by_name_zip(db: &Db, a: &Args<'_>) -> Out {
    let first = a.str("first_name")?.to_lowercase();
    let last = a.str("last_name")?.to_lowercase();
    let zip = a.str("zip")?;
    let lower = |u: &Value, k: &str| {
        u.get("name")
            .and_then(|n| n.get(k))
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    };
    Ok(db
        .records("users")
        .find(|(_, u)| {
            lower(u, "first_name").as_deref() == Some(&first)
                && lower(u, "last_name").as_deref() == Some(&last)
                && u.get("address")
                    .and_then(|a| a.get("zip"))
                    .and_then(Value::as_str)
                    == Some(zip)
        })
        .map_or_else(
            || "Error: user not found".to_owned(),
            |(id, _)| id.to_owned(),
        ))
}

fn details(db: &Db, table: &str, id: &str, what: &str) -> Out {
    Ok(db
        .get(table, id)
        .map_or_else(|| format!("Error: {what} not found"), dumps))
}

fn product_types(db: &Db) -> String {
    let mut types: Vec<(&str, &Value)> = db
        .records("products")
        .filter_map(|(_, p)| Some((p.get("name")?.as_str()?, p.get("product_id")?)))
        .collect();
    types.sort_by(|a, b| a.0.cmp(b.0));
    // A later product of the same name wins, as in a Python dict built in file order.
    let mut map = Map::new();
    for (name, id) in types {
        map.insert(name.to_owned(), id.clone());
    }
    dumps(&Value::Object(map))
}
