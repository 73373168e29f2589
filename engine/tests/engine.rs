//! The engine end to end: tuning on committed scenarios.
//!
//! `tests/data/v2-2h-seed3/` holds five two-hour scenarios of the shared development set's
//! shapes, written by `python3 shared/tuning/gen_scenarios.py DIR --hours 2 --seed 3
//! --incidents 1` (one incident per half: six need more room than two hours leave);
//! `tests/data/steady-outage-30m.jsonl` is a 30-minute one (`--hours 0.5 --seed 5`). The fleet
//! benchmark is `cargo xtask bench --only fleet` (`engine/benches/fleet.rs`).

use std::path::{Path, PathBuf};

use engine::eval::{EvalOptions, evaluate};

/// The committed two-hour scenarios.
fn scenario_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2-2h-seed3");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenario directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 5, "five scenarios in {}", dir.display());
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
    // The figures over all scenarios, here over the one.
    assert_eq!(json["overall"]["n_scenarios"], 1);
    assert_eq!(
        json["overall"]["incidents"],
        scenario["results"][6]["incidents"]
    );
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
