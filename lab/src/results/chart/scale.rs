//! Scale charts of a service-count sweep: one line chart per metric, x the
//! services the proxy held (log scale), one line per proxy through the
//! medians, whiskers the 95% interval of each median. Times that span more
//! than a decade get a log y axis too.

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{
    axis_number, draw_svg, frame, legend, legend_positions, top_height, DrawResult, Marker, Swatch,
    AXIS_HEIGHT, FONT,
};
use super::palette::proxy_colours;
use super::{Chart, ChartError};
use crate::results::format::services_label;
use crate::results::sweep::{scale_metrics, series, ScaleMetric, Series, CHARTED};
use crate::results::Results;

/// File name of the chart of `metric`.
pub fn chart_file(metric: &str) -> String {
    format!("scale-{}.svg", metric.replace('_', "-"))
}

/// Whether a chart file belongs to the Scale section.
pub fn is_scale_chart(file: &str) -> bool {
    file.starts_with("scale-")
}

const HEIGHT: u32 = 440;
/// A y axis spanning more than this ratio is drawn on a log scale.
const LOG_Y_ABOVE: f64 = 20.0;

/// The scale charts the results have data for.
pub fn scale_charts(results: &Results) -> Result<Vec<Chart>, ChartError> {
    let mut charts = Vec::new();
    for (workload, metric) in scale_metrics() {
        if !CHARTED.contains(&metric.name) {
            continue;
        }
        let lines = series(results, workload, metric.name);
        if lines.iter().all(|s| s.values.is_empty()) {
            continue;
        }
        let title = format!("{} ({}) per service count", metric.title, metric.unit);
        let svg = draw_svg(&title, HEIGHT, |root| {
            draw(root, results, &title, &metric, &lines)
        })?;
        charts.push(Chart {
            title,
            file_name: chart_file(metric.name),
            svg,
        });
    }
    Ok(charts)
}

fn draw(
    root: &DrawingArea<SVGBackend, Shift>,
    results: &Results,
    title: &str,
    metric: &ScaleMetric,
    lines: &[Series],
) -> DrawResult {
    frame(
        root,
        results,
        title,
        "lines through the medians; whiskers: 95% interval of the median",
    )?;
    let proxies: Vec<Option<String>> = lines.iter().map(|s| Some(s.proxy.clone())).collect();
    let colours = proxy_colours(&proxies);
    let swatches: Vec<Swatch> = lines
        .iter()
        .zip(&colours)
        .map(|(s, c)| Swatch::filled(s.label.clone(), *c))
        .collect();
    let positions = legend_positions(90, &swatches);
    legend(root, &positions, Marker::Dot, &swatches)?;
    let top = top_height(&positions);

    let counts: Vec<f64> = lines
        .iter()
        .flat_map(|s| s.values.iter().map(|(n, _)| f64::from(*n)))
        .collect();
    let x_min = counts.iter().copied().fold(f64::INFINITY, f64::min);
    let x_max = counts.iter().copied().fold(0.0, f64::max);
    // Half a step of room on both sides of the log axis.
    let x = (x_min / 1.6)..(x_max * 1.6).max(x_min * 3.0);
    let (low, high) = y_extent(lines);
    let plot = root.margin(top, AXIS_HEIGHT - 45, 0, 30);
    if low > 0.0 && high / low > LOG_Y_ABOVE {
        let y = (low / 1.5..high * 1.5).log_scale();
        plot_lines(root, &plot, x, y, metric, lines, &colours, true)
    } else {
        let y = 0.0..(high * 1.15).max(f64::MIN_POSITIVE);
        plot_lines(root, &plot, x, y, metric, lines, &colours, false)
    }
}

/// Smallest and largest whisker end of every series.
fn y_extent(lines: &[Series]) -> (f64, f64) {
    let ends = lines.iter().flat_map(|s| {
        s.values.iter().flat_map(|(_, m)| {
            let (lo, hi) = crate::results::format::interval(m);
            [lo, hi, m.median]
        })
    });
    ends.filter(|v| v.is_finite())
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

#[allow(clippy::too_many_arguments)]
fn plot_lines<Y>(
    root: &DrawingArea<SVGBackend, Shift>,
    plot: &DrawingArea<SVGBackend, Shift>,
    x: Range<f64>,
    y: Y,
    metric: &ScaleMetric,
    lines: &[Series],
    colours: &[RGBColor],
    log_y: bool,
) -> DrawResult
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(plot)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x.log_scale(), y)?;
    let y_desc = if log_y {
        format!("{} (log scale)", metric.unit)
    } else {
        metric.unit.to_string()
    };
    chart
        .configure_mesh()
        .x_desc("services held by the proxy (log scale)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| services_label(v.round() as u32))
        .y_label_formatter(&axis_number)
        .x_labels(6)
        .y_labels(8)
        .max_light_lines(1)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()?;
    for (s, &colour) in lines.iter().zip(colours) {
        let points: Vec<(f64, f64)> = s
            .values
            .iter()
            .map(|(n, m)| (f64::from(*n), m.median))
            .collect();
        chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        for (n, m) in &s.values {
            let (lo, hi) = crate::results::format::interval(m);
            let n = f64::from(*n);
            if hi > lo {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(n, lo), (n, hi)],
                    colour.stroke_width(1),
                )))?;
                // Caps a few pixels wide whatever the scale.
                for v in [lo, hi] {
                    let (px, py) = chart.backend_coord(&(n, v));
                    root.draw(&PathElement::new(
                        vec![(px - 5, py), (px + 5, py)],
                        colour.stroke_width(1),
                    ))?;
                }
            }
        }
    }
    Ok(())
}
