//! The writer's check of the cardinality limits before a batch joins a commit, and the
//! counts it exports.

use protocol::IngestBatch;

use super::{GroupNames, Writer};
use crate::ingest::limits::{Limit, LimitExceeded};

// === impl Writer ===

impl Writer {
    /// Checks that `batch` creates no name beyond a limit, counting the names already known
    /// and those of the batches admitted before it into the same group; on success its new
    /// names join `group`. Names already known are never refused.
    pub(super) fn admit(
        &self,
        batch: &IngestBatch,
        group: &mut GroupNames,
    ) -> Result<(), LimitExceeded> {
        if batch.aggregates.is_empty() && batch.transitions.is_empty() {
            // Nothing that creates a breaker or an instance state.
            return Ok(());
        }
        let service = batch.service.as_str();
        let known_breakers = self.breaker_ids.get(service);
        let group_breakers = group.breakers.get(service);
        let new_service = known_breakers.is_none() && group_breakers.is_none();
        if new_service {
            self.limits.check(
                Limit::Services,
                self.breaker_ids.len() + group.n_new_services,
                service,
                service,
                || "$.service".into(),
            )?;
        }
        let known_instances = self.instances.get(service);
        let group_instances = group.instances.get(service);
        let instance = batch.instance.as_str();
        let new_instance = !known_instances.is_some_and(|known| known.contains(instance))
            && !group_instances.is_some_and(|known| known.contains(instance));
        if new_instance {
            self.limits.check(
                Limit::InstancesPerService,
                known_instances.map_or(0, |known| known.len())
                    + group_instances.map_or(0, |known| known.len()),
                service,
                instance,
                || "$.instance".into(),
            )?;
        }
        let n_breakers = known_breakers.map_or(0, |known| known.len())
            + group_breakers.map_or(0, |known| known.len());
        let mut new_breakers: Vec<&str> = Vec::new();
        let names = (batch.aggregates.iter().enumerate())
            .map(|(idx, a)| (a.breaker.as_str(), "aggregates", idx))
            .chain(
                (batch.transitions.iter().enumerate())
                    .map(|(idx, t)| (t.breaker.as_str(), "transitions", idx)),
            );
        for (name, list, idx) in names {
            let known = known_breakers.is_some_and(|known| known.contains_key(name))
                || group_breakers.is_some_and(|known| known.contains(name))
                || new_breakers.contains(&name);
            if known {
                continue;
            }
            self.limits.check(
                Limit::BreakersPerService,
                n_breakers + new_breakers.len(),
                service,
                name,
                || format!("$.{list}[{idx}].breaker"),
            )?;
            new_breakers.push(name);
        }
        if new_service {
            group.n_new_services += 1;
        }
        if new_instance {
            group
                .instances
                .entry(service.to_string())
                .or_default()
                .insert(instance.to_string());
        }
        if !new_breakers.is_empty() || new_service {
            let entry = group.breakers.entry(service.to_string()).or_default();
            entry.extend(new_breakers.into_iter().map(str::to_string));
        }
        Ok(())
    }

    /// The current counts, for `/metrics`: services, and the most breakers and instances of
    /// any service (what the per-service limits bound).
    pub(super) fn export_cardinality(&self) {
        let most_breakers = self.breaker_ids.values().map(|b| b.len()).max();
        let most_instances = self.instances.values().map(|i| i.len()).max();
        let n_breakers: usize = self.breaker_ids.values().map(|b| b.len()).sum();
        self.metrics.set_cardinality(
            self.breaker_ids.len(),
            n_breakers,
            most_breakers.unwrap_or(0),
            most_instances.unwrap_or(0),
        );
    }
}
