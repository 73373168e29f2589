//! What an admin does from a breaker's page: force open / close (automatic) / disable / metrics
//! only, each after a confirmation, and "Suggest thresholds", which asks the engine for a
//! recommendation learned from the last day. Both are one POST each; a control reloads the
//! config panel, which shows the instances following it.

use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::{BreakerMode, Recommendation};

use super::DetailPage;
use crate::api;
use crate::confirm::Confirm;
use crate::tuning;

/// "Suggest thresholds": the engine learns from the last day and stores a recommendation, which
/// the page links to.
#[component]
pub(super) fn Suggest(page: DetailPage) -> impl IntoView {
    let busy = RwSignal::new(false);
    let outcome = RwSignal::new(None::<Result<Recommendation, String>>);
    let suggest = move |_| {
        let target = page.target.get_value();
        busy.set(true);
        outcome.set(None);
        spawn_local(async move {
            let answer = api::recommend(&target.service, &target.breaker, 1).await;
            busy.set(false);
            outcome.set(Some(answer.map_err(|err| err.to_string())));
        });
    };
    view! {
        <section class="suggest" aria-label="suggest thresholds">
            <button type="button" class="suggest" disabled=move || busy.get() on:click=suggest>
                {move || if busy.get() { "Learning from the last day…" } else { "Suggest thresholds" }}
            </button>
            {move || outcome.get().map(|outcome| match outcome {
                Ok(rec) => view! {
                    <p class="ok" data-outcome="ok" data-recommendation=rec.id>
                        {rec.summary} " "
                        <a href=tuning::recommendation_href(rec.id)>"See recommendation " {rec.id}</a>
                    </p>
                }.into_any(),
                Err(err) => view! { <p class="error" data-outcome="error">{err}</p> }.into_any(),
            })}
        </section>
    }
}

/// Force open / close (automatic) / disable / metrics only, each after a confirmation.
#[component]
pub(super) fn Controls(page: DetailPage) -> impl IntoView {
    let asked = RwSignal::new(None::<BreakerMode>);
    let outcome = RwSignal::new(None::<Result<String, String>>);
    let busy = RwSignal::new(false);
    let confirm = move |_| {
        let Some(mode) = asked.get_untracked() else {
            return;
        };
        let target = page.target.get_value();
        asked.set(None);
        busy.set(true);
        spawn_local(async move {
            let result = api::control(&target.service, &target.breaker, mode).await;
            busy.set(false);
            outcome.set(Some(
                result
                    .map(|()| {
                        format!(
                            "{} requested; instances follow within seconds.",
                            mode_label(mode)
                        )
                    })
                    .map_err(|err| err.to_string()),
            ));
            page.reload_config();
        });
    };
    let modes = [
        BreakerMode::ForcedOpen,
        BreakerMode::Automatic,
        BreakerMode::Disabled,
        BreakerMode::MetricsOnly,
    ];
    view! {
        <section class="controls" aria-label="admin controls" data-controls="admin">
            <h3>"Control"</h3>
            <div class="buttons">
                {modes.into_iter().map(|mode| view! {
                    <button type="button" data-mode=mode_key(mode) disabled=move || busy.get()
                        on:click=move |_| asked.set(Some(mode))>
                        {mode_label(mode)}
                    </button>
                }).collect_view()}
            </div>
            {move || asked.get().map(|mode| view! {
                <Confirm
                    question=mode_question(mode)
                    on_yes=Callback::new(move |()| confirm(()))
                    on_no=Callback::new(move |()| asked.set(None))
                />
            })}
            {move || outcome.get().map(|outcome| match outcome {
                Ok(text) => view! { <p class="ok" data-outcome="ok">{text}</p> }.into_any(),
                Err(err) => view! { <p class="error" data-outcome="error">{err}</p> }.into_any(),
            })}
        </section>
    }
}

fn mode_key(mode: BreakerMode) -> &'static str {
    match mode {
        BreakerMode::Automatic => "automatic",
        BreakerMode::ForcedOpen => "forced_open",
        BreakerMode::Disabled => "disabled",
        BreakerMode::MetricsOnly => "metrics_only",
    }
}

fn mode_label(mode: BreakerMode) -> &'static str {
    match mode {
        BreakerMode::Automatic => "Close (automatic)",
        BreakerMode::ForcedOpen => "Force open",
        BreakerMode::Disabled => "Disable",
        BreakerMode::MetricsOnly => "Metrics only",
    }
}

fn mode_question(mode: BreakerMode) -> &'static str {
    match mode {
        BreakerMode::Automatic => "Return the breaker to automatic control on every instance?",
        BreakerMode::ForcedOpen => {
            "Force the breaker open on every instance? Every call will be rejected."
        }
        BreakerMode::Disabled => {
            "Disable the breaker on every instance? Every call will go through, whatever fails."
        }
        BreakerMode::MetricsOnly => {
            "Switch to metrics only? The breaker judges and reports but never rejects."
        }
    }
}
