//! fusebox's breaker charts, rendered by plotters to SVG strings: the same code draws them in the
//! dashboard (wasm) and on the server (`GET …/chart.svg`, for alert messages and sharing).
//!
//! Brief overview:
//! - [`Kind`]: which series chart: failure rate, slow-call rate, volume by outcome, latency.
//! - [`render`]: `(Kind, &Series, &Options) -> String`, an SVG document.
//! - [`timeline`]: one lane per instance (Closed / Open / Half-Open intervals), its layout (for
//!   hover targets in the page) and its SVG.
//! - [`replay`]: a recommendation's before/after chart (the history, and what the current and
//!   the suggested config would have refused).
//! - [`geometry`]: where the plot area sits, so a page can turn a brushed pixel span into times.
//! - [`fonts`]: text sizes, at least 12 CSS px where the page shows a chart ([`Options::shown_width`]).
//! - [`units`]: UTC clock and date labels, percentages and round time ticks.
//! - [`words`]: state names, durations and trigger sentences (`failure rate: 62 % ≥ 50 %`) that
//!   the page and the server's alert messages share.
//!
//! Everything is pure and tested on the host. Every text plotters writes, the untrusted service,
//! breaker and instance names included, goes through the SVG backend's escaping of `<`, `>`, `&`,
//! `"` and `'`; tests check it. Colours come from the Okabe–Ito palette, which stays distinct
//! under the common colour-vision deficiencies, and every line is named in a legend.

mod axis;
pub mod fonts;
pub mod geometry;
mod palette;
pub mod replay;
mod series_chart;
pub mod timeline;
pub mod units;
pub mod words;

pub use series_chart::render;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Draws into a new SVG document of `size` pixels. When drawing fails, the document says so
/// (`"{what} could not be drawn: …"`) and `T` is its default.
pub(crate) fn svg_document<T: Default>(
    size: (u32, u32),
    fonts: fonts::Fonts,
    what: &str,
    draw: impl for<'a> FnOnce(
        &DrawingArea<SVGBackend<'a>, Shift>,
    ) -> Result<T, DrawingAreaErrorKind<std::io::Error>>,
) -> (String, T) {
    let mut svg = String::new();
    let mut drawn = T::default();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        match draw(&root) {
            Ok(value) => drawn = value,
            Err(err) => {
                // Drawing into a String cannot fail on I/O; an error is a plotters limit worth
                // seeing.
                let _ = root.fill(&palette::BACKGROUND);
                let _ = root.draw(&Text::new(
                    format!("{what} could not be drawn: {err}"),
                    (20, 20),
                    fonts.style(fonts::LABEL_PX, &palette::TEXT),
                ));
                let _ = root.present();
            }
        }
    }
    (svg, drawn)
}

/// Which chart of a breaker's series to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Failed / judged calls per step, with the failure-rate threshold.
    FailureRate,
    /// Slow / judged calls per step, with the slow-call-rate threshold when known.
    SlowCallRate,
    /// Calls per second by outcome (success, failure, timeout, rejected).
    Volume,
    /// p50, p95 and p99 latency in ms.
    Latency,
}

/// How to draw a series chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The SVG's size, in its own pixels.
    pub width: u32,
    pub height: u32,
    /// How wide the page shows the SVG, in CSS pixels, when it scales it (`None`: at its own
    /// size). Text grows so that it still reads at least [`fonts::MIN_TEXT_PX`] there.
    pub shown_width: Option<f64>,
    /// The slow-call-rate threshold (0–1), drawn on [`Kind::SlowCallRate`]; `Series` does not
    /// carry it, the breaker's config does.
    pub slow_call_rate_threshold: Option<f64>,
}

// === impl Kind ===

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::FailureRate,
        Kind::SlowCallRate,
        Kind::Volume,
        Kind::Latency,
    ];

    /// The wire name, as in `?kind=failure_rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FailureRate => "failure_rate",
            Kind::SlowCallRate => "slow_call_rate",
            Kind::Volume => "volume",
            Kind::Latency => "latency",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The chart's title after the breaker's name.
    pub fn title(self) -> &'static str {
        match self {
            Kind::FailureRate => "failure rate",
            Kind::SlowCallRate => "slow-call rate",
            Kind::Volume => "volume (calls/s by outcome)",
            Kind::Latency => "latency p50 / p95 / p99 (ms)",
        }
    }
}

// === impl Options ===

impl Default for Options {
    fn default() -> Options {
        Options {
            width: geometry::WIDTH,
            height: geometry::HEIGHT,
            shown_width: None,
            slow_call_rate_threshold: None,
        }
    }
}

#[cfg(test)]
mod tests;
