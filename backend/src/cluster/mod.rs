//! Several servers (replicas) on one PostgreSQL database, behind a load balancer.
//!
//! Brief overview:
//! - [`Singletons`]: the jobs that must run once per database (rollups and retention, the
//!   alert engine and the outbox's delivery, auto mode) run on the one replica that holds a
//!   session-level advisory lock ([`store::LEADER_LOCK`]) on a connection of its own. The
//!   others try to take it every [`RETRY`]; when the leader dies, PostgreSQL ends its session
//!   and releases the lock, and another replica starts the jobs within about a second. On
//!   SQLite (one process) the jobs simply run.
//! - [`spawn_listener`]: each replica LISTENs on the cluster's channels. An ingest commit
//!   notifies [`store::INGEST_CHANNEL`] in its own transaction (so in commit order) with the
//!   instance states it changed and the ids of the aggregates it added, which the other
//!   replicas apply to their fleets; every replica (the committing one too) reads the new
//!   transitions from the table after the last id it published and publishes them to its
//!   local hub, so the live stream's ids are the table's ids on every replica and a client
//!   moving between replicas resumes with `Last-Event-ID` from the table. A timer reads the
//!   transitions too, so a notification lost to a broken connection delays them, never loses
//!   them.
//! - Config versions ([`store::CONFIG_CHANNEL`]) wake the long polls held on every replica;
//!   alert notices ([`store::ALERT_CHANNEL`]) reach the live streams of every replica.

pub mod store;

use std::collections::HashSet;
use std::time::Duration;

use protocol::{AlertNotice, State, StreamEvent, Transition};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::ingest::dirty::{self, Dirty};
use crate::ingest::fleet::{BreakerKey, InstanceEvent, InstanceLive};
use crate::state::AppState;
use crate::store::Store;

/// How often a replica without the leader's lock tries to take it, the leader checks that its
/// session still answers, and each replica reads transitions it was not notified of.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long the leader's session may take to answer before the leader gives the jobs up (its
/// lock may be gone by then: PostgreSQL ends a session whose client it lost).
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL takes payloads below 8000 bytes; a larger one is replaced by "reload".
const MAX_PAYLOAD: usize = 7_900;
/// Transitions read per query when publishing.
const PAGE: i64 = 500;

/// What an ingest commit tells the other replicas: which replica committed it, the instance
/// states it changed (`None`: too many for one notification, reload them all) and the ids of
/// the aggregates it added (after the first, up to the second), which they read from the table.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct IngestNews {
    pub from: String,
    pub states: Option<Vec<StateNews>>,
    #[serde(default)]
    pub aggregates: (i64, i64),
    /// Whether it added transitions (each replica then reads them from the table at once).
    #[serde(default)]
    pub transitions: bool,
}

/// An instance's state as stored after a commit (short keys: more fit in one payload).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct StateNews {
    #[serde(rename = "s")]
    pub service: String,
    #[serde(rename = "id")]
    pub breaker_id: i64,
    #[serde(rename = "b")]
    pub breaker: String,
    #[serde(rename = "i")]
    pub instance: String,
    #[serde(rename = "st")]
    pub state: State,
    #[serde(rename = "t")]
    pub since_ms: i64,
    #[serde(rename = "v")]
    pub config_version: u64,
    #[serde(rename = "u")]
    pub updated_ms: i64,
    #[serde(rename = "f")]
    pub first_ms: i64,
}

impl StateNews {
    pub fn new(
        (service, breaker, breaker_id): (&str, &str, i64),
        instance: &str,
        live: &InstanceLive,
    ) -> StateNews {
        StateNews {
            service: service.to_string(),
            breaker_id,
            breaker: breaker.to_string(),
            instance: instance.to_string(),
            state: live.state,
            since_ms: live.since_ms,
            config_version: live.config_version,
            updated_ms: live.updated_ms,
            first_ms: live.first_ms,
        }
    }
}

/// What an ingest commit tells the other replicas ([`IngestNews`]), up to the ids of the
/// aggregates it adds: the JSON object without its last field's value, which the statement
/// inserting them completes with `[after,up_to]}` (`Store::insert_aggregates_announcing`), so
/// that one statement both inserts the group's aggregates and notifies, when (and only if)
/// the transaction commits, so in commit order. Within PostgreSQL's size limit once completed:
/// too many states for one notification are replaced by "reload them all".
pub fn ingest_news_head(from: &str, states: &[StateNews], transitions: bool) -> String {
    #[derive(Serialize)]
    struct Head<'a> {
        from: &'a str,
        states: Option<&'a [StateNews]>,
        transitions: bool,
    }
    let head = |states| {
        let mut json = serde_json::to_string(&Head {
            from,
            states,
            transitions,
        })
        .expect("news serialize");
        json.pop(); // the closing brace
        json.push_str(",\"aggregates\":");
        json
    };
    let json = head(Some(states));
    if json.len() + MAX_IDS_TAIL <= MAX_PAYLOAD {
        return json;
    }
    head(None)
}

