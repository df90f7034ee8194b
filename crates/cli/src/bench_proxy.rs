//! `agentry bench proxy`: the latency `agentry proxy` adds to an MCP `tools/call` round trip,
//! against the same server called directly, in one run.

use std::time::Instant;

use agentry_mcp::{McpServer, ServerSpec};
use agentry_tools::{CallContext, DynTool};
use anyhow::{Context, Result, bail};
use serde_json::json;

async fn latencies(spec: ServerSpec, calls: usize) -> Result<Vec<f64>> {
    let server = McpServer::connect(spec).await?;
    let tools = server.tools(&|_| false).await;
    let echo = tools
        .iter()
        .find(|t| t.spec().name == "echo")
        .context("the server has no `echo` tool (use @modelcontextprotocol/server-everything)")?;
    let mut out = Vec::with_capacity(calls);
    for i in 0..calls + 50 {
        let t = Instant::now();
        echo.call_json(json!({"message": "ping"}), CallContext::detached("b"))
            .await
            .map_err(|e| anyhow::anyhow!("echo failed: {}", e.for_model()))?;
        if i >= 50 {
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    server.close().await;
    Ok(out)
}

/// `agentry bench proxy`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Calls per side.
    #[arg(long, default_value_t = 4000)]
    calls: usize,
    /// Alternating rounds the calls are split into.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// The MCP server command (default: server-everything from scripts/mcp-servers).
    #[arg(long)]
    server: Option<String>,
    /// Run the proxy without its audit trail.
    #[arg(long)]
    no_audit: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// `agentry bench proxy`.
pub(crate) fn run(args: Args) -> Result<()> {
    let Args {
        calls,
        rounds,
        server,
        no_audit,
        json: as_json,
    } = args;
    let (rounds, audit_on) = (rounds.max(1), !no_audit);
    let server = server.unwrap_or_else(|| {
        agentry_mcp::npm_bin("mcp-server-everything")
            .to_string_lossy()
            .into_owned()
    });
    if !std::path::Path::new(&server).exists() {
        bail!("{server} is missing: run scripts/mcp-servers, or pass --server COMMAND");
    }
    let dir = std::env::temp_dir().join(format!("agentry-bench-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, crate::bench_dag::BENCH_POLICY)?;
    let audit = dir.join("audit.jsonl");
    let me = std::env::current_exe()?.to_string_lossy().into_owned();
    let direct = ServerSpec {
        alias: "ev".into(),
        command: vec![server.clone()],
        env: Default::default(),
    };
    let proxied = ServerSpec {
        alias: "ev".into(),
        command: vec![
            me,
            "proxy".into(),
            "--policy".into(),
            policy.to_string_lossy().into_owned(),
            "--".into(),
            server,
        ],
        env: Default::default(),
    };
    let mut proxied = proxied;
    let at = proxied.command.len() - 2;
    if audit_on {
        proxied.command.splice(
            at..at,
            ["--audit".into(), audit.to_string_lossy().into_owned()],
        );
    } else {
        proxied.command.insert(at, "--no-audit".into());
    }
    let rt = crate::runtime::multi_thread()?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // Alternate the two so drift on a noisy machine hits both alike.
    for _ in 0..rounds {
        a.extend(rt.block_on(latencies(direct.clone(), calls / rounds))?);
        b.extend(rt.block_on(latencies(proxied.clone(), calls / rounds))?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let pct = agentry_eval::percentile;
    let (a50, a99, b50, b99) = (pct(&a, 0.5), pct(&a, 0.99), pct(&b, 0.5), pct(&b, 0.99));
    if as_json {
        println!(
            "{}",
            json!({"calls": a.len(), "direct_p50_us": a50, "direct_p99_us": a99, "proxied_p50_us": b50,
                   "proxied_p99_us": b99, "added_p50_us": b50 - a50, "added_p99_us": b99 - a99})
        );
        return Ok(());
    }
    println!(
        "MCP tools/call round trip (echo on server-everything), {} calls each, {rounds} alternating rounds:",
        a.len()
    );
    println!("  direct:                 p50 {a50:>8.1} µs   p99 {a99:>8.1} µs");
    println!(
        "  through agentry proxy:  p50 {b50:>8.1} µs   p99 {b99:>8.1} µs   (5-rule policy, audit trail {})",
        if audit_on { "on" } else { "off" }
    );
    println!(
        "  added by the proxy:     p50 {:>8.1} µs   p99 {:>8.1} µs   ratio p50 {:.2}x",
        b50 - a50,
        b99 - a99,
        b50 / a50
    );
    println!("  goal: added p50 < 100 µs, p99 < 1000 µs");
    Ok(())
}
