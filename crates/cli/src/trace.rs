//! `agentry trace …` and `agentry replay`: recorded runs listed, drawn as timelines, exported
//! and run again; and the trace store as the commands that run agents write it
//! ([`open_writer`], [`close_writer`]).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use agentry_trace::{TraceStore, TraceWriter};
use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};

/// `agentry trace`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: Command,
    /// The trace store.
    #[arg(
        long,
        value_name = "FILE",
        default_value = ".agentry/traces.db",
        global = true
    )]
    trace_db: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The newest runs first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// A run's timeline: what ran in parallel, how long each step took, the critical path.
    Show {
        /// The run: its id, a unique prefix, or `last`.
        #[arg(default_value = "last")]
        run: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Width of the bars, in characters.
        #[arg(long, default_value_t = 50)]
        width: usize,
        /// Also draw the timeline as an SVG picture into this file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Also draw the timeline as a PNG picture into this file.
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
    },
    /// A run's events, or its spans as OTLP JSON.
    Export {
        /// The run: its id, a unique prefix, or `last`.
        #[arg(default_value = "last")]
        run: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// With `otlp-json`: the spans' `service.name` (default: OTEL_SERVICE_NAME, else
        /// `agentry`).
        #[arg(long, value_name = "NAME")]
        service_name: Option<String>,
        /// With `otlp-json`: put the task, messages, arguments and results in the spans.
        #[arg(long)]
        capture_content: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// The recorded events, one JSON object per line.
    Jsonl,
    /// The run's OpenTelemetry spans as one OTLP/JSON export request (what a collector's
    /// `POST /v1/traces` takes), in the GenAI conventions.
    OtlpJson,
}

/// `agentry replay`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The run: its id, a unique prefix, or `last`.
    run: String,
    /// The trace store.
    #[arg(long, value_name = "FILE", default_value = ".agentry/traces.db")]
    trace_db: PathBuf,
}

/// `agentry trace …`.
pub(crate) fn run(args: Args) -> Result<bool> {
    let db = &args.trace_db;
    match args.what {
        Command::List { limit, json } => list(db, limit, json),
        Command::Show {
            run,
            json,
            width,
            svg,
            png,
        } => show(db, &run, json, width, svg.as_deref(), png.as_deref()),
        Command::Export {
            run,
            format,
            service_name,
            capture_content,
        } => export(db, &run, format, service_name, capture_content),
    }
}

/// `agentry replay`.
pub(crate) fn replay(args: ReplayArgs) -> Result<bool> {
    crate::runtime::block_on(replay_run(&args.trace_db, &args.run))
}

/// Opens the trace store at `path` for writing; `None` keeps no trace.
pub(crate) fn open_writer(path: Option<&Path>) -> Result<Option<Arc<TraceWriter>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let writer = TraceWriter::open(path)
        .with_context(|| format!("opening the trace store {}", path.display()))?;
    Ok(Some(Arc::new(writer)))
}

/// Writes out what `writer` holds and closes it, once nothing else holds it (a writer
/// still shared is left to its other holders).
pub(crate) fn close_writer(writer: Option<Arc<TraceWriter>>) -> Result<()> {
    if let Some(writer) = writer {
        let path = writer.path().to_owned();
        if let Ok(writer) = Arc::try_unwrap(writer) {
            writer
                .close()
                .with_context(|| format!("writing the traces to {}", path.display()))?;
        }
    }
    Ok(())
}

/// `agentry trace list`.
fn list(db: &Path, limit: usize, json: bool) -> Result<bool> {
    let store = TraceStore::open(db)?;
    let runs = store.runs(limit)?;
    if json {
        println!("{}", serde_json::to_string(&runs)?);
        return Ok(true);
    }
    if runs.is_empty() {
        println!("no runs in {}", db.display());
        return Ok(true);
    }
    println!(
        "{:<22} {:<10} {:<16} {:<17} {:>8} {:>5} {:>7}  task",
        "run", "mode", "model", "status", "seconds", "calls", "tokens"
    );
    for r in runs {
        println!(
            "{:<22} {:<10} {:<16} {:<17} {:>8.3} {:>5} {:>7}  {}",
            r.id,
            r.mode,
            crate::run::short(&r.model, 16),
            r.status,
            r.wall_us as f64 / 1e6,
            r.calls,
            r.tokens,
            crate::run::short(&r.task, 60)
        );
    }
    Ok(true)
}

/// `agentry trace show`.
fn show(
    db: &Path,
    run: &str,
    json: bool,
    width: usize,
    svg: Option<&Path>,
    png: Option<&Path>,
) -> Result<bool> {
    let store = TraceStore::open(db)?;
    let id = store.resolve(run)?;
    let events = store.events(&id)?;
    let t = agentry_trace::timeline(&events);
    if svg.is_some() || png.is_some() {
        let picture = agentry_ui::svg(&t, 1200);
        if let Some(path) = svg {
            std::fs::write(path, &picture)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("timeline of {id} drawn in {}", path.display());
        }
        if let Some(path) = png {
            let bytes = agentry_ui::png(&picture)?;
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("timeline of {id} drawn in {}", path.display());
        }
    }
    if json {
        println!("{}", serde_json::to_string(&t)?);
    } else {
        print!("{}", agentry_trace::render(&t, width));
    }
    Ok(true)
}

/// `agentry trace export`.
fn export(
    db: &Path,
    run: &str,
    format: ExportFormat,
    service_name: Option<String>,
    capture_content: bool,
) -> Result<bool> {
    let store = TraceStore::open(db)?;
    let id = store.resolve(run)?;
    let events = store.events(&id)?;
    match format {
        ExportFormat::Jsonl => print!("{}", agentry_trace::export_jsonl(&events)),
        ExportFormat::OtlpJson => {
            let started_ms = store
                .summaries(std::slice::from_ref(&id))?
                .first()
                .map_or(0, |r| r.started_at_ms);
            let started = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(started_ms).unwrap_or(0));
            let service = service_name
                .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
                .unwrap_or_else(|| "agentry".into());
            let request =
                agentry_trace::otlp::otlp_json(&events, started, &service, capture_content);
            println!("{}", serde_json::to_string(&request)?);
        }
    }
    Ok(true)
}

/// `agentry replay`: returns whether the replay matched.
async fn replay_run(db: &Path, run: &str) -> Result<bool> {
    let store = TraceStore::open(db)?;
    let id = store.resolve(run)?;
    let events = store.events(&id)?;
    let report = agentry_exec::replay(&events, agentry_exec::EngineConfig::default()).await;
    match report.divergence {
        None => {
            println!("replay of {id} matches: {} steps identical", report.steps);
            Ok(true)
        }
        Some(d) => {
            println!("replay of {id} diverges at {d}");
            Ok(false)
        }
    }
}
