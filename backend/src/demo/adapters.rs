//! The demo's Node.js and Python services: `adapters/opossum/demo/service.js` (opossum breakers
//! `stripe` and `ledger` of `node-shop`) and `adapters/pybreaker/demo/service.py` (pybreaker
//! breakers `mailer` and `inventory` of `py-shop`) as child processes, each with an ingest key
//! and stored configs its library can run, when Node.js (with opossum installed in the adapter)
//! and a Python with pybreaker are present. [`locate`] says why one is left out.
//!
//! The adapters' folder is `FUSEBOX_ADAPTERS_DIR`, else the one beside this crate; the Python is
//! `FUSEBOX_DEMO_PYTHON` (`cargo xtask demo` points it at a virtual environment with pybreaker),
//! else `python3`. A service stops, flushing what it holds, when its standard input closes.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use protocol::{BreakerConfig, WaitConfig, WindowConfig};

use crate::auth;
use crate::configs::{self, NewVersion};
use crate::server::RunningServer;

/// The Node.js service and its breakers.
pub const NODE_SERVICE: (&str, [&str; 2]) = ("node-shop", ["stripe", "ledger"]);
/// The Python service and its breakers.
pub const PYTHON_SERVICE: (&str, [&str; 2]) = ("py-shop", ["mailer", "inventory"]);

/// How long the adapters' reporters flush on close at most (`shutdownTimeoutMs` of
/// fusebox-opossum, `shutdown_timeout_s` of fusebox-pybreaker).
const ADAPTER_FLUSH: Duration = Duration::from_secs(5);

/// How long a service may take to flush and exit once asked to stop: the adapters' flush, and
/// a second to exit after it.
const STOP_GRACE: Duration = ADAPTER_FLUSH.saturating_add(Duration::from_secs(1));

/// What the demo can run besides its Rust services.
pub struct Runtimes {
    pub adapters_dir: PathBuf,
    /// `Ok` when `node` runs and opossum is installed in the adapter.
    pub node: Result<(), String>,
    /// The Python that imports pybreaker, or why there is none.
    pub python: Result<PathBuf, String>,
}

/// The running services; [`AdapterServices::shutdown`] stops them.
pub struct AdapterServices {
    children: Vec<(Child, Option<ChildStdin>)>,
}

/// Finds Node.js with opossum and a Python with pybreaker.
pub fn locate() -> Runtimes {
    let adapters_dir = std::env::var_os("FUSEBOX_ADAPTERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../adapters"));
    let node = if !adapters_dir.join("opossum/demo/service.js").exists() {
        Err(format!("no {}", adapters_dir.join("opossum").display()))
    } else if !runs(Command::new("node").arg("--version")) {
        Err("`node` is not installed".to_string())
    } else if !adapters_dir
        .join("opossum/node_modules/opossum/package.json")
        .exists()
    {
        Err(format!(
            "opossum is not installed in {} (npm install there, or run `cargo xtask demo`)",
            adapters_dir.join("opossum").display()
        ))
    } else {
        Ok(())
    };
    let program = std::env::var_os("FUSEBOX_DEMO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let python = if !adapters_dir.join("pybreaker/demo/service.py").exists() {
        Err(format!("no {}", adapters_dir.join("pybreaker").display()))
    } else if !runs(Command::new(&program).arg("--version")) {
        Err(format!("`{}` is not installed", program.display()))
    } else if !runs(Command::new(&program).args(["-c", "import pybreaker"])) {
        Err(format!(
            "`{}` cannot import pybreaker (pip install pybreaker, or run `cargo xtask demo`)",
            program.display()
        ))
    } else {
        Ok(program)
    };
    Runtimes {
        adapters_dir,
        node,
        python,
    }
}

/// Starts the services `runtimes` can run against `server`, each with a key and stored configs.
pub async fn start(server: &RunningServer, runtimes: &Runtimes) -> anyhow::Result<AdapterServices> {
    let mut children = Vec::new();
    if runtimes.node.is_ok() {
        let (service, breakers) = NODE_SERVICE;
        save_configs(server, service, &breakers, opossum_config()).await?;
        let mut command = Command::new("node");
        command.arg(runtimes.adapters_dir.join("opossum/demo/service.js"));
        children.push(spawn(server, service, "node-1", command).await?);
    }
    if let Ok(python) = &runtimes.python {
        let (service, breakers) = PYTHON_SERVICE;
        save_configs(server, service, &breakers, pybreaker_config()).await?;
        let mut command = Command::new(python);
        command.arg(runtimes.adapters_dir.join("pybreaker/demo/service.py"));
        children.push(spawn(server, service, "py-1", command).await?);
    }
    Ok(AdapterServices { children })
}

impl AdapterServices {
    /// Closes each service's standard input (it flushes and exits), and kills one that has not
    /// exited within [`STOP_GRACE`].
    pub async fn shutdown(mut self) {
        for (_, stdin) in &mut self.children {
            drop(stdin.take());
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for (child, _) in &mut self.children {
            while matches!(child.try_wait(), Ok(None)) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for AdapterServices {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn spawn(
    server: &RunningServer,
    service: &str,
    instance: &str,
    mut command: Command,
) -> anyhow::Result<(Child, Option<ChildStdin>)> {
    let key = auth::create_api_key(&server.state.store, service).await?;
    let mut child = command
        .env("FUSEBOX_URL", server.url())
        .env("FUSEBOX_KEY", &key.secret)
        .env("FUSEBOX_SERVICE", service)
        .env("FUSEBOX_INSTANCE", instance)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| anyhow::anyhow!("cannot start the {service} service: {err}"))?;
    let stdin = child.stdin.take();
    Ok((child, stdin))
}

/// Stores `config` for each breaker, as the service's owner would, so admins can change it.
async fn save_configs(
    server: &RunningServer,
    service: &str,
    breakers: &[&str],
    config: BreakerConfig,
) -> anyhow::Result<()> {
    for breaker in breakers {
        configs::save_version(
            &server.state.store,
            &server.state.configs,
            NewVersion {
                service,
                breaker,
                config: config.clone(),
                actor: "demo",
                action: "config",
                reason: "the demo's initial config".into(),
                ends_auto_change: None,
            },
            server.state.clock.now_ms(),
        )
        .await
        .map_err(|err| anyhow::anyhow!("cannot store the demo config: {err}"))?;
    }
    Ok(())
}

/// What the demo's opossum breakers run: its 10 s window, 10 calls before judging, one probe.
pub fn opossum_config() -> BreakerConfig {
    BreakerConfig {
        failure_rate_threshold: Some(0.5),
        window: WindowConfig::Time { seconds: 10 },
        consecutive_failures: None,
        minimum_calls: 10,
        call_timeout_ms: Some(1_000),
        ..pybreaker_config()
    }
}

/// What the demo's pybreaker breakers run: five failures in a row, 5 s open, one good probe.
pub fn pybreaker_config() -> BreakerConfig {
    BreakerConfig {
        version: 0,
        failure_rate_threshold: None,
        slow_call_rate_threshold: None,
        slow_call_duration_ms: None,
        consecutive_failures: Some(5),
        window: WindowConfig::Count { calls: 10 },
        minimum_calls: 5,
        wait: WaitConfig::Fixed { ms: 5_000 },
        half_open_probes: 1,
        half_open_successes: 1,
        half_open_rule: Default::default(),
        half_open_max_wait_ms: None,
        call_timeout_ms: None,
        mode: None,
    }
}

fn runs(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
