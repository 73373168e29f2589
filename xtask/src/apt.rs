//! Installing Debian packages that a step needs, only when they are missing, and saying so.

use std::process::Command;

use anyhow::bail;

use crate::{describe, step};

/// True when dpkg reports the package as installed.
pub fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|output| {
            output.status.success()
                && String::from_utf8_lossy(&output.stdout).contains("install ok installed")
        })
        .unwrap_or(false)
}

/// Installs whichever of `packages` are missing, explaining `why`.
///
/// A first failure is retried after `apt-get update`, since a machine's package lists may be stale.
pub fn ensure_installed(packages: &[&str], why: &str) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| !is_installed(package))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages {} with apt-get ({why})",
        missing.join(" ")
    ));
    if apt_get(&["install", "-y"], &missing) {
        return Ok(());
    }
    step("apt-get install failed; refreshing the package lists with apt-get update and retrying");
    if !apt_get(&["update"], &[]) {
        bail!("apt-get update failed (is this run as root, with the Debian mirror reachable?)");
    }
    if !apt_get(&["install", "-y"], &missing) {
        bail!(
            "could not install {} with apt-get (is this run as root?)",
            missing.join(" ")
        );
    }
    Ok(())
}

fn apt_get(args: &[&str], packages: &[&str]) -> bool {
    let mut command = Command::new("apt-get");
    command
        .args(args)
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    eprintln!("    $ {}", describe(&command));
    command
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}
