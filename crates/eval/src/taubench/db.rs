//! The environment's database: tables of JSON records, loaded once and shared, with each
//! episode's writes kept beside it ([`Db`]), so a fresh environment costs nothing.

use std::{collections::BTreeMap, fmt::Write as _, path::Path, sync::Arc};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::TauError;

/// Records by primary key, in file order.
pub type Table = Map<String, Value>;

/// A database: the shared initial tables plus this copy's changed and new records.
#[derive(Debug, Clone)]
pub struct Db {
    base: Arc<BTreeMap<String, Table>>,
    changed: BTreeMap<String, Table>,
}

impl Db {
    /// Reads `DIR/<table>.json` for each table (each a JSON object keyed by primary key).
    pub fn load(dir: &Path, tables: &[&str]) -> Result<Self, TauError> {
        let mut base = BTreeMap::new();
        for name in tables {
            let path = dir.join(format!("{name}.json"));
            let text = std::fs::read_to_string(&path)
                .map_err(|e| TauError::Data(format!("cannot read {}: {e}", path.display())))?;
            let table: Table = serde_json::from_str(&text).map_err(|e| {
                TauError::Data(format!(
                    "{} is not a JSON object of records: {e}",
                    path.display()
                ))
            })?;
            base.insert((*name).to_owned(), table);
        }
        Ok(Self::from_tables(base))
    }

    /// A database made of `tables`.
    pub fn from_tables(tables: BTreeMap<String, Table>) -> Self {
        Self {
            base: Arc::new(tables),
            changed: BTreeMap::new(),
        }
    }

    /// A fresh copy of the initial state (cheap: the tables are shared).
    #[must_use]
    pub fn fresh(&self) -> Self {
        Self {
            base: Arc::clone(&self.base),
            changed: BTreeMap::new(),
        }
    }

    /// The record `key` of `table`.
    pub fn get(&self, table: &str, key: &str) -> Option<&Value> {
        self.changed
            .get(table)
            .and_then(|t| t.get(key))
            .or_else(|| self.base.get(table)?.get(key))
    }

    /// The record `key` of `table`, to change (copied out of the shared tables first).
    pub fn get_mut(&mut self, table: &str, key: &str) -> Option<&mut Value> {
        let has = self.changed.get(table).is_some_and(|t| t.contains_key(key));
        if !has {
            let record = self.base.get(table)?.get(key)?.clone();
            self.changed
                .entry(table.to_owned())
                .or_default()
                .insert(key.to_owned(), record);
        }
        self.changed.get_mut(table)?.get_mut(key)
    }

    /// Adds or replaces a record.
    pub fn insert(&mut self, table: &str, key: &str, record: Value) {
        self.changed
            .entry(table.to_owned())
            .or_default()
            .insert(key.to_owned(), record);
    }

