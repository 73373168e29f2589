//! Replays of small hand-made histories, checked as transition logs.

use std::time::Duration;

use breaker::{Config, Wait, Window};

use crate::history::{History, Step};
use crate::replay::{interleave_stride, replay, score};
use crate::scenario::Span;

/// One-second steps of (calls, failures, slow calls); slow calls take 1 s, others 10 ms.
fn history(steps: &[(u32, u32, u32)]) -> History {
    History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![10, 100, 1000],
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, &(n_calls, n_failures, n_slow))| Step {
                t_ms: i as u64 * 1000,
                n_calls,
                n_failures,
                n_rejected: 0,
                latency_counts: vec![n_calls - n_slow, 0, n_slow],
            })
            .collect(),
    }
}

/// Replays and renders `at_ms from→to trigger` lines plus per-step admitted/rejected.
#[track_caller]
fn check(steps: &[(u32, u32, u32)], config: &Config, expect: &str) {
    let history = history(steps);
    let res = replay(&history, 0..history.len(), config);
    let mut out = String::new();
    for tr in &res.transitions {
        out += &format!(
            "{} {}→{} {}\n",
            tr.at.as_millis(),
            tr.from.as_str(),
            tr.to.as_str(),
            tr.trigger.kind.as_str()
        );
    }
    out += &format!("admitted {:?}\nrejected {:?}\n", res.admitted, res.rejected);
    assert_eq!(out.trim(), expect.trim(), "\n{out}");
}

fn config() -> breaker::ConfigBuilder {
    Config::builder()
        .failure_rate_threshold(0.5)
        .window(Window::Count(10))
        .minimum_calls(10)
        .wait(Wait::Fixed(Duration::from_secs(2)))
        .half_open_probes(1)
        .half_open_successes(1)
}

#[test]
fn outage_trips_waits_and_recovers() {
    // Ten calls a second: healthy, two seconds of outage, healthy again. The fifth failure
    // (at 1.45 s) makes 5 of the last 10; the probe 2 s later finds the dependency back.
    check(
        &[
            (10, 0, 0),
            (10, 10, 0),
            (10, 10, 0),
            (10, 0, 0),
            (10, 0, 0),
            (10, 0, 0),
        ],
        &config().build().unwrap(),
        "
1450 closed→open failure_rate
3450 open→half_open wait_elapsed
3450 half_open→closed probe_succeeded
admitted [10, 5, 0, 6, 10, 10]
rejected [0, 5, 10, 4, 0, 0]",
    );
}

#[test]
fn failures_are_spread_by_the_floor_rule() {
    // 3 failures in 10 calls fail calls 3, 6 and 9 (0-based): never two in a row.
    check(
        &[(10, 3, 0), (10, 3, 0), (10, 3, 0)],
        &config()
            .failure_rate_threshold(None)
            .consecutive_failures(2)
            .build()
            .unwrap(),
        "admitted [10, 10, 10]\nrejected [0, 0, 0]",
    );
}

#[test]
fn slow_calls_trip_the_slow_call_policy() {
    check(
        &[(10, 0, 1), (10, 0, 8), (10, 0, 0)],
        &config()
            .slow_call_rate_threshold(0.5)
            .slow_call_duration(Duration::from_millis(500))
            .build()
            .unwrap(),
        "
1550 closed→open slow_call_rate
admitted [10, 6, 0]
rejected [0, 4, 10]",
    );
}

#[test]
fn a_call_timeout_counts_a_very_slow_call_as_failed() {
    check(
        &[(4, 0, 4), (4, 0, 4)],
        &config()
            .window(Window::Count(4))
            .minimum_calls(4)
            .call_timeout(Duration::from_millis(1000))
            .build()
            .unwrap(),
        "
875 closed→open failure_rate
admitted [4, 0]
rejected [0, 4]",
    );
}

#[test]
fn scores_count_lost_wasted_recall_and_false_trips() {
    let history = history(&[
        (10, 0, 0),
        (10, 10, 0),
        (10, 10, 0),
        (10, 0, 0),
        (10, 0, 0),
        (10, 0, 0),
    ]);
    let res = replay(&history, 0..history.len(), &config().build().unwrap());
    let healthy = [true, false, false, true, true, true];
    let incidents = [Span {
        start_ms: 1000,
        end_ms: 3000,
    }];
    let s = score(&history, &res, &healthy, &incidents);
    assert_eq!((s.lost_good, s.wasted), (4, 5));
    assert_eq!(
        (s.incidents, s.detected, s.detection_delays_ms.clone()),
        (1, 1, vec![450])
    );
    assert_eq!((s.trips, s.false_trips), (1, 0));
    assert!((s.cost - 5.0).abs() < 1e-9);
}

