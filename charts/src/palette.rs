//! Colours: a dark theme, and the Okabe–Ito palette for data (distinct for colour-blind readers).

use plotters::style::RGBColor;
use protocol::State;

pub const BACKGROUND: RGBColor = RGBColor(0x14, 0x1a, 0x22);
pub const TEXT: RGBColor = RGBColor(0xc9, 0xd1, 0xd9);
pub const GRID: RGBColor = RGBColor(0x2a, 0x33, 0x3f);
pub const AXIS: RGBColor = RGBColor(0x58, 0x63, 0x70);
/// A stretch without data: grey, hatched in a lighter grey; no state uses either.
pub const NO_DATA: RGBColor = RGBColor(0x33, 0x3c, 0x48);
pub const NO_DATA_HATCH: RGBColor = RGBColor(0x7d, 0x88, 0x96);

pub const BLUE: RGBColor = RGBColor(0x56, 0xb4, 0xe9);
pub const ORANGE: RGBColor = RGBColor(0xe6, 0x9f, 0x00);
pub const GREEN: RGBColor = RGBColor(0x00, 0x9e, 0x73);
pub const YELLOW: RGBColor = RGBColor(0xf0, 0xe4, 0x42);
pub const VERMILLION: RGBColor = RGBColor(0xd5, 0x5e, 0x00);
pub const PURPLE: RGBColor = RGBColor(0xcc, 0x79, 0xa7);

/// A state's colour; the page's CSS uses the same three.
pub fn state(state: State) -> RGBColor {
    match state {
        State::Closed => GREEN,
        State::HalfOpen => ORANGE,
        State::Open => VERMILLION,
    }
}
