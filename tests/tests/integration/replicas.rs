//! Several servers on one PostgreSQL database: what one replica ingests streams live from the
//! others, a config saved on one wakes long polls held on another, the fleet reads the same
//! everywhere, a trip is alerted exactly once, the singleton jobs move when the replica
//! running them is killed with SIGKILL, and a reporter that retries on another replica when
//! its replica is killed mid-ingest loses and duplicates nothing.
//!
//! Each replica is a process of its own: this test binary started again to run
//! [`replica_process`], which serves with `backend::server::start`, as `fusebox serve` does.
//! The database is a fresh one in the test process's throwaway PostgreSQL cluster (in the
//! SQLite run of the suite too: these tests are about PostgreSQL).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use backend::auth::Role;
use backend::server::ServerOptions;
use backend::store::Store;
use backend::time::now_ms;
use protocol::{AlertChannel, AlertChannelKind};
use serde_json::{Value, json};
use tests::SseReader;
use tests::wait::{wait_for, wait_for_every};

const DEADLINE: Duration = Duration::from_secs(30);
/// The variables that make [`replica_process`] a replica (unset: it returns at once).
const DATABASE_VAR: &str = "FUSEBOX_REPLICA_DATABASE";
const WEBHOOK_VAR: &str = "FUSEBOX_REPLICA_WEBHOOK";
const MAX_BREAKERS_VAR: &str = "FUSEBOX_REPLICA_MAX_BREAKERS";
/// What a replica prints before its URL.
const URL_LINE: &str = "replica serving at ";

/// Not a test of its own: the body of a replica process that the tests below start by running
/// this binary again (`--ignored --exact replicas::replica_process`).
#[test]
#[ignore = "a replica process, started by the other tests of this module"]
fn replica_process() {
    let Ok(database) = std::env::var(DATABASE_VAR) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)), database);
        options.rollup_period = Duration::from_millis(500);
        if let Ok(max) = std::env::var(MAX_BREAKERS_VAR) {
            options.limits.max_breakers_per_service = max.parse().unwrap();
        }
        if let Ok(url) = std::env::var(WEBHOOK_VAR) {
            options.alerts.channels = vec![AlertChannel {
                name: "hook".into(),
                kind: AlertChannelKind::Webhook,
                url,
                secret: None,
                rules: vec![],
            }];
        }
        let server = backend::server::start(options).await.unwrap();
        println!("{URL_LINE}{}", server.url());
        std::future::pending::<()>().await;
    });
}

/// A replica process; dropping it kills it.
struct Replica {
    child: Child,
    url: String,
}

