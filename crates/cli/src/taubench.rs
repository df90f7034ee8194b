//! `agentry eval taubench …`: episodes with pass^k, and the ground-truth replay.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use agentry_eval::taubench::{
    DomainData, ReplayFile, Report, Split,
    episode::{Agent, EpisodeConfig, Plan, UserModel, run_episodes},
    first_difference, replay_task,
};
use agentry_exec::{NoObserver, Observer};
use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::args::ModelArgs;

/// `agentry eval taubench`'s flags: a run's, or a subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: Option<Command>,
    #[command(flatten)]
    run: Box<RunArgs>,
}

/// Shown after `agentry eval taubench --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  $ agentry eval taubench --data ../shared/taubench --model noop              # the floor
  $ agentry eval taubench --data ../shared/taubench --model oracle            # the ceiling
  $ agentry eval taubench --data ../shared/taubench --model local --user-model local \\
        --split dev --task-ids 0-4 --trials 4
  $ agentry eval taubench --data ../shared/taubench --model openai:gpt-4o-mini \\
        --user-model openai:gpt-4o --trials 4 --concurrency 16
  $ agentry eval taubench replay --data ../shared/taubench                     # ground truth

The agent sees the domain's policy (wiki.md) as its system prompt and its tools; each step it
may make one call (validated against the tool's schema) or talk to the user. An episode ends
when the user says ###STOP###, the agent hands off to a human, or --max-steps pass (reward 0).
Reward 1 needs the final database to equal the ground truth's and every required output said.
Reports go to .agentry/taubench/DOMAIN-SPLIT-MODEL.{json,md}; every episode is in the trace
store (agentry trace list / show).";

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay every task's ground-truth actions on a fresh database; compare each tool's
    /// output and each changed record with the reference (expected_SPLIT.json beside the
    /// tasks, or --expected).
    #[command(after_help = "\
Examples:
  $ agentry eval taubench replay --data ../shared/taubench
  $ agentry eval taubench replay --data ../shared/taubench --split dev --emit mine.json
  $ agentry eval taubench replay --data ../shared/taubench --split dev --expected other.json

Exits 1 if any task differs from its reference.")]
    Replay(ReplayArgs),
}

/// Options of a τ-bench run.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The τ-bench data directory (holding retail/), or the domain's directory itself.
    #[arg(long, value_name = "DIR", required = true)]
    data: Option<PathBuf>,
    /// The domain.
    #[arg(long, default_value = "retail")]
    domain: String,
    /// The task split.
    #[arg(long, default_value = "test", value_parser = parse_split)]
    split: Split,
    /// The agent: noop (hands off at once: the floor), oracle (plays the ground truth: the
    /// ceiling), local, local:PATH, sim:NAME, sim:PATH or openai:MODEL.
    #[arg(long, required = true)]
    model: Option<String>,
    /// Who plays the user: scripted, or a model as for --model (default: scripted for
    /// noop/oracle, else the agent's model).
    #[arg(long)]
    user_model: Option<String>,
    /// Sampling temperature of the user model (τ-bench leaves the provider's default, 1.0).
    #[arg(long, default_value_t = 1.0)]
    user_temperature: f32,
    /// Trials per task; pass^1 … pass^K are reported.
    #[arg(long, default_value_t = 1)]
    trials: usize,
    /// Episodes at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Only these tasks: ids (positions in the split) and ranges, e.g. 0,3,10-19.
    #[arg(long, value_name = "IDS")]
    task_ids: Option<String>,
    /// Agent steps (model requests) before an episode is cut off with reward 0.
    #[arg(long, default_value_t = 30)]
    max_steps: u32,
    /// Where the reports go: PATH.json and PATH.md.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Where the episodes' traces go.
    #[arg(long, value_name = "FILE", default_value = ".agentry/traces.db")]
    trace_db: PathBuf,
    /// Keep no traces.
    #[arg(long)]
    no_trace: bool,
    /// A policy file every call of the agent passes (see `agentry policy`); what it denies
    /// goes back to the agent as an error. Calls it marks `ask` are refused.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The agent model's price per million prompt tokens, for its cost per successful task.
    #[arg(long, value_name = "USD", requires = "price_out")]
    price_in: Option<f64>,
    /// The agent model's price per million completion tokens.
    #[arg(long, value_name = "USD", requires = "price_in")]
    price_out: Option<f64>,
    #[command(flatten)]
    local: ModelArgs,
}

