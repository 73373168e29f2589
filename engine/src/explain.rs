//! A suggestion in words, and the doubts that keep it from being trusted.
//!
//! [`explain`] turns the chosen config and the evidence behind it into sentences a person can
//! check against the history: which rules trip the breaker and over how many calls, why the
//! thresholds will not trip on noise (the healthy failure and slow-call rates and the chance
//! that noise alone reaches a threshold), what each rule adds on the anomalous periods found
//! (replayed with and without it), how the wait compares with how long those periods lasted,
//! and how Half-Open closes.
//!
//! [`doubts`] lists what makes a suggestion untrustworthy: no anomalous period to learn from,
//! too few calls or too short a history, or a back-test that is worse than the current
//! config's on false trips or detections. A suggestion with doubts has its confidence capped at
//! [`LOW_CONFIDENCE`] and auto mode does not apply it.

use std::fmt;
use std::time::Duration;

use breaker::{Config, HalfOpenRule, Wait, Window};

use crate::anomaly::Labels;
use crate::history::History;
use crate::search::{ProbeRisk, binomial_tail};
use crate::suggest::Backtest;

/// The highest confidence a suggestion with doubts may have.
pub const LOW_CONFIDENCE: f64 = 0.3;
/// Fewer calls than this in the history are too little evidence.
pub const MIN_CALLS: u64 = 1_000;
/// A shorter history is too little evidence.
pub const MIN_HISTORY: Duration = Duration::from_secs(3_600);

/// Why a suggestion should not be trusted without a look.
#[derive(Clone, Debug, PartialEq)]
pub enum Doubt {
    /// The history holds no anomalous period: detection was judged on injected outages only.
    NoAnomalySeen,
    FewCalls {
        n_calls: u64,
    },
    ShortHistory {
        seconds: u64,
    },
    /// The suggestion would have tripped on noise more often than the current config.
    MoreFalseTrips {
        current: u32,
        suggested: u32,
    },
    /// The suggestion would have caught fewer anomalous periods than the current config.
    DetectsFewer {
        current: usize,
        suggested: usize,
    },
}

impl fmt::Display for Doubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Doubt::NoAnomalySeen => f.write_str(
                "the history holds no anomalous period, so detection was judged on injected outages only",
            ),
            Doubt::FewCalls { n_calls } => write!(
                f,
                "only {n_calls} calls in the history (fewer than {MIN_CALLS})"
            ),
            Doubt::ShortHistory { seconds } => write!(
                f,
                "the history covers only {} (less than {})",
                human(Duration::from_secs(*seconds)),
                human(MIN_HISTORY)
            ),
            Doubt::MoreFalseTrips { current, suggested } => write!(
                f,
                "it would have tripped on noise {suggested} time{} where the current config tripped {current} time{}",
                plural(*suggested as usize),
                plural(*current as usize)
            ),
            Doubt::DetectsFewer { current, suggested } => write!(
                f,
                "it would have caught {suggested} anomalous period{} where the current config caught {current}",
                plural(*suggested),
            ),
        }
    }
}

/// One trip rule of a config, for saying what it adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    FailureRate,
    SlowCalls,
    Consecutive,
}

impl Rule {
    pub const ALL: [Rule; 3] = [Rule::FailureRate, Rule::SlowCalls, Rule::Consecutive];

    fn is_in(self, config: &Config) -> bool {
        match self {
            Rule::FailureRate => config.failure_rate_threshold().is_some(),
            Rule::SlowCalls => config.slow_call_rate_threshold().is_some(),
            Rule::Consecutive => config.consecutive_failures().is_some(),
        }
    }

