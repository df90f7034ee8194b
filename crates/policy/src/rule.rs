//! One rule: where it applies (server, tool, argument conditions) and what it does.
//!
//! A condition is three-valued ([`Truth`]): besides holding or failing it can be
//! undecidable, when the policy cannot prove what a path argument names (a relative or `~`
//! path, a symbolic link loop, a directory it may not read, readings of the path that lead
//! to different places). [`Policy::decide`](crate::Policy::decide) denies a call that a rule
//! cannot be decided for, whatever the rule's action: refusing is the safe answer for an
//! `inside` allow rule and a `not_inside` deny rule alike.
//!
//! `inside` decides on what the tool will open, not on the string: the path is resolved the
//! way the kernel resolves it (the symbolic links among its existing parts followed, `.` and
//! `..`), and also the way a tool that removes `..` first resolves it; it is read as given
//! and in Unicode NFC, and compared with the directory (resolved the same way) byte for
//! byte and in NFC. Only when every reading agrees is the test decided.

use std::io;

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

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
    /// A path (string) that names something inside `dir`, decided on the resolved path:
    /// with [`Paths::Local`] the symbolic links among its existing parts are followed on
    /// this machine, `.` and `..` resolved, names compared as written and in Unicode NFC.
    /// A relative path is undecidable unless `relative_to` says what it is relative to; a
    /// `~` path is always undecidable (the tool expands it, not the policy). Not covered:
    /// a file replaced by a symbolic link between the check and the open, and
    /// case-insensitive filesystems.
    Inside {
        /// The directory (absolute).
        dir: String,
        /// What a relative path is relative to (absolute), if the rule says.
        relative_to: Option<String>,
        /// Whether the disk is looked at.
        paths: Paths,
    },
    /// The argument is present.
    Exists,
}

/// How `inside` tests read paths: on this machine's disk, or as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paths {
    /// The tool opens paths on this machine: symbolic links among the parts that exist are
    /// followed, as the tool's open would follow them.
    #[default]
    Local,
    /// The tool's files are not this machine's (a server elsewhere): only `.` and `..` are
    /// resolved and nothing is looked up, so the test checks the string alone.
    Lexical,
}

/// What a condition, or a rule's conditions, say of a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truth {
    /// It holds.
    Holds,
    /// It does not hold.
    Fails,
    /// The policy cannot tell; the sentence (for the model) says why.
    Undecidable(String),
}

impl From<bool> for Truth {
    fn from(holds: bool) -> Self {
        if holds { Self::Holds } else { Self::Fails }
    }
}

impl Condition {
    /// Whether the condition holds for `args`; an undecidable condition does not hold.
    /// [`Condition::truth`] tells the two apart.
    pub fn holds(&self, args: &Value) -> bool {
        self.truth(args) == Truth::Holds
    }

    /// Whether the condition holds for `args`, fails, or cannot be decided (an `inside`
    /// test on a path the policy cannot resolve). A test on a missing argument fails (so
    /// its negation holds), except `exists`; so does a path test on a value that is not a
    /// string.
    pub fn truth(&self, args: &Value) -> Truth {
        let Some(v) = args.pointer(&self.pointer) else {
            return Truth::from(self.negated);
        };
        let result = match &self.test {
            Test::Exists => true,
            Test::Equals(want) => json_eq(v, want),
            Test::OneOf(options) => options.iter().any(|o| json_eq(v, o)),
            Test::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Test::Regex(re) => v.as_str().is_some_and(|s| re.is_match(s)),
            Test::Lt(x) => v.as_f64().is_some_and(|n| n < *x),
            Test::Le(x) => v.as_f64().is_some_and(|n| n <= *x),
            Test::Gt(x) => v.as_f64().is_some_and(|n| n > *x),
            Test::Ge(x) => v.as_f64().is_some_and(|n| n >= *x),
            Test::Inside {
                dir,
                relative_to,
                paths,
            } => match v.as_str() {
                None => false,
                Some(path) => match inside(path, dir, relative_to.as_deref(), *paths) {
                    Ok(yes) => yes,
                    Err(why) => {
                        return Truth::Undecidable(format!(
                            "cannot tell whether `{}` ({v}) is inside {dir}: {why}",
                            self.pointer
                        ));
                    }
                },
            },
        };
        Truth::from(result != self.negated)
    }
}

/// Numbers compare by value (`1` equals `1.0`); everything else structurally.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The most symbolic links one reading of a path may follow, as Linux allows (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// The most readings of one path (a name that exists on disk in another Unicode form is
/// one more) before the policy gives up.
const MAX_READINGS: usize = 16;

