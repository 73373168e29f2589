//! Cardinality limits: how many services, breakers per service and instances per service the
//! server takes in, so that its memory (the [`crate::ingest::fleet::Fleet`], the writer's ids) and every
//! answer that lists the fleet stay bounded.
//!
//! The ingest writer enforces them (see [`crate::ingest::writer`]): it is the one task that creates breakers,
//! so it knows every name without a query, and checking there cannot race another batch. A
//! batch that would create a name beyond a limit is refused whole, nothing of it stored; names
//! that already exist are always accepted.
//!
//! The answer is a 422 `limit_exceeded`, not a 429: nothing about the request's rate is wrong,
//! and the same batch will be refused again until an operator raises the limit. 429 tells
//! clients (the breaker's reporter among them) to retry later, which would keep the batch
//! queued and retried forever; a 4xx other than 429 makes them drop it.

use std::fmt;

/// The limits, from the `[limits]` table of the settings file or the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_services: usize,
    pub max_breakers_per_service: usize,
    pub max_instances_per_service: usize,
    /// The most calls an aggregate may report per second of its interval (see
    /// `protocol::BatchLimits`); more is refused with a 422 naming the field.
    pub max_calls_per_s: u64,
}

impl Default for Limits {
    /// Sized for a real fleet: a thousand services of a thousand breakers each, ten thousand
    /// instances per service.
    fn default() -> Limits {
        Limits {
            max_services: 1_000,
            max_breakers_per_service: 1_000,
            max_instances_per_service: 10_000,
            max_calls_per_s: protocol::BatchLimits::default().max_calls_per_s,
        }
    }
}

/// One of the [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    Services,
    BreakersPerService,
    InstancesPerService,
}

/// A batch refused because it would create a name beyond a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: Limit,
    /// The JSON path of the first name beyond the limit, e.g. `$.aggregates[3].breaker`.
    pub path: String,
    /// That name.
    pub name: String,
    pub detail: String,
}

// === impl Limits ===

impl Limits {
    pub fn value(&self, limit: Limit) -> usize {
        match limit {
            Limit::Services => self.max_services,
            Limit::BreakersPerService => self.max_breakers_per_service,
            Limit::InstancesPerService => self.max_instances_per_service,
        }
    }

    /// Checks one new name: `current` names exist (or are about to) where it would be added.
    pub fn check(
        &self,
        limit: Limit,
        current: usize,
        service: &str,
        name: &str,
        path: impl FnOnce() -> String,
    ) -> Result<(), LimitExceeded> {
        let value = self.value(limit);
        if current < value {
            return Ok(());
        }
        let detail = match limit {
            Limit::Services => format!(
                "the server already has {current} services; a new service {name:?} is refused; limits.{limit} = {value}"
            ),
            Limit::BreakersPerService => format!(
                "service {service} already has {current} breakers; a new breaker {name:?} is refused; limits.{limit} = {value}"
            ),
            Limit::InstancesPerService => format!(
                "service {service} already has {current} instances; a new instance {name:?} is refused; limits.{limit} = {value}"
            ),
        };
        Err(LimitExceeded {
            limit,
            path: path(),
            name: name.to_string(),
            detail,
        })
    }
}

// === impl Limit ===

impl Limit {
    pub const ALL: [Limit; 3] = [
        Limit::Services,
        Limit::BreakersPerService,
        Limit::InstancesPerService,
    ];

    /// The key in the settings file's `[limits]` table, also the `limit` label in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Services => "max_services",
            Limit::BreakersPerService => "max_breakers_per_service",
            Limit::InstancesPerService => "max_instances_per_service",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_names_the_limit_and_its_value() {
        let limits = Limits {
            max_breakers_per_service: 2,
            ..Limits::default()
        };
        assert!(
            limits
                .check(Limit::BreakersPerService, 1, "checkout", "db", || "p"
                    .into())
                .is_ok()
        );
        let err = limits
            .check(Limit::BreakersPerService, 2, "checkout", "db", || {
                "$.aggregates[0].breaker".into()
            })
            .unwrap_err();
        assert_eq!(err.path, "$.aggregates[0].breaker");
        assert!(
            err.detail
                .contains("service checkout already has 2 breakers"),
            "{}",
            err.detail
        );
        assert!(
            err.detail.contains("limits.max_breakers_per_service = 2"),
            "{}",
            err.detail
        );
    }
}
