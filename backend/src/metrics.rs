//! `/metrics` in the Prometheus exposition format, through metrics-exporter-prometheus.
//!
//! Each server owns its recorder (no global state, so several servers can run in one process,
//! as the tests do). The recorder holds only server-wide metrics (ingest, limits); the
//! per-breaker families are written straight from the [`Fleet`] when scraped, a chunk of
//! breakers at a time ([`exposition`]), so neither the recorder nor a scrape grows with the
//! fleet beyond the fleet itself.

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;

use metrics::with_local_recorder;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use protocol::IngestBatch;

use crate::ingest::fleet::{BreakerGauges, Fleet, STATES, Totals, breaker_gauges};
use crate::ingest::limits::{Limit, Limits};

pub struct Metrics {
    recorder: PrometheusRecorder,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
            ])
            .expect("the bucket list is not empty")
            .build_recorder();
        Metrics { recorder }
    }
}

impl Metrics {
    /// Counts a committed, non-duplicate batch (its calls and transitions are counted by the
    /// fleet and exported when scraped).
    pub fn record_batch(&self, _batch: &IngestBatch) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!("fusebox_ingest_batches_total").increment(1);
        });
    }

    /// Exports the limits' values, and each rejection counter at 0.
    pub fn set_limits(&self, limits: &Limits) {
        with_local_recorder(&self.recorder, || {
            for limit in Limit::ALL {
                metrics::gauge!("fusebox_limit", "limit" => limit.as_str())
                    .set(limits.value(limit) as f64);
                metrics::counter!("fusebox_ingest_limit_rejections_total", "limit" => limit.as_str())
                    .increment(0);
            }
        });
    }

    /// Counts a batch refused because of `limit`.
    pub fn record_limit_rejection(&self, limit: Limit) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!("fusebox_ingest_limit_rejections_total", "limit" => limit.as_str())
                .increment(1);
        });
    }

    /// The current counts the limits bound: services, and the most breakers and instances of
    /// any one service (`fusebox_limit_usage`, next to `fusebox_limit`); breakers in all.
    pub fn set_cardinality(
        &self,
        n_services: usize,
        n_breakers: usize,
        most_breakers: usize,
        most_instances: usize,
    ) {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!("fusebox_services").set(n_services as f64);
            metrics::gauge!("fusebox_breakers").set(n_breakers as f64);
            for (limit, n) in [
                (Limit::Services, n_services),
                (Limit::BreakersPerService, most_breakers),
                (Limit::InstancesPerService, most_instances),
            ] {
                metrics::gauge!("fusebox_limit_usage", "limit" => limit.as_str()).set(n as f64);
            }
        });
    }

    pub fn record_duplicate(&self) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!("fusebox_ingest_duplicate_batches_total").increment(1);
        });
    }

    /// How long one group commit took, and how many batches it held.
    pub fn record_commit(&self, elapsed: Duration, n_batches: usize) {
        with_local_recorder(&self.recorder, || {
            metrics::histogram!("fusebox_ingest_write_seconds").record(elapsed.as_secs_f64());
            metrics::histogram!("fusebox_ingest_batches_per_commit").record(n_batches as f64);
        });
    }

    /// The time each stage of a group commit took, in order (see the ingest writer).
    pub fn record_commit_stages(&self, stages: &[(&'static str, Duration)]) {
        with_local_recorder(&self.recorder, || {
            for &(stage, elapsed) in stages {
                metrics::histogram!("fusebox_ingest_commit_stage_seconds", "stage" => stage)
                    .record(elapsed.as_secs_f64());
            }
        });
    }

    /// An engine run started (see [`crate::tuning::engine_run`]).
    pub fn engine_run_started(&self) {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!("fusebox_engine_runs_in_progress").increment(1.0);
        });
    }

    /// An engine run ended: `outcome` is `completed`, `budget`, `cancelled` or `shutdown`;
    /// a completed run adds the replays and replayed calls it cost.
    pub fn engine_run_ended(&self, outcome: &'static str, n_replays: u64, replayed_calls: u64) {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!("fusebox_engine_runs_in_progress").decrement(1.0);
            metrics::counter!("fusebox_engine_runs_total", "outcome" => outcome).increment(1);
            metrics::counter!("fusebox_engine_replays_total").increment(n_replays);
            metrics::counter!("fusebox_engine_replayed_calls_total").increment(replayed_calls);
        });
    }

    /// Whether this replica runs the singleton jobs (rollups, alerts, auto mode): always 1 on
    /// SQLite; on PostgreSQL 1 on exactly one replica of a database.
    pub fn set_leading(&self, leading: bool) {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!("fusebox_singleton_jobs").set(if leading { 1.0 } else { 0.0 });
        });
    }

    /// Batches answered early (journaled) whose commit failed, kept to be tried again.
    pub fn record_commit_retries(&self, n_batches: usize) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!("fusebox_ingest_commit_retries_total").increment(n_batches as u64);
        });
    }

    /// The server-wide part of the exposition (a few dozen lines whatever the fleet's size):
    /// with the batches queued and those answered early not committed yet.
    pub fn render_server(&self, queue_depth: usize, journaled: usize) -> String {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!("fusebox_ingest_queue_depth").set(queue_depth as f64);
            metrics::gauge!("fusebox_ingest_journaled_batches").set(journaled as f64);
        });
        self.recorder.handle().render()
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!("fusebox_http_connections_open").increment(1.0);
        });
    }

    /// An accepted connection ended.
    pub fn connection_closed(&self) {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!("fusebox_http_connections_open").decrement(1.0);
        });
    }

    /// A connection closed at once because a connection limit was reached (`reason`: `per_ip`).
    pub fn record_connection_refused(&self, reason: &'static str) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!("fusebox_http_connections_refused_total", "reason" => reason)
                .increment(1);
        });
    }

    /// A request presented a credential that is unknown or revoked (`throttled`: answered 429
    /// because its address failed too often).
    pub fn record_auth_failure(&self, throttled: bool) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!("fusebox_auth_failures_total",
                "outcome" => if throttled { "throttled" } else { "rejected" })
            .increment(1);
        });
    }

    /// A cookie-authenticated write refused because it came from another origin.
    pub fn record_cross_origin_refused(&self) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!("fusebox_cross_origin_refused_total").increment(1);
        });
    }
}

