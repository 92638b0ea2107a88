//! results.json's `sweep` (schema v2): what a service-count sweep measured
//! per point and proxy besides its cells: programming, one-change updates,
//! what the proxy holds in the kernel, and dplab's own memory. The cells of
//! a sweep carry `services` and `endpoints` and hold the workload metrics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CellStatus, Metric, Results};

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

/// Point metrics that get a chart (the others only a table).
pub const CHARTED: &[&str] = &[
    "program_ms",
    "update_add_service_ms",
    "update_remove_endpoint_ms",
    "connect_us_p50",
    "connect_us_p99",
    "connections_per_s",
    "throughput_gbps",
    "dplab_peak_rss_mb",
];

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
    m(
        "kernel_map_bytes",
        "eBPF map memory (memlock)",
        "bytes",
        true,
    ),
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
        m(
            "connections_per_s",
            "tcp-crr connections/s",
            "conn/s",
            false,
        ),
    ),
    (
        "tcp-stream",
        m("throughput_gbps", "tcp-stream throughput", "Gbit/s", false),
    ),
];

/// Every metric of a sweep, point metrics first, with the workload of the
/// cells that carry it (None: a point metric).
pub fn scale_metrics() -> impl Iterator<Item = (Option<&'static str>, ScaleMetric)> {
    POINT_METRICS
        .iter()
        .map(|m| (None, *m))
        .chain(CELL_METRICS.iter().map(|(w, m)| (Some(*w), *m)))
}

/// One line of a scale chart or table: a proxy (on a datapath) and its
/// metric at each service count it has a value for.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub proxy: String,
    pub values: Vec<(u32, Metric)>,
}

/// The series of `metric`, one per (datapath, proxy, overlay) in the
/// order the run measured them; the datapath is named only when the sweep
/// has several. Empty when no point or cell carries the metric.
pub fn series(r: &Results, workload: Option<&str>, metric: &str) -> Vec<Series> {
    let Some(sweep) = &r.sweep else {
        return Vec::new();
    };
    // (datapath, proxy, overlay, services, value)
    let rows: Vec<(&str, &str, Option<&str>, u32, &Metric)> = match workload {
        None => sweep
            .points
            .iter()
            .filter_map(|p| {
                let m = p.metrics.get(metric)?;
                Some((
                    p.datapath.as_str(),
                    p.service_proxy.as_str(),
                    p.overlay.as_deref(),
                    p.services,
                    m,
                ))
            })
            .collect(),
        Some(w) => r
            .cells
            .iter()
            .filter(|c| c.workload == w && c.status == CellStatus::Ok)
            .filter_map(|c| {
                let m = c.metrics.get(metric)?;
                Some((
                    c.datapath.as_str(),
                    c.service_proxy.as_deref()?,
                    c.overlay.as_deref(),
                    c.services?,
                    m,
                ))
            })
            .collect(),
    };
    let several_datapaths = rows.iter().any(|r| r.0 != rows[0].0);
    let mut out: Vec<(String, String, Option<String>, Series)> = Vec::new();
    for (datapath, proxy, overlay, n, m) in rows {
        let at = out
            .iter()
            .position(|(d, p, o, _)| d == datapath && p == proxy && o.as_deref() == overlay);
        let at = at.unwrap_or_else(|| {
            let mut label = proxy.to_string();
            if several_datapaths {
                label = format!("{datapath} · {label}");
            }
            if let Some(o) = overlay {
                label = format!("{o} · {label}");
            }
            out.push((
                datapath.to_string(),
                proxy.to_string(),
                overlay.map(str::to_string),
                Series {
                    label,
                    proxy: proxy.to_string(),
                    values: Vec::new(),
                },
            ));
            out.len() - 1
        });
        out[at].3.values.push((n, m.clone()));
    }
    out.into_iter()
        .map(|(_, _, _, mut s)| {
            s.values.sort_by_key(|(n, _)| *n);
            s
        })
        .collect()
}

/// A sweep's results with only the cells of its smallest point (the
/// report's ordinary tables and charts show that point); None when the
/// results are no sweep.
pub fn smallest_point(r: &Results) -> Option<Results> {
    let smallest = r.cells.iter().filter_map(|c| c.services).min()?;
    let mut out = r.clone();
    out.cells
        .retain(|c| c.services.is_none_or(|n| n == smallest));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS: &str = include_str!("../../../docs/results.md");

    fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    out.push(k.clone());
                    keys(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| keys(i, out)),
            _ => {}
        }
    }

    #[test]
    fn every_field_and_metric_a_sweep_writes_is_documented() {
        let point = SweepPoint {
            datapath: "veth-routed".into(),
            service_proxy: "iptables".into(),
            overlay: Some("routed".into()),
            services: 10,
            endpoints: 19,
            measured_position: 10,
            status: CellStatus::Ok,
            reason: Some("r".into()),
            metrics: BTreeMap::new(),
            notes: vec!["n".into()],
        };
        let sweep = SweepResults {
            services: vec![10],
            endpoints_per_service: 2,
            measured_service: "web".into(),
            placement: "last".into(),
            points: vec![point],
        };
        let mut found = Vec::new();
        keys(&serde_json::to_value(&sweep).unwrap(), &mut found);
        for k in found {
            assert!(
                DOCS.contains(&format!("`{k}`")) || DOCS.contains(&format!("`sweep.{k}`")),
                "{k} is not in docs/results.md"
            );
        }
        let names = POINT_METRICS
            .iter()
            .map(|m| m.name)
            .chain(CELL_METRICS.iter().map(|(_, m)| m.name))
            .chain(
                crate::workload::connect_latency::CONNECT_METRICS
                    .iter()
                    .map(|(_, n)| *n),
            );
        for name in names {
            assert!(
                DOCS.contains(name),
                "metric {name} is not in docs/results.md"
            );
        }
        for field in ["services", "endpoints", "dplab.results/v2"] {
            assert!(DOCS.contains(&format!("`{field}`")), "{field}");
        }
    }
}
