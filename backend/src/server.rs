//! Putting the server together: options, the router, and a running server that tests and the
//! CLI start the same way. Only wiring lives here: no feature imports this module.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::routing::{any, get};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::alerts::{self, AlertSettings};
use crate::auth::WebGuard;
use crate::cluster;
use crate::configs::ConfigWatch;
use crate::ingest;
use crate::ingest::fleet::Fleet;
use crate::ingest::hub::Hub;
use crate::ingest::limits::Limits;
use crate::listen::{self, ConnectionLimits};
use crate::metrics::Metrics;
use crate::query::http as api;
use crate::query::rollup::{self, Retention};
use crate::state::AppState;
use crate::store::Store;
use crate::time::Clock;
use crate::tuning::engine_run::EngineRuns;
use crate::ui;

#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub bind: SocketAddr,
    /// An sqlx SQLite URL, e.g. `sqlite://fusebox.db`, or a PostgreSQL one
    /// (`postgres://user@host/fusebox`).
    pub database_url: String,
    pub dist_dir: PathBuf,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Batches the ingest queue holds before answering 503.
    pub ingest_queue: usize,
    /// How long a write waits for the database's lock (held by another process, a backup, say)
    /// before the request is answered 503 with `Retry-After`.
    pub lock_wait: Duration,
    /// Let anyone read without a token.
    pub anonymous_viewer: bool,
    pub retention: Retention,
    /// How often rollup and pruning run.
    pub rollup_period: Duration,
    /// Alert rules and channels from the settings file and the command line.
    pub alerts: AlertSettings,
    /// The base URL alert notifications link to; `http://<bound address>` when unset.
    pub public_url: Option<String>,
    /// How often auto mode takes a step for every breaker in it.
    pub auto_tune_period: Duration,
    /// Connection caps and read deadlines.
    pub connections: ConnectionLimits,
    /// Failed authentications allowed per peer address and minute before it gets 429.
    pub failed_auth_per_minute: u32,
    /// The time budget of one engine run (a recommendation, an auto-mode step's engine run).
    pub engine_budget: Duration,
    /// How many services, breakers and instances ingest takes in (see `limits.rs`).
    pub limits: Limits,
    /// What the server takes the time from; tests use a manual one.
    pub clock: Clock,
}

impl ServerOptions {
    pub fn new(bind: SocketAddr, database_url: impl Into<String>) -> ServerOptions {
        ServerOptions {
            bind,
            database_url: database_url.into(),
            dist_dir: ui::default_dist_dir(),
            max_body_bytes: 1024 * 1024,
            ingest_queue: 1_024,
            lock_wait: crate::store::DEFAULT_LOCK_WAIT,
            anonymous_viewer: false,
            retention: Retention::default(),
            rollup_period: Duration::from_secs(10),
            alerts: AlertSettings::default(),
            public_url: None,
            auto_tune_period: Duration::from_secs(60),
            connections: ConnectionLimits::default(),
            failed_auth_per_minute: WebGuard::FAILED_AUTH_PER_MINUTE,
            engine_budget: crate::tuning::engine_run::DEFAULT_BUDGET,
            limits: Limits::default(),
            clock: Clock::system(),
        }
    }
}

