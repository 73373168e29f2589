//! The engine end to end: tuning on generated scenarios, and the fleet benchmark.
//!
//! Scenarios come from `shared/tuning/gen_scenarios.py --hours 2` when python3 and the shared
//! folder are there, written under cargo's test temp dir; otherwise from the small committed
//! fixture in `tests/data/` (`gen_scenarios.py --hours 0.5 --seed 5`, steady-outage). The benchmark is a test gated on `FUSEBOX_BENCH=1`:
//!
//! ```text
//! FUSEBOX_BENCH=1 cargo test --release -p engine --test engine benchmark_suggestions -- --nocapture
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use breaker::{Config, Window};
use engine::eval::{EvalOptions, evaluate};
use engine::history::{History, Step};
use engine::suggest::{TuneOptions, suggest};

/// Scenario files: generated 2-hour scenarios, or the committed fixture.
fn scenario_files() -> Vec<(String, String)> {
    let generator =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tuning/gen_scenarios.py");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scenarios-2h-seed3");
    let generated = generator.exists()
        && (dir.join("steady-outage.jsonl").exists()
            || Command::new("python3")
                .arg(&generator)
                .arg(&dir)
                // Two hours hold one incident per half (six need more room than the
                // generator's gaps leave, and it would search for a placement forever).
                .args(["--hours", "2", "--seed", "3", "--incidents", "1"])
                .output()
                .is_ok_and(|out| out.status.success()));
    let dir = if generated {
        dir
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenario directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scenarios in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("scenario file");
            (path.display().to_string(), text)
        })
        .collect()
}

#[test]
fn tuned_beats_the_library_defaults_by_a_real_margin() {
    let files = scenario_files();
    // The tuner as `fusebox tune eval` runs it; only the oracle is skipped.
    let opts = EvalOptions {
        oracle: false,
        ..EvalOptions::default()
    };
    let (report, warnings) = evaluate(&files, &opts);
    assert!(
        warnings
            .iter()
            .all(|w| !matches!(w, engine::Warning::BadScenario { .. })),
        "{warnings:?}"
    );
    assert_eq!(report.scenarios.len(), files.len());
    let (mut tuned_total, mut mean_default_total) = (0.0, 0.0);
    let (mut detected, mut incidents, mut n_better) = (0, 0, 0);
    for scenario in &report.scenarios {
        let tuned = scenario.result("tuned").expect("tuned");
        let mean_default: f64 = scenario
            .results
            .iter()
            .filter(|res| engine::defaults::LIBRARY_DEFAULTS.contains(&res.config_name))
            .map(|res| res.score.cost)
            .sum::<f64>()
            / 5.0;
        if tuned.score.cost <= 0.5 * mean_default {
            n_better += 1;
        }
        tuned_total += tuned.score.cost;
        mean_default_total += mean_default;
        detected += tuned.score.detected;
        incidents += tuned.score.incidents;
    }
    let table = report.to_table();
    // Every incident caught, at most half the cost of a library default picked blindly in
    // most scenarios, and well under it over all of them.
    assert_eq!(detected, incidents, "{table}");
    assert!(n_better + 1 >= report.scenarios.len(), "{table}");
    assert!(
        tuned_total <= 0.6 * mean_default_total,
        "tuned {tuned_total} against {mean_default_total}\n{table}"
    );
}

#[test]
fn the_json_report_follows_the_schema() {
    // The committed 30-minute fixture: small enough to search the oracle too.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/steady-outage-30m.jsonl");
    let files = [(
        path.display().to_string(),
        std::fs::read_to_string(&path).expect("fixture"),
    )];
    let (report, _) = evaluate(&files, &EvalOptions::default());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let scenario = &json["scenarios"][0];
    assert!(scenario["train_steps"].as_u64().unwrap() > 0);
    let names: Vec<&str> = scenario["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|res| res["config"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "resilience4j",
            "hystrix",
            "polly",
            "opossum",
            "pybreaker",
            "adaptive-throttling",
            "tuned",
            "oracle"
        ]
    );
    for res in scenario["results"].as_array().unwrap() {
        for key in [
            "cost",
            "lost_good",
            "wasted",
            "recall",
            "incidents",
            "detection_delay_ms_median",
            "false_trips",
            "settings",
        ] {
            assert!(res.get(key).is_some(), "{key} missing in {res}");
        }
    }
    // The oracle sees the truth of the scored half: it is never worse than tuned.
    let cost = |name: &str| {
        scenario["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|res| res["config"] == name)
            .unwrap()["cost"]
            .as_f64()
            .unwrap()
    };
    assert!(cost("oracle") <= cost("tuned") + 1e-9);
    // The summary gives the ratios and the false trips the goals are stated in.
    let summary = &scenario["summary"];
    let ratio = summary["tuned_over_oracle"].as_f64().unwrap();
    assert!((ratio - cost("tuned") / cost("oracle")).abs() < 1e-9 || cost("oracle") == 0.0);
    for key in [
        "tuned_false_trips",
        "oracle_false_trips",
        "best_default_false_trips",
    ] {
        assert!(summary[key].is_u64(), "{key} in {summary}");
    }
}

