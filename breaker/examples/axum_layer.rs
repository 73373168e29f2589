//! An axum service whose handler calls a downstream dependency through a breaker `Layer`.
//!
//! The downstream here is a `tower::service_fn` standing in for an HTTP client (a reqwest
//! call or a hyper client service); it fails once `payments_down` is set. After enough
//! failures the breaker opens and `/checkout` answers 503 at once, without calling it.
//!
//! `cargo run -p breaker --example axum_layer --features tower`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use breaker::layer::BreakerLayer;
use breaker::{CallError, Config, Registry, Window};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

/// What the handler calls: the payments dependency behind its breaker.
type Payments = BoxCloneSyncService<u64, String, CallError<String>>;

async fn checkout(State(payments): State<Payments>) -> (StatusCode, String) {
    match payments.oneshot(42).await {
        Ok(receipt) => (StatusCode::OK, receipt),
        Err(CallError::Rejected(rejected)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("payments unavailable ({rejected})"),
        ),
        Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::new();
    let config = Config::builder()
        .failure_rate_threshold(0.5)
        .window(Window::Count(20))
        .minimum_calls(5)
        .wait_duration(Duration::from_secs(30))
        .build()?;
    let breaker = registry.get_or_create("payments", config);

    let payments_down = Arc::new(AtomicBool::new(false));
    let down = payments_down.clone();
    let payments: Payments = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(BreakerLayer::new(breaker.clone()))
            .service_fn(move |order: u64| {
                let down = down.load(Ordering::Relaxed);
                async move {
                    if down {
                        Err("connection refused".to_owned())
                    } else {
                        Ok(format!("receipt for order {order}"))
                    }
                }
            }),
    );
    let app = axum::Router::new()
        .route("/checkout", get(checkout))
        .with_state(payments);

    for round in 0..12 {
        if round == 3 {
            println!("-- payments goes down");
            payments_down.store(true, Ordering::Relaxed);
        }
        let request = Request::get("/checkout").body(axum::body::Body::empty())?;
        let response = app.clone().oneshot(request).await?;
        println!(
            "request {round:>2}: {} (breaker {:?})",
            response.status(),
            breaker.state()
        );
    }
    Ok(())
}
