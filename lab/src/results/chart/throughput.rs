//! Throughput bar charts: single-node pod IP against cluster IP per
//! datapath, and multi-node bandwidth per path and overlay.

use super::bars::{render_bars, Bar, BarChart, BarGroup};
use super::canvas::Swatch;
use super::palette::{proxy_colours, PALETTE, POD_COLOUR};
use super::{Chart, ChartError};
use crate::results::layout::{proxies_in_order, single_node_table};
use crate::results::{Cell, Results};

/// Grouped horizontal bars: per datapath, a pod IP bar and one bar per
/// service target and proxy it was measured with, each with the 95%
/// interval of the median as a whisker. Colour names the proxy; a node
/// port bar is light with a border of its proxy's colour, a cluster IP bar
/// filled. Single-node cells only; `None` when the run has no such cell
/// for `workload`.
pub fn throughput_bars(results: &Results, workload: &str) -> Result<Option<Chart>, ChartError> {
    let Some(table) = single_node_table(results, workload) else {
        return Ok(None);
    };
    let proxies = proxies_in_order(results);
    let colours = proxy_colours(&proxies);
    let mut series = vec![Swatch::filled("pod IP", POD_COLOUR)];
    series.extend(table.columns.iter().map(|col| {
        let at = proxies.iter().position(|p| *p == col.proxy).unwrap_or(0);
        Swatch {
            name: col.title(),
            colour: colours[at],
            hollow: col.target != "cluster-ip",
        }
    }));
    let cell = |i: usize| Some(&results.cells[i]);
    let groups = table
        .rows
        .iter()
        .map(|row| {
            let mut bars = vec![Bar {
                series: 0,
                cell: row.pod.and_then(cell),
            }];
            // Only the services this datapath was measured with.
            bars.extend(row.services.iter().enumerate().filter_map(|(c, i)| {
                Some(Bar {
                    series: 1 + c,
                    cell: cell((*i)?),
                })
            }));
            BarGroup {
                name: row.datapath.clone(),
                bars,
            }
        })
        .collect();
    let spec = BarChart {
        title: format!("{workload} throughput per datapath"),
        metric: "throughput_gbps",
        axis: "throughput (Gbit/s)",
        series,
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
            .map(|(n, o)| Swatch::filled(*o, PALETTE[n % PALETTE.len()]))
            .collect(),
        groups,
    };
    render_bars(results, spec, "overlay-bandwidth.svg".to_string()).map(Some)
}
