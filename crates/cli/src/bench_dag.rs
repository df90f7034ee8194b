//! `agentry bench dag`: sequential vs compiled makespan on plan shapes, against the
//! critical-path bound; engine overhead per call; many concurrent runs.
//!
//! Every shape runs on the simulated model with the same latency (time to first token, tokens
//! per second) in both modes, with `sleep` tools of fixed or seeded-random latency. The
//! sequential model is the best ReAct agent possible: each turn calls every task whose inputs
//! exist, in parallel. The bound is the earliest the compiled run could end: each task starts
//! when its plan line has streamed and its inputs are done, and the join starts when the plan
//! and every task are done.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use agentry_core::{Message, ToolSpec, TraceKind};
use agentry_exec::{Budget, Collect, Engine, EngineConfig, Mode, NoObserver, Observer};
use agentry_llm::{
    SplitMix64,
    sim::{Script, SimModel, plan},
};
use agentry_tools::{FnTool, ToolSet, demo_tools};
use agentry_trace::otlp::{OtlpConfig, OtlpExporter};
use anyhow::{Context, Result, ensure};
use futures::{StreamExt, stream::FuturesUnordered};
use serde_json::{Value, json};

const TTFT_MS: f64 = 200.0;
const TOKENS_PER_S: f64 = 200.0;

struct Shape {
    name: String,
    /// `(latency ms, deps)` per task, tasks numbered from 1.
    tasks: Vec<(u64, Vec<usize>)>,
}

fn shapes() -> Vec<Shape> {
    let mut out = Vec::new();
    for n in [1, 2, 4, 8, 16] {
        out.push(Shape {
            name: format!("fan-out {n}"),
            tasks: (0..n).map(|_| (300, vec![])).collect(),
        });
    }
    for n in [2, 4, 8] {
        out.push(Shape {
            name: format!("chain {n}"),
            tasks: (1..=n)
                .map(|i| (300, if i == 1 { vec![] } else { vec![i - 1] }))
                .collect(),
        });
    }
    out.push(Shape {
        name: "diamond".into(),
        tasks: vec![
            (300, vec![]),
            (300, vec![1]),
            (300, vec![1]),
            (300, vec![1]),
            (300, vec![2, 3, 4]),
        ],
    });
    let mut rng = SplitMix64::new(42);
    let mut lookups: Vec<(u64, Vec<usize>)> = (0..4)
        .map(|_| (100 + (rng.next_f64() * 400.0) as u64, vec![]))
        .collect();
    lookups.push((50, vec![1, 2, 3, 4]));
    out.push(Shape {
        name: "parallelqa (4 lookups + 1)".into(),
        tasks: lookups,
    });
    out
}

