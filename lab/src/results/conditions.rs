//! How quiet the machine was: results.json's `conditions` (at the start,
//! at the end, per cell the worst seen while it was measured), the rule
//! that marks a cell as disturbed, and the report's lines about it.
//! Numbers measured next to another lab's traffic or a compiler are not
//! the datapath's: the report says so instead of leaving it to luck.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::{Cell, Results};

/// Marks a disturbed cell's value in the report's tables.
pub const MARKER: &str = "‡";

/// Why a cell is marked (results.json `disturbed_by`).
pub const OTHER_LAB: &str = "other-lab";
pub const BUSY: &str = "busy";
pub const STEAL: &str = "steal";

/// results.json `conditions`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Conditions {
    pub thresholds: Thresholds,
    pub start: MachineState,
    pub end: MachineState,
    /// What was warned about on stderr at the start and during the run.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Above these the run warns (at the start) or marks a cell (during it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Thresholds {
    /// 1-minute load average at the start: 0.5 x CPUs.
    pub load_1m: f64,
    /// CPUs' worth of time that other processes used: 0.25 x CPUs.
    pub others_cpus: f64,
    /// Share of CPU time the hypervisor took (steal), percent.
    pub steal_percent: f64,
}

impl Thresholds {
    pub fn for_cpus(cpus: usize) -> Thresholds {
        Thresholds {
            load_1m: 0.5 * cpus as f64,
            others_cpus: 0.25 * cpus as f64,
            steal_percent: 5.0,
        }
    }
}

/// The machine at one moment (CPU shares: over the half second before).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MachineState {
    /// UTC, RFC 3339.
    pub at: String,
    pub load_1m: f64,
    pub load_5m: f64,
    pub load_15m: f64,
    /// CPU time used by processes other than this dplab and its tools, in
    /// CPUs (1.0 = one CPU fully busy); softirq time is not counted.
    pub others_cpus: Option<f64>,
    /// Share of CPU time stolen by the hypervisor, percent.
    pub steal_percent: Option<f64>,
    /// Lowest and highest current frequency over the CPUs (cpufreq);
    /// null where the kernel exposes none, as in most VMs.
    pub cpu_mhz_min: Option<f64>,
    pub cpu_mhz_max: Option<f64>,
    /// Run ids of other dplab labs alive (a dplab process owns them, or
    /// `dplab up` left them running).
    pub other_labs: Vec<String>,
}

/// The worst seen while one cell was measured, over its samples.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CellConditions {
    /// Highest 1-minute load average; includes this run's own workload.
    pub load_1m_max: f64,
    pub others_cpus_max: Option<f64>,
    pub steal_percent_max: Option<f64>,
    pub cpu_mhz_min: Option<f64>,
    pub cpu_mhz_max: Option<f64>,
    pub other_labs: Vec<String>,
    /// Why the cell's numbers may be disturbed: `other-lab`, `busy`,
    /// `steal`; empty when the machine was quiet.
    pub disturbed_by: Vec<String>,
}

impl CellConditions {
    /// Folds in what was seen over one more stretch of the cell.
    pub fn merge(&mut self, other: &CellConditions) {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.load_1m_max = self.load_1m_max.max(other.load_1m_max);
        self.others_cpus_max = max(self.others_cpus_max, other.others_cpus_max);
        self.steal_percent_max = max(self.steal_percent_max, other.steal_percent_max);
        self.cpu_mhz_min = min(self.cpu_mhz_min, other.cpu_mhz_min);
        self.cpu_mhz_max = max(self.cpu_mhz_max, other.cpu_mhz_max);
        union(&mut self.other_labs, &other.other_labs);
        union(&mut self.disturbed_by, &other.disturbed_by);
    }

    /// Sets `disturbed_by` from the numbers.
    pub fn judge(&mut self, t: &Thresholds) {
        let mut why = Vec::new();
        if !self.other_labs.is_empty() {
            why.push(OTHER_LAB.to_string());
        }
        if self.others_cpus_max.is_some_and(|c| c > t.others_cpus) {
            why.push(BUSY.to_string());
        }
        if self.steal_percent_max.is_some_and(|s| s > t.steal_percent) {
            why.push(STEAL.to_string());
        }
        union(&mut self.disturbed_by, &why);
    }
}

fn union(into: &mut Vec<String>, from: &[String]) {
    for s in from {
        if !into.contains(s) {
            into.push(s.clone());
        }
    }
}

/// Why the start was not quiet, one warning each (empty: quiet); `labs`
/// describes the other labs alive.
pub fn start_warnings(
    start: &MachineState,
    labs: &[String],
    t: &Thresholds,
    cpus: usize,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if !labs.is_empty() {
        warnings.push(format!(
            "another dplab lab is running ({}): its traffic and CPU use disturb this run's numbers",
            labs.join("; ")
        ));
    }
    if start.load_1m > t.load_1m {
        warnings.push(format!(
            "the machine is busy: 1-minute load {:.2} is above {:.2} (0.5 x {cpus} CPUs) before this run started",
            start.load_1m, t.load_1m
        ));
    }
    if start.steal_percent.is_some_and(|s| s > t.steal_percent) {
        warnings.push(format!(
            "the hypervisor steals {:.1}% of the CPU time (above {:.0}%)",
            start.steal_percent.unwrap_or(0.0),
            t.steal_percent
        ));
    }
    warnings
}

