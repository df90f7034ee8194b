//! LLMCompiler-style plans, read line by line: [`PlanParser`].
//!
//! A planner writes numbered tasks, each a call in Python syntax whose arguments may use
//! earlier results as `$N` (also `$N.field`, and inside strings: `"weather in $1"`), ending
//! with `join()`:
//!
//! ```text
//! 1. get_weather(city="Paris")
//! 2. get_weather(city="Oslo")
//! 3. calculator(expression="$1.temp_c - $2.temp_c")
//! 4. join()
//! ```
//!
//! [`PlanParser::push`] returns each task the moment its line is complete, so the engine can
//! dispatch it while the plan is still streaming. A reference to a missing or later task
//! (which also rules out cycles), a repeated number or an unreadable line is a
//! [`PlanEvent::Invalid`] naming the line; past [`MAX_TASKS`] tasks the plan is refused.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::python::{PyExpr, PyValueError, parse_expr};

/// Most tasks a plan may have.
pub const MAX_TASKS: usize = 1000;
/// Longest plan line accepted.
pub const MAX_LINE: usize = 64 * 1024;

const REF_PREFIX: &str = "__agentry_ref_";

/// One task of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanTask {
    /// Its number in the plan.
    pub index: u32,
    /// The tool to call.
    pub name: String,
    /// Arguments, with references kept as `"$N"` / `"$N.field"` strings (or inside strings).
    pub arguments: Value,
    /// Earlier tasks whose results it needs, ascending.
    pub deps: Vec<u32>,
}

/// What a plan line said.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlanEvent {
    /// A task to run once its dependencies are done.
    Task(PlanTask),
    /// `join()`: the plan is complete.
    Join {
        /// Its number.
        index: u32,
    },
    /// A `Thought:` line or other prose.
    Thought {
        /// The text.
        text: String,
    },
    /// A line that cannot be a task; the reason is a sentence for the planner.
    Invalid {
        /// The line.
        line: String,
        /// Why.
        reason: String,
    },
}

/// Reads a plan incrementally.
#[derive(Debug, Default)]
pub struct PlanParser {
    pending: String,
    seen: BTreeSet<u32>,
    tasks: usize,
    joined: bool,
    refused: bool,
}

impl PlanParser {
    /// A parser with nothing read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `join()` was read.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Feeds a chunk; returns the events of every line it completed.
    pub fn push(&mut self, chunk: &str) -> Vec<PlanEvent> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(nl) = rest.find('\n') {
            self.pending.push_str(&rest[..nl]);
            let line = std::mem::take(&mut self.pending);
            self.line(&line, &mut out);
            rest = &rest[nl + 1..];
        }
        if self.pending.len() + rest.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            out.push(PlanEvent::Invalid {
                line: line.chars().take(200).collect(),
                reason: format!("a plan line is longer than {MAX_LINE} bytes"),
            });
        } else {
            self.pending.push_str(rest);
        }
        out
    }

    /// Ends the plan: the last line, if it had no newline.
    pub fn finish(&mut self) -> Vec<PlanEvent> {
        let mut out = Vec::new();
        let line = std::mem::take(&mut self.pending);
        self.line(&line, &mut out);
        out
    }

    fn line(&mut self, raw: &str, out: &mut Vec<PlanEvent>) {
        let line = raw.trim();
        if line.is_empty() || self.joined || self.refused {
            return;
        }
        let Some((index, call)) = split_number(line) else {
            let text = line.strip_prefix("Thought:").map_or(line, str::trim);
            out.push(PlanEvent::Thought {
                text: text.to_owned(),
            });
            return;
        };
        let invalid = |reason: String| PlanEvent::Invalid {
            line: line.to_owned(),
            reason,
        };
        if !self.seen.insert(index) {
            out.push(invalid(format!(
                "task {index} is numbered twice; number tasks 1, 2, 3, …"
            )));
            return;
        }
        if self.tasks >= MAX_TASKS {
            self.refused = true;
            out.push(invalid(format!(
                "the plan has more than {MAX_TASKS} tasks; plan fewer, larger steps"
            )));
            return;
        }
        match parse_task(index, call) {
            Ok(None) => {
                self.joined = true;
                out.push(PlanEvent::Join { index });
            }
            Ok(Some(task)) => {
                if let Some(bad) = task
                    .deps
                    .iter()
                    .find(|d| **d >= index || !self.seen.contains(d))
                {
                    let why = if *bad == index {
                        format!("task {index} refers to its own result ${bad}")
                    } else {
                        format!("task {index} refers to ${bad}, which is not an earlier task")
                    };
                    out.push(invalid(format!(
                        "{why}; a task may only use results of tasks before it"
                    )));
                    return;
                }
                self.tasks += 1;
                out.push(PlanEvent::Task(task));
            }
            Err(reason) => out.push(invalid(reason)),
        }
    }
}