impl Replica {
    /// A replica on `database`, with `settings` (variables of [`replica_process`]).
    fn start(database: &str, settings: &[(&str, &str)]) -> Replica {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--ignored", "--exact", "replicas::replica_process"])
            .args(["--nocapture", "--test-threads", "1"])
            .env(DATABASE_VAR, database)
            .env_remove(WEBHOOK_VAR)
            .env_remove(MAX_BREAKERS_VAR)
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("the replica starts");
        let stdout = child.stdout.take().unwrap();
        // A thread reads stdout, so waiting for the URL has a deadline, and keeps draining it.
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest's "test … " precedes it on the same line.
                if let Some(at) = line.find(URL_LINE) {
                    let _ = url_tx.send(line[at + URL_LINE.len()..].trim().to_string());
                }
            }
        });
        match url_rx.recv_timeout(DEADLINE) {
            Ok(url) => Replica { child, url },
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the replica printed no URL within {DEADLINE:?} ({err})");
            }
        }
    }

    /// SIGKILL: the process ends at once, its connections close without a goodbye.
    fn kill(&mut self) {
        self.child.kill().expect("the replica is killed");
        self.child.wait().expect("the killed replica is reaped");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database with its schema, an admin token and an ingest key for `shop`.
struct Cluster {
    database: String,
    store: Store,
    admin: String,
    key: String,
    http: reqwest::Client,
}

impl Cluster {
    async fn new() -> Option<Cluster> {
        let database = tests::postgres::database_for_test()?;
        // The schema is there before any replica starts.
        let store = Store::open(&database).await.unwrap();
        let admin = backend::auth::add_user(&store, "admin", Role::Admin)
            .await
            .unwrap()
            .secret;
        let key = backend::auth::create_api_key(&store, "shop")
            .await
            .unwrap()
            .secret;
        Some(Cluster {
            database,
            store,
            admin,
            key,
            http: reqwest::Client::new(),
        })
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        let backend::store::Db::Postgres(pool) = self.store.db() else {
            unreachable!("the cluster is on PostgreSQL")
        };
        sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    async fn get(&self, url: &str) -> Option<reqwest::Response> {
        let response = self.http.get(url).bearer_auth(&self.admin).send().await;
        response.ok().filter(|r| r.status().is_success())
    }

    /// Whether the replica at `url` says it runs the singleton jobs (`None`: it does not answer).
    async fn leads(&self, url: &str) -> Option<bool> {
        let text = self
            .get(&format!("{url}/metrics"))
            .await?
            .text()
            .await
            .ok()?;
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix("fusebox_singleton_jobs "))?;
        Some(value.trim() == "1")
    }

    /// Waits until exactly one of `replicas` runs the singleton jobs; its index.
    async fn leader(&self, replicas: &[&Replica]) -> usize {
        wait_for(
            "exactly one replica running the singleton jobs",
            DEADLINE,
            || async {
                let mut leading = Vec::new();
                for (index, replica) in replicas.iter().enumerate() {
                    if self.leads(&replica.url).await? {
                        leading.push(index);
                    }
                }
                (leading.len() == 1).then(|| leading[0])
            },
        )
        .await
    }

    async fn stream(&self, replica: &Replica, last_event_id: Option<&str>) -> SseReader {
        let url = format!("{}/api/v1/stream", replica.url);
        let mut stream = SseReader::connect_with_token(&url, last_event_id, Some(&self.admin))
            .await
            .unwrap();
        let ready = stream.next(DEADLINE).await.unwrap();
        assert_eq!(ready.event, "ready");
        stream
    }
}

/// A batch of `instance` with one transition of `breaker`.
fn transition(instance: &str, seq: u64, breaker: &str, from: &str, to: &str) -> Value {
    json!({
        "service": "shop", "instance": instance, "seq": seq, "sent_at_ms": now_ms(),
        "transitions": [{
            "breaker": breaker, "at_ms": now_ms(), "from": from, "to": to,
            "trigger": {"kind": "failure_rate", "value": 0.6, "threshold": 0.5},
            "config_version": 1,
        }],
    })
}

/// The transition in an SSE message: (id, breaker, to).
fn transition_of(message: &tests::SseMessage) -> (i64, String, String) {
    assert_eq!(message.event, "transition", "{message:?}");
    let data: Value = serde_json::from_str(&message.data).unwrap();
    let record = &data;
    let id = message.id.as_deref().unwrap().parse().unwrap();
    assert_eq!(record["id"], id, "the SSE id is the stored transition's id");
    (
        id,
        record["breaker"].as_str().unwrap().to_string(),
        record["to"].as_str().unwrap().to_string(),
    )
}

async fn next_transition(stream: &mut SseReader) -> (i64, String, String) {
    let message = stream
        .next_matching(DEADLINE, |m| m.event == "transition")
        .await
        .unwrap();
    transition_of(&message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn news_from_one_replica_reaches_the_others() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::start(&cluster.database, &[]))
        .collect();
    let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
    let mut on_b = cluster.stream(b, None).await;
    let mut on_c = cluster.stream(c, None).await;

    // Ingested on A: live on B and C, under the id it has in the table.
    let ack = tests::post_batch(
        &a.url,
        &cluster.key,
        &transition("shop-1", 1, "payments", "closed", "open"),
    )
    .await;
    assert!(!ack.duplicate);
    let first = next_transition(&mut on_b).await;
    assert_eq!((first.1.as_str(), first.2.as_str()), ("payments", "open"));
    assert_eq!(next_transition(&mut on_c).await, first);
    assert_eq!(
        cluster
            .scalar("SELECT CAST(MAX(id) AS BIGINT) FROM transitions")
            .await,
        first.0
    );

    // Ingested on B itself: its own stream has it once, then the next one from C, in order.
    tests::post_batch(
        &b.url,
        &cluster.key,
        &transition("shop-2", 1, "payments", "closed", "open"),
    )
    .await;
    tests::post_batch(
        &c.url,
        &cluster.key,
        &transition("shop-1", 2, "payments", "open", "half_open"),
    )
    .await;
    let second = next_transition(&mut on_b).await;
    let third = next_transition(&mut on_b).await;
    assert!(first.0 < second.0 && second.0 < third.0);
    assert_eq!(third.2, "half_open", "B's own transition came once");
    assert_eq!(next_transition(&mut on_c).await, second);
    assert_eq!(next_transition(&mut on_c).await, third);

    // A client that moves to A resumes after the last id it saw on B, from the table.
    let mut on_a = cluster.stream(a, Some(&first.0.to_string())).await;
    assert_eq!(next_transition(&mut on_a).await, second);
    assert_eq!(next_transition(&mut on_a).await, third);

    // Every replica shows the same fleet: the breaker Open, shop-1 Half-Open, shop-2 Open.
    for replica in &replicas {
        wait_for(
            "the same breaker summary on every replica",
            DEADLINE,
            || async {
                let list: Vec<Value> = cluster
                    .get(&format!("{}/api/v1/breakers?service=shop", replica.url))
                    .await?
                    .json()
                    .await
                    .ok()?;
                let summary = list.iter().find(|s| s["breaker"] == "payments")?;
                let instances: Vec<(String, String)> = summary["instances"]
                    .as_array()?
                    .iter()
                    .map(|i| (i["instance"].to_string(), i["state"].to_string()))
                    .collect();
                let expected = [
                    (r#""shop-1""#.to_string(), r#""half_open""#.to_string()),
                    (r#""shop-2""#.to_string(), r#""open""#.to_string()),
                ];
                (summary["state"] == "open" && instances == expected).then_some(())
            },
        )
        .await;
    }

    // Aggregates ingested on A count in the current rates C shows.
    tests::post_batch(
        &a.url,
        &cluster.key,
        &report("shop-3", 1, "search", (now_ms() / 1000) * 1000, None),
    )
    .await;
    wait_for("A's aggregate in C's rates", DEADLINE, || async {
        let list: Vec<Value> = cluster
            .get(&format!("{}/api/v1/breakers?service=shop", c.url))
            .await?
            .json()
            .await
            .ok()?;
        let summary = list.iter().find(|s| s["breaker"] == "search")?;
        let rate = summary["failure_rate"].as_f64()?;
        ((rate - 1.0 / 11.0).abs() < 1e-9 && summary["calls_per_s"] == 11.0).then_some(())
    })
    .await;

    // A config saved on A wakes the long poll held on C for the next version (which would
    // otherwise answer 204 only after its 20 s).
    // The poll is sent on a connection of its own, and the config is saved once C counts that
    // connection open.
    save_config(&cluster, a, 0.5).await;
    let connections = async || {
        let text = cluster
            .get(&format!("{}/metrics", c.url))
            .await?
            .text()
            .await
            .ok()?;
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix("fusebox_http_connections_open "))?;
        line.trim().parse::<f64>().ok()
    };
    let before = wait_for("C's connection count", DEADLINE, connections).await;
    let poll = {
        let key = cluster.key.clone();
        let url = format!(
            "{}/api/v1/config/shop/payments?wait_for_version_above=1&timeout_ms=20000",
            c.url
        );
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            http.get(url).bearer_auth(key).send().await.unwrap()
        })
    };
    wait_for("the long poll's connection on C", DEADLINE, async || {
        (connections().await? > before).then_some(())
    })
    .await;
    save_config(&cluster, a, 0.4).await;
    let answer = tokio::time::timeout(DEADLINE, poll).await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let config: Value = answer.json().await.unwrap();
    assert_eq!(config["version"], 2);
    assert_eq!(config["failure_rate_threshold"], 0.4);
}