#[test]
fn the_interleaving_visits_every_position_once() {
    for n in 1..200u32 {
        let stride = interleave_stride(n);
        let mut seen = vec![false; n as usize];
        for i in 0..n {
            seen[((u64::from(i) * u64::from(stride)) % u64::from(n)) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "n = {n}");
    }
}

#[test]
fn a_huge_step_is_replayed_as_an_even_sample_scaled_back_up() {
    use crate::replay::MAX_CALLS_PER_STEP;
    // The same shares at the cap and at a thousand times the cap: one second in five fails
    // entirely, a tenth of calls is slow; the sampled replay trips and recovers at the same
    // moments, and its counts are the small one's times a thousand.
    let shape = |scale: u32| -> Vec<(u32, u32, u32)> {
        (0..20)
            .map(|i| {
                let n = MAX_CALLS_PER_STEP * scale;
                (n, if i % 5 == 2 { n } else { 0 }, n / 10)
            })
            .collect()
    };
    let config = config()
        .slow_call_rate_threshold(0.5)
        .slow_call_duration(Duration::from_millis(500))
        .build()
        .unwrap();
    let small = history(&shape(1));
    let huge = history(&shape(1_000));
    let at_cap = replay(&small, 0..small.len(), &config);
    let sampled = replay(&huge, 0..huge.len(), &config);
    assert!(!at_cap.transitions.is_empty());
    assert_eq!(sampled.transitions, at_cap.transitions);
    let times_1000 = |counts: &[u32]| counts.iter().map(|&n| n * 1_000).collect::<Vec<_>>();
    assert_eq!(sampled.admitted, times_1000(&at_cap.admitted));
    assert_eq!(sampled.rejected, times_1000(&at_cap.rejected));
    // The work is bounded by the steps, not the calls.
    assert!(sampled.replayed_calls <= 20 * u64::from(MAX_CALLS_PER_STEP));
    assert_eq!(sampled.replayed_calls, at_cap.replayed_calls);
}

#[test]
fn a_sample_keeps_the_failure_share_of_an_uneven_step() {
    use crate::replay::MAX_CALLS_PER_STEP;
    // 4 294 967 295 calls (the most a step holds), 30 % failing, through a breaker that trips
    // at 25 %: it trips in the first step, as the full replay would.
    let n = u32::MAX;
    let history = history(&[(n, (f64::from(n) * 0.3) as u32, 0), (n, 0, 0)]);
    let config = Config::builder()
        .failure_rate_threshold(0.25)
        .window(Window::Count(100))
        .minimum_calls(100)
        .wait(Wait::Fixed(Duration::from_millis(500)))
        .build()
        .unwrap();
    let res = replay(&history, 0..history.len(), &config);
    assert!(res.replayed_calls <= 2 * u64::from(MAX_CALLS_PER_STEP));
    assert_eq!(res.transitions[0].to, breaker::State::Open);
    assert!(res.transitions[0].at < Duration::from_secs(1));
    for (admitted, rejected) in res.admitted.iter().zip(&res.rejected) {
        assert_eq!(u64::from(*admitted) + u64::from(*rejected), u64::from(n));
    }
    assert!(res.rejected[0] > 0);
}

/// Configs of every kind the search tries: rates over count and time windows of several
/// sizes, slow-call rules, runs of failures, call timeouts, both half-open rules, fixed and
/// exponential waits.
fn varied_configs() -> Vec<Config> {
    let mut configs: Vec<Config> = crate::defaults::library_defaults()
        .into_iter()
        .map(|(_, config)| config)
        .collect();
    let windows = [
        Window::Count(5),
        Window::Count(100),
        Window::Count(1000),
        Window::Time(1),
        Window::Time(10),
        Window::Time(300),
    ];
    for (k, window) in windows.into_iter().enumerate() {
        for (j, threshold) in [Some(0.05), Some(0.25), Some(0.6), None]
            .into_iter()
            .enumerate()
        {
            let slow = [None, Some(0.2), Some(0.5)][(k + j) % 3];
            let mut builder = Config::builder()
                .failure_rate_threshold(threshold)
                .slow_call_rate_threshold(slow)
                .slow_call_duration(Duration::from_millis([100, 500, 2000][(k * 2 + j) % 3]))
                .consecutive_failures([None, Some(3), Some(20)][(k + 2 * j) % 3])
                .window(window)
                .minimum_calls([1, 20, 200][(j + k) % 3])
                .half_open_probes(3)
                .half_open_successes(if j % 2 == 0 { 3 } else { 1 })
                .call_timeout([None, Some(Duration::from_millis(1000))][(k + j) % 2]);
            builder = if (k + j) % 2 == 0 {
                builder.wait(Wait::Fixed(Duration::from_secs(5)))
            } else {
                builder.wait(Wait::Exponential {
                    initial: Duration::from_secs(2),
                    multiplier: 2.0,
                    max: Duration::from_secs(120),
                    jitter: 0.1,
                })
            };
            if j == 3 {
                builder = builder.half_open_rule(breaker::HalfOpenRule::Rates);
            }
            if let Ok(config) = builder.build() {
                configs.push(config);
            }
        }
    }
    configs
}

/// `history` with every `k` steps summed into one, as the server's rollups are.
fn rolled_up(history: &History, k: usize) -> History {
    let steps = history
        .steps
        .chunks(k)
        .map(|chunk| {
            let mut sum = chunk[0].clone();
            for step in &chunk[1..] {
                sum.n_calls += step.n_calls;
                sum.n_failures += step.n_failures;
                sum.n_rejected += step.n_rejected;
                for (total, count) in sum.latency_counts.iter_mut().zip(&step.latency_counts) {
                    *total += count;
                }
            }
            sum
        })
        .collect();
    History {
        step: history.step * k as u32,
        latency_buckets_ms: history.latency_buckets_ms.clone(),
        steps,
    }
}

#[test]
fn batching_quiet_seconds_replays_exactly_as_one_call_at_a_time() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2-2h-seed3");
    let configs = varied_configs();
    assert!(configs.len() > 20, "{} configs", configs.len());
    for k in [1, 7, 60] {
        let (mut n_compared, mut n_transitions, mut n_quiet, mut n_calls) = (0, 0, 0, 0);
        for name in [
            "brownout",
            "diurnal",
            "low-volume",
            "noisy-healthy",
            "steady-outage",
        ] {
            let text = std::fs::read_to_string(dir.join(format!("{name}.jsonl"))).unwrap();
            let history = rolled_up(&crate::scenario::parse(&text).unwrap().history, k);
            for config in &configs {
                let range = 0..history.len();
                let steps = super::Steps::new(&history);
                let batched = super::replay_steps(
                    &history,
                    &steps,
                    range.clone(),
                    config,
                    |_, _, _| true,
                    true,
                    None,
                );
                let single = super::replay_steps(
                    &history,
                    &steps,
                    range,
                    config,
                    |_, _, _| true,
                    false,
                    None,
                );
                assert_eq!(
                    batched.transitions, single.transitions,
                    "{name} in {k} s steps: {config:?}"
                );
                assert_eq!(
                    batched.admitted, single.admitted,
                    "{name}, {k} s: {config:?}"
                );
                assert_eq!(
                    batched.rejected, single.rejected,
                    "{name}, {k} s: {config:?}"
                );
                assert_eq!(batched.replayed_calls, single.replayed_calls);
                assert_eq!(single.quiet_calls, 0);
                n_compared += 1;
                n_transitions += single.transitions.len();
                n_quiet += batched.quiet_calls;
                n_calls += single.replayed_calls;
            }
        }
        // The configs trip, wait and recover: the comparison covers every state.
        assert!(
            n_transitions > 100,
            "{k} s steps: {n_transitions} transitions over {n_compared} replays"
        );
        // And most calls were recorded a second at a time.
        assert!(
            n_quiet * 2 > n_calls,
            "{k} s steps: {n_quiet} of {n_calls} calls quiet"
        );
    }
}

