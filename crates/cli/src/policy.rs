//! `--policy` for runs, the approvers behind `ask`, and `agentry policy …` / `agentry approve`.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use agentry_policy::{Action, Approval, Approver, Policy};
use anyhow::{Context, Result, bail};
use futures::future::BoxFuture;

/// Where `ask` decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ApproveMode {
    /// Prompt on this terminal (refuse when there is none).
    Terminal,
    /// Hold the call until `agentry approve ID` (or `--deny`) decides it.
    Queue,
    /// Refuse every call that needs approval.
    Never,
}

/// Reads `path`, refusing a bad policy with its line and reason.
pub(crate) fn load(path: &Path) -> Result<Arc<Policy>> {
    Policy::load(path)
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("the policy {} is refused: {e}", path.display()))
}

/// The approver for `mode`.
pub(crate) fn approver(mode: ApproveMode, queue: &Path) -> Option<Arc<dyn Approver>> {
    match mode {
        ApproveMode::Terminal => Some(Arc::new(Terminal::default())),
        ApproveMode::Queue => Some(Arc::new(Queue {
            dir: queue.to_owned(),
        })),
        ApproveMode::Never => None,
    }
}

/// Asks at the terminal, one question at a time.
#[derive(Debug, Default)]
struct Terminal {
    one_at_a_time: Arc<Mutex<()>>,
}

impl Approver for Terminal {
    fn approve<'a>(&'a self, request: &'a Approval) -> BoxFuture<'a, bool> {
        let question = format!(
            "\n⚖ {} wants to run {} {}\n  ({})\n  approve? [y/N] ",
            request.rule.as_deref().unwrap_or("the policy"),
            request.call.name,
            request.call.arguments,
            request.reason
        );
        let lock = Arc::clone(&self.one_at_a_time);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let _one = lock.lock();
                let stdin = std::io::stdin();
                if !stdin.is_terminal() {
                    return false;
                }
                let mut err = std::io::stderr();
                let _ = write!(err, "{question}");
                let _ = err.flush();
                let mut line = String::new();
                if stdin.lock().read_line(&mut line).is_err() {
                    return false;
                }
                matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
            })
            .await
            .unwrap_or(false)
        })
    }
}

/// Holds calls as files in a directory until `agentry approve` decides them.
#[derive(Debug)]
struct Queue {
    dir: PathBuf,
}

impl Approver for Queue {
    fn approve<'a>(&'a self, request: &'a Approval) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let id = request.call.id.clone();
            let pending = self.dir.join(format!("{id}.json"));
            if std::fs::create_dir_all(&self.dir).is_err()
                || std::fs::write(
                    &pending,
                    serde_json::to_vec_pretty(request).unwrap_or_default(),
                )
                .is_err()
            {
                return false;
            }
            eprintln!(
                "⚖ {} waits for approval: agentry approve {id} (or --deny)",
                request.call.name
            );
            let verdict = loop {
                if let Some(ok) = decided(&self.dir, &id) {
                    break ok;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let _ = std::fs::remove_file(&pending);
            verdict
        })
    }
}

/// The decision recorded for `id`, if any (and removes it).
fn decided(dir: &Path, id: &str) -> Option<bool> {
    for (ext, ok) in [("approved", true), ("denied", false)] {
        let answer = dir.join(format!("{id}.{ext}"));
        if answer.exists() {
            let _ = std::fs::remove_file(&answer);
            return Some(ok);
        }
    }
    None
}

/// `agentry approve`: lists the waiting calls, or decides one.
pub(crate) fn approve(dir: &Path, id: Option<&str>, deny: bool) -> Result<bool> {
    let Some(id) = id else {
        let mut waiting = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "json") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    waiting.push(format!(
                        "{}  {} {}  ({})",
                        path.file_stem().unwrap_or_default().to_string_lossy(),
                        v["call"]["function"]["name"].as_str().unwrap_or("?"),
                        v["call"]["function"]["arguments"].as_str().unwrap_or(""),
                        v["reason"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        if waiting.is_empty() {
            println!("no call is waiting for approval in {}", dir.display());
        }
        for w in waiting {
            println!("{w}");
        }
        return Ok(true);
    };
    let pending = dir.join(format!("{id}.json"));
    if !pending.exists() {
        bail!(
            "no call `{id}` is waiting for approval in {} (agentry approve lists them)",
            dir.display()
        );
    }
    let ext = if deny { "denied" } else { "approved" };
    std::fs::write(dir.join(format!("{id}.{ext}")), b"")
        .with_context(|| format!("writing the decision into {}", dir.display()))?;
    println!("{id} {ext}");
    Ok(true)
}

/// `agentry policy check`: reads the file and says what it holds.
pub(crate) fn check(path: &Path) -> Result<bool> {
    let policy = load(path)?;
    println!(
        "{}: {} rule(s), default {}",
        path.display(),
        policy.rules().len(),
        policy.default_action().as_str()
    );
    for (i, rule) in policy.rules().iter().enumerate() {
        let line = rule.line.map(|l| format!("line {l}: ")).unwrap_or_default();
        println!(
            "  {line}{} → {} ({} condition(s))",
            rule.label(i),
            rule.action.as_str(),
            rule.when.len()
        );
    }
    for agent in policy.agents() {
        println!("  agent {agent}");
    }
    Ok(true)
}

/// `agentry policy decide`: the decision on one call, as JSON.
pub(crate) fn decide(
    path: &Path,
    tool: &str,
    args: &str,
    agent: Option<&str>,
    server: Option<&str>,
) -> Result<bool> {
    let policy = load(path)?;
    let args: serde_json::Value =
        serde_json::from_str(args).context("--args must be a JSON object")?;
    let verdict = policy.decide(agent, server, tool, &args);
    println!("{}", serde_json::to_string(&verdict)?);
    Ok(verdict.action != Action::Deny)
}
