//! Judging a change on its canary instance: which openings were false trips, and whether to
//! wait, promote or roll back. Pure: the step reads the facts from the store and acts on the
//! decision.

/// An opening of the canary is false when no peer opens within this long of it.
pub const PEER_WINDOW_MS: i64 = 30_000;

/// The canary's openings (`own`, at ms) that were false trips: with peers, those no peer
/// opening (`peers`) came within [`PEER_WINDOW_MS`] of; with no peer, the openings beyond the
/// `before` the canary had over the same time before the change.
pub fn false_trips(own: &[i64], peers: Option<&[i64]>, before: usize) -> u32 {
    match peers {
        None => own.len().saturating_sub(before) as u32,
        Some(peers) => own
            .iter()
            .filter(|&&at| !peers.iter().any(|&p| (p - at).abs() <= PEER_WINDOW_MS))
            .count() as u32,
    }
}

/// The canary and its peers: the instance that reported its config most recently (it listens
/// for configs) runs the change first; every other known instance (reporting aggregates, or
/// having reported its config) is a peer, sorted.
pub fn choose(subscribed: &[String], known: Vec<String>) -> (Option<String>, Vec<String>) {
    let mut peers = known;
    for instance in subscribed {
        if !peers.contains(instance) {
            peers.push(instance.clone());
        }
    }
    let canary = subscribed.first().cloned();
    peers.retain(|p| Some(p) != canary.as_ref());
    peers.sort();
    (canary, peers)
}

/// What the step knows about a change on its canary.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub now_ms: i64,
    pub canary_ends_ms: i64,
    /// The canary period the settings ask for.
    pub canary_ms: i64,
    pub false_trips: u32,
    pub max_false_trips: u32,
    /// Whether the canary instance reported running the change's version.
    pub runs_it: bool,
}

/// Why a change is rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollBack {
    /// More false trips than allowed.
    FalseTrips,
    /// The canary never reported running the change, one more canary period after its end.
    Silent,
}

/// What to do with a change on its canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep waiting: the canary period runs, or the canary has yet to report running it.
    Wait,
    Promote,
    RollBack(RollBack),
}

/// Roll back on too many false trips; promote once the canary period is over and the canary
/// runs the change; a canary that never takes it is given one more canary period (at least a
/// minute), then rolled back unjudged.
pub fn decide(f: &Facts) -> Decision {
    if f.false_trips > f.max_false_trips {
        return Decision::RollBack(RollBack::FalseTrips);
    }
    if f.now_ms < f.canary_ends_ms || !f.runs_it {
        let grace_end = f.canary_ends_ms.saturating_add(f.canary_ms.max(60_000));
        if !f.runs_it && f.now_ms >= grace_end {
            return Decision::RollBack(RollBack::Silent);
        }
        return Decision::Wait;
    }
    Decision::Promote
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let base = Facts {
            now_ms: 0,
            canary_ends_ms: 600_000,
            canary_ms: 600_000,
            false_trips: 0,
            max_false_trips: 1,
            runs_it: true,
        };
        let at = |now_ms, false_trips, runs_it| Facts {
            now_ms,
            false_trips,
            runs_it,
            ..base
        };
        use Decision::*;
        let table = [
            (at(0, 0, true), Wait, "the canary period runs"),
            (
                at(599_999, 1, true),
                Wait,
                "false trips up to the allowance",
            ),
            (
                at(10, 2, true),
                RollBack(super::RollBack::FalseTrips),
                "over the allowance",
            ),
            (
                at(10, 2, false),
                RollBack(super::RollBack::FalseTrips),
                "even unreported",
            ),
            (at(600_000, 0, true), Promote, "period over, running it"),
            (
                at(600_000, 1, true),
                Promote,
                "period over, within the allowance",
            ),
            (at(600_000, 0, false), Wait, "period over, not reported yet"),
            (at(1_199_999, 0, false), Wait, "within the grace period"),
            (
                at(1_200_000, 0, false),
                RollBack(super::RollBack::Silent),
                "grace over",
            ),
        ];
        for (facts, want, why) in table {
            assert_eq!(decide(&facts), want, "{why}: {facts:?}");
        }
    }

    #[test]
    fn a_short_canary_still_gets_a_minute_of_grace() {
        let facts = Facts {
            now_ms: 10_000 + 59_999,
            canary_ends_ms: 10_000,
            canary_ms: 5_000,
            false_trips: 0,
            max_false_trips: 0,
            runs_it: false,
        };
        assert_eq!(decide(&facts), Decision::Wait);
        let later = Facts {
            now_ms: 70_000,
            ..facts
        };
        assert_eq!(decide(&later), Decision::RollBack(RollBack::Silent));
    }

    #[test]
    fn the_latest_subscriber_is_the_canary_and_everyone_else_a_peer() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (canary, peers) = choose(&names(&["b", "c"]), names(&["d", "a", "b"]));
        assert_eq!(canary.as_deref(), Some("b"));
        assert_eq!(peers, names(&["a", "c", "d"]));
        // Nobody listens for configs: no canary, every known instance a peer.
        let (canary, peers) = choose(&[], names(&["z", "y"]));
        assert_eq!(canary, None);
        assert_eq!(peers, names(&["y", "z"]));
    }

    #[test]
    fn false_trips_are_openings_no_peer_shares() {
        let own = [100_000, 200_000, 300_000];
        // A peer opened 30 s after the first (shared) and 31 s before the third (not).
        let peers = [130_000, 269_000];
        assert_eq!(false_trips(&own, Some(&peers), 0), 2);
        assert_eq!(false_trips(&own, Some(&[]), 0), 3);
        // Without peers: openings beyond those of the same time before the change.
        assert_eq!(false_trips(&own, None, 1), 2);
        assert_eq!(false_trips(&own, None, 5), 0);
    }
}
