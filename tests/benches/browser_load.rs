//! The dashboard under load in headless Chromium; prints figures, asserts only that the page
//! worked at all. Run with `cargo xtask bench --only browser_load`, which installs Chromium and
//! builds the release bundle first (`cargo bench -p tests --bench browser_load` runs it with
//! whatever `FUSEBOX_DIST`, else `frontend/dist`, holds).
//!
//! Printed, for each fleet: the time the page takes to apply one batch of live updates with
//! every breaker reporting every second (and whether the page stays responsive meanwhile); how
//! long a transition of a breaker the page shows takes from being pushed to the server to being
//! visible in the page while the whole fleet streams (p50 / p99, loopback), and the same for a
//! breaker first heard of through its transition once the load has stopped; and once, the wasm
//! bundle's size raw and gzipped.
//!
//! Fleets ([`FLEETS`]): 500 breakers as tiles (10 services × 5 instances, each instance posting
//! one batch a second with its service's 50 breakers), and 1,000 breakers in the matrix the
//! overview picks for a fleet that large (20 services × 50 breakers, one instance each), and
//! 10,000 breakers in the matrix (100 services × 100 breakers, one instance each), each
//! until [`LOAD_SECONDS`] after the page shows every breaker (the steady state); for each,
//! also how long the page takes to show every breaker. The page's own `performance.now()`
//! timings are read from
//! `window.__fusebox_batches`; visibility times from `window.__fusebox_seen` (`Date.now()` after
//! the DOM update, the same wall clock as the bench's). Because batch sizes differ between
//! designs, the page's whole main-thread time in the steady state is printed too, from
//! Chromium's own accounting (DevTools `Performance.getMetrics`).
//!
//! What the page must do regardless of timing (every breaker gets a tile, updates are applied
//! and recorded, a transition shows) is checked by the browser tests in the suite.
//!
//! Each fleet runs three rounds ([`ROUNDS`], or `FUSEBOX_BENCH_ROUNDS`), each with a server
//! and a browser of its own. Under `cargo xtask bench` the figures with goals are also rows of
//! the run's goal/figure summary, each the median of the rounds with their range: per fleet,
//! a steady-state batch applied in ≤ 16 ms (p95), a shown breaker's transition visible in
//! ≤ 25 ms while the fleet streams (≤ 50 ms with 10,000 breakers) and a new breaker's in
//! ≤ 100 ms (p99); the bundle's size.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use backend::time::now_ms;
use fantoccini::Client;
use serde_json::json;
use tests::browser::{
    BrowserSetup, PAGE_READY_DEADLINE, applied_batches, arrived_ms, count, fleet_batch, open_live,
    recorded_batches, save_screenshot, seen_ms, transition_batch, wait_until,
};
use tests::post_compact;

#[path = "../../xtask/src/bench/row.rs"]
mod summary;

/// The overview applies a batch of live updates within a frame (p95, steady state).
const APPLY_GOAL_MS: f64 = 16.0;
/// A pushed transition of a breaker the page shows is visible in it while the fleet streams
/// (p99, loopback), with up to 1,000 breakers streaming.
const SHOWN_VISIBLE_GOAL_MS: f64 = 25.0;
/// The same with 10,000 live breakers: the goal for a fleet that size is that a transition
/// still reaches the browser within 50 ms (p99, loopback).
const SHOWN_VISIBLE_LARGE_GOAL_MS: f64 = 50.0;

/// The goal for a shown breaker's transition with `n_breakers` streaming.
fn shown_visible_goal_ms(n_breakers: usize) -> f64 {
    match n_breakers >= 10_000 {
        true => SHOWN_VISIBLE_LARGE_GOAL_MS,
        false => SHOWN_VISIBLE_GOAL_MS,
    }
}
/// A pushed transition of a breaker the page did not show yet is visible in it (p99,
/// loopback): the page lays its view out again for a new breaker.
const VISIBLE_GOAL_MS: f64 = 100.0;

/// Posts `batch` (made as JSON by `tests::browser`) as the Rust reporter sends it: in the
/// compact form, over `reporter`'s kept-alive connections.
async fn report(reporter: &reqwest::Client, url: &str, key: &str, batch: serde_json::Value) {
    let batch: protocol::IngestBatch = serde_json::from_value(batch).expect("a valid batch");
    post_compact(reporter, url, key, &batch).await;
}

