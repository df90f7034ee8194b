//! Tools that run a program: [`CommandTool`], declared by a [`CommandSpec`] (typed
//! parameters and an argv template, never a shell string) and run in the sandbox
//! ([`agentry_sandbox`]), in a workspace directory of the run ([`Workspaces`]).
//!
//! Each template element becomes exactly one argv element (or, for an element that is
//! only an array parameter, one per item): a value is never split or read by a shell, so
//! `; rm -rf /` is an argument like any other. A string value that fills a whole element
//! and starts with `-` is refused unless the template has a `--` before it: the program
//! would read it as an option (`--pre=…`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use agentry_core::{ToolError, ToolSpec};
use agentry_sandbox::{Layer, Limits, Outcome, Policy, Program, Sandbox};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{CallContext, DynTool};

/// A command tool as declared (in `agentry.toml`'s `[tools.NAME]`, or in code).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The name the model calls it by (from the table's key in `agentry.toml`).
    #[serde(default)]
    pub name: String,
    /// What it does and when to use it, for the model.
    pub description: String,
    /// JSON Schema of its arguments (an object); no arguments when absent.
    #[serde(default = "no_parameters")]
    pub parameters: Value,
    /// The argv template: `["rg", "--json", "--", "{pattern}", "{path}"]`.
    pub argv: Vec<String>,
    /// Working directory, relative to the run's workspace (the workspace when absent).
    pub cwd: Option<PathBuf>,
    /// Variables of agentry's own environment it may see (nothing else is passed on but
    /// `PATH`, `LANG`, and `HOME` and `TMPDIR` set to the workspace).
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds before it is killed, with everything it started.
    pub timeout: Option<f64>,
    /// Most bytes of stdout, and of stderr, returned; the rest is counted.
    pub output_cap: Option<usize>,
    /// Whether running it twice is harmless (retries need it).
    #[serde(default)]
    pub idempotent: bool,
    /// Whether it may use the network.
    #[serde(default)]
    pub network: bool,
    /// Paths it may read besides the system's.
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Paths it may write besides the workspace.
    #[serde(default)]
    pub write: Vec<PathBuf>,
    /// Its resource limits (the sandbox's defaults where not given).
    pub limits: Option<Limits>,
}

fn no_parameters() -> Value {
    json!({"type": "object", "properties": {}})
}

/// Where runs' workspaces are, and the sandbox settings every program tool starts from.
#[derive(Debug, Clone)]
pub struct Workspaces {
    /// The directory holding one workspace per run (`ROOT/RUN_ID`).
    pub root: PathBuf,
    /// The policy every tool's starts from (its workspace is replaced per run).
    pub base: Policy,
}

impl Workspaces {
    /// Workspaces under `root`, with the default sandbox policy.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            base: Policy::new(&root),
            root,
        }
    }

    /// Under `~/.cache/agentry/workspaces` (`$XDG_CACHE_HOME` when set).
    pub fn default_root() -> PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join("agentry").join("workspaces")
    }

    /// The workspace of run `run_id` (`detached` for a call outside a run).
    pub fn of(&self, run_id: Option<&str>) -> PathBuf {
        let id = run_id.unwrap_or("detached");
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let safe = if safe.is_empty() || safe.starts_with('.') {
            format!("_{safe}")
        } else {
            safe
        };
        self.root.join(safe)
    }

    /// The sandbox of one call: `policy` with the run's workspace.
    pub(crate) fn sandbox(
        &self,
        policy: &Policy,
        extra_read: &[PathBuf],
        run_id: Option<&str>,
    ) -> Result<Sandbox, ToolError> {
        let policy = Policy {
            workspace: self.of(run_id),
            ..policy.clone()
        };
        Sandbox::with_read(policy, extra_read.to_vec()).map_err(|e| match e {
            agentry_sandbox::SandboxError::Missing { .. } => ToolError::unavailable(e.to_string()),
            e => ToolError::failed(e.to_string()),
        })
    }
}

