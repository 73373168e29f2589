//! [`Registry`]: named breakers, one per dependency, sharing a clock and listeners.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::breaker::CircuitBreaker;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::events::{Listener, Listeners};

/// Named breakers. Cloning is cheap and shares the registry.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    breakers: RwLock<BTreeMap<String, CircuitBreaker>>,
    clock: Arc<dyn Clock>,
    listeners: Arc<Listeners>,
}

impl Registry {
    /// An empty registry on the system clock.
    pub fn new() -> Registry {
        Registry::with_clock(Arc::new(SystemClock::new()))
    }

    /// An empty registry whose breakers all use `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Registry {
        Registry {
            inner: Arc::new(RegistryInner {
                breakers: RwLock::default(),
                clock,
                listeners: Arc::default(),
            }),
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The breaker named `name`, made with `config` if there is none yet. An existing
    /// breaker keeps its own config; use [`CircuitBreaker::set_config`] to change it.
    pub fn get_or_create(&self, name: &str, config: Config) -> CircuitBreaker {
        if let Some(breaker) = self.get(name) {
            return breaker;
        }
        let mut breakers = self
            .inner
            .breakers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        breakers
            .entry(name.to_owned())
            .or_insert_with(|| {
                CircuitBreaker::with_parts(
                    name.to_owned(),
                    config,
                    self.inner.clock.clone(),
                    self.inner.listeners.clone(),
                )
            })
            .clone()
    }

    pub fn get(&self, name: &str) -> Option<CircuitBreaker> {
        self.inner
            .breakers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .cloned()
    }

    /// Every breaker, ordered by name.
    pub fn breakers(&self) -> Vec<CircuitBreaker> {
        self.inner
            .breakers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Adds a listener to every breaker of the registry, present and future.
    pub fn add_listener(&self, listener: Arc<dyn Listener>) {
        self.inner.listeners.add(listener);
        for breaker in self.breakers() {
            breaker.refresh_flags();
        }
    }
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.breakers()).finish()
    }
}
