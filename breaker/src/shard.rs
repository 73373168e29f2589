//! Striped counters: each thread adds to its own cache line, readers add the stripes up.
//!
//! One shared atomic costs ~23 ns per increment when two cores fight over it. Instead, each
//! thread claims a slot from a process-wide pool on first use (and gives it back when it
//! exits); slot `k` is stripe `k` of every breaker, so its thread is that stripe's only writer
//! and counts with a plain load and store, no locked instruction. Threads beyond the pool
//! share a few overflow stripes with atomic adds.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) const SUCCESS: usize = 0;
pub(crate) const FAILURE: usize = 1;
pub(crate) const TIMEOUT: usize = 2;
pub(crate) const REJECTED: usize = 3;
pub(crate) const SLOW: usize = 4;
pub(crate) const IGNORED: usize = 5;
pub(crate) const WOULD_REJECT: usize = 6;
const N_COUNTS: usize = 7;
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
    /// Calls a `MetricsOnly` breaker let through that it would have rejected.
    pub would_reject: u64,
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
}

/// Slots in the pool: at most 64 (one bit each in `SLOTS_TAKEN`).
const MAX_OWNED_SLOTS: usize = 64;
/// Overflow stripes, shared by threads that found the pool empty.
const N_SHARED_STRIPES: usize = 2;
/// Marks a slot value as owned by its thread.
const OWNED: usize = 1 << (usize::BITS - 1);
const UNASSIGNED: usize = usize::MAX;

static SLOTS_TAKEN: AtomicU64 = AtomicU64::new(0);
static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot: a stripe index, with `OWNED` set when the thread owns it.
    static THREAD_SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
    /// Gives an owned slot back when the thread exits.
    static SLOT_GUARD: SlotGuard = const { SlotGuard { slot: Cell::new(UNASSIGNED) } };
}

struct SlotGuard {
    slot: Cell<usize>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let slot = self.slot.get();
        if slot != UNASSIGNED {
            // Later uses by this thread's other destructors go to a shared stripe.
            THREAD_SLOT.with(|cached| cached.set(shared_slot()));
            SLOTS_TAKEN.fetch_and(!(1u64 << slot), Ordering::Release);
        }
    }
}

/// How many slots the pool holds: twice the cores, so that a runtime's worker threads and a
/// few others each own one.
fn n_owned_slots() -> usize {
    // Computed once: every breaker's stripes must cover every slot handed out.
    static N_OWNED_SLOTS: OnceLock<usize> = OnceLock::new();
    *N_OWNED_SLOTS.get_or_init(|| {
        let parallelism = std::thread::available_parallelism().map_or(4, |n| n.get());
        (parallelism * 2).clamp(4, MAX_OWNED_SLOTS)
    })
}

fn shared_slot() -> usize {
    n_owned_slots() + NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % N_SHARED_STRIPES
}

#[inline]
fn thread_slot() -> usize {
    let slot = THREAD_SLOT.with(Cell::get);
    if slot != UNASSIGNED {
        return slot;
    }
    claim_slot()
}

#[cold]
fn claim_slot() -> usize {
    let n_owned = n_owned_slots();
    let mut taken = SLOTS_TAKEN.load(Ordering::Relaxed);
    let slot = loop {
        let free = (!taken).trailing_zeros() as usize;
        if free >= n_owned {
            break shared_slot();
        }
        match SLOTS_TAKEN.compare_exchange_weak(
            taken,
            taken | (1u64 << free),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                // Without a guard (the thread is exiting) the slot could not be given back.
                let guarded = SLOT_GUARD.try_with(|guard| guard.slot.set(free)).is_ok();
                if guarded {
                    break free | OWNED;
                }
                SLOTS_TAKEN.fetch_and(!(1u64 << free), Ordering::Release);
                break shared_slot();
            }
            Err(actual) => taken = actual,
        }
    };
    THREAD_SLOT.with(|cached| cached.set(slot));
    slot
}

pub(crate) fn latency_bucket(latency: Duration) -> usize {
    let micros = latency.as_micros().min(u128::from(u64::MAX)) as u64;
    LATENCY_BOUNDS_US
        .iter()
        .position(|&bound| micros <= bound)
        .unwrap_or(LATENCY_BOUNDS_US.len())
}

// === impl Stripe ===

/// A stripe and whether this thread is its only writer.
pub(crate) struct LocalStripe<'a> {
    stripe: &'a Stripe,
    owned: bool,
}

impl LocalStripe<'_> {
    #[inline]
    pub(crate) fn add(&self, counter: usize, n: u64) {
        bump(&self.stripe.counts[counter], n, self.owned);
    }

    /// The stripe's count of `counter`.
    #[inline]
    pub(crate) fn count(&self, counter: usize) -> u64 {
        self.stripe.counts[counter].load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn add_latency(&self, latency: Duration) {
        self.add_latency_bucket(latency_bucket(latency));
    }

    #[inline]
    pub(crate) fn add_latency_bucket(&self, bucket: usize) {
        bump(&self.stripe.latency[bucket], 1, self.owned);
    }
}

#[inline]
fn bump(cell: &AtomicU64, n: u64, owned: bool) {
    if owned {
        // The only writer: no read-modify-write needed, readers see whole values.
        cell.store(cell.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    } else {
        cell.fetch_add(n, Ordering::Relaxed);
    }
}

// === impl Stripes ===

impl Stripes {
    pub(crate) fn new() -> Stripes {
        Stripes {
            stripes: (0..n_owned_slots() + N_SHARED_STRIPES)
                .map(|_| Stripe::default())
                .collect(),
        }
    }

    #[inline]
    pub(crate) fn local(&self) -> LocalStripe<'_> {
        self.stripe_of(thread_slot())
    }

    #[inline(always)]
    fn stripe_of(&self, slot: usize) -> LocalStripe<'_> {
        let index = slot & !OWNED;
        debug_assert!(index < self.stripes.len());
        LocalStripe {
            // SAFETY: every slot handed out is below `n_owned_slots() + N_SHARED_STRIPES`
            // (`claim_slot`, `shared_slot`), fixed once computed, and every `Stripes` holds
            // that many stripes (`Stripes::new`).
            stripe: unsafe { self.stripes.get_unchecked(index) },
            owned: slot & OWNED != 0,
        }
    }

    /// [`Stripes::local`] if this thread has a slot already.
    #[inline(always)]
    pub(crate) fn local_if_claimed(&self) -> Option<LocalStripe<'_>> {
        let slot = THREAD_SLOT.with(Cell::get);
        (slot != UNASSIGNED).then(|| self.stripe_of(slot))
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
            counters.would_reject += count(WOULD_REJECT);
            for (total, bucket) in counters.latency.iter_mut().zip(stripe.latency.iter()) {
                *total += bucket.load(Ordering::Relaxed);
            }
        }
        counters
    }
}
