//! Progress for long steps: a bar on a terminal, a log line every few seconds otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug)]
pub struct Progress {
    label: String,
    bar: Option<ProgressBar>,
    plain: bool,
    done: AtomicU64,
    total: AtomicU64,
    last_log: Mutex<Instant>,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// A bar on stderr when it is a terminal, drawn with `template` (labelled by `label`).
    fn on_stderr(label: &str, template: &str, label_bar: fn(&ProgressBar, String)) -> Option<ProgressBar> {
        std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            label_bar(&bar, label.to_owned());
            bar
        })
    }

    fn new(label: &str, bar: Option<ProgressBar>, plain: bool) -> Progress {
        Progress {
            label: label.to_owned(),
            bar,
            plain,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// Progress over bytes, shown on stderr.
    pub fn bytes(label: &str) -> Progress {
        let template = "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
        let bar = Self::on_stderr(label, template, |bar, label| bar.set_message(label));
        let plain = bar.is_none();
        Progress::new(label, bar, plain)
    }

    /// Progress over a count of work items (training: fits), shown on stderr: a bar with the
    /// latest [`Progress::milestone`] on a terminal; elsewhere a log line at each milestone.
    pub fn count(label: &str) -> Progress {
        let template = "{prefix:>10} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}";
        let bar = Self::on_stderr(label, template, |bar, label| bar.set_prefix(label));
        // Counted work logs at milestones only.
        Progress::new(label, bar, false)
    }

    /// Progress over the `stages` of one step (export, compile): a bar with the current stage
    /// and the time spent on a terminal; elsewhere a log line per stage when `log_lines` (a
    /// large model, whose stages take seconds), nothing otherwise.
    pub fn stages(label: &str, stages: u64, log_lines: bool) -> Progress {
        let progress = Progress::count(if log_lines || std::io::stderr().is_terminal() {
            label
        } else {
            ""
        });
        progress.set_length(Some(stages));
        progress
    }

    /// Says where counted work stands: the bar's message on a terminal, else a log line.
    pub fn milestone(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(text.to_owned()),
            None if !self.label.is_empty() => tracing::info!(step = %self.label, "{}: {text}", self.label),
            None => {}
        }
    }

    /// Progress that shows nothing (tests, library use).
    pub fn hidden() -> Progress {
        Progress::new("", None, false)
    }

    pub fn set_length(&self, total: Option<u64>) {
        let total = total.unwrap_or(0);
        self.total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.plain {
            let mut last = self.last_log.lock().expect("progress lock");
            if last.elapsed() >= LOG_EVERY {
                *last = Instant::now();
                let total = self.total.load(Ordering::Relaxed);
                if total > 0 {
                    tracing::info!(step = %self.label, done_bytes = done, total_bytes = total, "{}: {:.0}%", self.label, 100.0 * done as f64 / total as f64);
                } else {
                    tracing::info!(step = %self.label, done_bytes = done, "{}: {done} bytes", self.label);
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
