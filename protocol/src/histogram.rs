//! A fixed-bucket latency histogram that merges by adding counts.
//!
//! Every reporter and the server use the same bucket bounds, so histograms from any
//! instance and any interval merge exactly; percentiles are read from merged histograms
//! (never averaged).

use serde::{Deserialize, Serialize};

/// Upper bounds of the latency buckets, in milliseconds. A last, unbounded bucket follows.
pub const LATENCY_BOUNDS_MS: [u32; 14] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000,
];

/// Counts per latency bucket: `counts[i]` holds calls with latency ≤ `LATENCY_BOUNDS_MS[i]`
/// and above the previous bound; `counts[14]` holds calls slower than 30 s.
/// An empty `counts` means no call was measured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatencyHistogram {
    #[serde(default)]
    pub counts: Vec<u64>,
}

impl LatencyHistogram {
    pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

    /// The bucket index for a latency in microseconds.
    pub fn bucket_of_micros(latency_us: u64) -> usize {
        LATENCY_BOUNDS_MS
            .iter()
            .position(|&bound_ms| latency_us <= u64::from(bound_ms) * 1_000)
            .unwrap_or(LATENCY_BOUNDS_MS.len())
    }

    pub fn record_micros(&mut self, latency_us: u64) {
        self.add_to_bucket(Self::bucket_of_micros(latency_us), 1);
    }

    pub fn add_to_bucket(&mut self, bucket: usize, n: u64) {
        if self.counts.len() < Self::BUCKETS {
            self.counts.resize(Self::BUCKETS, 0);
        }
        let slot = &mut self.counts[bucket.min(Self::BUCKETS - 1)];
        *slot = crate::add_counts(*slot, n);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (bucket, &n) in other.counts.iter().enumerate() {
            if n > 0 {
                self.add_to_bucket(bucket, n);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0, |sum, &n| crate::add_counts(sum, n))
    }

    /// The latency in ms below which a share `q` (0–1) of the calls fall, taking each call's
    /// latency as its bucket's upper bound. Calls over the last bound count as twice that bound.
    /// `None` when the histogram is empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen = crate::add_counts(seen, n);
            if seen >= rank {
                return Some(match LATENCY_BOUNDS_MS.get(bucket) {
                    Some(&bound) => f64::from(bound),
                    None => f64::from(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]) * 2.0,
                });
            }
        }
        None
    }
}
