//! The breaker page's auto-mode panel: whether the server applies the engine's suggestions by
//! itself, its guardrails, the change on its canary and the latest automatic changes. Admins
//! switch it on or off (after a confirmation), set the main guardrails and run a step now.

use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::{AutoTuneSettings, AutoTuneView};

use crate::api;
use crate::app::Session;
use crate::confirm::Confirm;
use crate::detail::Target;
use crate::loading::Loading;
use crate::tuning;

/// The form's fields, as the admin types them.
#[derive(Clone, Copy)]
struct Form {
    max_step_pct: RwSignal<String>,
    canary_min: RwSignal<String>,
    cooldown_h: RwSignal<String>,
    max_false_trips: RwSignal<String>,
}

impl Form {
    fn fill(&self, settings: &AutoTuneSettings) {
        self.max_step_pct
            .set(format!("{}", (settings.max_step * 100.0).round()));
        self.canary_min
            .set(format!("{}", settings.canary_ms as f64 / 60_000.0));
        self.cooldown_h
            .set(format!("{}", settings.cooldown_ms as f64 / 3_600_000.0));
        self.max_false_trips
            .set(settings.max_false_trips.to_string());
    }

    /// The settings with the form's values, or what is wrong with them.
    fn apply(&self, mut settings: AutoTuneSettings) -> Result<AutoTuneSettings, String> {
        let number = |signal: RwSignal<String>, name: &str| {
            signal
                .get_untracked()
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{name}: a number of at least 0, please"))
        };
        settings.max_step = number(self.max_step_pct, "maximum step")? / 100.0;
        settings.canary_ms = (number(self.canary_min, "canary")? * 60_000.0).round() as i64;
        settings.cooldown_ms = (number(self.cooldown_h, "cooldown")? * 3_600_000.0).round() as i64;
        settings.max_false_trips = number(self.max_false_trips, "false trips")?.round() as u32;
        Ok(settings)
    }
}

