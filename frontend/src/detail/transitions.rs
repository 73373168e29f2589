//! The transitions table: the breaker's newest transitions across its instances.

use leptos::prelude::*;
use protocol::TransitionRecord;

use super::DetailPage;
use crate::format;
use crate::loading::Loading;

#[component]
pub(super) fn TransitionsTable(page: DetailPage) -> impl IntoView {
    view! {
        <section class="transitions" aria-label="transitions">
            <h3>"Transitions"</h3>
            <Loading what="the transitions">
                {move || page.transitions.get().map(|transitions| transitions.map(table))}
            </Loading>
        </section>
    }
}

fn table(list: Vec<TransitionRecord>) -> AnyView {
    if list.is_empty() {
        return view! { <p class="empty">"No transitions yet."</p> }.into_any();
    }
    view! {
        <table class="table">
            <thead><tr>
                <th>"time (UTC)"</th><th>"instance"</th><th>"from → to"</th>
                <th>"trigger"</th><th>"config"</th>
            </tr></thead>
            <tbody>
                {list.into_iter().map(|record| {
                    let transition = record.transition;
                    let trigger = transition.trigger.as_ref()
                        .map(charts::words::trigger_text)
                        .unwrap_or_else(|| "–".into());
                    view! {
                        <tr data-id=record.id data-to=transition.to.as_str()>
                            <td>{format::timestamp(transition.at_ms)}</td>
                            <td>{record.instance}</td>
                            <td>
                                {charts::words::state_label(transition.from)} " → "
                                {charts::words::state_label(transition.to)}
                            </td>
                            <td>{trigger}</td>
                            <td>"v" {transition.config_version}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
