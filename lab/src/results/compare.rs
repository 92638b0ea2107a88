//! `dplab compare A.json B.json`: cell by cell, metric by metric, how run B
//! relates to run A (ratio of medians) and whether the difference exceeds
//! the noise (the 95% intervals of the medians do not overlap).

use std::fmt::Write as _;

use serde::Serialize;

use super::format::{format_number, median_ratio, status_word, with_interval};
use super::{CellStatus, Results};

/// Which run a side of the comparison is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunLabel {
    pub run_id: String,
    pub topology: String,
    pub started_at: String,
    pub kernel: String,
    pub hostname: String,
}

impl RunLabel {
    fn of(r: &Results) -> RunLabel {
        RunLabel {
            run_id: r.run_id.clone(),
            topology: r.topology.clone(),
            started_at: r.started_at.clone(),
            kernel: r.host.kernel.clone(),
            hostname: r.host.hostname.clone(),
        }
    }
}

/// One metric of one cell present in both runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricComparison {
    pub cell: String,
    pub metric: String,
    pub a_median: f64,
    pub a_ci95: (f64, f64),
    pub b_median: f64,
    pub b_ci95: (f64, f64),
    /// B / A of the medians (1 when equal, also both 0); `None` when only
    /// A's median is 0.
    pub ratio: Option<f64>,
    /// The intervals do not overlap.
    pub significant: bool,
}

/// A cell present in both runs whose status is not ok in at least one.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusDifference {
    pub cell: String,
    pub a: CellStatus,
    pub b: CellStatus,
    pub a_reason: Option<String>,
    pub b_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub a: RunLabel,
    pub b: RunLabel,
    pub metrics: Vec<MetricComparison>,
    /// Cells both runs have but at least one did not measure.
    pub not_measured_in_both: Vec<StatusDifference>,
    /// `cell: metric` measured in only one of the runs.
    pub metrics_only_in_a: Vec<String>,
    pub metrics_only_in_b: Vec<String>,
    pub cells_only_in_a: Vec<String>,
    pub cells_only_in_b: Vec<String>,
}

/// Cell keys made unique within a run: a repeated key gets `#2`, `#3`...
fn unique_keys(r: &Results) -> Vec<String> {
    let bases: Vec<String> = r.cells.iter().map(|c| c.key()).collect();
    bases
        .iter()
        .enumerate()
        .map(
            |(i, base)| match bases[..i].iter().filter(|b| *b == base).count() {
                0 => base.clone(),
                earlier => format!("{base}#{}", earlier + 1),
            },
        )
        .collect()
}

/// Matches the cells of `a` and `b` by `Cell::key()`, in A's order.
pub fn compare(a: &Results, b: &Results) -> Comparison {
    let a_keys = unique_keys(a);
    let b_keys = unique_keys(b);
    let mut out = Comparison {
        a: RunLabel::of(a),
        b: RunLabel::of(b),
        metrics: Vec::new(),
        not_measured_in_both: Vec::new(),
        metrics_only_in_a: Vec::new(),
        metrics_only_in_b: Vec::new(),
        cells_only_in_a: Vec::new(),
        cells_only_in_b: b_keys
            .iter()
            .filter(|k| !a_keys.contains(k))
            .cloned()
            .collect(),
    };
    for (ai, key) in a_keys.iter().enumerate() {
        let Some(bi) = b_keys.iter().position(|k| k == key) else {
            out.cells_only_in_a.push(key.clone());
            continue;
        };
        let (ca, cb) = (&a.cells[ai], &b.cells[bi]);
        if ca.status != CellStatus::Ok || cb.status != CellStatus::Ok {
            out.not_measured_in_both.push(StatusDifference {
                cell: key.clone(),
                a: ca.status,
                b: cb.status,
                a_reason: ca.reason.clone(),
                b_reason: cb.reason.clone(),
            });
            continue;
        }
        for (name, ma) in &ca.metrics {
            let Some(mb) = cb.metrics.get(name) else {
                out.metrics_only_in_a.push(format!("{key}: {name}"));
                continue;
            };
            let (ma, mb) = (with_interval(ma), with_interval(mb));
            out.metrics.push(MetricComparison {
                cell: key.clone(),
                metric: name.clone(),
                a_median: ma.median,
                a_ci95: (ma.ci95_low, ma.ci95_high),
                b_median: mb.median,
                b_ci95: (mb.ci95_low, mb.ci95_high),
                ratio: median_ratio(&ma, &mb),
                significant: ma.differs_from(&mb),
            });
        }
        for name in cb.metrics.keys().filter(|n| !ca.metrics.contains_key(*n)) {
            out.metrics_only_in_b.push(format!("{key}: {name}"));
        }
    }
    out
}

