//! One row of `cargo xtask bench`'s goal/figure summary: a figure a bench measured, beside the
//! goal it is held to.
//!
//! `cargo xtask bench` names a file in `FUSEBOX_BENCH_SUMMARY` and every bench that measures a
//! goal appends its rows to it, one JSON object per line (JSON Lines):
//!
//! ```text
//! {"bench":"server","what":"ingest, 40 instances: HTTP / raw insert","figure":"0.39×","value":0.39,
//!  "unit":"×","goal":"≥ 0.50×","met":false,"spread":"0.38–0.41 over 3 rounds",
//!  "command":"cargo xtask bench --only server -- ingest"}
//! ```
//!
//! `met` is `true`, `false`, or `null` for a figure without a goal; `spread` is the range over
//! rounds (or `null`); `command` reproduces the figure. Without the variable (a bench run by
//! hand) nothing is written. The adapters' scripts write the same lines themselves.
//!
//! This file is std only: the bench binaries of every crate include it with
//! `#[path = "…/xtask/src/bench/row.rs"] mod summary;`, and xtask uses it for the rows it writes
//! itself (failed benches, `tune_eval`).

#![allow(dead_code)]

use std::io::Write;

/// The variable naming the file rows are appended to.
pub const SUMMARY_VAR: &str = "FUSEBOX_BENCH_SUMMARY";
/// The command `cargo xtask bench` runs the bench as: a row's command when it names none.
pub const COMMAND_VAR: &str = "FUSEBOX_BENCH_COMMAND";

/// The median of rounds' values: the middle one once sorted (the upper of the two middle
/// ones for an even count), NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One figure, its goal and whether it is met.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub bench: String,
    pub what: String,
    /// As shown: the number and its unit, e.g. `0.22×` or `12.5 ms`.
    pub figure: String,
    pub value: f64,
    pub unit: String,
    /// Empty for a figure without a goal.
    pub goal: String,
    pub met: Option<bool>,
    /// The range over rounds, e.g. `0.21–0.24 over 9 rounds`, or `1 run`.
    pub spread: Option<String>,
    /// Empty: the bench's own command (`FUSEBOX_BENCH_COMMAND`).
    pub command: String,
}

/// `value` with `decimals` decimals and its unit (`×` and `%` follow the number directly).
pub fn format(value: f64, unit: &str, decimals: usize) -> String {
    if unit.is_empty() {
        format!("{value:.decimals$}")
    } else if unit.starts_with('×') || unit.starts_with('%') {
        format!("{value:.decimals$}{unit}")
    } else {
        format!("{value:.decimals$} {unit}")
    }
}

impl Row {
    /// A figure of `bench`: `value` in `unit`, shown with `decimals` decimals; no goal yet.
    pub fn new(
        bench: &str,
        what: impl Into<String>,
        value: f64,
        unit: &str,
        decimals: usize,
    ) -> Row {
        Row {
            bench: bench.to_owned(),
            what: what.into(),
            figure: format(value, unit, decimals),
            value,
            unit: unit.to_owned(),
            goal: String::new(),
            met: None,
            spread: None,
            command: String::new(),
        }
    }

    /// Goal: at most `goal` (in the figure's unit).
    pub fn at_most(mut self, goal: f64, decimals: usize) -> Row {
        self.goal = format!("≤ {}", format(goal, &self.unit, decimals));
        self.met = Some(self.value <= goal);
        self
    }

    /// Goal: at least `goal` (in the figure's unit).
    pub fn at_least(mut self, goal: f64, decimals: usize) -> Row {
        self.goal = format!("≥ {}", format(goal, &self.unit, decimals));
        self.met = Some(self.value >= goal);
        self
    }

    /// A goal stated in words, and whether the figure meets it.
    pub fn goal(mut self, goal: impl Into<String>, met: bool) -> Row {
        self.goal = goal.into();
        self.met = Some(met);
        self
    }

    /// Words beside the figure that are not a goal (the row stays unjudged).
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.goal = note.into();
        self.met = None;
        self
    }

    /// The range over `rounds` rounds, in the figure's unit.
    pub fn spread(mut self, low: f64, high: f64, decimals: usize, rounds: usize) -> Row {
        self.spread = Some(format!(
            "{}–{} over {rounds} round{}",
            format(low, "", decimals),
            format(high, &self.unit, decimals),
            if rounds == 1 { "" } else { "s" }
        ));
        self
    }

    /// The range over the values of the rounds, in the figure's unit.
    pub fn spread_of(self, values: &[f64], decimals: usize) -> Row {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values.is_empty() {
            return self;
        }
        self.spread(low, high, decimals, values.len())
    }

    /// Free-form words for the spread (e.g. `1 run`).
    pub fn spread_text(mut self, spread: impl Into<String>) -> Row {
        self.spread = Some(spread.into());
        self
    }

    /// The command that reproduces this figure, when narrower than the bench's own.
    pub fn command(mut self, command: impl Into<String>) -> Row {
        self.command = command.into();
        self
    }

    /// The row as one JSON object.
    pub fn to_json(&self) -> String {
        let command = if self.command.is_empty() {
            std::env::var(COMMAND_VAR).unwrap_or_default()
        } else {
            self.command.clone()
        };
        let value = if self.value.is_finite() {
            self.value.to_string()
        } else {
            "null".to_owned()
        };
        let met = match self.met {
            Some(met) => met.to_string(),
            None => "null".to_owned(),
        };
        let spread = self.spread.as_deref().map_or("null".to_owned(), quote);
        format!(
            "{{\"bench\":{},\"what\":{},\"figure\":{},\"value\":{value},\"unit\":{},\"goal\":{},\
             \"met\":{met},\"spread\":{spread},\"command\":{}}}",
            quote(&self.bench),
            quote(&self.what),
            quote(&self.figure),
            quote(&self.unit),
            quote(&self.goal),
            quote(&command),
        )
    }

    /// Appends the row to the file named by `FUSEBOX_BENCH_SUMMARY`; nothing when it is unset.
    pub fn record(&self) {
        if let Some(path) = std::env::var_os(SUMMARY_VAR) {
            self.record_to(std::path::Path::new(&path));
        }
    }

    /// Appends the row to the summary file `path`.
    pub fn record_to(&self, path: &std::path::Path) {
        let line = format!("{}\n", self.to_json());
        // One write per line on a file opened for appending: lines never interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            eprintln!("bench summary: cannot append to {}: {err}", path.display());
        }
    }
}

/// `text` as a JSON string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