fn plan_text(shape: &Shape) -> String {
    let mut text = String::new();
    for (i, (ms, deps)) in shape.tasks.iter().enumerate() {
        // Each task's tag quotes the tags of its inputs: a real data dependency on their results.
        let tag = if deps.is_empty() {
            format!("t{}", i + 1)
        } else {
            deps.iter()
                .map(|d| format!("${d}.tag"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        text.push_str(&format!("{}. sleep(ms={ms}, tag=\"{tag}\")\n", i + 1));
    }
    text.push_str(&format!("{}. join()\n", shape.tasks.len() + 1));
    text
}

fn latency() -> Value {
    json!({"ttft_ms": TTFT_MS, "tokens_per_s": TOKENS_PER_S})
}

fn compiled_script(shape: &Shape) -> Result<Script> {
    let script = json!({"format": "text", "latency": latency(), "turns": [
        {"when": {"user": "(?m)^Observations:"}, "text": "done"},
        {"when": {"last": "user"}, "text": plan_text(shape)}]});
    Ok(Script::parse(&script.to_string(), "bench")?)
}

fn levels(shape: &Shape) -> Vec<usize> {
    let mut level = vec![0usize; shape.tasks.len()];
    for (i, (_, deps)) in shape.tasks.iter().enumerate() {
        level[i] = 1 + deps.iter().map(|d| level[d - 1]).max().unwrap_or(0);
    }
    level
}

fn sequential_script(shape: &Shape) -> Result<Script> {
    let level = levels(shape);
    let depth = level.iter().copied().max().unwrap_or(0);
    let mut turns = Vec::new();
    for k in 1..=depth {
        let calls: Vec<Value> = shape
            .tasks
            .iter()
            .enumerate()
            .filter(|(i, _)| level[*i] == k)
            .map(|(i, (ms, _))| json!({"name": "sleep", "arguments": {"ms": ms, "tag": format!("t{}", i + 1)}}))
            .collect();
        turns.push(json!({"when": {"turn": k}, "calls": calls}));
    }
    turns.push(json!({"text": "done"}));
    let script = json!({"format": "openai", "latency": latency(), "turns": turns});
    Ok(Script::parse(&script.to_string(), "bench")?)
}

/// The earliest the compiled run can end, from the plan's own token schedule.
fn bound(shape: &Shape, script: &Script) -> Result<Duration> {
    let planner = vec![Message::system("planner"), Message::user("bench")];
    let p = plan(script, &planner, &[])?;
    let mut line_done = Vec::new();
    for (due, delta) in &p.deltas {
        if delta["content"].as_str().is_some_and(|t| t.contains('\n')) {
            line_done.push(*due);
        }
    }
    ensure!(
        line_done.len() > shape.tasks.len(),
        "the plan's lines were not found in its token stream"
    );
    let mut finish: Vec<Duration> = Vec::new();
    for (i, (ms, deps)) in shape.tasks.iter().enumerate() {
        let ready = deps
            .iter()
            .map(|d| finish[d - 1])
            .fold(line_done[i], Duration::max);
        finish.push(ready + Duration::from_millis(*ms));
    }
    let join_start = finish.iter().copied().fold(p.end, Duration::max);
    let joiner = vec![
        Message::user("bench"),
        Message::assistant("plan"),
        Message::user("Observations:\n"),
    ];
    let j = plan(script, &joiner, &[])?;
    Ok(join_start + j.end)
}

async fn run_once(script: Script, mode: Mode, tasks: usize) -> Result<Duration> {
    let tools = Arc::new(demo_tools(Duration::ZERO));
    let engine = Engine::new(
        Arc::new(SimModel::new(script)),
        tools,
        EngineConfig::new(mode),
    );
    let trace = Collect::new();
    let out = engine.run("bench", &trace).await;
    ensure!(
        out.answer.as_deref() == Some("done"),
        "{} run did not finish: {:?}",
        mode.as_str(),
        out.reason
    );
    let ok = trace
        .events()
        .iter()
        .filter(
            |e| matches!(&e.kind, TraceKind::CallFinished { result, .. } if result.outcome.is_ok()),
        )
        .count();
    ensure!(
        ok == tasks,
        "{} run: {ok} of {tasks} calls succeeded",
        mode.as_str()
    );
    Ok(out.wall)
}

/// A policy whose every rule the benchmarks' calls (`noop` here, `echo` in `bench proxy`)
/// are tested against and none matches: the worst case of a first-match policy.
pub(crate) const BENCH_POLICY: &str = r#"
[[rule]]
tool = "write_*"
when = [{ path = "/path", not_inside = "/tmp/sandbox" }]
action = "deny"
[[rule]]
tool = "{noop,echo}"
when = [{ path = "/amount", gt = 1000 }]
action = "ask"
[[rule]]
tool = "{noop,echo}"
when = [{ path = "/to", regex = "@evil\\.org$" }]
action = "deny"
[[rule]]
tool = "search"
action = "rewrite"
clamp = { "/k" = { max = 3 } }
[[rule]]
server = "shell"
action = "deny"
"#;

/// Who watches an overhead run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// No one (the engine's own cost).
    Nothing,
    /// The SQLite trace store, every step written.
    Trace,
    /// A consumer of `Agent::stream`, every event taken (text deltas and planned tasks too).
    Stream,
    /// An OTLP exporter, every run's spans sent (and each call given its `traceparent`).
    Otlp,
}

/// Engine cost per call: a zero-latency model and tool, `n` calls in one turn or one plan.
async fn overhead(
    mode: Mode,
    n: usize,
    watch: Watch,
    policy: bool,
    otlp: Option<&Arc<OtlpExporter>>,
) -> Result<f64> {
    let traced = watch == Watch::Trace;
    let mut set = ToolSet::new();
    set.add(
        FnTool::new(
            ToolSpec::new("noop", "Does nothing.", json!({"type": "object"})),
            |_, _| async { Ok(Value::Null) },
        )
        .idempotent(true),
    )?;
    let tools = Arc::new(set);
    let script = match mode {
        Mode::Sequential => {
            // Distinct arguments: identical calls in one reply would run once.
            let calls: Vec<Value> = (0..n)
                .map(|i| json!({"name": "noop", "arguments": {"i": i}}))
                .collect();
            json!({"turns": [{"when": {"turn": 1}, "calls": calls}, {"text": "done"}]})
        }
        Mode::Compiled => {
            let mut text: String = (1..=n).map(|i| format!("{i}. noop()\n")).collect();
            text.push_str(&format!("{}. join()\n", n + 1));
            json!({"format": "text", "turns": [{"when": {"user": "(?m)^Observations:"}, "text": "done"}, {"text": text}]})
        }
    };
    let script = Script::parse(&script.to_string(), "overhead")?;
    let budget = Budget {
        tool_calls: None,
        turn_calls: usize::MAX,
        ..Budget::default()
    };
    let mut cfg = EngineConfig::new(mode).budget(budget);
    if policy {
        cfg.policy = Some(Arc::new(agentry_policy::Policy::from_toml(BENCH_POLICY)?));
    }
    cfg.propagate = watch == Watch::Otlp;
    let model = Arc::new(SimModel::new(script));
    let agent = agentry_exec::Agent::builder(Arc::clone(&model))
        .tools(&tools)
        .config(cfg.clone())
        .build()?;
    let engine = Engine::new(model, tools, cfg);
    let dir = std::env::temp_dir().join(format!("agentry-bench-dag-{}", std::process::id()));
    let db = dir.join("traces.db");
    let writer = crate::trace::open_writer(traced.then_some(db.as_path()))?;
    let mut per_call = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let out = match (&writer, watch) {
            (_, Watch::Stream) => {
                let mut events = agent.stream("overhead");
                let mut seen = 0usize;
                while let Some(event) = events.next().await {
                    seen += std::hint::black_box(event).seq as usize & 1;
                }
                std::hint::black_box(seen);
                events
                    .outcome()
                    .cloned()
                    .context("the streamed run gave no outcome")?
            }
            (_, Watch::Otlp) => {
                let exporter = otlp.context("no OTLP exporter to measure")?;
                engine.run("overhead", &**exporter).await
            }
            (Some(w), _) => engine.run("overhead", &**w).await,
            (None, _) => engine.run("overhead", &NoObserver).await,
        };
        ensure!(
            out.calls as usize == n,
            "the overhead run made {} calls, not {n}",
            out.calls
        );
        per_call.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    if traced {
        crate::trace::close_writer(writer)?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(agentry_eval::median(per_call))
}

/// CPU time so far of this process's threads but the OTLP exporter's, in nanoseconds
/// (Linux's per-thread scheduler statistics; 0 elsewhere).
fn engine_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() != "agentry-otlp")
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The process's peak resident memory, in MB (Linux).
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `n` concurrent runs of a 4-call plan (two lookups, a dependent calculation, a store),
/// exported through `otlp` if given.
async fn concurrent(n: usize, otlp: Option<&Arc<OtlpExporter>>) -> Result<(usize, f64)> {
    let script = Script::parse(
        r#"{"format": "text", "latency": {"ttft_ms": 100, "tokens_per_s": 400}, "turns": [
            {"when": {"user": "(?m)^Observations:"}, "text": "done"},
            {"text": "1. get_weather(city=\"Paris\")\n2. get_weather(city=\"Oslo\")\n3. calculator(expression=\"$2.temp_c - $1.temp_c\")\n4. sleep(ms=50, tag=\"$3\")\n5. join()\n"}]}"#,
        "concurrent",
    )?;
    let model = Arc::new(SimModel::new(script));
    let tools = Arc::new(demo_tools(Duration::from_millis(50)));
    let mut cfg = EngineConfig::new(Mode::Compiled);
    cfg.propagate = otlp.is_some();
    let engine = Arc::new(Engine::new(model, tools, cfg));
    let observer: Arc<dyn Observer> = match otlp {
        Some(exporter) => Arc::clone(exporter) as Arc<dyn Observer>,
        None => Arc::new(NoObserver),
    };
    let t = Instant::now();
    let mut runs: FuturesUnordered<_> = (0..n)
        .map(|_| {
            let engine = Arc::clone(&engine);
            let observer = Arc::clone(&observer);
            tokio::spawn(async move { engine.run("concurrent", &*observer).await })
        })
        .collect();
    let mut ok = 0;
    while let Some(r) = runs.next().await {
        if r.is_ok_and(|o| o.answer.as_deref() == Some("done") && o.calls == 4) {
            ok += 1;
        }
    }
    Ok((ok, t.elapsed().as_secs_f64()))
}

