//! report.md: a run's results rendered for people. Every sentence and number
//! in it is derived from the `Results` value; nothing is invented.

mod detail;
mod header;
mod headline;
mod multinode;
mod notes;
mod reading;
pub mod scale;
mod scale_reading;
mod tables;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{chart, Results};

pub use super::format::{
    format_metric, format_number, interval, median_ratio, shell_quote, with_interval,
};
pub use super::layout::{multi_node_rows, single_node_table, PathKey, SingleNodeTable};
pub use headline::{Headline, HEADLINES};
pub use multinode::{overlay_ratios, OverlayRatio};

const INTERVAL_LEGEND: &str = "Values: median over the repetitions (95% interval of the median). \
     `≈`: the intervals overlap, so the difference is within noise.";

/// Writes report.md and the SVG charts into `out_dir`; returns the files written.
pub fn write_report(results: &Results, out_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)?;
    let charts = chart::all_charts(results).map_err(std::io::Error::other)?;
    let mut written = Vec::new();
    let mut links = Vec::new();
    for c in &charts {
        let path = out_dir.join(&c.file_name);
        std::fs::write(&path, &c.svg)?;
        written.push(path);
        links.push((c.title.clone(), c.file_name.clone()));
    }
    let report = out_dir.join("report.md");
    std::fs::write(&report, render_markdown(results, &links))?;
    written.push(report);
    Ok(written)
}

/// The whole report.md; `charts` are (title, file name relative to report.md).
pub fn render_markdown(all: &Results, charts: &[(String, String)]) -> String {
    // A sweep's ordinary tables show its smallest point; "Scale" shows all.
    let smallest = super::sweep::smallest_point(all);
    let results = smallest.as_ref().unwrap_or(all);
    let notes = notes::Notes::new(results);
    let mut placed = vec![false; results.cells.len()];
    let mut out = String::new();
    header::header(&mut out, results);
    header::summary_counts(&mut out, all);
    tables::single_node_tables(&mut out, results, &notes, &mut placed);
    multinode::multi_node_tables(&mut out, results, &notes, &mut placed);
    detail::other_cells(&mut out, results, &notes, &placed);
    detail::cpu_cost(&mut out, results);
    reading::reading(&mut out, results);
    scale::scale_section(&mut out, all, charts);
    let charts: Vec<_> = charts
        .iter()
        .filter(|(_, f)| !crate::results::chart::scale::is_scale_chart(f))
        .collect();
    if !charts.is_empty() {
        out.push_str("\n## Charts\n\n");
        for (title, file) in charts {
            let _ = writeln!(out, "![{}]({})\n", super::format::escape(title), file);
        }
    }
    notes::skipped_and_failed(&mut out, results, &notes);
    detail::proof_of_path(&mut out, results);
    detail::benchmarks(&mut out, all);
    out
}
