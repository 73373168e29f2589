//! How every panel shows what it loads.
//!
//! A page keeps its data in `LocalResource`s, keyed on the signals the data depends on, and a
//! panel reads them inside [`Loading`]: "Loading…" until the first answer, the previous view
//! while a newer answer loads (a `Transition`), and a failed load as one error line (an
//! `ErrorBoundary`, which an `Err` in the panel's view reaches). A resource drops any answer that
//! a newer fetch overtook, so no page counts its fetches to tell stale answers apart.
//!
//! Panels read a resource synchronously, `move || resource.get().map(|loaded| loaded.map(view))`,
//! rather than awaiting it in a `Suspend`. Both tell the `Transition` what is pending, but a
//! `Suspend` builds its view after an await, when the thread's error hook may be another
//! boundary's (tachys 0.2 sets it before awaiting, not on each poll): with several panels loading
//! at once, one panel's error showed in another's place. A reactive closure sets its own
//! boundary's hook each time it runs.

use leptos::prelude::*;

/// Shows `children` once the resources they read have loaded, and keeps showing them while those
/// resources load again. An `Err` in `children` shows "Could not load {what}: {error}" instead,
/// until a later load succeeds.
#[component]
pub fn Loading<Chil>(
    /// What the panel loads, for the error line: "the series", "the config".
    what: &'static str,
    children: TypedChildren<Chil>,
) -> impl IntoView
where
    Chil: IntoView + Send + 'static,
{
    let children = children.into_inner();
    view! {
        <Transition fallback=|| view! { <p class="hint loading">"Loading…"</p> }>
            <ErrorBoundary fallback=move |errors| load_error(what, errors)>{children()}</ErrorBoundary>
        </Transition>
    }
}

/// The one way a failed load is shown.
fn load_error(what: &'static str, errors: ArcRwSignal<Errors>) -> impl IntoView {
    let message = move || {
        errors.with(|errors| {
            errors
                .iter()
                .map(|(_, err)| err.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    view! {
        <p class="error load-error" role="alert" data-load=what>
            "Could not load " {what} ": " {message}
        </p>
    }
}