/// A fleet the page is loaded with, and how the page shows it.
struct Fleet {
    name: &'static str,
    services: usize,
    instances_per_service: usize,
    breakers_per_service: usize,
    /// The overview's query: tiles asked for, or the view the fleet's size picks.
    query: &'static str,
    /// One element per breaker in that view.
    element: &'static str,
    /// How long the page may take to show every breaker.
    shown_within: Duration,
}

const FLEETS: [Fleet; 3] = [
    Fleet {
        name: "500 breakers (tiles)",
        services: 10,
        instances_per_service: 5,
        breakers_per_service: 50,
        query: "?view=tiles",
        element: ".tile",
        shown_within: PAGE_READY_DEADLINE,
    },
    Fleet {
        name: "1,000 breakers (matrix)",
        services: 20,
        instances_per_service: 1,
        breakers_per_service: 50,
        query: "",
        element: ".matrix .cell",
        shown_within: PAGE_READY_DEADLINE,
    },
    Fleet {
        name: "10,000 breakers (matrix)",
        services: 100,
        instances_per_service: 1,
        breakers_per_service: 100,
        query: "",
        element: ".matrix .cell",
        // 3–5 s on a 2-core machine (a figure this bench prints); the deadline is wider than
        // the smaller fleets' so a slower machine still gets its figures.
        shown_within: Duration::from_secs(120),
    },
];
const LOAD_SECONDS: u64 = 12;
const TRANSITION_SAMPLES: usize = 40;
/// Transitions of shown breakers timed while the fleet streams: over the `latency` service's
/// `TRANSITION_SAMPLES` breakers, each opened and closed in turn.
const SHOWN_SAMPLES: usize = 100;
/// No new update batch for this long: the page has worked off what the load left queued.
const QUIET: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    // A bench has no skip: without a browser there are no figures, and that is a failure.
    let setup = match BrowserSetup::locate() {
        Ok(setup) => setup,
        Err(reason) => {
            eprintln!(
                "browser_load: cannot run: {reason}; `cargo xtask bench --only browser_load` \
                 installs and builds what it needs"
            );
            return ExitCode::FAILURE;
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(figures(&setup));
    ExitCode::SUCCESS
}

async fn figures(setup: &BrowserSetup) {
    bundle_figures(&setup.dist);
    // `FUSEBOX_BENCH_FLEET=10,000` runs the fleets whose name holds that text only.
    let only = std::env::var("FUSEBOX_BENCH_FLEET").unwrap_or_default();
    let n_rounds: usize = std::env::var("FUSEBOX_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ROUNDS)
        .max(1);
    for fleet in FLEETS.iter().filter(|fleet| fleet.name.contains(&only)) {
        let mut rounds = Vec::new();
        for round in 1..=n_rounds {
            eprintln!("{}: round {round} of {n_rounds}", fleet.name);
            rounds.push(fleet_figures(setup, fleet).await);
        }
        record_rounds(fleet, &rounds);
    }
}

/// Rounds per fleet, each with a server and a browser of their own (`FUSEBOX_BENCH_ROUNDS`
/// sets another number): each figure of the summary is their median, their range beside it.
const ROUNDS: usize = 3;

/// What one round measured of a fleet, for the summary's rows.
struct RoundFigures {
    /// A steady-state update batch applied and rendered, p95, ms.
    steady_p95_ms: f64,
    steady_batches: usize,
    steady_events_each: f64,
    /// A shown breaker's transition pushed → visible while the fleet streams, p99, ms.
    shown_p99_ms: f64,
    /// A new breaker's transition pushed → visible, p99, ms.
    new_p99_ms: f64,
}

/// The summary's rows for a fleet: each figure the median of the rounds, with their range.
fn record_rounds(fleet: &Fleet, rounds: &[RoundFigures]) {
    let name = fleet.name;
    let n_breakers = fleet.services * fleet.breakers_per_service;
    let of_rounds = |figure: fn(&RoundFigures) -> f64| {
        let values: Vec<f64> = rounds.iter().map(figure).collect();
        (summary::median(&values), values)
    };
    let (steady, steady_rounds) = of_rounds(|r| r.steady_p95_ms);
    let batches = rounds.iter().map(|r| r.steady_batches).min().unwrap_or(0);
    let (events_each, _) = of_rounds(|r| r.steady_events_each);
    summary::Row::new(
        "browser_load",
        format!(
            "{name}: update batch applied+rendered, steady state, p95 of each round's {batches}+ batches ({events_each:.1} events each)"
        ),
        steady,
        "ms",
        1,
    )
    .at_most(APPLY_GOAL_MS, 0)
    .spread_of(&steady_rounds, 1)
    .record();
    let (shown, shown_rounds) = of_rounds(|r| r.shown_p99_ms);
    summary::Row::new(
        "browser_load",
        format!("{name}: transition of a shown breaker pushed → visible while the fleet streams, p99 of each round's {SHOWN_SAMPLES} (loopback)"),
        shown,
        "ms",
        0,
    )
    .at_most(shown_visible_goal_ms(n_breakers), 0)
    .spread_of(&shown_rounds, 0)
    .record();
    let (new, new_rounds) = of_rounds(|r| r.new_p99_ms);
    summary::Row::new(
        "browser_load",
        format!("{name}: transition of a new breaker pushed → visible, p99 of each round's {TRANSITION_SAMPLES} (loopback)"),
        new,
        "ms",
        0,
    )
    .at_most(VISIBLE_GOAL_MS, 0)
    .spread_of(&new_rounds, 0)
    .record();
}

async fn fleet_figures(setup: &BrowserSetup, fleet: &Fleet) -> RoundFigures {
    let Fleet {
        name,
        services,
        instances_per_service,
        breakers_per_service,
        ..
    } = *fleet;
    let n_breakers = services * breakers_per_service;
    let server = setup
        .server(|options| {
            options.anonymous_viewer = true;
            options.ingest_queue = 4096;
        })
        .await;
    let mut keys = Vec::new();
    for service_idx in 0..services {
        keys.push(server.ingest_key(&service(service_idx)).await.unwrap());
    }
    let latency_key = server.ingest_key("latency").await.unwrap();

    let (_driver, client) = setup.browser().await;
    // Every instance, and the probes, post as the Rust reporter does: in the compact form, on
    // kept-alive connections.
    // Connections idle longer than this are not taken again: the server closes one idle for
    // 20 s, and a request sent on it just then would come back unanswered.
    let reporter = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    open_live(&client, &format!("{}/{}", server.url(), fleet.query)).await;
    // The `latency` service's breakers, reported by one instance with the fleet and shown with
    // it, are the ones whose transitions are timed while the fleet streams.
    let n_shown = n_breakers + TRANSITION_SAMPLES;

    // Every instance reporting every second, until `LOAD_SECONDS` after the page shows every
    // breaker (a large fleet takes a while to appear: the steady state is as long for each).
    let url = server.url();
    let probe_key = latency_key.clone();
    let load_started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let reporters = reporter.clone();
    let load = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut seq = 0;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            tick.tick().await;
            seq += 1;
            let now_ms = now_ms();
            let mut posts = Vec::new();
            for (service_idx, key) in keys.iter().enumerate() {
                for instance_idx in 0..instances_per_service {
                    let batch = fleet_batch(
                        &service(service_idx),
                        &format!("{}-{instance_idx}", service(service_idx)),
                        seq,
                        now_ms,
                        breakers_per_service,
                    );
                    let (url, key, reporters) = (url.clone(), key.clone(), reporters.clone());
                    posts.push(tokio::spawn(async move {
                        report(&reporters, &url, &key, batch).await;
                    }));
                }
            }
            let batch = fleet_batch("latency", "latency-0", seq, now_ms, TRANSITION_SAMPLES);
            report(&reporters, &url, &probe_key, batch).await;
            for post in posts {
                post.await.unwrap();
            }
        }
    });
    let element = fleet.element;
    wait_until(
        &client,
        fleet.shown_within,
        &format!("{n_shown} of `{element}`"),
        |client| async move { count(&client, element).await == n_shown },
    )
    .await;
    eprintln!(
        "FIGURE {name}: every breaker shown {:.1} s after the first batches were sent \
         (polled every 100 ms through chromedriver)",
        load_started.elapsed().as_secs_f64()
    );
    // Batches from here on update existing breakers only (the steady state).
    let steady_from = n_batches(&client).await;
    let busy_from = (main_thread_busy(&client).await, Instant::now());
    // Responsiveness under load: how late a zero timeout fires, sampled through the load; and
    // between samples, a transition of a shown breaker pushed and timed to the page.
    let mut stalls = Vec::new();
    let mut shown_latencies = Vec::new();
    // Of each, the part until the page's stream handler took the transition: the server,
    // the socket and the page's queue of tasks before it.
    let mut shown_arrivals = Vec::new();
    while busy_from.1.elapsed() < Duration::from_secs(LOAD_SECONDS)
        || shown_latencies.len() < SHOWN_SAMPLES
    {
        stalls.push(event_loop_delay_ms(&client).await);
        if shown_latencies.len() < SHOWN_SAMPLES {
            let sample = shown_latencies.len();
            let (visible, arrived) = transition_to_page(
                &client,
                &reporter,
                &server.url(),
                &latency_key,
                "latency-2",
                sample,
            )
            .await;
            shown_latencies.push(visible);
            shown_arrivals.push(arrived);
        }
        // About three transitions a second: enough samples for a p99 in a run of a minute,
        // few enough that the steady state's figures stay about its summaries.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let transition_costs = recorded_batches(&client, "__fusebox_transition_batches").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    let busy = main_thread_busy(&client).await.since(&busy_from.0);
    let busy_seconds = busy_from.1.elapsed().as_secs_f64();
    save_screenshot(&client, &format!("{n_breakers}-breakers")).await;

    let batches = applied_batches(&client).await;
    let mut apply_ms: Vec<f64> = batches.iter().map(|(ms, _)| *ms).collect();
    let mut steady_ms: Vec<f64> = apply_ms.iter().skip(steady_from).copied().collect();
    let steady_events: f64 = batches
        .iter()
        .skip(steady_from)
        .map(|(_, events)| events)
        .sum();
    let events: f64 = batches.iter().map(|(_, events)| events).sum();
    // The whole cost, whatever the batching: batches of different sizes compare fairly here.
    let steady_total_ms: f64 = steady_ms.iter().sum();
    stalls.sort_by(f64::total_cmp);
    let steady_p95_ms = percentile(&mut steady_ms.clone(), 0.95);
    eprintln!(
        "FIGURE {name} ({services} services × {instances_per_service} instances, 1 batch/instance/s, until {LOAD_SECONDS} s after every breaker was shown): \
         {} update batches, {:.0} events, {:.1} events/batch; apply+render per batch p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms; \
         steady state (every breaker shown): {} batches, {:.1} events/batch, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, \
         total {:.0} ms for {:.0} events = {:.3} ms/event; \
         event-loop delay (setTimeout 0) p50 {:.1} ms, max {:.1} ms over {} samples",
        batches.len(),
        events,
        events / batches.len().max(1) as f64,
        percentile(&mut apply_ms, 0.50),
        percentile(&mut apply_ms, 0.95),
        percentile(&mut apply_ms, 1.0),
        steady_ms.len(),
        steady_events / steady_ms.len().max(1) as f64,
        percentile(&mut steady_ms, 0.50),
        percentile(&mut steady_ms, 0.95),
        percentile(&mut steady_ms, 1.0),
        steady_total_ms,
        steady_events,
        steady_total_ms / steady_events.max(1.0),
        percentile(&mut stalls, 0.50),
        percentile(&mut stalls, 1.0),
        stalls.len(),
    );
    eprintln!(
        "FIGURE {name}, the page's main thread in the steady state (Chromium's own task \
         accounting, whatever the page measures): busy {:.0} ms/s ({:.1} %): script {:.0} ms/s, \
         style {:.0} ms/s, layout {:.0} ms/s, over {busy_seconds:.1} s",
        busy.task_s * 1000.0 / busy_seconds,
        busy.task_s * 100.0 / busy_seconds,
        busy.script_s * 1000.0 / busy_seconds,
        busy.style_s * 1000.0 / busy_seconds,
        busy.layout_s * 1000.0 / busy_seconds,
    );
    // Figures, not verdicts: timings are printed beside their goals, never asserted (a loaded
    // machine would fail them at random); the figures mean nothing unless updates were applied.
    assert!(!batches.is_empty(), "the page applied no update batch");
    assert!(
        steady_events > 0.0,
        "the page applied no update of a shown breaker in the steady state"
    );

    // The page first works off what the load left queued: no new batch for `QUIET`, waited
    // for at most `PAGE_READY_DEADLINE`.
    let mut last = (n_batches(&client).await, Instant::now());
    let quiet_since = Instant::now();
    while last.1.elapsed() < QUIET {
        assert!(
            quiet_since.elapsed() < PAGE_READY_DEADLINE,
            "the page was still applying updates {PAGE_READY_DEADLINE:?} after the load ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = n_batches(&client).await;
        if now != last.0 {
            last = (now, Instant::now());
        }
    }

    let mut transition_ms: Vec<f64> = transition_costs.iter().map(|(ms, _)| *ms).collect();
    eprintln!(
        "FIGURE {name}: transition of a shown breaker pushed → visible in the page while the fleet streams ({SHOWN_SAMPLES} samples, loopback): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (goal p99 ≤ {} ms); of which until the page's stream handler took it p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; the page's apply+render per transition p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&mut shown_latencies, 0.50),
        percentile(&mut shown_latencies, 0.99),
        percentile(&mut shown_latencies, 1.0),
        shown_visible_goal_ms(n_breakers),
        percentile(&mut shown_arrivals, 0.50),
        percentile(&mut shown_arrivals, 0.99),
        percentile(&mut shown_arrivals, 1.0),
        percentile(&mut transition_ms, 0.50),
        percentile(&mut transition_ms, 0.99),
        percentile(&mut transition_ms, 1.0),
    );

    // A transition of a breaker the page did not show, pushed to the server → visible.
    let mut latencies = Vec::new();
    for sample in 0..TRANSITION_SAMPLES {
        let breaker = format!("latency-{sample}");
        let sent_ms = now_ms();
        let batch = transition_batch("latency", "latency-1", sample as u64 + 1, sent_ms, &breaker);
        report(&reporter, &server.url(), &latency_key, batch).await;
        let seen_ms = tests::wait::wait_for(
            &format!("{breaker} to show"),
            PAGE_READY_DEADLINE,
            async || seen_ms(&client, &breaker).await,
        )
        .await;
        latencies.push(seen_ms - sent_ms as f64);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "FIGURE {name}: transition of a new breaker pushed → visible in the page, load stopped ({TRANSITION_SAMPLES} samples, loopback): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (goal p99 ≤ {VISIBLE_GOAL_MS} ms)",
        percentile(&mut latencies, 0.50),
        percentile(&mut latencies, 0.99),
        percentile(&mut latencies, 1.0),
    );

    client.close().await.unwrap();
    RoundFigures {
        steady_p95_ms,
        steady_batches: steady_ms.len(),
        steady_events_each: steady_events / steady_ms.len().max(1) as f64,
        shown_p99_ms: percentile(&mut shown_latencies, 0.99),
        new_p99_ms: percentile(&mut latencies, 0.99),
    }
}

/// Chromium's cumulative main-thread time of the page, in seconds, from the DevTools protocol's
/// `Performance.getMetrics` (through chromedriver's `goog/cdp/execute`): it counts everything the
/// page costs, rendering included, however the page batches its work.
#[derive(Debug, Default)]
struct MainThreadBusy {
    task_s: f64,
    script_s: f64,
    style_s: f64,
    layout_s: f64,
}

impl MainThreadBusy {
    fn since(&self, earlier: &MainThreadBusy) -> MainThreadBusy {
        MainThreadBusy {
            task_s: self.task_s - earlier.task_s,
            script_s: self.script_s - earlier.script_s,
            style_s: self.style_s - earlier.style_s,
            layout_s: self.layout_s - earlier.layout_s,
        }
    }
}

async fn main_thread_busy(client: &Client) -> MainThreadBusy {
    client
        .issue_cmd(Cdp {
            cmd: "Performance.enable",
        })
        .await
        .unwrap();
    let answer = client
        .issue_cmd(Cdp {
            cmd: "Performance.getMetrics",
        })
        .await
        .unwrap();
    let mut busy = MainThreadBusy::default();
    for metric in answer["metrics"].as_array().into_iter().flatten() {
        let value = metric["value"].as_f64().unwrap_or(0.0);
        match metric["name"].as_str() {
            Some("TaskDuration") => busy.task_s = value,
            Some("ScriptDuration") => busy.script_s = value,
            Some("RecalcStyleDuration") => busy.style_s = value,
            Some("LayoutDuration") => busy.layout_s = value,
            _ => {}
        }
    }
    busy
}

/// A DevTools protocol command without parameters, sent through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"cmd": self.cmd, "params": {}}).to_string()),
        )
    }
}

