//! A breaker's state timeline: one lane per instance, Closed / Open / Half-Open intervals coloured
//! by state, over a time range.
//!
//! [`layout`] turns a `Timeline` into lanes of segments with their place across the plot (0–1)
//! and a sentence for hovering (times, and the value that tripped it); [`render`] draws the same
//! layout with plotters and says where its plot area landed, so a page can lay hover targets over
//! the SVG.

use plotters::coord::Shift;
use plotters::prelude::*;
use protocol::{State, Timeline, Trigger};

use crate::geometry::{MARGIN, X_LABEL_AREA, Y_LABEL_AREA, fraction_of};
use crate::palette;
use crate::series_chart::shorten;
use crate::units;

/// Height of one instance's lane, in SVG pixels.
pub const LANE_HEIGHT: u32 = 26;
/// Height of the caption above the lanes.
const CAPTION: u32 = 28;

/// One instance's lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    pub instance: String,
    pub segments: Vec<Segment>,
}

/// One stretch of one state, clipped to the range.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub state: State,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Still in this state at the end of the range.
    pub ongoing: bool,
    /// Where it starts and ends across the plot area, 0–1.
    pub from_fraction: f64,
    pub to_fraction: f64,
    /// What hovering shows: state, times, duration, what started it, config version.
    pub tooltip: String,
}

/// A rendered timeline and where its plot area is, in SVG pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub svg: String,
    pub width: u32,
    pub height: u32,
    pub plot_left: i32,
    pub plot_right: i32,
    pub plot_top: i32,
    pub plot_bottom: i32,
}

/// The lanes of `timeline`, in its order, with intervals clipped to its range.
pub fn layout(timeline: &Timeline) -> Vec<Lane> {
    let (from_ms, to_ms) = (timeline.from_ms, timeline.to_ms.max(timeline.from_ms + 1));
    timeline
        .lanes
        .iter()
        .map(|lane| Lane {
            instance: lane.instance.clone(),
            segments: lane
                .intervals
                .iter()
                .filter_map(|interval| {
                    let start_ms = interval.start_ms.max(from_ms);
                    let end_ms = interval.end_ms.unwrap_or(to_ms).min(to_ms);
                    if end_ms <= start_ms {
                        return None;
                    }
                    let ongoing = interval.end_ms.is_none_or(|end| end >= to_ms);
                    Some(Segment {
                        state: interval.state,
                        start_ms,
                        end_ms,
                        ongoing,
                        from_fraction: fraction_of(start_ms, from_ms, to_ms),
                        to_fraction: fraction_of(end_ms, from_ms, to_ms),
                        tooltip: tooltip(
                            interval.state,
                            interval.start_ms,
                            interval.end_ms,
                            interval.trigger.as_ref(),
                            interval.config_version,
                        ),
                    })
                })
                .collect(),
        })
        .collect()
}

/// The SVG height for `n_lanes` lanes.
pub fn height(n_lanes: usize) -> u32 {
    2 * MARGIN + CAPTION + X_LABEL_AREA + LANE_HEIGHT * (n_lanes.max(1) as u32)
}

/// The timeline as an SVG document `width` pixels wide.
pub fn render(timeline: &Timeline, width: u32) -> Rendered {
    let lanes = layout(timeline);
    let height = height(lanes.len());
    let (svg, area) = crate::svg_document((width, height), "timeline", |root| {
        draw(root, timeline, &lanes)
    });
    Rendered {
        svg,
        width,
        height,
        plot_left: area.0,
        plot_right: area.1,
        plot_top: area.2,
        plot_bottom: area.3,
    }
}

/// A state's name as the page and the legend write it.
pub fn state_label(state: State) -> &'static str {
    match state {
        State::Closed => "Closed",
        State::Open => "Open",
        State::HalfOpen => "Half-Open",
    }
}

/// `tripped on failure rate: 62 % ≥ 50 %`, `probe succeeded`, `manual`.
pub fn trigger_text(trigger: &Trigger) -> String {
    let is_rate = trigger.kind.ends_with("_rate");
    let show = |number: f64| {
        if is_rate {
            units::percent(number)
        } else {
            format!("{number}")
        }
    };
    let kind = trigger.kind.replace('_', " ");
    match trigger.kind.as_str() {
        "failure_rate" | "slow_call_rate" | "consecutive_failures" => format!(
            "tripped on {kind}: {} ≥ {}",
            show(trigger.value),
            show(trigger.threshold)
        ),
        _ => kind,
    }
}

