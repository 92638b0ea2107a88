//! SVG charts of a run (plotters, SVG backend): throughput bars per
//! datapath with their 95% intervals, and latency percentiles per cell.
//! Bars run horizontally so that datapath names stay legible at 800 px.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{format_number, interval, single_node_rows};
use super::{Cell, CellStatus, Results};

const WIDTH: u32 = 800;
const TITLE_HEIGHT: u32 = 70;
const AXIS_HEIGHT: u32 = 70;
const FONT: &str = "sans-serif";

const POD_COLOUR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const CLUSTER_COLOUR: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const P50_COLOUR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const P90_COLOUR: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const P99_COLOUR: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const MUTED: RGBColor = RGBColor(0x70, 0x70, 0x70);

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

type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Every chart the results have data for.
pub fn all_charts(results: &Results) -> Result<Vec<Chart>, ChartError> {
    let mut charts = Vec::new();
    for workload in ["tcp-stream", "udp-stream"] {
        charts.extend(throughput_bars(results, workload)?);
    }
    for workload in ["tcp-rr", "tcp-crr", "http"] {
        charts.extend(latency_percentiles(results, workload)?);
    }
    Ok(charts)
}

/// One bar in a group: its label, the cell it shows (if any).
struct Bar<'a> {
    series: usize,
    cell: Option<&'a Cell>,
}

/// Grouped horizontal bars: per datapath, pod IP and cluster IP throughput
/// with the 95% interval of the median as an error bar. Single-node cells
/// only; `None` when the run has no such cell for `workload`.
pub fn throughput_bars(results: &Results, workload: &str) -> Result<Option<Chart>, ChartError> {
    let rows = single_node_rows(results, workload);
    if rows.is_empty() {
        return Ok(None);
    }
    // One group per datapath; a second service proxy gets its own group.
    let groups: Vec<(String, Vec<Bar>)> = rows
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
            let bars = vec![
                Bar {
                    series: 0,
                    cell: cell(row.pod),
                },
                Bar {
                    series: 1,
                    cell: cell(row.cluster),
                },
            ];
            (name, bars)
        })
        .collect();
    let title = format!("{workload} throughput per datapath");
    let file_name = format!("{workload}-throughput.svg");
    let svg = draw_svg(&title, groups.len(), 2, |root| {
        draw_bars(root, results, &title, &groups, "throughput (Gbit/s)")
    })?;
    Ok(Some(Chart {
        title,
        file_name,
        svg,
    }))
}

/// Pixels of height per bar and per gap between groups.
const BAR_PX: u32 = 18;
const GROUP_GAP_PX: u32 = 16;

/// Renders into an SVG string with a height that fits `groups` groups of
/// `per_group` bars; `draw` paints on the root area.
fn draw_svg(
    chart: &str,
    groups: usize,
    per_group: usize,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<String, ChartError> {
    let plot_height = groups as u32 * (per_group as u32 * BAR_PX + GROUP_GAP_PX);
    let height = TITLE_HEIGHT + plot_height + AXIS_HEIGHT;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.into())
            .and_then(|_| draw(&root))
            .and_then(|_| root.present().map_err(|e| e.into()));
        drawn.map_err(|e| ChartError::Draw {
            chart: chart.to_string(),
            message: e.to_string(),
        })?;
    }
    Ok(svg)
}

fn text_style(size: u32, colour: RGBColor, h: HPos) -> TextStyle<'static> {
    TextStyle {
        font: (FONT, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(h, VPos::Center),
    }
}

/// The width of the label column: enough for the longest name.
fn label_width(names: impl Iterator<Item = usize>) -> u32 {
    let longest = names.max().unwrap_or(8) as u32;
    (longest * 8 + 24).clamp(110, 320)
}

/// Title at the top and the data source at the bottom left.
fn frame(root: &DrawingArea<SVGBackend, Shift>, results: &Results, title: &str) -> DrawResult {
    root.draw(&Text::new(
        title.to_string(),
        (20, 22),
        text_style(22, BLACK, HPos::Left),
    ))?;
    let source = format!(
        "run {} on {}, kernel {}, {} × {} s, median and 95% interval of the median",
        results.run_id,
        results.host.hostname,
        results.host.kernel,
        results.settings.repetitions,
        format_number(results.settings.duration_s)
    );
    let (_, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        source,
        (20, h as i32 - 14),
        text_style(12, MUTED, HPos::Left),
    ))?;
    Ok(())
}