    /// `config` without this rule; `None` when it is the only one (or the rest is invalid).
    pub fn without(self, config: &Config) -> Option<Config> {
        let others = Rule::ALL
            .iter()
            .filter(|&&rule| rule != self && rule.is_in(config))
            .count();
        if !self.is_in(config) || others == 0 {
            return None;
        }
        let builder = config.to_builder();
        let builder = match self {
            Rule::FailureRate => builder.failure_rate_threshold(None),
            Rule::SlowCalls => builder.slow_call_rate_threshold(None),
            Rule::Consecutive => builder.consecutive_failures(None),
        };
        // Half-Open by rates needs a rate threshold; without one it closes by successes.
        let builder = if config.half_open_rule() == HalfOpenRule::Rates
            && self != Rule::Consecutive
            && !(Rule::FailureRate.is_in(config) && Rule::SlowCalls.is_in(config))
        {
            builder.half_open_rule(HalfOpenRule::Successes)
        } else {
            builder
        };
        builder.build().ok()
    }

    fn name(self, config: &Config) -> String {
        match self {
            Rule::FailureRate => "the failure-rate rule".into(),
            Rule::SlowCalls => format!(
                "the slow-call rule at {}",
                human(config.slow_call_duration())
            ),
            Rule::Consecutive => "the consecutive-failure rule".into(),
        }
    }
}

/// Per anomalous period: how long after its start the suggestion without `rule` opened (ms),
/// `None` when it did not open within the detection deadline.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleEffect {
    pub rule: Rule,
    pub without: Vec<Option<u64>>,
}

/// What [`explain`] reads.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    pub history: &'a History,
    pub labels: &'a Labels,
    pub current: &'a Config,
    pub suggested: &'a Config,
    /// Per anomalous period: how long after its start the suggestion opened (as in
    /// [`RuleEffect::without`]).
    pub delays: &'a [Option<u64>],
    /// One entry per rule of the suggestion, when it has more than one.
    pub rule_effects: &'a [RuleEffect],
}

/// The suggestion in sentences, most important first.
pub fn explain(ev: &Evidence<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let rules = rules_text(ev.suggested);
    let now = rules_text(ev.current);
    if now == rules {
        out.push(format!("Trips {rules}, as now."));
    } else {
        out.push(format!("Trips {rules}; the current config trips {now}."));
    }
    if let Some(text) = noise_sentence(ev) {
        out.push(text);
    }
    for effect in ev.rule_effects {
        if let Some(text) = effect_sentence(ev.suggested, ev.delays, effect) {
            out.push(text);
        }
    }
    out.push(wait_sentence(ev.suggested, ev.labels));
    out.push(half_open_sentence(ev.suggested));
    out
}

/// What makes the suggestion untrustworthy, if anything.
pub fn doubts(
    history: &History,
    labels: &Labels,
    current: &Backtest,
    suggested: &Backtest,
) -> Vec<Doubt> {
    let mut out = Vec::new();
    if labels.periods.is_empty() {
        out.push(Doubt::NoAnomalySeen);
    }
    let n_calls = history.n_calls();
    if n_calls < MIN_CALLS {
        out.push(Doubt::FewCalls { n_calls });
    }
    let seconds = (history.len() as u128 * history.step.as_millis() / 1_000) as u64;
    if seconds < MIN_HISTORY.as_secs() {
        out.push(Doubt::ShortHistory { seconds });
    }
    if suggested.false_trips > current.false_trips {
        out.push(Doubt::MoreFalseTrips {
            current: current.false_trips,
            suggested: suggested.false_trips,
        });
    }
    if suggested.detected < current.detected {
        out.push(Doubt::DetectsFewer {
            current: current.detected,
            suggested: suggested.detected,
        });
    }
    out
}

/// "when at least 30 % of calls fail or 20 % take 500 ms or longer, over the last 10 s once
/// it holds 45 calls; or after 10 failures in a row".
fn rules_text(config: &Config) -> String {
    let mut rates = Vec::new();
    if let Some(t) = config.failure_rate_threshold() {
        rates.push(format!("{} of calls fail", percent(t)));
    }
    if let Some(t) = config.slow_call_rate_threshold() {
        rates.push(format!(
            "{}{} take {} or longer",
            percent(t),
            if rates.is_empty() { " of calls" } else { "" },
            human(config.slow_call_duration())
        ));
    }
    let mut parts = Vec::new();
    if !rates.is_empty() {
        let window = match config.window() {
            Window::Count(n) => format!("the last {n} calls"),
            Window::Time(secs) => format!("the last {}", human(Duration::from_secs(secs.into()))),
        };
        parts.push(format!(
            "when at least {} over {window}, once that holds {} call{}",
            rates.join(" or "),
            config.minimum_calls(),
            plural(config.minimum_calls() as usize)
        ));
    }
    if let Some(n) = config.consecutive_failures() {
        parts.push(if n == 1 {
            "after a single failure".to_string()
        } else {
            format!("after {n} failures in a row")
        });
    }
    if parts.is_empty() {
        return "never".into();
    }
    parts.join(", or ")
}

