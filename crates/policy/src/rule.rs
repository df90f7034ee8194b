//! One rule: where it applies (server, tool, argument conditions) and what it does.

use serde_json::{Map, Value};

use crate::{Action, Verdict};

/// A rule of a policy.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, if it has one.
    pub name: Option<String>,
    pub(crate) server: Option<globset::GlobMatcher>,
    pub(crate) tool: Option<globset::GlobMatcher>,
    /// Conditions on the arguments; all must hold.
    pub when: Vec<Condition>,
    /// What it does.
    pub action: Action,
    pub(crate) reason: Option<String>,
    pub(crate) set: Vec<(String, Value)>,
    pub(crate) clamp: Vec<(String, Option<f64>, Option<f64>)>,
    /// Where it is in the file (from 1), when known.
    pub line: Option<usize>,
}

/// A condition on one argument.
#[derive(Debug, Clone)]
pub struct Condition {
    /// A JSON pointer (`/a/b/0`) into the arguments.
    pub pointer: String,
    /// The test.
    pub test: Test,
    /// Whether the test is negated (`not_inside`, `not_equals`…).
    pub negated: bool,
}

/// What a condition checks of its value.
#[derive(Debug, Clone)]
pub enum Test {
    /// Equal to this JSON value.
    Equals(Value),
    /// Equal to one of these.
    OneOf(Vec<Value>),
    /// A string starting with this.
    Prefix(String),
    /// A string this regex matches (anywhere; anchor it with `^…$`).
    Regex(regex::Regex),
    /// A number below.
    Lt(f64),
    /// A number at most.
    Le(f64),
    /// A number above.
    Gt(f64),
    /// A number at least.
    Ge(f64),
    /// A path (string) inside this directory once `.` and `..` are resolved.
    Inside(String),
    /// The argument is present.
    Exists,
}

impl Condition {
    /// Whether the condition holds for `args`. A test on a missing argument fails (so its
    /// negation holds), except `exists`.
    pub fn holds(&self, args: &Value) -> bool {
        let value = args.pointer(&self.pointer);
        let result = match (&self.test, value) {
            (Test::Exists, v) => v.is_some(),
            (_, None) => false,
            (Test::Equals(want), Some(v)) => json_eq(v, want),
            (Test::OneOf(options), Some(v)) => options.iter().any(|o| json_eq(v, o)),
            (Test::Prefix(p), Some(v)) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            (Test::Regex(re), Some(v)) => v.as_str().is_some_and(|s| re.is_match(s)),
            (Test::Lt(x), Some(v)) => v.as_f64().is_some_and(|n| n < *x),
            (Test::Le(x), Some(v)) => v.as_f64().is_some_and(|n| n <= *x),
            (Test::Gt(x), Some(v)) => v.as_f64().is_some_and(|n| n > *x),
            (Test::Ge(x), Some(v)) => v.as_f64().is_some_and(|n| n >= *x),
            (Test::Inside(dir), Some(v)) => v.as_str().is_some_and(|p| inside(p, dir)),
        };
        result != self.negated
    }
}

/// Numbers compare by value (`1` equals `1.0`); everything else structurally.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Whether `path` lies inside `dir`, lexically: `.` and `..` resolved, repeated and trailing
/// slashes ignored; a relative path is taken relative to `dir`. `..` above the root stays
/// at the root, as the kernel does. Symbolic links are not followed.
pub(crate) fn inside(path: &str, dir: &str) -> bool {
    let dir = normalize(dir);
    let full = if path.starts_with('/') {
        normalize(path)
    } else {
        normalize(&format!("{}/{path}", dir.join("/")))
    };
    full.len() >= dir.len() && full[..dir.len()] == dir[..]
}

fn normalize(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p.to_owned()),
        }
    }
    parts
}

impl Rule {
    /// Whether the rule applies to a call of `tool` (from `server`) with `args`.
    pub fn matches(&self, server: Option<&str>, tool: &str, args: &Value) -> bool {
        if let Some(g) = &self.server
            && !server.is_some_and(|s| g.is_match(s))
        {
            return false;
        }
        if let Some(g) = &self.tool
            && !g.is_match(tool)
        {
            return false;
        }
        self.when.iter().all(|c| c.holds(args))
    }

    /// How it is called in decisions: its name, or `rule N`.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("rule {}", index + 1))
    }

    /// The verdict of this rule (number `index`) on a call it matches.
    pub(crate) fn verdict(&self, index: usize, tool: &str, args: &Value) -> Verdict {
        let label = self.label(index);
        let reason = match self.action {
            Action::Deny => Some(self.reason.clone().unwrap_or_else(|| {
                format!("the policy does not allow this call of `{tool}` ({label})")
            })),
            Action::Ask => Some(
                self.reason
                    .clone()
                    .unwrap_or_else(|| format!("`{tool}` needs a human's approval ({label})")),
            ),
            _ => self.reason.clone(),
        };
        let rewritten = (self.action == Action::Rewrite).then(|| self.rewrite(args));
        Verdict {
            action: self.action,
            rule: Some(label),
            reason,
            rewritten,
        }
    }

    fn rewrite(&self, args: &Value) -> Value {
        let mut out = args.clone();
        for (pointer, value) in &self.set {
            set_pointer(&mut out, pointer, value.clone());
        }
        for (pointer, min, max) in &self.clamp {
            if let Some(slot) = out.pointer_mut(pointer)
                && let Some(n) = slot.as_f64()
            {
                let clamped = n.max(min.unwrap_or(f64::MIN)).min(max.unwrap_or(f64::MAX));
                if clamped != n {
                    *slot = number_like(slot, clamped);
                }
            }
        }
        out
    }
}

/// `x` as a JSON number of the same kind as `like` (an integer stays an integer).
fn number_like(like: &Value, x: f64) -> Value {
    if (like.is_i64() || like.is_u64()) && x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// Sets the value at JSON pointer `pointer`, creating objects on the way.
fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    let keys: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = keys.split_last() else {
        *root = value;
        return;
    };
    let mut at = root;
    for key in parents {
        if !at.is_object() && !at.is_array() {
            *at = Value::Object(Map::new());
        }
        at = match at {
            Value::Array(items) => match key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return,
            },
            Value::Object(map) => map
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            _ => return,
        };
    }
    match at {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *slot = value;
            }
        }
        other => {
            let mut map = Map::new();
            map.insert(last.clone(), value);
            *other = Value::Object(map);
        }
    }
}