impl Default for Workspaces {
    fn default() -> Self {
        Self::new(Self::default_root())
    }
}

/// One element of an argv template.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Param(String),
}

/// A tool that runs a program in the sandbox.
#[derive(Debug, Clone)]
pub struct CommandTool {
    spec: CommandSpec,
    template: Vec<Vec<Piece>>,
    /// Index of the first `--` element of the template.
    end_of_options: usize,
    env: Vec<(String, String)>,
    policy: Policy,
    workspaces: Workspaces,
}

impl CommandTool {
    /// A tool from `spec`, its programs run in `workspaces`. Fails when the template is not
    /// usable (an empty argv, a placeholder that is not a parameter, a program that is one).
    pub fn new(spec: CommandSpec, workspaces: Workspaces) -> Result<Self, String> {
        let name = &spec.name;
        if spec.argv.is_empty() {
            return Err(format!("the command tool `{name}` has an empty argv"));
        }
        let properties = spec.parameters.get("properties").and_then(Value::as_object);
        let mut template = Vec::new();
        for (i, element) in spec.argv.iter().enumerate() {
            let pieces = parse_element(element).map_err(|why| {
                format!("the command tool `{name}`, argv[{i}] `{element}`: {why}")
            })?;
            for p in &pieces {
                if let Piece::Param(p) = p {
                    if i == 0 {
                        return Err(format!(
                            "the command tool `{name}`: the program (argv[0]) cannot be a parameter"
                        ));
                    }
                    if !properties.is_some_and(|props| props.contains_key(p)) {
                        return Err(format!(
                            "the command tool `{name}`, argv[{i}]: `{{{p}}}` is not one of its parameters"
                        ));
                    }
                }
            }
            template.push(pieces);
        }
        let end_of_options = spec
            .argv
            .iter()
            .position(|a| a == "--")
            .unwrap_or(usize::MAX);
        let env = spec
            .env
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
            .collect();
        let mut policy = workspaces.base.clone();
        policy.network = spec.network;
        policy.read.extend(spec.read.iter().cloned());
        policy.write.extend(spec.write.iter().cloned());
        if let Some(limits) = &spec.limits {
            policy.limits = limits.clone();
        }
        Ok(Self {
            spec,
            template,
            end_of_options,
            env,
            policy,
            workspaces,
        })
    }

    /// Lets `layer` be missing on this machine for this tool.
    #[must_use]
    pub fn may_skip(mut self, layer: Layer) -> Self {
        self.policy.may_skip.insert(layer);
        self
    }

    /// The argv of a call with `args` (checked against the schema already).
    pub fn argv(&self, args: &Value) -> Result<Vec<String>, ToolError> {
        let empty = Map::new();
        let args = args.as_object().unwrap_or(&empty);
        let program = &self.spec.argv[0];
        let mut argv = Vec::with_capacity(self.template.len());
        for (i, pieces) in self.template.iter().enumerate() {
            let guard = |value: &str, param: &str| {
                if i < self.end_of_options && value.starts_with('-') {
                    Err(ToolError::invalid_arguments(format!(
                        "`{param}` is \"{value}\", which starts with '-': `{program}` would read it as an option; give a value that does not start with '-'"
                    )))
                } else {
                    Ok(())
                }
            };
            if let [Piece::Param(p)] = pieces.as_slice() {
                match args.get(p) {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(items)) => {
                        for item in items {
                            let s = scalar(item, p)?;
                            if item.is_string() {
                                guard(&s, p)?;
                            }
                            argv.push(s);
                        }
                    }
                    Some(v) => {
                        let s = scalar(v, p)?;
                        if v.is_string() {
                            guard(&s, p)?;
                        }
                        argv.push(s);
                    }
                }
                continue;
            }
            let mut out = String::new();
            let mut missing = false;
            for piece in pieces {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Param(p) => match args.get(p) {
                        None | Some(Value::Null) => missing = true,
                        Some(v) => out.push_str(&scalar(v, p)?),
                    },
                }
            }
            if !missing {
                argv.push(out);
            }
        }
        Ok(argv)
    }
}

