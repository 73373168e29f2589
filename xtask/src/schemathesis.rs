//! `cargo xtask schemathesis` (and the last step of `cargo xtask test`): schemathesis, pinned,
//! against a real `fusebox serve` on loopback with an empty SQLite file, once as an admin and
//! once as a service's ingest key, with every check on (`tests/schemathesis/schemathesis.toml`
//! says which operations skip one check, and why). Any failure, error or server panic fails it.
//!
//! schemathesis is installed from PyPI into a virtual environment under the target folder, so a
//! fresh machine needs only Python 3 and the network.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{build_fusebox, describe, run_command, step, target_dir, workspace_root};

/// The schemathesis release the suite is pinned to.
const VERSION: &str = "4.32.5";
/// Generated cases per operation and phase, unless `FUSEBOX_SCHEMATHESIS_EXAMPLES` says otherwise.
const DEFAULT_EXAMPLES: u32 = 50;
/// The generation seed, unless `FUSEBOX_SCHEMATHESIS_SEED` says otherwise: a fixed seed makes a
/// failure reproducible; a run with other seeds explores further.
const DEFAULT_SEED: &str = "20261201";

pub struct Options {
    pub examples: u32,
    pub seed: String,
}

impl Options {
    pub fn from_env() -> anyhow::Result<Options> {
        let examples = match std::env::var("FUSEBOX_SCHEMATHESIS_EXAMPLES") {
            Ok(text) => text
                .parse()
                .with_context(|| format!("FUSEBOX_SCHEMATHESIS_EXAMPLES={text:?} is no count"))?,
            Err(_) => DEFAULT_EXAMPLES,
        };
        let seed =
            std::env::var("FUSEBOX_SCHEMATHESIS_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
        Ok(Options { examples, seed })
    }
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let schemathesis = install()?;
    let fusebox = build_fusebox("the server for the schemathesis run")?;
    let work = target_dir().join("schemathesis-run");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("cannot clear {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let database = format!("sqlite://{}", work.join("fusebox.db").display());
    let admin = secret(
        &fusebox,
        &database,
        &["users", "add", "schemathesis", "--admin"],
    )?;
    let key = secret(
        &fusebox,
        &database,
        &["keys", "create", "--service", "checkout"],
    )?;

    let port = free_port()?;
    let log_path = work.join("server.log");
    step(&format!(
        "starting `fusebox serve` on 127.0.0.1:{port} (log: {})",
        log_path.display()
    ));
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(&fusebox);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--database", &database])
        // schemathesis sends thousands of requests with wrong credentials on purpose (its
        // `ignored_auth` check); the throttle itself is tested in `web_security.rs`.
        .args(["--failed-auth-per-minute", "1000000"])
        .stdout(log.try_clone()?)
        .stderr(log);
    eprintln!("    $ {}", describe(&command));
    let server = Server(command.spawn().context("cannot start fusebox serve")?);
    wait_for_port(port, Duration::from_secs(60))?;

    let spec = format!("http://127.0.0.1:{port}/api/openapi.json");
    let config = workspace_root().join("tests/schemathesis/schemathesis.toml");
    let mut failed = Vec::new();
    for (who, secret) in [("an admin", &admin), ("an ingest key", &key)] {
        step(&format!(
            "schemathesis {VERSION} as {who}: every check, {} cases per operation and phase, seed {}",
            options.examples, options.seed
        ));
        let mut command = Command::new(&schemathesis);
        command
            // It keeps a cache in `.schemathesis/` of the folder it runs in.
            .current_dir(&work)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &spec, "--workers", "1"])
            .args(["--max-examples", &options.examples.to_string()])
            .args(["--seed", &options.seed])
            .args(["--header", &format!("Authorization: Bearer {secret}")]);
        if run_command(&mut command).is_err() {
            failed.push(who);
        }
    }
    drop(server);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if log.contains("panicked") {
        bail!(
            "the server panicked during the schemathesis run; see {}",
            log_path.display()
        );
    }
    if !failed.is_empty() {
        bail!("schemathesis found failures as {}", failed.join(" and "));
    }
    step("schemathesis: no failures");
    Ok(())
}

/// The `schemathesis` command of a virtual environment holding the pinned release, made once.
fn install() -> anyhow::Result<PathBuf> {
    let venv = target_dir().join(format!("schemathesis-{VERSION}"));
    let program = venv.join("bin").join("schemathesis");
    if program.exists() {
        return Ok(program);
    }
    step(&format!(
        "installing schemathesis {VERSION} from PyPI into {}",
        venv.display()
    ));
    run_command(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run_command(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("schemathesis=={VERSION}")),
    )?;
    Ok(program)
}

/// Runs a `fusebox` command that prints a secret on its last line, and returns the secret.
fn secret(fusebox: &Path, database: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(fusebox)
        .args(args)
        .args(["--database", database])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run fusebox {}", args.join(" ")))?;
    if !output.status.success() {
        bail!("`fusebox {}` failed ({})", args.join(" "), output.status);
    }
    let text = String::from_utf8(output.stdout)?;
    text.lines()
        .map(str::trim)
        .rfind(|line| line.starts_with("fbu_") || line.starts_with("fbk_"))
        .map(str::to_string)
        .with_context(|| format!("`fusebox {}` printed no secret", args.join(" ")))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Waits until the server accepts connections (it binds after migrating the database).
fn wait_for_port(port: u16, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        // A connection is enough: the listener is bound only once the server can answer.
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("fusebox serve did not listen on port {port} within {limit:?}")
}

/// The server process, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
