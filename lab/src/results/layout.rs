//! Which cell sits in which table slot: the rows of the single-node and
//! multi-node tables, shared by report.md and the charts.

use super::{Cell, CellStatus, Metric, Results};

/// The columns of the multi-node tables: (workload, metric, column title).
pub const MULTI_NODE_COLUMNS: &[(&str, &str, &str)] = &[
    ("ping", "rtt_ms", "RTT ms"),
    ("tcp-stream", "throughput_gbps", "bandwidth Gbit/s"),
    ("tcp-rr", "latency_us_p50", "latency µs (p50)"),
    ("http", "requests_per_s", "requests/s"),
];

/// Datapaths in the order the run first measured them.
pub fn datapaths_in_order<'a>(cells: impl Iterator<Item = &'a Cell>) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    for c in cells {
        if !seen.contains(&c.datapath) {
            seen.push(c.datapath.clone());
        }
    }
    seen
}

/// One row of a single-node table: a datapath, with its pod IP cell and one
/// of its cluster IP cells (one row per service proxy).
#[derive(Debug, Clone)]
pub struct SingleNodeRow {
    pub datapath: String,
    pub service_proxy: Option<String>,
    pub pod: Option<usize>,
    pub cluster: Option<usize>,
}

/// The rows of the single-node table for `workload`; cells that do not fit
/// a slot (a second cell for the same slot, other targets) are left out
/// here and end up under "Other cells".
pub fn single_node_rows(r: &Results, workload: &str) -> Vec<SingleNodeRow> {
    let of_workload: Vec<usize> = (0..r.cells.len())
        .filter(|&i| r.cells[i].overlay.is_none() && r.cells[i].workload == workload)
        .collect();
    let mut rows = Vec::new();
    for dp in datapaths_in_order(of_workload.iter().map(|&i| &r.cells[i])) {
        let mine = |target: &str| -> Vec<usize> {
            of_workload
                .iter()
                .copied()
                .filter(|&i| r.cells[i].datapath == dp && r.cells[i].target == target)
                .collect()
        };
        let pod = mine("pod-ip").first().copied();
        let mut proxies: Vec<(Option<String>, usize)> = Vec::new();
        for i in mine("cluster-ip") {
            let proxy = r.cells[i].service_proxy.clone();
            if !proxies.iter().any(|(p, _)| *p == proxy) {
                proxies.push((proxy, i));
            }
        }
        if proxies.is_empty() {
            rows.push(SingleNodeRow {
                datapath: dp.clone(),
                service_proxy: None,
                pod,
                cluster: None,
            });
        }
        for (proxy, i) in proxies {
            rows.push(SingleNodeRow {
                datapath: dp.clone(),
                service_proxy: proxy,
                pod,
                cluster: Some(i),
            });
        }
    }
    rows
}

pub fn ok_metric<'a>(r: &'a Results, index: Option<usize>, metric: &str) -> Option<&'a Metric> {
    let cell = &r.cells[index?];
    if cell.status != CellStatus::Ok {
        return None;
    }
    cell.metrics.get(metric)
}

/// One row of a multi-node table: a path through one overlay.
#[derive(Debug, Clone, PartialEq)]
pub struct PathKey {
    pub datapath: String,
    pub client: String,
    pub server: String,
    pub target: String,
    pub placement: Option<String>,
}

impl PathKey {
    fn of(c: &Cell) -> PathKey {
        PathKey {
            datapath: c.datapath.clone(),
            client: c.client.clone(),
            server: c.server.clone(),
            target: c.target.clone(),
            placement: c.placement.clone(),
        }
    }

    /// Same endpoints and target, whatever the datapath or overlay.
    pub fn same_route(&self, other: &PathKey) -> bool {
        self.client == other.client
            && self.server == other.server
            && self.target == other.target
            && self.placement == other.placement
    }
}

/// Rows of one overlay's table: each path with its cell per column of
/// `MULTI_NODE_COLUMNS`.
pub fn multi_node_rows(r: &Results, overlay: &str) -> Vec<(PathKey, Vec<Option<usize>>)> {
    let mut rows: Vec<(PathKey, Vec<Option<usize>>)> = Vec::new();
    for (i, c) in r.cells.iter().enumerate() {
        if c.overlay.as_deref() != Some(overlay) {
            continue;
        }
        let Some(col) = MULTI_NODE_COLUMNS
            .iter()
            .position(|(w, _, _)| *w == c.workload)
        else {
            continue;
        };
        let key = PathKey::of(c);
        let row = match rows.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                rows.push((key, vec![None; MULTI_NODE_COLUMNS.len()]));
                rows.len() - 1
            }
        };
        // A second cell for the same slot stays unplaced: "Other cells".
        if rows[row].1[col].is_none() {
            rows[row].1[col] = Some(i);
        }
    }
    rows
}

pub fn overlays_in_order(r: &Results) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    for o in r.cells.iter().filter_map(|c| c.overlay.as_ref()) {
        if !seen.contains(o) {
            seen.push(o.clone());
        }
    }
    seen
}

pub fn path_label(k: &PathKey) -> String {
    format!("{} > {}", k.client, k.server)
}
