//! The multi-node tables: each path per overlay, and vxlan against routed.

use std::fmt::Write as _;

use super::notes::Notes;
use super::INTERVAL_LEGEND;
use crate::results::format::{escape, format_ratio_pair, median_ratio, with_interval};
use crate::results::layout::{
    datapaths_in_order, multi_node_rows, ok_metric, overlays_in_order, path_label, PathKey,
    MULTI_NODE_COLUMNS,
};
use crate::results::Results;

pub(super) fn multi_node_tables(out: &mut String, r: &Results, notes: &Notes, placed: &mut [bool]) {
    let overlays = overlays_in_order(r);
    if overlays.is_empty() {
        return;
    }
    out.push_str("\n## Multi-node: paths per overlay\n\n");
    out.push_str(INTERVAL_LEGEND);
    out.push_str(" `–`: the workload was not run on this path.\n");
    for overlay in &overlays {
        let rows = multi_node_rows(r, overlay);
        let several_datapaths = datapaths_in_order(
            r.cells
                .iter()
                .filter(|c| c.overlay.as_deref() == Some(overlay)),
        )
        .len()
            > 1;
        let _ = writeln!(out, "\n### overlay {overlay}\n");
        let mut head = String::from("| path | placement | target |");
        if several_datapaths {
            head.push_str(" datapath |");
        }
        for (_, _, title) in MULTI_NODE_COLUMNS {
            let _ = write!(head, " {title} |");
        }
        let _ = writeln!(out, "{head}");
        let columns = 3 + usize::from(several_datapaths) + MULTI_NODE_COLUMNS.len();
        let _ = writeln!(out, "|{}", "---|".repeat(columns));
        let mut used = Vec::new();
        for (key, slots) in &rows {
            let _ = write!(
                out,
                "| {} | {} | {} |",
                escape(&path_label(key)),
                key.placement.as_deref().unwrap_or("–"),
                escape(&key.target)
            );
            if several_datapaths {
                let _ = write!(out, " {} |", escape(&key.datapath));
            }
            for (slot, (_, metric, _)) in slots.iter().zip(MULTI_NODE_COLUMNS) {
                let text = match slot {
                    Some(i) => {
                        placed[*i] = true;
                        used.push(*i);
                        notes.slot(r, *i, metric)
                    }
                    None => "–".to_string(),
                };
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        }
        let footnotes = notes.footnotes(&used);
        if !footnotes.is_empty() {
            out.push('\n');
            out.push_str(&footnotes);
        }
    }
    overlay_ratio_table(out, r);
}

/// Cross-node paths measured on both overlays, with vxlan/routed per column.
pub struct OverlayRatio {
    pub path: PathKey,
    /// Per column of `MULTI_NODE_COLUMNS`: (vxlan/routed, significant).
    pub ratios: Vec<Option<(f64, bool)>>,
}

pub fn overlay_ratios(r: &Results, base: &str, other: &str) -> Vec<OverlayRatio> {
    let base_rows = multi_node_rows(r, base);
    let other_rows = multi_node_rows(r, other);
    let mut found = Vec::new();
    for (bk, bslots) in &base_rows {
        if bk.placement.as_deref() != Some("cross-node") {
            continue;
        }
        let Some((_, oslots)) = other_rows.iter().find(|(ok, _)| ok.same_route(bk)) else {
            continue;
        };
        let ratios = MULTI_NODE_COLUMNS
            .iter()
            .enumerate()
            .map(|(col, (_, metric, _))| {
                let a = ok_metric(r, bslots[col], metric)?;
                let b = ok_metric(r, oslots[col], metric)?;
                let ratio = median_ratio(a, b)?;
                Some((ratio, with_interval(a).differs_from(&with_interval(b))))
            })
            .collect();
        found.push(OverlayRatio {
            path: bk.clone(),
            ratios,
        });
    }
    found
}

fn overlay_ratio_table(out: &mut String, r: &Results) {
    let ratios = overlay_ratios(r, "routed", "vxlan");
    if ratios.is_empty() {
        return;
    }
    out.push_str("\n### vxlan / routed, cross-node\n\n");
    out.push_str("Ratio of the medians, vxlan divided by routed. `≈`: within noise.\n\n");
    let mut head = String::from("| path | target | datapath |");
    for (_, _, title) in MULTI_NODE_COLUMNS {
        let _ = write!(head, " {title} |");
    }
    let _ = writeln!(out, "{head}");
    let _ = writeln!(out, "|{}", "---|".repeat(3 + MULTI_NODE_COLUMNS.len()));
    for o in &ratios {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            escape(&path_label(&o.path)),
            escape(&o.path.target),
            escape(&o.path.datapath)
        );
        for ratio in &o.ratios {
            let _ = write!(out, " {} |", format_ratio_pair(*ratio));
        }
        out.push('\n');
    }
}