/// A scalar argument as text.
fn scalar(v: &Value, param: &str) -> Result<String, ToolError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ToolError::invalid_arguments(format!(
            "`{param}` must be a string, number or boolean here (it fills part of one argument)"
        ))),
    }
}

/// Splits a template element into text and `{param}`s; `{{` and `}}` are braces.
fn parse_element(element: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = element.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_alphanumeric() || c == '_' || c == '-' => name.push(c),
                        Some(c) => return Err(format!("`{c}` in a placeholder name")),
                        None => return Err("a `{` without its `}` (write `{{` for a brace)".into()),
                    }
                }
                if name.is_empty() {
                    return Err("an empty placeholder `{}`".into());
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Param(name));
            }
            '}' => return Err("a `}` without its `{` (write `}}` for a brace)".into()),
            c => text.push(c),
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The result the model sees of a program that ran: exit status, output, what was cut.
pub fn outcome_value(out: &Outcome) -> Value {
    let mut v = Map::new();
    match out.exit {
        agentry_sandbox::Exit::Code(c) => v.insert("exit_code".into(), json!(c)),
        agentry_sandbox::Exit::Signal(s) => v.insert("signal".into(), json!(s)),
    };
    v.insert("stdout".into(), json!(String::from_utf8_lossy(&out.stdout)));
    v.insert("stderr".into(), json!(String::from_utf8_lossy(&out.stderr)));
    if out.stdout_cut > 0 {
        v.insert("stdout_cut_bytes".into(), json!(out.stdout_cut));
    }
    if out.stderr_cut > 0 {
        v.insert("stderr_cut_bytes".into(), json!(out.stderr_cut));
    }
    Value::Object(v)
}

/// Runs `program` in `sandbox`; a limit that ended it, the deadline or cancellation is an
/// error the model can act on, an exit status (zero or not) a result.
pub(crate) async fn run_program(sandbox: &Sandbox, program: Program) -> Result<Outcome, ToolError> {
    let timeout = program.timeout;
    let out = sandbox.run(program).await.map_err(|e| match e {
        agentry_sandbox::SandboxError::Missing { .. } => ToolError::unavailable(e.to_string()),
        e => ToolError::failed(e.to_string()),
    })?;
    match out.ended {
        agentry_sandbox::Ended::TimedOut => {
            return Err(ToolError::timeout(timeout.as_millis() as u64));
        }
        agentry_sandbox::Ended::Cancelled => {
            return Err(ToolError::unavailable(
                "the call was cancelled; the program was killed",
            ));
        }
        _ => {}
    }
    if let Some(why) = out.limit_reached(&sandbox.policy().limits) {
        let tail = String::from_utf8_lossy(&out.stderr);
        let tail: String = tail
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let e = ToolError::failed(format!("the program was killed: {why}"));
        return Err(if tail.trim().is_empty() {
            e
        } else {
            e.with_cause(tail.trim().to_owned())
        });
    }
    Ok(out)
}

impl DynTool for CommandTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new(
            self.spec.name.clone(),
            self.spec.description.clone(),
            self.spec.parameters.clone(),
        )
    }

    fn is_idempotent(&self) -> bool {
        self.spec.idempotent
    }

    fn call_json(&self, args: Value, cx: CallContext) -> BoxFuture<'_, Result<Value, ToolError>> {
        Box::pin(async move {
            let argv = self.argv(&args)?;
            let sandbox = self
                .workspaces
                .sandbox(&self.policy, &[], cx.run_id.as_deref())?;
            let mut program = Program::new(argv).cancel_on(cx.cancel.clone());
            for (k, v) in &self.env {
                program = program.env(k, v);
            }
            if let Some(dir) = &self.spec.cwd {
                program = program.cwd(resolve_in(&sandbox.policy().workspace, dir));
            }
            let mut timeout = self
                .spec
                .timeout
                .map_or(agentry_sandbox::DEFAULT_TIMEOUT, Duration::from_secs_f64);
            if let Some(deadline) = cx.deadline {
                timeout =
                    timeout.min(deadline.saturating_duration_since(std::time::Instant::now()));
            }
            program = program.timeout(timeout);
            if let Some(cap) = self.spec.output_cap {
                program = program.output_cap(cap);
            }
            let out = run_program(&sandbox, program).await?;
            Ok(outcome_value(&out))
        })
    }
}

