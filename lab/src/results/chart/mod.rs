//! SVG charts of a run (plotters, SVG backend): throughput bars per
//! datapath with their 95% intervals, and latency percentiles per cell.
//! Bars run horizontally so that datapath names stay legible at 800 px.

mod bars;
mod canvas;
mod latency;
mod palette;
pub(crate) mod scale;
mod throughput;

use super::Results;

pub use latency::latency_percentiles;
pub use throughput::{overlay_bandwidth, throughput_bars};

/// A rendered chart: the SVG text and where report.md links it.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub file_name: String,
    pub svg: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing chart {chart}: {message}")]
    Draw { chart: String, message: String },
}

/// Every chart the results have data for.
pub fn all_charts(all: &Results) -> Result<Vec<Chart>, ChartError> {
    // A sweep's ordinary charts show its smallest point; scale charts all.
    let smallest = super::sweep::smallest_point(all);
    let results = smallest.as_ref().unwrap_or(all);
    let mut charts = scale::scale_charts(all)?;
    for workload in ["tcp-stream", "udp-stream"] {
        charts.extend(throughput_bars(results, workload)?);
    }
    charts.extend(overlay_bandwidth(results)?);
    for workload in ["tcp-rr", "tcp-crr", "http"] {
        charts.extend(latency_percentiles(results, workload)?);
    }
    Ok(charts)
}
