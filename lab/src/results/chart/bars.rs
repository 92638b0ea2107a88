//! Grouped horizontal bar charts: a median bar per series with the 95%
//! interval of the median as a whisker.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::canvas::{
    axes, draw_svg, frame, label_width, legend, ok_value, text_style, DrawResult, Marker, BAR_PX,
    CLUSTER_COLOUR, GROUP_GAP_PX, MUTED, POD_COLOUR,
};
use super::Chart;
use super::ChartError;
use crate::results::format::{format_number, interval};
use crate::results::{Cell, CellStatus, Results};

/// One bar: which series it belongs to and the cell it shows, if any.
pub(super) struct Bar<'a> {
    pub(super) series: usize,
    pub(super) cell: Option<&'a Cell>,
}

/// Bars drawn side by side under one label.
pub(super) struct BarGroup<'a> {
    pub(super) name: String,
    pub(super) bars: Vec<Bar<'a>>,
}

/// What a bar chart shows.
pub(super) struct BarChart<'a> {
    pub(super) title: String,
    pub(super) metric: &'static str,
    pub(super) axis: &'static str,
    pub(super) series: Vec<(String, RGBColor)>,
    pub(super) groups: Vec<BarGroup<'a>>,
}

/// Colours of the series, in order (matplotlib's tab10, colour-blind safe
/// for the first two).
pub(super) const PALETTE: [RGBColor; 4] = [
    POD_COLOUR,
    CLUSTER_COLOUR,
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

pub(super) fn render_bars(
    results: &Results,
    spec: BarChart,
    file_name: String,
) -> Result<Chart, ChartError> {
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

pub(super) fn draw_bars(
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
