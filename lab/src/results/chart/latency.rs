//! Latency percentile charts: p50, p90 and p99 per cell as dots on a line.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::canvas::{
    axes, draw_svg, frame, label_width, legend, legend_positions, ok_value, text_style, top_height,
    DrawResult, Marker, Swatch, AXIS_HEIGHT, BAR_PX, GROUP_GAP_PX, MUTED, TITLE_HEIGHT,
};
use super::palette::{P50_COLOUR, P90_COLOUR, P99_COLOUR};
use super::{Chart, ChartError};
use crate::results::format::{format_number, status_word};
use crate::results::{Cell, CellStatus, Results};

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
        "node-port" => "node port",
        "node-ip" => "node IP",
        other => other,
    };
    let proxy = cell
        .service_proxy
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    match &cell.overlay {
        None => format!("{} · {target}{proxy}", cell.datapath),
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
    // One bar's height per row, as the bar charts, and the legend in one row.
    let height = TITLE_HEIGHT + rows.len() as u32 * (BAR_PX + GROUP_GAP_PX) + AXIS_HEIGHT;
    let svg = draw_svg(&title, height, |root| {
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
    let legend_entries: Vec<Swatch> = PERCENTILES
        .iter()
        .map(|(_, n, c)| Swatch::filled(*n, *c))
        .collect();
    let positions = legend_positions(left as i32, &legend_entries);
    legend(root, &positions, Marker::Dot, &legend_entries)?;

    let value = |cell, metric| ok_value(cell, metric).map(|m| m.median);
    let x_max = rows
        .iter()
        .flat_map(|r| PERCENTILES.iter().filter_map(|(m, _, _)| value(r.cell, m)))
        .fold(0.0_f64, f64::max);
    // Room for the "p50 / p90 / p99" text right of the last marker.
    let x_max = if x_max > 0.0 { x_max * 1.45 } else { 1.0 };

    let n = rows.len() as f64;
    let top = top_height(&positions);
    let mut chart = axes(root, top, left, (x_max, n), "latency (µs)")?;

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
                CellStatus::Ok => "no latency values",
                other => status_word(other),
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
