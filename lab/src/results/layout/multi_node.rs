//! Multi-node tables: one row per path (client, server, target, placement)
//! and one column per workload, per overlay.

use crate::results::{Cell, Results};

/// The columns of the multi-node tables: (workload, metric, column title).
pub const MULTI_NODE_COLUMNS: &[(&str, &str, &str)] = &[
    ("ping", "rtt_ms", "RTT ms"),
    ("tcp-stream", "throughput_gbps", "bandwidth Gbit/s"),
    ("tcp-rr", "latency_us_p50", "latency µs (p50)"),
    ("http", "requests_per_s", "requests/s"),
];

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
