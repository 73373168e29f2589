//! A throwaway PostgreSQL cluster for a test, from Debian's binaries: `initdb` into a temporary
//! folder, `postgres` on a free loopback port, stopped and removed when dropped. Nothing assumes
//! a pre-installed or running service; `cargo xtask test` installs the `postgresql` package when
//! the binaries are missing (and sets `FUSEBOX_REQUIRE_POSTGRES=1`, so a missing one fails).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};

use crate::skip;

/// The variable that turns a missing PostgreSQL into a failure instead of a skip.
pub const REQUIRE_VAR: &str = "FUSEBOX_REQUIRE_POSTGRES";

/// A running cluster; dropping it stops the server and deletes its files.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PgCluster {
    /// Debian's newest PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`), if installed.
    pub fn bin_dir() -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    }

    /// For a test: a started cluster, or `None` after [`skip::skip`] said why.
    pub fn for_test() -> Option<PgCluster> {
        let Some(bin) = PgCluster::bin_dir() else {
            skip::skip(
                &skip::current_test(),
                REQUIRE_VAR,
                "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb); \
                 `cargo xtask test` installs Debian's postgresql package",
            );
            return None;
        };
        Some(PgCluster::start(&bin).expect("a throwaway PostgreSQL cluster starts"))
    }

    /// Initialises a cluster in a temporary folder and starts it on a free loopback port. A
    /// port found free may be taken by another test before the server binds it: then it tries
    /// again on another.
    pub fn start(bin: &Path) -> anyhow::Result<PgCluster> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match PgCluster::start_once(bin) {
                Err(err) if attempt < 3 => eprintln!("PostgreSQL did not start ({err:#}); again"),
                result => return result,
            }
        }
    }

    fn start_once(bin: &Path) -> anyhow::Result<PgCluster> {
        let dir = tempfile::Builder::new().prefix("fusebox-pg-").tempdir()?;
        // initdb refuses to run as root: the cluster belongs to the postgres user then.
        let as_root = is_root();
        if as_root {
            run(Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        let port = free_port()?;
        let cluster = PgCluster {
            bin: bin.to_path_buf(),
            dir,
            port,
        };
        cluster.run_tool(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        // Loopback TCP only; the socket folder is the temporary one; durability is not what a
        // throwaway cluster is for.
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            path_str(cluster.dir.path())?
        );
        let log = cluster.dir.path().join("server.log");
        cluster.run_tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-o",
                &options,
                "-l",
                path_str(&log)?,
                "-w",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    /// The URL of database `name` (the cluster's own `postgres` database exists from the start).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        self.run_tool(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        )?;
        Ok(self.url(name))
    }

    /// Runs one of the cluster's binaries, as the postgres user when this process is root.
    fn run_tool(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = self.bin.join(tool);
        let mut command = if is_root() {
            let mut su = Command::new("runuser");
            su.args(["-u", "postgres", "--"]).arg(&program);
            su
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(self.dir.path());
        run(&mut command).with_context(|| format!("{tool} failed"))
    }
}

/// The cluster a test process's [`crate::TestServer`]s share on PostgreSQL, started by the
/// first of them and stopped when the process exits.
static SHARED: Mutex<Option<PgCluster>> = Mutex::new(None);

/// For a test that runs on PostgreSQL whichever database the suite runs on: a fresh
/// database of [`shared_database`], or `None` after [`skip::skip`] said why (no binaries).
pub fn database_for_test() -> Option<String> {
    if PgCluster::bin_dir().is_none() {
        skip::skip(
            &skip::current_test(),
            REQUIRE_VAR,
            "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb)",
        );
        return None;
    }
    Some(shared_database().expect("a database in the throwaway PostgreSQL cluster"))
}

/// A fresh, empty database in the process's shared cluster (started on first use); its URL.
///
/// Each server gets its own database, so tests stay as independent as with a SQLite file
/// each, while the cluster's start (about 2 s) is paid once per test process. Without
/// PostgreSQL's binaries this fails: a run that asks for PostgreSQL must have it.
pub fn shared_database() -> anyhow::Result<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if shared.is_none() {
        let bin = PgCluster::bin_dir().context(
            "FUSEBOX_TEST_DATABASE=postgres but PostgreSQL is not installed \
             (/usr/lib/postgresql/*/bin/initdb); `cargo xtask test` installs it",
        )?;
        *shared = Some(PgCluster::start(&bin)?);
        // libtest ends the process with `exit`, which runs no destructor of a static: stop
        // the cluster from an exit handler instead.
        extern "C" fn stop_shared() {
            let cluster = SHARED
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            drop(cluster);
        }
        // SAFETY: registers a plain function without arguments, as `atexit` expects.
        unsafe { libc::atexit(stop_shared) };
    }
    let cluster = shared.as_ref().expect("started above");
    let name = format!(
        "fusebox_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    cluster.create_database(&name)
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        if let Ok(data) = path_str(&data) {
            let _ = self.run_tool("pg_ctl", &["-D", data, "-m", "immediate", "-w", "stop"]);
        }
    }
}

fn is_root() -> bool {
    // The effective user id, as `id -u` prints it.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
