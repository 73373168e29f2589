//! The failure-rate chart of one breaker, rendered by plotters to an SVG string.
//!
//! [`render`] is pure, so it is tested on the host; the page inserts its output as HTML. Every
//! text plotters writes (caption included, which holds the untrusted breaker and service names)
//! goes through the SVG backend's escaping of `<`, `>`, `&`, `"` and `'`; a test checks it.

use plotters::prelude::*;
use protocol::Series;

use crate::format;

pub const WIDTH: u32 = 880;
pub const HEIGHT: u32 = 320;

const BACKGROUND: RGBColor = RGBColor(0x14, 0x1a, 0x22);
const TEXT: RGBColor = RGBColor(0xc9, 0xd1, 0xd9);
const GRID: RGBColor = RGBColor(0x2a, 0x33, 0x3f);
const AXIS: RGBColor = RGBColor(0x58, 0x63, 0x70);
const RATE: RGBColor = RGBColor(0x4c, 0xb3, 0xff);
const THRESHOLD: RGBColor = RGBColor(0xff, 0x6b, 0x5f);

/// The chart of a series: failure rate per step (gaps where nothing was judged), the threshold as
/// a dashed line, time on a UTC axis.
pub fn render(series: &Series) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        if let Err(err) = draw(&root, series) {
            // Drawing into a String cannot fail on I/O; an error is a plotters limit worth seeing.
            let _ = root.fill(&BACKGROUND);
            let _ = root.draw(&Text::new(
                format!("chart could not be drawn: {err}"),
                (20, 20),
                ("sans-serif", 14).into_font().color(&TEXT),
            ));
            let _ = root.present();
        }
    }
    svg
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    series: &Series,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&BACKGROUND)?;
    let from_ms = series.from_ms;
    let to_ms = series.to_ms.max(from_ms + 1);
    let with_date = to_ms - from_ms > 86_400_000;

    let caption = format!("{} / {} — failure rate", series.service, series.breaker);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16).into_font().color(&TEXT))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(
            (from_ms..to_ms).with_key_points(time_ticks(from_ms, to_ms, 8)),
            0.0..1.0,
        )?;

    let x_label_formatter = |t_ms: &i64| format::clock_utc(*t_ms, with_date);
    let y_label_formatter = |rate: &f64| format!("{:.0}%", rate * 100.0);
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&x_label_formatter)
        .y_label_formatter(&y_label_formatter)
        .x_desc("time (UTC)")
        .y_desc("failure rate")
        .label_style(("sans-serif", 12).into_font().color(&TEXT))
        .axis_desc_style(("sans-serif", 12).into_font().color(&TEXT))
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(BACKGROUND)
        .draw()?;

    let rate_style = RATE.stroke_width(2);
    for segment in segments(series) {
        if segment.len() == 1 {
            chart.draw_series(
                segment
                    .iter()
                    .map(|&point| Circle::new(point, 3, RATE.filled())),
            )?;
        } else {
            chart.draw_series(LineSeries::new(segment, rate_style))?;
        }
    }

    if let Some(threshold) = series.failure_rate_threshold {
        let threshold = threshold.clamp(0.0, 1.0);
        chart
            .draw_series(DashedLineSeries::new(
                [(from_ms, threshold), (to_ms, threshold)],
                8,
                5,
                THRESHOLD.stroke_width(2),
            ))?
            .label(format!("threshold {}", format::percent(threshold)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], THRESHOLD.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(BACKGROUND.mix(0.85))
            .border_style(AXIS)
            .label_font(("sans-serif", 12).into_font().color(&TEXT))
            .draw()?;
    }
    if series
        .points
        .iter()
        .all(|point| point.failure_rate.is_none())
    {
        root.draw(&Text::new(
            "no calls judged in this range",
            ((WIDTH / 2 - 90) as i32, (HEIGHT / 2) as i32),
            ("sans-serif", 14).into_font().color(&AXIS),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// Axis ticks on round clock times (every 1, 2, 5, 10, 15, 30 minutes, 1, 2, 3, 6, 12 hours or
/// whole days), at most `max_ticks` of them, so an `HH:MM` label never hides seconds.
fn time_ticks(from_ms: i64, to_ms: i64, max_ticks: i64) -> Vec<i64> {
    const MINUTE_MS: i64 = 60_000;
    const STEPS_MIN: [i64; 11] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720];
    let span = to_ms - from_ms;
    let step_ms = STEPS_MIN
        .iter()
        .map(|minutes| minutes * MINUTE_MS)
        .find(|step_ms| span / step_ms <= max_ticks)
        .unwrap_or_else(|| {
            (span / max_ticks).div_euclid(1440 * MINUTE_MS).max(1) * 1440 * MINUTE_MS
        });
    let first = from_ms.div_euclid(step_ms) * step_ms
        + if from_ms.rem_euclid(step_ms) == 0 {
            0
        } else {
            step_ms
        };
    (0..)
        .map(|idx| first + idx * step_ms)
        .take_while(|&t_ms| t_ms <= to_ms)
        .collect()
}

/// Runs of consecutive steps that have a failure rate; a step without judged calls breaks the line.
fn segments(series: &Series) -> Vec<Vec<(i64, f64)>> {
    let mut segments = Vec::new();
    let mut current = Vec::new();
    for point in &series.points {
        match point.failure_rate {
            Some(rate) => current.push((point.t_ms, rate.clamp(0.0, 1.0))),
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

#[cfg(test)]
mod tests;
