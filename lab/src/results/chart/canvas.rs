//! What every chart shares: the SVG canvas sized to its rows, title and
//! source line, legend, axes and text styles.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ChartError;
use crate::results::format::format_number;
use crate::results::{Cell, CellStatus, Metric, Results};

pub(super) const WIDTH: u32 = 800;
pub(super) const TITLE_HEIGHT: u32 = 70;
pub(super) const AXIS_HEIGHT: u32 = 70;
pub(super) const FONT: &str = "sans-serif";

pub(super) const POD_COLOUR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub(super) const CLUSTER_COLOUR: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
pub(super) const P50_COLOUR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub(super) const P90_COLOUR: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
pub(super) const P99_COLOUR: RGBColor = RGBColor(0xd6, 0x27, 0x28);
pub(super) const MUTED: RGBColor = RGBColor(0x70, 0x70, 0x70);

pub(super) type DrawError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type DrawResult = Result<(), DrawError>;
pub(super) type Axes<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Pixels of height per bar and per gap between groups.
pub(super) const BAR_PX: u32 = 18;
pub(super) const GROUP_GAP_PX: u32 = 16;

/// Renders into an SVG string with a height that fits `groups` groups of
/// `per_group` bars; `draw` paints on the root area.
pub(super) fn draw_svg(
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

pub(super) fn text_style(size: u32, colour: RGBColor, h: HPos) -> TextStyle<'static> {
    TextStyle {
        font: (FONT, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(h, VPos::Center),
    }
}

/// Axis tick labels: `5`, `2.5`, `0.25`, without trailing zeros.
pub(super) fn axis_number(v: &f64) -> String {
    let s = format_number(*v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The width of the label column: enough for the longest name.
pub(super) fn label_width(names: impl Iterator<Item = usize>) -> u32 {
    let longest = names.max().unwrap_or(8) as u32;
    (longest * 8 + 24).clamp(110, 440)
}

/// Title at the top and, at the bottom left, where the data comes from.
pub(super) fn frame(
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
pub(super) enum Marker {
    Square,
    Dot,
}

/// Legend entries in a row under the title: marker and name.
pub(super) fn legend(
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
pub(super) fn axes<'a, 'b>(
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
pub(super) fn ok_value<'c>(cell: &'c Cell, metric: &str) -> Option<&'c Metric> {
    match cell.status {
        CellStatus::Ok => cell.metrics.get(metric).filter(|m| m.median.is_finite()),
        _ => None,
    }
}