/// " ‡" after a disturbed cell's value in a table, else nothing.
pub fn marker(cell: &Cell) -> String {
    match &cell.conditions {
        Some(c) if !c.disturbed_by.is_empty() => format!(" {MARKER}"),
        _ => String::new(),
    }
}

/// The report header's rows about the build, the CPU pinning and the
/// machine's conditions (each only when recorded); they continue the
/// header's two-column table.
pub fn header_rows(out: &mut String, r: &Results) {
    if let Some(commit) = &r.dplab_commit {
        let _ = writeln!(out, "| dplab commit | {} |", escape(commit));
    }
    if let Some(cpus) = &r.settings.cpus {
        let _ = writeln!(out, "| CPU pinning | {cpus} |");
    }
    let Some(c) = &r.conditions else {
        return;
    };
    let _ = writeln!(out, "| Machine at start | {} |", state(&c.start));
    let _ = writeln!(out, "| Machine at end | {} |", state(&c.end));
    for w in &c.warnings {
        let _ = writeln!(out, "| Warning | {} |", escape(w));
    }
    let marked = r
        .cells
        .iter()
        .filter(|cell| !marker(cell).is_empty())
        .count();
    let t = &c.thresholds;
    let rule = format!(
        "another dplab lab was alive, other processes used more than {:.2} CPUs, or the hypervisor stole more than {:.0}% of the CPU time",
        t.others_cpus, t.steal_percent
    );
    if marked > 0 {
        let _ = writeln!(
            out,
            "| {MARKER} | {marked} of {} cells were measured while {rule}: their numbers may be off |",
            r.cells.len()
        );
    } else {
        let _ = writeln!(
            out,
            "| Disturbed cells | none: no cell was measured while {rule} |"
        );
    }
}

fn state(s: &MachineState) -> String {
    let opt = |v: Option<f64>, unit: &str| {
        v.map(|v| format!("{v:.2}{unit}"))
            .unwrap_or_else(|| "n/a".to_string())
    };
    let mhz = match (s.cpu_mhz_min, s.cpu_mhz_max) {
        (Some(lo), Some(hi)) => format!("{lo:.0}–{hi:.0} MHz"),
        _ => "n/a".to_string(),
    };
    let labs = if s.other_labs.is_empty() {
        "none".to_string()
    } else {
        s.other_labs.join(", ")
    };
    format!(
        "{}: load {:.2} / {:.2} / {:.2} (1 / 5 / 15 min), others' CPU {}, steal {}, CPU frequency {mhz}, other dplab labs {labs}",
        s.at,
        s.load_1m,
        s.load_5m,
        s.load_15m,
        opt(s.others_cpus, ""),
        opt(s.steal_percent, "%"),
    )
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_marked_for_another_lab_for_others_cpu_and_for_steal() {
        let t = Thresholds::for_cpus(2);
        let judged = |c: CellConditions| {
            let mut c = c;
            c.judge(&t);
            c.disturbed_by
        };
        assert!(judged(CellConditions {
            others_cpus_max: Some(0.4),
            steal_percent_max: Some(1.0),
            ..Default::default()
        })
        .is_empty());
        assert_eq!(
            judged(CellConditions {
                other_labs: vec!["3f9a".into()],
                others_cpus_max: Some(0.6),
                steal_percent_max: Some(9.0),
                ..Default::default()
            }),
            [OTHER_LAB, BUSY, STEAL]
        );
    }

    #[test]
    fn merging_keeps_the_worst() {
        let mut a = CellConditions {
            load_1m_max: 1.0,
            others_cpus_max: Some(0.2),
            cpu_mhz_min: Some(2000.0),
            cpu_mhz_max: Some(2100.0),
            ..Default::default()
        };
        a.merge(&CellConditions {
            load_1m_max: 0.5,
            others_cpus_max: Some(0.9),
            steal_percent_max: Some(3.0),
            cpu_mhz_min: Some(1800.0),
            cpu_mhz_max: Some(2000.0),
            other_labs: vec!["1e64".into()],
            disturbed_by: vec![BUSY.into()],
        });
        assert_eq!(a.load_1m_max, 1.0);
        assert_eq!(a.others_cpus_max, Some(0.9));
        assert_eq!(a.steal_percent_max, Some(3.0));
        assert_eq!((a.cpu_mhz_min, a.cpu_mhz_max), (Some(1800.0), Some(2100.0)));
        assert_eq!(a.other_labs, ["1e64"]);
        assert_eq!(a.disturbed_by, [BUSY]);
    }

    #[test]
    fn start_warnings_name_the_lab_and_the_threshold() {
        let t = Thresholds::for_cpus(2);
        let start = MachineState {
            load_1m: 1.5,
            ..Default::default()
        };
        let w = start_warnings(&start, &["1e64 (dplab process 7)".into()], &t, 2);
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("1e64"));
        assert!(w[1].contains("above 1.00 (0.5 x 2 CPUs)"), "{}", w[1]);
        let quiet = MachineState {
            load_1m: 0.2,
            ..Default::default()
        };
        assert!(start_warnings(&quiet, &[], &t, 2).is_empty());
    }
}
