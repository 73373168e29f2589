//! A tower [`Layer`] that puts a circuit breaker in front of any [`Service`].
//!
//! The service's future records the outcome when it completes (classified by a
//! [`Classify`]); a call the breaker rejects completes at once with
//! [`CallError::Rejected`] without reaching the inner service. Readiness is the inner
//! service's: the breaker decides per call, so an Open breaker fails fast instead of making
//! callers wait. Per-call timeouts belong to an inner `tower::timeout` layer whose `Elapsed`
//! error the classifier may call [`Outcome::Timeout`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::breaker::{CallError, CircuitBreaker, OwnedPermit};
use crate::machine::Outcome;

/// Decides whether a service's result is a success, a failure or ignored.
pub trait Classify<T, E> {
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

/// `Ok` is a success, `Err` a failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassifyResult;

/// Wraps services in a [`BreakerService`] sharing one breaker.
#[derive(Clone, Debug)]
pub struct BreakerLayer<C = ClassifyResult> {
    breaker: CircuitBreaker,
    classifier: C,
}

/// A service behind a circuit breaker.
#[derive(Clone, Debug)]
pub struct BreakerService<S, C = ClassifyResult> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
}

pin_project_lite::pin_project! {
    /// The future of a [`BreakerService`] call.
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: Option<F>,
        permit: Option<OwnedPermit>,
        rejected: Option<crate::breaker::Rejected>,
        classifier: C,
    }
}

// === impl Classify ===

impl<T, E> Classify<T, E> for ClassifyResult {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        crate::breaker::classify_result(result)
    }
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

// === impl BreakerLayer ===

impl BreakerLayer {
    pub fn new(breaker: CircuitBreaker) -> BreakerLayer {
        BreakerLayer {
            breaker,
            classifier: ClassifyResult,
        }
    }
}

impl<C> BreakerLayer<C> {
    /// The same layer with another classifier.
    pub fn with_classifier<D>(self, classifier: D) -> BreakerLayer<D> {
        BreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for BreakerLayer<C> {
    type Service = BreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

// === impl BreakerService ===

impl<S, C> BreakerService<S, C> {
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C, Request> Service<Request> for BreakerService<S, C>
where
    S: Service<Request>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(CallError::Inner)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => ResponseFuture {
                inner: Some(self.inner.call(request)),
                permit: Some(permit),
                rejected: None,
                classifier: self.classifier.clone(),
            },
            Err(rejected) => ResponseFuture {
                inner: None,
                permit: None,
                rejected: Some(rejected),
                classifier: self.classifier.clone(),
            },
        }
    }
}

// === impl ResponseFuture ===

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, CallError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            let rejected = this.rejected.take().expect("polled after completion");
            return Poll::Ready(Err(CallError::Rejected(rejected)));
        };
        let result = std::task::ready!(inner.poll(cx));
        if let Some(permit) = this.permit.take() {
            permit.finish(this.classifier.classify(&result));
        }
        Poll::Ready(result.map_err(CallError::Inner))
    }
}

#[cfg(test)]
mod tests;
