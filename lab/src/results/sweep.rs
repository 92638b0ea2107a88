//! results.json's `sweep` (schema v2): what a service-count sweep measured
//! per point and proxy besides its cells: programming, one-change updates,
//! what the proxy holds in the kernel, and dplab's own memory. The cells of
//! a sweep carry `services` and `endpoints` and hold the workload metrics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CellStatus, Metric};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweepResults {
    /// Service counts measured, ascending.
    pub services: Vec<u32>,
    pub endpoints_per_service: u32,
    /// The topology's service the cluster-ip cells measure.
    pub measured_service: String,
    /// Where that service sits: synthetic services are programmed before
    /// the topology's own, so a proxy that matches in order tries them all
    /// first (see each point's `measured_position`).
    pub placement: String,
    pub points: Vec<SweepPoint>,
}

/// One proxy on one datapath holding `services` services.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweepPoint {
    pub datapath: String,
    pub service_proxy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<String>,
    pub services: u32,
    /// Endpoints of all services together.
    pub endpoints: u32,
    /// 1-based place of the measured service in the order the proxy was
    /// given the services (`services` = last).
    pub measured_position: u32,
    pub status: CellStatus,
    pub reason: Option<String>,
    pub metrics: BTreeMap<String, Metric>,
    /// What this point could not measure, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A metric of a sweep: its name in results.json, its title in the report
/// and whether smaller is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleMetric {
    pub name: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub lower_is_better: bool,
}

const fn m(
    name: &'static str,
    title: &'static str,
    unit: &'static str,
    lower_is_better: bool,
) -> ScaleMetric {
    ScaleMetric {
        name,
        title,
        unit,
        lower_is_better,
    }
}

/// Metrics of a point (in `SweepPoint::metrics`), in report order.
pub const POINT_METRICS: &[ScaleMetric] = &[
    m("program_ms", "Full programming", "ms", true),
    m(
        "program_to_traffic_ms",
        "Full programming until traffic flows",
        "ms",
        true,
    ),
    m(
        "update_add_service_ms",
        "Update: add one service, until it carries traffic",
        "ms",
        true,
    ),
    m(
        "update_add_service_call_ms",
        "Update: add one service, the call alone",
        "ms",
        true,
    ),
    m(
        "update_remove_endpoint_ms",
        "Update: remove one endpoint, until traffic avoids it",
        "ms",
        true,
    ),
    m(
        "update_remove_endpoint_call_ms",
        "Update: remove one endpoint, the call alone",
        "ms",
        true,
    ),
    m("kernel_rules", "Rules in the kernel", "rules", true),
    m("kernel_chains", "Chains in the kernel", "chains", true),
    m("kernel_map_bytes", "eBPF map memory (memlock)", "bytes", true),
    m("dplab_peak_rss_mb", "dplab's peak memory (RSS)", "MB", true),
];

/// Workload metrics of a sweep's cells, in report order.
pub const CELL_METRICS: &[(&str, ScaleMetric)] = &[
    (
        "tcp-crr",
        m("connect_us_p1", "First-packet latency p1", "µs", true),
    ),
    (
        "tcp-crr",
        m("connect_us_p50", "First-packet latency p50", "µs", true),
    ),
    (
        "tcp-crr",
        m("connect_us_p99", "First-packet latency p99", "µs", true),
    ),
    (
        "tcp-crr",
        m("connections_per_s", "tcp-crr connections/s", "conn/s", false),
    ),
    (
        "tcp-stream",
        m("throughput_gbps", "tcp-stream throughput", "Gbit/s", false),
    ),
];
