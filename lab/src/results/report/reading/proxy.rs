//! Reading lines about services. One proxy per datapath: what the service
//! costs against pod IP. Several: per proxy the datapaths ranked, and per
//! datapath which proxy comes closest to pod IP.

use std::fmt::Write as _;

use super::rank::{apart, ranking, ranking_line, Entry};
use crate::results::format::{median_ratio, status_word};
use crate::results::layout::{ok_metric, ServiceColumn, SingleNodeTable};
use crate::results::report::Headline;
use crate::results::{Metric, Results};

/// `0.96, within noise` (of pod IP), or `None` when either has no value.
fn ratio_to_pod(r: &Results, h: &Headline, pod: Option<usize>, cell: usize) -> Option<String> {
    let p = ok_metric(r, pod, h.metric)?;
    let s = ok_metric(r, Some(cell), h.metric)?;
    let ratio = median_ratio(p, s)?;
    let noise = if apart(p, s) { "" } else { ", within noise" };
    Some(format!("{ratio:.2}{noise}"))
}

/// One proxy per datapath: `- **tcp-stream throughput, cluster IP / pod
/// IP**: bridge via iptables 0.95, within noise; veth-ebpf via ebpf 1.00.`
pub(super) fn cost_line(
    r: &Results,
    h: &Headline,
    table: &SingleNodeTable,
    target: &str,
) -> Option<String> {
    let mut title = target;
    let mut parts = Vec::new();
    for row in &table.rows {
        for (col, cell) in table.services_for(row, target) {
            title = col.target_title();
            let Some(ratio) = ratio_to_pod(r, h, row.pod, cell) else {
                continue;
            };
            let via = col
                .proxy
                .as_deref()
                .map(|p| format!(" via {p}"))
                .unwrap_or_default();
            parts.push(format!("{}{via} {ratio}", row.datapath));
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "- **{} {}, {title} / pod IP**: {}.",
        h.workload,
        h.label,
        parts.join("; ")
    ))
}

/// Several proxies: per proxy, the datapaths ranked by the service's value,
/// each with its ratio to pod IP.
pub(super) fn proxy_rankings(
    r: &Results,
    h: &Headline,
    table: &SingleNodeTable,
    target: &str,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (c, col) in table.columns.iter().enumerate() {
        if col.target != target {
            continue;
        }
        let entries = table
            .rows
            .iter()
            .filter_map(|row| {
                let m = ok_metric(r, row.services[c], h.metric)?;
                let mut entry = Entry::new(row.datapath.clone(), m);
                entry.note = times_pod(r, h, row.pod, m);
                Some(entry)
            })
            .collect();
        lines.extend(ranking_line(entries, h, &col.title()));
    }
    lines
}

/// ` ×0.96` of pod IP, or nothing when pod IP has no value.
fn times_pod(r: &Results, h: &Headline, pod: Option<usize>, m: &Metric) -> String {
    ok_metric(r, pod, h.metric)
        .and_then(|p| median_ratio(p, m))
        .map(|v| format!(" ×{v:.2}"))
        .unwrap_or_default()
}

/// Per datapath measured through several proxies: which proxy keeps the
/// service closest to pod IP (the best value; its ratio says how close),
/// and the others in order.
pub(super) fn best_proxy_lines(
    r: &Results,
    h: &Headline,
    table: &SingleNodeTable,
    target: &str,
) -> Vec<String> {
    let mut lines = Vec::new();
    for row in &table.rows {
        let cells: Vec<(&ServiceColumn, usize)> = table.services_for(row, target).collect();
        if cells.len() < 2 {
            continue;
        }
        let pod = ok_metric(r, row.pod, h.metric);
        let mut entries = Vec::new();
        let mut missing = Vec::new();
        for (col, cell) in &cells {
            let name = col.proxy.clone().unwrap_or_else(|| "no proxy".into());
            match ok_metric(r, Some(*cell), h.metric) {
                Some(m) => {
                    let mut entry = Entry::new(name, m);
                    entry.note = times_pod(r, h, row.pod, m);
                    entries.push(entry);
                }
                None => missing.push(format!("{name} {}", status_word(r.cells[*cell].status))),
            }
        }
        // The table already says that nothing ran here.
        if entries.is_empty() {
            continue;
        }
        let title = cells[0].0.target_title();
        let mut line = format!(
            "- **{} {}, {title} on {}**: ",
            h.workload, h.label, row.datapath
        );
        let chain = ranking(&mut entries, h);
        let best = &entries[0];
        match pod.and_then(|p| Some((p, median_ratio(p, best.metric)?))) {
            Some((p, ratio)) => {
                let noise = match (apart(p, best.metric), ratio < 1.0) {
                    (false, _) => "within noise of pod IP",
                    (true, true) => "below pod IP beyond noise",
                    (true, false) => "above pod IP beyond noise",
                };
                let _ = write!(
                    line,
                    "best through {}, ×{ratio:.2} of pod IP ({noise})",
                    best.name
                );
            }
            None => {
                let _ = write!(line, "best through {} (no pod IP value)", best.name);
            }
        }
        if entries.len() > 1 {
            let _ = write!(line, ". By proxy: {chain}");
        }
        if !missing.is_empty() {
            let _ = write!(line, ". Not measured: {}", missing.join(", "));
        }
        line.push('.');
        lines.push(line);
    }
    lines
}
