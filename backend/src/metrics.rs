//! `/metrics` in the Prometheus exposition format, through metrics-exporter-prometheus.
//!
//! Each server owns its recorder (no global state, so several servers can run in one process,
//! as the tests do). Counters are bumped by the ingest writer after each commit; the breaker
//! gauges are set from the [`Fleet`] when scraped, so they are never staler than the fleet.

use std::time::Duration;

use metrics::with_local_recorder;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use protocol::{IngestBatch, State};

use crate::fleet::Fleet;

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
    /// Counts a committed, non-duplicate batch and its transitions (calls are counted by the
    /// fleet and exported when scraped).
    pub fn record_batch(&self, batch: &IngestBatch) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!("fusebox_ingest_batches_total").increment(1);
            for transition in &batch.transitions {
                metrics::counter!("fusebox_transitions_total",
                    "service" => batch.service.clone(),
                    "breaker" => transition.breaker.clone(),
                    "from" => transition.from.as_str(),
                    "to" => transition.to.as_str())
                .increment(1);
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

    /// An engine run started (see [`crate::engine_run`]).
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

    /// The exposition text, with breaker gauges taken from `fleet` now.
    pub fn render(&self, fleet: &Fleet, queue_depth: usize) -> String {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!("fusebox_ingest_queue_depth").set(queue_depth as f64);
            for (service, breaker, counts) in fleet.totals() {
                for (outcome, n) in [
                    ("success", counts.success),
                    ("failure", counts.failure),
                    ("timeout", counts.timeout),
                    ("rejected", counts.rejected),
                    ("slow", counts.slow),
                    ("ignored", counts.ignored),
                ] {
                    metrics::counter!("fusebox_calls_total",
                        "service" => service.to_string(),
                        "breaker" => breaker.to_string(),
                        "outcome" => outcome)
                    .absolute(n);
                }
            }
            for summary in fleet.summaries() {
                for state in [State::Closed, State::Open, State::HalfOpen] {
                    metrics::gauge!("fusebox_breaker_state",
                        "service" => summary.service.clone(),
                        "breaker" => summary.breaker.clone(),
                        "state" => state.as_str())
                    .set(if summary.state == state { 1.0 } else { 0.0 });
                }
                metrics::gauge!("fusebox_breaker_open_instances",
                    "service" => summary.service.clone(),
                    "breaker" => summary.breaker.clone())
                .set(f64::from(summary.open_instances));
                metrics::gauge!("fusebox_breaker_instances",
                    "service" => summary.service.clone(),
                    "breaker" => summary.breaker.clone())
                .set(summary.instances.len() as f64);
                metrics::gauge!("fusebox_breaker_failure_rate",
                    "service" => summary.service.clone(),
                    "breaker" => summary.breaker.clone())
                .set(summary.failure_rate.unwrap_or(0.0));
            }
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