/// Legend entries in a row under the title: coloured square and name.
fn legend(
    root: &DrawingArea<SVGBackend, Shift>,
    x: i32,
    entries: &[(&str, RGBColor)],
) -> DrawResult {
    let y = 50;
    let mut at = x;
    for (name, colour) in entries {
        root.draw(&Rectangle::new(
            [(at, y - 6), (at + 12, y + 6)],
            colour.filled(),
        ))?;
        root.draw(&Text::new(
            name.to_string(),
            (at + 18, y),
            text_style(14, BLACK, HPos::Left),
        ))?;
        at += 18 + 9 * name.chars().count() as i32 + 24;
    }
    Ok(())
}

fn draw_bars(
    root: &DrawingArea<SVGBackend, Shift>,
    results: &Results,
    title: &str,
    groups: &[(String, Vec<Bar>)],
    axis: &str,
) -> DrawResult {
    const SERIES: [(&str, RGBColor); 2] = [("pod IP", POD_COLOUR), ("cluster IP", CLUSTER_COLOUR)];
    const METRIC: &str = "throughput_gbps";
    frame(root, results, title)?;
    let left = label_width(groups.iter().map(|(n, _)| n.chars().count()));
    legend(root, left as i32, &SERIES)?;

    let top = |cell: &Cell| {
        cell.metrics
            .get(METRIC)
            .filter(|_| cell.status == CellStatus::Ok)
            .map(|m| interval(m).1.max(m.median))
    };
    let x_max = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().filter_map(|b| b.cell.and_then(top)))
        .fold(0.0_f64, f64::max);
    // Room right of the longest bar for its value label.
    let x_max = if x_max > 0.0 { x_max * 1.18 } else { 1.0 };

    let n = groups.len() as f64;
    let plot = root.margin(TITLE_HEIGHT, AXIS_HEIGHT - 50, 0, 30);
    let mut chart = ChartBuilder::on(&plot)
        .x_label_area_size(50)
        .y_label_area_size(left)
        .build_cartesian_2d(0.0..x_max, 0.0..n)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(axis)
        .x_label_formatter(&|v| format_number(*v))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()?;

    // Group g occupies y in [n - g - 1, n - g]; bars stack downwards in it.
    let per_group = f64::from(BAR_PX * 2 + GROUP_GAP_PX);
    let bar = f64::from(BAR_PX) / per_group;
    let gap = f64::from(GROUP_GAP_PX) / per_group;
    for (g, (name, bars)) in groups.iter().enumerate() {
        let group_top = n - g as f64;
        let centre = group_top - 0.5;
        let (px, py) = chart.backend_coord(&(0.0, centre));
        root.draw(&Text::new(
            name.clone(),
            (px - 10, py),
            text_style(15, BLACK, HPos::Right),
        ))?;
        for b in bars {
            let y1 = group_top - gap / 2.0 - b.series as f64 * bar;
            let y0 = y1 - bar * 0.9;
            let mid = (y0 + y1) / 2.0;
            let colour = SERIES[b.series].1;
            let note = |text: String| {
                EmptyElement::at((0.0, mid))
                    + Text::new(text, (6, 0), text_style(13, MUTED, HPos::Left))
            };
            let Some(cell) = b.cell else {
                chart.draw_series(std::iter::once(note(format!(
                    "{}: not measured",
                    SERIES[b.series].0
                ))))?;
                continue;
            };
            let metric = match cell.status {
                CellStatus::Ok => cell.metrics.get(METRIC),
                _ => None,
            };
            let Some(m) = metric else {
                let word = match cell.status {
                    CellStatus::Skipped => "skipped",
                    CellStatus::Failed => "failed",
                    CellStatus::Ok => "no throughput value",
                };
                chart.draw_series(std::iter::once(note(format!(
                    "{}: {word}",
                    SERIES[b.series].0
                ))))?;
                continue;
            };
            let (low, high) = interval(m);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y0), (m.median, y1)],
                colour.filled(),
            )))?;
            let whisker = BLACK.stroke_width(1);
            let cap = bar * 0.25;
            chart.draw_series([
                PathElement::new(vec![(low, mid), (high, mid)], whisker),
                PathElement::new(vec![(low, mid - cap), (low, mid + cap)], whisker),
                PathElement::new(vec![(high, mid - cap), (high, mid + cap)], whisker),
            ])?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((high, mid))
                    + Text::new(
                        format_number(m.median),
                        (6, 0),
                        text_style(13, BLACK, HPos::Left),
                    ),
            ))?;
        }
    }
    Ok(())
}

/// A row of the latency chart: a cell and how to name it.
struct LatencyRow<'a> {
    name: String,
    cell: &'a Cell,
}

const PERCENTILES: [(&str, &str, RGBColor); 3] = [
    ("latency_us_p50", "p50", P50_COLOUR),
    ("latency_us_p90", "p90", P90_COLOUR),
    ("latency_us_p99", "p99", P99_COLOUR),
];

