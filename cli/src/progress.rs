//! Progress bars for long transfers on a terminal; nothing otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use strongroom_engine::files::Progress;

use crate::output::{escaped, tell};

/// A byte progress bar on standard error, hidden when standard error is not a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar with a message (escaped, as everything printed: it may name a file).
    pub fn new(message: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(escaped(message));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self(bar)
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn add_total(&self, bytes: u64) {
        self.0.inc_length(bytes);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn stored(&self) {
        self.0
            .suspend(|| tell!("Stored on this device; uploading..."));
    }
}
