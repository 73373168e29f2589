//! How the wasm32 standard library is obtained: rustup's target, or Debian's toolchain with build-std.
//!
//! The order is: rustup's `wasm32-unknown-unknown` target when its `libstd-*.rlib` is installed;
//! otherwise `rustup target add` (which cannot always download here); otherwise Debian's
//! `rustc-web`/`cargo-web` with the std sources from `rust-web-src`, rebuilding std with
//! `-Z build-std` into a target dir of its own. `FUSEBOX_WASM_ROUTE=rustup|debian` forces a route.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{apt, step};

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The Debian packages of the fallback route; without `lld-22` `/usr/bin/rust-lld` dangles.
const DEBIAN_PACKAGES: [&str; 4] = ["rustc-web", "cargo-web", "rust-web-src", "lld-22"];
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_STD_SOURCES: &str = "/usr/lib/rustlib/src/rust/library";
const DEBIAN_RUST_LLD: &str = "/usr/bin/rust-lld";

/// Variables that `cargo run` (through rustup) sets for xtask and that would make a nested Debian
/// cargo call back into rustup's toolchain or misread its own package.
const SCRUBBED_VARS: [&str; 13] = [
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_MAKEFLAGS",
    "CARGO_TARGET_TMPDIR",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// rustup's toolchain with its prebuilt wasm32 std.
    Rustup,
    /// Debian's rustc/cargo 1.9x rebuilding std from source.
    Debian,
}

/// The chosen route and, in a sentence, why.
pub struct Choice {
    pub route: Route,
    pub reason: String,
}

// === impl Route ===

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Rustup => "rustup",
            Route::Debian => "debian",
        }
    }

    /// The target dir of this route. Debian's std is built by another compiler, so its artifacts
    /// must never mix with rustup's in `target/`.
    pub fn target_dir(self, workspace_root: &Path) -> PathBuf {
        match self {
            Route::Rustup => workspace_root.join("target"),
            Route::Debian => workspace_root.join("target").join("wasm-debian"),
        }
    }

    /// A `cargo build` command for `package` on wasm32, environment prepared for this route.
    pub fn cargo_build(self, workspace_root: &Path, package: &str, profile: &str) -> Command {
        let mut command;
        match self {
            Route::Rustup => {
                command = Command::new(crate::cargo());
            }
            Route::Debian => {
                command = Command::new(DEBIAN_CARGO);
                for var in SCRUBBED_VARS {
                    command.env_remove(var);
                }
                // Whatever cargo exported about the xtask package itself is not for the nested build.
                for (key, _) in std::env::vars_os() {
                    if key.to_string_lossy().starts_with("CARGO_PKG_") {
                        command.env_remove(key);
                    }
                }
                command
                    .env("RUSTC", DEBIAN_RUSTC)
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("PATH", path_without_rustup_toolchains());
            }
        }
        command
            .current_dir(workspace_root)
            .args([
                "build",
                "-p",
                package,
                "--target",
                WASM_TARGET,
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(self.target_dir(workspace_root));
        if self == Route::Debian {
            command.args(["-Z", "build-std=std,panic_abort"]);
        }
        command
    }
}

/// Picks the route: forced by `FUSEBOX_WASM_ROUTE`, or the first that works, installing what it needs.
pub fn choose() -> anyhow::Result<Choice> {
    let forced = std::env::var("FUSEBOX_WASM_ROUTE")
        .ok()
        .filter(|value| !value.is_empty());
    match forced.as_deref() {
        Some("rustup") => {
            if let Some(libstd) = rustup_wasm_std()? {
                return Ok(Choice {
                    route: Route::Rustup,
                    reason: format!(
                        "forced by FUSEBOX_WASM_ROUTE=rustup; wasm32 std at {}",
                        libstd.display()
                    ),
                });
            }
            rustup_target_add()
                .context("FUSEBOX_WASM_ROUTE=rustup, but rustup has no wasm32 std")?;
            Ok(Choice {
                route: Route::Rustup,
                reason: "forced by FUSEBOX_WASM_ROUTE=rustup; `rustup target add` installed the wasm32 std".into(),
            })
        }
        Some("debian") => {
            prepare_debian()?;
            Ok(Choice {
                route: Route::Debian,
                reason: "forced by FUSEBOX_WASM_ROUTE=debian".into(),
            })
        }
        Some(other) => bail!("FUSEBOX_WASM_ROUTE must be `rustup` or `debian`, not `{other}`"),
        None => {
            if let Some(libstd) = rustup_wasm_std()? {
                return Ok(Choice {
                    route: Route::Rustup,
                    reason: format!("rustup's wasm32 std is installed ({})", libstd.display()),
                });
            }
            step("rustup has no wasm32 std; trying `rustup target add wasm32-unknown-unknown`");
            match rustup_target_add() {
                Ok(()) => Ok(Choice {
                    route: Route::Rustup,
                    reason: "`rustup target add` installed the wasm32 std".into(),
                }),
                Err(err) => {
                    step(&format!(
                        "{err:#}; falling back to Debian's toolchain with build-std"
                    ));
                    prepare_debian()?;
                    Ok(Choice {
                        route: Route::Debian,
                        reason: format!(
                            "rustup's wasm32 std is missing and could not be added ({err:#})"
                        ),
                    })
                }
            }
        }
    }
}

/// The path of rustup's wasm32 `libstd-*.rlib`, if installed.
fn rustup_wasm_std() -> anyhow::Result<Option<PathBuf>> {
    let output = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .context("could not run `rustc --print target-libdir`")?;
    if !output.status.success() {
        return Ok(None);
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let Ok(entries) = std::fs::read_dir(&libdir) else {
        return Ok(None);
    };
    Ok(entries.flatten().map(|entry| entry.path()).find(|path| {
        let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
        name.starts_with("libstd-") && name.ends_with(".rlib")
    }))
}

fn rustup_target_add() -> anyhow::Result<()> {
    let mut command = Command::new("rustup");
    command.args(["target", "add", WASM_TARGET]);
    crate::run_command(&mut command).context("`rustup target add` failed")?;
    match rustup_wasm_std()? {
        Some(_) => Ok(()),
        None => bail!("`rustup target add` succeeded but no wasm32 libstd is installed"),
    }
}

/// Installs Debian's toolchain when missing and checks the pieces build-std needs.
fn prepare_debian() -> anyhow::Result<()> {
    apt::ensure_installed(
        &DEBIAN_PACKAGES,
        "Debian's Rust toolchain, to build std for wasm32",
    )?;
    for (path, what) in [
        (DEBIAN_CARGO, "cargo-web"),
        (DEBIAN_RUSTC, "rustc-web"),
        (DEBIAN_STD_SOURCES, "rust-web-src"),
        (DEBIAN_RUST_LLD, "lld-22"),
    ] {
        // `exists` follows links, so a dangling `rust-lld` counts as missing.
        if !Path::new(path).exists() {
            bail!("{path} is missing although the Debian packages are installed (from {what})");
        }
    }
    let version = Command::new(DEBIAN_RUSTC)
        .arg("--version")
        .output()
        .context("could not run /usr/bin/rustc")?;
    eprintln!(
        "    Debian toolchain: {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    Ok(())
}

/// PATH without rustup's per-toolchain bin folders, which rustup prepends for `cargo run`.
fn path_without_rustup_toolchains() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| !dir.to_string_lossy().contains(".rustup/toolchains"))
        .collect();
    std::env::join_paths(kept).unwrap_or(path)
}
