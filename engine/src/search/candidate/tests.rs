//! A candidate's key, its round trip through `breaker::Config`, thinning and the failures it
//! needs to trip.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use breaker::{Config, HalfOpenRule, Wait, Window};

use super::{Candidate, Probes};
use crate::search::tests::{rate_only, secs};

#[test]
fn equal_candidates_share_a_key_and_each_changed_field_makes_another() {
    let exponential = Candidate {
        wait: Wait::Exponential {
            initial: secs(1),
            multiplier: 2.0,
            max: secs(60),
            jitter: 0.0,
        },
        ..rate_only()
    };
    let with_exponential = |f: fn(&mut Candidate)| {
        let mut cand = exponential.clone();
        f(&mut cand);
        cand
    };
    let changed = [
        Candidate {
            failure_rate_threshold: None,
            ..rate_only()
        },
        Candidate {
            failure_rate_threshold: Some(0.1 + 0.2),
            ..rate_only()
        },
        Candidate {
            failure_rate_threshold: Some(0.3),
            ..rate_only()
        },
        Candidate {
            window: Window::Count(10),
            ..rate_only()
        },
        Candidate {
            window: Window::Time(20),
            ..rate_only()
        },
        Candidate {
            minimum_calls: 11,
            ..rate_only()
        },
        Candidate {
            consecutive_failures: Some(10),
            ..rate_only()
        },
        Candidate {
            slow: Some((200, 0.5)),
            ..rate_only()
        },
        Candidate {
            slow: Some((500, 0.5)),
            ..rate_only()
        },
        Candidate {
            slow: Some((500, 0.2)),
            ..rate_only()
        },
        Candidate {
            wait: Wait::Fixed(Duration::from_millis(30_001)),
            ..rate_only()
        },
        exponential.clone(),
        with_exponential(|c| {
            if let Wait::Exponential { multiplier, .. } = &mut c.wait {
                *multiplier = 1.5;
            }
        }),
        with_exponential(|c| {
            if let Wait::Exponential { jitter, .. } = &mut c.wait {
                *jitter = 0.1;
            }
        }),
        with_exponential(|c| {
            if let Wait::Exponential { max, .. } = &mut c.wait {
                *max = secs(120);
            }
        }),
        Candidate {
            half_open: Probes::Successes(3, 1),
            ..rate_only()
        },
        Candidate {
            half_open: Probes::Successes(1, 3),
            ..rate_only()
        },
        Candidate {
            half_open: Probes::Rates(1),
            ..rate_only()
        },
        Candidate {
            call_timeout: Some(secs(2)),
            ..rate_only()
        },
        Candidate {
            call_timeout: Some(secs(3)),
            ..rate_only()
        },
    ];
    assert_eq!(rate_only().key(), rate_only().clone().key());
    let mut keys: HashSet<_> = changed.iter().map(Candidate::key).collect();
    assert_eq!(keys.len(), changed.len(), "every change makes its own key");
    assert!(
        keys.insert(rate_only().key()),
        "and none is the unchanged key"
    );
    // A cached cost is found again under an equal candidate's key.
    let mut cache = HashMap::new();
    cache.insert(exponential.key(), 1.0);
    cache.insert(rate_only().key(), 2.0);
    assert_eq!(cache.get(&exponential.clone().key()), Some(&1.0));
    assert_eq!(cache.get(&changed[0].key()), None);
}

#[test]
fn a_config_survives_the_round_trip_through_a_candidate() {
    let configs = [
        Config::builder().build().unwrap(),
        Config::builder()
            .failure_rate_threshold(0.25)
            .window(Window::Time(30))
            .minimum_calls(20)
            .consecutive_failures(5)
            .slow_call_rate_threshold(0.3)
            .slow_call_duration(Duration::from_millis(750))
            .wait(Wait::Exponential {
                initial: secs(2),
                multiplier: 1.5,
                max: secs(90),
                jitter: 0.1,
            })
            .half_open_probes(3)
            .half_open_successes(1)
            .call_timeout(secs(4))
            .build()
            .unwrap(),
        Config::builder()
            .failure_rate_threshold(None)
            .consecutive_failures(7)
            .window(Window::Count(20))
            .minimum_calls(20)
            .wait_duration(Duration::from_millis(1_500))
            .build()
            .unwrap(),
        // resilience4j's half-open rule: every probe is judged by its rates.
        Config::builder()
            .failure_rate_threshold(0.2)
            .half_open_probes(10)
            .half_open_successes(10)
            .half_open_rule(HalfOpenRule::Rates)
            .build()
            .unwrap(),
    ];
    for config in configs {
        let cand = Candidate::from_config(&config);
        assert_eq!(cand.to_config(), Some(config.clone()), "{config:?}");
        assert_eq!(Candidate::from_config(&cand.to_config().unwrap()), cand);
    }
    let slow = Candidate {
        slow: Some((750, 0.3)),
        ..rate_only()
    };
    let config = slow.to_config().unwrap();
    assert_eq!(config.slow_call_rate_threshold(), Some(0.3));
    assert_eq!(config.slow_call_duration(), Duration::from_millis(750));
    let by_rate = Candidate {
        half_open: Probes::Rates(5),
        ..rate_only()
    };
    let config = by_rate.to_config().unwrap();
    assert_eq!(config.half_open_rule(), HalfOpenRule::Rates);
    assert_eq!(config.half_open_probes(), 5);
    assert_eq!(config.half_open_successes(), 5);
    // The rule needs a rate to judge by: a run of failures alone cannot have it.
    let runs_only = Candidate {
        failure_rate_threshold: None,
        consecutive_failures: Some(5),
        ..by_rate
    };
    assert_eq!(runs_only.to_config(), None);
}

#[test]
fn a_candidate_that_could_never_trip_or_breaks_a_rule_has_no_config() {
    let never = Candidate {
        failure_rate_threshold: None,
        ..rate_only()
    };
    assert_eq!(never.to_config(), None);
    let min_above_window = Candidate {
        window: Window::Count(5),
        minimum_calls: 10,
        ..rate_only()
    };
    assert_eq!(min_above_window.to_config(), None);
    assert!(rate_only().to_config().is_some());
}

#[test]
fn thinning_divides_the_counts_and_required_failures_raise_the_minimum() {
    let cand = Candidate {
        window: Window::Count(50),
        minimum_calls: 20,
        ..rate_only()
    };
    assert_eq!(cand.thinned(1), cand);
    let thin = cand.thinned(10);
    assert_eq!((thin.window, thin.minimum_calls), (Window::Count(5), 2));
    // The minimum never exceeds a thinned count window.
    let full = Candidate {
        window: Window::Count(100),
        minimum_calls: 200,
        ..rate_only()
    }
    .thinned(3);
    assert_eq!((full.window, full.minimum_calls), (Window::Count(34), 34));

    let mut touchy = Candidate {
        failure_rate_threshold: Some(0.2),
        window: Window::Count(10),
        minimum_calls: 5,
        ..rate_only()
    };
    assert!(!touchy.needs_failures(3.0), "0.2 × 5 calls is one failure");
    touchy.require_failures(3.0);
    assert_eq!(touchy.minimum_calls, 15);
    assert_eq!(touchy.window, Window::Count(15));
    assert!(touchy.needs_failures(3.0));
}
