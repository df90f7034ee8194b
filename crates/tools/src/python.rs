//! Code actions: [`PythonTool`] runs the model's Python in a fresh sandboxed interpreter, in
//! the run's workspace, with the agent's other tools callable from the code as functions.
//!
//! The tools reach the runtime over two pipes (the child's descriptors 3 and 4, JSON lines):
//! a request per call, answered once the engine has run it: validated, checked by the
//! policy, counted against the budget and recorded like a call the model made. One action
//! can so loop, branch and call tools many times in one model turn (CodeAct).

use std::{path::PathBuf, time::Duration};

use agentry_core::{ToolError, ToolSpec};
use agentry_sandbox::{Policy, Program};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::{CallContext, DynTool, Workspaces, command::run_program};

/// The interpreter's side: tool functions, the RPC, the last expression's value.
const PRELUDE: &str = r#"
import ast, json, os, sys, traceback
_req = os.fdopen(3, "w", buffering=1)
_rep = os.fdopen(4, "r")

class ToolError(Exception):
    """A tool call failed; the message says why."""

def _call(name, arguments):
    _req.write(json.dumps({"call": name, "arguments": arguments}) + "\n")
    line = _rep.readline()
    if not line:
        raise ToolError("the runtime closed the channel")
    reply = json.loads(line)
    if "error" in reply:
        raise ToolError(reply["error"])
    return reply["ok"]

def _function(name, tool, params):
    def call(*args, **kwargs):
        if len(args) > len(params):
            raise TypeError(f"{name}() takes at most {len(params)} positional arguments")
        arguments = dict(zip(params, args))
        for k, v in kwargs.items():
            if k in arguments:
                raise TypeError(f"{name}() got two values for '{k}'")
            arguments[k] = v
        return _call(tool, arguments)
    call.__name__ = name
    return call

_g = {"__name__": "__main__", "ToolError": ToolError}
for _f in json.loads(sys.argv[1]):
    _g[_f["name"]] = _function(_f["name"], _f["tool"], _f["params"])
_source = sys.stdin.read()
sys.stdin.close()
try:
    _tree = ast.parse(_source, "<code>", "exec")
except SyntaxError as e:
    traceback.print_exception(e, limit=0)
    sys.exit(2)
_last = None
if _tree.body and isinstance(_tree.body[-1], ast.Expr):
    _last = ast.Expression(_tree.body.pop().value)
try:
    exec(compile(_tree, "<code>", "exec"), _g)
    if _last is not None:
        _value = eval(compile(_last, "<code>", "eval"), _g)
        if _value is not None:
            _req.write(json.dumps({"result": _value}, default=repr) + "\n")
except SystemExit:
    raise
except BaseException as e:
    tb = traceback.extract_tb(e.__traceback__)
    frames = [f for f in tb if f.filename == "<code>"]
    lines = traceback.format_list(frames) + traceback.format_exception_only(e)
    sys.stderr.write("Traceback (most recent call last):\n" + "".join(lines))
    sys.exit(1)
"#;

/// Python keywords and names a tool function must not take.
const RESERVED: &[&str] = &[
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "finally",
    "for",
    "from",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "return",
    "try",
    "while",
    "with",
    "yield",
    "print",
    "ToolError",
];

/// A tool that runs Python code with the agent's tools as functions.
#[derive(Debug, Clone)]
pub struct PythonTool {
    python: PathBuf,
    /// The interpreter's installation, readable in the sandbox.
    prefix: Vec<PathBuf>,
    functions: Vec<Function>,
    description: String,
    policy: Policy,
    workspaces: Workspaces,
    timeout: Duration,
    output_cap: usize,
}

#[derive(Debug, Clone)]
struct Function {
    name: String,
    tool: String,
    params: Vec<String>,
}

impl PythonTool {
    /// The name the model calls it by.
    pub const NAME: &'static str = "python";

