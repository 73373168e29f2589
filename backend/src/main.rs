//! `fusebox`: the command-line entry point (serve, demo).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use backend::auth::{self, Role};
use backend::server::{self, ServerOptions};
use backend::settings::{self, FileSettings};
use backend::store::Store;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "fusebox",
    version,
    about = "Live dashboards and adaptive tuning for circuit breakers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: ingest, store (SQLite or PostgreSQL), live stream and dashboard.
    Serve(ServeArgs),
    /// Run the server plus simulated services whose breakers trip and recover.
    Demo(ServeArgs),
    /// Manage ingest keys (one per service).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users and their roles.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Tune breaker thresholds: evaluate the adaptive engine on labelled scenarios.
    Tune(backend::tuning::tune::TuneCommand),
    /// Create the database when missing and apply its pending migrations, then exit (the
    /// server also applies them as it starts).
    Migrate {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Copy a SQLite database's whole history into a PostgreSQL database: its schema is
    /// migrated, every table copied with its ids, its id sequences continued after them.
    MigrateData {
        /// The SQLite database: a file's path or a sqlite:// URL (opened read-only; stop the
        /// server using it first, or what it writes meanwhile is not copied).
        #[arg(long, value_name = "SQLITE")]
        from: String,
        /// The PostgreSQL database (postgres://user@host/fusebox); it must be empty.
        #[arg(long, value_name = "POSTGRES_URL")]
        to: String,
        /// Delete everything the target already holds, then copy (without it, a target that
        /// holds data is refused and left as it is).
        #[arg(long, alias = "force")]
        replace: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an ingest key for a service; the key is printed once.
    Create {
        #[arg(long)]
        service: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Revoke a key by its id.
    Revoke {
        id: i64,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a user (a viewer unless --admin); the token is printed once.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List users (never their tokens).
    List {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Revoke a user's token.
    Revoke {
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Args)]
struct DatabaseArg {
    /// The database: a SQLite file's path or URL (sqlite://fusebox.db), or a PostgreSQL URL
    /// (postgres://user@host/fusebox).
    #[arg(
        long = "database",
        default_value = "sqlite://fusebox.db",
        env = "DATABASE_URL"
    )]
    database: String,
}

impl DatabaseArg {
    async fn open(&self) -> anyhow::Result<Store> {
        Store::open(&database_url(&self.database)).await
    }
}

fn database_url(text: &str) -> String {
    backend::store::database_url(text)
}

/// A setting that must be at least 1 when given (a count, a period, a budget).
fn at_least_one<T: Copy + PartialEq + Default>(
    name: &str,
    value: Option<T>,
) -> anyhow::Result<Option<T>> {
    match value {
        Some(n) if n == T::default() => anyhow::bail!("{name} must be at least 1"),
        other => Ok(other),
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7878].
    #[arg(long, env = "FUSEBOX_BIND")]
    bind: Option<SocketAddr>,
    /// The database: a SQLite file's path or URL, or a PostgreSQL URL
    /// (postgres://user@host/fusebox) [default: sqlite://fusebox.db].
    #[arg(long = "database", env = "DATABASE_URL")]
    database: Option<String>,
    /// Folder holding the dashboard bundle (index.html, wasm, JS).
    #[arg(long, env = "FUSEBOX_DIST")]
    dist: Option<PathBuf>,
    /// Largest accepted request body, in bytes [default: 1048576].
    #[arg(long, env = "FUSEBOX_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Let anyone read the dashboard and the read API without a token.
    #[arg(long, env = "FUSEBOX_ANONYMOUS_VIEWER")]
    anonymous_viewer: bool,
    /// A TOML settings file; flags and environment variables override it.
    #[arg(long = "config", env = "FUSEBOX_CONFIG")]
    config: Option<PathBuf>,
    /// Send alerts of the default rule (any breaker going Closed → Open) to this generic
    /// webhook; repeatable.
    #[arg(long = "alert-webhook", value_name = "URL")]
    alert_webhooks: Vec<String>,
    /// The HMAC-SHA256 key that signs payloads to the --alert-webhook URLs.
    #[arg(long, env = "FUSEBOX_ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    alert_webhook_secret: Option<String>,
    /// The base URL alert notifications link to [default: http://<bind address>].
    #[arg(long, env = "FUSEBOX_PUBLIC_URL")]
    public_url: Option<String>,
    /// Most services ingest takes in [default: 1000].
    #[arg(long, env = "FUSEBOX_MAX_SERVICES")]
    max_services: Option<usize>,
    /// Most breakers per service ingest takes in [default: 1000].
    #[arg(long, env = "FUSEBOX_MAX_BREAKERS_PER_SERVICE")]
    max_breakers_per_service: Option<usize>,
    /// Most instances per service ingest takes in [default: 10000].
    #[arg(long, env = "FUSEBOX_MAX_INSTANCES_PER_SERVICE")]
    max_instances_per_service: Option<usize>,
    /// Most calls an aggregate may report per second of its interval [default: 1000000].
    #[arg(long, env = "FUSEBOX_MAX_CALLS_PER_S")]
    max_calls_per_s: Option<u64>,
    /// Most open connections [default: 4096].
    #[arg(long, env = "FUSEBOX_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most open connections from one client address [default: 512].
    #[arg(long, env = "FUSEBOX_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Failed authentications per client address and minute before it gets 429 [default: 10].
    #[arg(long, env = "FUSEBOX_FAILED_AUTH_PER_MINUTE")]
    failed_auth_per_minute: Option<u32>,
}

impl ServeArgs {
    fn options(&self) -> anyhow::Result<ServerOptions> {
        let file = match &self.config {
            None => FileSettings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the settings file {}", path.display()))?;
                settings::parse(&text)
                    .with_context(|| format!("invalid settings file {}", path.display()))?
            }
        };
        let bind = self
            .bind
            .or(file.bind)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7878)));
        let database = self
            .database
            .clone()
            .or(file.database.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
        let mut options = ServerOptions::new(bind, database_url(&database));
        options.anonymous_viewer = self.anonymous_viewer || file.anonymous_viewer.unwrap_or(false);
        if let Some(dist) = self.dist.clone().or(file.dist.clone()) {
            options.dist_dir = dist;
        }
        if let Some(n) = self.max_body_bytes.or(file.max_body_bytes) {
            options.max_body_bytes = n;
        }
        if let Some(n) = at_least_one("ingest_queue", file.ingest_queue)? {
            options.ingest_queue = n;
        }
        // Saturating: a retention of u64::MAX hours is "keep for ever", not an overflow.
        let hours = |h: u64| Duration::from_secs(h.saturating_mul(3_600));
        if let Some(h) = file.retention.raw_hours {
            options.retention.raw = hours(h);
        }
        if let Some(d) = file.retention.minute_days {
            options.retention.minute = hours(d.saturating_mul(24));
        }
        if let Some(d) = file.retention.hour_days {
            options.retention.hour = hours(d.saturating_mul(24));
        }
        options.public_url = self.public_url.clone().or(file.public_url.clone());
        if let Some(s) = at_least_one("auto_tune_period_s", file.auto_tune_period_s)? {
            options.auto_tune_period = Duration::from_secs(s);
        }
        if let Some(ms) = at_least_one("engine.budget_ms", file.engine.budget_ms)? {
            options.engine_budget = Duration::from_millis(ms);
        }
        let limits = &mut options.limits;
        for (flag, file, limit) in [
            (
                self.max_services,
                file.limits.max_services,
                &mut limits.max_services,
            ),
            (
                self.max_breakers_per_service,
                file.limits.max_breakers_per_service,
                &mut limits.max_breakers_per_service,
            ),
            (
                self.max_instances_per_service,
                file.limits.max_instances_per_service,
                &mut limits.max_instances_per_service,
            ),
        ] {
            if let Some(n) = flag.or(file) {
                *limit = n;
            }
        }
        let max_calls_per_s = self.max_calls_per_s.or(file.limits.max_calls_per_s);
        if let Some(n) = at_least_one("limits.max_calls_per_s", max_calls_per_s)? {
            limits.max_calls_per_s = n;
        }
        let connections = &mut options.connections;
        let max_connections = self.max_connections.or(file.connections.max_connections);
        if let Some(n) = at_least_one("connections.max_connections", max_connections)? {
            connections.max_connections = n;
        }
        let per_ip = (self.max_connections_per_ip).or(file.connections.max_connections_per_ip);
        if let Some(n) = at_least_one("connections.max_connections_per_ip", per_ip)? {
            connections.max_connections_per_ip = n;
        }
        for (seconds, name, slot) in [
            (
                file.connections.header_read_timeout_s,
                "header_read_timeout_s",
                &mut connections.header_read_timeout,
            ),
            (
                file.connections.body_read_timeout_s,
                "body_read_timeout_s",
                &mut connections.body_read_timeout,
            ),
        ] {
            if let Some(s) = at_least_one(&format!("connections.{name}"), seconds)? {
                *slot = Duration::from_secs(s);
            }
        }
        let failed_auth = (self.failed_auth_per_minute).or(file.connections.failed_auth_per_minute);
        if let Some(n) = at_least_one("connections.failed_auth_per_minute", failed_auth)? {
            options.failed_auth_per_minute = n;
        }
        options.alerts.rules = file.alerts.rules.clone();
        options.alerts.channels = file.alerts.channels.clone();
        for (idx, url) in self.alert_webhooks.iter().enumerate() {
            options.alerts.channels.push(protocol::AlertChannel {
                name: format!("webhook-{}", idx + 1),
                kind: protocol::AlertChannelKind::Webhook,
                url: url.clone(),
                secret: self.alert_webhook_secret.clone(),
                rules: vec!["breaker-opened".into()],
            });
        }
        Ok(options)
    }

    fn database_shown(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.into())
    }
}