/// `"3. f(x=1)"` → `(3, "f(x=1)")`.
fn split_number(line: &str) -> Option<(u32, &str)> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 6 {
        return None;
    }
    let rest = &line[digits..];
    let rest = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')'))?;
    Some((line[..digits].parse().ok()?, rest.trim()))
}

/// Reads one task's call; `Ok(None)` for `join()`.
fn parse_task(index: u32, call: &str) -> Result<Option<PlanTask>, String> {
    let call = call.trim_end_matches(';').trim();
    let (source, refs) = mark_refs(call);
    let expr =
        parse_expr(&source).map_err(|e| format!("task {index} is not a call: {}", e.message))?;
    let PyExpr::Call { func, args, kwargs } = expr else {
        return Err(format!(
            "task {index} is not a call; write `{index}. tool_name(arg=value, …)`"
        ));
    };
    let name = func
        .dotted_name()
        .ok_or_else(|| format!("task {index}: the called name must be a plain name"))?;
    if name == "join" {
        return Ok(None);
    }
    if !args.is_empty() {
        return Err(format!(
            "task {index} (`{name}`) has positional arguments; write every argument as name=value"
        ));
    }
    let mut arguments = Map::new();
    for (key, value) in kwargs {
        let key = key.ok_or_else(|| {
            format!("task {index} (`{name}`) uses `**`; write every argument as name=value")
        })?;
        let value = ref_json(&value)
            .map_err(|why| format!("task {index} (`{name}`), argument `{key}`: {why}"))?;
        arguments.insert(key, value);
    }
    let mut deps: BTreeSet<u32> = refs;
    collect_string_refs(&Value::Object(arguments.clone()), &mut deps);
    Ok(Some(PlanTask {
        index,
        name,
        arguments: Value::Object(arguments),
        deps: deps.into_iter().collect(),
    }))
}

/// Replaces `$N` outside string literals with a name Python can parse; returns the refs seen.
fn mark_refs(call: &str) -> (String, BTreeSet<u32>) {
    let mut out = String::with_capacity(call.len() + 16);
    let mut refs = BTreeSet::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut chars = call.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                out.push(c);
            }
            '$' => {
                let rest = &call[i + 1..];
                let braced = rest.starts_with('{');
                let digits_at = usize::from(braced);
                let n: String = rest[digits_at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if n.is_empty() {
                    out.push(c);
                    continue;
                }
                let consumed = digits_at
                    + n.len()
                    + usize::from(braced && rest[digits_at + n.len()..].starts_with('}'));
                for _ in 0..consumed {
                    chars.next();
                }
                if let Ok(k) = n.parse() {
                    refs.insert(k);
                }
                out.push_str(REF_PREFIX);
                out.push_str(&n);
            }
            _ => out.push(c),
        }
    }
    (out, refs)
}

/// A value with `$N` references kept as `"$N"` / `"$N.path"` strings.
fn ref_json(expr: &PyExpr) -> Result<Value, PyValueError> {
    expr.to_json_with(&mut |e| {
        ref_path(e)
            .map(Value::String)
            .or_else(|| e.json_literal_name())
    })
}

/// `$N` or `$N.a.b` when `expr` is a reference.
fn ref_path(expr: &PyExpr) -> Option<String> {
    match expr {
        PyExpr::Name(n) => n.strip_prefix(REF_PREFIX).map(|k| format!("${k}")),
        PyExpr::Attribute(base, attr) => ref_path(base).map(|b| format!("{b}.{attr}")),
        PyExpr::Subscript(base, index) => {
            let b = ref_path(base)?;
            match &**index {
                PyExpr::Int(i) => Some(format!("{b}.{i}")),
                PyExpr::Str(s) => Some(format!("{b}.{s}")),
                _ => None,
            }
        }
        _ => None,
    }
}

