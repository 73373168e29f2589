//! The closed hot path (and rejections while Open): this crate against recloser 1.4 and
//! failsafe 1.3, in one run.
//!
//! Each contender wraps a trivial call that succeeds. "2 threads" runs the same loop on two
//! threads sharing one breaker and reports time per call per thread. After criterion's own
//! measurements, a summary table (the best of 15 interleaved timed loops per contender) and
//! the allocations per call, counted by a counting global allocator, are printed.
//!
//! `cargo xtask bench --only hot_path` (that is, `cargo bench -p breaker --bench hot_path`)

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use failsafe::CircuitBreaker as _;

struct CountingAllocator;

static N_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        N_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        N_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// One breaker under test: a name and a closure making one guarded call.
struct Contender {
    name: &'static str,
    call: Box<dyn Fn() + Sync>,
}

fn trivial() -> Result<u64, ()> {
    Ok(black_box(1))
}

/// Wants latencies and nothing else, like the reporter.
struct LatencyListener;

impl breaker::Listener for LatencyListener {
    fn interests(&self) -> breaker::Interests {
        breaker::Interests {
            latency: true,
            ..Default::default()
        }
    }

    fn on_event(&self, _event: &breaker::Event<'_>) {}
}

fn contenders() -> Vec<Contender> {
    let fusebox = breaker::CircuitBreaker::new("bench", breaker::Config::default());
    let fusebox_time = breaker::CircuitBreaker::new(
        "bench",
        breaker::Config::builder()
            .window(breaker::Window::Time(60))
            .build()
            .unwrap(),
    );
    // A reporter asks for every call's latency: two clock reads per call.
    let fusebox_timed = breaker::CircuitBreaker::new("bench", breaker::Config::default());
    fusebox_timed.add_listener(std::sync::Arc::new(LatencyListener));
    let recloser = recloser::Recloser::default();
    // Open breakers, rejecting every call.
    let fusebox_open = breaker::CircuitBreaker::new("bench", breaker::Config::default());
    fusebox_open.set_mode(breaker::Mode::ForcedOpen);
    let fusebox_open_wait = breaker::CircuitBreaker::new(
        "bench",
        breaker::Config::builder()
            .consecutive_failures(1)
            .wait_duration(Duration::from_secs(3_600))
            .build()
            .unwrap(),
    );
    let _ = fusebox_open_wait.call(|| Err::<(), ()>(()));
    let recloser_open = recloser::Recloser::custom()
        .closed_len(1)
        .open_wait(Duration::from_secs(3_600))
        .build();
    for _ in 0..2 {
        let _ = recloser_open.call(|| Err::<(), ()>(()));
    }
    let failsafe_default = failsafe::Config::new().build();
    let failsafe_consecutive = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            5,
            failsafe::backoff::constant(Duration::from_secs(30)),
        ))
        .build();
    vec![
        Contender {
            name: "fusebox breaker (count window)",
            call: Box::new(move || {
                let _ = black_box(fusebox.call(trivial));
            }),
        },
        Contender {
            name: "fusebox breaker (time window)",
            call: Box::new(move || {
                let _ = black_box(fusebox_time.call(trivial));
            }),
        },
        Contender {
            name: "fusebox breaker (count window, latency measured as for a reporter)",
            call: Box::new(move || {
                let _ = black_box(fusebox_timed.call(trivial));
            }),
        },
        Contender {
            name: "recloser 1.4",
            call: Box::new(move || {
                let _ = black_box(recloser.call(trivial));
            }),
        },
        Contender {
            name: "fusebox breaker (open, waiting)",
            call: Box::new(move || {
                let _ = black_box(fusebox_open_wait.call(trivial));
            }),
        },
        Contender {
            name: "fusebox breaker (open, forced)",
            call: Box::new(move || {
                let _ = black_box(fusebox_open.call(trivial));
            }),
        },
        Contender {
            name: "recloser 1.4 (open)",
            call: Box::new(move || {
                let _ = black_box(recloser_open.call(trivial));
            }),
        },
        Contender {
            name: "failsafe 1.3 (default)",
            call: Box::new(move || {
                let _ = black_box(failsafe_default.call(trivial));
            }),
        },
        Contender {
            name: "failsafe 1.3 (consecutive failures)",
            call: Box::new(move || {
                let _ = black_box(failsafe_consecutive.call(trivial));
            }),
        },
    ]
}

/// Runs `n_calls` calls on each of `n_threads` threads at once; returns the slowest
/// thread's time.
fn run_threads(contender: &Contender, n_threads: usize, n_calls: u64) -> Duration {
    if n_threads == 1 {
        let start = Instant::now();
        for _ in 0..n_calls {
            (contender.call)();
        }
        return start.elapsed();
    }
    let barrier = Barrier::new(n_threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n_threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..n_calls {
                        (contender.call)();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .max()
            .unwrap()
    })
}

fn bench(c: &mut Criterion, contenders: &[Contender]) {
    for n_threads in [1, 2] {
        let mut group = c.benchmark_group(format!("{n_threads}_thread"));
        for contender in contenders {
            group.bench_function(contender.name, |b| {
                b.iter_custom(|iters| run_threads(contender, n_threads, iters))
            });
        }
        group.finish();
    }
}

/// ns per call for every contender on `n_threads` threads: the best of several rounds, the
/// contenders taking turns within each round, so load from elsewhere on the machine hits
/// them all alike and the minimum filters it out.
fn best_ns(contenders: &[Contender], n_threads: usize) -> Vec<f64> {
    let n_calls = 500_000;
    let mut best = vec![f64::INFINITY; contenders.len()];
    for _round in 0..15 {
        for (contender, best) in contenders.iter().zip(best.iter_mut()) {
            let ns = run_threads(contender, n_threads, n_calls).as_nanos() as f64 / n_calls as f64;
            *best = best.min(ns);
        }
    }
    best
}

fn allocations_per_call(contender: &Contender) -> f64 {
    // Warm up first: lazily made thread-locals are not per call.
    for _ in 0..1_000 {
        (contender.call)();
    }
    let n_calls = 100_000;
    let before = N_ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n_calls {
        (contender.call)();
    }
    (N_ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / n_calls as f64
}

fn main() {
    let contenders = contenders();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut criterion, &contenders);
    criterion.final_summary();

    // Closed rows compare with recloser closed, open rows with recloser open.
    let position = |name: &str| {
        contenders
            .iter()
            .position(|contender| contender.name == name)
            .unwrap()
    };
    let (recloser_closed, recloser_open) =
        (position("recloser 1.4"), position("recloser 1.4 (open)"));
    let one_thread = best_ns(&contenders, 1);
    let two_threads = best_ns(&contenders, 2);
    let rows: Vec<(f64, f64, f64)> = contenders
        .iter()
        .enumerate()
        .map(|(i, contender)| {
            (
                one_thread[i],
                two_threads[i],
                allocations_per_call(contender),
            )
        })
        .collect();
    println!();
    println!(
        "| breaker (trivial call) | 1 thread ns/call | × recloser | 2 threads ns/call | × recloser | allocations/call |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (contender, &(one, two, allocations)) in contenders.iter().zip(&rows) {
        let baseline = if contender.name.contains("(open") {
            recloser_open
        } else {
            recloser_closed
        };
        println!(
            "| {} | {one:.1} | {:.2} | {two:.1} | {:.2} | {allocations} |",
            contender.name,
            one / rows[baseline].0,
            two / rows[baseline].1,
        );
    }
}
