//! Single-node tables: one row per datapath, a pod IP column, and one
//! column per service target and proxy (cluster IP through iptables,
//! cluster IP through ebpf, node port through iptables, ...).

use super::datapaths_in_order;
use crate::results::{Cell, Results};

/// The targets a service proxy serves, in column order, with their titles.
pub const SERVICE_TARGETS: &[(&str, &str)] =
    &[("cluster-ip", "cluster IP"), ("node-port", "node port")];

/// How a service target reads in titles: `cluster IP`, `node port`.
pub fn target_title(target: &str) -> &str {
    SERVICE_TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .map_or(target, |(_, title)| *title)
}

/// A service column: one target reached through one proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceColumn {
    pub target: String,
    pub proxy: Option<String>,
}

impl ServiceColumn {
    /// `cluster IP` or `node port`.
    pub fn target_title(&self) -> &str {
        target_title(&self.target)
    }

    /// `cluster IP (iptables)`; the target alone when no proxy is named.
    pub fn title(&self) -> String {
        match &self.proxy {
            Some(p) => format!("{} ({p})", self.target_title()),
            None => self.target_title().to_string(),
        }
    }

    fn holds(&self, c: &Cell) -> bool {
        c.target == self.target && c.service_proxy == self.proxy
    }
}

/// One row: a datapath with its pod IP cell and its service cells.
#[derive(Debug, Clone)]
pub struct SingleNodeRow {
    pub datapath: String,
    pub pod: Option<usize>,
    /// Per column of the table: the cell measured for it, if any.
    pub services: Vec<Option<usize>>,
}

/// The single-node table of one workload.
#[derive(Debug, Clone)]
pub struct SingleNodeTable {
    pub columns: Vec<ServiceColumn>,
    pub rows: Vec<SingleNodeRow>,
}

impl SingleNodeTable {
    /// The service cells of `row` with their columns, in column order.
    pub fn services_of<'a>(
        &'a self,
        row: &'a SingleNodeRow,
    ) -> impl Iterator<Item = (&'a ServiceColumn, usize)> + 'a {
        self.columns
            .iter()
            .zip(&row.services)
            .filter_map(|(col, cell)| Some((col, (*cell)?)))
    }

    /// The service cells of `row` for one target.
    pub fn services_for<'a>(
        &'a self,
        row: &'a SingleNodeRow,
        target: &'a str,
    ) -> impl Iterator<Item = (&'a ServiceColumn, usize)> + 'a {
        self.services_of(row)
            .filter(move |(c, _)| c.target == target)
    }

    /// The service targets that have a column, in column order.
    pub fn targets(&self) -> Vec<&'static str> {
        SERVICE_TARGETS
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| self.columns.iter().any(|c| c.target == *t))
            .collect()
    }
}

fn single_node_service(c: &Cell) -> bool {
    c.overlay.is_none() && SERVICE_TARGETS.iter().any(|(t, _)| *t == c.target)
}

/// Service proxies in the order the run first used them on a single node,
/// so that columns and colours are the same in every table and chart.
pub fn proxies_in_order(r: &Results) -> Vec<Option<String>> {
    let mut seen = Vec::new();
    for c in r.cells.iter().filter(|c| single_node_service(c)) {
        if !seen.contains(&c.service_proxy) {
            seen.push(c.service_proxy.clone());
        }
    }
    seen
}

/// Whether some datapath was measured through more than one service proxy
/// (proxies are then an axis of the run, not a property of the datapath).
pub fn several_proxies_per_datapath(r: &Results) -> bool {
    let cells: Vec<&Cell> = r.cells.iter().filter(|c| single_node_service(c)).collect();
    cells.iter().any(|a| {
        cells
            .iter()
            .any(|b| a.datapath == b.datapath && a.service_proxy != b.service_proxy)
    })
}

/// The single-node table for `workload`, `None` when the run has no pod IP
/// or service cell for it. Cells that fit no slot (a second cell for the
/// same slot, other targets) are left out here and end up under "Other
/// cells".
pub fn single_node_table(r: &Results, workload: &str) -> Option<SingleNodeTable> {
    let mine: Vec<usize> = (0..r.cells.len())
        .filter(|&i| {
            let c = &r.cells[i];
            c.workload == workload
                && c.overlay.is_none()
                && (c.target == "pod-ip" || single_node_service(c))
        })
        .collect();
    if mine.is_empty() {
        return None;
    }
    let proxies = proxies_in_order(r);
    let columns: Vec<ServiceColumn> = SERVICE_TARGETS
        .iter()
        .flat_map(|(target, _)| {
            proxies.iter().map(|proxy| ServiceColumn {
                target: target.to_string(),
                proxy: proxy.clone(),
            })
        })
        .filter(|col| mine.iter().any(|&i| col.holds(&r.cells[i])))
        .collect();
    let rows = datapaths_in_order(mine.iter().map(|&i| &r.cells[i]))
        .into_iter()
        .map(|dp| {
            let first = |fits: &dyn Fn(&Cell) -> bool| {
                mine.iter()
                    .copied()
                    .find(|&i| r.cells[i].datapath == dp && fits(&r.cells[i]))
            };
            SingleNodeRow {
                pod: first(&|c| c.target == "pod-ip"),
                services: columns.iter().map(|col| first(&|c| col.holds(c))).collect(),
                datapath: dp,
            }
        })
        .collect();
    Some(SingleNodeTable { columns, rows })
}
