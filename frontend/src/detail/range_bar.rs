//! The range bar: preset ranges, a custom UTC range, and [`go_to_range`], which every range change
//! on the page (a preset, the custom form, a brushed chart) goes through, so the URL holds the
//! range.

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::use_navigate;

use super::DetailPage;
use crate::format;
use crate::range::{self, PRESETS, TimeRange};

/// Goes to the same breaker with another range.
pub(super) fn go_to_range(
    page: DetailPage,
    navigate: &impl Fn(&str, NavigateOptions),
    range: TimeRange,
) {
    let target = page.target.get_value();
    let mut pairs = vec![("service", target.service), ("breaker", target.breaker)];
    pairs.extend(range.query_pairs());
    navigate(
        &format!("/breaker{}", format::query_string(&pairs)),
        NavigateOptions {
            scroll: false,
            ..Default::default()
        },
    );
}

#[component]
pub(super) fn RangeBar(page: DetailPage) -> impl IntoView {
    let navigate = use_navigate();
    let custom_from = RwSignal::new(String::new());
    let custom_to = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<&'static str>);
    let submit_navigate = navigate.clone();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        match (
            range::parse_utc(&custom_from.get_untracked()),
            range::parse_utc(&custom_to.get_untracked()),
        ) {
            (Some(from_ms), Some(to_ms)) if from_ms < to_ms => {
                problem.set(None);
                go_to_range(page, &submit_navigate, TimeRange::Custom { from_ms, to_ms });
            }
            _ => problem.set(Some(
                "from and to are UTC times, YYYY-MM-DD HH:MM, from before to",
            )),
        }
    };
    view! {
        <div class="range-bar" data-range=move || page.range.get().key()>
            <span class="label">"range"</span>
            {PRESETS
                .iter()
                .enumerate()
                .map(|(idx, (key, label, _))| {
                    let navigate = navigate.clone();
                    view! {
                        <button
                            type="button"
                            data-range=*key
                            class:active=move || page.range.get() == TimeRange::Last(idx)
                            on:click=move |_| go_to_range(page, &navigate, TimeRange::Last(idx))
                        >
                            {*label}
                        </button>
                    }
                })
                .collect_view()}
            <form class="custom-range" on:submit=submit>
                <input type="text" name="from" placeholder="from (UTC) 2026-11-22 13:00"
                    prop:value=move || custom_from.get()
                    on:input=move |event| custom_from.set(event_target_value(&event)) />
                <input type="text" name="to" placeholder="to (UTC) 2026-11-22 14:00"
                    prop:value=move || custom_to.get()
                    on:input=move |event| custom_to.set(event_target_value(&event)) />
                <button type="submit" class:active=move || !page.range.get().is_live()>"custom"</button>
            </form>
            {move || problem.get().map(|problem| view! { <span class="error">{problem}</span> })}
            <span class="hint">"Drag across a chart to zoom."</span>
        </div>
    }
}
