//! A breaker's detail page (`/breaker?service=S&breaker=B&range=1h` or `&from=…&to=…`): state
//! timeline with one lane per instance, the four series charts (brush one to zoom), the
//! transition table, the current config with per-instance sync and lint findings, and admin
//! controls (including "Suggest thresholds", which asks the engine for a recommendation).
//!
//! Charts come from the shared `charts` crate as SVG strings (plotters escapes every text);
//! everything else binds text nodes and attributes only.

use std::time::Duration;

use charts::{Kind, geometry};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};
use protocol::{
    BreakerMode, ConfigView, LintFinding, Recommendation, Series, Timeline, TransitionRecord,
};
use wasm_bindgen::JsCast;

use crate::api;
use crate::app::Session;
use crate::confirm::Confirm;
use crate::format;
use crate::live::Live;
use crate::range::{self, PRESETS, TimeRange};
use crate::tuning;

/// A live range is fetched again this often.
const REFRESH: Duration = Duration::from_secs(10);
/// How many transitions the table shows.
const TRANSITIONS_SHOWN: u32 = 50;

/// What one fetch of the range brought.
#[derive(Clone, Debug, PartialEq)]
struct Loaded {
    series: Series,
    timeline: Timeline,
}

/// The breaker the page shows.
#[derive(Clone, Debug, PartialEq)]
struct Target {
    service: String,
    breaker: String,
}

#[derive(Clone, Copy)]
struct DetailPage {
    target: Memo<Option<Target>>,
    range: Memo<TimeRange>,
    loaded: RwSignal<Option<Result<Loaded, String>>>,
    transitions: RwSignal<Option<Result<Vec<TransitionRecord>, String>>>,
    config: RwSignal<Option<Result<ConfigView, String>>>,
    lint: RwSignal<Option<Result<Vec<LintFinding>, String>>>,
    /// Counts completed range fetches: the `data-fetches` hook.
    fetches: RwSignal<u64>,
    generation: StoredValue<u64>,
}

#[component]
pub fn Detail() -> impl IntoView {
    let live = expect_context::<Live>();
    let query = use_query_map();
    let target = Memo::new(move |_| {
        query.with(|query| {
            Some(Target {
                service: query.get("service")?,
                breaker: query.get("breaker")?,
            })
        })
    });
    let range = Memo::new(move |_| query.with(|query| TimeRange::from_query(|key| query.get(key))));
    let page = DetailPage {
        target,
        range,
        loaded: RwSignal::new(None),
        transitions: RwSignal::new(None),
        config: RwSignal::new(None),
        lint: RwSignal::new(None),
        fetches: RwSignal::new(0),
        generation: StoredValue::new(0),
    };
    let tick = RwSignal::new(0_u64);
    let timer = set_interval_with_handle(
        move || {
            if page.range.get_untracked().is_live() {
                tick.update(|tick| *tick += 1);
            }
        },
        REFRESH,
    );
    on_cleanup(move || {
        if let Ok(timer) = timer {
            timer.clear();
        }
    });
    Effect::new(move |_| {
        tick.track();
        live.transitions_seen.track();
        load_range(page);
    });
    Effect::new(move |_| {
        page.target.track();
        load_config(page);
    });

    let session = expect_context::<Session>();
    let auto_target = Memo::new(move |_| target.get().map(|t| (t.service, t.breaker)));
    let title = move || {
        target.with(|target| match target {
            Some(target) => format!("{} / {}", target.service, target.breaker),
            None => "No breaker named in the link".to_string(),
        })
    };
    let state = move || {
        let target = target.get()?;
        live.entry(&(target.service, target.breaker))
            .map(|entry| entry.summary.state)
    };
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
            <RangeBar page=page />
            <TimelineView page=page />
            <ChartsView page=page />
            <div class="detail-columns">
                <TransitionsTable page=page />
                <div>
                    <ConfigPanel page=page />
                    <crate::auto_mode::AutoMode target=auto_target />
                    <Show when=move || session.is_admin()>
                        <Controls page=page />
                        <Suggest page=page />
                    </Show>
                </div>
            </div>
        </section>
    }
}

