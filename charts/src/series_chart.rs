//! The series charts of one breaker (failure rate, slow-call rate, volume by outcome, latency
//! percentiles) over a time range, rendered by plotters to an SVG string.
//!
//! [`plot`] decides what is drawn (lines, threshold, y range, labels) and is tested as data;
//! `draw` only hands that to plotters.

use plotters::coord::Shift;
use plotters::prelude::*;
use protocol::{Series, SeriesPoint};

use crate::axis::TimeAxis;
use crate::fonts::{Fonts, LABEL_PX, TITLE_PX};
use crate::geometry::{MARGIN, X_LABEL_AREA, Y_LABEL_AREA};
use crate::palette;
use crate::units;
use crate::{Kind, Options};

/// What one chart shows, before any drawing.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    pub caption: String,
    pub y_desc: &'static str,
    pub y_max: f64,
    pub y_unit: Unit,
    pub lines: Vec<Line>,
    /// A dashed horizontal line and its legend label.
    pub threshold: Option<(String, f64)>,
    /// Said in the middle of the plot when no line has a point.
    pub empty_note: &'static str,
}

/// How y values are labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Rate,
    PerSecond,
    Milliseconds,
}

/// One named line; a missing value breaks it into runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: &'static str,
    pub color: RGBColor,
    pub runs: Vec<Vec<(i64, f64)>>,
}

/// The chart of `kind` over `series` as an SVG document.
pub fn render(kind: Kind, series: &Series, options: &Options) -> String {
    let plot = plot(kind, series, options);
    let fonts = Fonts::new(options.width, options.shown_width);
    crate::svg_document((options.width, options.height), fonts, "chart", |root| {
        draw(root, series, &plot, fonts)
    })
    .0
}

/// What the chart of `kind` shows for `series`.
pub fn plot(kind: Kind, series: &Series, options: &Options) -> Plot {
    let caption = format!(
        "{} / {} — {}",
        shorten(&series.service, 60),
        shorten(&series.breaker, 60),
        kind.title()
    );
    let step_s = (series.step_ms.max(1) as f64) / 1000.0;
    let line = |name, color, value: &dyn Fn(&SeriesPoint) -> Option<f64>| Line {
        name,
        color,
        runs: runs(&series.points, value),
    };
    match kind {
        Kind::FailureRate => Plot {
            caption,
            y_desc: "failure rate (%)",
            y_max: 1.0,
            y_unit: Unit::Rate,
            lines: vec![line("failure rate", palette::BLUE, &|point| {
                point.failure_rate.map(|rate| rate.clamp(0.0, 1.0))
            })],
            threshold: series
                .failure_rate_threshold
                .map(|threshold| threshold_line(threshold.clamp(0.0, 1.0))),
            empty_note: "no calls judged in this range",
        },
        Kind::SlowCallRate => Plot {
            caption,
            y_desc: "slow-call rate (%)",
            y_max: 1.0,
            y_unit: Unit::Rate,
            lines: vec![line("slow-call rate", palette::BLUE, &|point| {
                point.slow_call_rate.map(|rate| rate.clamp(0.0, 1.0))
            })],
            threshold: options
                .slow_call_rate_threshold
                .map(|threshold| threshold_line(threshold.clamp(0.0, 1.0))),
            empty_note: "no calls judged in this range",
        },
        Kind::Volume => {
            let per_s = |count: u64| Some(count as f64 / step_s);
            let lines = vec![
                line("success", palette::GREEN, &|point| {
                    per_s(point.counts.success)
                }),
                line("failure", palette::VERMILLION, &|point| {
                    per_s(point.counts.failure)
                }),
                line("timeout", palette::ORANGE, &|point| {
                    per_s(point.counts.timeout)
                }),
                line("rejected", palette::PURPLE, &|point| {
                    per_s(point.counts.rejected)
                }),
            ];
            Plot {
                caption,
                y_desc: "calls/s",
                y_max: headroom(max_of(&lines)),
                y_unit: Unit::PerSecond,
                lines,
                threshold: None,
                empty_note: "no calls in this range",
            }
        }
        Kind::Latency => {
            let lines = vec![
                line("p50", palette::BLUE, &|point| point.p50_ms),
                line("p95", palette::YELLOW, &|point| point.p95_ms),
                line("p99", palette::VERMILLION, &|point| point.p99_ms),
            ];
            Plot {
                caption,
                y_desc: "latency (ms)",
                y_max: headroom(max_of(&lines)),
                y_unit: Unit::Milliseconds,
                lines,
                threshold: None,
                empty_note: "no latencies in this range",
            }
        }
    }
}

