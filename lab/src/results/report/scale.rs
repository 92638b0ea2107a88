//! The "Scale" section of a service-count sweep: what the points were, a
//! chart and a table per metric (one row per proxy, one column per service
//! count), lines read off the numbers, and the points that could not be
//! measured with the reason.

use std::fmt::Write as _;

use super::scale_reading::reading_line;
use crate::results::chart::scale::chart_file;
use crate::results::format::{escape, format_metric, interval, services_label, status_word};
use crate::results::sweep::{scale_metrics, series, ScaleMetric, Series};
use crate::results::{CellStatus, Metric, Results};

/// Writes the section; `charts` are the (title, file) of every chart.
pub(super) fn scale_section(out: &mut String, r: &Results, charts: &[(String, String)]) {
    let Some(sweep) = &r.sweep else {
        return;
    };
    let (first, last) = match (sweep.services.first(), sweep.services.last()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => return,
    };
    let _ = writeln!(
        out,
        "\n## Scale: {} to {} services\n",
        services_label(first),
        services_label(last)
    );
    let _ = writeln!(
        out,
        "At each point the proxy held that many services: the topology's own and synthetic ones with {} endpoints each, programmed from empty on a fresh lab. The measured service is `{}`; {}. The tables above show the smallest point ({}). Values: median over the repetitions (95% interval of the median); definitions in docs/results.md.",
        sweep.endpoints_per_service,
        escape(&sweep.measured_service),
        escape(&sweep.placement),
        match first {
            1 => "1 service".to_string(),
            n => format!("{} services", services_label(n)),
        }
    );
    let mut reading = Vec::new();
    for (workload, metric) in scale_metrics() {
        let lines = series(r, workload, metric.name);
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {} ({})\n", metric.title, metric.unit);
        let file = chart_file(metric.name);
        if let Some((title, _)) = charts.iter().find(|(_, f)| *f == file) {
            let _ = writeln!(out, "![{}]({file})\n", escape(title));
        }
        table(out, &metric, &sweep.services, &lines);
        reading.extend(reading_line(&metric, &lines));
    }
    if !reading.is_empty() {
        out.push_str("\n### Reading the curves\n\n");
        out.push_str("From the numbers above only: the change of each median from the smallest to the largest point (`≈`: the two intervals overlap), and where two proxies' lines cross.\n\n");
        for line in reading {
            let _ = writeln!(out, "- {line}");
        }
    }
    unmeasured(out, r);
}

/// A median with its interval; counts (rules, chains, bytes) as integers.
fn value(m: &Metric, counted: bool) -> String {
    if !counted {
        return format_metric(m);
    }
    let (lo, hi) = interval(m);
    if lo == hi {
        format!("{:.0}", m.median)
    } else {
        format!("{:.0} ({lo:.0}–{hi:.0})", m.median)
    }
}

fn table(out: &mut String, metric: &ScaleMetric, counts: &[u32], lines: &[Series]) {
    let counted = ["rules", "chains", "bytes"].contains(&metric.unit);
    let header: Vec<String> = counts.iter().map(|&n| services_label(n)).collect();
    let _ = writeln!(out, "| proxy | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(counts.len()));
    for s in lines {
        let cells: Vec<String> = counts
            .iter()
            .map(|n| {
                s.values
                    .iter()
                    .find(|(m, _)| m == n)
                    .map_or("–".to_string(), |(_, m)| value(m, counted))
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", escape(&s.label), cells.join(" | "));
    }
}

/// Points and cells that were not measured, or only in part, grouped by
/// reason: `- skipped: why: nftables at 1, 1,000 services; ...`.
fn unmeasured(out: &mut String, r: &Results) {
    let Some(sweep) = &r.sweep else {
        return;
    };
    // (what happened, who: (lab, count) or a cell key)
    let mut groups: Vec<(String, Vec<Who>)> = Vec::new();
    let mut add = |what: String, who: String, n: Option<u32>| match groups
        .iter_mut()
        .find(|(w, _)| *w == what)
    {
        Some((_, list)) => list.push((who, n)),
        None => groups.push((what, vec![(who, n)])),
    };
    let lab = |datapath: &str, proxy: &str| format!("{proxy} on {datapath}");
    for p in &sweep.points {
        let who = lab(&p.datapath, &p.service_proxy);
        if p.status != CellStatus::Ok {
            let reason = p.reason.as_deref().unwrap_or("no reason recorded");
            add(
                format!("{}: {reason}", status_word(p.status)),
                who.clone(),
                Some(p.services),
            );
        }
        for note in &p.notes {
            add(note.clone(), who.clone(), Some(p.services));
        }
    }
    // Cells whose point says it all already are left out.
    let point_ok = |c: &crate::results::Cell| {
        sweep.points.iter().any(|p| {
            Some(p.services) == c.services
                && p.datapath == c.datapath
                && Some(&p.service_proxy) == c.service_proxy.as_ref()
                && p.status == CellStatus::Ok
        })
    };
    for c in r.cells.iter().filter(|c| c.status != CellStatus::Ok) {
        if c.service_proxy.is_some() && !point_ok(c) {
            continue;
        }
        let reason = c.reason.as_deref().unwrap_or("no reason recorded");
        add(
            format!("{}: {reason}", status_word(c.status)),
            format!("`{}`", c.key()),
            None,
        );
    }
    if groups.is_empty() {
        return;
    }
    out.push_str("\n### Points not measured in full\n\n");
    for (what, who) in groups {
        let _ = writeln!(out, "- {}: {}", escape(&what), escape(&who_list(&who)));
    }
}

/// A lab and the service count of a point, or a cell's key and None.
type Who = (String, Option<u32>);

/// `nftables on veth-routed at 1, 1,000 services; `key``.
fn who_list(who: &[Who]) -> String {
    let mut parts: Vec<(String, Vec<u32>)> = Vec::new();
    for (name, n) in who {
        match parts.iter_mut().find(|(p, _)| p == name) {
            Some((_, counts)) => counts.extend(n),
            None => parts.push((name.clone(), n.iter().copied().collect())),
        }
    }
    parts
        .into_iter()
        .map(|(name, counts)| match counts.as_slice() {
            [] => name,
            [1] => format!("{name} at 1 service"),
            _ => {
                let labels: Vec<String> = counts.iter().map(|&n| services_label(n)).collect();
                format!("{name} at {} services", labels.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_separators() {
        assert_eq!(services_label(1), "1");
        assert_eq!(services_label(1000), "1,000");
        assert_eq!(services_label(30000), "30,000");
        assert_eq!(services_label(1234567), "1,234,567");
        assert_eq!(chart_file("program_ms"), "scale-program-ms.svg");
        assert!(crate::results::chart::scale::is_scale_chart(
            "scale-program-ms.svg"
        ));
    }

    #[test]
    fn the_unmeasured_are_grouped_per_lab() {
        let who = [
            ("ipvs on veth-routed".to_string(), Some(1)),
            ("ipvs on veth-routed".to_string(), Some(1000)),
            ("nftables on veth-routed".to_string(), Some(1)),
            ("`a@1`".to_string(), None),
        ];
        assert_eq!(
            who_list(&who),
            "ipvs on veth-routed at 1, 1,000 services; nftables on veth-routed at 1 service; `a@1`"
        );
    }
}
