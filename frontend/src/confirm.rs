//! The confirmation every consequential admin action asks for first.

use leptos::prelude::*;

/// A question with Confirm and Cancel buttons; `on_yes` and `on_no` run on their clicks.
#[component]
pub fn Confirm(question: &'static str, on_yes: Callback<()>, on_no: Callback<()>) -> impl IntoView {
    view! {
        <div class="confirm" role="dialog" aria-label="confirm">
            <p>{question}</p>
            <button type="button" class="danger" data-confirm="yes" on:click=move |_| on_yes.run(())>"Confirm"</button>
            <button type="button" data-confirm="no" on:click=move |_| on_no.run(())>"Cancel"</button>
        </div>
    }
}
