//! Throughput bar charts: single-node pod IP against cluster IP per
//! datapath, and multi-node bandwidth per path and overlay.

use super::bars::{render_bars, Bar, BarChart, BarGroup, PALETTE};
use super::canvas::{CLUSTER_COLOUR, POD_COLOUR};
use super::{Chart, ChartError};
use crate::results::layout::single_node_rows;
use crate::results::{Cell, Results};

/// Grouped horizontal bars: per datapath, pod IP and cluster IP throughput
/// with the 95% interval of the median as an error bar. Single-node cells
/// only; `None` when the run has no such cell for `workload`.
pub fn throughput_bars(results: &Results, workload: &str) -> Result<Option<Chart>, ChartError> {
    let rows = single_node_rows(results, workload);
    if rows.is_empty() {
        return Ok(None);
    }
    // One group per datapath; a second service proxy gets its own group.
    let groups = rows
        .iter()
        .enumerate()
        .map(|(n, row)| {
            let shares_datapath = rows
                .iter()
                .enumerate()
                .any(|(m, other)| m != n && other.datapath == row.datapath);
            let name = match (&row.service_proxy, shares_datapath) {
                (Some(p), true) => format!("{} ({p})", row.datapath),
                _ => row.datapath.clone(),
            };
            let cell = |i: Option<usize>| i.map(|i| &results.cells[i]);
            BarGroup {
                name,
                bars: vec![
                    Bar {
                        series: 0,
                        cell: cell(row.pod),
                    },
                    Bar {
                        series: 1,
                        cell: cell(row.cluster),
                    },
                ],
            }
        })
        .collect();
    let spec = BarChart {
        title: format!("{workload} throughput per datapath"),
        metric: "throughput_gbps",
        axis: "throughput (Gbit/s)",
        series: vec![
            ("pod IP".to_string(), POD_COLOUR),
            ("cluster IP".to_string(), CLUSTER_COLOUR),
        ],
        groups,
    };
    render_bars(results, spec, format!("{workload}-throughput.svg")).map(Some)
}

/// Multi-node labs: tcp-stream bandwidth per path, one bar per overlay.
/// `None` when the run has no multi-node tcp-stream cell.
pub fn overlay_bandwidth(results: &Results) -> Result<Option<Chart>, ChartError> {
    let cells: Vec<&Cell> = results
        .cells
        .iter()
        .filter(|c| c.overlay.is_some() && c.workload == "tcp-stream")
        .collect();
    if cells.is_empty() {
        return Ok(None);
    }
    let mut overlays: Vec<&str> = Vec::new();
    let mut paths: Vec<&Cell> = Vec::new();
    let same_path = |a: &Cell, b: &Cell| {
        (&a.datapath, &a.client, &a.server, &a.target, &a.placement)
            == (&b.datapath, &b.client, &b.server, &b.target, &b.placement)
    };
    for c in &cells {
        let overlay = c.overlay.as_deref().unwrap_or_default();
        if !overlays.contains(&overlay) {
            overlays.push(overlay);
        }
        if !paths.iter().any(|p| same_path(p, c)) {
            paths.push(c);
        }
    }
    // Name the datapath only when there is more than one.
    let several_datapaths = paths.iter().any(|p| p.datapath != paths[0].datapath);
    let groups = paths
        .iter()
        .map(|p| BarGroup {
            name: format!(
                "{} > {} {} ({}){}",
                p.client,
                p.server,
                p.target,
                p.placement.as_deref().unwrap_or("?"),
                if several_datapaths {
                    format!(" {}", p.datapath)
                } else {
                    String::new()
                }
            ),
            bars: overlays
                .iter()
                .enumerate()
                .map(|(series, overlay)| Bar {
                    series,
                    cell: cells
                        .iter()
                        .copied()
                        .find(|c| c.overlay.as_deref() == Some(*overlay) && same_path(c, p)),
                })
                .collect(),
        })
        .collect();
    let spec = BarChart {
        title: "tcp-stream bandwidth per path and overlay".to_string(),
        metric: "throughput_gbps",
        axis: "bandwidth (Gbit/s)",
        series: overlays
            .iter()
            .enumerate()
            .map(|(n, o)| (o.to_string(), PALETTE[n % PALETTE.len()]))
            .collect(),
        groups,
    };
    render_bars(results, spec, "overlay-bandwidth.svg".to_string()).map(Some)
}