/// `agentry eval taubench replay`'s flags.
#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The τ-bench data directory.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The domain.
    #[arg(long, default_value = "retail")]
    domain: String,
    /// The split, or all.
    #[arg(long, default_value = "all")]
    split: String,
    /// Compare with this file instead of expected_SPLIT.json (one split).
    #[arg(long, value_name = "FILE")]
    expected: Option<PathBuf>,
    /// Write agentry's replay results here, in the structure of expected_SPLIT.json.
    #[arg(long, value_name = "FILE")]
    emit: Option<PathBuf>,
}

/// `--split`: test, dev or train.
fn parse_split(s: &str) -> Result<Split, String> {
    s.parse()
}

/// `agentry eval taubench …`.
pub(crate) fn run(args: Args) -> Result<bool> {
    if let Some(Command::Replay(args)) = args.what {
        return replay(args);
    }
    let RunArgs {
        data,
        domain,
        split,
        model,
        user_model,
        user_temperature,
        trials,
        concurrency,
        task_ids,
        max_steps,
        out,
        trace_db,
        no_trace,
        policy,
        price_in,
        price_out,
        local,
    } = *args.run;
    let task_ids = task_ids
        .as_deref()
        .map(parse_ids)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--task-ids: {e}"))?;
    let settings = Settings {
        data: data.unwrap_or_default(),
        domain,
        split,
        model: model.unwrap_or_default(),
        user_model,
        user_temperature,
        options: ModelArgs {
            context: Some(local.context.unwrap_or(16_384)),
            ..local
        }
        .options(agentry_llm::ToolMode::Native),
        trials,
        concurrency,
        task_ids,
        max_steps,
        out,
        trace_db: (!no_trace).then_some(trace_db),
        prices: price_in.zip(price_out),
        policy,
    };
    crate::runtime::block_on(evaluate(settings))
}

/// What `agentry eval taubench` was asked to run: the flags, read.
struct Settings {
    data: PathBuf,
    domain: String,
    split: Split,
    model: String,
    user_model: Option<String>,
    user_temperature: f32,
    options: agentry_llm::OpenOptions,
    trials: usize,
    concurrency: usize,
    task_ids: Option<Vec<usize>>,
    max_steps: u32,
    out: Option<PathBuf>,
    trace_db: Option<PathBuf>,
    prices: Option<(f64, f64)>,
    policy: Option<PathBuf>,
}

/// Reads task ids written as `3,5,10-19`.
fn parse_ids(text: &str) -> Result<Vec<usize>, String> {
    let mut ids = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("`{part}` is not a task id or a range like 10-19");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                ids.extend(a..=b);
            }
            None => ids.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(ids)
}

fn load(data: &Path, domain: &str, split: Split) -> Result<(DomainData, Duration)> {
    let t = Instant::now();
    let d = DomainData::load(data, domain, split)?;
    Ok((d, t.elapsed()))
}