/// Whether `path` names something inside `dir` for every reading a tool may take of it, or
/// why that cannot be told. The readings: the path as given and in NFC; with
/// [`Paths::Local`], each resolved as the kernel does (`..` after a symbolic link goes to the
/// link target's parent) and, when it holds `..`, as a tool that removes `..` before opening
/// does (Node's `path.resolve`, Python's `normpath`); a missing name that exists beside it in
/// another Unicode form is read both ways (server-filesystem opens the other form). Each
/// reading is compared with each reading of `dir` component by component (`/tmp/sandbox2`
/// is not inside `/tmp/sandbox`), byte for byte and in NFC.
pub(crate) fn inside(
    path: &str,
    dir: &str,
    relative_to: Option<&str>,
    paths: Paths,
) -> Result<bool, String> {
    if path.is_empty() {
        return Err("an empty path; give an absolute path".into());
    }
    if path.contains('\0') {
        return Err("a path with a NUL character".into());
    }
    let full = if path.starts_with('/') {
        path.to_owned()
    } else if path.starts_with('~') {
        return Err(
            "a `~` path is expanded by the tool, not by the policy; give an absolute path".into(),
        );
    } else if let Some(base) = relative_to {
        format!("{base}/{path}")
    } else {
        return Err(
            "a relative path, which the tool resolves against a directory of its own; give an absolute path"
                .into(),
        );
    };
    let dirs = match paths {
        Paths::Local => resolve(dir)?,
        Paths::Lexical => vec![lexical(dir)],
    };
    let full_nfc: String = full.as_str().nfc().collect();
    let mut spellings = vec![full.as_str()];
    if full_nfc != full {
        spellings.push(full_nfc.as_str());
    }
    // (which spelling, inside byte for byte, inside in NFC), one per reading and directory.
    let mut answers: Vec<(usize, bool, bool)> = Vec::new();
    for (which, spelling) in spellings.iter().enumerate() {
        let targets = match paths {
            Paths::Lexical => vec![lexical(spelling)],
            Paths::Local => {
                let mut targets = resolve(spelling)?;
                if spelling.split('/').any(|p| p == "..") {
                    targets.extend(resolve(&joined(&lexical(spelling)))?);
                }
                targets
            }
        };
        for target in &targets {
            for d in &dirs {
                answers.push((
                    which,
                    starts_with(target, d),
                    starts_with(&nfc_parts(target), &nfc_parts(d)),
                ));
            }
        }
    }
    let first = answers.first().is_some_and(|a| a.1);
    if answers
        .iter()
        .all(|&(_, exact, nfc)| exact == first && nfc == first)
    {
        return Ok(first);
    }
    let why = if answers.iter().any(|&(_, exact, nfc)| exact != nfc) {
        "its names and the directory's differ only in Unicode form (NFC, NFD); write them as they are on disk"
    } else if answers
        .iter()
        .any(|&(w, e, _)| answers.iter().any(|&(w2, e2, _)| w != w2 && e != e2))
    {
        "as written and in Unicode NFC it names different places"
    } else {
        "it can lead to more than one place (`..` after a symbolic link, or a name that exists \
         in another Unicode form); give the path without `..`, as it is on disk"
    };
    Err(why.to_owned())
}

/// Whether `path` is `dir` or below it, component by component.
fn starts_with(path: &[String], dir: &[String]) -> bool {
    path.len() >= dir.len() && path[..dir.len()] == dir[..]
}

/// Each component in Unicode NFC.
fn nfc_parts(parts: &[String]) -> Vec<String> {
    parts
        .iter()
        .map(|p| p.as_str().nfc().collect::<String>())
        .collect()
}

/// `/a/b` from `["a", "b"]`; the root is the empty string.
fn joined(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    out
}

