//! Ground-truth replay: each task's actions run on a fresh database, as the reward does, with
//! the results compared to (or written in the shape of) the reference's `expected_<split>.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Db, DomainData, Task};

/// What a task's ground-truth replay did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replayed {
    /// The task's position in its split.
    pub task_index: usize,
    /// Whether the final database equals the initial one.
    pub db_unchanged: bool,
    /// The records that changed, as they are after the replay, by table and key.
    pub changed_records: BTreeMap<String, BTreeMap<String, Value>>,
    /// Every replayed tool call and the text it returned, in order.
    pub replay_observations: Vec<ReplayObservation>,
}

/// One replayed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayObservation {
    /// Tool name.
    pub name: String,
    /// The exact text it returned.
    pub observation: String,
}

/// A file of replay results (`expected_<split>.json`, or one written by `--emit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayFile {
    /// One entry per task.
    pub tasks: Vec<Replayed>,
}

/// Runs `task`'s ground-truth actions on a fresh database (terminal tools skipped, errors
/// ignored, as the reward's replay does); returns the result and the final database.
pub fn replay_task(data: &DomainData, index: usize, task: &Task) -> (Replayed, Db) {
    let env = data.env();
    let terminal = data.domain.terminal_tools();
    let mut observations = Vec::with_capacity(task.actions.len());
    for action in &task.actions {
        if terminal.contains(&action.name.as_str()) {
            continue;
        }
        let obs = env.step(&action.name, &action.kwargs);
        observations.push(ReplayObservation {
            name: action.name.clone(),
            observation: obs.text,
        });
    }
    let db = env.db();
    let changed_records = db.changed_records();
    (
        Replayed {
            task_index: index,
            db_unchanged: changed_records.is_empty(),
            changed_records,
            replay_observations: observations,
        },
        db,
    )
}

/// Where a replay first differs from the reference, in words.
pub fn first_difference(initial: &Db, got: &Replayed, want: &Replayed) -> Option<String> {
    for (i, (g, w)) in got
        .replay_observations
        .iter()
        .zip(&want.replay_observations)
        .enumerate()
    {
        if g != w {
            return Some(format!(
                "observation {} ({}): got {:?}, expected {:?}",
                i + 1,
                w.name,
                clip(&g.observation),
                clip(&w.observation)
            ));
        }
    }
    if got.replay_observations.len() != want.replay_observations.len() {
        return Some(format!(
            "{} observations, expected {}",
            got.replay_observations.len(),
            want.replay_observations.len()
        ));
    }
    // Compare effective records: a record listed on one side only is compared with its
    // initial value. The reference listed a record only when Python's `==` saw a change, and
    // `9 == 9.0` there, so such a comparison uses numeric equality; records both sides list
    // are compared strictly (ints and floats apart).
    let mut keys: Vec<(&String, &String)> = Vec::new();
    for side in [&got.changed_records, &want.changed_records] {
        for (table, records) in side {
            keys.extend(records.keys().map(|k| (table, k)));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    for (table, key) in keys {
        let listed = |r: &Replayed| {
            r.changed_records
                .get(table)
                .and_then(|t| t.get(key))
                .cloned()
        };
        let initial = || initial.get(table, key).cloned().unwrap_or(Value::Null);
        let path = format!("{table}[{key:?}]");
        let difference = match (listed(got), listed(want)) {
            (Some(g), Some(w)) => value_difference(&g, &w, &path, false),
            (Some(g), None) => value_difference(&g, &initial(), &path, true),
            (None, Some(w)) => value_difference(&initial(), &w, &path, true),
            (None, None) => None,
        };
        if difference.is_some() {
            return difference;
        }
    }
    None
}

/// The first path where `got` and `want` differ (key order does not matter; ints and floats
/// differ unless `numeric`, which compares numbers by value as Python's `==` does).
fn value_difference(got: &Value, want: &Value, path: &str, numeric: bool) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gv) => {
                        if let Some(d) = value_difference(gv, wv, &p, numeric) {
                            return Some(d);
                        }
                    }
                    None => {
                        return Some(format!("{p}: missing, expected {}", clip(&wv.to_string())));
                    }
                }
            }
            g.keys()
                .find(|k| !w.contains_key(*k))
                .map(|k| format!("{path}.{k}: present, expected absent"))
        }
        (Value::Array(g), Value::Array(w)) => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                if let Some(d) = value_difference(gv, wv, &format!("{path}[{i}]"), numeric) {
                    return Some(d);
                }
            }
            (g.len() != w.len())
                .then(|| format!("{path}: {} entries, expected {}", g.len(), w.len()))
        }
        (g, w) if g == w => None,
        (Value::Number(g), Value::Number(w)) if numeric && g.as_f64() == w.as_f64() => None,
        (g, w) => Some(format!(
            "{path}: got {}, expected {}",
            clip(&super::pyjson::dumps(g)),
            clip(&super::pyjson::dumps(w))
        )),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 160 {
        s.to_owned()
    } else {
        let head: String = s.chars().take(160).collect();
        format!("{head}…")
    }
}
