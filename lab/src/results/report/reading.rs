//! The "Reading" section: sentences derived from the numbers only
//! (rankings, pod IP against cluster IP, vxlan against routed).

use std::fmt::Write as _;

use super::headline::{Headline, HEADLINES};
use super::multinode::overlay_ratios;
use crate::results::format::{format_number, median_ratio, with_interval};
use crate::results::layout::{ok_metric, path_label, single_node_rows, MULTI_NODE_COLUMNS};
use crate::results::{Metric, Results};

/// A measured value with the name a reader knows it by.
struct Entry<'a> {
    name: String,
    metric: &'a Metric,
}

/// Best first; between neighbours `>` (intervals apart) or `≈` (overlap).
fn ranking(entries: &mut [Entry], h: &Headline) -> String {
    entries.sort_by(|a, b| {
        let o = a.metric.median.total_cmp(&b.metric.median);
        if h.higher_is_better {
            o.reverse()
        } else {
            o
        }
    });
    let mut line = String::new();
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            let prev = with_interval(entries[n - 1].metric);
            let sep = if prev.differs_from(&with_interval(e.metric)) {
                if h.higher_is_better {
                    " > "
                } else {
                    " < "
                }
            } else {
                " ≈ "
            };
            line.push_str(sep);
        }
        let _ = write!(line, "{} {}", e.name, format_number(e.metric.median));
    }
    line
}

pub(super) fn reading(out: &mut String, r: &Results) {
    let mut lines = Vec::new();
    for h in HEADLINES {
        let rows = single_node_rows(r, h.workload);
        if rows.is_empty() {
            continue;
        }
        for (target, title) in [("pod-ip", "pod IP"), ("cluster-ip", "cluster IP")] {
            let mut entries = Vec::new();
            let mut seen = Vec::new();
            for row in &rows {
                let index = if target == "pod-ip" {
                    row.pod
                } else {
                    row.cluster
                };
                if seen.contains(&index) {
                    continue; // a pod IP cell shared by several proxy rows
                }
                seen.push(index);
                if let Some(m) = ok_metric(r, index, h.metric) {
                    let name = match (&row.service_proxy, target) {
                        (Some(p), "cluster-ip") => format!("{} ({p})", row.datapath),
                        _ => row.datapath.clone(),
                    };
                    entries.push(Entry { name, metric: m });
                }
            }
            if entries.is_empty() {
                continue;
            }
            let chain = ranking(&mut entries, h);
            let best = &entries[0];
            let word = if h.higher_is_better {
                "highest"
            } else {
                "lowest"
            };
            let mut line = format!(
                "- **{} {}, {title}** ({}): {word}: {} {}",
                h.workload,
                h.label,
                h.unit,
                best.name,
                format_number(best.metric.median)
            );
            let tied: Vec<&str> = entries[1..]
                .iter()
                .filter(|e| !with_interval(best.metric).differs_from(&with_interval(e.metric)))
                .map(|e| e.name.as_str())
                .collect();
            if entries.len() == 1 {
                line.push_str(" (the only one measured).");
            } else if tied.is_empty() {
                line.push_str(", ahead of every other beyond noise.");
            } else {
                let _ = write!(line, ", within noise of {}.", tied.join(", "));
            }
            if entries.len() > 1 {
                let _ = write!(line, " Ranking: {chain}.");
            }
            lines.push(line);
        }
        let costs: Vec<String> = rows
            .iter()
            .filter_map(|row| {
                let p = ok_metric(r, row.pod, h.metric)?;
                let c = ok_metric(r, row.cluster, h.metric)?;
                let ratio = median_ratio(p, c)?;
                let noise = if with_interval(p).differs_from(&with_interval(c)) {
                    ""
                } else {
                    ", within noise"
                };
                let proxy = row
                    .service_proxy
                    .as_deref()
                    .map(|p| format!(" via {p}"))
                    .unwrap_or_default();
                Some(format!("{}{proxy} {ratio:.2}{noise}", row.datapath))
            })
            .collect();
        if !costs.is_empty() {
            lines.push(format!(
                "- **{} {}, cluster IP / pod IP**: {}.",
                h.workload,
                h.label,
                costs.join("; ")
            ));
        }
    }
    for o in overlay_ratios(r, "routed", "vxlan") {
        let parts: Vec<String> = o
            .ratios
            .iter()
            .zip(MULTI_NODE_COLUMNS)
            .filter_map(|(ratio, (_, _, title))| {
                let (v, significant) = (*ratio)?;
                let noise = if significant { "" } else { ", within noise" };
                Some(format!("{title} {v:.2}{noise}"))
            })
            .collect();
        if !parts.is_empty() {
            lines.push(format!(
                "- **vxlan / routed, cross-node {} ({})**: {}.",
                path_label(&o.path),
                o.path.target,
                parts.join("; ")
            ));
        }
    }
    if lines.is_empty() {
        return;
    }
    out.push_str("\n## Reading\n\n");
    out.push_str(
        "Derived from the numbers above only. In a ranking, `>`/`<` means the 95% intervals \
         of neighbours do not overlap, `≈` that they do (the difference is within noise).\n\n",
    );
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
}