/// The longest completion of an [`ingest_news_head`]: `[`, two `i64`s, `,`, `]}`.
const MAX_IDS_TAIL: usize = 1 + 20 + 1 + 20 + 2;

/// An alert notice, with the replica whose engine made it (which told its own streams).
#[derive(Serialize, Deserialize)]
pub struct AlertNews {
    pub from: String,
    pub notice: AlertNotice,
}

/// The payload of an alert notification, or `None` when it would be too large (the notice
/// then reaches only the streams of the replica that made it; the alerts API has it all).
pub fn alert_payload(from: &str, notice: &AlertNotice) -> Option<String> {
    let json = serde_json::to_string(&AlertNews {
        from: from.to_string(),
        notice: notice.clone(),
    })
    .expect("news serialize");
    (json.len() <= MAX_PAYLOAD).then_some(json)
}

/// The singleton jobs' runner; dropping it stops them (and, on PostgreSQL, gives the lock up
/// when its connection closes).
pub struct Singletons {
    task: JoinHandle<()>,
    leading: watch::Receiver<bool>,
}

impl Singletons {
    /// Whether this replica runs the singleton jobs now.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }
}

impl Drop for Singletons {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Jobs started together; dropping them aborts them.
struct Running(Vec<JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for job in &self.0 {
            job.abort();
        }
    }
}

/// Runs the jobs `start` spawns on exactly one replica at a time (see the module's doc).
pub fn run_singletons(
    store: Store,
    start: impl Fn() -> Vec<JoinHandle<()>> + Send + Sync + 'static,
) -> Singletons {
    let (leading_tx, leading) = watch::channel(false);
    let task = if store.is_postgres() {
        tokio::spawn(elect(store, start, leading_tx))
    } else {
        tokio::spawn(async move {
            let _jobs = Running(start());
            leading_tx.send_replace(true);
            std::future::pending::<()>().await;
        })
    };
    Singletons { task, leading }
}

async fn elect(
    store: Store,
    start: impl Fn() -> Vec<JoinHandle<()>>,
    leading: watch::Sender<bool>,
) {
    'connect: loop {
        let mut conn = match store::dedicated_connection(&store).await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "leader election: cannot connect; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            match store::try_lead(&mut conn).await {
                Ok(true) => break,
                Ok(false) => tokio::time::sleep(RETRY).await,
                Err(err) => {
                    tracing::warn!(error = %err, "leader election failed; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue 'connect;
                }
            }
        }
        tracing::info!("this replica runs the singleton jobs (rollups, alerts, auto mode)");
        let jobs = Running(start());
        leading.send_replace(true);
        // The lock lives as long as the session: once it stops answering, another replica
        // may hold the lock already, so the jobs stop here.
        loop {
            tokio::time::sleep(RETRY).await;
            match tokio::time::timeout(PING_TIMEOUT, store::ping(&mut conn)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "the leader's session broke; singleton jobs stop");
                    break;
                }
                Err(_) => {
                    tracing::warn!("the leader's session stopped answering; singleton jobs stop");
                    break;
                }
            }
        }
        drop(jobs);
        leading.send_replace(false);
    }
}

/// Starts the replica's listener (PostgreSQL only): it publishes every transition after
/// `published` (the newest id when the server started) to the hub, applies other replicas'
/// instance states to the fleet, and wakes config long polls and alert streams.
pub fn spawn_listener(app: AppState, published: i64) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::channel(1_024);
        // Aborted with this task (when the server stops), not left holding its connection.
        let _receiver = Running(vec![tokio::spawn(receive(app.store.clone(), tx))]);
        let mut published = published;
        // Breakers whose summary other replicas' aggregates changed: streamed a slice per
        // tick, as the writer does with its own.
        let mut dirty = Dirty::default();
        // A commit whose states did not fit its notification: every state is read again, once
        // per tick however many such commits came.
        let mut reload = false;
        let mut timer = tokio::time::interval(dirty::SUMMARY_PERIOD);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flush = dirty::ticker();
        loop {
            let read_transitions = tokio::select! {
                news = rx.recv() => match news {
                    Some(News::Reconnected) => {
                        app.configs.wake_all();
                        true
                    }
                    Some(News::Notified(channel, payload)) => {
                        handle(&app, &channel, &payload, (&mut dirty, &mut reload)).await
                    }
                    None => break,
                },
                _ = timer.tick() => {
                    if std::mem::take(&mut reload) {
                        match reload_states(&app.store).await {
                            Ok(states) => apply_states(&app, &states),
                            Err(err) => {
                                tracing::warn!(error = format!("{err:#}"), "reloading states failed");
                                reload = true;
                            }
                        }
                    }
                    true
                }
                _ = flush.tick() => {
                    dirty::publish(dirty.take_next(), &app.fleet, &app.hub);
                    false
                }
            };
            if read_transitions && let Err(err) = publish_transitions(&app, &mut published).await {
                tracing::warn!(error = format!("{err:#}"), "reading new transitions failed");
            }
        }
    })
}