/// Why the rate thresholds hold on healthy traffic: the usual rates, and the chance that noise
/// alone reaches a threshold over the minimum of calls.
fn noise_sentence(ev: &Evidence<'_>) -> Option<String> {
    let config = ev.suggested;
    if config.failure_rate_threshold().is_none() && config.slow_call_rate_threshold().is_none() {
        return None;
    }
    if ev.labels.anomalous.len() != ev.history.len() || ev.history.n_calls() == 0 {
        return None;
    }
    let usual = ProbeRisk::new(ev.history, ev.labels, 0.0);
    let m = config.minimum_calls().max(1);
    let mut facts = Vec::new();
    // The chance that neither rate rule trips on noise, rule by rule.
    let mut quiet = 1.0;
    // The fewest calls of `m` that reach `threshold` (less a rounding error: 0.07 × 100 is 7).
    let at_least = |threshold: f64| (threshold * f64::from(m) - 1e-9).ceil().max(0.0) as u32;
    if let Some(t) = config.failure_rate_threshold() {
        facts.push(format!(
            "{} of calls failed",
            percent(usual.usual_failure_rate)
        ));
        quiet *= 1.0 - binomial_tail(m, at_least(t), usual.usual_failure_rate);
    }
    if let Some(t) = config.slow_call_rate_threshold() {
        let ms = config
            .slow_call_duration()
            .as_millis()
            .min(u128::from(u32::MAX)) as u32;
        // Read off the latency buckets: an upper bound.
        let share = usual.slow_share_at(ms);
        facts.push(format!(
            "at most {} took {} or longer",
            percent(share),
            human(config.slow_call_duration())
        ));
        quiet *= 1.0 - binomial_tail(m, at_least(t), share);
    }
    let chance = 1.0 - quiet;
    Some(format!(
        "Outside the anomalous periods {}; the chance that noise alone crosses a threshold over {m} calls is {}.",
        facts.join(" and "),
        odds(chance)
    ))
}

/// What one rule adds: how much sooner the suggestion opens with it, and what it alone catches.
fn effect_sentence(config: &Config, with: &[Option<u64>], effect: &RuleEffect) -> Option<String> {
    let n = with.len();
    let mut sooner_ms = Vec::new();
    let (mut later, mut only_with, mut only_without) = (0, 0, 0);
    for (with, without) in with.iter().zip(&effect.without) {
        match (with, without) {
            (Some(a), Some(b)) if b > a => sooner_ms.push(b - a),
            (Some(a), Some(b)) if a > b => later += 1,
            (Some(_), None) => only_with += 1,
            (None, Some(_)) => only_without += 1,
            _ => {}
        }
    }
    // A rule changes the state a period starts in too: it may open later on some, or miss
    // one the others would catch. Said only when it gains more periods than it costs.
    if (sooner_ms.is_empty() && only_with == 0) || only_without > only_with {
        return None;
    }
    let mut claims = Vec::new();
    if !sooner_ms.is_empty() {
        sooner_ms.sort_unstable();
        let median = sooner_ms[sooner_ms.len() / 2];
        claims.push(format!(
            "open {} sooner (median) on {}",
            human(Duration::from_millis(median)),
            sooner_ms.len()
        ));
    }
    if only_with > 0 {
        claims.push(format!("catch {only_with} it would miss without it"));
    }
    if later > 0 {
        claims.push(format!("open later on {later}"));
    }
    if only_without > 0 {
        claims.push(format!("miss {only_without} it would catch without it"));
    }
    Some(format!(
        "Of the {n} anomalous period{} in the history, {} makes the breaker {}.",
        plural(n),
        effect.rule.name(config),
        join_and(&claims),
    ))
}

