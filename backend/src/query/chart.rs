//! Server-side charts for alert messages and sharing (`GET …/chart.svg`): the dashboard's own
//! renderers from the `charts` crate, so a chart in a notification is the chart on the page.
//!
//! Names come from ingested data; plotters escapes every text it writes, and the `<title>` added
//! here is escaped too.

use protocol::Series;

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
    render_kind(charts::Kind::FailureRate, series, None)
}

/// The `kind` chart of `series` as an SVG document, with a `<title>` naming the breaker;
/// `slow_call_rate_threshold` comes from the breaker's config when it has one.
pub fn render_kind(
    kind: charts::Kind,
    series: &Series,
    slow_call_rate_threshold: Option<f64>,
) -> String {
    let options = charts::Options {
        slow_call_rate_threshold,
        ..charts::Options::default()
    };
    let mut svg = charts::render(kind, series, &options);
    let title = format!(
        "<title>{} / {}: {}</title>",
        escape(&series.service),
        escape(&series.breaker),
        kind.title()
    );
    match svg.find('>') {
        Some(end) => svg.insert_str(end + 1, &title),
        None => svg.push_str(&title),
    }
    svg
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
        for kind in charts::Kind::ALL {
            let svg = render_kind(kind, &series, Some(0.8));
            assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
            assert!(svg.contains("shop&lt;&amp;&gt; / pay&quot;ments"));
            assert!(!svg.contains("shop<&>"));
        }
        assert!(render(&series).contains("polyline"));
    }

    #[test]
    fn text_reads_at_least_12_px_at_the_svg_s_own_size() {
        let series = Series {
            service: "shop".into(),
            breaker: "payments".into(),
            from_ms: 0,
            to_ms: 2 * 86_400_000,
            step_ms: 3_600_000,
            failure_rate_threshold: Some(0.5),
            points: Vec::new(),
        };
        let svg = render(&series);
        let sizes: Vec<f64> = svg
            .split("font-size=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next()?.parse().ok())
            .collect();
        assert!(!sizes.is_empty());
        assert!(sizes.iter().all(|&size| size >= 12.0), "{sizes:?}");
        // Two days: the ticks say the date.
        assert!(svg.contains("Jan 2"), "{svg}");
    }
}
