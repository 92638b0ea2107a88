//! Watches the machine through a run: its state at the start (with a
//! warning for each reason it is not quiet), twice a second while cells
//! are measured (each cell keeps the worst it saw), and at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{other_labs, state, OtherLab, Reading};
use crate::results::conditions::{
    start_warnings, CellConditions, Conditions, MachineState, Thresholds,
};

/// How often the machine is read while cells run.
const TICK: Duration = Duration::from_millis(500);
/// CPU shares over a shorter stretch are mostly clock-tick rounding.
const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// A handle on the watching thread; clones share it.
#[derive(Clone)]
pub struct Watch(Arc<Inner>);

struct Inner {
    pid: u32,
    cpus: usize,
    thresholds: Thresholds,
    start: MachineState,
    stop: AtomicBool,
    shared: Mutex<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    last: Reading,
    /// What the cell being measured has seen so far.
    cell: Option<CellConditions>,
    warned_labs: Vec<String>,
    warned_busy: bool,
    warnings: Vec<String>,
}

impl Watch {
    /// Reads the machine over a moment, warns (log) about what makes it
    /// unfit for measuring, and starts watching.
    pub fn start() -> Watch {
        let pid = std::process::id();
        let cpus = online_cpus();
        let thresholds = Thresholds::for_cpus(cpus);
        let first = Reading::now();
        std::thread::sleep(TICK);
        let last = Reading::now();
        let labs = other_labs(pid);
        let start = state(&first, &last, &labs);
        let described: Vec<String> = labs.iter().map(OtherLab::to_string).collect();
        let warnings = start_warnings(&start, &described, &thresholds, cpus);
        for w in &warnings {
            log::warn!("{w}");
        }
        let inner = Arc::new(Inner {
            pid,
            cpus,
            thresholds,
            start,
            stop: AtomicBool::new(false),
            shared: Mutex::new(Shared {
                last,
                cell: None,
                warned_labs: labs.iter().map(|l| l.run.to_string()).collect(),
                warned_busy: false,
                warnings,
            }),
            thread: Mutex::new(None),
        });
        let ticker = inner.clone();
        let handle = std::thread::spawn(move || {
            while !ticker.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let due = ticker.lock().last.at.elapsed() >= TICK;
                if due {
                    ticker.observe(&mut ticker.lock());
                }
            }
        });
        *inner.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Watch(inner)
    }

    /// A sample starts: what is seen from now on counts for its cell.
    pub fn begin_cell(&self) {
        let mut s = self.0.lock();
        // The stretch before the sample belongs to no cell.
        self.0.observe(&mut s);
        s.last = Reading::now();
        s.cell = Some(CellConditions::default());
        self.0.observe(&mut s);
    }

    /// The sample ended: the worst seen during it, judged.
    pub fn end_cell(&self) -> Option<CellConditions> {
        let mut s = self.0.lock();
        self.0.observe(&mut s);
        let mut cell = s.cell.take()?;
        cell.judge(&self.0.thresholds);
        log::debug!("machine while the sample ran: {cell:?}");
        Some(cell)
    }

    /// Stops watching; the conditions for results.json.
    pub fn finish(&self) -> Conditions {
        self.0.stop.store(true, Ordering::Relaxed);
        let thread = self
            .0
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        let mut s = self.0.lock();
        let since = s.last.at.elapsed();
        if since < MIN_INTERVAL {
            std::thread::sleep(MIN_INTERVAL - since);
        }
        let end = state(&s.last, &Reading::now(), &other_labs(self.0.pid));
        Conditions {
            thresholds: self.0.thresholds.clone(),
            start: self.0.start.clone(),
            end,
            warnings: std::mem::take(&mut s.warnings),
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the machine and folds it into the open cell. CPU shares are
    /// taken only over stretches long enough to mean something.
    fn observe(&self, s: &mut Shared) {
        let now = Reading::now();
        let long = now.at.duration_since(s.last.at) >= MIN_INTERVAL;
        let labs = other_labs(self.pid);
        let mut seen = state(&s.last, &now, &labs);
        if long {
            s.last = now;
        } else {
            seen.others_cpus = None;
            seen.steal_percent = None;
        }
        log::trace!("machine: {seen:?}");
        self.warn_once(s, &labs, &seen);
        if let Some(cell) = &mut s.cell {
            cell.merge(&CellConditions {
                load_1m_max: seen.load_1m,
                others_cpus_max: seen.others_cpus,
                steal_percent_max: seen.steal_percent,
                cpu_mhz_min: seen.cpu_mhz_min,
                cpu_mhz_max: seen.cpu_mhz_max,
                other_labs: seen.other_labs,
                disturbed_by: Vec::new(),
            });
        }
    }

    /// Warns about a lab that appeared during the run, and the first time
    /// other processes take more CPU than the threshold while a cell is
    /// measured.
    fn warn_once(&self, s: &mut Shared, labs: &[OtherLab], seen: &MachineState) {
        for lab in labs {
            let id = lab.run.to_string();
            if !s.warned_labs.contains(&id) {
                let w = format!("another dplab lab started during the run: {lab}");
                log::warn!("{w}");
                s.warnings.push(w);
                s.warned_labs.push(id);
            }
        }
        let busy = seen
            .others_cpus
            .filter(|&c| s.cell.is_some() && c > self.thresholds.others_cpus);
        if let (Some(cpus), false) = (busy, s.warned_busy) {
            let w = format!(
                "other processes used {cpus:.2} CPUs (above {:.2}, 0.25 x {} CPUs) while a cell was measured: such cells are marked {} in the report",
                self.thresholds.others_cpus,
                self.cpus,
                crate::results::conditions::MARKER
            );
            log::warn!("{w}");
            s.warnings.push(w);
            s.warned_busy = true;
        }
    }
}

fn online_cpus() -> usize {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_gets_what_was_seen_between_its_begin_and_end() {
        let watch = Watch::start();
        assert!(watch.end_cell().is_none(), "no cell was open");
        watch.begin_cell();
        std::thread::sleep(Duration::from_millis(600));
        let cell = watch.end_cell().expect("a cell was open");
        assert!(cell.others_cpus_max.is_some(), "{cell:?}");
        assert!(cell.steal_percent_max.is_some(), "{cell:?}");
        assert!(cell.load_1m_max >= 0.0);
        let conditions = watch.finish();
        assert_eq!(conditions.thresholds, Thresholds::for_cpus(online_cpus()));
        assert!(!conditions.start.at.is_empty() && !conditions.end.at.is_empty());
        assert!(conditions.end.others_cpus.is_some());
    }
}
