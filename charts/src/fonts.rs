//! Text sizes: every text a chart writes is at least [`MIN_TEXT_PX`] CSS pixels high where the
//! page shows it.
//!
//! A page scales an SVG to its container (`width: 100%`), so one SVG pixel is
//! `shown_width / svg_width` CSS pixels. When that is below 1, [`Fonts`] enlarges every text
//! (and the room kept for it) by the inverse; a chart shown at its own size or larger keeps the
//! base sizes. The dashboard draws each chart as wide as it is shown, so there the factor is 1
//! and the SVG's `font-size` is the CSS size; the server's `chart.svg` is opened at its own size.
//!
//! plotters' SVG backend writes `font-size` as the size it was given divided by 1.24
//! (`plotters-svg`'s `draw_text`), so [`Fonts::font`] hands plotters the size times 1.24: a
//! text asked for at 13 px is written `font-size="13"`.

use plotters::style::{FontDesc, IntoFont, RGBColor, TextStyle};

/// The smallest text any chart shows, in CSS pixels.
pub const MIN_TEXT_PX: f64 = 12.0;
/// Tick labels, axis descriptions, legends, lane names and notes. A pixel above the minimum, so
/// a page that draws a chart a fraction of a pixel wider than it shows it stays above it.
pub const LABEL_PX: f64 = 13.0;
/// Chart titles.
pub const TITLE_PX: f64 = 16.0;

/// What plotters' SVG backend divides a font size by before writing it.
const PLOTTERS_SVG_FONT_RATIO: f64 = 1.24;
/// A sans-serif character's average advance, in ems (digits and lowercase run 0.5–0.6); used
/// to keep texts from running into each other.
const CHAR_EM: f64 = 0.6;

/// The text sizes of one chart, from how wide it is drawn and how wide the page shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fonts {
    /// SVG pixels per CSS pixel where the chart is shown, at least 1.
    scale: f64,
}

// === impl Fonts ===

impl Fonts {
    /// Sizes for a chart drawn `svg_width` SVG pixels wide and shown `shown_width` CSS pixels
    /// wide (`None`: shown at its own size).
    pub fn new(svg_width: u32, shown_width: Option<f64>) -> Fonts {
        let scale = match shown_width {
            Some(shown) if shown.is_finite() && shown > 0.0 => f64::from(svg_width) / shown,
            _ => 1.0,
        };
        Fonts {
            scale: scale.max(1.0),
        }
    }

    /// SVG pixels per CSS pixel where the chart is shown (1 when it is not shown smaller).
    pub fn scale(self) -> f64 {
        self.scale
    }

    /// The SVG `font-size` of a text meant to read `css_px` high (rounded up to 1/100 px).
    pub fn svg_px(self, css_px: f64) -> f64 {
        (css_px.max(MIN_TEXT_PX) * self.scale * 100.0).ceil() / 100.0
    }

    /// A layout length (label areas, lane heights, gaps) of `base` pixels at scale 1, grown with
    /// the text it holds.
    pub fn px(self, base: u32) -> u32 {
        (f64::from(base) * self.scale).ceil() as u32
    }

    /// [`Fonts::px`] as a signed coordinate.
    pub fn coord(self, base: u32) -> i32 {
        i32::try_from(self.px(base)).unwrap_or(i32::MAX)
    }

    /// The plotters font for a text meant to read `css_px` high.
    pub fn font(self, css_px: f64) -> FontDesc<'static> {
        ("sans-serif", plotters_size(self.svg_px(css_px))).into_font()
    }

    /// [`Fonts::font`] in `color`.
    pub fn style(self, css_px: f64, color: &RGBColor) -> TextStyle<'static> {
        self.font(css_px).color(color)
    }

    /// About how many characters at `css_px` fit in `width` SVG pixels.
    pub fn chars_in(self, width: f64, css_px: f64) -> usize {
        (width / (CHAR_EM * self.svg_px(css_px))).floor().max(1.0) as usize
    }

    /// About how wide `text` runs at `css_px`, in SVG pixels.
    pub fn width_of(self, text: &str, css_px: f64) -> f64 {
        text.chars().count() as f64 * CHAR_EM * self.svg_px(css_px)
    }
}

/// The size to hand plotters for it to write `font-size` as `svg_px`: `svg_px` × 1.24, raised by
/// the last bits where the division would come back a hair under `svg_px` (it may come back a
/// hair over: `13.000000000000002`).
fn plotters_size(svg_px: f64) -> f64 {
    let mut size = svg_px * PLOTTERS_SVG_FONT_RATIO;
    while size / PLOTTERS_SVG_FONT_RATIO < svg_px {
        size = size.next_up();
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_shown_smaller_than_drawn_gets_larger_text() {
        let shown_at_own_size = Fonts::new(880, None);
        assert_eq!(shown_at_own_size.svg_px(LABEL_PX), 13.0);
        // 880 SVG px in 674 CSS px: 13 CSS px need 13 × 880 / 674 SVG px.
        let shrunk = Fonts::new(880, Some(674.0));
        assert_eq!(shrunk.svg_px(LABEL_PX), 16.98);
        assert!(shrunk.svg_px(LABEL_PX) * 674.0 / 880.0 >= 13.0);
        assert_eq!(shrunk.px(40), 53);
        // Shown larger than drawn: the base sizes already read larger.
        assert_eq!(Fonts::new(600, Some(900.0)).svg_px(TITLE_PX), 16.0);
        // Nothing below the minimum, whatever is asked.
        assert_eq!(Fonts::new(880, None).svg_px(9.0), MIN_TEXT_PX);
        assert_eq!(Fonts::new(880, Some(0.0)).scale(), 1.0);
        assert_eq!(Fonts::new(880, Some(f64::NAN)).scale(), 1.0);
    }

    #[test]
    fn plotters_writes_the_size_asked_for() {
        let mut svg = String::new();
        {
            use plotters::prelude::*;
            let root = SVGBackend::with_string(&mut svg, (100, 40)).into_drawing_area();
            let style = Fonts::new(100, None).style(LABEL_PX, &RGBColor(0, 0, 0));
            root.draw(&Text::new("x", (0, 20), style)).unwrap();
            root.present().unwrap();
        }
        let written: f64 = svg
            .split("font-size=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((13.0..13.000_001).contains(&written), "{svg}");
        for svg_px in [12.0, 13.0, 16.0, 16.98, 19.31, 25.5] {
            let written = plotters_size(svg_px) / PLOTTERS_SVG_FONT_RATIO;
            assert!(written >= svg_px && written - svg_px < 1e-9, "{svg_px}");
        }
    }
}
