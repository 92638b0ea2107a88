//! Footnotes for the cells that are not ok, and the section that lists
//! them with every cell they stand for.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::results::format::{escape, format_metric, status_word};
use crate::results::{Cell, CellStatus, Results};

/// Footnotes for the cells that are not ok: one number per distinct
/// (status, reason), so that a datapath the kernel lacks is one note, not
/// one per cell.
pub(super) struct Notes {
    /// Per cell: its note number (1-based), if it is not ok.
    pub(super) number: Vec<Option<usize>>,
    /// Per note number - 1: the status and reason it stands for.
    pub(super) notes: Vec<(CellStatus, String)>,
}

impl Notes {
    pub(super) fn new(results: &Results) -> Notes {
        let mut notes: Vec<(CellStatus, String)> = Vec::new();
        let number = results
            .cells
            .iter()
            .map(|c| {
                if c.status == CellStatus::Ok {
                    return None;
                }
                let note = (c.status, reason_of(c).to_string());
                let at = notes.iter().position(|n| *n == note).unwrap_or_else(|| {
                    notes.push(note);
                    notes.len() - 1
                });
                Some(at + 1)
            })
            .collect();
        Notes { number, notes }
    }

    /// What a table slot shows for cell `index` and `metric`.
    pub(super) fn slot(&self, results: &Results, index: usize, metric: &str) -> String {
        let cell = &results.cells[index];
        let value = match (cell.status, self.number[index]) {
            (CellStatus::Ok, _) | (_, None) => cell
                .metrics
                .get(metric)
                .map(format_metric)
                .unwrap_or_else(|| "n/a".to_string()),
            (status, Some(n)) => format!("{} [{n}]", status_word(status)),
        };
        value + &crate::results::conditions::marker(cell)
    }

    /// The footnote lines for the notes of the cells among `indices`.
    pub(super) fn footnotes(&self, indices: &[usize]) -> String {
        let used: BTreeSet<usize> = indices.iter().filter_map(|&i| self.number[i]).collect();
        let mut out = String::new();
        for n in used {
            let (status, reason) = &self.notes[n - 1];
            let _ = writeln!(out, "[{n}] {}: {}  ", status_word(*status), escape(reason));
        }
        out
    }
}

fn reason_of(cell: &Cell) -> &str {
    cell.reason.as_deref().unwrap_or("no reason recorded")
}

pub(super) fn skipped_and_failed(out: &mut String, r: &Results, notes: &Notes) {
    // Unreachable is named only when there is some: older runs cannot have it.
    if r.cells.iter().any(|c| c.status == CellStatus::Unreachable) {
        out.push_str("\n## Skipped, unreachable and failed\n\n");
    } else {
        out.push_str("\n## Skipped and failed\n\n");
    }
    if notes.notes.is_empty() {
        out.push_str("None: every cell ran.\n");
        return;
    }
    for (at, (status, reason)) in notes.notes.iter().enumerate() {
        let n = at + 1;
        let _ = writeln!(out, "{n}. **{}**: {}", status_word(*status), escape(reason));
        for (i, c) in r.cells.iter().enumerate() {
            if notes.number[i] == Some(n) {
                let _ = writeln!(out, "   - `{}`", c.key());
            }
        }
    }
}