async fn save_config(cluster: &Cluster, replica: &Replica, threshold: f64) {
    let saved = cluster
        .http
        .put(format!(
            "{}/api/v1/breakers/shop/payments/config",
            replica.url
        ))
        .bearer_auth(&cluster.admin)
        .json(&json!({"config": tests::wire_config(threshold)}))
        .send()
        .await
        .unwrap();
    assert!(saved.status().is_success(), "{}", saved.status());
}

// === a webhook receiver that counts every arrival ===

#[derive(Clone, Default)]
struct Hook {
    received: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    async fn start() -> (Hook, String) {
        let hook = Hook::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, url)
    }

    /// The firing notifications received for `breaker`'s alerts.
    fn firing(&self, breaker: &str) -> Vec<Value> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|body| {
                body["event"] == "firing" && body["alert"]["breakers"][0]["breaker"] == breaker
            })
            .cloned()
            .collect()
    }
}

async fn receive(AxumState(hook): AxumState<Hook>, _: HeaderMap, body: Bytes) -> StatusCode {
    let body: Value = serde_json::from_slice(&body).unwrap();
    hook.received.lock().unwrap().push(body);
    StatusCode::OK
}

/// Waits until `breaker`'s trip was notified and the outbox holds nothing undelivered (so
/// nothing more will be sent), then checks it was notified exactly once.
async fn alerted_once(cluster: &Cluster, hook: &Hook, breaker: &str) {
    wait_for(
        &format!("the firing notification of {breaker}"),
        DEADLINE,
        || async { (!hook.firing(breaker).is_empty()).then_some(()) },
    )
    .await;
    wait_for("an outbox with everything delivered", DEADLINE, || async {
        let undelivered = cluster
            .scalar("SELECT COUNT(*) FROM alert_outbox WHERE delivered_ms IS NULL")
            .await;
        (undelivered == 0).then_some(())
    })
    .await;
    let firing = hook.firing(breaker);
    assert_eq!(
        firing.len(),
        1,
        "one notification of {breaker}: {firing:#?}"
    );
}

