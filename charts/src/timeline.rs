//! A breaker's state timeline: one lane per instance, Closed / Open / Half-Open intervals coloured
//! by state, over a time range; where no interval says a state (before an instance's first
//! report), a hatched grey "no data" stretch.
//!
//! [`layout`] turns a `Timeline` into lanes of segments with their place across the plot (0–1)
//! and a sentence for hovering (times, and the value that tripped it); [`render`] draws the same
//! layout with plotters and says where its plot area landed, so a page can lay hover targets over
//! the SVG.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use protocol::{State, Timeline, Trigger};

use crate::axis::TimeAxis;
use crate::fonts::{Fonts, LABEL_PX, TITLE_PX};
use crate::geometry::{MARGIN, X_LABEL_AREA, Y_LABEL_AREA, fraction_of};
use crate::palette;
use crate::series_chart::shorten;
use crate::units;
use crate::words::{self, duration, state_label};

/// Height of one instance's lane, in SVG pixels at text scale 1.
pub const LANE_HEIGHT: u32 = 26;
/// What the legend and the page call a stretch without data.
pub const NO_DATA: &str = "no data";
/// Height of one row of the caption (title, legend) above the lanes, at text scale 1.
const CAPTION_ROW: u32 = 28;
/// Space between hatch lines of a no-data stretch, in SVG pixels.
const HATCH_GAP: i32 = 7;

/// One instance's lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    pub instance: String,
    /// In time order, covering the whole range: states, and no-data stretches between them.
    pub segments: Vec<Segment>,
}

/// One stretch of one state, or of no data, clipped to the range.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// `None`: no interval covers this stretch (the instance had not reported yet).
    pub state: Option<State>,
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

/// The lanes of `timeline`, in its order, with intervals clipped to its range and the stretches
/// no interval covers (before the instance's first report, or between intervals) as no data.
pub fn layout(timeline: &Timeline) -> Vec<Lane> {
    let (from_ms, to_ms) = (timeline.from_ms, timeline.to_ms.max(timeline.from_ms + 1));
    let no_data = |start_ms: i64, end_ms: i64, first_report_ms: Option<i64>| Segment {
        state: None,
        start_ms,
        end_ms,
        ongoing: end_ms >= to_ms,
        from_fraction: fraction_of(start_ms, from_ms, to_ms),
        to_fraction: fraction_of(end_ms, from_ms, to_ms),
        tooltip: no_data_tooltip(start_ms, end_ms, first_report_ms),
    };
    timeline
        .lanes
        .iter()
        .map(|lane| {
            let mut segments = Vec::with_capacity(lane.intervals.len() + 1);
            // The end of what is covered so far.
            let mut covered_ms = from_ms;
            for interval in &lane.intervals {
                let start_ms = interval.start_ms.max(covered_ms);
                let end_ms = interval.end_ms.unwrap_or(to_ms).min(to_ms);
                if end_ms <= start_ms {
                    continue;
                }
                if start_ms > covered_ms {
                    segments.push(no_data(covered_ms, start_ms, lane.first_report_ms));
                }
                segments.push(Segment {
                    state: Some(interval.state),
                    start_ms,
                    end_ms,
                    ongoing: interval.end_ms.is_none_or(|end| end >= to_ms),
                    from_fraction: fraction_of(start_ms, from_ms, to_ms),
                    to_fraction: fraction_of(end_ms, from_ms, to_ms),
                    tooltip: tooltip(
                        interval.state,
                        interval.start_ms,
                        interval.end_ms,
                        interval.trigger.as_ref(),
                        interval.config_version,
                    ),
                });
                covered_ms = end_ms;
            }
            if covered_ms < to_ms {
                segments.push(no_data(covered_ms, to_ms, lane.first_report_ms));
            }
            Lane {
                instance: lane.instance.clone(),
                segments,
            }
        })
        .collect()
}

