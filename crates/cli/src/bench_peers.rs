//! `agentry bench peers`: agentry against LangGraph and the OpenAI Agents SDK on the same
//! simulated model (two `sim-server`s on loopback with one latency model: bench/peers/
//! react.yaml for the ReAct-style agents, plan.yaml for agentry's compiled mode) and the
//! same tools (bench/peers/driver.py holds the Python side), workload by workload. Each
//! contender runs in a process of its own, which reports its latencies, CPU and memory.

use std::{
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use agentry_core::{ToolError, ToolSpec};
use agentry_eval::percentile;
use agentry_exec::{Engine, EngineConfig, Mode, NoObserver};
use agentry_tools::{FnTool, ToolSet};
use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::args::ModeArg;

/// The workloads: (id, name, task).
pub(crate) const WORKLOADS: [(&str, &str, &str); 4] = [
    (
        "a",
        "4 lookups + 1 computation",
        "parallelqa: what is the sum of the values of alpha, beta, gamma and delta?",
    ),
    (
        "b",
        "fan-out of 8",
        "fanout: what are the values of t1 to t8?",
    ),
    (
        "c",
        "chain of 4",
        "chain: follow the chain of lookups from start, four steps.",
    ),
    (
        "d",
        "100 × (a) at once",
        "parallelqa: what is the sum of the values of alpha, beta, gamma and delta?",
    ),
];

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The benchmark's tools, as every contender has them: `lookup` sleeps 100–500 ms (seeded
/// by the topic) and returns a number; `compute` evaluates arithmetic.
fn tools() -> Result<ToolSet> {
    let mut set = ToolSet::new();
    let lookup = ToolSpec::new(
        "lookup",
        "Looks up a topic's value (a number).",
        json!({"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}),
    );
    set.add(FnTool::new(lookup, |args, _| async move {
        let topic = match &args["topic"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let h = fnv1a(&topic);
        tokio::time::sleep(Duration::from_millis(100 + h % 401)).await;
        Ok(Value::String(((h >> 20) % 100).to_string()))
    }))?;
    let compute = ToolSpec::new(
        "compute",
        "Evaluates an arithmetic expression of numbers, + - * / and parentheses.",
        json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
    );
    set.add(FnTool::new(compute, |args, _| async move {
        let expr = args["expression"].as_str().unwrap_or_default().to_owned();
        agentry_tools::calc::eval(&expr)
            .map(|v| json!(v))
            .map_err(|e| ToolError::invalid_arguments(e.to_string()))
    }))?;
    Ok(set)
}

/// This process's CPU seconds (user + system) and resident memory (now, peak) in MB, from
/// /proc.
fn usage() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 11 and 12 after the name.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (cpu, kb("VmRSS:"), kb("VmHWM:"))
}

/// `agentry bench peer`: agentry as one contender; prints the same JSON line as driver.py.
async fn peer(
    workload: &str,
    mode: Mode,
    url: &str,
    repeat: usize,
    concurrency: usize,
) -> Result<bool> {
    let task = WORKLOADS
        .iter()
        .find(|w| w.0 == workload)
        .map(|w| w.2)
        .with_context(|| format!("no workload `{workload}` (a, b, c or d)"))?;
    let options = agentry_llm::OpenOptions {
        base_url: Some(url.to_owned()),
        api_key: Some("sim".into()),
        ..Default::default()
    };
    let model = agentry_llm::open("openai:sim", &options)?;
    let engine = Arc::new(Engine::new(
        model,
        Arc::new(tools()?),
        EngineConfig::new(mode),
    ));
    let once = |engine: Arc<Engine>| async move {
        let t = Instant::now();
        let outcome = engine.run(task, &NoObserver).await;
        (
            t.elapsed().as_secs_f64() * 1000.0,
            outcome
                .answer
                .unwrap_or_else(|| format!("no answer: {}", outcome.reason.unwrap_or_default())),
        )
    };
    once(Arc::clone(&engine)).await; // warm-up, as the Python contenders do
    let (cpu0, rss_before, _) = usage();
    let mut latencies = Vec::new();
    let mut answers = std::collections::BTreeSet::new();
    let wall = Instant::now();
    for _ in 0..repeat {
        let batch = futures::future::join_all(
            (0..concurrency.max(1)).map(|_| tokio::spawn(once(Arc::clone(&engine)))),
        )
        .await;
        for (ms, answer) in batch.into_iter().flatten() {
            latencies.push(ms);
            answers.insert(answer);
        }
    }
    let wall = wall.elapsed().as_secs_f64();
    let (cpu1, _, peak) = usage();
    println!(
        "{}",
        json!({"latencies_ms": latencies, "wall_s": wall, "cpu_s": cpu1 - cpu0, "peak_rss_mb": peak,
               "rss_before_mb": rss_before, "answers": answers.into_iter().take(5).collect::<Vec<_>>()})
    );
    Ok(true)
}

/// One contender's figures on one workload, or why there are none.
struct Outcome {
    contender: &'static str,
    workload: &'static str,
    figures: Result<Value, String>,
}

/// `agentry bench peers`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Python of the virtual environment with the contenders installed.
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// bench/peers/run's record of which contenders installed.
    #[arg(long, value_name = "FILE")]
    installed: Option<PathBuf>,
    /// Tasks per workload (a)–(c), one after another.
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    /// Tasks at once in workload (d).
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Where react.yaml, plan.yaml and driver.py are.
    #[arg(long, value_name = "DIR", default_value = "bench/peers")]
    scripts: PathBuf,
    /// Where the results go.
    #[arg(long, value_name = "DIR", default_value = "bench/peers/results")]
    out: PathBuf,
}

/// `agentry bench peer`'s flags (one contender, started by `agentry bench peers`).
#[derive(Debug, clap::Args)]
pub(crate) struct PeerArgs {
    #[arg(long)]
    workload: String,
    #[arg(long, value_enum)]
    mode: ModeArg,
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

/// `agentry bench peers`.
pub(crate) fn run(args: Args) -> Result<bool> {
    let args = Args {
        repeat: args.repeat.max(1),
        concurrency: args.concurrency.max(1),
        ..args
    };
    crate::runtime::block_on(compare(args))
}

/// `agentry bench peer`.
pub(crate) fn run_peer(args: PeerArgs) -> Result<bool> {
    crate::runtime::block_on(peer(
        &args.workload,
        args.mode.into(),
        &args.url,
        args.repeat.max(1),
        args.concurrency,
    ))
}

/// Runs every contender on every workload and writes the results.
async fn compare(args: Args) -> Result<bool> {
    let read = |name: &str| {
        let path = args.scripts.join(name);
        agentry_llm::sim::Script::from_file(&path).with_context(|| {
            format!(
                "reading {} (run from the repository, or pass --scripts)",
                path.display()
            )
        })
    };
    let react =
        agentry_llm::sim::SimServer::bind(read("react.yaml")?, ([127, 0, 0, 1], 0).into()).await?;
    let plan =
        agentry_llm::sim::SimServer::bind(read("plan.yaml")?, ([127, 0, 0, 1], 0).into()).await?;
    let react_url = react.url();
    let plan_url = plan.url();
    let installed = args
        .installed
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let me = std::env::current_exe()?;
    let driver = args.scripts.join("driver.py");
    let contenders: [(&str, Option<&str>); 4] = [
        ("agentry compiled", None),
        ("agentry sequential", None),
        ("LangGraph", Some("langgraph")),
        ("OpenAI Agents SDK", Some("openai-agents")),
    ];
    let mut outcomes = Vec::new();
    for (id, name, _) in WORKLOADS {
        let (repeat, concurrency) = if id == "d" {
            (1, args.concurrency)
        } else {
            (args.repeat, 1)
        };
        for (contender, framework) in contenders {
            eprintln!("workload ({id}) {name}: {contender}…");
            let mut cmd = match framework {
                None => {
                    let mut c = Command::new(&me);
                    let mode = if contender.ends_with("compiled") {
                        "compiled"
                    } else {
                        "sequential"
                    };
                    let url = if mode == "compiled" {
                        &plan_url
                    } else {
                        &react_url
                    };
                    c.args([
                        "bench",
                        "peer",
                        "--workload",
                        id,
                        "--mode",
                        mode,
                        "--url",
                        url,
                    ]);
                    c
                }
                Some(framework) => {
                    if let Some(line) = installed
                        .lines()
                        .find(|l| l.starts_with(framework) && l.contains("failed"))
                    {
                        outcomes.push(Outcome {
                            contender,
                            workload: id,
                            figures: Err(format!("not installed ({line})")),
                        });
                        continue;
                    }
                    let Some(python) = &args.python else {
                        outcomes.push(Outcome {
                            contender,
                            workload: id,
                            figures: Err("no --python given".into()),
                        });
                        continue;
                    };
                    let mut c = Command::new(python);
                    c.arg(&driver).args([
                        "--framework",
                        framework,
                        "--workload",
                        id,
                        "--url",
                        &react_url,
                    ]);
                    c
                }
            };
            cmd.args([
                "--repeat",
                &repeat.to_string(),
                "--concurrency",
                &concurrency.to_string(),
            ]);
            let figures = tokio::task::spawn_blocking(move || contender_run(cmd)).await?;
            if let Err(why) = &figures {
                eprintln!("  {contender} failed: {why}");
            }
            outcomes.push(Outcome {
                contender,
                workload: id,
                figures,
            });
        }
    }
    react.close().await;
    plan.close().await;
    report(&outcomes, &args)
}

/// Runs one contender process (at most 15 minutes) and reads its JSON line.
fn contender_run(mut cmd: Command) -> Result<Value, String> {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(900);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("no result within 15 minutes".into());
            }
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_default();
    let value: Value = serde_json::from_str(line).map_err(|_| {
        format!(
            "crashed ({status}): {}",
            stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        )
    })?;
    if let Some(e) = value.get("error") {
        return Err(format!("crashed: {}", e.as_str().unwrap_or_default()));
    }
    Ok(value)
}

/// Prints the table and writes it as JSON, Markdown and a PNG chart.
fn report(outcomes: &[Outcome], args: &Args) -> Result<bool> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut rows = Vec::new();
    for (id, name, _) in WORKLOADS {
        let base = outcomes
            .iter()
            .find(|o| o.workload == id && o.contender == "agentry compiled")
            .and_then(|o| o.figures.as_ref().ok())
            .map(|f| summary(f, id));
        for o in outcomes.iter().filter(|o| o.workload == id) {
            let row = match &o.figures {
                Ok(f) => {
                    let mut s = summary(f, id);
                    if let Some(b) = &base {
                        s["median_vs_agentry_compiled"] = json!(
                            s["median_ms"].as_f64().unwrap_or(0.0)
                                / b["median_ms"].as_f64().unwrap_or(1.0)
                        );
                        s["cpu_vs_agentry_compiled"] = json!(
                            s["cpu_s"].as_f64().unwrap_or(0.0)
                                / b["cpu_s"].as_f64().unwrap_or(1.0).max(1e-3)
                        );
                        s["rss_vs_agentry_compiled"] = json!(
                            s["task_rss_mb"].as_f64().unwrap_or(0.0)
                                / b["task_rss_mb"].as_f64().unwrap_or(1.0).max(1e-3)
                        );
                    }
                    s
                }
                Err(why) => json!({"error": why}),
            };
            let mut row = row;
            row["workload"] = json!(id);
            row["workload_name"] = json!(name);
            row["contender"] = json!(o.contender);
            rows.push(row);
        }
    }
    let mut md = String::from(
        "| workload | contender | median ms | p95 ms | × agentry compiled | CPU s | peak RSS MB | per task (d): CPU ms / RSS MB |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let line = match r.get("error") {
            Some(e) => format!(
                "| ({}) {} | {} | — | — | — | — | — | {} |\n",
                r["workload"].as_str().unwrap_or(""),
                r["workload_name"].as_str().unwrap_or(""),
                r["contender"].as_str().unwrap_or(""),
                e.as_str().unwrap_or("")
            ),
            None => format!(
                "| ({}) {} | {} | {:.0} | {:.0} | {:.2}x | {:.2} | {:.0} | {} |\n",
                r["workload"].as_str().unwrap_or(""),
                r["workload_name"].as_str().unwrap_or(""),
                r["contender"].as_str().unwrap_or(""),
                r["median_ms"].as_f64().unwrap_or(f64::NAN),
                r["p95_ms"].as_f64().unwrap_or(f64::NAN),
                r["median_vs_agentry_compiled"].as_f64().unwrap_or(f64::NAN),
                r["cpu_s"].as_f64().unwrap_or(f64::NAN),
                r["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
                if r["workload"] == "d" {
                    format!(
                        "{:.1} / {:.2}",
                        r["task_cpu_ms"].as_f64().unwrap_or(f64::NAN),
                        r["task_rss_mb"].as_f64().unwrap_or(f64::NAN)
                    )
                } else {
                    String::new()
                }
            ),
        };
        md.push_str(&line);
    }
    println!("{md}");
    let json_path = args.out.join("peers.json");
    let md_path = args.out.join("peers.md");
    let png_path = args.out.join("peers.png");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(
            &json!({"rows": rows, "repeat": args.repeat, "concurrency": args.concurrency}),
        )?,
    )?;
    std::fs::write(&md_path, &md)?;
    let chart = chart(&rows);
    std::fs::write(args.out.join("peers.svg"), &chart)?;
    std::fs::write(&png_path, agentry_ui::png(&chart)?)?;
    println!(
        "written: {}, {}, {}",
        json_path.display(),
        md_path.display(),
        png_path.display()
    );
    Ok(true)
}