enum News {
    /// The listener (re)connected: notifications may have been missed.
    Reconnected,
    Notified(String, String),
}

/// Receives notifications into `tx`, reconnecting when the connection breaks.
async fn receive(store: Store, tx: mpsc::Sender<News>) {
    loop {
        let mut listener = match store::listen(&store).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for the other replicas; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if tx.send(News::Reconnected).await.is_err() {
            return;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(note)) => {
                    let news = News::Notified(note.channel().to_string(), note.payload().into());
                    if tx.send(news).await.is_err() {
                        return;
                    }
                }
                // The connection broke; the next call reconnects.
                Ok(None) => {
                    if tx.send(News::Reconnected).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "listening for the other replicas failed");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

/// Handles one notification; whether new transitions are to be read now.
async fn handle(
    app: &AppState,
    channel: &str,
    payload: &str,
    (dirty, reload): (&mut Dirty, &mut bool),
) -> bool {
    match channel {
        store::INGEST_CHANNEL => {
            let Ok(news) = serde_json::from_str::<IngestNews>(payload) else {
                tracing::warn!(payload, "an ingest notification does not parse");
                return true;
            };
            if news.from == app.store.replica() {
                return news.transitions;
            }
            match news.states {
                Some(states) => apply_states(app, &states),
                None => *reload = true,
            }
            let (after, up_to) = news.aggregates;
            if up_to > after {
                match store::aggregates_between(&app.store, after, up_to).await {
                    Ok(rows) => apply_aggregates(app, &rows, dirty),
                    Err(err) => {
                        tracing::warn!(error = format!("{err:#}"), "reading new aggregates failed")
                    }
                }
            }
            news.transitions
        }
        store::CONFIG_CHANNEL => {
            let parsed = payload
                .split_once(':')
                .and_then(|(id, version)| Some((id.parse().ok()?, version.parse().ok()?)));
            match parsed {
                Some((breaker_id, version)) => app.configs.wake(breaker_id, version),
                None => tracing::warn!(payload, "a config notification does not parse"),
            }
            false
        }
        store::ALERT_CHANNEL => match serde_json::from_str::<AlertNews>(payload) {
            Ok(news) if news.from != app.store.replica() => {
                app.alerts.tell(news.notice);
                false
            }
            Ok(_) => false,
            Err(_) => {
                tracing::warn!(payload, "an alert notification does not parse");
                false
            }
        },
        _ => false,
    }
}

/// Another replica's aggregates into this one's fleet: the breakers' current rates, calls
/// and sparklines are then those of every replica's reports.
fn apply_aggregates(
    app: &AppState,
    rows: &[(String, i64, String, protocol::Aggregate)],
    dirty: &mut Dirty,
) {
    let mut fleet = app.fleet.write().expect("fleet lock poisoned");
    for (service, breaker_id, instance, aggregate) in rows {
        fleet.count(service, aggregate);
        let mut live = fleet
            .instance_of(service, &aggregate.breaker, instance)
            .cloned();
        if live.is_none() {
            let learned = &app.ingest.learned;
            learned.add(service, &aggregate.breaker, *breaker_id, instance);
        }
        InstanceLive::update(&mut live, &InstanceEvent::Interval(aggregate));
        if let Some(live) = live {
            fleet.set(service, &aggregate.breaker, instance, live);
        }
        dirty.insert((service.clone(), aggregate.breaker.clone()));
    }
}

/// Every stored instance state, for a notification that had too many to carry.
async fn reload_states(store: &Store) -> anyhow::Result<Vec<StateNews>> {
    let (ids, instances) = store.load_fleet().await?;
    Ok(instances
        .into_iter()
        .filter_map(|(key, instance, live)| {
            let id = *ids.get(&key)?;
            Some(StateNews::new((&key.0, &key.1, id), &instance, &live))
        })
        .collect())
}

/// Another replica's instance states into this one's fleet (newer than what it knows), and
/// the changed breakers' summaries to the stream.
fn apply_states(app: &AppState, states: &[StateNews]) {
    let mut touched: HashSet<BreakerKey> = HashSet::new();
    let mut fleet = app.fleet.write().expect("fleet lock poisoned");
    for news in states {
        let known = fleet.instance_of(&news.service, &news.breaker, &news.instance);
        if known.is_none() {
            let learned = &app.ingest.learned;
            learned.add(
                &news.service,
                &news.breaker,
                news.breaker_id,
                &news.instance,
            );
        }
        let mut live = known.cloned().unwrap_or(InstanceLive {
            state: news.state,
            since_ms: news.since_ms,
            config_version: news.config_version,
            updated_ms: i64::MIN,
            first_ms: news.first_ms,
            last_trip: None,
            last_interval: None,
        });
        if news.updated_ms < live.updated_ms {
            continue;
        }
        live.state = news.state;
        live.since_ms = news.since_ms;
        live.config_version = news.config_version;
        live.updated_ms = news.updated_ms;
        live.first_ms = live.first_ms.min(news.first_ms);
        fleet.set(&news.service, &news.breaker, &news.instance, live);
        touched.insert((news.service.clone(), news.breaker.clone()));
    }
    app.hub.publish_all(
        touched
            .iter()
            .filter_map(|key| fleet.summary(key))
            .map(StreamEvent::Summary)
            .collect(),
    );
}

/// Publishes the transitions committed after `published` (by any replica), in id order, and
/// applies them to the fleet (a replica's own ones are there already: applying one again
/// changes nothing).
async fn publish_transitions(app: &AppState, published: &mut i64) -> anyhow::Result<()> {
    loop {
        let records = app.store.transitions_after(*published, None, PAGE).await?;
        let n = records.len();
        let mut touched: HashSet<BreakerKey> = HashSet::new();
        {
            let mut fleet = app.fleet.write().expect("fleet lock poisoned");
            for record in &records {
                let transition: &Transition = &record.transition;
                let mut live = fleet
                    .instance_of(&record.service, &transition.breaker, &record.instance)
                    .cloned();
                InstanceLive::update(&mut live, &InstanceEvent::Transition(transition));
                if let Some(live) = live {
                    fleet.set(&record.service, &transition.breaker, &record.instance, live);
                }
                touched.insert((record.service.clone(), transition.breaker.clone()));
            }
        }
        let mut news = Vec::with_capacity(n + touched.len());
        for record in records {
            *published = record.id;
            news.push(StreamEvent::Transition(record));
        }
        if !touched.is_empty() {
            let fleet = app.fleet.read().expect("fleet lock poisoned");
            news.extend(
                touched
                    .iter()
                    .filter_map(|key| fleet.summary(key))
                    .map(StreamEvent::Summary),
            );
        }
        app.hub.publish_all(news);
        if n < PAGE as usize {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(instance: &str) -> StateNews {
        StateNews {
            service: "checkout".into(),
            breaker_id: 7,
            breaker: "payments-api".into(),
            instance: instance.into(),
            state: State::Open,
            since_ms: 1,
            config_version: 2,
            updated_ms: 3,
            first_ms: 0,
        }
    }

    /// An ingest notification's payload as the aggregates' insert completes it.
    fn ingest_payload(
        from: &str,
        states: Vec<StateNews>,
        ((after, up_to), transitions): ((i64, i64), bool),
    ) -> String {
        format!(
            "{}[{after},{up_to}]}}",
            ingest_news_head(from, &states, transitions)
        )
    }

    #[test]
    fn an_ingest_payload_carries_the_states_or_says_reload() {
        let small = ingest_payload("r1", vec![state("a")], ((4, 9), true));
        let news: IngestNews = serde_json::from_str(&small).unwrap();
        assert_eq!(news.states, Some(vec![state("a")]));
        assert_eq!(news.aggregates, (4, 9));
        let many = (0..500).map(|i| state(&format!("instance-{i}"))).collect();
        let large = ingest_payload("r1", many, ((4, 9), false));
        assert!(large.len() <= MAX_PAYLOAD);
        let news: IngestNews = serde_json::from_str(&large).unwrap();
        assert_eq!(news.from, "r1");
        assert_eq!(news.states, None);
        assert_eq!(news.aggregates, (4, 9));
        let widest = ingest_payload("r1", vec![], ((i64::MIN, i64::MAX), true));
        let news: IngestNews = serde_json::from_str(&widest).unwrap();
        assert_eq!(
            (news.aggregates, news.transitions),
            ((i64::MIN, i64::MAX), true)
        );
    }
}
