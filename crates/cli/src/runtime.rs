//! The async runtime a command runs on.

use std::future::Future;

use anyhow::{Context, Result};

/// A runtime on every core, with I/O and timers.
pub(crate) fn multi_thread() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs `future` to its end on a [`multi_thread`] runtime.
pub(crate) fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    multi_thread()?.block_on(future)
}

/// Runs `future` to its end on a runtime of one thread, for a relay whose messages should
/// cross without a hand-off between threads.
pub(crate) fn block_on_one_thread<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}