fn load_range(page: DetailPage) {
    let Some(target) = page.target.get_untracked() else {
        return;
    };
    let (from_ms, to_ms) = page
        .range
        .get_untracked()
        .bounds(js_sys::Date::now() as i64);
    page.generation.update_value(|generation| *generation += 1);
    let generation = page.generation.get_value();
    spawn_local(async move {
        let (series, timeline, transitions) = futures_util::future::join3(
            api::series(&target.service, &target.breaker, from_ms, to_ms),
            api::timeline(&target.service, &target.breaker, from_ms, to_ms),
            api::transitions(&target.service, &target.breaker, TRANSITIONS_SHOWN),
        )
        .await;
        if page.generation.get_value() != generation {
            return;
        }
        let loaded = match (series, timeline) {
            (Ok(series), Ok(timeline)) => Ok(Loaded { series, timeline }),
            (Err(err), _) | (_, Err(err)) => Err(err.to_string()),
        };
        page.loaded.set(Some(loaded));
        page.transitions
            .set(Some(transitions.map_err(|err| err.to_string())));
        page.fetches.update(|fetches| *fetches += 1);
    });
}

fn load_config(page: DetailPage) {
    let Some(target) = page.target.get_untracked() else {
        return;
    };
    spawn_local(async move {
        let (config, lint) = futures_util::future::join(
            api::config(&target.service, &target.breaker),
            api::lint(&target.service, &target.breaker),
        )
        .await;
        page.config.set(Some(config.map_err(|err| err.to_string())));
        page.lint.set(Some(lint.map_err(|err| err.to_string())));
    });
}