/// A server accepting connections; dropping it does not stop it, `shutdown` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, cuts engine runs short, and waits for open requests to
    /// finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.state.engine.shut_down();
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }

    /// Serves until `signal` fires (then shuts down gracefully, waiting at most `grace` for open
    /// requests) or the server fails.
    pub async fn serve_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        tokio::select! {
            res = &mut self.task => Ok(res??),
            () = signal => {
                // Engine runs end at their next check, so open requests can finish and no
                // blocking thread keeps the runtime from stopping.
                self.state.engine.shut_down();
                let _ = self.stop.send(());
                // Live streams never end by themselves: after the grace period, stop waiting.
                match tokio::time::timeout(grace, &mut self.task).await {
                    Ok(res) => Ok(res??),
                    Err(_) => {
                        self.task.abort();
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Opens the store, rebuilds the in-memory fleet, starts the writer, binds and serves.
pub async fn start(options: ServerOptions) -> anyhow::Result<RunningServer> {
    let store = Store::open_with(&options.database_url, options.lock_wait).await?;
    let (breaker_ids, instances) = store.load_fleet().await?;
    let mut fleet = Fleet::default();
    for (key, instance, live) in instances {
        fleet.insert(key, instance, live);
    }
    let fleet = Arc::new(RwLock::new(fleet));
    let hub = Hub::default();
    let metrics = Arc::new(Metrics::default());
    // Batches answered before their commit and not committed when the server last stopped
    // are queued before any request is taken (see `ingest::journal`).
    let (journal, held) = match ingest::journal::dir_for(&options.database_url) {
        Some(dir) => {
            let (journal, held) = ingest::journal::Journal::open(&dir)
                .with_context(|| format!("cannot open the ingest journal {}", dir.display()))?;
            (Some(journal), held)
        }
        None => (None, Vec::new()),
    };
    let ingest = ingest::spawn_writer(
        store.clone(),
        fleet.clone(),
        breaker_ids,
        hub.clone(),
        metrics.clone(),
        (
            options.ingest_queue,
            options.limits,
            options.clock.clone(),
            journal,
        ),
    );
    if !held.is_empty() {
        tracing::info!(
            batches = held.len(),
            "queueing the batches the ingest journal holds"
        );
        ingest.replay(held).await?;
    }
    // On PostgreSQL the cluster's listener publishes transitions from here on.
    let published = store.newest_transition_id().await?;
    let listener = TcpListener::bind(options.bind)
        .await
        .with_context(|| format!("cannot listen on {}", options.bind))?;
    let addr = listener.local_addr()?;
    let public_url = options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let (alerts, alert_tasks) = alerts::start(
        &store,
        &ingest,
        &options.alerts,
        (public_url, options.clock.clone()),
    )
    .await?;
    let configs = Arc::new(ConfigWatch::new(&store));
    let state = AppState {
        store,
        fleet,
        hub,
        ingest,
        metrics: metrics.clone(),
        configs,
        anonymous_viewer: options.anonymous_viewer,
        alerts,
        credentials: Arc::default(),
        web: Arc::new(WebGuard::new(
            options.public_url.as_deref(),
            options.failed_auth_per_minute,
        )),
        sign_in_codes: Arc::default(),
        engine: EngineRuns::new(options.engine_budget, Some(metrics.clone())),
        limits: options.limits,
        clock: options.clock.clone(),
    };
    rollup::maintain_partitions(&state.store, &options.retention, options.clock.now_ms()).await;
    // Rollups and retention, the alert engine and delivery, auto mode: on one replica at a
    // time (always this one on SQLite).
    let singletons = {
        let app = state.clone();
        let (retention, rollup_period) = (options.retention, options.rollup_period);
        let auto_tune_period = options.auto_tune_period;
        cluster::run_singletons(state.store.clone(), move || {
            let mut jobs = vec![rollup::spawn(
                app.store.clone(),
                retention,
                rollup_period,
                app.clock.clone(),
            )];
            jobs.extend(app.alerts.spawn_singletons(&app.store, &app.hub));
            jobs.push(crate::tuning::autotune::spawn(
                app.clone(),
                auto_tune_period,
            ));
            jobs
        })
    };
    let leader_gauge = {
        let (mut leading, metrics) = (singletons.leading(), state.metrics.clone());
        tokio::spawn(async move {
            loop {
                let now = *leading.borrow_and_update();
                metrics.set_leading(now);
                if leading.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    let cluster_listener = state
        .store
        .is_postgres()
        .then(|| cluster::spawn_listener(state.clone(), published));
    // SQLite's log is checkpointed by a task of its own, not by the writer's commits.
    let checkpoints =
        (!state.store.is_postgres()).then(|| crate::store::checkpoint::spawn(state.store.clone()));
    let app = router(state.clone(), &options);
    let (stop, stopped) = oneshot::channel::<()>();
    let connections = options.connections;
    let metrics = state.metrics.clone();
    let task = tokio::spawn(async move {
        let res = listen::serve(listener, app, connections, metrics, async move {
            let _ = stopped.await;
        })
        .await;
        drop(singletons);
        leader_gauge.abort();
        if let Some(listener) = cluster_listener {
            listener.abort();
        }
        if let Some(checkpoints) = checkpoints {
            checkpoints.abort();
        }
        // A stopped server delivers nothing more; what is left waits in the outbox.
        drop(alert_tasks);
        res
    });
    tracing::info!(%addr, database = %crate::store::redact(&options.database_url), "fusebox is serving");
    Ok(RunningServer {
        addr,
        state,
        stop,
        task,
    })
}

pub fn router(state: AppState, options: &ServerOptions) -> Router {
    let (api, _) = crate::routes::api().split_for_parts();
    let api = api
        // Unknown API paths answer JSON, not the dashboard's page.
        .route("/api/v1", any(api::not_found))
        .route("/api/v1/{*rest}", any(api::not_found))
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::origin::same_origin_writes,
        ));
    // Answers of the API may hold secrets (a channel's webhook URL) or a user's view: never
    // stored by a browser or a shared cache.
    let no_store = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let api_answers = api
        .route("/api/openapi.json", get(crate::openapi::openapi_json))
        .layer(no_store);
    let router = Router::new()
        .merge(api_answers)
        .route("/healthz", get(|| async { "ok" }))
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(state)
        .merge(ui::router(&options.dist_dir))
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(
            options.connections.body_read_timeout,
        ))
        .layer(CompressionLayer::new());
    with_security_headers(router).layer(TraceLayer::new_for_http())
}

/// What every answer tells the browser: run only this origin's scripts and wasm (no inline
/// script), never inside a frame, send no referrer, and don't guess content types.
fn with_security_headers(router: Router) -> Router {
    // Styles may be inline: the charts are SVG documents with style attributes. Scripts may
    // not: the page's one script is a file, and 'wasm-unsafe-eval' only lets it compile wasm.
    const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
        style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
        object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}
