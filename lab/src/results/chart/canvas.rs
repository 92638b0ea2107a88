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

pub(super) const MUTED: RGBColor = RGBColor(0x70, 0x70, 0x70);

pub(super) type DrawError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type DrawResult = Result<(), DrawError>;
pub(super) type Axes<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Pixels of height per bar and per gap between groups.
pub(super) const BAR_PX: u32 = 18;
pub(super) const GROUP_GAP_PX: u32 = 16;
/// Pixels between two rows of legend entries.
const LEGEND_ROW_PX: u32 = 22;

/// Renders into an SVG string `height` pixels high; `draw` paints on the
/// root area.
pub(super) fn draw_svg(
    chart: &str,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<String, ChartError> {
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

/// A series as the legend and the bars show it: a colour, filled, or
/// light with a border of the colour (`hollow`).
#[derive(Debug, Clone)]
pub(super) struct Swatch {
    pub name: String,
    pub colour: RGBColor,
    pub hollow: bool,
}

impl Swatch {
    pub fn filled(name: impl Into<String>, colour: RGBColor) -> Swatch {
        Swatch {
            name: name.into(),
            colour,
            hollow: false,
        }
    }

    /// Paints a box in this swatch's style between two corners.
    pub fn paint(
        &self,
        root: &DrawingArea<SVGBackend, Shift>,
        corners: [(i32, i32); 2],
    ) -> DrawResult {
        if !self.hollow {
            return Ok(root.draw(&Rectangle::new(corners, self.colour.filled()))?);
        }
        // 35% of the colour on white: light, yet the same hue as its border.
        let mix = |c: u8| (f64::from(c) * 0.35 + 255.0 * 0.65).round() as u8;
        let RGBColor(r, g, b) = self.colour;
        root.draw(&Rectangle::new(
            corners,
            RGBColor(mix(r), mix(g), mix(b)).filled(),
        ))?;
        root.draw(&Rectangle::new(corners, self.colour.stroke_width(2)))?;
        Ok(())
    }
}

/// Where each legend entry goes, left to right from `x` under the title,
/// wrapping to a new row before the right edge.
pub(super) fn legend_positions(x: i32, entries: &[Swatch]) -> Vec<(i32, i32)> {
    let (mut at, mut y) = (x, 50);
    let mut positions = Vec::new();
    for e in entries {
        let width = 18 + 8 * e.name.chars().count() as i32;
        if at > x && at + width > WIDTH as i32 - 10 {
            at = x;
            y += LEGEND_ROW_PX as i32;
        }
        positions.push((at, y));
        at += width + 24;
    }
    positions
}

/// Pixels above the plot: the title and every row of the legend.
pub(super) fn top_height(legend: &[(i32, i32)]) -> u32 {
    let last = legend.iter().map(|p| p.1).max().unwrap_or(50);
    TITLE_HEIGHT + (last - 50) as u32
}

/// The legend entries at their positions: marker and name.
pub(super) fn legend(
    root: &DrawingArea<SVGBackend, Shift>,
    positions: &[(i32, i32)],
    marker: Marker,
    entries: &[Swatch],
) -> DrawResult {
    for (e, &(at, y)) in entries.iter().zip(positions) {
        match marker {
            Marker::Square => e.paint(root, [(at, y - 6), (at + 12, y + 6)])?,
            Marker::Dot => root.draw(&Circle::new((at + 6, y), 6, e.colour.filled()))?,
        }
        root.draw(&Text::new(
            e.name.clone(),
            (at + 18, y),
            text_style(14, BLACK, HPos::Left),
        ))?;
    }
    Ok(())
}

/// Axes below `top` pixels, x from 0 to `x_max`, y from 0 to `y_max`.
pub(super) fn axes<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    top: u32,
    left: u32,
    (x_max, y_max): (f64, f64),
    axis: &str,
) -> Result<Axes<'a, 'b>, DrawError> {
    let plot = root.margin(top, AXIS_HEIGHT - 45, 0, 30);
    let mut chart = ChartBuilder::on(&plot)
        .x_label_area_size(45)
        .y_label_area_size(left)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
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
