//! No call through a breaker allocates, on any of its paths: admitted while Closed (count
//! or time window), with latency measured, and rejected while Open.
//!
//! A binary of its own, with a global allocator that counts each thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use breaker::{CircuitBreaker, Config, Event, Interests, Listener, Mode, Window};

struct CountingAllocator;

thread_local! {
    static N_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // A thread being torn down has no counter left; it makes no calls either.
    let _ = N_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Wants latencies, like the reporter.
struct LatencyListener;

impl Listener for LatencyListener {
    fn interests(&self) -> Interests {
        Interests {
            latency: true,
            ..Default::default()
        }
    }

    fn on_event(&self, _event: &Event<'_>) {}
}

/// Allocations on this thread per call of `call`, after a warm-up.
fn allocations_per_call(call: impl Fn()) -> u64 {
    for _ in 0..1_000 {
        call();
    }
    let before = N_ALLOCATIONS.with(Cell::get);
    for _ in 0..10_000 {
        call();
    }
    N_ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn no_path_of_a_call_allocates() {
    let count = CircuitBreaker::new("count", Config::default());
    let time = CircuitBreaker::new(
        "time",
        Config::builder().window(Window::Time(60)).build().unwrap(),
    );
    let measured = |window| {
        let breaker = CircuitBreaker::new(
            "measured",
            Config::builder()
                .window(window)
                .slow_call_rate_threshold(0.5)
                .slow_call_duration(Duration::from_secs(1))
                .build()
                .unwrap(),
        );
        breaker.add_listener(Arc::new(LatencyListener));
        breaker
    };
    let (measured_count, measured_time) =
        (measured(Window::Count(100)), measured(Window::Time(60)));
    let forced_open = CircuitBreaker::new("forced", Config::default());
    forced_open.set_mode(Mode::ForcedOpen);
    let open = CircuitBreaker::new(
        "open",
        Config::builder()
            .consecutive_failures(1)
            .wait_duration(Duration::from_secs(3_600))
            .build()
            .unwrap(),
    );
    let _ = open.call(|| Err::<(), ()>(()));

    for (name, breaker) in [
        ("count window", &count),
        ("time window", &time),
        ("count window, latency measured", &measured_count),
        ("time window, latency measured", &measured_time),
        ("forced open", &forced_open),
        ("open", &open),
    ] {
        let n = allocations_per_call(|| {
            let _ = std::hint::black_box(breaker.call(|| Ok::<_, ()>(1)));
        });
        assert_eq!(n, 0, "{name}: {n} allocations in 10,000 calls");
    }
}
