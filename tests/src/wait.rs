//! Waiting in tests: poll a check until it holds, with a deadline and a message that says what
//! never happened. A test never sleeps and hopes.

use std::time::Duration;

/// How often [`wait_for`] polls.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `check` every [`POLL_EVERY`] until it gives a value, and panics with
/// "timed out after `deadline` waiting for `what`" once `deadline` has passed.
///
/// The deadline bounds the checks themselves too: one that hangs (a request never answered)
/// is cut off at the deadline like one that keeps saying no.
pub async fn wait_for<T>(
    what: &str,
    deadline: Duration,
    check: impl AsyncFnMut() -> Option<T>,
) -> T {
    wait_for_every(what, deadline, POLL_EVERY, check).await
}

/// [`wait_for`], polling every `every` (for checks that cost more than a read).
pub async fn wait_for_every<T>(
    what: &str,
    deadline: Duration,
    every: Duration,
    check: impl AsyncFnMut() -> Option<T>,
) -> T {
    poll_within(deadline, every, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting for {what}"))
}

/// Polls `check` every `every` until it gives a value, or `None` once `deadline` has passed,
/// for callers whose panic message needs more than a description (the last value seen).
pub async fn poll_within<T>(
    deadline: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(deadline, async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(every).await;
        }
    })
    .await
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_check_that_comes_true_gives_its_value() {
        let mut n_checks = 0;
        let value = wait_for("the third check", Duration::from_secs(1), async || {
            n_checks += 1;
            (n_checks == 3).then_some(n_checks)
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_never_holds_ends_at_the_deadline() {
        let started = tokio::time::Instant::now();
        let res = poll_within(Duration::from_secs(5), POLL_EVERY, async || None::<()>).await;
        assert_eq!(res, None);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_ends_at_the_deadline() {
        let res = poll_within(Duration::from_secs(5), POLL_EVERY, async || {
            std::future::pending::<Option<()>>().await
        })
        .await;
        assert_eq!(res, None);
    }
}
