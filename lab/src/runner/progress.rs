//! Where a run is: samples done of the total, the cell being measured,
//! elapsed time and an estimate of what remains. On a terminal, a live bar
//! on stderr with the current rate; otherwise (or with `-q`, nothing) one
//! plain log line per sample. It also tells the machine watch, if any,
//! when each sample starts and ends.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use super::CellSpec;
use crate::machine::Watch;
use crate::results::conditions::CellConditions;

pub struct Progress {
    /// The live bar; None when stderr is not a terminal or logs are quiet.
    bar: Option<ProgressBar>,
    total: usize,
    done: AtomicUsize,
    started: Instant,
    line: Mutex<String>,
    watch: Option<Watch>,
}

impl Progress {
    /// `total` counts cell samples (cells x repetitions).
    pub fn new(total: usize) -> Progress {
        let live = std::io::stderr().is_terminal() && log::log_enabled!(log::Level::Info);
        let bar = live.then(|| {
            let bar = crate::terminal::bars().add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed} [{bar:24}] {pos}/{len} samples, {left}  {wide_msg}",
                )
                .expect("progress template")
                .with_key(
                    "elapsed",
                    |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&clock(s.elapsed()));
                    },
                )
                // Nothing to extrapolate from before the first sample ends.
                .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = match s.pos() {
                        0 => w.write_str("time left unknown"),
                        _ => write!(w, "about {} left", clock(s.eta())),
                    };
                })
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            total,
            done: AtomicUsize::new(0),
            started: Instant::now(),
            line: Mutex::new(String::new()),
            watch: None,
        }
    }

    /// Samples also open and close a cell of `watch`.
    pub fn watching(self, watch: Watch) -> Progress {
        Progress {
            watch: Some(watch),
            ..self
        }
    }

    /// What the run does between samples (building a lab, ...).
    pub fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(text.to_string()),
            None => log::info!("{text}"),
        }
    }

    /// A sample of `spec` starts.
    pub fn cell(&self, spec: &CellSpec, rep: u32, reps: u32) {
        if let Some(watch) = &self.watch {
            watch.begin_cell();
        }
        let done = self.done.fetch_add(1, Ordering::Relaxed);
        let overlay = spec.overlay.map(|o| format!("{o} ")).unwrap_or_default();
        let text = format!(
            "{overlay}{} {} > {} {} {} sample {rep}/{reps}",
            spec.datapath, spec.client, spec.server, spec.target, spec.workload
        );
        *self.line.lock().unwrap_or_else(|p| p.into_inner()) = text.clone();
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(text);
            }
            None => log::info!(
                "[{}/{}] {text} ({})",
                done + 1,
                self.total,
                timing(self.started.elapsed(), done, self.total)
            ),
        }
    }

    /// The sample started by [`Progress::cell`] ended: the worst machine
    /// conditions seen meanwhile, if watched.
    pub fn cell_done(&self) -> Option<CellConditions> {
        self.watch.as_ref().and_then(Watch::end_cell)
    }

    /// The live rate of the sample being measured (terminals only).
    pub fn rate(&self, value: f64, unit: &str) {
        if let Some(bar) = &self.bar {
            let base = self.line.lock().unwrap_or_else(|p| p.into_inner()).clone();
            bar.set_message(format!("{base}  {value:.2} {unit}"));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// "0:42 elapsed, about 1:10 left" after `done` of `total` samples (the
/// estimate assumes the samples left take as long as those done).
fn timing(elapsed: Duration, done: usize, total: usize) -> String {
    if done == 0 {
        return format!("{} elapsed", clock(elapsed));
    }
    let left = elapsed.mul_f64(total.saturating_sub(done) as f64 / done as f64);
    format!("{} elapsed, about {} left", clock(elapsed), clock(left))
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_time_scales_with_samples_left() {
        let t = timing(Duration::from_secs(30), 3, 9);
        assert_eq!(t, "0:30 elapsed, about 1:00 left");
        assert_eq!(timing(Duration::from_secs(5), 0, 4), "0:05 elapsed");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}