/// Pushes a transition of one of the `latency` service's breakers (which the page shows, see
/// [`fleet_batch`]) from `instance`: sample `k` opens breaker `k mod TRANSITION_SAMPLES` on
/// even rounds and closes it on odd ones. Returns how long it took to be visible in the page,
/// in ms (the page's wall clock against the bench's).
async fn transition_to_page(
    client: &Client,
    reporter: &reqwest::Client,
    url: &str,
    key: &str,
    instance: &str,
    sample: usize,
) -> (f64, f64) {
    let breaker = format!("dep-{:03}", sample % TRANSITION_SAMPLES);
    let sent_ms = now_ms();
    let mut batch = transition_batch("latency", instance, sample as u64 + 1, sent_ms, &breaker);
    if (sample / TRANSITION_SAMPLES) % 2 == 1 {
        batch["transitions"][0]["from"] = json!("open");
        batch["transitions"][0]["to"] = json!("closed");
    }
    report(reporter, url, key, batch).await;
    let seen_ms = tests::wait::wait_for(
        &format!("{breaker}'s transition to show"),
        PAGE_READY_DEADLINE,
        async || {
            seen_ms(client, &breaker)
                .await
                .filter(|&seen| seen >= sent_ms as f64)
        },
    )
    .await;
    let arrived_ms = arrived_ms(client, &breaker).await.unwrap_or(seen_ms);
    (seen_ms - sent_ms as f64, arrived_ms - sent_ms as f64)
}