/// A batch of `instance` with one aggregate of `breaker` starting at `start_ms` and, when
/// `to` is given, a transition into that state at the same time.
fn report(instance: &str, seq: u64, breaker: &str, start_ms: i64, to: Option<&str>) -> Value {
    let transitions = match to {
        Some(to) => json!([{
            "breaker": breaker, "at_ms": start_ms,
            "from": if to == "open" { "closed" } else { "open" }, "to": to,
            "config_version": 1,
        }]),
        None => json!([]),
    };
    json!({
        "service": "shop", "instance": instance, "seq": seq, "sent_at_ms": now_ms(),
        "aggregates": [{
            "breaker": breaker, "start_ms": start_ms, "interval_ms": 1000,
            "counts": {"success": 10, "failure": 1}, "state": "closed",
            "latency": {"counts": [1, 2, 3]},
        }],
        "transitions": transitions,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn singleton_jobs_run_once_and_move_when_their_replica_is_killed() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let (hook, hook_url) = Hook::start().await;
    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::start(&cluster.database, &[(WEBHOOK_VAR, &hook_url)]))
        .collect();
    let leader = cluster.leader(&replicas.iter().collect::<Vec<_>>()).await;

    // A trip ingested on a replica that does not run the alert engine: one alert, notified
    // once, by the leader.
    let elsewhere = &replicas[(leader + 1) % 3];
    let mut stream_elsewhere = cluster.stream(elsewhere, None).await;
    tests::post_batch(
        &elsewhere.url,
        &cluster.key,
        &transition("shop-1", 1, "payments", "closed", "open"),
    )
    .await;
    alerted_once(&cluster, &hook, "payments").await;
    // The leader's alert notice reaches the live stream of the replica that ingested the trip.
    let notice = stream_elsewhere
        .next_matching(DEADLINE, |m| m.event == "alert")
        .await
        .unwrap();
    let notice: Value = serde_json::from_str(&notice.data).unwrap();
    assert_eq!(notice["alert"]["breakers"][0]["breaker"], "payments");

    // The leader dies without a goodbye: another replica takes the jobs over.
    replicas[leader].kill();
    let mut survivors: Vec<Replica> = replicas
        .drain(..)
        .enumerate()
        .filter_map(|(index, replica)| (index != leader).then_some(replica))
        .collect();
    let next = cluster.leader(&survivors.iter().collect::<Vec<_>>()).await;

    // A trip ingested now is alerted once too, and the first one was not sent again.
    let other = &survivors[(next + 1) % 2];
    tests::post_batch(
        &other.url,
        &cluster.key,
        &transition("shop-1", 2, "search", "closed", "open"),
    )
    .await;
    alerted_once(&cluster, &hook, "search").await;
    assert_eq!(hook.firing("payments").len(), 1);

    // And the rollups go on: an aggregate ingested after the kill is rolled up.
    let minute_ago = (now_ms() / 60_000 - 2) * 60_000;
    tests::post_batch(
        &other.url,
        &cluster.key,
        &report("shop-1", 3, "rolled", minute_ago, None),
    )
    .await;
    wait_for_every(
        "the rollup of the aggregate ingested after the kill",
        DEADLINE,
        Duration::from_millis(100),
        || async {
            let n = cluster
                .scalar(
                    "SELECT COUNT(*) FROM rollups r JOIN breakers b ON b.id = r.breaker_id
                     WHERE b.name = 'rolled'",
                )
                .await;
            (n > 0).then_some(())
        },
    )
    .await;
    survivors.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reporter_that_moves_to_another_replica_loses_and_duplicates_nothing() {
    const INSTANCES: usize = 4;
    const BATCHES: u64 = 120;
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let mut first = Replica::start(&cluster.database, &[]);
    let second = Replica::start(&cluster.database, &[]);
    let acked_on_first = Arc::new(AtomicU64::new(0));
    let acked_on_second = Arc::new(AtomicU64::new(0));
    let base = (now_ms() / 1000 - 3_600) * 1000;
    let senders: Vec<_> = (0..INSTANCES)
        .map(|index| {
            let urls = [first.url.clone(), second.url.clone()];
            let key = cluster.key.clone();
            let counters = [acked_on_first.clone(), acked_on_second.clone()];
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let instance = format!("shop-{index}");
                let mut target = 0;
                for seq in 1..=BATCHES {
                    let to = if seq % 2 == 1 { "open" } else { "closed" };
                    let batch = report(&instance, seq, "db", base + seq as i64 * 1000, Some(to));
                    // As a reporter does: the same batch (same seq) again until acknowledged,
                    // on the other replica once this one stops answering.
                    loop {
                        let sent = http
                            .post(format!("{}/api/v1/ingest", urls[target]))
                            .bearer_auth(&key)
                            .json(&batch)
                            .send()
                            .await;
                        match sent {
                            Ok(response) if response.status().is_success() => {
                                counters[target].fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            _ => target = 1,
                        }
                    }
                }
            })
        })
        .collect();
    // Killed while the reporters are sending to it.
    wait_for(
        "batches acknowledged by the first replica",
        DEADLINE,
        || async { (acked_on_first.load(Ordering::SeqCst) >= 100).then_some(()) },
    )
    .await;
    first.kill();
    for sender in senders {
        tokio::time::timeout(Duration::from_secs(120), sender)
            .await
            .expect("every batch is acknowledged")
            .unwrap();
    }
    assert!(
        acked_on_second.load(Ordering::SeqCst) > 0,
        "the reporters moved"
    );
    let expected = INSTANCES as i64 * BATCHES as i64;
    let stored = [
        cluster
            .scalar("SELECT COUNT(*) FROM aggregates WHERE instance LIKE 'shop-%'")
            .await,
        cluster
            .scalar(
                "SELECT COUNT(*) FROM (SELECT DISTINCT instance, start_ms FROM aggregates
                 WHERE instance LIKE 'shop-%') d",
            )
            .await,
        cluster
            .scalar("SELECT COUNT(*) FROM transitions WHERE instance LIKE 'shop-%'")
            .await,
        cluster
            .scalar(
                "SELECT COUNT(*) FROM (SELECT DISTINCT instance, at_ms FROM transitions
                 WHERE instance LIKE 'shop-%') d",
            )
            .await,
        cluster
            .scalar("SELECT COUNT(*) FROM batches WHERE service = 'shop'")
            .await,
    ];
    assert_eq!(
        stored, [expected; 5],
        "aggregates, transitions and batches, each once"
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_row_is_claimed_by_one_deliverer_at_a_time() {
    use backend::alerts::store::outbox::{CLAIM_MS, claim_due};
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    // A receiver that refuses everything: the notification stays in the outbox.
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { StatusCode::SERVICE_UNAVAILABLE }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut replica = Replica::start(&cluster.database, &[(WEBHOOK_VAR, &url)]);
    tests::post_batch(
        &replica.url,
        &cluster.key,
        &transition("shop-1", 1, "payments", "closed", "open"),
    )
    .await;
    wait_for("a notification tried and refused", DEADLINE, || async {
        let tried = cluster
            .scalar("SELECT COUNT(*) FROM alert_outbox WHERE delivered_ms IS NULL AND attempts > 0")
            .await;
        (tried > 0).then_some(())
    })
    .await;
    replica.kill();
    let pending = cluster
        .scalar("SELECT COUNT(*) FROM alert_outbox WHERE delivered_ms IS NULL")
        .await;

    // Two deliverers look at once: each row goes to one of them.
    let later = now_ms() + 3_600_000;
    let claims: Vec<_> = (0..2)
        .map(|_| {
            let store = cluster.store.clone();
            tokio::spawn(async move { claim_due(&store, later, 100).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for claim in claims {
        ids.extend(claim.await.unwrap().into_iter().map(|due| due.id));
    }
    ids.sort_unstable();
    let n_claimed = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n_claimed, "no row claimed twice");
    assert_eq!(n_claimed as i64, pending, "every due row claimed");

    // Claimed rows are nobody else's until the claim runs out (a deliverer that died).
    assert!(
        claim_due(&cluster.store, later, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let again = claim_due(&cluster.store, later + CLAIM_MS, 100)
        .await
        .unwrap();
    assert_eq!(again.len() as i64, pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_count_the_names_every_replica_created() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let settings = [(MAX_BREAKERS_VAR, "2")];
    let a = Replica::start(&cluster.database, &settings);
    let b = Replica::start(&cluster.database, &settings);
    let now = (now_ms() / 1000) * 1000;
    let mut batch = report("shop-1", 1, "x1", now, None);
    let mut second = batch["aggregates"][0].clone();
    second["breaker"] = json!("x2");
    batch["aggregates"].as_array_mut().unwrap().push(second);
    tests::post_batch(&a.url, &cluster.key, &batch).await;
    wait_for("B showing the breakers A created", DEADLINE, || async {
        let list: Vec<Value> = cluster
            .get(&format!("{}/api/v1/breakers?service=shop", b.url))
            .await?
            .json()
            .await
            .ok()?;
        (list.len() == 2).then_some(())
    })
    .await;

    // A third breaker is one too many on B too; the known ones are never refused.
    let post = async |batch: &Value| {
        cluster
            .http
            .post(format!("{}/api/v1/ingest", b.url))
            .bearer_auth(&cluster.key)
            .json(batch)
            .send()
            .await
            .unwrap()
    };
    let refused = post(&report("shop-2", 1, "x3", now, None)).await;
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["path"], "$.aggregates[0].breaker", "{body}");
    let known = post(&report("shop-2", 2, "x2", now, None)).await;
    assert!(known.status().is_success(), "{}", known.status());
}
