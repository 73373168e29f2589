//! `cargo xtask build-ui`: the dashboard's wasm bundle, JS glue and static files in `frontend/dist/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::route::{self, Route};
use crate::{step, workspace_root};

/// The name of the generated files: `fusebox_frontend.js` and `fusebox_frontend_bg.wasm`.
const OUT_NAME: &str = "fusebox_frontend";
/// Hand-written files copied as they are from `frontend/` into `dist/`.
const STATIC_FILES: [&str; 3] = ["index.html", "main.js", "style.css"];
/// What a release bundle (wasm plus JS glue) may weigh.
const BUDGET_RAW_BYTES: u64 = 2 * 1024 * 1024;
const BUDGET_GZIP_BYTES: u64 = 600 * 1024;

pub struct Options {
    pub release: bool,
}

/// Builds the dashboard and returns the absolute path of the dist folder.
pub fn build_ui(options: &Options) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    check_bindgen_version(&root)?;

    let choice = route::choose()?;
    step(&format!(
        "wasm route: {} ({})",
        choice.route.name(),
        choice.reason
    ));

    let (profile, profile_dir) = if options.release {
        ("wasm-release", "wasm-release")
    } else {
        ("dev", "debug")
    };
    step(&format!(
        "building `frontend` for {} (profile {profile})",
        route::WASM_TARGET
    ));
    let started = Instant::now();
    crate::run_command(&mut choice.route.cargo_build(&root, "frontend", profile))?;
    eprintln!(
        "    wasm build took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let wasm = choice
        .route
        .target_dir(&root)
        .join(route::WASM_TARGET)
        .join(profile_dir)
        .join("frontend.wasm");
    let dist = root.join("frontend").join("dist");
    std::fs::create_dir_all(&dist)
        .with_context(|| format!("could not create {}", dist.display()))?;

    step("generating the JS glue with wasm-bindgen");
    let started = Instant::now();
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .out_name(OUT_NAME)
        .web(true)?
        // The default (true) leaves `init()` without the wasm file's URL, and the page fails with
        // "Argument 0 must be a buffer source".
        .omit_default_module_path(false)
        .typescript(false)
        .debug(!options.release)
        .keep_debug(!options.release)
        // Function names are a megabyte of a release bundle; whether a toolchain's linker already
        // dropped them differs between routes, so drop them here for every route.
        .remove_name_section(options.release)
        .remove_producers_section(options.release)
        .generate(&dist)
        .with_context(|| format!("wasm-bindgen failed on {}", wasm.display()))?;
    eprintln!(
        "    wasm-bindgen took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    for name in STATIC_FILES {
        let from = root.join("frontend").join(name);
        std::fs::copy(&from, dist.join(name))
            .with_context(|| format!("could not copy {}", from.display()))?;
    }

    report_size(&dist, options.release, choice.route)?;
    step(&format!("dashboard ready in {}", dist.display()));
    Ok(dist)
}

/// Fails early when the glue generator and the runtime crate in Cargo.lock disagree.
fn check_bindgen_version(root: &Path) -> anyhow::Result<()> {
    let lock =
        std::fs::read_to_string(root.join("Cargo.lock")).context("could not read Cargo.lock")?;
    let runtime = locked_version(&lock, "wasm-bindgen");
    let generator = locked_version(&lock, "wasm-bindgen-cli-support");
    match (runtime, generator) {
        (Some(runtime), Some(generator)) if runtime == generator => Ok(()),
        (runtime, generator) => bail!(
            "Cargo.lock has wasm-bindgen {runtime:?} but wasm-bindgen-cli-support {generator:?}; \
             pin xtask's wasm-bindgen-cli-support with `=` to the wasm-bindgen version"
        ),
    }
}

/// The version of `package` in a Cargo.lock, when it appears once.
fn locked_version<'a>(lock: &'a str, package: &str) -> Option<&'a str> {
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    let end = start + lock[start..].find('"')?;
    Some(&lock[start..end])
}

fn report_size(dist: &Path, release: bool, route: Route) -> anyhow::Result<()> {
    let mut total_raw = 0;
    let mut total_gzip = 0;
    for name in [format!("{OUT_NAME}_bg.wasm"), format!("{OUT_NAME}.js")] {
        let bytes =
            std::fs::read(dist.join(&name)).with_context(|| format!("could not read {name}"))?;
        let gzip = gzip_len(&bytes)?;
        eprintln!(
            "    {name}: {} raw, {} gzip",
            human(bytes.len() as u64),
            human(gzip)
        );
        total_raw += bytes.len() as u64;
        total_gzip += gzip;
    }
    eprintln!(
        "    bundle ({}, {} route): {} raw, {} gzip (budget {} raw, {} gzip)",
        if release { "release" } else { "debug" },
        route.name(),
        human(total_raw),
        human(total_gzip),
        human(BUDGET_RAW_BYTES),
        human(BUDGET_GZIP_BYTES),
    );
    // Debug bundles carry debug info and are not shipped; only a release bundle is held to the budget.
    if release && (total_raw > BUDGET_RAW_BYTES || total_gzip > BUDGET_GZIP_BYTES) {
        bail!("the release bundle is over budget");
    }
    Ok(())
}

fn gzip_len(bytes: &[u8]) -> anyhow::Result<u64> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len() as u64)
}

fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.2} MiB ({bytes} B)", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB ({bytes} B)", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::locked_version;

    #[test]
    fn locked_version_reads_exact_package() {
        let lock = "[[package]]\nname = \"wasm-bindgen-macro\"\nversion = \"0.2.1\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(locked_version(lock, "wasm-bindgen"), Some("0.2.130"));
        assert_eq!(locked_version(lock, "wasm-bindgen-macro"), Some("0.2.1"));
        assert_eq!(locked_version(lock, "js-sys"), None);
    }
}
