//! The overview's sort, state filter, search and view (tiles or matrix), read from and written to
//! the URL query (`?sort=failure_rate&state=open&q=pay&view=matrix`), so a filtered view is a link.
//!
//! Pure and host-tested.

use std::cmp::Ordering;

use protocol::{BreakerSummary, State};

/// How tiles are ordered, within a service and services among themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortBy {
    /// Worst state first (Open, Half-Open, Closed), then by name.
    #[default]
    State,
    /// Highest failure rate first.
    FailureRate,
    /// Most calls per second first.
    Volume,
    /// Alphabetical.
    Name,
}

/// Which states are shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StateFilter {
    #[default]
    All,
    /// Open or Half-Open: what needs attention.
    NotClosed,
    Only(State),
}

/// How the overview shows the breakers it admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// One tile per breaker with its figures and sparkline.
    Tiles,
    /// One row per service of small cells, one per breaker, coloured by state: a large fleet at
    /// a glance.
    Matrix,
}

/// The overview's view settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub sort: SortBy,
    pub state: StateFilter,
    /// Case-insensitive substring of the breaker or service name.
    pub search: String,
    /// The view the URL asks for; without one, [`View::for_fleet`] chooses by the fleet's size.
    pub view: Option<View>,
}

// === impl SortBy ===

impl SortBy {
    pub const ALL: [SortBy; 4] = [
        SortBy::State,
        SortBy::FailureRate,
        SortBy::Volume,
        SortBy::Name,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::State => "state",
            SortBy::FailureRate => "failure_rate",
            SortBy::Volume => "volume",
            SortBy::Name => "name",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortBy::State => "state",
            SortBy::FailureRate => "failure rate",
            SortBy::Volume => "volume",
            SortBy::Name => "name",
        }
    }

    pub fn parse(text: &str) -> Option<SortBy> {
        SortBy::ALL.into_iter().find(|sort| sort.as_str() == text)
    }

    /// Orders two breakers; ties fall back to the name, so the order is total and stable.
    pub fn compare(self, a: &BreakerSummary, b: &BreakerSummary) -> Ordering {
        let by_name = || (&a.service, &a.breaker).cmp(&(&b.service, &b.breaker));
        let first = match self {
            SortBy::State => b.state.severity().cmp(&a.state.severity()),
            SortBy::FailureRate => rate_key(b.failure_rate).total_cmp(&rate_key(a.failure_rate)),
            SortBy::Volume => b.calls_per_s.total_cmp(&a.calls_per_s),
            SortBy::Name => Ordering::Equal,
        };
        first
            .then_with(|| a.breaker.cmp(&b.breaker))
            .then_with(by_name)
    }
}

/// No rate sorts below every rate.
fn rate_key(rate: Option<f64>) -> f64 {
    rate.unwrap_or(-1.0)
}

// === impl StateFilter ===

impl StateFilter {
    pub const ALL: [StateFilter; 5] = [
        StateFilter::All,
        StateFilter::NotClosed,
        StateFilter::Only(State::Open),
        StateFilter::Only(State::HalfOpen),
        StateFilter::Only(State::Closed),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StateFilter::All => "all",
            StateFilter::NotClosed => "not_closed",
            StateFilter::Only(state) => state.as_str(),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StateFilter::All => "all states",
            StateFilter::NotClosed => "open or half-open",
            StateFilter::Only(State::Open) => "open",
            StateFilter::Only(State::HalfOpen) => "half-open",
            StateFilter::Only(State::Closed) => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<StateFilter> {
        StateFilter::ALL
            .into_iter()
            .find(|filter| filter.as_str() == text)
    }

    pub fn admits(self, state: State) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::NotClosed => state != State::Closed,
            StateFilter::Only(wanted) => state == wanted,
        }
    }
}

// === impl View ===

impl View {
    pub const ALL: [View; 2] = [View::Tiles, View::Matrix];

    /// Above this many breakers, the overview shows the matrix unless the URL asks for tiles: a
    /// wall of hundreds of tiles is slow to scan and to keep live.
    pub const MATRIX_ABOVE: usize = 200;

    pub fn as_str(self) -> &'static str {
        match self {
            View::Tiles => "tiles",
            View::Matrix => "matrix",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            View::Tiles => "Tiles",
            View::Matrix => "Matrix",
        }
    }

    pub fn parse(text: &str) -> Option<View> {
        View::ALL.into_iter().find(|view| view.as_str() == text)
    }

    /// The view for a fleet of `n_breakers` when the URL names none.
    pub fn for_fleet(n_breakers: usize) -> View {
        if n_breakers > View::MATRIX_ABOVE {
            View::Matrix
        } else {
            View::Tiles
        }
    }
}

// === impl Filter ===

impl Filter {
    /// Reads `sort`, `state`, `q` and `view` from a query; anything unknown means the default.
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> Filter {
        Filter {
            sort: get("sort")
                .and_then(|text| SortBy::parse(&text))
                .unwrap_or_default(),
            state: get("state")
                .and_then(|text| StateFilter::parse(&text))
                .unwrap_or_default(),
            search: get("q").unwrap_or_default(),
            view: get("view").and_then(|text| View::parse(&text)),
        }
    }

