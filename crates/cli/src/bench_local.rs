//! `agentry bench local`: the embedded model's speed against llama.cpp's own, the cost and
//! the effect of constrained decoding on BFCL, and time to the first dispatched call.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use agentry_core::{Message, TraceEvent, TraceKind};
use agentry_eval::{
    bfcl::{self, Entry},
    median,
};
use agentry_exec::{Engine, EngineConfig, Mode, Observer};
use agentry_llm::{
    ChatRequest, Model, ToolChoice, complete,
    local::{LocalConfig, LocalModel, LocalStats},
};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Settings of the benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file (default: the bundled model).
    #[arg(long, value_name = "PATH")]
    pub(crate) model: Option<PathBuf>,
    /// CPU threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: u32,
    /// The baseline program (bench/local/baseline.c, built by bench/local/run).
    #[arg(long, value_name = "PATH")]
    pub(crate) baseline: Option<PathBuf>,
    /// The BFCL data directory, for the constrained-decoding comparison.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// BFCL simple_python entries to use.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

const PROMPT_TOKENS: usize = 512;
const GEN_TOKENS: u32 = 64;
const REPS: usize = 3;

pub(crate) fn run(args: Args) -> Result<()> {
    let path = args
        .model
        .clone()
        .unwrap_or_else(agentry_llm::local::file::default_path);
    let mut cfg = LocalConfig::new(&path);
    cfg.threads = Some(args.threads);
    // Every prompt is processed here, none read back from an earlier run's cache.
    cfg.prompt_cache = None;
    let model = LocalModel::load(cfg)?;
    let rt = crate::runtime::multi_thread()?;
    let say = |s: String| {
        if !args.json {
            println!("{s}");
        }
    };
    say(format!(
        "agentry bench local · {} · {} threads",
        path.display(),
        args.threads
    ));

    // 1. Raw speed, then llama.cpp's own on the same file and threads.
    let (pp, tg) = rt.block_on(speed(&model))?;
    let baseline = match &args.baseline {
        Some(bin) => Some(llama_baseline(bin, &path, args.threads)?),
        None => None,
    };
    say("\nspeed (tokens/s)            agentry   llama.cpp   ratio   goal".into());
    let row = |what: &str, ours: f64, theirs: Option<f64>| match theirs {
        Some(t) => format!(
            "  {what:<26}{ours:>7.1}   {t:>9.1}   {:>5.2}   ≥ 0.90",
            ours / t
        ),
        None => format!("  {what:<26}{ours:>7.1}   (no --baseline)"),
    };
    say(row(
        &format!("prompt ({PROMPT_TOKENS} tokens)"),
        pp,
        baseline.map(|b| b.0),
    ));
    say(row(
        &format!("generation ({GEN_TOKENS} tokens)"),
        tg,
        baseline.map(|b| b.1),
    ));

    // 2. Constrained against unconstrained decoding on BFCL simple_python.
    let bfcl = match &args.data {
        Some(dir) => Some(rt.block_on(bfcl_compare(&model, dir, args.limit))?),
        None => None,
    };
    if let Some(b) = &bfcl {
        say(format!(
            "\nBFCL simple_python, first {} entries, tool choice required   constrained   unconstrained",
            b.entries
        ));
        say(format!(
            "  schema-valid calls                                           {:>9.1}%   {:>12.1}%",
            b.constrained.valid_pct(b.entries),
            b.free.valid_pct(b.entries)
        ));
        say(format!(
            "  AST accuracy                                                 {:>9.1}%   {:>12.1}%",
            b.constrained.ast_pct(b.entries),
            b.free.ast_pct(b.entries)
        ));
        say(format!(
            "  generation tokens/s                                          {:>10.1}   {:>13.1}",
            b.constrained.tok_s(),
            b.free.tok_s()
        ));
        say(format!(
            "  constrained overhead: {:.1}% of generation speed (goal ≤ 15%); grammar masks {:.3} ms/token",
            100.0 * (1.0 - b.constrained.tok_s() / b.free.tok_s()),
            b.constrained.mask.as_secs_f64() * 1000.0 / b.constrained.tokens.max(1) as f64
        ));
    } else {
        say("\n(BFCL comparison skipped: pass --data DIR, e.g. ../shared/bfcl)".into());
    }

    // 3. Time to the first dispatched call of a compiled run.
    let (first_call, wall, answer) = rt.block_on(first_dispatch(&model))?;
    let rss = crate::bench_dag::peak_rss_mb();
    say(format!(
        "\ncompiled run \"{TASK}\": first call dispatched at {:.2} s, answered in {:.2} s ({})",
        first_call.as_secs_f64(),
        wall.as_secs_f64(),
        answer.as_deref().unwrap_or("no answer")
    ));
    say(format!("peak RSS {:.0} MB", rss.unwrap_or(f64::NAN)));

    if args.json {
        let b = bfcl.as_ref().map(|b| {
            json!({
                "entries": b.entries,
                "constrained": b.constrained.to_json(b.entries),
                "unconstrained": b.free.to_json(b.entries),
                "overhead": 1.0 - b.constrained.tok_s() / b.free.tok_s(),
            })
        });
        println!(
            "{}",
            json!({
                "model": path, "threads": args.threads,
                "prompt_tok_s": pp, "gen_tok_s": tg,
                "llama_cpp_prompt_tok_s": baseline.map(|b| b.0),
                "llama_cpp_gen_tok_s": baseline.map(|b| b.1),
                "bfcl": b,
                "first_call_s": first_call.as_secs_f64(),
                "run_s": wall.as_secs_f64(),
                "peak_rss_mb": rss,
            })
        );
    }
    Ok(())
}

