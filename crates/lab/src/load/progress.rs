//! The live progress line: sent/scheduled, and over the last second the achieved rate,
//! p50, p99, plus the error count so far. Drawn on stderr only when it is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use super::engine::Live;

/// A running progress display; [`Progress::finish`] clears it.
pub struct Progress {
    bar: ProgressBar,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start drawing, unless `quiet` or stderr is not a terminal.
    pub fn start(live: Arc<Live>, label: &str, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Self { bar: ProgressBar::hidden(), ticker: None };
        }
        let bar = ProgressBar::with_draw_target(Some(live.scheduled), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} {elapsed_precise} [{bar:25}] {pos}/{len} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let ticker = tokio::spawn(tick(bar.clone(), live));
        Self { bar, ticker: Some(ticker) }
    }

    pub fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

async fn tick(bar: ProgressBar, live: Arc<Live>) {
    let period = Duration::from_secs(1);
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    let mut window_start = tokio::time::Instant::now();
    let mut prev_ok = 0;
    let mut prev_hist = crate::results::load::new_histogram();
    let mut shown = String::from("starting…");
    loop {
        interval.tick().await;
        bar.set_position(live.sent.load(Ordering::Relaxed));
        let elapsed = window_start.elapsed();
        if elapsed >= period {
            let ok = live.ok.load(Ordering::Relaxed);
            let hist = live.merged_latency();
            let mut window = hist.clone();
            window.subtract(&prev_hist).expect("monotonic histogram");
            let rate = (ok - prev_ok) as f64 / elapsed.as_secs_f64();
            let pct = |q: f64| {
                if window.is_empty() { 0.0 } else { window.value_at_quantile(q) as f64 / 1000.0 }
            };
            shown = format!(
                "{rate:>8.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  errors {}",
                pct(0.5),
                pct(0.99),
                live.errors.load(Ordering::Relaxed)
            );
            (prev_ok, prev_hist, window_start) = (ok, hist, tokio::time::Instant::now());
        }
        bar.set_message(shown.clone());
    }
}