/// Columns padded to their widest entry (counted in characters).
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.push_str(&" ".repeat(pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl Comparison {
    /// A plain-text table for a terminal.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let label = |l: &RunLabel| {
            format!(
                "{} ({}, {}, kernel {}, {})",
                l.run_id, l.topology, l.hostname, l.kernel, l.started_at
            )
        };
        let _ = writeln!(out, "A: {}", label(&self.a));
        let _ = writeln!(out, "B: {}", label(&self.b));
        let _ = writeln!(
            out,
            "B/A is the ratio of the medians; \"noise\" means the 95% intervals overlap.\n"
        );
        let mut rows = vec![vec![
            "cell".to_string(),
            "metric".to_string(),
            "A".to_string(),
            "B".to_string(),
            "B/A".to_string(),
            "difference".to_string(),
        ]];
        for m in &self.metrics {
            rows.push(vec![
                m.cell.clone(),
                m.metric.clone(),
                format_number(m.a_median),
                format_number(m.b_median),
                m.ratio
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "n/a".to_string()),
                if m.significant {
                    "significant"
                } else {
                    "noise"
                }
                .to_string(),
            ]);
        }
        if self.metrics.is_empty() {
            out.push_str("No metric was measured in both runs.\n");
        } else {
            out.push_str(&aligned(&rows));
        }
        if !self.not_measured_in_both.is_empty() {
            out.push_str("\nNot measured in both runs:\n");
            for s in &self.not_measured_in_both {
                let reason = |status: CellStatus, r: &Option<String>| match r {
                    Some(r) if status != CellStatus::Ok => {
                        format!("{} ({r})", status_word(status))
                    }
                    _ => status_word(status).to_string(),
                };
                let _ = writeln!(
                    out,
                    "  {}: A {}, B {}",
                    s.cell,
                    reason(s.a, &s.a_reason),
                    reason(s.b, &s.b_reason)
                );
            }
        }
        let lists = [
            ("Cells only in A", &self.cells_only_in_a),
            ("Cells only in B", &self.cells_only_in_b),
            ("Metrics only in A", &self.metrics_only_in_a),
            ("Metrics only in B", &self.metrics_only_in_b),
        ];
        for (title, list) in lists {
            if !list.is_empty() {
                let _ = writeln!(out, "\n{title}:");
                for item in list {
                    let _ = writeln!(out, "  {item}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Cell, Metric};
    use std::collections::BTreeMap;

    fn cell(proxy: &str, gbps: f64) -> Cell {
        let metric = Metric {
            median: gbps,
            ci95_low: gbps - 0.1,
            ci95_high: gbps + 0.1,
            ..Metric::default()
        };
        Cell {
            datapath: "veth-routed".into(),
            target: "cluster-ip".into(),
            service_proxy: Some(proxy.into()),
            workload: "tcp-stream".into(),
            tool: "builtin".into(),
            client: "pod-b".into(),
            server: "service:web".into(),
            overlay: None,
            placement: None,
            services: None,
            endpoints: None,
            status: CellStatus::Ok,
            reason: None,
            setup_ms: None,
            teardown_ms: None,
            metrics: BTreeMap::from([("throughput_gbps".to_string(), metric)]),
            proof: BTreeMap::new(),
            conditions: None,
            bpf_attach: None,
        }
    }

    fn run(cells: Vec<Cell>) -> Results {
        Results {
            schema: crate::results::schema::SCHEMA.into(),
            run_id: "unit".into(),
            topology: "unit-test".into(),
            started_at: String::new(),
            finished_at: String::new(),
            host: Default::default(),
            dplab_version: String::new(),
            dplab_commit: None,
            command: Vec::new(),
            settings: Default::default(),
            sweep: None,
            cells,
            conditions: None,
            benchmarks: BTreeMap::new(),
        }
    }

    #[test]
    fn repeated_keys_are_matched_in_order() {
        // The same cell twice in a run (say, a second client with the same
        // name): matched first to first, second to second.
        let a = run(vec![cell("iptables", 10.0), cell("iptables", 20.0)]);
        let b = run(vec![cell("iptables", 11.0), cell("iptables", 20.0)]);
        let c = compare(&a, &b);
        assert_eq!(c.metrics.len(), 2);
        assert_eq!(c.metrics[0].ratio, Some(1.1));
        assert!(c.metrics[0].significant);
        assert!(c.metrics[1].cell.ends_with("#2"));
        assert_eq!(c.metrics[1].ratio, Some(1.0));
        assert!(!c.metrics[1].significant);
    }

    #[test]
    fn proxies_are_part_of_the_key() {
        let a = run(vec![cell("iptables", 10.0), cell("ebpf", 20.0)]);
        let b = run(vec![cell("ebpf", 20.0), cell("iptables", 12.0)]);
        let c = compare(&a, &b);
        assert_eq!(
            c.metrics[0].cell,
            "veth-routed+iptables/cluster-ip/tcp-stream/pod-b->service:web"
        );
        assert_eq!(c.metrics[0].ratio, Some(1.2));
        assert_eq!(c.metrics[1].ratio, Some(1.0));
    }

    #[test]
    fn a_cell_not_ok_on_one_side_is_reported_with_its_reason() {
        let a = run(vec![cell("iptables", 10.0)]);
        let mut failed = cell("iptables", 0.0);
        failed.status = CellStatus::Failed;
        failed.reason = Some("no connection".into());
        failed.metrics.clear();
        let c = compare(&a, &run(vec![failed]));
        assert!(c.metrics.is_empty());
        assert_eq!(c.not_measured_in_both.len(), 1);
        assert!(c.render_table().contains("A ok, B failed (no connection)"));
    }
}
