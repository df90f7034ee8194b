//! `agentry bench llm`: the client's CPU per streamed token, and the sim server under load.
//!
//! Decoding is timed on a recorded event stream (one chunk per token, text and native
//! tool-call deltas) next to `serde_json` parsing the same chunks alone, the floor for any
//! client. The load test opens N concurrent streaming requests against `SimServer` on
//! loopback and compares the wall time with the one a single request needs.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use agentry_core::Message;
use agentry_llm::{
    ChatRequest, ModelEvent, OpenAi, OpenAiConfig, RetryPolicy, StreamDecoder, complete,
    sim::{Script, SimServer, plan, sse_frames},
};
use anyhow::{Context, Result, ensure};
use futures::{StreamExt, stream::FuturesUnordered};
use serde_json::{Value, json};

fn big_script() -> Result<Script> {
    let words = "the quick brown fox jumps over the lazy dog while reading forecasts ".repeat(150);
    let text = serde_json::to_string(&words)?;
    let calls: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"name": "lookup_{i}", "arguments": {{"query": "weather in city number {i}", "days": {i}, "tags": ["a", "b"]}}}}"#))
        .collect();
    let script = format!(
        r#"{{"turns": [{{"text": {text}, "calls": [{}]}}]}}"#,
        calls.join(",")
    );
    Ok(Script::parse(&script, "bench")?)
}

fn cpu_seconds() -> Option<f64> {
    // utime + stime of this process, from /proc (Linux); clock ticks are 100 Hz there.
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// `agentry bench llm`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Concurrent streaming requests for the load test.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// `agentry bench llm`.
pub(crate) fn run(args: Args) -> Result<()> {
    let (streams, as_json) = (args.streams, args.json);
    // 1. Decoding cost per token.
    let script = big_script()?;
    let messages = vec![Message::user("go")];
    let p = plan(&script, &messages, &[])?;
    let tokens = p.deltas.len();
    let body: String = sse_frames(p, "chatcmpl-bench", "sim", true)
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    let decode = || -> Result<usize> {
        let mut decoder = StreamDecoder::new(None);
        let mut calls = 0;
        for piece in body.as_bytes().chunks(1400) {
            for e in decoder.push(piece)? {
                calls += usize::from(matches!(e, ModelEvent::Call(_)));
            }
        }
        decoder.finish(1)?;
        Ok(calls)
    };
    ensure!(
        decode()? == 20,
        "the bench stream should decode to 20 calls"
    );
    let datas: Vec<&str> = body
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .collect();
    let mut agentry = Vec::new();
    let mut serde = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        black_box(decode()?);
        agentry.push(t.elapsed().as_secs_f64() / tokens as f64 * 1e6);
        let t = Instant::now();
        for d in &datas {
            black_box(serde_json::from_str::<Value>(d).ok());
        }
        serde.push(t.elapsed().as_secs_f64() / tokens as f64 * 1e6);
    }
    let (decode_us, serde_us) = (agentry_eval::median(agentry), agentry_eval::median(serde));

    // 2. Concurrent streams against the sim server.
    let load = crate::runtime::block_on(load(streams))?;

    if as_json {
        println!(
            "{}",
            json!({"decode_us_per_token": decode_us, "serde_json_us_per_token": serde_us, "tokens": tokens, "load": load})
        );
        return Ok(());
    }
    println!(
        "client decoding: {tokens} streamed tokens (text and 20 native tool calls), median of 15 runs"
    );
    println!(
        "  agentry SSE + JSON + call assembly: {decode_us:.2} µs/token   serde_json alone on the same chunks: {serde_us:.2} µs/token   ratio {:.2}x",
        decode_us / serde_us
    );
    println!("  goal: < 5 µs/token");
    println!();
    println!(
        "sim server under load: {} concurrent streaming requests on loopback (client in the same process)",
        load["streams"]
    );
    println!(
        "  ok {} / {}   wall {:.2}s   one request alone {:.2}s   wall/alone {:.2}x",
        load["ok"],
        load["streams"],
        load["wall_s"].as_f64().unwrap_or_default(),
        load["alone_s"].as_f64().unwrap_or_default(),
        load["wall_over_alone"].as_f64().unwrap_or_default()
    );
    println!(
        "  first token p50 {:.0} ms, p99 {:.0} ms (script: 200 ms)   CPU {:.2}s for the whole run",
        load["ttft_p50_ms"].as_f64().unwrap_or_default(),
        load["ttft_p99_ms"].as_f64().unwrap_or_default(),
        load["cpu_s"].as_f64().unwrap_or_default()
    );
    if let Some(err) = load["first_error"].as_str() {
        println!("  first error: {err}");
    }
    println!("  goal: all {} complete", load["streams"]);
    Ok(())
}

async fn load(streams: usize) -> Result<Value> {
    let script = Script::parse(
        r#"{"latency": {"ttft_ms": 200, "tokens_per_s": 100},
            "turns": [{"text": "Streaming a reply of about fifty tokens so that every connection stays open for half a second.", "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}]}"#,
        "load",
    )?;
    let server = SimServer::bind(script, "127.0.0.1:0".parse()?)
        .await
        .context("binding the sim server")?;
    let cfg = OpenAiConfig::new(server.url(), "sim")
        .retry(RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        })
        .timeouts(Duration::from_secs(60), Duration::from_secs(30));
    let client = OpenAi::new(cfg)?;
    let request = || ChatRequest::new(vec![Message::user("weather?")]);
    let t = Instant::now();
    complete(&client, request()).await?;
    let alone = t.elapsed().as_secs_f64();

    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let mut tasks: FuturesUnordered<_> = (0..streams)
        .map(|_| {
            let client = client.clone();
            let req = request();
            tokio::spawn(async move { complete(&client, req).await })
        })
        .collect();
    let mut ok = 0usize;
    let mut ttfts = Vec::new();
    let mut first_error = None;
    while let Some(joined) = tasks.next().await {
        match joined {
            Ok(Ok(r)) if r.calls.len() == 1 => {
                ok += 1;
                if let Some(d) = r.completion.timing.time_to_first_token {
                    ttfts.push(d.as_secs_f64() * 1000.0);
                }
            }
            Ok(Ok(_)) => {
                first_error = first_error.or(Some("a response without its call".to_owned()))
            }
            Ok(Err(e)) => first_error = first_error.or(Some(e.to_string())),
            Err(e) => first_error = first_error.or(Some(e.to_string())),
        }
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu0.zip(cpu_seconds()).map(|(a, b)| b - a);
    server.close().await;
    ttfts.sort_by(f64::total_cmp);
    let pct = |p: f64| agentry_eval::percentile(&ttfts, p);
    Ok(
        json!({"streams": streams, "ok": ok, "wall_s": wall, "alone_s": alone, "wall_over_alone": wall / alone,
              "ttft_p50_ms": pct(0.5), "ttft_p99_ms": pct(0.99), "cpu_s": cpu, "first_error": first_error}),
    )
}
