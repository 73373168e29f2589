//! The overview's groups: [`Board::groups`] makes them from every breaker, [`Board::regroup`]
//! from the last ones, rebuilding only the services that changed ([`ServiceChanges`]).

use std::collections::HashMap;
use std::sync::Arc;

use protocol::BreakerSummary;

use super::{Board, ServiceGroup, StateCounts};
use crate::filter::{Filter, SortBy};

/// The overview's groups (see [`Board::groups`]) and what they were made from, so that the
/// next ones reuse every service that did not change. Equal when the groups are.
#[derive(Clone, Debug)]
pub struct Grouping {
    pub groups: Vec<ServiceGroup>,
    filter: Filter,
    /// The board's count of changes (`ServiceChanges::n`) when they were made.
    at: u64,
}

impl PartialEq for Grouping {
    fn eq(&self, other: &Grouping) -> bool {
        self.groups == other.groups
    }
}

/// Per service, when (in changes counted over the board) one of its breakers last appeared or
/// changed state, failure rate or calls/s.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ServiceChanges {
    pub(super) n: u64,
    at: HashMap<String, ChangedAt>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct ChangedAt {
    /// A breaker appeared or changed state (every sort and the state filter).
    members: u64,
    failure_rates: u64,
    volumes: u64,
}

/// Which of a breaker's keys the overview sorts or filters by changed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Changed {
    pub(super) members: bool,
    pub(super) failure_rate: bool,
    pub(super) volume: bool,
}

// === impl Board ===

impl Board {
    /// The breakers `filter` admits, grouped by service and ordered by its sort: within a
    /// service, and services by their first breaker.
    pub fn groups(&self, filter: &Filter) -> Vec<ServiceGroup> {
        let mut groups = Vec::new();
        let mut last: Option<&str> = None;
        for (service, _) in self.entries.keys() {
            if last != Some(service.as_str()) {
                last = Some(service);
                groups.extend(self.group_of(service, filter));
            }
        }
        self.sort_groups(&mut groups, filter.sort);
        groups
    }

    /// The groups under `filter`, made from `previous` (the last ones made) by rebuilding only
    /// the services that changed since, as far as `filter` can tell, and sorting the services
    /// again; with whether they differ from `previous`. The same as [`Board::groups`], at a
    /// fraction of its cost when few services changed: a transition in a fleet of 10,000
    /// breakers rebuilds one service's group, not all of them.
    pub fn regroup(&self, filter: &Filter, previous: Option<Grouping>) -> (Grouping, bool) {
        let at = self.changes.n;
        let previous = match previous {
            Some(previous) if previous.filter == *filter => previous,
            previous => {
                let grouping = Grouping {
                    groups: self.groups(filter),
                    filter: filter.clone(),
                    at,
                };
                let changed = previous.is_none_or(|previous| previous != grouping);
                return (grouping, changed);
            }
        };
        let mut grouping = previous;
        let since = std::mem::replace(&mut grouping.at, at);
        let mut changed = false;
        let mut any = false;
        for service in self.changes.since(since, filter.sort) {
            any = true;
            let fresh = self.group_of(service, filter);
            let old = grouping
                .groups
                .iter()
                .position(|group| group.service == service);
            match (old, fresh) {
                (Some(idx), Some(fresh)) if grouping.groups[idx] != fresh => {
                    grouping.groups[idx] = fresh;
                    changed = true;
                }
                (Some(_), Some(_)) | (None, None) => {}
                (Some(idx), None) => {
                    grouping.groups.remove(idx);
                    changed = true;
                }
                (None, Some(fresh)) => {
                    grouping.groups.push(fresh);
                    changed = true;
                }
            }
        }
        if any {
            // A changed first breaker can move its service though its group is the same.
            changed |= self.sort_groups(&mut grouping.groups, filter.sort);
        }
        (grouping, changed)
    }

    /// `service`'s breakers that `filter` admits, in its order; `None` when there are none.
    fn group_of(&self, service: &str, filter: &Filter) -> Option<ServiceGroup> {
        let mut members: Vec<&BreakerSummary> = self
            .entries
            .range((service.to_owned(), String::new())..)
            .take_while(|((of, _), _)| of == service)
            .map(|(_, entry)| &entry.summary)
            .filter(|summary| filter.matches(summary))
            .collect();
        let first = members.first()?;
        let mut group = ServiceGroup {
            service: service.to_owned(),
            worst: first.state,
            counts: StateCounts::default(),
            breakers: Arc::from([]),
        };
        for summary in &members {
            group.counts.add(summary.state);
            if summary.state.severity() > group.worst.severity() {
                group.worst = summary.state;
            }
        }
        members.sort_by(|a, b| filter.sort.compare(a, b));
        group.breakers = members
            .iter()
            .map(|summary| summary.breaker.clone())
            .collect();
        Some(group)
    }

    /// Orders services by their first breaker under `sort` (by name under [`SortBy::Name`]);
    /// whether that moved any (the order is total: service names are unique).
    fn sort_groups(&self, groups: &mut Vec<ServiceGroup>, sort: SortBy) -> bool {
        if sort == SortBy::Name {
            if groups.is_sorted_by(|a, b| a.service <= b.service) {
                return false;
            }
            groups.sort_by(|a, b| a.service.cmp(&b.service));
            return true;
        }
        let mut keyed: Vec<(Option<&BreakerSummary>, ServiceGroup)> = groups
            .drain(..)
            .map(|group| {
                let first = group.breakers.first().and_then(|breaker| {
                    self.entries
                        .get(&(group.service.clone(), breaker.clone()))
                        .map(|entry| &entry.summary)
                });
                (first, group)
            })
            .collect();
        let order = |(a_first, a): &(Option<&BreakerSummary>, ServiceGroup),
                     (b_first, b): &(Option<&BreakerSummary>, ServiceGroup)| {
            let by_first = match (a_first, b_first) {
                (Some(a_first), Some(b_first)) => sort.compare(a_first, b_first),
                _ => std::cmp::Ordering::Equal,
            };
            by_first.then_with(|| a.service.cmp(&b.service))
        };
        let moved = !keyed.is_sorted_by(|a, b| order(a, b).is_le());
        if moved {
            keyed.sort_by(order);
        }
        groups.extend(keyed.into_iter().map(|(_, group)| group));
        moved
    }
}

// === impl ServiceChanges ===

impl ServiceChanges {
    pub(super) fn note(&mut self, service: &str, changed: Changed) {
        if changed == Changed::default() {
            return;
        }
        self.n += 1;
        let n = self.n;
        let at = match self.at.get_mut(service) {
            Some(at) => at,
            None => self.at.entry(service.to_owned()).or_default(),
        };
        if changed.members {
            at.members = n;
        }
        if changed.failure_rate {
            at.failure_rates = n;
        }
        if changed.volume {
            at.volumes = n;
        }
    }

    /// The services whose groups under `sort` may have changed after change `since`.
    fn since(&self, since: u64, sort: SortBy) -> impl Iterator<Item = &str> {
        self.at
            .iter()
            .filter(move |(_, at)| {
                at.members > since
                    || match sort {
                        SortBy::FailureRate => at.failure_rates > since,
                        SortBy::Volume => at.volumes > since,
                        SortBy::State | SortBy::Name => false,
                    }
            })
            .map(|(service, _)| service.as_str())
    }
}

#[cfg(test)]
mod tests;
