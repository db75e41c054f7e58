//! A count bar on stderr for the long phases.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A count bar on stderr that appears once the work has taken more than a second.
pub(super) struct CountBar {
    pub(super) bar: ProgressBar,
    pub(super) started: Instant,
    pub(super) shown: bool,
}

impl CountBar {
    pub(super) fn new(total: u64, label: &str) -> CountBar {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(label.to_string());
        CountBar { bar, started: Instant::now(), shown: false }
    }

    pub(super) fn inc(&mut self, n: u64) {
        if !self.shown && self.started.elapsed() > Duration::from_secs(1) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.bar.inc(n);
    }

    pub(super) fn finish(self) {
        self.bar.finish_and_clear();
    }
}
