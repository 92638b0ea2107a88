//! Per-cell detail after the main tables: cells no table has a slot for,
//! CPU cost, proof-of-path counters and dplab's own benchmarks.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::notes::Notes;
use crate::results::format::{escape, format_metric, format_number, status_word};
use crate::results::{Cell, Results};

/// CPU cost metrics, shown when any cell carries them.
const CPU_METRICS: &[(&str, &str)] = &[
    ("cpu_client_percent", "client CPU %"),
    ("cpu_server_percent", "server CPU %"),
    ("cpu_s_per_gb", "CPU s/GB"),
];

/// A short list of a cell's metrics: `rtt_ms 0.045 (0.044–0.046)`.
fn metric_list(cell: &Cell) -> String {
    if cell.metrics.is_empty() {
        return "–".to_string();
    }
    cell.metrics
        .iter()
        .map(|(k, m)| format!("{k} {}", format_metric(m)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Cells that fit no table slot, so that none goes missing.
pub(super) fn other_cells(out: &mut String, r: &Results, notes: &Notes, placed: &[bool]) {
    let rest: Vec<usize> = (0..r.cells.len()).filter(|&i| !placed[i]).collect();
    if rest.is_empty() {
        return;
    }
    out.push_str("\n## Other cells\n\nCells that fit none of the tables above.\n\n");
    out.push_str("| cell | service proxy | status | metrics |\n|---|---|---|---|\n");
    for &i in &rest {
        let c = &r.cells[i];
        let status = match notes.number[i] {
            Some(n) => format!("{} [{n}]", status_word(c.status)),
            None => status_word(c.status).to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            escape(&c.key()),
            c.service_proxy.as_deref().unwrap_or("–"),
            status,
            escape(&metric_list(c))
        );
    }
}

pub(super) fn cpu_cost(out: &mut String, r: &Results) {
    let has_cpu = |c: &Cell| CPU_METRICS.iter().any(|(m, _)| c.metrics.contains_key(*m));
    let cells: Vec<&Cell> = r.cells.iter().filter(|c| has_cpu(c)).collect();
    if cells.is_empty() {
        return;
    }
    out.push_str("\n## CPU cost\n\n");
    out.push_str("| cell |");
    for (_, title) in CPU_METRICS {
        let _ = write!(out, " {title} |");
    }
    let _ = writeln!(out, "\n|{}", "---|".repeat(1 + CPU_METRICS.len()));
    for c in cells {
        let _ = write!(out, "| `{}` |", escape(&c.key()));
        for (m, _) in CPU_METRICS {
            let v = c
                .metrics
                .get(*m)
                .map(format_metric)
                .unwrap_or_else(|| "–".to_string());
            let _ = write!(out, " {v} |");
        }
        out.push('\n');
    }
}

pub(super) fn proof_of_path(out: &mut String, r: &Results) {
    let keys: BTreeSet<&str> = r
        .cells
        .iter()
        .flat_map(|c| c.proof.keys().map(String::as_str))
        .collect();
    out.push_str("\n## Proof of path\n\n");
    if keys.is_empty() {
        out.push_str("No cell recorded proof counters.\n");
        return;
    }
    out.push_str(
        "Counters read before and after each measurement (their difference): \
         which rules and programs the packets went through. `–`: not recorded.\n\n",
    );
    out.push_str("| cell | status |");
    for k in &keys {
        let _ = write!(out, " {k} |");
    }
    let _ = writeln!(out, "\n|{}", "---|".repeat(2 + keys.len()));
    for c in &r.cells {
        let _ = write!(
            out,
            "| `{}` | {} |",
            escape(&c.key()),
            status_word(c.status)
        );
        for k in &keys {
            match c.proof.get(*k) {
                Some(v) => {
                    let _ = write!(out, " {v} |");
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
}

pub(super) fn benchmarks(out: &mut String, r: &Results) {
    if r.benchmarks.is_empty() {
        return;
    }
    out.push_str("\n## Benchmarks of dplab itself\n\n| benchmark | value |\n|---|---|\n");
    for (name, value) in &r.benchmarks {
        let _ = writeln!(out, "| {} | {} |", escape(name), format_number(*value));
    }
}
