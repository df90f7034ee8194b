//! OpenTelemetry export for the commands that run agents: started from the standard
//! `OTEL_*` variables (or `agentry.toml`'s `[otel]`), finished with a line saying what was
//! exported and what was lost.

use std::sync::Arc;

use agentry_trace::otlp::{OtlpConfig, OtlpExporter};
use anyhow::{Context, Result};

/// The exporter the environment asks for (its variables win over `file`'s `[otel]`), started;
/// `None` when neither asks for one.
pub(crate) fn start(file: Option<OtlpConfig>) -> Result<Option<Arc<OtlpExporter>>> {
    let Some(cfg) = OtlpConfig::from_env()?.or(file) else {
        return Ok(None);
    };
    let exporter = OtlpExporter::start(cfg).context("starting the OpenTelemetry export")?;
    Ok(Some(Arc::new(exporter)))
}

/// Exports what is left and says what happened: the spans sent (unless `quiet`), and
/// always what was lost and why.
pub(crate) fn finish(exporter: Option<Arc<OtlpExporter>>, quiet: bool) {
    let Some(exporter) = exporter else { return };
    let stats = exporter.shutdown();
    let url = exporter.url();
    if !quiet && stats.exported > 0 {
        eprintln!("spans: {} exported to {url}", stats.exported);
    }
    if stats.failed > 0 {
        eprintln!(
            "warning: {} spans could not be exported to {url}: {}",
            stats.failed,
            stats.last_error.as_deref().unwrap_or("the export failed")
        );
    }
    if stats.dropped > 0 {
        eprintln!(
            "warning: {} run events were dropped before export (the queue was full); their spans are incomplete",
            stats.dropped
        );
    }
}