const DEFAULT_DATABASE: &str = "sqlite://fusebox.db";

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    if let Err(err) = run(Cli::parse()).await {
        eprintln!("fusebox: {err:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let running = server::start(args.options()?).await?;
            say_how_to_get_in(&running, &args).await?;
            println!("fusebox is serving the dashboard at {}", running.url());
            running.serve_until(shutdown_signal(), SHUTDOWN_GRACE).await
        }
        Command::Demo(args) => {
            let running = server::start(args.options()?).await?;
            let url = running.url();
            let demo = backend::demo::start(&running).await?;
            let runtimes = backend::demo::adapters::locate();
            let (node_service, _) = backend::demo::adapters::NODE_SERVICE;
            let (python_service, _) = backend::demo::adapters::PYTHON_SERVICE;
            if let Err(reason) = &runtimes.node {
                println!("fusebox demo: leaving out the Node.js service {node_service}: {reason}");
            }
            if let Err(reason) = &runtimes.python {
                println!("fusebox demo: leaving out the Python service {python_service}: {reason}");
            }
            let adapters = backend::demo::adapters::start(&running, &runtimes).await?;
            println!("fusebox demo: open {url} in a browser (Ctrl-C to stop)");
            println!(
                "fusebox demo: to review and accept tuned thresholds, sign in as the demo's admin \
                 with this one-time link:\n  {}",
                demo.admin_link
            );
            let (stop_demo, demo_stopped) = tokio::sync::oneshot::channel::<()>();
            let signal = async move {
                shutdown_signal().await;
                // Flush the simulated services' reporters while the server still listens.
                let services = async {
                    tokio::join!(demo.shutdown(), adapters.shutdown());
                };
                if tokio::time::timeout(SHUTDOWN_GRACE, services)
                    .await
                    .is_err()
                {
                    eprintln!("fusebox demo: the simulated services did not stop in time");
                }
                let _ = stop_demo.send(());
            };
            let res = running.serve_until(signal, SHUTDOWN_GRACE).await;
            drop(demo_stopped);
            res
        }
        Command::Keys(KeysCommand::Create { service, db }) => {
            let created = auth::create_api_key(&db.open().await?, &service).await?;
            println!(
                "created ingest key {} for the service {service:?}; it is shown only once:",
                created.id
            );
            println!("{}", created.secret);
            Ok(())
        }
        Command::Keys(KeysCommand::List { db }) => {
            print_listed(&auth::list_api_keys(&db.open().await?).await?);
            Ok(())
        }
        Command::Keys(KeysCommand::Revoke { id, db }) => {
            anyhow::ensure!(
                auth::revoke_api_key(&db.open().await?, id).await?,
                "no active key with id {id}"
            );
            println!("revoked ingest key {id}");
            Ok(())
        }
        Command::Users(UsersCommand::Add { name, admin, db }) => {
            let role = if admin { Role::Admin } else { Role::Viewer };
            let created = auth::add_user(&db.open().await?, &name, role).await?;
            println!(
                "added the {} {name:?}; their token is shown only once:",
                role.as_str()
            );
            println!("{}", created.secret);
            Ok(())
        }
        Command::Users(UsersCommand::List { db }) => {
            print_listed(&auth::list_users(&db.open().await?).await?);
            Ok(())
        }
        Command::Users(UsersCommand::Revoke { name, db }) => {
            anyhow::ensure!(
                auth::revoke_user(&db.open().await?, &name).await?,
                "no active user named {name:?}"
            );
            println!("revoked the token of {name:?}");
            Ok(())
        }
        Command::Tune(cmd) => backend::tuning::tune::run(cmd).await,
        Command::Migrate { db } => {
            db.open().await?;
            println!(
                "the database {} is up to date",
                backend::store::redact(&database_url(&db.database))
            );
            Ok(())
        }
        Command::MigrateData { from, to, replace } => {
            let what = backend::migrate_data::MigrateData { from, to, replace };
            let report = backend::migrate_data::run(&what).await?;
            print_copied(&what, &report);
            Ok(())
        }
    }
}

