//! Reading policy files (TOML or YAML) into a [`Policy`], refusing anything doubtful with
//! the line and the reason: a policy that does not say what its author meant must not run.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    Action, Capabilities, Policy, PolicyError,
    rule::{Condition, Paths, Rule, Test},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "R: Deserialize<'de>"))]
struct File<R> {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    paths: Option<PathsFile>,
    #[serde(default, alias = "rules")]
    rule: Vec<R>,
    #[serde(default, alias = "agents")]
    agent: BTreeMap<String, AgentFile>,
}

/// The top-level `paths`: how `inside` tests read paths. Checked while the file is read, so
/// a bad value is refused with its line.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct PathsFile(Paths);

impl TryFrom<String> for PathsFile {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "local" => Ok(Self(Paths::Local)),
            "lexical" => Ok(Self(Paths::Lexical)),
            _ => Err(format!(
                "`paths = \"{value}\"`: expected \"local\" (the tool opens paths on this machine) \
                 or \"lexical\" (its files are elsewhere; paths are checked as strings)"
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: Option<String>,
    server: Option<String>,
    tool: Option<String>,
    #[serde(default)]
    when: Vec<CondFile>,
    action: String,
    reason: Option<String>,
    #[serde(default)]
    set: Map<String, Value>,
    #[serde(default)]
    clamp: BTreeMap<String, ClampFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClampFile {
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CondFile {
    path: String,
    equals: Option<Value>,
    not_equals: Option<Value>,
    one_of: Option<Vec<Value>>,
    not_one_of: Option<Vec<Value>>,
    prefix: Option<String>,
    not_prefix: Option<String>,
    regex: Option<String>,
    not_regex: Option<String>,
    lt: Option<f64>,
    le: Option<f64>,
    gt: Option<f64>,
    ge: Option<f64>,
    inside: Option<String>,
    not_inside: Option<String>,
    relative_to: Option<String>,
    exists: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    servers: Vec<String>,
    #[serde(default)]
    rate: BTreeMap<String, String>,
}

fn err(line: Option<usize>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        line,
        message: message.into(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

pub(crate) fn from_toml(text: &str) -> Result<Policy, PolicyError> {
    let file: File<toml::Spanned<RuleFile>> = toml::from_str(text).map_err(|e| {
        err(
            e.span().map(|s| line_of(text, s.start)),
            e.message().trim().to_owned(),
        )
    })?;
    let rules = file
        .rule
        .into_iter()
        .map(|r| (Some(line_of(text, r.span().start)), r.into_inner()))
        .collect();
    build(file.default, file.paths, rules, file.agent)
}

pub(crate) fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
    let file: File<RuleFile> = serde_norway::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        err(e.location().map(|l| l.line()), message)
    })?;
    build(
        file.default,
        file.paths,
        file.rule.into_iter().map(|r| (None, r)).collect(),
        file.agent,
    )
}

fn action(name: &str) -> Option<Action> {
    Some(match name {
        "allow" => Action::Allow,
        "deny" => Action::Deny,
        "rewrite" => Action::Rewrite,
        "ask" => Action::Ask,
        _ => return None,
    })
}

fn glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("`{pattern}` is not a glob: {e}"))
}

fn build(
    default: Option<String>,
    paths: Option<PathsFile>,
    rules: Vec<(Option<usize>, RuleFile)>,
    agents: BTreeMap<String, AgentFile>,
) -> Result<Policy, PolicyError> {
    let default = match default.as_deref() {
        None => Action::Allow,
        Some(d) => match action(d) {
            Some(Action::Rewrite) | None => {
                return Err(err(
                    None,
                    format!("`default = \"{d}\"`: the default must be allow, deny or ask"),
                ));
            }
            Some(a) => a,
        },
    };
    let paths = paths.map_or(Paths::Local, |p| p.0);
    let mut out = Vec::with_capacity(rules.len());
    for (i, (line, r)) in rules.into_iter().enumerate() {
        let label = r
            .name
            .clone()
            .map_or_else(|| format!("rule {}", i + 1), |n| format!("rule `{n}`"));
        let fail = |m: String| err(line, format!("{label}: {m}"));
        let act = action(&r.action).ok_or_else(|| {
            fail(format!(
                "unknown action `{}`; expected allow, deny, rewrite or ask",
                r.action
            ))
        })?;
        if act == Action::Rewrite && r.set.is_empty() && r.clamp.is_empty() {
            return Err(fail(
                "a rewrite needs `set` or `clamp` (what to change)".into(),
            ));
        }
        if act != Action::Rewrite && (!r.set.is_empty() || !r.clamp.is_empty()) {
            return Err(fail(format!(
                "`set` and `clamp` only apply to action = \"rewrite\", not \"{}\"",
                r.action
            )));
        }
        let mut when = Vec::with_capacity(r.when.len());
        for c in r.when {
            when.push(condition(c, paths).map_err(&fail)?);
        }
        let mut set = Vec::new();
        for (path, value) in r.set {
            set.push((pointer(&path).map_err(&fail)?, value));
        }
        let mut clamp = Vec::new();
        for (path, c) in r.clamp {
            if c.min.is_none() && c.max.is_none() {
                return Err(fail(format!("clamp of `{path}` needs min or max")));
            }
            if let (Some(lo), Some(hi)) = (c.min, c.max)
                && lo > hi
            {
                return Err(fail(format!(
                    "clamp of `{path}`: min {lo} is above max {hi}"
                )));
            }
            clamp.push((pointer(&path).map_err(&fail)?, c.min, c.max));
        }
        out.push(Rule {
            name: r.name,
            server: r.server.as_deref().map(glob).transpose().map_err(&fail)?,
            tool: r.tool.as_deref().map(glob).transpose().map_err(&fail)?,
            when,
            action: act,
            reason: r.reason,
            set,
            clamp,
            line,
        });
    }
    let mut caps = BTreeMap::new();
    for (name, a) in agents {
        let fail = |m: String| err(None, format!("agent `{name}`: {m}"));
        let tools = a
            .tools
            .iter()
            .map(|g| glob(g))
            .collect::<Result<_, _>>()
            .map_err(&fail)?;
        let servers = a
            .servers
            .iter()
            .map(|g| glob(g))
            .collect::<Result<_, _>>()
            .map_err(&fail)?;
        let mut rates = Vec::new();
        for (tool, spec) in a.rate {
            let (most, window) = rate(&spec).map_err(|m| fail(format!("rate of `{tool}`: {m}")))?;
            rates.push((glob(&tool).map_err(&fail)?, spec, most, window));
        }
        caps.insert(
            name,
            Capabilities {
                tools,
                servers,
                rates,
            },
        );
    }
    Ok(Policy::new(default, out, caps))
}

/// `10/minute`, `5/s`, `100 per hour`.
fn rate(spec: &str) -> Result<(u32, Duration), String> {
    let bad = || format!("`{spec}` is not a rate like 10/minute, 5/second or 100/hour");
    let (n, unit) = spec
        .split_once('/')
        .or_else(|| spec.split_once(" per "))
        .ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let window = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!(
            "`{spec}` allows no calls; hide the tool instead (tools = [...])"
        ));
    }
    Ok((n, window))
}

