//! The overview's lists in the DOM: each keyed `<For>` renders its elements in the order of
//! their names, which a re-sort never changes, and each element is placed where the sort puts
//! it by its CSS `order` ([`Positions`]); the containers are flex or grid boxes whose
//! `reading-flow` makes focus and reading follow that visual order (style.css).
//!
//! A `<For>` given the sorted list itself moves elements in the DOM when the order changes, and
//! its diff moves every element between an element's old place and its new one: a breaker that
//! opens, moving to the front of its service, took every tile before it out of the document and
//! back in, their styles and layout made anew (the browser bench's 500 tiles: a transition's
//! apply and render p99 69 ms that way, 21–27 ms placed by `order`). Placed by `order`, only the
//! elements whose position changed get a new style value, and nothing leaves the document.

use std::collections::HashMap;

/// `shown` (names in the order the sort shows them) in the order of the names: the list a
/// keyed `<For>` renders, the same until a name comes or goes.
pub fn by_name(shown: &[String]) -> Vec<String> {
    let mut names = shown.to_vec();
    names.sort_unstable();
    names
}

/// Each name's position in the order shown: the CSS `order` of its element.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Positions(HashMap<String, usize>);

impl Positions {
    pub fn new(shown: &[String]) -> Positions {
        Positions(
            shown
                .iter()
                .enumerate()
                .map(|(position, name)| (name.clone(), position))
                .collect(),
        )
    }

    /// `name`'s position; past the end when it is not shown (an element about to go).
    pub fn of(&self, name: &str) -> usize {
        self.0.get(name).copied().unwrap_or(self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn elements_keep_their_place_and_take_the_sorts_order() {
        let before = names(&["db", "cache", "payments"]);
        // `payments` opened: it is shown first now.
        let after = names(&["payments", "db", "cache"]);
        // What the `<For>` renders does not change: no element moves in the DOM.
        assert_eq!(by_name(&before), names(&["cache", "db", "payments"]));
        assert_eq!(by_name(&after), by_name(&before));
        // Their CSS order does.
        let positions = Positions::new(&after);
        let placed: Vec<(String, usize)> = by_name(&after)
            .into_iter()
            .map(|name| {
                let position = positions.of(&name);
                (name, position)
            })
            .collect();
        assert_eq!(
            placed,
            vec![
                ("cache".to_string(), 2),
                ("db".to_string(), 1),
                ("payments".to_string(), 0)
            ]
        );
        // Sorting the elements by their order shows the sort's list.
        let mut shown = placed.clone();
        shown.sort_by_key(|(_, position)| *position);
        let shown: Vec<String> = shown.into_iter().map(|(name, _)| name).collect();
        assert_eq!(shown, after);
    }

    #[test]
    fn a_name_no_longer_shown_goes_last() {
        let positions = Positions::new(&names(&["b", "a"]));
        assert_eq!(positions.of("a"), 1);
        assert_eq!(positions.of("gone"), 2);
        assert_eq!(Positions::new(&[]).of("any"), 0);
    }
}