fn tooltip(
    state: State,
    start_ms: i64,
    end_ms: Option<i64>,
    trigger: Option<&Trigger>,
    config_version: u64,
) -> String {
    let end = match end_ms {
        Some(end_ms) => format!(
            "{} UTC ({})",
            units::timestamp_utc(end_ms),
            duration(end_ms - start_ms)
        ),
        None => "now".to_string(),
    };
    let mut text = format!(
        "{}: {} → {}",
        state_label(state),
        units::timestamp_utc(start_ms),
        end
    );
    if let Some(trigger) = trigger {
        text.push_str(" · ");
        text.push_str(&trigger_text(trigger));
    }
    text.push_str(&format!(" · config v{config_version}"));
    text
}

fn duration(duration_ms: i64) -> String {
    let seconds = duration_ms.max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {}s", seconds / 60, seconds % 60),
        _ => format!("{}h {}m", seconds / 3600, seconds / 60 % 60),
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    timeline: &Timeline,
    lanes: &[Lane],
) -> Result<(i32, i32, i32, i32), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&palette::BACKGROUND)?;
    let from_ms = timeline.from_ms;
    let to_ms = timeline.to_ms.max(from_ms + 1);
    let with_date = units::needs_date(from_ms, to_ms);
    let text = |size| ("sans-serif", size).into_font().color(&palette::TEXT);
    let n_lanes = lanes.len().max(1);

    let (caption_area, body) = root.split_vertically(MARGIN + CAPTION);
    caption_area.draw(&Text::new(
        format!(
            "{} / {} — state per instance",
            shorten(&timeline.service, 60),
            shorten(&timeline.breaker, 60)
        ),
        (
            i32::try_from(MARGIN).unwrap_or(0),
            i32::try_from(MARGIN).unwrap_or(0),
        ),
        text(15),
    ))?;
    let mut legend_x = (caption_area.dim_in_pixel().0 as i32) - 300;
    for state in [State::Closed, State::HalfOpen, State::Open] {
        let y = MARGIN as i32;
        caption_area.draw(&Rectangle::new(
            [(legend_x, y + 2), (legend_x + 12, y + 14)],
            palette::state(state).filled(),
        ))?;
        caption_area.draw(&Text::new(
            state_label(state),
            (legend_x + 16, y + 1),
            text(12),
        ))?;
        legend_x += 90;
    }

    let mut chart = ChartBuilder::on(&body)
        .margin_left(MARGIN)
        .margin_right(MARGIN)
        .margin_bottom(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(
            (from_ms..to_ms).with_key_points(units::time_ticks(from_ms, to_ms, 8)),
            0.0..n_lanes as f64,
        )?;
    let x_label_formatter = |t_ms: &i64| units::clock_utc(*t_ms, with_date);
    chart
        .configure_mesh()
        .x_labels(8)
        .disable_y_mesh()
        .disable_y_axis()
        .x_label_formatter(&x_label_formatter)
        .x_desc("time (UTC)")
        .label_style(text(12))
        .axis_desc_style(text(12))
        .axis_style(palette::AXIS)
        .bold_line_style(palette::GRID)
        .light_line_style(palette::BACKGROUND)
        .draw()?;

    // Lane 0 is drawn at the top: y grows upwards in the chart, so lane i spans
    // [n - i - 1, n - i].
    for (lane_idx, lane) in lanes.iter().enumerate() {
        let top = (n_lanes - lane_idx) as f64 - 0.12;
        let bottom = (n_lanes - lane_idx - 1) as f64 + 0.12;
        chart.draw_series(lane.segments.iter().map(|segment| {
            Rectangle::new(
                [(segment.start_ms, top), (segment.end_ms, bottom)],
                palette::state(segment.state).filled(),
            )
        }))?;
    }
    let (x_span, y_span) = chart.plotting_area().get_pixel_range();
    let (_, body_y) = body.get_base_pixel();
    // Instance names, right-aligned against the plot area, one per lane.
    let lane_px = f64::from(y_span.end - y_span.start) / n_lanes as f64;
    for (lane_idx, lane) in lanes.iter().enumerate() {
        let y = y_span.start + (lane_px * (lane_idx as f64 + 0.5)) as i32 - body_y;
        body.draw(&Text::new(
            shorten(&lane.instance, 22),
            (x_span.start - 8, y),
            text(12).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Right,
                plotters::style::text_anchor::VPos::Center,
            )),
        ))?;
    }
    root.present()?;
    Ok((x_span.start, x_span.end, y_span.start, y_span.end))
}

#[cfg(test)]
mod tests;
