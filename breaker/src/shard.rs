//! Striped counters: each thread adds to its own cache line, readers add the stripes up.
//!
//! One shared atomic costs ~23 ns per increment when two cores fight over it; a stripe per
//! thread keeps the closed hot path at an uncontended increment.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) const SUCCESS: usize = 0;
pub(crate) const FAILURE: usize = 1;
pub(crate) const TIMEOUT: usize = 2;
pub(crate) const REJECTED: usize = 3;
pub(crate) const SLOW: usize = 4;
pub(crate) const IGNORED: usize = 5;
const N_COUNTS: usize = 6;
pub(crate) const N_LATENCY_BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// Upper bounds of the latency buckets in microseconds; the same as
/// `protocol::LATENCY_BOUNDS_MS`, so stripes convert to the wire histogram bucket by bucket.
pub(crate) const LATENCY_BOUNDS_US: [u64; 14] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// Cumulative counts since the breaker was made, summed over the stripes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub success: u64,
    pub failure: u64,
    pub timeout: u64,
    pub rejected: u64,
    pub slow: u64,
    pub ignored: u64,
    /// Calls per latency bucket (bounds as `protocol::LATENCY_BOUNDS_MS`, then one unbounded);
    /// filled only while latency is measured (a slow-call policy or a reporter).
    pub latency: [u64; N_LATENCY_BUCKETS],
}

/// One stripe, on cache lines of its own (128 bytes covers adjacent-line prefetching).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Stripe {
    counts: [AtomicU64; N_COUNTS],
    latency: [AtomicU64; N_LATENCY_BUCKETS],
}

pub(crate) struct Stripes {
    stripes: Box<[Stripe]>,
    mask: usize,
}

static NEXT_THREAD_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe number, handed out round-robin on first use.
    static THREAD_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn thread_slot() -> usize {
    THREAD_SLOT.with(|slot| {
        let mut value = slot.get();
        if value == usize::MAX {
            value = NEXT_THREAD_SLOT.fetch_add(1, Ordering::Relaxed);
            slot.set(value);
        }
        value
    })
}

pub(crate) fn latency_bucket(latency: Duration) -> usize {
    let micros = latency.as_micros().min(u128::from(u64::MAX)) as u64;
    LATENCY_BOUNDS_US
        .iter()
        .position(|&bound| micros <= bound)
        .unwrap_or(LATENCY_BOUNDS_US.len())
}

// === impl Stripe ===

impl Stripe {
    #[inline]
    pub(crate) fn add(&self, counter: usize, n: u64) {
        self.counts[counter].fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add_latency(&self, latency: Duration) {
        self.latency[latency_bucket(latency)].fetch_add(1, Ordering::Relaxed);
    }
}

// === impl Stripes ===

impl Stripes {
    pub(crate) fn new() -> Stripes {
        let parallelism = std::thread::available_parallelism().map_or(4, |n| n.get());
        // Twice the cores, so threads beyond the core count still rarely share a stripe.
        let n_stripes = (parallelism * 2).next_power_of_two().clamp(2, 32);
        Stripes {
            stripes: (0..n_stripes).map(|_| Stripe::default()).collect(),
            mask: n_stripes - 1,
        }
    }

    #[inline]
    pub(crate) fn local(&self) -> &Stripe {
        &self.stripes[thread_slot() & self.mask]
    }

    pub(crate) fn sum_of(&self, counter: usize) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.counts[counter].load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn sum(&self) -> Counters {
        let mut counters = Counters::default();
        for stripe in self.stripes.iter() {
            let count = |counter: usize| stripe.counts[counter].load(Ordering::Relaxed);
            counters.success += count(SUCCESS);
            counters.failure += count(FAILURE);
            counters.timeout += count(TIMEOUT);
            counters.rejected += count(REJECTED);
            counters.slow += count(SLOW);
            counters.ignored += count(IGNORED);
            for (total, bucket) in counters.latency.iter_mut().zip(stripe.latency.iter()) {
                *total += bucket.load(Ordering::Relaxed);
            }
        }
        counters
    }
}