/// How many update batches the page applied (cheaper than reading them all).
async fn n_batches(client: &Client) -> usize {
    client
        .execute("return (window.__fusebox_batches || []).length;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(0) as usize
}

fn service(idx: usize) -> String {
    format!("svc-{idx:02}")
}

/// How late a zero-delay timeout fires in the page, in ms (`performance.now()`).
async fn event_loop_delay_ms(client: &Client) -> f64 {
    client
        .execute_async(
            "const done = arguments[arguments.length - 1]; const t0 = performance.now(); \
             setTimeout(() => done(performance.now() - t0), 0);",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap()
}

fn bundle_figures(dist: &std::path::Path) {
    let mut raw = 0;
    let mut gzip = 0;
    for name in ["fusebox_frontend_bg.wasm", "fusebox_frontend.js"] {
        let path = dist.join(name);
        raw += std::fs::metadata(&path).unwrap().len();
        let output = std::process::Command::new("gzip")
            .arg("-c")
            .arg(&path)
            .output()
            .expect("gzip runs");
        gzip += output.stdout.len() as u64;
    }
    eprintln!(
        "FIGURE wasm bundle ({}): {:.0} KiB raw, {:.0} KiB gzip (goals ≤ 2048 KiB raw, ≤ 600 KiB gzip; \
         only a `cargo xtask build-ui --release` bundle is held to them)",
        dist.display(),
        raw as f64 / 1024.0,
        gzip as f64 / 1024.0
    );
    summary::Row::new(
        "browser_load",
        "wasm bundle, raw",
        raw as f64 / 1024.0,
        "KiB",
        0,
    )
    .at_most(2048.0, 0)
    .record();
    summary::Row::new(
        "browser_load",
        "wasm bundle, gzip",
        gzip as f64 / 1024.0,
        "KiB",
        0,
    )
    .at_most(600.0, 0)
    .record();
}

/// The `fraction` percentile (nearest rank) of `values`, sorting them.
fn percentile(values: &mut [f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * fraction).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}