#[component]
pub fn AutoMode(target: Target) -> impl IntoView {
    let session = expect_context::<Session>();
    let target = StoredValue::new(target);
    let view_state = LocalResource::new(move || {
        let target = target.get_value();
        async move { api::auto_mode(&target.service, &target.breaker).await }
    });
    // What the last action said, and which action (`settings` or `step`).
    let outcome = RwSignal::new(None::<(&'static str, Result<String, String>)>);
    let asked = RwSignal::new(None::<bool>);
    let busy = RwSignal::new(false);
    let form = Form {
        max_step_pct: RwSignal::new(String::new()),
        canary_min: RwSignal::new(String::new()),
        cooldown_h: RwSignal::new(String::new()),
        max_false_trips: RwSignal::new(String::new()),
    };
    // The form shows the settings as last loaded or saved.
    Effect::new(move |_| {
        view_state.with(|view| {
            if let Some(Ok(view)) = view {
                form.fill(&view.settings);
            }
        });
    });
    // The stored settings; nothing is saved before they have loaded.
    let stored = move || {
        view_state.with_untracked(|view| match view {
            Some(Ok(view)) => Some(view.settings.clone()),
            _ => None,
        })
    };
    let save = move |enabled: bool| {
        let Some(stored) = stored() else {
            outcome.set(Some((
                "settings",
                Err("the settings have not loaded".into()),
            )));
            return;
        };
        // Switching off changes nothing else: the form's edits are not saved with it.
        let settings = if enabled {
            form.apply(stored)
        } else {
            Ok(stored)
        };
        let settings = match settings {
            Ok(mut settings) => {
                settings.enabled = enabled;
                settings
            }
            Err(err) => {
                outcome.set(Some(("settings", Err(err))));
                return;
            }
        };
        let target = target.get_value();
        busy.set(true);
        spawn_local(async move {
            let answer = api::set_auto_mode(&target.service, &target.breaker, &settings).await;
            busy.set(false);
            match answer {
                Ok(view) => {
                    outcome.set(Some((
                        "settings",
                        Ok(format!(
                            "Auto mode {}.",
                            if view.settings.enabled { "on" } else { "off" }
                        )),
                    )));
                    // The server's answer is the new state: no need to load it again.
                    view_state.set(Some(Ok(view)));
                }
                Err(err) => outcome.set(Some(("settings", Err(err.to_string())))),
            }
        });
    };
    let confirm = move |_| {
        if let Some(enabled) = asked.get_untracked() {
            asked.set(None);
            save(enabled);
        }
    };
    let run = move |_| {
        let target = target.get_value();
        busy.set(true);
        outcome.set(None);
        spawn_local(async move {
            let answer = api::auto_step(&target.service, &target.breaker).await;
            busy.set(false);
            outcome.set(Some((
                "step",
                answer
                    .map(|step| {
                        format!(
                            "{}: {}",
                            step.action.as_str().replace('_', " "),
                            step.detail
                        )
                    })
                    .map_err(|err| err.to_string()),
            )));
            view_state.refetch();
        });
    };
    let field = move |label: &'static str, name: &'static str, signal: RwSignal<String>| {
        view! {
            <label>
                {label}
                <input type="number" min="0" step="any" name=name
                    prop:value=move || signal.get()
                    on:input=move |ev| signal.set(event_target_value(&ev)) />
            </label>
        }
    };
    view! {
        <section class="auto-mode" aria-label="auto mode">
            <h3>"Auto mode"</h3>
            <Loading what="auto mode">
                {move || view_state.get().map(|view| view.map(state))}
            </Loading>
            <Show when=move || session.is_admin()>
                <div class="auto-form">
                    {field("maximum step (%)", "max_step", form.max_step_pct)}
                    {field("canary (minutes)", "canary", form.canary_min)}
                    {field("cooldown (hours)", "cooldown", form.cooldown_h)}
                    {field("false trips allowed", "false_trips", form.max_false_trips)}
                </div>
                <div class="buttons">
                    {move || {
                        let enabled = view_state.with(|view| {
                            matches!(view, Some(Ok(view)) if view.settings.enabled)
                        });
                        view! {
                            <button type="button" data-auto=if enabled { "off" } else { "on" }
                                disabled=move || busy.get() on:click=move |_| asked.set(Some(!enabled))>
                                {if enabled { "Switch auto mode off" } else { "Switch auto mode on" }}
                            </button>
                            {enabled.then(|| view! {
                                <button type="button" data-auto="save" disabled=move || busy.get()
                                    on:click=move |_| save(true)>"Save guardrails"</button>
                                <button type="button" data-auto="run" disabled=move || busy.get()
                                    on:click=run>"Run a step now"</button>
                            })}
                        }
                    }}
                </div>
                {move || asked.get().map(|enable| view! {
                    <Confirm
                        question=if enable {
                            "Switch auto mode on? The server will apply the engine's suggestions to this breaker by itself, within these guardrails, one canary instance first."
                        } else {
                            "Switch auto mode off? A change still on its canary is rolled back."
                        }
                        on_yes=Callback::new(move |()| confirm(()))
                        on_no=Callback::new(move |()| asked.set(None))
                    />
                })}
            </Show>
            {move || outcome.get().map(|(kind, outcome)| match outcome {
                Ok(text) => view! { <p class="ok" data-outcome="ok" data-kind=kind>{text}</p> }.into_any(),
                Err(err) => view! { <p class="error" data-outcome="error" data-kind=kind>{err}</p> }.into_any(),
            })}
        </section>
    }
}

/// Whether auto mode is on, with its guardrails, the change on its canary and the latest changes.
fn state(view: AutoTuneView) -> impl IntoView {
    let now = js_sys::Date::now() as i64;
    let enabled = view.settings.enabled;
    view! {
        <p class="auto-state" data-enabled=enabled.to_string()>
            {if enabled { "On: " } else { "Off. When on: " }}
            {tuning::auto_settings_line(&view.settings)}
        </p>
        {view.canary.as_ref().map(|change| view! {
            <p class="auto-canary" data-version=change.version
                data-instance=change.canary_instance.clone().unwrap_or_default()>
                {tuning::auto_change_line(change, now)}
            </p>
        })}
        {(!view.changes.is_empty()).then(|| view! {
            <ul class="auto-changes">
                {view.changes.iter().map(|change| view! {
                    <li data-status=change.status.as_str()>{tuning::auto_change_line(change, now)}</li>
                }).collect_view()}
            </ul>
        })}
    }
}
