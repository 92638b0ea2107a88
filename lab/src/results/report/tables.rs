//! The single-node tables: per datapath, pod IP against cluster IP.

use std::fmt::Write as _;

use super::headline::HEADLINES;
use super::notes::Notes;
use super::INTERVAL_LEGEND;
use crate::results::format::{escape, format_ratio};
use crate::results::layout::{ok_metric, single_node_rows};
use crate::results::Results;

pub(super) fn single_node_tables(
    out: &mut String,
    r: &Results,
    notes: &Notes,
    placed: &mut [bool],
) {
    if !r.cells.iter().any(|c| c.overlay.is_none()) {
        return;
    }
    out.push_str("\n## Single node: pod IP and cluster IP per datapath\n\n");
    out.push_str(INTERVAL_LEGEND);
    out.push('\n');
    for h in HEADLINES {
        let rows = single_node_rows(r, h.workload);
        if rows.is_empty() {
            continue;
        }
        let better = if h.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let _ = writeln!(
            out,
            "\n### {}: {} ({}, {better})\n",
            h.workload, h.label, h.unit
        );
        out.push_str("| datapath | pod IP | cluster IP | service proxy | cluster/pod |\n");
        out.push_str("|---|---|---|---|---|\n");
        let mut used = Vec::new();
        for row in &rows {
            let slot = |i: Option<usize>| match i {
                Some(i) => notes.slot(r, i, h.metric),
                None => "–".to_string(),
            };
            let ratio = match (
                ok_metric(r, row.pod, h.metric),
                ok_metric(r, row.cluster, h.metric),
            ) {
                (Some(p), Some(c)) => format_ratio(p, c),
                _ => "–".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                escape(&row.datapath),
                slot(row.pod),
                slot(row.cluster),
                row.service_proxy.as_deref().unwrap_or("–"),
                ratio
            );
            for i in [row.pod, row.cluster].into_iter().flatten() {
                placed[i] = true;
                used.push(i);
            }
        }
        let footnotes = notes.footnotes(&used);
        if !footnotes.is_empty() {
            out.push('\n');
            out.push_str(&footnotes);
        }
    }
}