#[test]
fn in_random_order_failures_bunch_as_chance_would() {
    // A minute at 40 % failures, 100 calls a second; the breaker trips at 60 % over 20 calls.
    // Spread evenly, no 20 calls hold more than 8 failures; in a random order some do.
    let noisy = history(&[(100, 40, 0); 60]);
    let config = config()
        .failure_rate_threshold(0.6)
        .window(Window::Count(20))
        .minimum_calls(20)
        .build()
        .unwrap();
    let trips = |res: &crate::replay::Replay| {
        res.transitions
            .iter()
            .filter(|tr| tr.to == breaker::State::Open)
            .count()
    };
    let even = replay(&noisy, 0..noisy.len(), &config);
    assert_eq!(trips(&even), 0);
    let shuffled = super::replay_in_random_order(&noisy, 0..noisy.len(), &config, 7);
    assert!(trips(&shuffled) > 0, "{:?}", shuffled.transitions);
    // Every call is still let through or refused, and a seed gives one order.
    for (admitted, rejected) in shuffled.admitted.iter().zip(&shuffled.rejected) {
        assert_eq!(admitted + rejected, 100);
    }
    let again = super::replay_in_random_order(&noisy, 0..noisy.len(), &config, 7);
    assert_eq!(again.transitions, shuffled.transitions);
    let other = super::replay_in_random_order(&noisy, 0..noisy.len(), &config, 8);
    assert_ne!(other.transitions, shuffled.transitions);
    // The failures of each step stay the step's: at 0 % none trips in any order.
    let healthy = history(&[(100, 0, 0); 60]);
    let clean = super::replay_in_random_order(&healthy, 0..healthy.len(), &config, 7);
    assert_eq!(trips(&clean), 0);
}