    /// The keys of `table`: the file's order, then records added since.
    pub fn keys<'a>(&'a self, table: &str) -> impl Iterator<Item = &'a str> + 'a {
        let base = self.base.get(table);
        let added = self
            .changed
            .get(table)
            .into_iter()
            .flat_map(|t| t.keys())
            .filter(move |k| !base.is_some_and(|b| b.contains_key(*k)));
        base.into_iter()
            .flat_map(|t| t.keys())
            .chain(added)
            .map(String::as_str)
    }

    /// `(key, record)` pairs of `table` in [`Db::keys`] order.
    pub fn records<'a>(&'a self, table: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.keys(table)
            .filter_map(move |k| self.get(table, k).map(|v| (k, v)))
    }

    /// Table names.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.base.keys().map(String::as_str)
    }

    /// Records that differ from the initial state (new ones included), by table and key.
    pub fn changed_records(&self) -> BTreeMap<String, BTreeMap<String, Value>> {
        let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for (table, records) in &self.changed {
            for (key, record) in records {
                let before = self.base.get(table).and_then(|t| t.get(key));
                if before != Some(record) {
                    out.entry(table.clone())
                        .or_default()
                        .insert(key.clone(), record.clone());
                }
            }
        }
        out
    }

    /// Whether both hold the same state: maps compared as key sets, lists in order, numbers
    /// by kind (int or float) and value, strings exactly.
    pub fn same_state(&self, other: &Self) -> bool {
        if Arc::ptr_eq(&self.base, &other.base) {
            self.changed_records() == other.changed_records()
        } else {
            self.canonical_hash() == other.canonical_hash()
        }
    }

    /// SHA-256 of the canonical form of [`Db::changed_records`]: two copies of one initial
    /// database hash alike exactly when their states are equal (cheap: only changes count).
    pub fn changes_hash(&self) -> String {
        let mut buf = String::new();
        for (table, records) in self.changed_records() {
            canonical(&mut buf, &Value::String(table));
            for (key, record) in records {
                canonical(&mut buf, &Value::String(key));
                canonical(&mut buf, &record);
            }
        }
        hex(&Sha256::digest(buf.as_bytes()))
    }

    /// SHA-256 of the canonical form of the whole database (sorted keys, `repr` floats, ints
    /// and floats told apart), as lowercase hex: equal states have equal hashes.
    pub fn canonical_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut buf = String::new();
        for table in self.tables() {
            let mut keys: Vec<&str> = self.keys(table).collect();
            keys.sort_unstable();
            buf.clear();
            canonical(&mut buf, &Value::String(table.to_owned()));
            h.update(buf.as_bytes());
            for key in keys {
                buf.clear();
                canonical(&mut buf, &Value::String(key.to_owned()));
                if let Some(record) = self.get(table, key) {
                    canonical(&mut buf, record);
                }
                h.update(buf.as_bytes());
            }
        }
        hex(&h.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A canonical serialisation: objects with sorted keys, floats marked apart from ints.
fn canonical(out: &mut String, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for k in keys {
                canonical(out, &Value::String(k.clone()));
                out.push(':');
                canonical(out, &map[k]);
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical(out, item);
                out.push(',');
            }
            out.push(']');
        }
        Value::Number(n) if n.is_f64() => {
            out.push('f');
            out.push_str(&super::pyjson::float_repr(n.as_f64().unwrap_or(f64::NAN)));
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn db() -> Db {
        let mut tables = BTreeMap::new();
        let users: Table = serde_json::from_value(json!({
            "b": {"n": 1, "tags": ["x"]}, "a": {"n": 2}
        }))
        .unwrap_or_default();
        tables.insert("users".to_owned(), users);
        Db::from_tables(tables)
    }

    #[test]
    fn writes_stay_in_their_copy() {
        let base = db();
        let mut a = base.fresh();
        if let Some(r) = a.get_mut("users", "b") {
            r["n"] = json!(5);
        }
        assert_eq!(a.get("users", "b"), Some(&json!({"n": 5, "tags": ["x"]})));
        assert_eq!(
            base.get("users", "b"),
            Some(&json!({"n": 1, "tags": ["x"]}))
        );
        assert_eq!(
            a.fresh().get("users", "b"),
            Some(&json!({"n": 1, "tags": ["x"]}))
        );
        assert_eq!(a.changed_records()["users"].len(), 1);
        a.insert("users", "c", json!({}));
        assert_eq!(a.keys("users").collect::<Vec<_>>(), ["b", "a", "c"]);
    }

    #[test]
    fn state_equality_is_canonical() {
        let base = db();
        let mut a = base.fresh();
        let mut b = base.fresh();
        assert!(a.same_state(&b));
        assert_eq!(a.canonical_hash(), b.canonical_hash());
        // Touched but unchanged is unchanged.
        let _ = a.get_mut("users", "a");
        assert!(a.same_state(&b) && a.changed_records().is_empty());
        // Int and float differ; key order does not.
        a.insert("users", "a", json!({"n": 2.0}));
        assert!(!a.same_state(&b));
        assert_ne!(a.canonical_hash(), b.canonical_hash());
        a.insert("users", "a", json!({"n": 2}));
        b.insert("users", "b", json!({"tags": ["x"], "n": 1}));
        assert!(a.same_state(&b));
        assert_eq!(a.canonical_hash(), b.canonical_hash());
        assert_eq!(a.changes_hash(), b.changes_hash());
        // List order matters.
        b.insert("users", "b", json!({"n": 1, "tags": ["x", "y"]}));
        a.insert("users", "b", json!({"n": 1, "tags": ["y", "x"]}));
        assert!(!a.same_state(&b));
    }
}
