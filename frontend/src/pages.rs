//! The place navigation keeps for recommendations, still to come. Alerts are in
//! [`crate::alerts_page`].

use leptos::prelude::*;

#[component]
pub fn Recommendations() -> impl IntoView {
    view! {
        <section class="page recommendations" data-page="recommendations">
            <h2>"Recommendations"</h2>
            <p class="empty">"Tuning recommendations from the engine will be listed here."</p>
        </section>
    }
}