fn threshold_line(threshold: f64) -> (String, f64) {
    (
        format!("threshold {}", units::percent(threshold)),
        threshold,
    )
}

fn max_of(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|line| line.runs.iter().flatten())
        .map(|&(_, value)| value)
        .fold(0.0, f64::max)
}

/// A y range a bit above the largest value, never empty.
fn headroom(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.15
    } else {
        1.0
    }
}

/// Runs of consecutive points that have a value; a point without one breaks the line.
pub fn runs(
    points: &[SeriesPoint],
    value: &dyn Fn(&SeriesPoint) -> Option<f64>,
) -> Vec<Vec<(i64, f64)>> {
    let mut runs = Vec::new();
    let mut current = Vec::new();
    for point in points {
        match value(point).filter(|value| value.is_finite()) {
            Some(value) => current.push((point.t_ms, value)),
            None if !current.is_empty() => runs.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// At most `max_chars` characters of an untrusted name, with `…` when cut.
pub(crate) fn shorten(name: &str, max_chars: usize) -> String {
    match name.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_string(),
    }
}

fn y_label(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Rate => format!("{:.0} %", value * 100.0),
        Unit::PerSecond if value >= 1000.0 => format!("{:.1}k/s", value / 1000.0),
        Unit::PerSecond => format!("{value:.0}/s"),
        Unit::Milliseconds if value >= 1000.0 => format!("{:.1} s", value / 1000.0),
        Unit::Milliseconds => format!("{value:.0} ms"),
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &Series,
    plot: &Plot,
    fonts: Fonts,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&palette::BACKGROUND)?;
    let from_ms = series.from_ms;
    let to_ms = series.to_ms.max(from_ms + 1);
    let (width, height) = root.dim_in_pixel();
    let plot_width = f64::from(width) - f64::from(2 * MARGIN + Y_LABEL_AREA);
    let axis = TimeAxis::new(from_ms, to_ms, plot_width, fonts);
    let text = |css_px| fonts.style(css_px, &palette::TEXT);

    let mut chart = ChartBuilder::on(root)
        .caption(&plot.caption, text(TITLE_PX))
        .margin(MARGIN)
        .x_label_area_size(fonts.px(X_LABEL_AREA))
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(
            (from_ms..to_ms).with_key_points(axis.ticks.clone()),
            0.0..plot.y_max,
        )?;
    let x_label_formatter = |t_ms: &i64| axis.label(t_ms);
    let y_label_formatter = |value: &f64| y_label(plot.y_unit, *value);
    chart
        .configure_mesh()
        .x_labels(axis.ticks.len().max(2))
        .y_labels(5)
        .x_label_formatter(&x_label_formatter)
        .y_label_formatter(&y_label_formatter)
        .x_desc("time (UTC)")
        .y_desc(plot.y_desc)
        .label_style(text(LABEL_PX))
        .axis_desc_style(text(LABEL_PX))
        .axis_style(palette::AXIS)
        .bold_line_style(palette::GRID)
        .light_line_style(palette::BACKGROUND)
        .draw()?;

    let mut any_point = false;
    for line in &plot.lines {
        let style = line.color.stroke_width(2);
        let mut labelled = false;
        for run in &line.runs {
            any_point = true;
            let annotated = if run.len() == 1 {
                chart.draw_series(
                    run.iter()
                        .map(|&point| Circle::new(point, 3, line.color.filled())),
                )?
            } else {
                chart.draw_series(LineSeries::new(run.iter().copied(), style))?
            };
            if !labelled {
                labelled = true;
                let color = line.color;
                let swatch = fonts.coord(16);
                annotated.label(line.name).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + swatch, y)], color.stroke_width(2))
                });
            }
        }
    }
    let mut legend = any_point;
    if let Some((label, threshold)) = &plot.threshold {
        legend = true;
        chart
            .draw_series(DashedLineSeries::new(
                [(from_ms, *threshold), (to_ms, *threshold)],
                8,
                5,
                palette::VERMILLION.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(
                    [(x, y), (x + fonts.coord(16), y)],
                    palette::VERMILLION.stroke_width(2),
                )
            });
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(palette::BACKGROUND.mix(0.85))
            .border_style(palette::AXIS)
            .label_font(text(LABEL_PX))
            .draw()?;
    }
    if !any_point {
        let centre = plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        );
        root.draw(&Text::new(
            plot.empty_note,
            ((width / 2) as i32, (height / 2) as i32),
            fonts.style(LABEL_PX, &palette::AXIS).pos(centre),
        ))?;
    }
    root.present()?;
    Ok(())
}