/// What `migrate-data` copied, table by table (counts only: never a row's content).
fn print_copied(what: &backend::migrate_data::MigrateData, report: &backend::migrate_data::Report) {
    let to = backend::store::redact(&what.to);
    if report.replaced {
        println!("deleted what {to} held before (--replace)");
    }
    println!("copied {} into {to}:", database_url(&what.from));
    for table in &report.tables {
        println!("  {:<20} {:>12} rows", table.table, table.rows);
    }
    println!("  {:<20} {:>12} rows", "total", report.total_rows());
    let next: Vec<String> = (report.next_ids.iter())
        .map(|(table, id)| format!("{table} {id}"))
        .collect();
    println!("the next new ids: {}", next.join(", "));
}

/// How long a stopping server waits for open requests and the demo's reporters.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("fusebox: stopping");
}

fn print_listed(rows: &[auth::Listed]) {
    println!(
        "{:>5}  {:<8}  {:<30}  {:<8}",
        "id", "role", "name", "status"
    );
    for row in rows {
        let status = if row.revoked_ms.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!(
            "{:>5}  {:<8}  {:<30}  {:<8}",
            row.id, row.role, row.name, status
        );
    }
}

/// There are no default credentials; a server without an admin says how to create one.
async fn say_how_to_get_in(
    running: &server::RunningServer,
    args: &ServeArgs,
) -> anyhow::Result<()> {
    if !auth::has_admin(&running.state.store).await? {
        println!(
            "No admin exists yet. Create the first one with:\n  fusebox users add NAME --admin --database {}",
            args.database_shown()
        );
    }
    if !args.anonymous_viewer {
        println!(
            "Reading needs a viewer or admin token (start with --anonymous-viewer to allow anyone to read)."
        );
    }
    println!("Services report with an ingest key: fusebox keys create --service NAME");
    Ok(())
}
