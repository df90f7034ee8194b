//! Ctrl-C, heard the same way by every command.
//!
//! The first Ctrl-C cancels a token the command watches: a run ends `cancelled` with its
//! calls in flight cut and recorded, a server stops taking requests. A second one ends the
//! process at once (exit 130), for when stopping hangs.

use std::io::Write;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// A token cancelled by the first Ctrl-C, which says so on stderr; a second Ctrl-C ends
/// the process at once (exit 130). Call it inside the async runtime.
pub(crate) fn cancel_on_ctrl_c() -> CancellationToken {
    watch(Some("\ncancelling (Ctrl-C again to quit at once)…"))
}

/// [`cancel_on_ctrl_c`] without the notice, for servers, which say nothing when they stop.
pub(crate) fn stop_on_ctrl_c() -> CancellationToken {
    watch(None)
}

fn watch(notice: Option<&'static str>) -> CancellationToken {
    let cancel = CancellationToken::new();
    // Listening starts here, not when the task first runs: a Ctrl-C that comes right after
    // a server says it is ready is heard. If it cannot start, Ctrl-C ends the process as
    // it does by default.
    if let Ok(mut interrupts) = signal(SignalKind::interrupt()) {
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            if interrupts.recv().await.is_some() {
                if let Some(notice) = notice {
                    let _ = writeln!(std::io::stderr(), "{notice}");
                }
                on_signal.cancel();
                if interrupts.recv().await.is_some() {
                    std::process::exit(130);
                }
            }
        });
    }
    cancel
}