    /// A tool running `python` (a path, or a name looked up on `PATH`) with `tools` as
    /// functions, its code in `workspaces`. Fails when the interpreter is not found.
    pub fn new(python: &str, tools: &[ToolSpec], workspaces: Workspaces) -> Result<Self, String> {
        let found = which(python).ok_or_else(|| {
            format!("no Python interpreter `{python}` found on PATH (the code tool needs one)")
        })?;
        // Ask the interpreter where it lives (a pyenv shim is a script that runs another):
        // `/usr/bin/python3` needs nothing more readable; `~/.pyenv/versions/3.11/bin/python3`
        // needs its installation.
        let asked = std::process::Command::new(&found)
            .args(["-I", "-c", "import sys, json; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix]))"])
            .output()
            .map_err(|e| format!("the Python interpreter `{}` does not run: {e}", found.display()))?;
        let paths: Vec<PathBuf> = serde_json::from_slice::<Vec<String>>(&asked.stdout)
            .map_err(|_| {
                format!(
                    "the Python interpreter `{}` did not say where it lives: {}",
                    found.display(),
                    String::from_utf8_lossy(&asked.stderr).trim()
                )
            })?
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let found = paths.first().cloned().unwrap_or(found);
        let prefix = paths
            .iter()
            .skip(1)
            .filter(|p| !p.starts_with("/usr") && p.as_path() != std::path::Path::new("/"))
            .cloned()
            .collect();
        let functions = tools
            .iter()
            .filter(|s| s.name != Self::NAME)
            .map(|s| Function {
                name: identifier(&s.name),
                tool: s.name.clone(),
                params: s
                    .parameters
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect::<Vec<_>>();
        let description = describe(tools);
        Ok(Self {
            python: found,
            prefix,
            functions,
            description,
            policy: workspaces.base.clone(),
            workspaces,
            timeout: Duration::from_secs(60),
            output_cap: 64 * 1024,
        })
    }

    /// Sets the deadline of one action.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the sandbox policy (its workspace is replaced by the run's).
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The functions the code can call, as the model is told of them.
    pub fn functions(&self) -> &str {
        &self.description
    }

    async fn execute(&self, code: String, cx: CallContext) -> Result<Value, ToolError> {
        let sandbox = self
            .workspaces
            .sandbox(&self.policy, &self.prefix, cx.run_id.as_deref())?;
        let io = |e: std::io::Error| ToolError::failed(format!("the code's channel: {e}"));
        let (req_tx, req_rx) = tokio::net::unix::pipe::pipe().map_err(io)?;
        let (rep_tx, rep_rx) = tokio::net::unix::pipe::pipe().map_err(io)?;
        let functions: Vec<Value> = self
            .functions
            .iter()
            .map(|f| json!({"name": f.name, "tool": f.tool, "params": f.params}))
            .collect();
        let mut program = Program::new([
            self.python.display().to_string(),
            "-I".into(),
            "-c".into(),
            PRELUDE.into(),
            Value::Array(functions).to_string(),
        ])
        .stdin(code)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .cancel_on(cx.cancel.clone())
        .output_cap(self.output_cap);
        let mut timeout = self.timeout;
        if let Some(deadline) = cx.deadline {
            timeout = timeout.min(deadline.saturating_duration_since(std::time::Instant::now()));
        }
        program = program.timeout(timeout);
        program.fds = vec![
            req_tx.into_blocking_fd().map_err(io)?,
            rep_rx.into_blocking_fd().map_err(io)?,
        ];
        let calls = cx.calls.clone();
        let rpc = async move {
            let mut replies = rep_tx;
            let mut lines = BufReader::new(req_rx).lines();
            let mut result = None;
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(v) = msg.get("result") {
                    result = Some(v.clone());
                    continue;
                }
                let name = msg["call"].as_str().unwrap_or_default().to_owned();
                let arguments = msg.get("arguments").cloned().unwrap_or(json!({}));
                let outcome = match &calls {
                    Some(calls) => calls.call(name, arguments).await,
                    None => Err(ToolError::unavailable(
                        "tools cannot be called from code here (the tool runs outside an agent)",
                    )),
                };
                let reply = match outcome {
                    Ok(v) => json!({"ok": v}),
                    Err(e) => json!({"error": format!("{}: {}", e.kind(), e.for_model())}),
                };
                if replies
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            result
        };
        let (out, result) = tokio::join!(run_program(&sandbox, program), rpc);
        let out = out?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.success() {
            let mut why = if stderr.trim().is_empty() {
                format!("the code failed ({:?})", out.exit)
            } else {
                format!("the code failed:\n{}", stderr.trim_end())
            };
            if !stdout.is_empty() {
                why.push_str(&format!(
                    "\nIt printed before failing:\n{}",
                    stdout.trim_end()
                ));
            }
            return Err(ToolError::failed(why));
        }
        let mut v = serde_json::Map::new();
        v.insert("stdout".into(), json!(stdout));
        if out.stdout_cut > 0 {
            v.insert("stdout_cut_bytes".into(), json!(out.stdout_cut));
        }
        if !stderr.is_empty() {
            v.insert("stderr".into(), json!(stderr));
        }
        if let Some(r) = result {
            v.insert("result".into(), r);
        }
        Ok(Value::Object(v))
    }
}

impl DynTool for PythonTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new(
            Self::NAME,
            self.description.clone(),
            json!({
                "type": "object",
                "properties": {"code": {"type": "string", "description": "Python 3 code; what it prints and the value of its last expression come back."}},
                "required": ["code"],
            }),
        )
    }

