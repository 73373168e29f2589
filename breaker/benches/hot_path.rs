//! The closed hot path (and rejections while Open): this crate against recloser 1.4 (and
//! failsafe 1.3), in one run.
//!
//! Each contender wraps a trivial call that succeeds. "2 threads" runs the same loop on two
//! threads sharing one breaker and reports time per call per thread. After criterion's own
//! measurements, one table is printed: for each path, on 1 and 2 threads, ns per call for the
//! breaker and for recloser, and the ratio of the two as the median (min–max) over the rounds.
//! Every round times each contender in turn (the best of a few short loops, so a preemption
//! by another process spoils one loop, not the round), and ratios are taken within a round, so
//! load from elsewhere on the machine moves both sides of a ratio alike. Allocations per call
//! are counted by a counting global allocator.
//!
//! `cargo xtask bench --only hot_path` (that is, `cargo bench -p breaker --bench hot_path`);
//! `-- table` prints the table without running criterion first. Under `cargo xtask bench`
//! every line of the table is also a row of the run's goal/figure summary (`summary`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use failsafe::CircuitBreaker as _;

#[path = "../../xtask/src/bench/row.rs"]
mod summary;

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

/// The TSC where there is one (what `SystemClock`'s stopwatch reads on x86-64 Linux).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn cheapest_clock() -> u64 {
    // SAFETY: RDTSC exists on every x86-64 CPU and has no preconditions.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn cheapest_clock() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
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
    // What services run: a slow-call rule, and a reporter asking for every call's latency.
    // The latency is measured (two clock readings per call) and judged against the rule.
    let fusebox_timed = breaker::CircuitBreaker::new(
        "bench",
        breaker::Config::builder()
            .slow_call_rate_threshold(0.5)
            .slow_call_duration(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    fusebox_timed.add_listener(std::sync::Arc::new(LatencyListener));
    let fusebox_time_timed = breaker::CircuitBreaker::new(
        "bench",
        breaker::Config::builder()
            .slow_call_rate_threshold(0.5)
            .slow_call_duration(Duration::from_secs(1))
            .window(breaker::Window::Time(60))
            .build()
            .unwrap(),
    );
    fusebox_time_timed.add_listener(std::sync::Arc::new(LatencyListener));
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
            name: "no breaker",
            call: Box::new(|| {
                let _ = black_box(trivial());
            }),
        },
        // What measuring a latency costs at the least: the cheapest exact clock read twice
        // around the call, with no breaker at all.
        Contender {
            name: "two clock readings, no breaker",
            call: Box::new(|| {
                let start = cheapest_clock();
                let _ = black_box(trivial());
                black_box(cheapest_clock().wrapping_sub(start));
            }),
        },
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
            name: "fusebox breaker (count window, latency measured: slow-call rule and reporter)",
            call: Box::new(move || {
                let _ = black_box(fusebox_timed.call(trivial));
            }),
        },
        Contender {
            name: "fusebox breaker (time window, latency measured: slow-call rule and reporter)",
            call: Box::new(move || {
                let _ = black_box(fusebox_time_timed.call(trivial));
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
/// thread's time and the share of it during which all the threads were running (1 for one
/// thread): a thread started late, finished early or preempted does not contend meanwhile.
fn run_threads(contender: &Contender, n_threads: usize, n_calls: u64) -> (Duration, f64) {
    if n_threads == 1 {
        let start = Instant::now();
        for _ in 0..n_calls {
            (contender.call)();
        }
        return (start.elapsed(), 1.0);
    }
    // A spinning start line: a thread woken from a blocking barrier starts tens of µs late.
    let n_ready = AtomicUsize::new(0);
    let spans: Vec<(Instant, Instant, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n_threads)
            .map(|i_thread| {
                let n_ready = &n_ready;
                scope.spawn(move || {
                    pin_to_cpu(i_thread);
                    n_ready.fetch_add(1, Ordering::AcqRel);
                    while n_ready.load(Ordering::Acquire) < n_threads {
                        std::hint::spin_loop();
                    }
                    let (start, cpu_start) = (Instant::now(), thread_cpu_time());
                    for _ in 0..n_calls {
                        (contender.call)();
                    }
                    (start, Instant::now(), thread_cpu_time() - cpu_start)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let slowest = spans
        .iter()
        .map(|(start, end, _)| *end - *start)
        .max()
        .unwrap();
    let last_start = spans.iter().map(|span| span.0).max().unwrap();
    let first_end = spans.iter().map(|span| span.1).min().unwrap();
    // Time off the CPU (preempted) is time the others ran alone.
    let off_cpu = spans
        .iter()
        .map(|(start, end, cpu)| (*end - *start).saturating_sub(*cpu))
        .sum::<Duration>();
    let together = first_end
        .saturating_duration_since(last_start)
        .saturating_sub(off_cpu);
    (slowest, together.as_secs_f64() / slowest.as_secs_f64())
}

/// Keeps the calling thread on CPU `i` (modulo the CPUs there are), so that two threads of a
/// loop are not queued on one CPU while the other runs something else.
#[cfg(target_os = "linux")]
fn pin_to_cpu(i: usize) {
    let n_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: a zeroed cpu_set_t is an empty set; the calls only write inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(i % n_cpus, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to_cpu(_i: usize) {}

/// CPU time of the calling thread.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// Elsewhere preemption goes unseen: wall time stands in, as if always on the CPU.
#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

fn bench(c: &mut Criterion, contenders: &[Contender]) {
    for n_threads in [1, 2] {
        let mut group = c.benchmark_group(format!("{n_threads}_thread"));
        for contender in contenders {
            group.bench_function(contender.name, |b| {
                b.iter_custom(|iters| run_threads(contender, n_threads, iters).0)
            });
        }
        group.finish();
    }
}

/// Rounds of the table; every ratio is reported as the median and range over them.
const N_ROUNDS: usize = 9;
/// Timed loops per contender in a round; the best one counts.
const N_LOOPS: usize = 5;
/// Calls per thread in one timed loop: a millisecond or so, shorter than a scheduler slice.
const N_CALLS: u64 = 100_000;
/// Calls per thread in one two-thread loop: shorter still, so that both threads stay on their
/// CPUs through it more often on a loaded machine.
const N_CALLS_TOGETHER: u64 = 20_000;

/// Two-thread loops count only when both threads ran together for this share of the time.
const MIN_TOGETHER: f64 = 0.9;

/// ns per call for every contender on `n_threads` threads, one entry per round (`None` when
/// every loop of the contender was discarded in that round), and how many loops were
/// discarded because the threads did not run together. Within a round the contenders take
/// turns, loop by loop, so load from elsewhere hits them alike.
fn rounds_ns(contenders: &[Contender], n_threads: usize) -> (Vec<Vec<Option<f64>>>, usize) {
    let mut n_discarded = 0;
    let mut n_calls = vec![
        if n_threads == 1 {
            N_CALLS
        } else {
            N_CALLS_TOGETHER
        };
        contenders.len()
    ];
    let rounds = (0..N_ROUNDS)
        .map(|_| {
            let mut best: Vec<Option<f64>> = vec![None; contenders.len()];
            let mut n_kept = vec![0; contenders.len()];
            for _ in 0..N_LOOPS * 40 {
                if n_kept.iter().all(|&n| n >= N_LOOPS) {
                    break;
                }
                for (i, contender) in contenders.iter().enumerate() {
                    if n_kept[i] >= N_LOOPS {
                        continue;
                    }
                    let (elapsed, together) = run_threads(contender, n_threads, n_calls[i]);
                    let ns = elapsed.as_nanos() as f64 / n_calls[i] as f64;
                    // Two threads fighting over a cache line can take 100× longer per call:
                    // loops are shortened until they take about a millisecond.
                    if n_threads > 1 && elapsed > Duration::from_millis(1) {
                        n_calls[i] = (n_calls[i] / 2).max(1_000);
                    }
                    if together < MIN_TOGETHER {
                        n_discarded += 1;
                        continue;
                    }
                    n_kept[i] += 1;
                    best[i] = Some(best[i].map_or(ns, |best| best.min(ns)));
                }
            }
            best
        })
        .collect();
    (rounds, n_discarded)
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

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// One row of the table: a path of this crate against its recloser baseline.
struct Row {
    path: &'static str,
    contender: &'static str,
    baseline: &'static str,
    /// The goal for the ratio on 1 and on 2 threads, if one is set.
    goal: [Option<f64>; 2],
}

const ROWS: [Row; 10] = [
    Row {
        path: "for reference: no breaker, the call alone",
        contender: "no breaker",
        baseline: "recloser 1.4",
        goal: [None, None],
    },
    Row {
        path: "closed, count window",
        contender: "fusebox breaker (count window)",
        baseline: "recloser 1.4",
        goal: [Some(0.5), Some(0.3)],
    },
    Row {
        path: "closed, time window",
        contender: "fusebox breaker (time window)",
        baseline: "recloser 1.4",
        goal: [Some(0.5), Some(0.3)],
    },
    Row {
        path: "closed, latency measured (slow-call rule and reporter)",
        contender: "fusebox breaker (count window, latency measured: slow-call rule and reporter)",
        baseline: "recloser 1.4",
        goal: [Some(1.0), Some(1.0)],
    },
    Row {
        path: "closed, time window, latency measured (slow-call rule and reporter)",
        contender: "fusebox breaker (time window, latency measured: slow-call rule and reporter)",
        baseline: "recloser 1.4",
        goal: [Some(1.0), Some(1.0)],
    },
    Row {
        path: "for reference: no breaker, the TSC read before and after the call",
        contender: "two clock readings, no breaker",
        baseline: "recloser 1.4",
        goal: [None, None],
    },
    Row {
        path: "open, rejecting (waiting)",
        contender: "fusebox breaker (open, waiting)",
        baseline: "recloser 1.4 (open)",
        goal: [None, None],
    },
    Row {
        path: "open, rejecting (forced)",
        contender: "fusebox breaker (open, forced)",
        baseline: "recloser 1.4 (open)",
        goal: [None, None],
    },
    Row {
        path: "failsafe 1.3 (default), closed",
        contender: "failsafe 1.3 (default)",
        baseline: "recloser 1.4",
        goal: [None, None],
    },
    Row {
        path: "failsafe 1.3 (consecutive failures), closed",
        contender: "failsafe 1.3 (consecutive failures)",
        baseline: "recloser 1.4",
        goal: [None, None],
    },
];

fn main() {
    let contenders = contenders();
    if !std::env::args().any(|arg| arg == "table") {
        let mut criterion = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .configure_from_args();
        bench(&mut criterion, &contenders);
        criterion.final_summary();
    }

    let position = |name: &str| {
        contenders
            .iter()
            .position(|contender| contender.name == name)
            .unwrap_or_else(|| panic!("no contender {name}"))
    };
    let (one_thread, _) = rounds_ns(&contenders, 1);
    let (two_threads, n_discarded) = rounds_ns(&contenders, 2);
    let rounds = [one_thread, two_threads];
    println!();
    println!(
        "Trivial call; {N_ROUNDS} rounds, each the best of {N_LOOPS} loops of {N_CALLS} calls \
         (on 2 threads {N_CALLS_TOGETHER} per thread, fewer for contenders taking over \
         a millisecond for that) per contender; ns/call are medians over \
         the rounds, × recloser is the median (min–max) of the ratios taken within each round. \
         2 threads: two threads calling one breaker at once, time per call per thread; a \
         two-thread loop counts only when both threads ran together for {:.0}% of it \
         ({n_discarded} loops were discarded), and a round only when both sides of the ratio \
         kept a loop in it.",
        MIN_TOGETHER * 100.0
    );
    println!();
    println!(
        "| path | threads | breaker ns/call | recloser ns/call | × recloser, median (min–max) | rounds | goal | met | allocations/call |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|:---:|---:|");
    for row in &ROWS {
        let (contender, baseline) = (position(row.contender), position(row.baseline));
        let allocations = allocations_per_call(&contenders[contender]);
        for (i_threads, rounds) in rounds.iter().enumerate() {
            let pairs: Vec<(f64, f64)> = rounds
                .iter()
                .filter_map(|round| Some((round[contender]?, round[baseline]?)))
                .collect();
            let goal = row.goal[i_threads].map_or("—".to_owned(), |goal| format!("≤ {goal:.2}"));
            let what = format!(
                "{}, {} thread{}: × {}",
                row.path,
                i_threads + 1,
                if i_threads == 0 { "" } else { "s" },
                row.baseline
            );
            if pairs.is_empty() {
                let mut figure = summary::Row::new("hot_path", what, f64::NAN, "×", 2);
                figure.figure = format!("n/a (0/{N_ROUNDS} rounds kept)");
                if let Some(goal) = row.goal[i_threads] {
                    figure = figure.at_most(goal, 2);
                    figure.met = None;
                }
                figure.record();
                println!(
                    "| {} | {} | n/a | n/a | n/a | 0/{N_ROUNDS} | {goal} | | {allocations} |",
                    row.path,
                    i_threads + 1,
                );
                continue;
            }
            let ns: Vec<f64> = pairs.iter().map(|pair| pair.0).collect();
            let base: Vec<f64> = pairs.iter().map(|pair| pair.1).collect();
            let ratios: Vec<f64> = pairs.iter().map(|(ns, base)| ns / base).collect();
            let ratio = median(&ratios);
            let (low, high) = ratios
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(low, high), &r| {
                    (low.min(r), high.max(r))
                });
            let met = match row.goal[i_threads] {
                Some(goal) if ratio <= goal => "yes",
                Some(_) => "no",
                None => "",
            };
            let figure = summary::Row::new("hot_path", what, ratio, "×", 2).spread(
                low,
                high,
                2,
                pairs.len(),
            );
            match row.goal[i_threads] {
                Some(goal) => figure.at_most(goal, 2),
                None => figure.note(format!(
                    "— ({:.1} against {:.1} ns/call)",
                    median(&ns),
                    median(&base)
                )),
            }
            .record();
            println!(
                "| {} | {} | {:.1} | {:.1} | {ratio:.2} ({low:.2}–{high:.2}) | {}/{N_ROUNDS} | {goal} | {met} | {allocations} |",
                row.path,
                i_threads + 1,
                median(&ns),
                median(&base),
                pairs.len(),
            );
        }
        if row.contender.starts_with("fusebox") {
            let mut figure = summary::Row::new(
                "hot_path",
                format!("{}: allocations per call", row.path),
                allocations,
                "",
                0,
            )
            .goal("0", allocations == 0.0);
            figure.figure = format!("{allocations}");
            figure.record();
        }
    }
    let ns_of = |name: &str| {
        let i = position(name);
        median(
            &rounds[0]
                .iter()
                .filter_map(|round| round[i])
                .collect::<Vec<_>>(),
        )
    };
    clock_thread_reference(
        ns_of("fusebox breaker (count window, latency measured: slow-call rule and reporter)")
            - ns_of("fusebox breaker (count window)"),
    );
}

/// Rounds of the clock thread's reference, each a second long.
const N_CLOCK_THREAD_ROUNDS: usize = 3;

/// What latency measured at recloser's cost would take instead of the two TSC readings: a
/// clock that a thread of its own refreshes every millisecond (its reading one load, and
/// still a millisecond off). Prints that thread's CPU time per second, against what the
/// readings cost per call (`readings_ns`: latency measured against the count window, one
/// thread), and the call rate above which the thread would be the cheaper of the two.
fn clock_thread_reference(readings_ns: f64) {
    let cpu_us_per_second: Vec<f64> = (0..N_CLOCK_THREAD_ROUNDS)
        .map(|_| {
            std::thread::spawn(|| {
                let published = AtomicU64::new(0);
                let (start, cpu_start) = (Instant::now(), thread_cpu_time());
                let mut next = start;
                while start.elapsed() < Duration::from_secs(1) {
                    next += Duration::from_millis(1);
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    published.store(cheapest_clock(), Ordering::Release);
                }
                black_box(&published);
                (thread_cpu_time() - cpu_start).as_secs_f64() * 1e6 / start.elapsed().as_secs_f64()
            })
            .join()
            .unwrap()
        })
        .collect();
    let cpu = median(&cpu_us_per_second);
    let break_even = cpu * 1_000.0 / readings_ns.max(0.1);
    println!();
    println!(
        "For reference: a thread refreshing a clock every 1 ms (what the latency-measured path \
         would need to cost what recloser costs) takes {cpu:.0} µs of CPU per second ({:.2}% \
         of a core; median of {N_CLOCK_THREAD_ROUNDS} one-second rounds), against \
         {readings_ns:.1} ns per call for the two TSC readings (latency measured against the \
         count window, one thread): it would cost less only above {break_even:.0} measured \
         calls per second in the process.",
        cpu / 10_000.0
    );
    #[cfg(target_os = "linux")]
    {
        let mut resolution = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `resolution` is a valid, writable timespec.
        unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut resolution) };
        println!(
            "The coarse clock (CLOCK_MONOTONIC_COARSE) moves in steps of {:.1} ms here \
             (clock_getres): a latency read from it is that coarse.",
            (resolution.tv_sec as f64 * 1e3) + resolution.tv_nsec as f64 / 1e6
        );
    }
    summary::Row::new(
        "hot_path",
        "for reference: a thread refreshing a clock every 1 ms, CPU per second",
        cpu,
        "µs",
        0,
    )
    .spread_of(&cpu_us_per_second, 0)
    .note(format!(
        "— (the two TSC readings: {readings_ns:.1} ns/call; the thread costs less above \
         {break_even:.0} calls/s)"
    ))
    .record();
}