    /// The query pairs that differ from the defaults, for building a URL.
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if self.sort != SortBy::default() {
            pairs.push(("sort", self.sort.as_str().to_string()));
        }
        if self.state != StateFilter::default() {
            pairs.push(("state", self.state.as_str().to_string()));
        }
        if !self.search.trim().is_empty() {
            pairs.push(("q", self.search.trim().to_string()));
        }
        if let Some(view) = self.view {
            pairs.push(("view", view.as_str().to_string()));
        }
        pairs
    }

    /// The view shown: the URL's, or the one [`View::for_fleet`] chooses for `n_breakers`.
    pub fn view_for(&self, n_breakers: usize) -> View {
        self.view.unwrap_or_else(|| View::for_fleet(n_breakers))
    }

    pub fn matches(&self, summary: &BreakerSummary) -> bool {
        if !self.state.admits(summary.state) {
            return false;
        }
        let needle = self.search.trim().to_lowercase();
        needle.is_empty()
            || summary.breaker.to_lowercase().contains(&needle)
            || summary.service.to_lowercase().contains(&needle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(breaker: &str, state: State, rate: Option<f64>, calls: f64) -> BreakerSummary {
        BreakerSummary {
            service: "svc".into(),
            breaker: breaker.into(),
            state,
            since_ms: 0,
            instances: Vec::new(),
            open_instances: 0,
            failure_rate: rate,
            failure_rate_threshold: Some(0.5),
            calls_per_s: calls,
            slow_call_rate: None,
            p99_ms: None,
            updated_ms: 0,
            last_trip: None,
        }
    }

    #[test]
    fn query_round_trips_and_defaults_stay_out_of_the_url() {
        let filter = Filter {
            sort: SortBy::Volume,
            state: StateFilter::Only(State::HalfOpen),
            search: " pay ".into(),
            view: Some(View::Matrix),
        };
        let pairs = filter.query_pairs();
        let read = Filter::from_query(|key| {
            pairs
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| value.clone())
        });
        assert_eq!(read.sort, SortBy::Volume);
        assert_eq!(read.state, StateFilter::Only(State::HalfOpen));
        assert_eq!(read.search, "pay");
        assert_eq!(read.view, Some(View::Matrix));
        assert!(Filter::default().query_pairs().is_empty());
        assert_eq!(
            Filter::from_query(|_| Some("bogus".into())).sort,
            SortBy::State
        );
    }

    #[test]
    fn the_url_chooses_the_view_and_a_large_fleet_defaults_to_the_matrix() {
        let unset = Filter::default();
        assert_eq!(unset.view_for(0), View::Tiles);
        assert_eq!(unset.view_for(View::MATRIX_ABOVE), View::Tiles);
        assert_eq!(unset.view_for(View::MATRIX_ABOVE + 1), View::Matrix);
        assert_eq!(unset.view_for(2000), View::Matrix);
        let tiles = Filter::from_query(|key| (key == "view").then(|| "tiles".to_string()));
        assert_eq!(tiles.view_for(2000), View::Tiles);
        let matrix = Filter::from_query(|key| (key == "view").then(|| "matrix".to_string()));
        assert_eq!(matrix.view_for(3), View::Matrix);
        assert_eq!(matrix.query_pairs(), [("view", "matrix".to_string())]);
        let bogus = Filter::from_query(|key| (key == "view").then(|| "wall".to_string()));
        assert_eq!(bogus.view, None);
    }

    #[test]
    fn sorts_put_the_interesting_first() {
        let mut list = vec![
            summary("a", State::Closed, Some(0.1), 5.0),
            summary("b", State::Open, None, 1.0),
            summary("c", State::HalfOpen, Some(0.9), 50.0),
        ];
        let order = |list: &mut Vec<BreakerSummary>, sort: SortBy| {
            list.sort_by(|a, b| sort.compare(a, b));
            list.iter().map(|s| s.breaker.clone()).collect::<Vec<_>>()
        };
        assert_eq!(order(&mut list, SortBy::State), ["b", "c", "a"]);
        assert_eq!(order(&mut list, SortBy::FailureRate), ["c", "a", "b"]);
        assert_eq!(order(&mut list, SortBy::Volume), ["c", "a", "b"]);
        assert_eq!(order(&mut list, SortBy::Name), ["a", "b", "c"]);
    }

    #[test]
    fn filter_by_state_and_search() {
        let open = summary("Payments-API", State::Open, None, 0.0);
        let closed = summary("inventory", State::Closed, None, 0.0);
        let filter = |state, search: &str| Filter {
            sort: SortBy::State,
            state,
            search: search.into(),
            view: None,
        };
        assert!(filter(StateFilter::NotClosed, "").matches(&open));
        assert!(!filter(StateFilter::NotClosed, "").matches(&closed));
        assert!(filter(StateFilter::All, "payments").matches(&open));
        assert!(
            filter(StateFilter::All, "SVC").matches(&closed),
            "service names match"
        );
        assert!(!filter(StateFilter::All, "x").matches(&closed));
    }
}