    fn is_idempotent(&self) -> bool {
        false
    }

    fn calls_tools(&self) -> bool {
        true
    }

    fn call_json(&self, args: Value, cx: CallContext) -> BoxFuture<'_, Result<Value, ToolError>> {
        Box::pin(async move {
            let Some(code) = args.get("code").and_then(Value::as_str) else {
                return Err(ToolError::invalid_arguments(
                    "`code` must be a string of Python",
                ));
            };
            self.execute(code.to_owned(), cx).await
        })
    }
}

/// The tool's description: what it does and each tool as a Python signature.
fn describe(tools: &[ToolSpec]) -> String {
    let mut d = String::from(
        "Runs Python 3 code in a fresh sandboxed interpreter (no network; files only in the \
         working directory) and returns what it prints and the value of its last expression. \
         Use it to call tools in loops or to compute with their results in one step. \
         Tools are functions here; each returns the tool's result (a dict, list, string or \
         number) or raises ToolError:",
    );
    for s in tools.iter().filter(|s| s.name != PythonTool::NAME) {
        let props = s.parameters.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = s
            .parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let params: Vec<String> = props
            .map(|p| {
                p.iter()
                    .map(|(k, v)| {
                        let ty = match v.get("type").and_then(Value::as_str) {
                            Some("string") => "str",
                            Some("integer") => "int",
                            Some("number") => "float",
                            Some("boolean") => "bool",
                            Some("array") => "list",
                            Some("object") => "dict",
                            _ => "Any",
                        };
                        if required.contains(&k.as_str()) {
                            format!("{k}: {ty}")
                        } else {
                            format!("{k}: {ty} = None")
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let summary = s.description.lines().next().unwrap_or_default();
        d.push_str(&format!(
            "\n  {}({}): {summary}",
            identifier(&s.name),
            params.join(", ")
        ));
    }
    d
}

/// `name` as a Python identifier (other characters become `_`; a keyword gets a `_`).
fn identifier(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert(0, '_');
    }
    if RESERVED.contains(&id.as_str()) {
        id.push('_');
    }
    id
}

/// The first fenced Python block of `text` (```` ```python ```` or ```` ```py ````), the
/// action of a model that writes code instead of calls.
pub fn code_block(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let (lang, body) = after.split_once('\n')?;
        let end = body.find("```")?;
        if matches!(lang.trim(), "python" | "py" | "python3") {
            return Some(body[..end].to_owned());
        }
        rest = &body[end + 3..];
    }
    None
}

/// `program` as a path: itself when it holds a `/`, else the first match on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_are_found_and_other_fences_skipped() {
        let text = "First:\n```json\n{}\n```\nthen\n```python\nprint(1)\n```\n";
        assert_eq!(code_block(text).as_deref(), Some("print(1)\n"));
        assert_eq!(code_block("no code"), None);
    }

    #[test]
    fn tool_names_become_identifiers() {
        assert_eq!(identifier("fs__read-file"), "fs__read_file");
        assert_eq!(identifier("class"), "class_");
        assert_eq!(identifier("3d"), "_3d");
    }
}
