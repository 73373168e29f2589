//! [`AppState`]: what the handlers and background tasks share, built once by
//! [`crate::server::start`]. Each part is also a sub-state (`FromRef`), so a handler or helper
//! that needs one thing extracts or takes only that thing.

use std::sync::{Arc, RwLock};

use axum::extract::FromRef;

use crate::alerts::Alerts;
use crate::auth::code::SignInCodes;
use crate::auth::{CredentialCache, WebGuard};
use crate::configs::ConfigWatch;
use crate::ingest::IngestQueue;
use crate::ingest::fleet::Fleet;
use crate::ingest::hub::Hub;
use crate::ingest::limits::Limits;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::time::Clock;
use crate::tuning::engine_run::EngineRuns;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub fleet: SharedFleet,
    pub hub: Hub,
    pub ingest: IngestQueue,
    pub metrics: Arc<Metrics>,
    pub configs: Arc<ConfigWatch>,
    pub anonymous_viewer: bool,
    pub alerts: Alerts,
    pub credentials: Arc<CredentialCache>,
    pub web: Arc<WebGuard>,
    /// One-time sign-in codes not exchanged yet: none unless the demo issued one.
    pub sign_in_codes: Arc<SignInCodes>,
    /// Engine runs: their budget, and the flag that stops them all when the server stops.
    pub engine: EngineRuns,
    /// The limits: the writer enforces the cardinality ones at ingest; validation reads
    /// `max_calls_per_s`; config-status reports are held to the instance limit.
    pub limits: Limits,
    /// The time, for everything that stamps or compares it.
    pub clock: Clock,
}

/// The in-memory fleet, shared by the ingest writer (which writes it) and the read routes.
pub type SharedFleet = Arc<RwLock<Fleet>>;

macro_rules! sub_state {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $ty {
            fn from_ref(app: &AppState) -> $ty {
                app.$field.clone()
            }
        })*
    };
}

sub_state! {
    store: Store,
    fleet: SharedFleet,
    hub: Hub,
    ingest: IngestQueue,
    metrics: Arc<Metrics>,
    configs: Arc<ConfigWatch>,
    alerts: Alerts,
    credentials: Arc<CredentialCache>,
    web: Arc<WebGuard>,
    sign_in_codes: Arc<SignInCodes>,
    engine: EngineRuns,
    limits: Limits,
    clock: Clock,
}