/// A small deterministic generator (xorshift), so the synthetic store needs no crate.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A normal deviate (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.next_f64().max(1e-12);
        let v = self.next_f64();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

const BUCKETS_MS: [u32; 14] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000,
];

/// Seven days of one-minute rollups of one synthetic breaker: its own volume (0.05–20 calls/s,
/// with a daily swing), background failure rate and latency, and two or three incidents
/// (outages, partial failures or slow-downs of 5–60 minutes).
fn synthetic_breaker(idx: u64) -> History {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (idx + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let n_steps = 7 * 24 * 60;
    let rate_per_s = 0.05 * 400f64.powf(rng.next_f64());
    let base_failure = 0.002 + 0.05 * rng.next_f64();
    let median_ms = 5.0 + 200.0 * rng.next_f64();
    let n_incidents = 2 + (rng.next_f64() * 2.0) as usize;
    let incidents: Vec<(usize, usize, u8)> = (0..n_incidents)
        .map(|_| {
            let start = (rng.next_f64() * (n_steps - 100) as f64) as usize;
            let len = 5 + (rng.next_f64() * 55.0) as usize;
            (start, start + len, (rng.next_f64() * 3.0) as u8)
        })
        .collect();
    let steps = (0..n_steps)
        .map(|i| {
            let daily = 1.0 + 0.6 * (2.0 * std::f64::consts::PI * i as f64 / 1440.0).sin();
            let mean = rate_per_s * 60.0 * daily;
            let n_calls = (mean + mean.sqrt() * rng.normal()).round().max(0.0) as u32;
            let kind = incidents
                .iter()
                .find(|(start, end, _)| (*start..*end).contains(&i))
                .map(|(_, _, kind)| *kind);
            let (p_fail, median) = match kind {
                Some(0) => (1.0, median_ms),
                Some(1) => (0.4, median_ms),
                Some(_) => (base_failure, median_ms * 30.0),
                None => (base_failure, median_ms),
            };
            let expected = f64::from(n_calls) * p_fail;
            let sd = (expected * (1.0 - p_fail)).max(0.0).sqrt();
            let n_failures = (expected + sd * rng.normal())
                .round()
                .clamp(0.0, f64::from(n_calls)) as u32;
            // Latencies: a log-normal split over the buckets by its CDF at each bound.
            let mut latency_counts = vec![0u32; BUCKETS_MS.len()];
            let mut assigned = 0u32;
            let mut prev_cdf = 0.0;
            for (b, &bound) in BUCKETS_MS.iter().enumerate() {
                let z = (f64::from(bound).ln() - median.ln()) / 0.5;
                let cdf = if b + 1 == BUCKETS_MS.len() {
                    1.0
                } else {
                    normal_cdf(z)
                };
                let count = ((cdf - prev_cdf) * f64::from(n_calls)).round() as u32;
                let count = count.min(n_calls - assigned);
                latency_counts[b] = count;
                assigned += count;
                prev_cdf = cdf;
            }
            let last = latency_counts.iter().rposition(|&c| c > 0).unwrap_or(5);
            latency_counts[last] += n_calls - assigned;
            Step {
                t_ms: i as u64 * 60_000,
                n_calls,
                n_failures,
                n_rejected: 0,
                latency_counts,
            }
        })
        .collect();
    History {
        step: Duration::from_secs(60),
        latency_buckets_ms: BUCKETS_MS.to_vec(),
        steps,
    }
}

fn normal_cdf(z: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26, good to 1e-7: enough to split calls into buckets.
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(z * z) / 2.0).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[test]
fn benchmark_suggestions() {
    if std::env::var_os("FUSEBOX_BENCH").is_none() {
        return;
    }
    let n_breakers: u64 = std::env::var("FUSEBOX_BENCH_BREAKERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let current = Config::builder()
        .failure_rate_threshold(0.5)
        .window(Window::Time(60))
        .minimum_calls(20)
        .build()
        .unwrap();
    let opts = TuneOptions::fleet();
    let started = Instant::now();
    let results: Vec<(u64, f64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n_threads as u64)
            .map(|thread| {
                let (current, opts) = (&current, &opts);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for idx in (thread..n_breakers).step_by(n_threads) {
                        let history = synthetic_breaker(idx);
                        let (suggestion, _) = suggest(&history, current, 0, opts);
                        let suggestion = suggestion.expect("nothing stops the run");
                        out.push((
                            history.n_calls(),
                            suggestion.confidence,
                            suggestion.anomalies.len() as u64,
                        ));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    let n_calls: u64 = results.iter().map(|r| r.0).sum();
    let n_anomalies: u64 = results.iter().map(|r| r.2).sum();
    println!(
        "benchmark_suggestions: {n_breakers} breakers × 7 days of 1-minute windows ({} windows, {:.2e} calls) \
         on {n_threads} threads: {:.1} s, {:.1} suggestions/s, {n_anomalies} anomalous periods found",
        n_breakers * 7 * 24 * 60,
        n_calls as f64,
        elapsed.as_secs_f64(),
        n_breakers as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(results.len() as u64, n_breakers);
}
