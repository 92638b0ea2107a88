//! Grouped horizontal bar charts: a median bar per series with the 95%
//! interval of the median as a whisker. A group holds only the bars its
//! builder gives it, so groups may differ in height.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::canvas::{
    axes, draw_svg, frame, label_width, legend, legend_positions, ok_value, text_style, top_height,
    DrawResult, Marker, Swatch, AXIS_HEIGHT, BAR_PX, GROUP_GAP_PX, MUTED,
};
use super::{Chart, ChartError};
use crate::results::format::{format_number, interval, status_word};
use crate::results::{Cell, CellStatus, Results};

/// One bar: which series it belongs to and the cell it shows, if any.
pub(super) struct Bar<'a> {
    pub(super) series: usize,
    pub(super) cell: Option<&'a Cell>,
}

/// Bars drawn one under the other next to one label.
pub(super) struct BarGroup<'a> {
    pub(super) name: String,
    pub(super) bars: Vec<Bar<'a>>,
}

impl BarGroup<'_> {
    /// Plot units (pixels) the group takes, its gap included.
    fn height(&self) -> f64 {
        f64::from(self.bars.len() as u32 * BAR_PX + GROUP_GAP_PX)
    }
}

/// What a bar chart shows.
pub(super) struct BarChart<'a> {
    pub(super) title: String,
    pub(super) metric: &'static str,
    pub(super) axis: &'static str,
    pub(super) series: Vec<Swatch>,
    pub(super) groups: Vec<BarGroup<'a>>,
}

pub(super) fn render_bars(
    results: &Results,
    spec: BarChart,
    file_name: String,
) -> Result<Chart, ChartError> {
    let left = label_width(spec.groups.iter().map(|g| g.name.chars().count()));
    let positions = legend_positions(left as i32, &spec.series);
    let top = top_height(&positions);
    let plot: f64 = spec.groups.iter().map(BarGroup::height).sum();
    let height = top + plot as u32 + AXIS_HEIGHT;
    let svg = draw_svg(&spec.title, height, |root| {
        frame(
            root,
            results,
            &spec.title,
            "bar: median, whisker: 95% interval of the median",
        )?;
        legend(root, &positions, Marker::Square, &spec.series)?;
        draw_bars(root, &spec, top, left)
    })?;
    Ok(Chart {
        title: spec.title,
        file_name,
        svg,
    })
}

fn draw_bars(
    root: &DrawingArea<SVGBackend, Shift>,
    spec: &BarChart,
    top: u32,
    left: u32,
) -> DrawResult {
    let value = |cell| ok_value(cell, spec.metric);
    let x_max = spec
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().filter_map(|b| b.cell.and_then(value)))
        .map(|m| interval(m).1.max(m.median))
        .fold(0.0_f64, f64::max);
    // Room right of the longest bar for its value label.
    let x_max = if x_max > 0.0 { x_max * 1.15 } else { 1.0 };
    let y_max: f64 = spec.groups.iter().map(BarGroup::height).sum();
    let chart = axes(root, top, left, (x_max, y_max), spec.axis)?;

    // y runs upwards in pixels; groups go top down, their bars too.
    let bar = f64::from(BAR_PX);
    let gap = f64::from(GROUP_GAP_PX);
    let mut group_top = y_max;
    for group in &spec.groups {
        let (px, py) = chart.backend_coord(&(0.0, group_top - group.height() / 2.0));
        root.draw(&Text::new(
            group.name.clone(),
            (px - 10, py),
            text_style(15, BLACK, HPos::Right),
        ))?;
        for (k, b) in group.bars.iter().enumerate() {
            let y1 = group_top - gap / 2.0 - k as f64 * bar;
            let y0 = y1 - bar * 0.9;
            let mid = (y0 + y1) / 2.0;
            let swatch = &spec.series[b.series];
            let Some(m) = b.cell.and_then(value) else {
                let word = match b.cell.map(|c| c.status) {
                    None => "not measured",
                    Some(CellStatus::Ok) => "no value",
                    Some(other) => status_word(other),
                };
                let (x, y) = chart.backend_coord(&(0.0, mid));
                root.draw(&Text::new(
                    format!("{}: {word}", swatch.name),
                    (x + 6, y),
                    text_style(13, MUTED, HPos::Left),
                ))?;
                continue;
            };
            let (low, high) = interval(m);
            swatch.paint(
                root,
                [
                    chart.backend_coord(&(0.0, y0)),
                    chart.backend_coord(&(m.median, y1)),
                ],
            )?;
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
        group_top -= group.height();
    }
    Ok(())
}