/// Runs the episodes; prints per-task rewards, the average and pass^k; writes the reports.
async fn evaluate(args: Settings) -> Result<bool> {
    let (data, loaded) = load(&args.data, &args.domain, args.split)?;
    let tasks = match &args.task_ids {
        Some(ids) => {
            if let Some(bad) = ids.iter().find(|i| **i >= data.tasks.len()) {
                bail!(
                    "task id {bad} is out of range: the {} split has tasks 0-{}",
                    args.split.as_str(),
                    data.tasks.len() - 1
                );
            }
            ids.clone()
        }
        None => (0..data.tasks.len()).collect(),
    };
    if args.trials == 0 {
        bail!("--trials must be at least 1");
    }
    let agent = match args.model.as_str() {
        "noop" => Agent::Noop,
        "oracle" => Agent::Oracle,
        spec => Agent::Model(
            agentry_llm::open(spec, &args.options)
                .with_context(|| format!("opening the agent model `{spec}`"))?,
        ),
    };
    let user_spec = args.user_model.clone().unwrap_or_else(|| match agent {
        Agent::Noop | Agent::Oracle => "scripted".to_owned(),
        Agent::Model(_) => args.model.clone(),
    });
    let user = match user_spec.as_str() {
        "scripted" => UserModel::Scripted(vec!["Hi, I need help with an order.".into()]),
        spec => UserModel::Llm(
            agentry_llm::open(spec, &args.options)
                .with_context(|| format!("opening the user model `{spec}`"))?,
            args.user_temperature,
        ),
    };
    let writer = crate::trace::open_writer(args.trace_db.as_deref())?;
    let observer: Arc<dyn Observer> = match &writer {
        Some(w) => Arc::clone(w) as Arc<dyn Observer>,
        None => Arc::new(NoObserver),
    };
    let plan = Plan {
        tasks,
        trials: args.trials,
        concurrency: args.concurrency,
    };
    let cfg = EpisodeConfig {
        max_steps: args.max_steps,
        policy: args
            .policy
            .as_deref()
            .map(crate::policy::load)
            .transpose()?,
        ..EpisodeConfig::default()
    };
    eprintln!(
        "τ-bench {} ({}) · {} tasks × {} trials · agent {} · user {} · concurrency {} · data loaded in {:.1} ms",
        data.domain.name(),
        args.split.as_str(),
        plan.tasks.len(),
        plan.trials,
        agent.name(),
        user.name(),
        plan.concurrency,
        loaded.as_secs_f64() * 1e3
    );
    let bar = crate::progress::bar((plan.tasks.len() * plan.trials) as u64);
    let tally = Mutex::new((0.0f64, 0usize));
    // Ctrl-C stops the episodes; what finished is reported.
    let cancel = crate::signal::stop_on_ctrl_c();
    let started = Instant::now();
    let episodes = run_episodes(
        &data,
        &plan,
        &agent,
        &user,
        &cfg,
        observer.as_ref(),
        &cancel,
        &|r| {
            if let Ok(mut t) = tally.lock() {
                t.0 += r.reward;
                t.1 += 1;
                bar.set_message(format!("average reward {:.3}", t.0 / t.1 as f64));
            }
            bar.inc(1);
        },
    )
    .await;
    bar.finish_and_clear();
    let report = Report::new(
        &data,
        agent.name(),
        user.name(),
        plan.trials,
        episodes,
        started.elapsed(),
        args.prices,
    );
    drop(observer);
    crate::trace::close_writer(writer)?;
    print_report(&report);
    let out = args.out.unwrap_or_else(|| {
        let agent: String = report
            .agent
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from(format!(
            ".agentry/taubench/{}-{}-{agent}",
            report.domain, report.split
        ))
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json_path = out.with_extension("json");
    let md_path = out.with_extension("md");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    std::fs::write(&md_path, report.markdown())
        .with_context(|| format!("writing {}", md_path.display()))?;
    println!("reports: {} and {}", json_path.display(), md_path.display());
    if let Some(db) = &args.trace_db {
        println!(
            "every episode is in {} (agentry trace show RUN --trace-db {})",
            db.display(),
            db.display()
        );
    }
    Ok(!cancel.is_cancelled())
}

fn print_report(r: &Report) {
    println!("{:>5}  {:<12} ended", "task", "rewards");
    let mut i = 0;
    while i < r.episodes.len() {
        let task = r.episodes[i].task_index;
        let trials: Vec<_> = r.episodes[i..]
            .iter()
            .take_while(|e| e.task_index == task)
            .collect();
        let rewards: String = trials
            .iter()
            .map(|e| if e.reward >= 1.0 { '1' } else { '0' })
            .collect();
        let ended: Vec<&str> = trials.iter().map(|e| e.ended.as_str()).collect();
        println!("{task:>5}  {rewards:<12} {}", ended.join(" "));
        i += trials.len();
    }
    println!(
        "\n{} tasks × {} trials · agent {} · user {} · {:.1} s",
        r.tasks, r.trials, r.agent, r.user, r.wall_s
    );
    println!("average reward  {:.4}", r.average_reward);
    for (k, p) in r.pass_hat_k.iter().enumerate() {
        println!("pass^{:<10} {p:.4}", k + 1);
    }
    let ended: Vec<String> = r.ended.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("episodes ended  {}", ended.join(", "));
    if let Some(t) = r.agent_tokens_per_success {
        println!("agent tokens per successful episode  {t:.0}");
    }
    if let Some(c) = r.agent_cost_usd {
        let per = r.cost_per_success_usd.map_or_else(
            || "no successes".to_owned(),
            |p| format!("${p:.4} per success"),
        );
        println!("agent cost      ${c:.4} ({per})");
    }
}

/// Replays every task's ground truth; compares with the reference when there is one.
fn replay(args: ReplayArgs) -> Result<bool> {
    let splits = match args.split.as_str() {
        "all" => Split::ALL.to_vec(),
        s => {
            let split = s
                .parse::<Split>()
                .map_err(|e| anyhow::anyhow!("{e} (or all)"))?;
            vec![split]
        }
    };
    if splits.len() > 1 && (args.expected.is_some() || args.emit.is_some()) {
        bail!("--expected and --emit take one split: add --split test, dev or train");
    }
    let mut all_ok = true;
    let (mut total_tasks, mut total_time, mut total_load) = (0, Duration::ZERO, Duration::ZERO);
    println!(
        "{:<6} {:>6} {:>8} {:>9} {:>8} {:>10} {:>9}  reference",
        "split", "tasks", "actions", "db writes", "errors", "load ms", "replay ms"
    );
    for &split in &splits {
        let (data, loaded) = load(&args.data, &args.domain, split)?;
        let t = Instant::now();
        let results: Vec<_> = data
            .tasks
            .iter()
            .enumerate()
            .map(|(i, task)| replay_task(&data, i, task).0)
            .collect();
        let took = t.elapsed();
        total_tasks += results.len();
        total_time += took;
        total_load += loaded;
        let actions: usize = results.iter().map(|r| r.replay_observations.len()).sum();
        let errors = results
            .iter()
            .flat_map(|r| &r.replay_observations)
            .filter(|o| {
                o.observation.starts_with("Error") || o.observation.starts_with("Unknown action")
            })
            .count();
        let writes = results.iter().filter(|r| !r.db_unchanged).count();
        let reference = args.expected.clone().or_else(|| {
            let p = data.dir.join(format!("expected_{}.json", split.as_str()));
            p.is_file().then_some(p)
        });
        let verdict = match &reference {
            None => "none".to_owned(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let want: ReplayFile = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a replay file", path.display()))?;
                let mut diffs = Vec::new();
                for got in &results {
                    match want.tasks.iter().find(|w| w.task_index == got.task_index) {
                        Some(w) => {
                            if let Some(d) = first_difference(&data.db, got, w) {
                                diffs.push(format!("  task {}: {d}", got.task_index));
                            }
                        }
                        None => {
                            diffs.push(format!("  task {}: not in the reference", got.task_index))
                        }
                    }
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if diffs.is_empty() {
                    format!("{name}: all {} match", results.len())
                } else {
                    all_ok = false;
                    format!(
                        "{name}: {} of {} differ\n{}",
                        diffs.len(),
                        results.len(),
                        diffs.join("\n")
                    )
                }
            }
        };
        println!(
            "{:<6} {:>6} {:>8} {:>9} {:>8} {:>10.1} {:>9.1}  {verdict}",
            split.as_str(),
            results.len(),
            actions,
            writes,
            errors,
            loaded.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3
        );
        if let Some(path) = &args.emit {
            let file = ReplayFile { tasks: results };
            std::fs::write(path, serde_json::to_string_pretty(&file)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    if splits.len() > 1 {
        println!(
            "all    {total_tasks:>6} tasks replayed in {:.1} ms ({:.1} ms loading)",
            total_time.as_secs_f64() * 1e3,
            total_load.as_secs_f64() * 1e3
        );
    }
    Ok(all_ok)
}