/// A JSON pointer from `/a/b`, `$.a.b[0]` or `a.b`.
fn pointer(path: &str) -> Result<String, String> {
    if path.starts_with('/') || path.is_empty() {
        return Ok(path.to_owned());
    }
    let rest = path.strip_prefix('$').unwrap_or(path);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    let mut out = String::new();
    for part in rest.split('.') {
        let (key, mut idx) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() && idx.is_empty() {
            return Err(format!("`{path}` is not a path like /a/b or $.a.b"));
        }
        if !key.is_empty() {
            out.push('/');
            out.push_str(&key.replace('~', "~0").replace('/', "~1"));
        }
        while let Some(close) = idx.find(']') {
            let n = &idx[1..close];
            if n.parse::<usize>().is_err() {
                return Err(format!("`{path}`: `[{n}]` is not an index"));
            }
            out.push('/');
            out.push_str(n);
            idx = &idx[close + 1..];
        }
        if !idx.is_empty() {
            return Err(format!("`{path}` is not a path like /a/b or $.a.b"));
        }
    }
    Ok(out)
}

fn condition(c: CondFile, paths: Paths) -> Result<Condition, String> {
    let path = pointer(&c.path)?;
    let mut tests: Vec<(Test, bool)> = Vec::new();
    let regex = |r: &str| {
        regex::Regex::new(r).map_err(|e| format!("the regex `{r}` does not compile: {e}"))
    };
    if let Some(v) = c.equals {
        tests.push((Test::Equals(v), false));
    }
    if let Some(v) = c.not_equals {
        tests.push((Test::Equals(v), true));
    }
    if let Some(v) = c.one_of {
        tests.push((Test::OneOf(v), false));
    }
    if let Some(v) = c.not_one_of {
        tests.push((Test::OneOf(v), true));
    }
    if let Some(v) = c.prefix {
        tests.push((Test::Prefix(v), false));
    }
    if let Some(v) = c.not_prefix {
        tests.push((Test::Prefix(v), true));
    }
    if let Some(v) = c.regex {
        tests.push((Test::Regex(regex(&v)?), false));
    }
    if let Some(v) = c.not_regex {
        tests.push((Test::Regex(regex(&v)?), true));
    }
    for (v, make) in [
        (c.lt, Test::Lt as fn(f64) -> Test),
        (c.le, Test::Le),
        (c.gt, Test::Gt),
        (c.ge, Test::Ge),
    ] {
        if let Some(v) = v {
            tests.push((make(v), false));
        }
    }
    if let Some(base) = &c.relative_to {
        if !base.starts_with('/') {
            return Err(format!(
                "`relative_to = \"{base}\"` must be an absolute directory"
            ));
        }
        if c.inside.is_none() && c.not_inside.is_none() {
            return Err(format!(
                "the condition on `{}`: `relative_to` only goes with inside or not_inside",
                c.path
            ));
        }
    }
    for (name, v, negated) in [
        ("inside", c.inside, false),
        ("not_inside", c.not_inside, true),
    ] {
        if let Some(dir) = v {
            if !dir.starts_with('/') {
                return Err(format!(
                    "`{name} = \"{dir}\"` must be an absolute directory"
                ));
            }
            tests.push((
                Test::Inside {
                    dir,
                    relative_to: c.relative_to.clone(),
                    paths,
                },
                negated,
            ));
        }
    }
    if let Some(e) = c.exists {
        tests.push((Test::Exists, !e));
    }
    match tests.len() {
        1 => {
            let (test, negated) = tests.remove(0);
            Ok(Condition {
                pointer: path,
                test,
                negated,
            })
        }
        0 => Err(format!(
            "the condition on `{}` has no test (equals, prefix, regex, lt, gt, inside, exists…)",
            c.path
        )),
        _ => Err(format!(
            "the condition on `{}` has {} tests; write one condition per test",
            c.path,
            tests.len()
        )),
    }
}