/// The timeline as an SVG document `width` pixels wide, shown `shown_width` CSS pixels wide
/// (`None`: at its own size).
pub fn render(timeline: &Timeline, width: u32, shown_width: Option<f64>) -> Rendered {
    let fonts = Fonts::new(width, shown_width);
    let lanes = layout(timeline);
    let caption = Caption::new(timeline, width, fonts);
    let height = 2 * MARGIN
        + fonts.px(CAPTION_ROW) * caption.rows
        + fonts.px(X_LABEL_AREA)
        + fonts.px(LANE_HEIGHT) * (lanes.len().max(1) as u32);
    let (svg, area) = crate::svg_document((width, height), fonts, "timeline", |root| {
        draw(root, timeline, &lanes, &caption, fonts)
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

// === impl Segment ===

impl Segment {
    /// The `data-state` hook: the state's wire name, or `no_data`.
    pub fn key(&self) -> &'static str {
        self.state.map_or("no_data", State::as_str)
    }
}

/// The title and the legend above the lanes: on one row when both fit, else the legend on a
/// row of its own below the title.
struct Caption {
    title: String,
    /// Each legend entry and its x.
    legend: Vec<(Option<State>, i32)>,
    rows: u32,
}

// === impl Caption ===

impl Caption {
    const ENTRIES: [Option<State>; 4] = [
        Some(State::Closed),
        Some(State::HalfOpen),
        Some(State::Open),
        None,
    ];

    fn new(timeline: &Timeline, width: u32, fonts: Fonts) -> Caption {
        let title = format!(
            "{} / {} — state per instance",
            shorten(&timeline.service, 60),
            shorten(&timeline.breaker, 60)
        );
        let swatch = f64::from(fonts.px(16));
        let gap = f64::from(fonts.px(18));
        let entry_widths: Vec<f64> = Caption::ENTRIES
            .iter()
            .map(|entry| swatch + fonts.width_of(legend_label(*entry), LABEL_PX) + gap)
            .collect();
        let legend_width: f64 = entry_widths.iter().sum();
        let right = f64::from(width.saturating_sub(MARGIN));
        let title_end = f64::from(MARGIN) + fonts.width_of(&title, TITLE_PX) + gap;
        let (rows, mut x) = if title_end + legend_width <= right {
            (1, right - legend_width + gap)
        } else {
            (2, f64::from(MARGIN))
        };
        let legend = Caption::ENTRIES
            .iter()
            .zip(&entry_widths)
            .map(|(entry, entry_width)| {
                let at = x as i32;
                x += entry_width;
                (*entry, at)
            })
            .collect();
        Caption {
            title,
            legend,
            rows,
        }
    }
}

fn legend_label(entry: Option<State>) -> &'static str {
    entry.map_or(NO_DATA, state_label)
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
        text.push_str(&words::trigger_text(trigger));
    }
    text.push_str(&format!(" · config v{config_version}"));
    text
}

