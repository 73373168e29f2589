//! Where the plot area of a chart sits in its SVG, so a page can map a pointer's x to a time
//! (brushing to zoom, hovering the timeline) with the same numbers the renderer used.

/// Default SVG size of a series chart.
pub const WIDTH: u32 = 880;
pub const HEIGHT: u32 = 260;

/// Space around the chart, on every side.
pub const MARGIN: u32 = 12;
/// Width of the y-axis label area (series charts and timeline lanes alike).
pub const Y_LABEL_AREA: u32 = 150;
/// Height of the x-axis label area.
pub const X_LABEL_AREA: u32 = 40;

/// The plot area's horizontal span in SVG pixels, `[left, right)`, for a chart `width` wide.
pub fn plot_x_span(width: u32) -> (f64, f64) {
    (f64::from(MARGIN + Y_LABEL_AREA), f64::from(width - MARGIN))
}

/// The time under SVG x coordinate `x` on a chart `width` wide showing `[from_ms, to_ms]`,
/// clamped to the range.
pub fn time_at(x: f64, width: u32, from_ms: i64, to_ms: i64) -> i64 {
    let (left, right) = plot_x_span(width);
    let fraction = ((x - left) / (right - left)).clamp(0.0, 1.0);
    from_ms + ((to_ms - from_ms) as f64 * fraction).round() as i64
}

/// Where time `t_ms` falls across the plot area, 0–1 (clamped).
pub fn fraction_of(t_ms: i64, from_ms: i64, to_ms: i64) -> f64 {
    if to_ms <= from_ms {
        return 0.0;
    }
    ((t_ms - from_ms) as f64 / (to_ms - from_ms) as f64).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_map_to_times_and_back() {
        let (left, right) = plot_x_span(WIDTH);
        assert_eq!(time_at(left, WIDTH, 1000, 2000), 1000);
        assert_eq!(time_at(right, WIDTH, 1000, 2000), 2000);
        assert_eq!(time_at(0.0, WIDTH, 1000, 2000), 1000);
        assert_eq!(time_at((left + right) / 2.0, WIDTH, 1000, 2000), 1500);
        assert_eq!(fraction_of(1500, 1000, 2000), 0.5);
        assert_eq!(fraction_of(5000, 1000, 2000), 1.0);
        assert_eq!(fraction_of(5, 10, 10), 0.0);
    }
}
