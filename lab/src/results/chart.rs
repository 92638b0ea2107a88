//! SVG charts of a run (plotters, SVG backend): throughput bars per
//! datapath with their 95% intervals, and latency percentiles per cell.
//! Bars run horizontally so that datapath names stay legible at 800 px.

use plotters::coord::types::RangedCoordf64;
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

type DrawError = Box<dyn std::error::Error + Send + Sync>;
type DrawResult = Result<(), DrawError>;
type Axes<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Every chart the results have data for.
pub fn all_charts(results: &Results) -> Result<Vec<Chart>, ChartError> {
    let mut charts = Vec::new();
    for workload in ["tcp-stream", "udp-stream"] {
        charts.extend(throughput_bars(results, workload)?);
    }
    charts.extend(overlay_bandwidth(results)?);
    for workload in ["tcp-rr", "tcp-crr", "http"] {
        charts.extend(latency_percentiles(results, workload)?);
    }
    Ok(charts)
}

/// One bar: which series it belongs to and the cell it shows, if any.
struct Bar<'a> {
    series: usize,
    cell: Option<&'a Cell>,
}

/// Bars drawn side by side under one label.
struct BarGroup<'a> {
    name: String,
    bars: Vec<Bar<'a>>,
}

/// What a bar chart shows.
struct BarChart<'a> {
    title: String,
    metric: &'static str,
    axis: &'static str,
    series: Vec<(String, RGBColor)>,
    groups: Vec<BarGroup<'a>>,
}