/// Prompt processing and generation tokens/s, each the median of [`REPS`] runs.
async fn speed(model: &LocalModel) -> Result<(f64, f64)> {
    let free = model.clone().constrained(false);
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    for rep in 0..REPS {
        // A different first word each time, so no cached prefix is reused.
        let filler = "the quick brown fox jumps over the lazy dog ".repeat(PROMPT_TOKENS / 9);
        let request = ChatRequest {
            max_tokens: Some(1),
            ..ChatRequest::new(vec![
                Message::system(format!("Run {rep}.")),
                Message::user(filler),
            ])
        };
        complete(&free, request).await?;
        let s = model.last_stats();
        pp.push((s.prompt_tokens - s.reused_tokens) as f64 / s.prompt_time.as_secs_f64());

        let request = ChatRequest {
            max_tokens: Some(GEN_TOKENS),
            ..ChatRequest::new(vec![Message::user(format!(
                "Count from {} to 1000, one number per line.",
                rep + 1
            ))])
        };
        complete(&free, request).await?;
        let s = model.last_stats();
        if s.generated_tokens < GEN_TOKENS as usize / 2 {
            bail!("the model stopped after {} tokens", s.generated_tokens);
        }
        tg.push(s.generated_tokens as f64 / s.generation_time.as_secs_f64());
    }
    Ok((median(pp), median(tg)))
}

/// llama.cpp's own speed through its C API (bench/local/baseline.c) on the same file and
/// threads: (prompt, generation) tokens/s.
fn llama_baseline(bin: &Path, model: &Path, threads: u32) -> Result<(f64, f64)> {
    let out = Command::new(bin)
        .arg(model)
        .args([
            threads.to_string(),
            PROMPT_TOKENS.to_string(),
            GEN_TOKENS.to_string(),
            REPS.to_string(),
        ])
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("the baseline's JSON")?;
    let rate = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("the baseline printed no {k}"))
    };
    Ok((rate("prompt_tok_s")?, rate("gen_tok_s")?))
}

#[derive(Default)]
struct Side {
    valid: usize,
    ast: usize,
    tokens: usize,
    time: Duration,
    mask: Duration,
}

impl Side {
    fn add(&mut self, valid: bool, ast: bool, s: &LocalStats) {
        self.valid += usize::from(valid);
        self.ast += usize::from(ast);
        self.tokens += s.generated_tokens;
        self.time += s.generation_time;
        self.mask += s.mask_time;
    }
    fn valid_pct(&self, n: usize) -> f64 {
        100.0 * self.valid as f64 / n.max(1) as f64
    }
    fn ast_pct(&self, n: usize) -> f64 {
        100.0 * self.ast as f64 / n.max(1) as f64
    }
    fn tok_s(&self) -> f64 {
        self.tokens as f64 / self.time.as_secs_f64().max(1e-9)
    }
    fn to_json(&self, n: usize) -> Value {
        json!({"schema_valid_rate": self.valid_pct(n) / 100.0, "ast_accuracy": self.ast_pct(n) / 100.0,
               "tokens": self.tokens, "gen_tok_s": self.tok_s(), "mask_ms": self.mask.as_secs_f64() * 1000.0})
    }
}

struct BfclCompare {
    entries: usize,
    constrained: Side,
    free: Side,
}

async fn bfcl_compare(model: &LocalModel, dir: &Path, limit: usize) -> Result<BfclCompare> {
    let mut entries: Vec<Entry> = bfcl::load(dir, &["simple_python"])?;
    entries.truncate(limit);
    let mut out = BfclCompare {
        entries: entries.len(),
        constrained: Side::default(),
        free: Side::default(),
    };
    for entry in &entries {
        let messages = bfcl::native_messages(entry);
        for constrained in [true, false] {
            let request = ChatRequest::new(messages.clone())
                .tools(bfcl::fc_tools(entry))
                .tool_choice(ToolChoice::Required);
            let handle = model.clone().constrained(constrained);
            let response = complete(&handle, request).await?;
            let stats = model.last_stats();
            let result = Value::Array(
                response
                    .calls
                    .iter()
                    .map(|c| json!({ c.call.name.clone(): c.call.arguments.clone() }))
                    .collect(),
            );
            let decoded = bfcl::decoded_from_tagged(&result).unwrap_or_default();
            let valid = bfcl::schema_valid(entry, &decoded, true) == Some(true);
            let ast = bfcl::check_entry(entry, &result, true).valid;
            let side = if constrained {
                &mut out.constrained
            } else {
                &mut out.free
            };
            side.add(valid, ast, &stats);
        }
    }
    Ok(out)
}

const TASK: &str = "How much warmer is Oslo than Paris right now?";

/// Records when the first call started.
struct FirstCall(Mutex<Option<Duration>>);

impl Observer for FirstCall {
    fn event(&self, event: &TraceEvent) {
        if matches!(event.kind, TraceKind::CallStarted { .. })
            && let Ok(mut first) = self.0.lock()
        {
            first.get_or_insert(Duration::from_micros(event.at_us));
        }
    }
}

async fn first_dispatch(model: &LocalModel) -> Result<(Duration, Duration, Option<String>)> {
    let tools = Arc::new(agentry_tools::demo_tools(Duration::from_millis(500)));
    let model: Arc<dyn Model> = Arc::new(model.clone().constrained(true));
    let engine = Engine::new(model, tools, EngineConfig::new(Mode::Compiled));
    let observer = FirstCall(Mutex::new(None));
    let started = Instant::now();
    let out = engine.run(TASK, &observer).await;
    let first = observer
        .0
        .lock()
        .ok()
        .and_then(|f| *f)
        .context("the run dispatched no call")?;
    Ok((first, started.elapsed(), out.answer))
}
