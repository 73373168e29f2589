//! Skipping a test that cannot run here, loudly and on record.
//!
//! A test that returns early passes in libtest's eyes, so a plain `cargo test` would be green
//! while testing nothing. [`skip`] therefore does three things instead of a quiet `return`:
//! - it fails the test when the environment variable that requires it is `1`
//!   (`FUSEBOX_REQUIRE_BROWSER`, `FUSEBOX_REQUIRE_ALERTMANAGER`, `FUSEBOX_REQUIRE_POSTGRES`;
//!   `cargo xtask test` sets them all);
//! - it writes `SKIPPED <test>: <reason>` straight to the process's stderr, past libtest's
//!   output capture (which would hide `eprintln!` of a passing test);
//! - it appends `<test>: <reason>` to the file named by [`SKIP_LOG_VAR`] when that is set, so
//!   `cargo xtask test` can fail the run and list every test that skipped.

use std::io::Write;
use std::path::Path;

/// The environment variable naming the file each skip is appended to.
pub const SKIP_LOG_VAR: &str = "FUSEBOX_SKIP_LOG";

/// Marks `test` skipped for `reason`, or fails it when `require_var` is `1`.
///
/// The caller returns from the test right after.
pub fn skip(test: &str, require_var: &str, reason: &str) {
    skip_in(
        &|name| std::env::var(name).ok(),
        // The stream itself, not `eprintln!`, whose output libtest hides for a passing test.
        &mut std::io::stderr().lock(),
        test,
        require_var,
        reason,
    );
}

/// The running test's name as libtest prints it (`browser::tile_turns_open_live_without_reload`):
/// libtest runs each test on a thread named after it.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("an unnamed test")
        .to_string()
}

/// [`skip`] with the environment read through `env` and the line written to `stderr`, so
/// tests can feed it a map and read what it said.
fn skip_in(
    env: &dyn Fn(&str) -> Option<String>,
    stderr: &mut dyn Write,
    test: &str,
    require_var: &str,
    reason: &str,
) {
    // One line per skip, whatever the reason says.
    let reason = reason.replace('\n', " ");
    if env(require_var).as_deref() == Some("1") {
        panic!("{require_var}=1 but {test} cannot run: {reason}");
    }
    let _ = writeln!(
        stderr,
        "SKIPPED {test}: {reason} (set {require_var}=1 to fail instead)"
    );
    if let Some(log) = env(SKIP_LOG_VAR) {
        record(Path::new(&log), test, &reason)
            .unwrap_or_else(|err| panic!("cannot record the skip of {test} in {log}: {err}"));
    }
}

/// Appends one line to the skip log; each skip is one small append, so tests running at once
/// (threads or processes) do not interleave within a line.
fn record(log: &Path, test: &str, reason: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    file.write_all(format!("{test}: {reason}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn each_skip_is_one_line_appended_to_the_log_and_said_on_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skipped.log");
        let env = env_of(&[(SKIP_LOG_VAR, log.to_str().unwrap())]);
        let mut stderr = Vec::new();
        skip_in(
            &env,
            &mut stderr,
            "browser::a",
            "FUSEBOX_REQUIRE_X",
            "no browser",
        );
        skip_in(
            &env,
            &mut stderr,
            "alerts::b",
            "FUSEBOX_REQUIRE_X",
            "missing:\n/usr/bin/y",
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "browser::a: no browser\nalerts::b: missing: /usr/bin/y\n"
        );
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            "SKIPPED browser::a: no browser (set FUSEBOX_REQUIRE_X=1 to fail instead)\n\
             SKIPPED alerts::b: missing: /usr/bin/y (set FUSEBOX_REQUIRE_X=1 to fail instead)\n"
        );
    }

    #[test]
    fn without_a_log_a_skip_only_speaks() {
        let mut stderr = Vec::new();
        skip_in(
            &env_of(&[]),
            &mut stderr,
            "browser::a",
            "FUSEBOX_REQUIRE_X",
            "no browser",
        );
        assert!(
            String::from_utf8(stderr)
                .unwrap()
                .starts_with("SKIPPED browser::a: no browser")
        );
    }

    #[test]
    fn a_required_test_fails_instead_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skipped.log");
        let env = env_of(&[
            (SKIP_LOG_VAR, log.to_str().unwrap()),
            ("FUSEBOX_REQUIRE_X", "1"),
        ]);
        let failed = std::panic::catch_unwind(|| {
            skip_in(
                &env,
                &mut Vec::new(),
                "browser::a",
                "FUSEBOX_REQUIRE_X",
                "no browser",
            )
        })
        .expect_err("a required test must fail");
        let message = failed.downcast_ref::<String>().unwrap();
        assert_eq!(
            message,
            "FUSEBOX_REQUIRE_X=1 but browser::a cannot run: no browser"
        );
        assert!(!log.exists());
    }

    #[test]
    fn the_current_test_is_named_after_its_thread() {
        assert_eq!(
            current_test(),
            "skip::tests::the_current_test_is_named_after_its_thread"
        );
    }
}
