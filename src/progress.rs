//! Progress of a crawl: a bar on a terminal, a plain line every few seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use spindle_common::ProjectStats;

use crate::crawl::rate_text;

/// Shows the progress of one project.
pub struct Progress {
    bar: Option<ProgressBar>,
    last_line: Instant,
    started: Instant,
}

/// Gap between two plain progress lines.
const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} pages  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            last_line: Instant::now(),
            started: Instant::now(),
        }
    }

    /// Shows the latest figures.
    pub fn update(&mut self, s: &ProjectStats) {
        let done = s.success + s.failed;
        let known = done + s.queued + s.waiting + s.in_flight;
        // No rate in the first second, where it means little (see `rate_text`).
        let rate = rate_text(done, self.started.elapsed())
            .map(|r| format!(", {r}"))
            .unwrap_or_default();
        match &self.bar {
            Some(bar) => {
                bar.set_length(known);
                bar.set_position(done);
                bar.set_message(format!("{} items, {} errors{rate}", s.items, s.failed));
            }
            None if self.last_line.elapsed() >= LINE_EVERY => {
                self.last_line = Instant::now();
                eprintln!(
                    "progress: {done}/{known} pages, {} items, {} errors{rate}",
                    s.items, s.failed
                );
            }
            None => {}
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
