//! A recommendation's before/after chart: the history's failure rate with the anomalous
//! periods shaded, then the share of calls the current and the suggested config refused in
//! the replay, on the same time axis. Refusals inside the shading are outages cut short;
//! refusals outside it are good calls lost.

use plotters::coord::Shift;
use plotters::prelude::*;
use protocol::ReplayTrace;

use crate::axis::TimeAxis;
use crate::fonts::{Fonts, LABEL_PX};
use crate::geometry::{MARGIN, X_LABEL_AREA, Y_LABEL_AREA};
use crate::palette;

/// Height of each of the three panels, in SVG pixels.
pub const PANEL_HEIGHT: u32 = 120;

/// The chart as an SVG document `width` wide, shown `shown_width` CSS pixels wide (`None`: at
/// its own size).
pub fn render(trace: &ReplayTrace, width: u32, shown_width: Option<f64>) -> String {
    let fonts = Fonts::new(width, shown_width);
    let size = (width, 3 * fonts.px(PANEL_HEIGHT) + fonts.px(X_LABEL_AREA));
    crate::svg_document(size, fonts, "chart", |root| draw(root, trace, fonts)).0
}

/// `[start, end)` point indices of the runs of anomalous points.
pub fn anomalous_runs(anomalous: &[bool]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, &a) in anomalous.iter().enumerate() {
        match (a, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, anomalous.len()));
    }
    runs
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    trace: &ReplayTrace,
    fonts: Fonts,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&palette::BACKGROUND)?;
    let step = trace.step_ms.max(1);
    let from_ms = trace.t_ms.first().copied().unwrap_or(0);
    let to_ms = trace
        .t_ms
        .last()
        .map_or(from_ms, |&t| t + step)
        .max(from_ms + 1);
    // Point `i` spans `[at(i), at(i) + step)`; `at(len)` is the end of the last.
    let at = |i: usize| trace.t_ms.get(i).copied().unwrap_or(to_ms);
    let text = |css_px| fonts.style(css_px, &palette::TEXT);
    let plot_width = f64::from(root.dim_in_pixel().0) - f64::from(2 * MARGIN + Y_LABEL_AREA);
    let axis = TimeAxis::new(from_ms, to_ms, plot_width, fonts);
    let (top, rest) = root.split_vertically(fonts.px(PANEL_HEIGHT));
    let (middle, bottom) = rest.split_vertically(fonts.px(PANEL_HEIGHT));
    let panels = [top, middle, bottom];
    let refused = |values: &[f32]| -> Vec<f64> { values.iter().map(|&v| f64::from(v)).collect() };
    let rows: [(&str, &str, Option<Vec<f64>>, RGBColor); 3] = [
        ("history: failure rate", "failed (%)", None, palette::BLUE),
        (
            "current config: calls refused",
            "refused (%)",
            Some(refused(&trace.current_refused)),
            palette::PURPLE,
        ),
        (
            "suggested config: calls refused",
            "refused (%)",
            Some(refused(&trace.suggested_refused)),
            palette::GREEN,
        ),
    ];
    for (idx, (panel, (title, y_desc, bars, color))) in panels.iter().zip(rows).enumerate() {
        let last = idx == 2;
        let mut chart = ChartBuilder::on(panel)
            .margin_left(MARGIN)
            .margin_right(MARGIN)
            .margin_top(fonts.px(10))
            .x_label_area_size(if last { fonts.px(X_LABEL_AREA) } else { 0 })
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(
                (from_ms..to_ms).with_key_points(axis.ticks.clone()),
                0.0..1.0f64,
            )?;
        let x_label_formatter = |t_ms: &i64| axis.label(t_ms);
        let y_label_formatter = |v: &f64| format!("{:.0} %", v * 100.0);
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(axis.ticks.len().max(2))
            .y_labels(3)
            .x_label_formatter(&x_label_formatter)
            .y_label_formatter(&y_label_formatter)
            .y_desc(y_desc)
            .label_style(text(LABEL_PX))
            .axis_desc_style(text(LABEL_PX))
            .axis_style(palette::AXIS)
            .bold_line_style(palette::GRID)
            .light_line_style(palette::BACKGROUND);
        if last {
            mesh.x_desc("time (UTC)");
        }
        mesh.draw()?;
        chart.draw_series(std::iter::once(Text::new(
            title,
            (from_ms, 0.97),
            text(LABEL_PX),
        )))?;
        // Anomalous periods, shaded in every panel.
        chart.draw_series(anomalous_runs(&trace.anomalous).into_iter().map(|(s, e)| {
            Rectangle::new(
                [(at(s), 0.0), (at(e - 1) + step, 1.0)],
                palette::VERMILLION.mix(0.22).filled(),
            )
        }))?;
        match bars {
            None => {
                let mut run: Vec<(i64, f64)> = Vec::new();
                let mut runs = Vec::new();
                for (i, rate) in trace.failure_rate.iter().enumerate() {
                    match rate {
                        Some(rate) => {
                            run.push((at(i) + step / 2, f64::from(*rate).clamp(0.0, 1.0)))
                        }
                        None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                        None => {}
                    }
                }
                if !run.is_empty() {
                    runs.push(run);
                }
                for run in runs {
                    chart.draw_series(LineSeries::new(run, color.stroke_width(1)))?;
                }
            }
            Some(values) => {
                chart.draw_series(values.iter().enumerate().filter(|(_, v)| **v > 0.0).map(
                    |(i, &v)| {
                        Rectangle::new([(at(i), 0.0), (at(i) + step, v.min(1.0))], color.filled())
                    },
                ))?;
            }
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> ReplayTrace {
        ReplayTrace {
            t_ms: (0..5).map(|i| 1_700_000_000_000 + i * 60_000).collect(),
            step_ms: 60_000,
            failure_rate: vec![Some(0.01), None, Some(0.8), Some(0.7), Some(0.02)],
            current_refused: vec![0.0, 0.0, 0.0, 0.5, 0.5],
            suggested_refused: vec![0.0, 0.0, 0.9, 0.9, 0.0],
            anomalous: vec![false, false, true, true, false],
        }
    }

    #[test]
    fn anomalous_points_are_grouped_into_runs() {
        assert_eq!(
            anomalous_runs(&[true, false, true, true, false, true]),
            vec![(0, 1), (2, 4), (5, 6)]
        );
        assert!(anomalous_runs(&[false, false]).is_empty());
    }

    #[test]
    fn the_chart_names_its_three_panels_and_draws_each_refusal() {
        let svg = render(&trace(), 880, None);
        assert!(svg.starts_with("<svg"));
        for title in [
            "history: failure rate",
            "current config: calls refused",
            "suggested config: calls refused",
        ] {
            assert!(svg.contains(title), "{title}");
        }
        // One shaded period per panel, and one bar per point with refusals (2 + 2).
        let n_rects = svg.matches("<rect").count();
        let empty = render(
            &ReplayTrace {
                current_refused: vec![0.0; 5],
                suggested_refused: vec![0.0; 5],
                anomalous: vec![false; 5],
                ..trace()
            },
            880,
            None,
        );
        assert_eq!(n_rects - empty.matches("<rect").count(), 3 + 4);
    }

    #[test]
    fn an_empty_trace_still_draws() {
        let svg = render(
            &ReplayTrace {
                t_ms: vec![],
                step_ms: 0,
                failure_rate: vec![],
                current_refused: vec![],
                suggested_refused: vec![],
                anomalous: vec![],
            },
            600,
            None,
        );
        assert!(svg.contains("history: failure rate"));
        assert!(!svg.contains("could not be drawn"));
    }
}