/// Breakers written per chunk of the per-breaker part: the fleet's read lock is held for one
/// chunk at a time, and a chunk is at most about `CHUNK_BREAKERS` × 1 KB.
const CHUNK_BREAKERS: usize = 256;

/// The per-breaker metric families, each written over the whole fleet before the next (the
/// text format wants a family's samples together).
#[derive(Clone, Copy)]
enum Family {
    Calls,
    Transitions,
    State,
    OpenInstances,
    Instances,
    FailureRate,
}

const FAMILIES: [Family; 6] = [
    Family::Calls,
    Family::Transitions,
    Family::State,
    Family::OpenInstances,
    Family::Instances,
    Family::FailureRate,
];

/// `/metrics`: the server-wide text, then the per-breaker families written from the fleet
/// in chunks of [`CHUNK_BREAKERS`] breakers, so a scrape never holds the whole exposition
/// (about 1 KB per breaker, see docs/protocol.md) in memory.
pub fn exposition(
    server: String,
    fleet: Arc<RwLock<Fleet>>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    struct Walk {
        fleet: Arc<RwLock<Fleet>>,
        family: usize,
        after: Option<(String, String)>,
        head: Option<String>,
    }
    let walk = Walk {
        fleet,
        family: 0,
        after: None,
        head: Some(server),
    };
    // Fused: a body may be polled again after its end (an encoder flushing, a connection
    // closing), and a bare `unfold` panics then.
    futures_util::StreamExt::fuse(futures_util::stream::unfold(walk, |mut walk| async move {
        if let Some(head) = walk.head.take() {
            return Some((Ok(Bytes::from(head)), walk));
        }
        let family = *FAMILIES.get(walk.family)?;
        let mut out = String::new();
        if walk.after.is_none() {
            out.push_str(family.header());
        }
        let (n, last) = {
            let fleet = walk.fleet.read().expect("fleet lock poisoned");
            let after = walk.after.as_ref().map(|(s, b)| (s.as_str(), b.as_str()));
            let mut n = 0;
            let mut last = None;
            if family.reads_totals() {
                for (service, breaker, totals) in
                    fleet.totals_after(None, after).take(CHUNK_BREAKERS)
                {
                    family.write_totals(&mut out, service, breaker, totals);
                    n += 1;
                    last = Some((service, breaker));
                }
            } else {
                for (service, breaker, instances) in
                    fleet.breakers_after(None, after).take(CHUNK_BREAKERS)
                {
                    family.write_gauges(&mut out, service, breaker, &breaker_gauges(instances));
                    n += 1;
                    last = Some((service, breaker));
                }
            }
            (n, last.map(|(s, b)| (s.to_string(), b.to_string())))
        };
        if n < CHUNK_BREAKERS {
            walk.family += 1;
            walk.after = None;
        } else {
            walk.after = last;
        }
        Some((Ok(Bytes::from(out)), walk))
    }))
}

