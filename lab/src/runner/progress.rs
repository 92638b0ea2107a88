//! A one-line progress display for terminals: cell i of n, datapath,
//! target, workload, repetition, live rate. Silent when stdout is not a
//! terminal, so logs and pipes stay clean.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::CellSpec;

pub struct Progress {
    enabled: bool,
    total: usize,
    done: AtomicUsize,
    line: Mutex<String>,
}

impl Progress {
    /// `total` counts cell samples (cells x repetitions).
    pub fn new(total: usize) -> Progress {
        Progress {
            enabled: std::io::stdout().is_terminal(),
            total,
            done: AtomicUsize::new(0),
            line: Mutex::new(String::new()),
        }
    }

    pub fn note(&self, text: &str) {
        self.show(text);
    }

    pub fn cell(&self, spec: &CellSpec, rep: u32, reps: u32) {
        let i = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let text = format!(
            "[{i}/{}] {} {} {} sample {rep}/{reps}",
            self.total, spec.datapath, spec.target, spec.workload
        );
        *self.line.lock().unwrap_or_else(|p| p.into_inner()) = text.clone();
        self.show(&text);
    }

    pub fn rate(&self, value: f64, unit: &str) {
        let base = self.line.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.show(&format!("{base}  {value:.2} {unit}"));
    }

    pub fn finish(&self) {
        if self.enabled {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
    }

    fn show(&self, text: &str) {
        if self.enabled {
            print!("\r\x1b[2K{text}");
            let _ = std::io::stdout().flush();
        }
    }
}