/// `agentry bench dag`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Concurrent runs for the load test.
    #[arg(long, default_value_t = 10_000)]
    runs: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    /// Also measure with every run exported as OpenTelemetry spans to this OTLP/HTTP
    /// collector (a base URL such as http://127.0.0.1:6006 for Phoenix; OTEL_EXPORTER_OTLP_*
    /// variables are used when this is not given and they name one).
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
}

/// `agentry bench dag`.
pub(crate) fn run(args: Args) -> Result<()> {
    let (concurrent_runs, as_json) = (args.runs, args.json);
    let otlp = match args.otlp {
        Some(url) => Some(OtlpConfig::new(url)),
        None => OtlpConfig::from_env()?,
    };
    let otlp = otlp
        .map(|cfg| OtlpExporter::start(cfg).map(Arc::new))
        .transpose()?;
    crate::runtime::block_on(async {
        let mut rows = Vec::new();
        if !as_json {
            println!(
                "plan shapes on the simulated model (TTFT {TTFT_MS} ms, {TOKENS_PER_S} tokens/s), sleep tools; milliseconds\n"
            );
            println!(
                "{:<28} {:>10} {:>10} {:>10} {:>15} {:>19}",
                "shape", "sequential", "compiled", "bound", "compiled/bound", "sequential/compiled"
            );
        }
        for shape in shapes() {
            let cs = compiled_script(&shape)?;
            let b = bound(&shape, &cs)?;
            let seq = run_once(
                sequential_script(&shape)?,
                Mode::Sequential,
                shape.tasks.len(),
            )
            .await?;
            let comp = run_once(cs, Mode::Compiled, shape.tasks.len()).await?;
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            if !as_json {
                println!(
                    "{:<28} {:>10.0} {:>10.0} {:>10.0} {:>14.3}x {:>18.2}x",
                    shape.name,
                    ms(seq),
                    ms(comp),
                    ms(b),
                    comp.as_secs_f64() / b.as_secs_f64(),
                    seq.as_secs_f64() / comp.as_secs_f64()
                );
            }
            rows.push(json!({"name": shape.name, "sequential_ms": ms(seq), "compiled_ms": ms(comp), "bound_ms": ms(b)}));
        }
        let over_seq = overhead(Mode::Sequential, 1000, Watch::Nothing, false, None).await?;
        let over_comp = overhead(Mode::Compiled, 1000, Watch::Nothing, false, None).await?;
        let over_traced = overhead(Mode::Compiled, 1000, Watch::Trace, false, None).await?;
        let over_policy = overhead(Mode::Compiled, 1000, Watch::Nothing, true, None).await?;
        let over_seq_stream = overhead(Mode::Sequential, 1000, Watch::Stream, false, None).await?;
        let over_stream = overhead(Mode::Compiled, 1000, Watch::Stream, false, None).await?;
        // Export on and off alternate, so both see the same machine. Besides wall time, the
        // CPU time of every thread but the exporter's: what the engine's path costs, apart
        // from the exporter's own thread and the collector (another process), which share
        // this machine's cores.
        let mut over_otlp = None;
        let mut cpu_otlp = None;
        if let Some(exporter) = &otlp {
            let (mut on, mut off) = (Vec::new(), Vec::new());
            let (mut cpu_on, mut cpu_off) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                let c = engine_cpu_ns();
                off.push(overhead(Mode::Compiled, 1000, Watch::Nothing, false, None).await?);
                cpu_off.push(engine_cpu_ns().saturating_sub(c) as f64 / 7e6);
                let c = engine_cpu_ns();
                on.push(overhead(Mode::Compiled, 1000, Watch::Otlp, false, Some(exporter)).await?);
                cpu_on.push(engine_cpu_ns().saturating_sub(c) as f64 / 7e6);
            }
            exporter.flush();
            over_otlp = Some((agentry_eval::median(off), agentry_eval::median(on)));
            cpu_otlp = Some((agentry_eval::median(cpu_off), agentry_eval::median(cpu_on)));
        }
        let (ok, wall) = concurrent(concurrent_runs, None).await?;
        let rss = peak_rss_mb();
        let mut load_otlp = None;
        if let Some(exporter) = &otlp {
            let (ok, wall) = concurrent(concurrent_runs, Some(exporter)).await?;
            let rss = peak_rss_mb();
            let t = Instant::now();
            let stats = exporter.shutdown();
            load_otlp = Some((ok, wall, rss, stats, t.elapsed().as_secs_f64()));
        }
        if as_json {
            println!(
                "{}",
                json!({"shapes": rows, "overhead_us_per_call": over_comp, "overhead_us_per_call_sequential": over_seq, "overhead_us_per_call_traced": over_traced, "overhead_us_per_call_policy": over_policy,
                "overhead_us_per_call_stream": over_stream, "overhead_us_per_call_sequential_stream": over_seq_stream,
                "concurrent_runs": concurrent_runs, "concurrent_ok": ok, "concurrent_wall_s": wall, "peak_rss_mb": rss,
                "otlp": otlp.as_ref().map(|e| json!({
                    "url": e.url(),
                    "overhead_us_per_call_off": over_otlp.map(|o| o.0),
                    "overhead_us_per_call_on": over_otlp.map(|o| o.1),
                    "engine_cpu_us_per_call_off": cpu_otlp.map(|o| o.0),
                    "engine_cpu_us_per_call_on": cpu_otlp.map(|o| o.1),
                    "concurrent_ok": load_otlp.as_ref().map(|l| l.0),
                    "concurrent_wall_s": load_otlp.as_ref().map(|l| l.1),
                    "peak_rss_mb": load_otlp.as_ref().and_then(|l| l.2),
                    "spans_exported": load_otlp.as_ref().map(|l| l.3.exported),
                    "spans_failed": load_otlp.as_ref().map(|l| l.3.failed),
                    "events_dropped": load_otlp.as_ref().map(|l| l.3.dropped),
                    "drain_s": load_otlp.as_ref().map(|l| l.4),
                }))})
            );
            return Ok(());
        }
        println!("\ngoal: compiled within 5% of the bound (compiled/bound <= 1.05)");
        println!(
            "\nengine overhead per call (zero-latency model and tool, 1000 calls, median of 7 runs, model streaming included):"
        );
        println!("  sequential (one turn of 1000 native calls): {over_seq:.1} µs/call");
        println!("  compiled (a 1000-task plan, parsed as it streams): {over_comp:.1} µs/call");
        println!(
            "  compiled, every step written to the SQLite trace store: {over_traced:.1} µs/call"
        );
        println!(
            "  compiled, every call checked against a 5-rule policy (none matches): {over_policy:.1} µs/call ({:+.1} µs, {:.2}x)",
            over_policy - over_comp,
            over_policy / over_comp
        );
        println!(
            "  sequential, every event taken from Agent::stream: {over_seq_stream:.1} µs/call ({:.2}x the run without a consumer)",
            over_seq_stream / over_seq
        );
        println!(
            "  compiled, every event taken from Agent::stream: {over_stream:.1} µs/call ({:.2}x the run without a consumer)",
            over_stream / over_comp
        );
        println!("  goal: < 20 µs/call");
        if let (Some(exporter), Some((off, on))) = (&otlp, over_otlp) {
            println!(
                "  compiled, without export / with every run exported over OTLP to {} (alternating, median of 3×7 runs): {off:.1} / {on:.1} µs/call ({:+.1} µs, {:.2}x; goal: < 5 µs added)",
                exporter.url(),
                on - off,
                on / off
            );
        }
        if let Some((off, on)) = cpu_otlp {
            println!(
                "  the same, CPU time of every thread but the exporter's: {off:.1} / {on:.1} µs/call ({:+.1} µs)",
                on - off
            );
        }
        println!(
            "\n{concurrent_runs} concurrent compiled runs of a 4-call plan (2 lookups of 50 ms, a dependent calculation, a 50 ms wait):"
        );
        println!(
            "  {ok} / {concurrent_runs} answered in {wall:.2} s   peak RSS {} MB (goal < 2048)",
            rss.map_or("n/a".into(), |r| format!("{r:.0}"))
        );
        if let Some((ok, wall, rss, stats, drain)) = &load_otlp {
            println!(
                "  the same, every run exported over OTLP: {ok} / {concurrent_runs} answered in {wall:.2} s   peak RSS {} MB (the process's high-water mark, both loads)",
                rss.map_or("n/a".into(), |r| format!("{r:.0}"))
            );
            println!(
                "  spans: {} exported, {} failed, {} events dropped at a full queue; the export drained {drain:.1} s after the last run{}",
                stats.exported,
                stats.failed,
                stats.dropped,
                stats
                    .last_error
                    .as_deref()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
        }
        Ok(())
    })
}
