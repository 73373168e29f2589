//! Server-side charts for alert messages: a breaker's failure rate over time, with its
//! threshold, as an SVG string rendered by plotters.
//!
//! [`render`] is pure, so it is tested without a server; names are escaped because they come
//! from ingested data.

use plotters::prelude::*;
use protocol::Series;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 280;

/// Escapes text for SVG/XML content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The failure-rate chart of `series` as an SVG document.
pub fn render(series: &Series) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        // Drawing into a string cannot fail for I/O; errors would only be ours, so they are
        // dropped and the partial chart kept.
        let _ = draw(&root, series);
        let _ = root.present();
    }
    // plotters writes captions as given; put our escaped title in afterwards.
    let title = format!(
        "<title>{} / {}: failure rate</title>",
        escape(&series.service),
        escape(&series.breaker)
    );
    match svg.find('>') {
        Some(end) => svg.insert_str(end + 1, &title),
        None => svg.push_str(&title),
    }
    svg
}

fn draw<'a>(
    root: &'a DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    series: &Series,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    root.fill(&WHITE)?;
    let span_s = ((series.to_ms - series.from_ms) as f64 / 1_000.0).max(1.0);
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(-span_s..0.0, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("seconds before the end")
        .y_desc("failure rate")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let to_s = |t_ms: i64| (t_ms - series.to_ms) as f64 / 1_000.0;
    chart.draw_series(LineSeries::new(
        series
            .points
            .iter()
            .filter_map(|p| p.failure_rate.map(|rate| (to_s(p.t_ms), rate))),
        RED.stroke_width(2),
    ))?;
    if let Some(threshold) = series.failure_rate_threshold {
        chart.draw_series(LineSeries::new(
            [(-span_s, threshold), (0.0, threshold)],
            BLACK.mix(0.5).stroke_width(1),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SeriesPoint;

    #[test]
    fn renders_an_svg_with_escaped_names() {
        let series = Series {
            service: "shop<&>".into(),
            breaker: "pay\"ments".into(),
            from_ms: 0,
            to_ms: 10_000,
            step_ms: 1_000,
            failure_rate_threshold: Some(0.5),
            points: (0..10)
                .map(|i| SeriesPoint {
                    t_ms: i * 1_000,
                    failure_rate: Some(i as f64 / 10.0),
                    ..SeriesPoint::default()
                })
                .collect(),
        };
        let svg = render(&series);
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("shop&lt;&amp;&gt; / pay&quot;ments"));
        assert!(!svg.contains("shop<&>"));
        assert!(svg.contains("polyline") || svg.contains("path"));
    }
}
