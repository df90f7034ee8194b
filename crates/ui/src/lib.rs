//! agentry's trace viewer: [`serve`] answers a browser with a local web app over the trace
//! store: the runs (filtered, paginated, live), one run as a Gantt timeline with its
//! critical path and, for compiled runs, the plan as a graph, the detail of any step, and
//! the eval reports; [`svg`] and [`png`] draw the same timeline as a picture.
//!
//! Everything shown comes from models and tools and is untrusted: the page builds its
//! DOM with text nodes only, the server sends a content security policy that forbids
//! inline script, and big results are cut with a link to the whole text as a download.
//! The page's files are compiled into the binary; nothing is fetched from elsewhere. A
//! request whose `Host` is not one the viewer is reached by gets 403
//! ([`agentry_core::AllowedHosts`]), so a page that re-points its own name at this machine
//! (DNS rebinding) reads nothing.

mod api;
mod error;
mod picture;
mod run;

use std::path::PathBuf;

pub use error::{PictureError, UiError};
pub use picture::{png, svg};
pub use run::{RunView, run_view};

/// What the viewer serves.
#[derive(Debug, Clone)]
pub struct Ui {
    /// The trace store.
    pub db: PathBuf,
    /// Where to look for eval reports (`*.json` written by `agentry eval …`).
    pub reports: Vec<PathBuf>,
    /// A token every request must carry (required when listening beyond loopback).
    pub token: Option<String>,
    /// Names the viewer answers besides loopback ones and the address it listens on
    /// (`name` or `name:port`, e.g. the machine's name on the network).
    pub allowed_hosts: Vec<String>,
}

/// Serves the viewer at `http://ADDR/` until `stop`; `ready` gets the address bound.
pub async fn serve(
    ui: Ui,
    addr: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), UiError> {
    if !addr.ip().is_loopback() && ui.token.as_deref().is_none_or(str::is_empty) {
        return Err(UiError::TokenRequired { addr });
    }
    let listen = |source: std::io::Error| UiError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    let mut hosts = agentry_core::AllowedHosts::for_bind(addr.ip());
    for name in &ui.allowed_hosts {
        hosts = hosts.allow(name);
    }
    let app = api::router(ui, hosts);
    ready(bound);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(UiError::Server)
}