fn no_data_tooltip(start_ms: i64, end_ms: i64, first_report_ms: Option<i64>) -> String {
    let why = match first_report_ms {
        Some(first_ms) if first_ms >= end_ms => "before the instance's first report",
        _ => "no report from the instance",
    };
    format!(
        "No data: {} → {} UTC ({}) · {why}",
        units::timestamp_utc(start_ms),
        units::timestamp_utc(end_ms),
        duration(end_ms - start_ms)
    )
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    timeline: &Timeline,
    lanes: &[Lane],
    caption: &Caption,
    fonts: Fonts,
) -> Result<(i32, i32, i32, i32), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&palette::BACKGROUND)?;
    let from_ms = timeline.from_ms;
    let to_ms = timeline.to_ms.max(from_ms + 1);
    let text = |css_px| fonts.style(css_px, &palette::TEXT);
    let n_lanes = lanes.len().max(1);
    let margin = i32::try_from(MARGIN).unwrap_or(0);

    let (caption_area, body) = root.split_vertically(MARGIN + fonts.px(CAPTION_ROW) * caption.rows);
    caption_area.draw(&Text::new(
        caption.title.as_str(),
        (margin, margin),
        text(TITLE_PX),
    ))?;
    let legend_y = margin + fonts.coord(CAPTION_ROW) * (caption.rows as i32 - 1);
    let swatch = fonts.coord(12);
    for &(entry, x) in &caption.legend {
        let corners = [(x, legend_y + 2), (x + swatch, legend_y + 2 + swatch)];
        match entry {
            Some(state) => {
                caption_area.draw(&Rectangle::new(corners, palette::state(state).filled()))?;
            }
            None => draw_no_data(&caption_area, corners)?,
        }
        caption_area.draw(&Text::new(
            legend_label(entry),
            (x + fonts.coord(16), legend_y + 1),
            text(LABEL_PX),
        ))?;
    }

    let plot_width = f64::from(root.dim_in_pixel().0) - f64::from(2 * MARGIN + Y_LABEL_AREA);
    let axis = TimeAxis::new(from_ms, to_ms, plot_width, fonts);
    let mut chart = ChartBuilder::on(&body)
        .margin_left(MARGIN)
        .margin_right(MARGIN)
        .margin_bottom(MARGIN)
        .x_label_area_size(fonts.px(X_LABEL_AREA))
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(
            (from_ms..to_ms).with_key_points(axis.ticks.clone()),
            0.0..n_lanes as f64,
        )?;
    let x_label_formatter = |t_ms: &i64| axis.label(t_ms);
    chart
        .configure_mesh()
        .x_labels(axis.ticks.len().max(2))
        .disable_y_mesh()
        .disable_y_axis()
        .x_label_formatter(&x_label_formatter)
        .x_desc("time (UTC)")
        .label_style(text(LABEL_PX))
        .axis_desc_style(text(LABEL_PX))
        .axis_style(palette::AXIS)
        .bold_line_style(palette::GRID)
        .light_line_style(palette::BACKGROUND)
        .draw()?;

    // Lane 0 is drawn at the top: y grows upwards in the chart, so lane i spans
    // [n - i - 1, n - i].
    let (root_x, root_y) = root.get_base_pixel();
    for (lane_idx, lane) in lanes.iter().enumerate() {
        let top = (n_lanes - lane_idx) as f64 - 0.12;
        let bottom = (n_lanes - lane_idx - 1) as f64 + 0.12;
        for segment in &lane.segments {
            let corners = [(segment.start_ms, top), (segment.end_ms, bottom)];
            match segment.state {
                Some(state) => {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        corners,
                        palette::state(state).filled(),
                    )))?;
                }
                None => {
                    // The hatching is lines across the box, drawn in the root's pixels.
                    let in_root = |corner: &(i64, f64)| {
                        let (x, y) = chart.backend_coord(corner);
                        (x - root_x, y - root_y)
                    };
                    draw_no_data(root, [in_root(&corners[0]), in_root(&corners[1])])?;
                }
            }
        }
    }
    let (x_span, y_span) = chart.plotting_area().get_pixel_range();
    let (_, body_y) = body.get_base_pixel();
    // Instance names, right-aligned against the plot area, one per lane, cut to what fits
    // left of it.
    let lane_px = f64::from(y_span.end - y_span.start) / n_lanes as f64;
    let name_chars = fonts.chars_in(f64::from(MARGIN + Y_LABEL_AREA - 16), LABEL_PX);
    for (lane_idx, lane) in lanes.iter().enumerate() {
        let y = y_span.start + (lane_px * (lane_idx as f64 + 0.5)) as i32 - body_y;
        body.draw(&Text::new(
            shorten_middle(&lane.instance, name_chars),
            (x_span.start - 8, y),
            text(LABEL_PX).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    root.present()?;
    Ok((x_span.start, x_span.end, y_span.start, y_span.end))
}

/// At most `max_chars` characters of an untrusted name, cut in the middle (`checkout-7f…-x2k4p`):
/// instances of one service often differ only at the end.
fn shorten_middle(name: &str, max_chars: usize) -> String {
    let n_chars = name.chars().count();
    if n_chars <= max_chars {
        return name.to_string();
    }
    let keep = max_chars.saturating_sub(1);
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let mut out: String = name.chars().take(head).collect();
    out.push('…');
    out.extend(name.chars().skip(n_chars - tail));
    out
}

/// A no-data box between two corners (in `area`'s pixels): grey, hatched with diagonal lines,
/// so it reads as "nothing known" rather than as a state, in colour or not.
fn draw_no_data<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    corners: [(i32, i32); 2],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (x0, x1) = (
        corners[0].0.min(corners[1].0),
        corners[0].0.max(corners[1].0),
    );
    let (y0, y1) = (
        corners[0].1.min(corners[1].1),
        corners[0].1.max(corners[1].1),
    );
    area.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        palette::NO_DATA.filled(),
    ))?;
    for (from, to) in hatch_lines((x0, y0), (x1, y1), HATCH_GAP) {
        area.draw(&PathElement::new([from, to], palette::NO_DATA_HATCH))?;
    }
    Ok(())
}

/// The "/" lines (x + y constant) every `gap` pixels across the box from `(x0, y0)` (top left)
/// to `(x1, y1)` (bottom right), clipped to it.
fn hatch_lines(
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    gap: i32,
) -> Vec<((i32, i32), (i32, i32))> {
    let mut lines = Vec::new();
    if x1 <= x0 || y1 <= y0 || gap <= 0 {
        return lines;
    }
    let mut sum = x0 + y0 + gap;
    while sum < x1 + y1 {
        // On the line x + y = sum, x runs from where it enters the box to where it leaves it.
        let (xa, xb) = ((sum - y1).max(x0), (sum - y0).min(x1));
        if xa < xb {
            lines.push(((xa, sum - xa), (xb, sum - xb)));
        }
        sum += gap;
    }
    lines
}

#[cfg(test)]
mod tests;
