//! A breaker's detail page (`/breaker?service=S&breaker=B&range=1h` or `&from=…&to=…`): state
//! timeline with one lane per instance, the four series charts (brush one to zoom), the
//! transition table, the current config with per-instance sync and lint findings, and admin
//! controls (including "Suggest thresholds", which asks the engine for a recommendation).
//!
//! Each panel reads its own `LocalResource` inside [`crate::loading::Loading`]. The series and
//! the timeline are fetched again when the range changes, every 10 s while the range is live, and
//! whenever the stream brings a transition; the transitions table on the same refreshes but not
//! on a range change (it lists the newest ones); the config and its lint once, and again after an
//! admin control. Another breaker's link mounts a fresh page, so no panel ever shows one
//! breaker's data under another's name.
//!
//! The panels: [`range_bar`] (presets, a custom range, and the navigation every range change goes
//! through), [`charts`] (the timeline's lanes and the four brushable charts), [`transitions`],
//! [`config`] (config, per-instance sync, lint) and [`admin`] (controls, Suggest thresholds).

mod admin;
mod charts;
mod config;
mod range_bar;
mod transitions;

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use protocol::{ConfigView, LintFinding, Series, Timeline, TransitionRecord};

use crate::api::{self, ApiError};
use crate::app::Session;
use crate::format;
use crate::live::Live;
use crate::range::TimeRange;

/// A live range is fetched again this often.
const REFRESH: Duration = Duration::from_secs(10);
/// How many transitions the table shows.
const TRANSITIONS_SHOWN: u32 = 50;

/// The breaker a page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub service: String,
    pub breaker: String,
}

/// One breaker's page: what the panels read, as `Copy` handles.
#[derive(Clone, Copy)]
struct DetailPage {
    target: StoredValue<Target>,
    range: Memo<TimeRange>,
    series: LocalResource<Result<Series, ApiError>>,
    timeline: LocalResource<Result<Timeline, ApiError>>,
    transitions: LocalResource<Result<Vec<TransitionRecord>, ApiError>>,
    config: LocalResource<Result<ConfigView, ApiError>>,
    lint: LocalResource<Result<Vec<LintFinding>, ApiError>>,
    /// Counts completed series fetches: the `data-fetches` hook.
    fetches: RwSignal<u64>,
}

#[component]
pub fn Detail() -> impl IntoView {
    let query = use_query_map();
    let target = Memo::new(move |_| {
        query.with(|query| {
            Some(Target {
                service: query.get("service")?,
                breaker: query.get("breaker")?,
            })
        })
    });
    move || match target.get() {
        Some(target) => view! { <BreakerDetail target=target /> }.into_any(),
        None => view! {
            <section class="detail" data-page="detail">
                <header class="detail-head">
                    <a href="/" class="back">"← overview"</a>
                    <h2>"No breaker named in the link"</h2>
                </header>
            </section>
        }
        .into_any(),
    }
}

#[component]
fn BreakerDetail(target: Target) -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    let query = use_query_map();
    let range = Memo::new(move |_| query.with(|query| TimeRange::from_query(|key| query.get(key))));
    let page = DetailPage::new(target.clone(), range, live);

    let title = format!("{} / {}", target.service, target.breaker);
    let key = (target.service.clone(), target.breaker.clone());
    let state = move || live.entry(&key).map(|entry| entry.summary.state);
    view! {
        <section class="detail" data-page="detail">
            <header class="detail-head">
                <a href="/" class="back">"← overview"</a>
                <h2>{title}</h2>
                {move || state().map(|state| view! {
                    <span class="state-badge" data-state=state.as_str()>
                        {format::state_icon(state)} " " {format::state_text(state)}
                    </span>
                })}
            </header>
            <range_bar::RangeBar page=page />
            <charts::TimelineView page=page />
            <charts::ChartsView page=page />
            <div class="detail-columns">
                <transitions::TransitionsTable page=page />
                <div>
                    <config::ConfigPanel page=page />
                    <crate::auto_mode::AutoMode target=target />
                    <Show when=move || session.is_admin()>
                        <admin::Controls page=page />
                        <admin::Suggest page=page />
                    </Show>
                </div>
            </div>
        </section>
    }
}

// === impl DetailPage ===

impl DetailPage {
    /// Creates the page's resources, and the timer that refreshes a live range.
    fn new(target: Target, range: Memo<TimeRange>, live: Live) -> DetailPage {
        let target = StoredValue::new(target);
        let tick = Trigger::new();
        let timer = set_interval_with_handle(
            move || {
                if range.get_untracked().is_live() {
                    tick.notify();
                }
            },
            REFRESH,
        );
        on_cleanup(move || {
            if let Ok(timer) = timer {
                timer.clear();
            }
        });
        // What refreshes the range's data besides a range change.
        let refresh = move || {
            tick.track();
            live.transitions_seen.track();
        };
        // The range's bounds, taken again on each refresh so a live range moves with the clock.
        let window = Memo::new(move |_| {
            refresh();
            range.get().bounds(js_sys::Date::now() as i64)
        });
        let fetches = RwSignal::new(0);

        let series = LocalResource::new(move || {
            // Tracked as well as `window`: a refresh of a fixed range leaves `window` as it was.
            refresh();
            let (from_ms, to_ms) = window.get();
            let target = target.get_value();
            async move {
                let series = api::series(&target.service, &target.breaker, from_ms, to_ms).await;
                fetches.update(|fetches| *fetches += 1);
                series
            }
        });
        let timeline = LocalResource::new(move || {
            refresh();
            let (from_ms, to_ms) = window.get();
            let target = target.get_value();
            async move { api::timeline(&target.service, &target.breaker, from_ms, to_ms).await }
        });
        let transitions = LocalResource::new(move || {
            refresh();
            let target = target.get_value();
            async move { api::transitions(&target.service, &target.breaker, TRANSITIONS_SHOWN).await }
        });
        let config = LocalResource::new(move || {
            let target = target.get_value();
            async move { api::config(&target.service, &target.breaker).await }
        });
        let lint = LocalResource::new(move || {
            let target = target.get_value();
            async move { api::lint(&target.service, &target.breaker).await }
        });
        DetailPage {
            target,
            range,
            series,
            timeline,
            transitions,
            config,
            lint,
            fetches,
        }
    }

    /// Loads the config and its lint again, after an admin changed something.
    fn reload_config(self) {
        self.config.refetch();
        self.lint.refetch();
    }
}