// === impl Family ===

impl Family {
    fn header(self) -> &'static str {
        match self {
            Family::Calls => "# TYPE fusebox_calls_total counter\n",
            Family::Transitions => "# TYPE fusebox_transitions_total counter\n",
            Family::State => "# TYPE fusebox_breaker_state gauge\n",
            Family::OpenInstances => "# TYPE fusebox_breaker_open_instances gauge\n",
            Family::Instances => "# TYPE fusebox_breaker_instances gauge\n",
            Family::FailureRate => "# TYPE fusebox_breaker_failure_rate gauge\n",
        }
    }

    fn reads_totals(self) -> bool {
        matches!(self, Family::Calls | Family::Transitions)
    }

    fn write_totals(self, out: &mut String, service: &str, breaker: &str, totals: &Totals) {
        let c = &totals.counts;
        match self {
            Family::Calls => {
                for (outcome, n) in [
                    ("success", c.success),
                    ("failure", c.failure),
                    ("timeout", c.timeout),
                    ("rejected", c.rejected),
                    ("slow", c.slow),
                    ("ignored", c.ignored),
                ] {
                    sample(
                        out,
                        "fusebox_calls_total",
                        service,
                        breaker,
                        &[("outcome", outcome)],
                        n as f64,
                    );
                }
            }
            Family::Transitions => {
                for (from, to, n) in totals.transitions() {
                    sample(
                        out,
                        "fusebox_transitions_total",
                        service,
                        breaker,
                        &[("from", from.as_str()), ("to", to.as_str())],
                        n as f64,
                    );
                }
            }
            _ => unreachable!("a gauge family reads the breakers"),
        }
    }

    fn write_gauges(self, out: &mut String, service: &str, breaker: &str, gauges: &BreakerGauges) {
        match self {
            Family::State => {
                for state in STATES {
                    let value = if gauges.state == state { 1.0 } else { 0.0 };
                    sample(
                        out,
                        "fusebox_breaker_state",
                        service,
                        breaker,
                        &[("state", state.as_str())],
                        value,
                    );
                }
            }
            Family::OpenInstances => {
                sample(
                    out,
                    "fusebox_breaker_open_instances",
                    service,
                    breaker,
                    &[],
                    gauges.open_instances as f64,
                );
            }
            Family::Instances => {
                sample(
                    out,
                    "fusebox_breaker_instances",
                    service,
                    breaker,
                    &[],
                    gauges.instances as f64,
                );
            }
            Family::FailureRate => {
                sample(
                    out,
                    "fusebox_breaker_failure_rate",
                    service,
                    breaker,
                    &[],
                    gauges.failure_rate.unwrap_or(0.0),
                );
            }
            _ => unreachable!("a counter family reads the totals"),
        }
    }
}

/// Writes one sample line: `name{service="…",breaker="…",extra…} value`.
fn sample(
    out: &mut String,
    name: &str,
    service: &str,
    breaker: &str,
    extra: &[(&str, &str)],
    value: f64,
) {
    out.push_str(name);
    out.push_str("{service=\"");
    escape_label(out, service);
    out.push_str("\",breaker=\"");
    escape_label(out, breaker);
    out.push('"');
    for (label, text) in extra {
        out.push(',');
        out.push_str(label);
        out.push_str("=\"");
        escape_label(out, text);
        out.push('"');
    }
    out.push_str("} ");
    // Counts are exported as floats, as the text format has them; `Display` writes integers
    // without a fraction.
    let _ = write!(out, "{value}");
    out.push('\n');
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body stream may be polled once more after its end; it must say "ended" again.
    #[tokio::test]
    async fn exposition_can_be_polled_after_its_end() {
        use futures_util::StreamExt;
        let fleet = Arc::new(RwLock::new(Fleet::default()));
        let mut stream = std::pin::pin!(exposition("# server\n".into(), fleet));
        let mut chunks = 0;
        while stream.next().await.is_some() {
            chunks += 1;
        }
        assert_eq!(chunks, 1 + FAMILIES.len());
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", "a\"b", "c\\d", &[("to", "open")], 2.0);
        assert_eq!(
            out,
            "m{service=\"a\\\"b\",breaker=\"c\\\\d\",to=\"open\"} 2\n"
        );
    }
}