/// Median, p95, CPU and memory of one contender's run; per task for workload (d).
fn summary(f: &Value, workload: &str) -> Value {
    let mut lat: Vec<f64> = f["latencies_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let tasks = lat.len().max(1) as f64;
    let cpu = f["cpu_s"].as_f64().unwrap_or(f64::NAN);
    let peak = f["peak_rss_mb"].as_f64().unwrap_or(f64::NAN);
    let before = f["rss_before_mb"].as_f64().unwrap_or(f64::NAN);
    let mut s = json!({"median_ms": percentile(&lat, 0.5), "p95_ms": percentile(&lat, 0.95), "tasks": lat.len(),
        "cpu_s": cpu, "peak_rss_mb": peak, "answers": f["answers"], "task_cpu_ms": 1000.0 * cpu / tasks,
        "task_rss_mb": ((peak - before).max(0.0)) / tasks});
    if workload != "d" {
        s["task_rss_mb"] = json!(peak);
    }
    s
}

/// A grouped bar chart of median latency per workload and contender, as SVG.
fn chart(rows: &[Value]) -> String {
    let contenders = [
        "agentry compiled",
        "agentry sequential",
        "LangGraph",
        "OpenAI Agents SDK",
    ];
    let colors = ["#2d7d46", "#7fbf8e", "#5b8def", "#e39b3b"];
    let (w, h, left, top, bottom) = (900.0, 420.0, 60.0, 50.0, 70.0);
    let max = rows
        .iter()
        .filter_map(|r| r["median_ms"].as_f64())
        .fold(1.0f64, f64::max)
        * 1.1;
    let group = (w - left - 20.0) / WORKLOADS.len() as f64;
    let bar = group / (contenders.len() as f64 + 1.0);
    let y = |ms: f64| top + (h - top - bottom) * (1.0 - ms / max);
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="DejaVu Sans, sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/><text x="{left}" y="24" font-size="15" font-weight="bold">Median latency per task (ms), same simulated model and tools</text>"##
    );
    for k in 0..=4 {
        let ms = max * f64::from(k) / 4.0;
        out.push_str(&format!(
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end" fill="#666">{ms:.0}</text>"##,
            w - 20.0,
            left - 6.0,
            y(ms) + 4.0,
            y = y(ms)
        ));
    }
    for (g, (id, name, _)) in WORKLOADS.iter().enumerate() {
        let x0 = left + group * g as f64 + bar / 2.0;
        for (c, contender) in contenders.iter().enumerate() {
            let Some(ms) = rows
                .iter()
                .find(|r| r["workload"] == *id && r["contender"] == *contender)
                .and_then(|r| r["median_ms"].as_f64())
            else {
                continue;
            };
            let x = x0 + bar * c as f64;
            out.push_str(&format!(
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{ms:.0}</text>"#,
                y(ms),
                bar - 2.0,
                (h - bottom - y(ms)).max(0.0),
                colors[c],
                x + bar / 2.0,
                y(ms) - 3.0
            ));
        }
        out.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">({id}) {name}</text>"#,
            x0 + bar * 2.0,
            h - bottom + 18.0
        ));
    }
    for (c, contender) in contenders.iter().enumerate() {
        let x = left + 200.0 * c as f64;
        out.push_str(&format!(
            r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{}" y="{:.1}">{contender}</text>"#,
            h - 30.0,
            colors[c],
            x + 16.0,
            h - 20.0
        ));
    }
    out.push_str("</svg>");
    out
}
