//! The single-node tables: per datapath, pod IP against the services
//! (cluster IP, node port) through their proxies. Two shapes: with one
//! proxy per datapath, a `service proxy` column keeps the table narrow
//! (and as it was before proxies were an axis); when a datapath was
//! measured through several proxies, one column per proxy and one table
//! per service target, so that proxies compare along a row.

use std::fmt::Write as _;

use super::headline::{Headline, HEADLINES};
use super::notes::Notes;
use super::INTERVAL_LEGEND;
use crate::results::format::{escape, format_ratio};
use crate::results::layout::{
    ok_metric, several_proxies_per_datapath, single_node_table, target_title, SingleNodeTable,
};
use crate::results::Results;

/// What the tables of one headline render from.
struct Ctx<'a> {
    r: &'a Results,
    notes: &'a Notes,
    h: &'a Headline,
}

impl Ctx<'_> {
    fn slot(&self, i: Option<usize>) -> String {
        match i {
            Some(i) => self.notes.slot(self.r, i, self.h.metric),
            None => "–".to_string(),
        }
    }

    /// Service over pod IP: `0.96`, `0.96 ≈` within noise, `n/a` when pod
    /// IP's median is 0; `None` when either has no value.
    fn ratio(&self, pod: Option<usize>, service: Option<usize>) -> Option<String> {
        let p = ok_metric(self.r, pod, self.h.metric)?;
        let s = ok_metric(self.r, service, self.h.metric)?;
        Some(format_ratio(p, s))
    }
}

pub(super) fn single_node_tables(
    out: &mut String,
    r: &Results,
    notes: &Notes,
    placed: &mut [bool],
) {
    if !r.cells.iter().any(|c| c.overlay.is_none()) {
        return;
    }
    let has_node_port = r
        .cells
        .iter()
        .any(|c| c.overlay.is_none() && c.target == "node-port");
    let per_proxy = several_proxies_per_datapath(r);
    if has_node_port {
        out.push_str("\n## Single node: pod IP, cluster IP and node port per datapath\n\n");
    } else {
        out.push_str("\n## Single node: pod IP and cluster IP per datapath\n\n");
    }
    out.push_str(INTERVAL_LEGEND);
    if per_proxy {
        out.push_str(
            " `×0.96`: the median relative to pod IP on the same datapath \
             (`≈`: within noise of pod IP).",
        );
    }
    out.push('\n');
    for h in HEADLINES {
        let Some(table) = single_node_table(r, h.workload) else {
            continue;
        };
        let better = if h.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let _ = writeln!(
            out,
            "\n### {}: {} ({}, {better})",
            h.workload, h.label, h.unit
        );
        let ctx = Ctx { r, notes, h };
        let mut used = Vec::new();
        if per_proxy {
            per_proxy_tables(out, &ctx, &table, &mut used);
        } else {
            one_table(out, &ctx, &table, &mut used);
        }
        for &i in &used {
            placed[i] = true;
        }
        let footnotes = notes.footnotes(&used);
        if !footnotes.is_empty() {
            out.push('\n');
            out.push_str(&footnotes);
        }
    }
}

/// One proxy per datapath: `| datapath | pod IP | cluster IP | [node port |]
/// service proxy | cluster/pod | [node port/pod |]`; without service cells
/// only `| datapath | pod IP |`.
fn one_table(out: &mut String, ctx: &Ctx, table: &SingleNodeTable, used: &mut Vec<usize>) {
    let targets = table.targets();
    let mut head = String::from("\n| datapath | pod IP |");
    for t in &targets {
        let _ = write!(head, " {} |", target_title(t));
    }
    // Without any service cell a proxy column would say nothing.
    if !targets.is_empty() {
        head.push_str(" service proxy |");
    }
    for t in &targets {
        // `cluster/pod` as the blog table has always called it.
        let short = if *t == "cluster-ip" {
            "cluster"
        } else {
            target_title(t)
        };
        let _ = write!(head, " {short}/pod |");
    }
    let _ = writeln!(out, "{head}");
    let proxy_column = usize::from(!targets.is_empty());
    let _ = writeln!(
        out,
        "|{}",
        "---|".repeat(2 + proxy_column + 2 * targets.len())
    );
    for row in &table.rows {
        let cell_for = |t: &str| table.services_for(row, t).next().map(|(_, i)| i);
        let _ = write!(out, "| {} | {} |", escape(&row.datapath), ctx.slot(row.pod));
        for t in &targets {
            let _ = write!(out, " {} |", ctx.slot(cell_for(t)));
        }
        if !targets.is_empty() {
            let proxy = table
                .services_of(row)
                .find_map(|(col, _)| col.proxy.as_deref())
                .unwrap_or("–");
            let _ = write!(out, " {} |", escape(proxy));
        }
        for t in &targets {
            let ratio = ctx.ratio(row.pod, cell_for(t));
            let _ = write!(out, " {} |", ratio.as_deref().unwrap_or("–"));
        }
        out.push('\n');
        used.extend(row.pod);
        used.extend(table.services_of(row).map(|(_, i)| i));
    }
}

/// Several proxies: per service target, `| datapath | pod IP | cluster IP
/// (iptables) | cluster IP (ebpf) | ...` with each value's ratio to pod IP.
fn per_proxy_tables(out: &mut String, ctx: &Ctx, table: &SingleNodeTable, used: &mut Vec<usize>) {
    for target in table.targets() {
        let columns: Vec<usize> = (0..table.columns.len())
            .filter(|&c| table.columns[c].target == target)
            .collect();
        let mut head = String::from("\n| datapath | pod IP |");
        for &c in &columns {
            let _ = write!(head, " {} |", escape(&table.columns[c].title()));
        }
        let _ = writeln!(out, "{head}");
        let _ = writeln!(out, "|{}", "---|".repeat(2 + columns.len()));
        for row in &table.rows {
            let _ = write!(out, "| {} | {} |", escape(&row.datapath), ctx.slot(row.pod));
            for &c in &columns {
                let cell = row.services[c];
                let mut text = ctx.slot(cell);
                match ctx.ratio(row.pod, cell) {
                    Some(ratio) if ratio != "n/a" => {
                        let _ = write!(text, " ×{ratio}");
                    }
                    _ => {}
                }
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
            used.extend(row.pod);
            used.extend(columns.iter().filter_map(|&c| row.services[c]));
        }
    }
}