fn collect_string_refs(v: &Value, out: &mut BTreeSet<u32>) {
    match v {
        Value::String(s) => out.extend(refs_in(s).into_iter().map(|r| r.task)),
        Value::Array(a) => a.iter().for_each(|x| collect_string_refs(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_string_refs(x, out)),
        _ => {}
    }
}

/// A `$N` (or `$N.path`) reference inside a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Byte range of the reference in the string.
    pub span: std::ops::Range<usize>,
    /// The task it refers to.
    pub task: u32,
    /// Field path into the task's result (`temp_c`, `results.0.title`), possibly empty.
    pub path: Vec<String>,
}

/// Every `$N` / `${N}` / `$N.field` reference in `s`.
pub fn refs_in(s: &str) -> Vec<Ref> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'$', &b[i..]) {
        let start = i + k;
        let mut j = start + 1;
        let braced = b.get(j) == Some(&b'{');
        if braced {
            j += 1;
        }
        let digits_start = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j == digits_start {
            i = start + 1;
            continue;
        }
        let task = s[digits_start..j].parse().unwrap_or(0);
        if braced {
            if b.get(j) != Some(&b'}') {
                i = start + 1;
                continue;
            }
            j += 1;
        }
        let mut path = Vec::new();
        while b.get(j) == Some(&b'.')
            && b.get(j + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            let seg_start = j + 1;
            j += 1;
            while b
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                j += 1;
            }
            path.push(s[seg_start..j].to_owned());
        }
        out.push(Ref {
            span: start..j,
            task,
            path,
        });
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn task(index: u32, name: &str, arguments: Value, deps: Vec<u32>) -> PlanEvent {
        PlanEvent::Task(PlanTask {
            index,
            name: name.into(),
            arguments,
            deps,
        })
    }

    #[test]
    fn reads_tasks_with_references_as_lines_complete() {
        let mut p = PlanParser::new();
        assert_eq!(
            p.push(
                "Thought: two lookups, then compare.\n1. get_weather(city=\"Paris\")\n2. get_wea"
            ),
            vec![
                PlanEvent::Thought {
                    text: "two lookups, then compare.".into()
                },
                task(1, "get_weather", json!({"city": "Paris"}), vec![]),
            ]
        );
        assert_eq!(
            p.push("ther(city='Oslo')\n3. calculator(expression=\"$1.temp_c - ${2}.temp_c\")\n"),
            vec![
                task(2, "get_weather", json!({"city": "Oslo"}), vec![]),
                task(
                    3,
                    "calculator",
                    json!({"expression": "$1.temp_c - ${2}.temp_c"}),
                    vec![1, 2]
                ),
            ]
        );
        assert_eq!(
            p.push("4) compare(a=$1, b=$2.temp_c, both=[$1, $3])\n5. join()"),
            vec![task(
                4,
                "compare",
                json!({"a": "$1", "b": "$2.temp_c", "both": ["$1", "$3"]}),
                vec![1, 2, 3]
            ),]
        );
        assert_eq!(p.finish(), vec![PlanEvent::Join { index: 5 }]);
        assert!(p.is_joined());
    }

    #[test]
    fn bad_references_and_lines_are_invalid_with_reasons() {
        let mut p = PlanParser::new();
        let events = p
            .push("1. f(x=$1)\n2. f(x=$3)\n2. g()\n3. f(\"positional\")\n4. not a call at all (\n");
        let reasons: Vec<String> = events
            .iter()
            .map(|e| match e {
                PlanEvent::Invalid { reason, .. } => reason.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(
            reasons[0].contains("refers to its own result $1"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("refers to $3, which is not an earlier task"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("numbered twice"), "{reasons:?}");
        assert!(reasons[3].contains("positional"), "{reasons:?}");
        assert!(reasons[4].contains("task 4 is not a call"), "{reasons:?}");
    }

    #[test]
    fn too_many_tasks_are_refused_once() {
        let mut p = PlanParser::new();
        let text: String = (1..=MAX_TASKS as u32 + 5)
            .map(|i| format!("{i}. f()\n"))
            .collect();
        let events = p.push(&text);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, PlanEvent::Task(_)))
                .count(),
            MAX_TASKS
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, PlanEvent::Invalid { .. }))
                .count(),
            1
        );
    }

    #[test]
    fn references_inside_strings() {
        assert_eq!(
            refs_in("weather in $1.city, then ${2} and $x $"),
            vec![
                Ref {
                    span: 11..18,
                    task: 1,
                    path: vec!["city".into()]
                },
                Ref {
                    span: 25..29,
                    task: 2,
                    path: vec![]
                },
            ]
        );
    }
}
