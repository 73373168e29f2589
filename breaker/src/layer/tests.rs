//! Tests of the tower layer.

use std::sync::Arc;
use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt};

use super::*;
use crate::clock::ManualClock;
use crate::config::{Config, Window};
use crate::machine::State;

fn breaker() -> CircuitBreaker {
    let config = Config::builder()
        .window(Window::Count(10))
        .minimum_calls(3)
        .wait_duration(Duration::from_secs(10))
        .build()
        .unwrap();
    CircuitBreaker::with_clock("downstream", config, Arc::new(ManualClock::default()))
}

#[tokio::test]
async fn the_layer_records_outcomes_and_rejects_when_open() {
    let breaker = breaker();
    let service = ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker.clone()))
        .service_fn(|fail: bool| async move { if fail { Err("boom") } else { Ok(7) } });
    assert_eq!(service.clone().oneshot(false).await, Ok(7));
    assert_eq!(
        service.clone().oneshot(true).await,
        Err(CallError::Inner("boom"))
    );
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(
        service.clone().oneshot(true).await,
        Err(CallError::Inner("boom"))
    );
    assert_eq!(breaker.state(), State::Open, "2 failures of 3 calls");
    assert!(matches!(
        service.clone().oneshot(false).await,
        Err(CallError::Rejected(_))
    ));
    let counters = breaker.counters();
    assert_eq!(
        (counters.success, counters.failure, counters.rejected),
        (1, 2, 1)
    );
}

#[tokio::test]
async fn a_classifier_can_ignore_client_errors() {
    let breaker = breaker();
    let classify = |result: &Result<u16, ()>| match result {
        Ok(status) if *status >= 500 => Outcome::Failure,
        Ok(status) if *status >= 400 => Outcome::Ignored,
        Ok(_) => Outcome::Success,
        Err(()) => Outcome::Failure,
    };
    let service = ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker.clone()).with_classifier(classify))
        .service_fn(|status: u16| async move { Ok::<_, ()>(status) });
    for _ in 0..5 {
        assert_eq!(service.clone().oneshot(404).await, Ok(404));
    }
    assert_eq!(breaker.state(), State::Closed);
    service.clone().oneshot(503).await.unwrap();
    service.clone().oneshot(500).await.unwrap();
    service.clone().oneshot(502).await.unwrap();
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test]
async fn an_abandoned_call_counts_as_ignored() {
    let breaker = breaker();
    let service = ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker.clone()))
        .service_fn(|()| std::future::pending::<Result<(), ()>>());
    {
        let mut call = std::pin::pin!(service.clone().oneshot(()));
        assert!(futures_poll_once(call.as_mut()).await.is_none());
    }
    assert_eq!(
        breaker.counters().ignored,
        1,
        "the abandoned call counts as ignored"
    );
}

/// Polls a future once, returning its output if it was ready.
async fn futures_poll_once<F: Future + Unpin>(mut future: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut future).poll(cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
    })
    .await
}
