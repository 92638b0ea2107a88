//! The "Reading" section: sentences derived from the numbers only
//! (rankings, services against pod IP per proxy, vxlan against routed).

mod proxy;
mod rank;

use super::headline::{Headline, HEADLINES};
use super::multinode::overlay_ratios;
use crate::results::layout::{
    ok_metric, path_label, several_proxies_per_datapath, single_node_table, SingleNodeTable,
    MULTI_NODE_COLUMNS,
};
use crate::results::Results;
use rank::{ranking_line, Entry};

pub(super) fn reading(out: &mut String, r: &Results) {
    let per_proxy = several_proxies_per_datapath(r);
    let mut lines = Vec::new();
    for h in HEADLINES {
        let Some(table) = single_node_table(r, h.workload) else {
            continue;
        };
        let pods = table
            .rows
            .iter()
            .filter_map(|row| {
                Some(Entry::new(
                    row.datapath.clone(),
                    ok_metric(r, row.pod, h.metric)?,
                ))
            })
            .collect();
        lines.extend(ranking_line(pods, h, "pod IP"));
        for target in table.targets() {
            if per_proxy {
                lines.extend(proxy::proxy_rankings(r, h, &table, target));
                lines.extend(proxy::best_proxy_lines(r, h, &table, target));
            } else {
                lines.extend(service_ranking(r, h, &table, target));
            }
        }
        if !per_proxy {
            for target in table.targets() {
                lines.extend(proxy::cost_line(r, h, &table, target));
            }
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

/// Every datapath's service value for `target`, ranked; the proxy named
/// next to each datapath.
fn service_ranking(
    r: &Results,
    h: &Headline,
    table: &SingleNodeTable,
    target: &str,
) -> Option<String> {
    let mut entries = Vec::new();
    let mut title = target;
    for row in &table.rows {
        for (col, cell) in table.services_for(row, target) {
            title = col.target_title();
            if let Some(m) = ok_metric(r, Some(cell), h.metric) {
                let name = match &col.proxy {
                    Some(p) => format!("{} ({p})", row.datapath),
                    None => row.datapath.clone(),
                };
                entries.push(Entry::new(name, m));
            }
        }
    }
    ranking_line(entries, h, title)
}