/// Goes to the same breaker with another range.
fn go_to_range(page: DetailPage, navigate: &impl Fn(&str, NavigateOptions), range: TimeRange) {
    let Some(target) = page.target.get_untracked() else {
        return;
    };
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
fn RangeBar(page: DetailPage) -> impl IntoView {
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

#[component]
fn TimelineView(page: DetailPage) -> impl IntoView {
    let rendered = Memo::new(move |_| {
        page.loaded.with(|loaded| match loaded {
            Some(Ok(loaded)) => Some((
                charts::timeline::render(&loaded.timeline, geometry::WIDTH),
                charts::timeline::layout(&loaded.timeline),
            )),
            _ => None,
        })
    });
    view! {
        <section class="timeline" aria-label="state timeline">
            {move || rendered.get().map(|(svg, lanes)| {
                let width = f64::from(svg.width);
                let height = f64::from(svg.height);
                let left = f64::from(svg.plot_left) / width * 100.0;
                let span = f64::from(svg.plot_right - svg.plot_left) / width * 100.0;
                let lane_height = f64::from(svg.plot_bottom - svg.plot_top) / lanes.len().max(1) as f64;
                let n_lanes = lanes.len();
                view! {
                    <div class="timeline-wrap" data-lanes=n_lanes>
                        <div class="svg" inner_html=svg.svg.clone()></div>
                        {lanes.into_iter().enumerate().map(|(idx, lane)| {
                            let top = (f64::from(svg.plot_top) + lane_height * idx as f64) / height * 100.0;
                            let lane_style = format!(
                                "top:{top:.3}%;height:{:.3}%;left:{left:.3}%;width:{span:.3}%",
                                lane_height / height * 100.0
                            );
                            view! {
                                <div class="lane" data-instance=lane.instance.clone() style=lane_style>
                                    {lane.segments.into_iter().map(|segment| {
                                        let style = format!(
                                            "left:{:.3}%;width:{:.3}%",
                                            segment.from_fraction * 100.0,
                                            (segment.to_fraction - segment.from_fraction) * 100.0
                                        );
                                        view! {
                                            <div class="segment" data-state=segment.state.as_str() title=segment.tooltip style=style></div>
                                        }
                                    }).collect_view()}
                                </div>
                            }
                        }).collect_view()}
                    </div>
                }
            })}
        </section>
    }
}

#[component]
fn ChartsView(page: DetailPage) -> impl IntoView {
    let navigate = use_navigate();
    let slow_threshold = Memo::new(move |_| {
        page.config.with(|config| match config {
            Some(Ok(view)) => view
                .current
                .as_ref()
                .and_then(|current| current.config.slow_call_rate_threshold),
            _ => None,
        })
    });
    let svgs = Memo::new(move |_| {
        let options = charts::Options {
            slow_call_rate_threshold: slow_threshold.get(),
            ..charts::Options::default()
        };
        page.loaded.with(|loaded| match loaded {
            Some(Ok(loaded)) => Ok(Kind::ALL
                .iter()
                .map(|&kind| (kind, charts::render(kind, &loaded.series, &options)))
                .collect::<Vec<_>>()),
            Some(Err(err)) => Err(err.clone()),
            None => Ok(Vec::new()),
        })
    });
    let bounds = Memo::new(move |_| {
        page.loaded.with(|loaded| match loaded {
            Some(Ok(loaded)) => (loaded.series.from_ms, loaded.series.to_ms),
            _ => (0, 0),
        })
    });
    // The brush: which chart, and the SVG x where the drag started and is now.
    let brush = RwSignal::new(None::<(Kind, f64, f64)>);
    view! {
        <section
            class="charts"
            data-from=move || bounds.get().0
            data-to=move || bounds.get().1
            data-fetches=move || page.fetches.get()
        >
            {move || match svgs.get() {
                Err(err) => view! { <p class="error">"Could not load the series: " {err}</p> }.into_any(),
                Ok(list) => list.into_iter().map(|(kind, svg)| {
                    let navigate = navigate.clone();
                    let overlay = move || brush.get().filter(|(on, _, _)| *on == kind).map(|(_, a, b)| {
                        let width = f64::from(geometry::WIDTH);
                        format!(
                            "left:{:.3}%;width:{:.3}%",
                            a.min(b) / width * 100.0,
                            (a - b).abs() / width * 100.0
                        )
                    });
                    view! {
                        <div
                            class="chart"
                            id=format!("chart-{}", kind.as_str())
                            data-kind=kind.as_str()
                            on:mousedown=move |event| {
                                event.prevent_default();
                                let x = svg_x(&event);
                                brush.set(Some((kind, x, x)));
                            }
                            on:mousemove=move |event| {
                                if brush.with_untracked(|brush| brush.is_some_and(|(on, _, _)| on == kind)) {
                                    let x = svg_x(&event);
                                    brush.update(|brush| if let Some(brush) = brush { brush.2 = x });
                                }
                            }
                            on:mouseleave=move |_| brush.set(None)
                            on:mouseup=move |_| {
                                let Some((_, a, b)) = brush.get_untracked() else { return };
                                brush.set(None);
                                let (from_ms, to_ms) = bounds.get_untracked();
                                let at = |x| geometry::time_at(x, geometry::WIDTH, from_ms, to_ms);
                                if let Some(range) = TimeRange::brushed(at(a), at(b)) {
                                    go_to_range(page, &navigate, range);
                                }
                            }
                        >
                            <div class="svg" inner_html=svg></div>
                            {move || overlay().map(|style| view! { <div class="brush" style=style></div> })}
                        </div>
                    }
                }).collect_view().into_any(),
            }}
        </section>
    }
}

/// The pointer's x in the chart's SVG coordinates (the SVG is scaled to the element's width).
fn svg_x(event: &leptos::ev::MouseEvent) -> f64 {
    let Some(element) = event
        .current_target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
    else {
        return 0.0;
    };
    let rect = element.get_bounding_client_rect();
    if rect.width() <= 0.0 {
        return 0.0;
    }
    (f64::from(event.client_x()) - rect.left()) / rect.width() * f64::from(geometry::WIDTH)
}

#[component]
fn TransitionsTable(page: DetailPage) -> impl IntoView {
    view! {
        <section class="transitions" aria-label="transitions">
            <h3>"Transitions"</h3>
            {move || match page.transitions.get() {
                None => view! { <p class="hint">"Loading…"</p> }.into_any(),
                Some(Err(err)) => view! { <p class="error">{err}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="empty">"No transitions yet."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <table class="table">
                        <thead><tr>
                            <th>"time (UTC)"</th><th>"instance"</th><th>"from → to"</th>
                            <th>"trigger"</th><th>"config"</th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|record| {
                                let transition = record.transition;
                                let trigger = transition.trigger.as_ref()
                                    .map(charts::timeline::trigger_text)
                                    .unwrap_or_else(|| "–".into());
                                view! {
                                    <tr data-id=record.id data-to=transition.to.as_str()>
                                        <td>{format::timestamp(transition.at_ms)}</td>
                                        <td>{record.instance}</td>
                                        <td>
                                            {charts::timeline::state_label(transition.from)} " → "
                                            {charts::timeline::state_label(transition.to)}
                                        </td>
                                        <td>{trigger}</td>
                                        <td>"v" {transition.config_version}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
fn ConfigPanel(page: DetailPage) -> impl IntoView {
    view! {
        <section class="config" aria-label="config">
            <h3>"Config"</h3>
            {move || match page.config.get() {
                None => view! { <p class="hint">"Loading…"</p> }.into_any(),
                Some(Err(err)) => view! { <p class="error">{err}</p> }.into_any(),
                Some(Ok(view)) => {
                    let current = view.current.map(|stored| {
                        let config = stored.config;
                        let rows = tuning::config_fields(&config);
                        view! {
                            <p data-config-version=config.version>
                                "version " {config.version} " by " {stored.created_by} " at "
                                {format::timestamp(stored.created_ms)} " UTC"
                            </p>
                            <dl class="config-fields">
                                {rows.into_iter().map(|(name, value)| view! { <dt>{name}</dt><dd>{value}</dd> }).collect_view()}
                            </dl>
                        }
                    });
                    let current = current.map(|view| view.into_any()).unwrap_or_else(|| {
                        view! { <p class="hint">"No stored config: the instances run what their service compiled in."</p> }.into_any()
                    });
                    view! {
                        {current}
                        <LintFindings page=page />
                        <h4>"Instances"</h4>
                        <table class="table sync">
                            <thead><tr><th>"instance"</th><th>"running"</th><th>"in sync"</th><th>"refused"</th></tr></thead>
                            <tbody>
                                {view.instances.into_iter().map(|sync| {
                                    let refused = sync.refused.map(|refusal| {
                                        format!("v{}: {} ({})", refusal.version, refusal.field, refusal.rule)
                                    }).unwrap_or_else(|| "–".into());
                                    let instance = sync.instance.clone();
                                    view! {
                                        <tr data-instance=instance data-in-sync=sync.in_sync.to_string()>
                                            <td>{sync.instance}</td>
                                            <td>"v" {sync.running_version}</td>
                                            <td>{if sync.in_sync { "✓ yes" } else { "✕ no" }}</td>
                                            <td>{refused}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }
            }}
        </section>
    }
}

/// What lint says about the current config against the last 7 days.
#[component]
fn LintFindings(page: DetailPage) -> impl IntoView {
    move || match page.lint.get() {
        None => None,
        Some(Err(err)) => Some(view! { <p class="error lint-error">"Lint: " {err}</p> }.into_any()),
        Some(Ok(findings)) if findings.is_empty() => Some(
            view! { <p class="hint lint-none">"Lint: no findings against the last 7 days."</p> }
                .into_any(),
        ),
        Some(Ok(findings)) => Some(
            view! {
                <h4>"Lint"</h4>
                <ul class="lint">
                    {findings.into_iter().map(|finding| view! {
                        <li data-rule=finding.rule.clone()>{finding.detail}</li>
                    }).collect_view()}
                </ul>
            }
            .into_any(),
        ),
    }
}

/// "Suggest thresholds": the engine learns from the last day and stores a recommendation, which
/// the page links to.
#[component]
fn Suggest(page: DetailPage) -> impl IntoView {
    let busy = RwSignal::new(false);
    let outcome = RwSignal::new(None::<Result<Recommendation, String>>);
    let suggest = move |_| {
        let Some(target) = page.target.get_untracked() else {
            return;
        };
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
fn Controls(page: DetailPage) -> impl IntoView {
    let asked = RwSignal::new(None::<BreakerMode>);
    let outcome = RwSignal::new(None::<Result<String, String>>);
    let busy = RwSignal::new(false);
    let confirm = move |_| {
        let (Some(mode), Some(target)) = (asked.get_untracked(), page.target.get_untracked())
        else {
            return;
        };
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
            load_config(page);
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
