//! Parses the labelled scenario files of `shared/tuning/SCENARIOS.md` (JSON Lines).
//!
//! The file format is external, so it is read with serde here and turned at once into the
//! engine's plain [`History`] plus a separate [`Truth`]. The tuner is handed only the
//! history; the truth is used to score configurations afterwards.

use std::time::Duration;

use serde::Deserialize;

use crate::history::{History, Step};

/// A scenario: what one breaker saw, and the truth about its dependency.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub history: History,
    pub truth: Truth,
}

/// The ground truth of a scenario. Never shown to the tuner.
#[derive(Clone, Debug, Default)]
pub struct Truth {
    /// Per step: whether the dependency was healthy.
    pub healthy: Vec<bool>,
    pub incidents: Vec<Span>,
}

/// A period of time, in milliseconds from the start of the history, end excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Why a scenario file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("the file is empty")]
    Empty,
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        source: serde_json::Error,
    },
    #[error("line {line}: {message}")]
    Invalid { line: usize, message: String },
}

#[derive(Deserialize)]
struct RawHeader {
    scenario: String,
    #[serde(default)]
    description: String,
    step_ms: u64,
    latency_buckets_ms: Vec<u32>,
    #[serde(default)]
    incidents: Vec<RawSpan>,
}

#[derive(Deserialize)]
struct RawSpan {
    start_ms: u64,
    end_ms: u64,
}

#[derive(Deserialize)]
struct RawStep {
    t: u64,
    calls: u32,
    failures: u32,
    lat: Vec<u32>,
    #[serde(default = "healthy_by_default")]
    healthy: bool,
}

fn healthy_by_default() -> bool {
    true
}

/// Parses a whole scenario file.
pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let (_, first) = lines.next().ok_or(ScenarioError::Empty)?;
    let header: RawHeader =
        serde_json::from_str(first).map_err(|source| ScenarioError::Json { line: 1, source })?;
    if header.step_ms == 0 {
        return Err(invalid(1, "`step_ms` must be greater than zero"));
    }
    if header.latency_buckets_ms.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(1, "`latency_buckets_ms` must be ascending"));
    }
    let n_buckets = header.latency_buckets_ms.len();
    let mut steps = Vec::new();
    let mut healthy = Vec::new();
    for (idx, line) in lines {
        let line_no = idx + 1;
        let raw: RawStep = serde_json::from_str(line).map_err(|source| ScenarioError::Json {
            line: line_no,
            source,
        })?;
        if raw.failures > raw.calls {
            return Err(invalid(line_no, "`failures` exceeds `calls`"));
        }
        if raw.lat.len() != n_buckets {
            return Err(invalid(
                line_no,
                "`lat` does not have one count per latency bucket",
            ));
        }
        if raw.lat.iter().map(|&c| u64::from(c)).sum::<u64>() != u64::from(raw.calls) {
            return Err(invalid(line_no, "`lat` does not add up to `calls`"));
        }
        if let Some(prev) = steps.last().map(|s: &Step| s.t_ms)
            && raw.t != prev + header.step_ms
        {
            return Err(invalid(line_no, "steps are not `step_ms` apart"));
        }
        steps.push(Step {
            t_ms: raw.t,
            n_calls: raw.calls,
            n_failures: raw.failures,
            n_rejected: 0,
            latency_counts: raw.lat,
        });
        healthy.push(raw.healthy);
    }
    Ok(Scenario {
        name: header.scenario,
        description: header.description,
        history: History {
            step: Duration::from_millis(header.step_ms),
            latency_buckets_ms: header.latency_buckets_ms,
            steps,
        },
        truth: Truth {
            healthy,
            incidents: header
                .incidents
                .iter()
                .map(|span| Span {
                    start_ms: span.start_ms,
                    end_ms: span.end_ms,
                })
                .collect(),
        },
    })
}

fn invalid(line: usize, message: &str) -> ScenarioError {
    ScenarioError::Invalid {
        line,
        message: message.to_owned(),
    }
}