/// The wait policy beside how long the anomalous periods lasted.
fn wait_sentence(config: &Config, labels: &Labels) -> String {
    let policy = match config.wait() {
        Wait::Fixed(wait) => format!("Waits {} before letting probes through", human(wait)),
        Wait::Exponential {
            initial,
            multiplier,
            max,
            ..
        } => format!(
            "Waits {}, {} after each failed probe up to {}, before letting probes through",
            human(initial),
            if (multiplier - 2.0).abs() < 1e-9 {
                "doubling".to_string()
            } else {
                format!("growing ×{multiplier}")
            },
            human(max)
        ),
    };
    let mut lengths: Vec<u64> = labels
        .periods
        .iter()
        .map(|p| p.span.end_ms.saturating_sub(p.span.start_ms))
        .collect();
    lengths.sort_unstable();
    match (lengths.first(), lengths.last()) {
        (Some(&shortest), Some(&longest)) if lengths.len() > 1 => format!(
            "{policy}: the {} anomalous periods here lasted {} to {} (median {}).",
            lengths.len(),
            human(Duration::from_millis(shortest)),
            human(Duration::from_millis(longest)),
            human(Duration::from_millis(lengths[lengths.len() / 2]))
        ),
        (Some(&only), _) => format!(
            "{policy}: the one anomalous period here lasted {}.",
            human(Duration::from_millis(only))
        ),
        _ => format!("{policy}; no anomalous period was seen to judge it by."),
    }
}

fn half_open_sentence(config: &Config) -> String {
    match config.half_open_rule() {
        HalfOpenRule::Successes => {
            let (k, n) = (config.half_open_successes(), config.half_open_probes());
            format!(
                "Closes again once {k} of {n} probe call{} succeed{}; a failed or slow probe opens it again.",
                plural(n as usize),
                if k == 1 { "s" } else { "" }
            )
        }
        HalfOpenRule::Rates => format!(
            "Lets {} probe call{} through, then closes again if they fail and slow down less often than the trip rates, else opens again.",
            config.half_open_probes(),
            plural(config.half_open_probes() as usize)
        ),
    }
}

/// A duration for people: "500 ms", "1.5 s", "45 s", "4 min", "2 min 30 s", "1 h 5 min".
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    if ms < 10_000 && !ms.is_multiple_of(1_000) {
        return format!("{:.1} s", ms as f64 / 1_000.0);
    }
    let secs = (ms + 500) / 1_000;
    match secs {
        0..=119 => format!("{secs} s"),
        120..=3_599 if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        120..=3_599 => format!("{} min {} s", secs / 60, secs % 60),
        _ if (secs / 60).is_multiple_of(60) => format!("{} h", secs / 3_600),
        _ => format!("{} h {} min", secs / 3_600, (secs / 60) % 60),
    }
}

/// "30 %", "2.1 %", "0.04 %".
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 0.01 {
        return "under 0.01 %".into();
    }
    if p >= 10.0 || p == 0.0 || (p - p.round()).abs() < 1e-9 {
        format!("{p:.0} %")
    } else if p >= 0.1 {
        format!("{p:.1} %")
    } else {
        format!("{p:.2} %")
    }
}

/// A small probability as odds: "below 1 in a million", "about 1 in 3,000".
fn odds(p: f64) -> String {
    if p < 1e-6 {
        return "below 1 in a million".into();
    }
    if p >= 0.5 {
        return percent(p);
    }
    let n = 1.0 / p;
    let magnitude = 10f64.powi(n.log10().floor() as i32);
    let rounded = ((n / magnitude).round() * magnitude) as u64;
    format!("about 1 in {}", thousands(rounded))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "a", "a and b", "a, b and c".
fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests;