/// The components of an absolute `path` once `.` and `..` are resolved as text, repeated
/// and trailing slashes ignored. `..` above the root stays at the root, as the kernel does.
fn lexical(path: &str) -> Vec<String> {
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

/// A reading of a path in progress.
#[derive(Clone)]
struct Walk {
    /// The components resolved so far.
    done: Vec<String>,
    /// The components still to resolve, the next one last.
    todo: Vec<String>,
    /// Symbolic links followed so far.
    links: usize,
    /// From which index of `done` the components do not exist (and were taken as written).
    missing_from: Option<usize>,
}

/// The places an absolute `path` leads to on this machine, resolved like `realpath` but
/// tolerating a part that does not exist (a file about to be written): components are
/// walked from `/`, `.` skipped, `..` going to the parent of what is resolved so far (above
/// the root: the root); each existing component that is a symbolic link is replaced by its
/// target (a relative target read from the link's directory, an absolute one from `/`);
/// from the first component that does not exist the rest is taken as written. A missing
/// name that exists beside it in another Unicode form gives one more reading through that
/// entry. Written by hand because `std::fs::canonicalize` needs the whole path to exist.
/// An error other than "not found" (permission denied…), more than [`MAX_LINKS`] links or
/// more than [`MAX_READINGS`] readings make the path undecidable: the sentence says why.
fn resolve(path: &str) -> Result<Vec<Vec<String>>, String> {
    let mut walks = vec![Walk {
        done: Vec::new(),
        todo: path.split('/').rev().map(str::to_owned).collect(),
        links: 0,
        missing_from: None,
    }];
    let mut readings = 1;
    let mut ends = Vec::new();
    while let Some(mut walk) = walks.pop() {
        while let Some(part) = walk.todo.pop() {
            if part.is_empty() || part == "." {
                continue;
            }
            if part == ".." {
                walk.done.pop();
                if walk.missing_from.is_some_and(|m| walk.done.len() <= m) {
                    walk.missing_from = None;
                }
                continue;
            }
            if walk.missing_from.is_some() {
                walk.done.push(part);
                continue;
            }
            let here = format!("{}/{part}", joined(&walk.done));
            match std::fs::symlink_metadata(&here) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    walk.links += 1;
                    if walk.links > MAX_LINKS {
                        return Err(format!(
                            "more than {MAX_LINKS} symbolic links to follow (a loop?)"
                        ));
                    }
                    let target = std::fs::read_link(&here).map_err(|e| {
                        format!("the symbolic link {here} cannot be read ({})", e.kind())
                    })?;
                    let Some(target) = target.to_str() else {
                        return Err(format!(
                            "the symbolic link {here} points to a name that is not UTF-8"
                        ));
                    };
                    if target.starts_with('/') {
                        walk.done.clear();
                    }
                    walk.todo.extend(target.split('/').rev().map(str::to_owned));
                }
                Ok(_) => walk.done.push(part),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    for other in equivalents(&walk.done, &part)? {
                        readings += 1;
                        if readings > MAX_READINGS {
                            return Err("it can lead to too many places to check".into());
                        }
                        let mut alt = walk.clone();
                        alt.todo.push(other);
                        walks.push(alt);
                    }
                    walk.missing_from = Some(walk.done.len());
                    walk.done.push(part);
                }
                Err(e) => return Err(format!("{here} cannot be examined ({})", e.kind())),
            }
        }
        ends.push(walk.done);
    }
    Ok(ends)
}

/// The names in directory `parts` that are `name` in another Unicode form (a tool that
/// matches names up to normalisation, as server-filesystem does, may open one of them).
fn equivalents(parts: &[String], name: &str) -> Result<Vec<String>, String> {
    let mut dir = joined(parts);
    if dir.is_empty() {
        dir.push('/');
    }
    let want: String = name.nfc().collect();
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("{dir} cannot be listed ({})", e.kind()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{dir} cannot be listed ({})", e.kind()))?;
        let file_name = entry.file_name();
        if let Some(other) = file_name.to_str()
            && other != name
            && other.nfc().eq(want.chars())
        {
            out.push(other.to_owned());
        }
    }
    Ok(out)
}

impl Rule {
    /// Whether the rule applies to a call of `tool` (from `server`) with `args`: it fails
    /// when its server or tool glob does not match or a condition fails; otherwise it is
    /// undecidable when a condition is (the first such condition says why), else it holds.
    pub fn matches(&self, server: Option<&str>, tool: &str, args: &Value) -> Truth {
        if let Some(g) = &self.server
            && !server.is_some_and(|s| g.is_match(s))
        {
            return Truth::Fails;
        }
        if let Some(g) = &self.tool
            && !g.is_match(tool)
        {
            return Truth::Fails;
        }
        let mut undecided = None;
        for c in &self.when {
            match c.truth(args) {
                Truth::Holds => {}
                Truth::Fails => return Truth::Fails,
                Truth::Undecidable(why) => {
                    if undecided.is_none() {
                        undecided = Some(why);
                    }
                }
            }
        }
        undecided.map_or(Truth::Holds, Truth::Undecidable)
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
