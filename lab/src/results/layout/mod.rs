//! Which cell sits in which table slot: the rows and columns of the
//! single-node and multi-node tables, shared by report.md and the charts.

mod multi_node;
mod single_node;

use super::{Cell, CellStatus, Metric, Results};

pub use multi_node::{multi_node_rows, overlays_in_order, path_label, PathKey, MULTI_NODE_COLUMNS};
pub use single_node::{
    proxies_in_order, several_proxies_per_datapath, single_node_table, target_title, ServiceColumn,
    SingleNodeRow, SingleNodeTable, SERVICE_TARGETS,
};

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

/// The metric of cell `index` if that cell ran.
pub fn ok_metric<'a>(r: &'a Results, index: Option<usize>, metric: &str) -> Option<&'a Metric> {
    let cell = &r.cells[index?];
    if cell.status != CellStatus::Ok {
        return None;
    }
    cell.metrics.get(metric)
}
