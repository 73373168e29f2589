//! Ingest: the routes that take the services' reports, the single writer that commits them,
//! the in-memory fleet it keeps current, the hub it publishes to, and the cardinality limits it
//! enforces.

pub mod dirty;
pub mod fleet;
pub mod http;
pub mod hub;
pub mod journal;
pub mod limits;
pub mod store;
pub mod writer;

pub use writer::{IngestQueue, spawn_writer};

use std::sync::{Arc, Mutex};

use fleet::{FastMap, FastSet};

/// Names other replicas created (PostgreSQL only): the cluster's listener adds each breaker
/// (with its id) and instance it hears of, and the writer takes them in before its next group,
/// so the limits count the names of every replica, not its own only.
#[derive(Clone, Default)]
pub struct LearnedNames {
    names: Arc<Mutex<Vec<LearnedName>>>,
}

/// (service, breaker, breaker id, instance).
type LearnedName = (String, String, i64, String);

impl LearnedNames {
    /// A breaker (service, name, id) with an instance, seen on another replica.
    pub fn add(&self, service: &str, breaker: &str, breaker_id: i64, instance: &str) {
        let mut names = self.names.lock().expect("learned names lock poisoned");
        names.push((service.into(), breaker.into(), breaker_id, instance.into()));
    }

    /// Moves what was learned into the writer's maps; whether any name was new.
    pub fn take_into(
        &self,
        breakers: &mut FastMap<String, FastMap<String, i64>>,
        instances: &mut FastMap<String, FastSet<String>>,
    ) -> bool {
        let learned = std::mem::take(&mut *self.names.lock().expect("learned names lock poisoned"));
        let mut new = false;
        for (service, breaker, id, instance) in learned {
            let known = breakers.entry(service.clone()).or_default();
            new |= known.insert(breaker, id).is_none();
            new |= instances.entry(service).or_default().insert(instance);
        }
        new
    }
}
