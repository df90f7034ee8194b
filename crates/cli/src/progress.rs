//! Progress bars on stderr, all in one style.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps: the bar, steps done of all, a message, time taken and left.
pub(crate) fn bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} · {msg} · {elapsed_precise} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