/// Colours of the series, in order (matplotlib's tab10, colour-blind safe
/// for the first two).
const PALETTE: [RGBColor; 4] = [
    POD_COLOUR,
    CLUSTER_COLOUR,
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

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

fn render_bars(results: &Results, spec: BarChart, file_name: String) -> Result<Chart, ChartError> {
    let per_group = spec.series.len().max(1);
    let svg = draw_svg(&spec.title, spec.groups.len(), per_group, |root| {
        draw_bars(root, results, &spec)
    })?;
    Ok(Chart {
        title: spec.title,
        file_name,
        svg,
    })
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

/// Axis tick labels: `5`, `2.5`, `0.25`, without trailing zeros.
fn axis_number(v: &f64) -> String {
    let s = format_number(*v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The width of the label column: enough for the longest name.
fn label_width(names: impl Iterator<Item = usize>) -> u32 {
    let longest = names.max().unwrap_or(8) as u32;
    (longest * 8 + 24).clamp(110, 440)
}

/// Title at the top and, at the bottom left, where the data comes from.
fn frame(
    root: &DrawingArea<SVGBackend, Shift>,
    results: &Results,
    title: &str,
    shows: &str,
) -> DrawResult {
    root.draw(&Text::new(
        title.to_string(),
        (20, 22),
        text_style(22, BLACK, HPos::Left),
    ))?;
    let source = format!(
        "run {} on {}, kernel {}, {} × {} s; {shows}",
        results.run_id,
        results.host.hostname,
        results.host.kernel,
        results.settings.repetitions,
        results.settings.duration_s
    );
    let (_, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        source,
        (20, h as i32 - 12),
        text_style(12, MUTED, HPos::Left),
    ))?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Marker {
    Square,
    Dot,
}

/// Legend entries in a row under the title: marker and name.
fn legend(
    root: &DrawingArea<SVGBackend, Shift>,
    x: i32,
    marker: Marker,
    entries: &[(String, RGBColor)],
) -> DrawResult {
    let y = 50;
    let mut at = x;
    for (name, colour) in entries {
        match marker {
            Marker::Square => root.draw(&Rectangle::new(
                [(at, y - 6), (at + 12, y + 6)],
                colour.filled(),
            ))?,
            Marker::Dot => root.draw(&Circle::new((at + 6, y), 6, colour.filled()))?,
        }
        root.draw(&Text::new(
            name.clone(),
            (at + 18, y),
            text_style(14, BLACK, HPos::Left),
        ))?;
        at += 18 + 9 * name.chars().count() as i32 + 24;
    }
    Ok(())
}

/// Axes with the x scale from 0 to `x_max`, one y unit per row.
fn axes<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    left: u32,
    x_max: f64,
    rows: usize,
    axis: &str,
) -> Result<Axes<'a, 'b>, DrawError> {
    let plot = root.margin(TITLE_HEIGHT, AXIS_HEIGHT - 45, 0, 30);
    let mut chart = ChartBuilder::on(&plot)
        .x_label_area_size(45)
        .y_label_area_size(left)
        .build_cartesian_2d(0.0..x_max, 0.0..rows as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(8)
        .max_light_lines(1)
        .x_desc(axis)
        .x_label_formatter(&axis_number)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()?;
    Ok(chart)
}

/// The cell's metric if the cell ran.
fn ok_value<'c>(cell: &'c Cell, metric: &str) -> Option<&'c super::Metric> {
    match cell.status {
        CellStatus::Ok => cell.metrics.get(metric).filter(|m| m.median.is_finite()),
        _ => None,
    }
}

fn draw_bars(
    root: &DrawingArea<SVGBackend, Shift>,
    results: &Results,
    spec: &BarChart,
) -> DrawResult {
    frame(
        root,
        results,
        &spec.title,
        "bar: median, whisker: 95% interval of the median",
    )?;
    let left = label_width(spec.groups.iter().map(|g| g.name.chars().count()));
    legend(root, left as i32, Marker::Square, &spec.series)?;

    let value = |cell| ok_value(cell, spec.metric);
    let x_max = spec
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().filter_map(|b| b.cell.and_then(value)))
        .map(|m| interval(m).1.max(m.median))
        .fold(0.0_f64, f64::max);
    // Room right of the longest bar for its value label.
    let x_max = if x_max > 0.0 { x_max * 1.15 } else { 1.0 };
    let n = spec.groups.len();
    let chart = axes(root, left, x_max, n, spec.axis)?;

    // Group g occupies y in [n - g - 1, n - g]; its bars stack downwards.
    let per_group = spec.series.len().max(1) as u32;
    let unit = f64::from(per_group * BAR_PX + GROUP_GAP_PX);
    let bar = f64::from(BAR_PX) / unit;
    let gap = f64::from(GROUP_GAP_PX) / unit;
    for (g, group) in spec.groups.iter().enumerate() {
        let group_top = (n - g) as f64;
        let (px, py) = chart.backend_coord(&(0.0, group_top - 0.5));
        root.draw(&Text::new(
            group.name.clone(),
            (px - 10, py),
            text_style(15, BLACK, HPos::Right),
        ))?;
        for b in &group.bars {
            let y1 = group_top - gap / 2.0 - b.series as f64 * bar;
            let y0 = y1 - bar * 0.9;
            let mid = (y0 + y1) / 2.0;
            let (series, colour) = &spec.series[b.series];
            let Some(m) = b.cell.and_then(value) else {
                let word = match b.cell.map(|c| c.status) {
                    None => "not measured",
                    Some(CellStatus::Skipped) => "skipped",
                    Some(CellStatus::Failed) => "failed",
                    Some(CellStatus::Unreachable) => "unreachable",
                    Some(CellStatus::Ok) => "no value",
                };
                let (x, y) = chart.backend_coord(&(0.0, mid));
                root.draw(&Text::new(
                    format!("{series}: {word}"),
                    (x + 6, y),
                    text_style(13, MUTED, HPos::Left),
                ))?;
                continue;
            };
            let (low, high) = interval(m);
            root.draw(&Rectangle::new(
                [
                    chart.backend_coord(&(0.0, y0)),
                    chart.backend_coord(&(m.median, y1)),
                ],
                colour.filled(),
            ))?;
            let whisker = BLACK.stroke_width(1);
            let (lx, my) = chart.backend_coord(&(low, mid));
            let (hx, _) = chart.backend_coord(&(high, mid));
            for path in [
                vec![(lx, my), (hx, my)],
                vec![(lx, my - 4), (lx, my + 4)],
                vec![(hx, my - 4), (hx, my + 4)],
            ] {
                root.draw(&PathElement::new(path, whisker))?;
            }
            root.draw(&Text::new(
                format_number(m.median),
                (hx + 6, my),
                text_style(13, BLACK, HPos::Left),
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
    frame(root, results, title, "dots: medians over the repetitions")?;
    let left = label_width(rows.iter().map(|r| r.name.chars().count()));
    let legend_entries: Vec<(String, RGBColor)> = PERCENTILES
        .iter()
        .map(|(_, n, c)| (n.to_string(), *c))
        .collect();
    legend(root, left as i32, Marker::Dot, &legend_entries)?;

    let value = |cell, metric| ok_value(cell, metric).map(|m| m.median);
    let x_max = rows
        .iter()
        .flat_map(|r| PERCENTILES.iter().filter_map(|(m, _, _)| value(r.cell, m)))
        .fold(0.0_f64, f64::max);
    // Room for the "p50 / p90 / p99" text right of the last marker.
    let x_max = if x_max > 0.0 { x_max * 1.45 } else { 1.0 };

    let n = rows.len() as f64;
    let mut chart = axes(root, left, x_max, rows.len(), "latency (µs)")?;

    for (i, row) in rows.iter().enumerate() {
        let y = n - i as f64 - 0.5;
        let (px, py) = chart.backend_coord(&(0.0, y));
        root.draw(&Text::new(
            row.name.clone(),
            (px - 10, py),
            text_style(14, BLACK, HPos::Right),
        ))?;
        let points: Vec<(f64, &str, RGBColor)> = PERCENTILES
            .iter()
            .filter_map(|(m, name, c)| value(row.cell, m).map(|v| (v, *name, *c)))
            .collect();
        if points.is_empty() {
            let word = match row.cell.status {
                CellStatus::Skipped => "skipped",
                CellStatus::Failed => "failed",
                CellStatus::Unreachable => "unreachable",
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
        // p50 drawn last, on top, when the dots touch.
        chart.draw_series(
            points
                .iter()
                .rev()
                .map(|(v, _, c)| Circle::new((*v, y), 5, c.filled())),
        )?;
        // With all three present the legend names them; otherwise say which.
        let label = points
            .iter()
            .map(|(v, name, _)| match points.len() {
                3 => format_number(*v),
                _ => format!("{name} {}", format_number(*v)),
            })
            .collect::<Vec<_>>()
            .join(" / ");
        chart.draw_series(std::iter::once(
            EmptyElement::at((high, y))
                + Text::new(label, (10, 0), text_style(13, BLACK, HPos::Left)),
        ))?;
    }
    Ok(())
}
