//! The time axis every chart shares: round ticks, as many as their labels leave room for, and
//! labels that say the date when the range spans days.

use crate::fonts::{Fonts, LABEL_PX};
use crate::units;

/// A time axis over one range.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeAxis {
    pub ticks: Vec<i64>,
    pub labels: Vec<String>,
}

// === impl TimeAxis ===

impl TimeAxis {
    /// The axis of `[from_ms, to_ms]` across a plot `plot_width` SVG pixels wide.
    pub fn new(from_ms: i64, to_ms: i64, plot_width: f64, fonts: Fonts) -> TimeAxis {
        // The longest label the range can have.
        let sample = units::tick_labels(&[from_ms], from_ms, to_ms)
            .pop()
            .unwrap_or_default();
        let max_ticks = units::max_time_ticks(plot_width, fonts.width_of(&sample, LABEL_PX));
        let ticks = units::time_ticks(from_ms, to_ms, max_ticks);
        let labels = units::tick_labels(&ticks, from_ms, to_ms);
        TimeAxis { ticks, labels }
    }

    /// The label of tick `t_ms`: the axis's formatter.
    pub fn label(&self, t_ms: &i64) -> String {
        units::label_of(*t_ms, &self.ticks, &self.labels)
    }
}