/// `dir` inside `workspace` (an absolute `dir` is taken as it is: the sandbox decides
/// whether it may be used).
fn resolve_in(workspace: &Path, dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_owned()
    } else {
        workspace.join(dir)
    }
}

/// Command tools from `agentry.toml`'s `[tools]` table, named by their keys.
pub fn command_tools(
    table: BTreeMap<String, CommandSpec>,
    workspaces: &Workspaces,
) -> Result<Vec<CommandTool>, String> {
    table
        .into_iter()
        .map(|(name, mut spec)| {
            spec.name = name;
            CommandTool::new(spec, workspaces.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(argv: &[&str]) -> CommandTool {
        let spec = CommandSpec {
            name: "t".into(),
            description: "test".into(),
            parameters: json!({"type": "object", "properties": {
                "pattern": {"type": "string"}, "n": {"type": "integer"},
                "files": {"type": "array", "items": {"type": "string"}}}}),
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            cwd: None,
            env: Vec::new(),
            timeout: None,
            output_cap: None,
            idempotent: false,
            network: false,
            read: Vec::new(),
            write: Vec::new(),
            limits: None,
        };
        CommandTool::new(spec, Workspaces::new("/tmp/agentry-test-ws")).unwrap()
    }

    #[test]
    fn each_value_is_one_argument_and_missing_ones_drop_their_element() {
        let t = tool(&["grep", "--max-count={n}", "--", "{pattern}", "{files}"]);
        let argv = t
            .argv(&json!({"pattern": "a b; rm -rf / #", "files": ["x y", "$(touch z)"]}))
            .unwrap();
        assert_eq!(argv, ["grep", "--", "a b; rm -rf / #", "x y", "$(touch z)"]);
        let argv = t.argv(&json!({"pattern": "-v", "n": 3})).unwrap();
        assert_eq!(argv, ["grep", "--max-count=3", "--", "-v"]);
    }

    #[test]
    fn a_value_that_looks_like_an_option_is_refused_before_a_double_dash() {
        let t = tool(&["rg", "{pattern}"]);
        let e = t.argv(&json!({"pattern": "--pre=sh"})).unwrap_err();
        assert!(e.to_string().contains("would read it as an option"), "{e}");
        assert!(t.argv(&json!({"pattern": "ok"})).is_ok());
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let spec = |argv: &[&str]| CommandSpec {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            ..tool(&["x"]).spec
        };
        let ws = Workspaces::new("/tmp/x");
        for (argv, why) in [
            (&[][..], "empty argv"),
            (&["{pattern}"][..], "cannot be a parameter"),
            (&["rg", "{nope}"][..], "not one of its parameters"),
            (&["rg", "{pattern"][..], "without its `}`"),
            (&["rg", "a}b"][..], "without its `{`"),
        ] {
            let e = CommandTool::new(spec(argv), ws.clone()).unwrap_err();
            assert!(e.contains(why), "{argv:?}: {e}");
        }
        let t = CommandTool::new(spec(&["echo", "{{literal}}"]), ws).unwrap();
        assert_eq!(t.argv(&json!({})).unwrap(), ["echo", "{literal}"]);
    }

    #[test]
    fn workspace_names_cannot_climb_out() {
        let ws = Workspaces::new("/r");
        assert_eq!(ws.of(Some("../../etc")), Path::new("/r/_.._.._etc"));
        assert_eq!(ws.of(Some("r-123")), Path::new("/r/r-123"));
        assert_eq!(ws.of(None), Path::new("/r/detached"));
    }
}
