//! `agentry sim-server`: a simulated model as an OpenAI-compatible endpoint, served until
//! Ctrl-C.

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
};

use anyhow::{Context, Result};

/// `agentry sim-server`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The script: a file (.yaml, .yml, .json) or a bundled name (weather, hermes, plan, trip).
    #[arg(long)]
    script: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// A name the server is reached by besides loopback and the address it listens on:
    /// NAME or NAME:PORT (repeatable). Requests by other names get 403.
    #[arg(long, value_name = "NAME[:PORT]", value_parser = crate::ui::host_name)]
    allowed_host: Vec<String>,
}

/// Shown after `agentry sim-server --help`.
pub(crate) const EXAMPLES: &str = "\
Example:
  $ agentry sim-server --script crates/llm/scripts/weather.yaml --port 8089
  serving sim:weather at http://127.0.0.1:8089/v1
  $ curl -s http://127.0.0.1:8089/v1/chat/completions -d '{\"model\": \"sim\", \"messages\": [{\"role\": \"user\", \"content\": \"weather in Rome?\"}]}'

Any OpenAI client pointed at that URL (LangGraph, the OpenAI Agents SDK, agentry itself)
gets the same replies with the same latency. Stops on Ctrl-C.";

/// `agentry sim-server`.
pub(crate) fn run(args: Args) -> Result<bool> {
    crate::runtime::block_on(serve(
        &args.script,
        args.host,
        args.port,
        &args.allowed_host,
    ))
}

/// Serves until Ctrl-C.
async fn serve(script: &str, host: IpAddr, port: u16, allowed: &[String]) -> Result<bool> {
    let script = match agentry_llm::bundled_script(script) {
        Some(bundled) => bundled?,
        None => agentry_llm::sim::Script::from_file(Path::new(script))?,
    };
    let name = script.name().to_owned();
    let mut hosts = agentry_core::AllowedHosts::for_bind(host);
    for name in allowed {
        hosts = hosts.allow(name);
    }
    let addr = SocketAddr::new(host, port);
    let server = agentry_llm::sim::SimServer::bind_allowing(script, addr, hosts)
        .await
        .with_context(|| format!("listening on {host}:{port}"))?;
    let stop = crate::signal::stop_on_ctrl_c();
    println!("serving sim:{name} at {} (Ctrl-C to stop)", server.url());
    stop.cancelled().await;
    server.close().await;
    Ok(true)
}