fn latency_row_name(cell: &Cell) -> String {
    let target = match cell.target.as_str() {
        "pod-ip" => "pod IP",
        "cluster-ip" => "cluster IP",
        "node-ip" => "node IP",
        other => other,
    };
    match &cell.overlay {
        None => format!("{} · {target}", cell.datapath),
        Some(o) => format!("{o} · {} > {}", cell.client, cell.server),
    }
}

/// p50, p90 and p99 latency per cell of `workload` (medians over the
/// repetitions), one row per cell; `None` when no cell has latency values
/// and no cell of the workload was skipped or failed.
pub fn latency_percentiles(results: &Results, workload: &str) -> Result<Option<Chart>, ChartError> {
    let rows: Vec<LatencyRow> = results
        .cells
        .iter()
        .filter(|c| c.workload == workload)
        .filter(|c| c.status != CellStatus::Ok || c.metrics.contains_key("latency_us_p50"))
        .map(|cell| LatencyRow {
            name: latency_row_name(cell),
            cell,
        })
        .collect();
    if !rows.iter().any(|r| r.cell.status == CellStatus::Ok) {
        return Ok(None);
    }
    let title = format!("{workload} latency percentiles per cell");
    let file_name = format!("{workload}-latency.svg");
    let svg = draw_svg(&title, rows.len(), 1, |root| {
        draw_percentiles(root, results, &title, &rows)
    })?;
    Ok(Some(Chart {
        title,
        file_name,
        svg,
    }))
}

fn draw_percentiles(
    root: &DrawingArea<SVGBackend, Shift>,
    results: &Results,
    title: &str,
    rows: &[LatencyRow],
) -> DrawResult {
    frame(root, results, title)?;
    let left = label_width(rows.iter().map(|r| r.name.chars().count()));
    let legend_entries: Vec<(&str, RGBColor)> =
        PERCENTILES.iter().map(|(_, n, c)| (*n, *c)).collect();
    legend(root, left as i32, &legend_entries)?;

    let value = |cell: &Cell, metric: &str| {
        (cell.status == CellStatus::Ok)
            .then(|| cell.metrics.get(metric).map(|m| m.median))
            .flatten()
    };
    let x_max = rows
        .iter()
        .flat_map(|r| PERCENTILES.iter().filter_map(|(m, _, _)| value(r.cell, m)))
        .fold(0.0_f64, f64::max);
    // Room for the "p50 / p90 / p99" text right of the last marker.
    let x_max = if x_max > 0.0 { x_max * 1.45 } else { 1.0 };

    let n = rows.len() as f64;
    let plot = root.margin(TITLE_HEIGHT, AXIS_HEIGHT - 50, 0, 30);
    let mut chart = ChartBuilder::on(&plot)
        .x_label_area_size(50)
        .y_label_area_size(left)
        .build_cartesian_2d(0.0..x_max, 0.0..n)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("latency (µs), median over the repetitions")
        .x_label_formatter(&|v| format_number(*v))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()?;

    for (i, row) in rows.iter().enumerate() {
        let y = n - i as f64 - 0.5;
        let (px, py) = chart.backend_coord(&(0.0, y));
        root.draw(&Text::new(
            row.name.clone(),
            (px - 10, py),
            text_style(14, BLACK, HPos::Right),
        ))?;
        let points: Vec<(f64, RGBColor)> = PERCENTILES
            .iter()
            .filter_map(|(m, _, c)| value(row.cell, m).map(|v| (v, *c)))
            .collect();
        if points.is_empty() {
            let word = match row.cell.status {
                CellStatus::Skipped => "skipped",
                CellStatus::Failed => "failed",
                CellStatus::Ok => "no latency values",
            };
            chart.draw_series(std::iter::once(
                EmptyElement::at((0.0, y))
                    + Text::new(word, (6, 0), text_style(13, MUTED, HPos::Left)),
            ))?;
            continue;
        }
        let low = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let high = points.iter().map(|p| p.0).fold(0.0, f64::max);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(low, y), (high, y)],
            RGBColor(0xaa, 0xaa, 0xaa).stroke_width(2),
        )))?;
        chart.draw_series(
            points
                .iter()
                .map(|(v, c)| Circle::new((*v, y), 5, c.filled())),
        )?;
        let label = points
            .iter()
            .map(|(v, _)| format_number(*v))
            .collect::<Vec<_>>()
            .join(" / ");
        chart.draw_series(std::iter::once(
            EmptyElement::at((high, y))
                + Text::new(label, (10, 0), text_style(13, BLACK, HPos::Left)),
        ))?;
    }
    Ok(())
}
