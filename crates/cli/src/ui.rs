//! `agentry ui`: the trace viewer, served until Ctrl-C; and `--allowed-host`, which the
//! servers share.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use anyhow::Result;

/// `agentry ui`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The port (0 picks a free one).
    #[arg(long, default_value_t = 7878)]
    port: u16,
    /// The address to listen on; anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The trace store.
    #[arg(long, value_name = "FILE", default_value = ".agentry/traces.db")]
    trace_db: PathBuf,
    /// Where eval reports are (repeatable; searched three levels deep).
    #[arg(long, value_name = "DIR", default_values = [".agentry", "."])]
    reports: Vec<PathBuf>,
    /// A token every request must carry (the printed address includes it).
    #[arg(long)]
    token: Option<String>,
    /// A name the viewer is reached by besides loopback and the address it listens on:
    /// NAME or NAME:PORT (repeatable), e.g. the machine's name on the network.
    #[arg(long, value_name = "NAME[:PORT]", value_parser = host_name)]
    allowed_host: Vec<String>,
}

/// Shown after `agentry ui --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  agentry ui                          http://127.0.0.1:7878/ over .agentry/traces.db
  agentry ui --port 0 --trace-db runs.db --reports results/
  agentry ui --host 0.0.0.0 --token S3CRET   (beyond this machine: a token is required)
  agentry ui --host 0.0.0.0 --token S3CRET --allowed-host box.lan   (reached as box.lan too)

The viewer answers only requests whose Host it is reached by (against DNS rebinding):
localhost, 127.0.0.1 and [::1] on any port; beyond loopback also the address it listens on
(any IP address with 0.0.0.0) and each --allowed-host. Others get 403.";

/// `agentry ui`.
pub(crate) fn run(args: Args) -> Result<bool> {
    let ui = agentry_ui::Ui {
        db: args.trace_db,
        reports: args.reports,
        token: args.token,
        allowed_hosts: args.allowed_host,
    };
    crate::runtime::block_on(serve(ui, SocketAddr::new(args.host, args.port)))
}

/// Serves until Ctrl-C.
async fn serve(ui: agentry_ui::Ui, addr: SocketAddr) -> Result<bool> {
    let stop = crate::signal::stop_on_ctrl_c();
    let db = ui.db.clone();
    let token = ui.token.clone();
    agentry_ui::serve(ui, addr, stop, |bound| {
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        println!(
            "agentry ui at http://{bound}/{query} over {} (Ctrl-C to stop)",
            db.display()
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
    })
    .await?;
    Ok(true)
}

/// `--allowed-host`: a name, or a name and a port.
pub(crate) fn host_name(text: &str) -> Result<String, String> {
    if agentry_core::AllowedHosts::is_host(text) {
        Ok(text.to_owned())
    } else {
        Err("a host name or address, with a port if you like: box.lan, box.lan:7878".into())
    }
}
