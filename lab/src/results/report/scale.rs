//! The "Scale" section of a service-count sweep: what the points were, a
//! chart and a table per metric (one row per proxy, one column per service
//! count), lines read off the numbers, and the points that could not be
//! measured with the reason.

use std::fmt::Write as _;

use super::scale_reading::reading_line;
use crate::results::format::{escape, format_metric, interval, status_word};
use crate::results::sweep::{scale_metrics, series, ScaleMetric, Series};
use crate::results::{CellStatus, Metric, Results};

/// File name of the chart of `metric`.
pub fn chart_file(metric: &str) -> String {
    format!("scale-{}.svg", metric.replace('_', "-"))
}

/// Whether a chart file belongs to the Scale section.
pub fn is_scale_chart(file: &str) -> bool {
    file.starts_with("scale-")
}

/// `1,000`: counts with thousands separated.
pub fn services_label(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

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

/// Points and cells that were not measured, or only in part, with the
/// reason.
fn unmeasured(out: &mut String, r: &Results) {
    let Some(sweep) = &r.sweep else {
        return;
    };
    let mut lines = Vec::new();
    for p in &sweep.points {
        let at = format!(
            "{} on {} at {} services",
            p.service_proxy,
            p.datapath,
            services_label(p.services)
        );
        if p.status != CellStatus::Ok {
            let reason = p.reason.as_deref().unwrap_or("no reason recorded");
            lines.push(format!("{at}: {}: {reason}", status_word(p.status)));
        }
        for note in &p.notes {
            lines.push(format!("{at}: {note}"));
        }
    }
    for c in r.cells.iter().filter(|c| c.status != CellStatus::Ok) {
        let reason = c.reason.as_deref().unwrap_or("no reason recorded");
        lines.push(format!(
            "`{}`: {}: {reason}",
            c.key(),
            status_word(c.status)
        ));
    }
    if lines.is_empty() {
        return;
    }
    out.push_str("\n### Points not measured in full\n\n");
    for l in lines {
        let _ = writeln!(out, "- {}", escape(&l));
    }
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
    }
}
