//! The recommendations page (`/recommendations`, `?id=N` opens one): every suggestion of the
//! adaptive engine, newest first, each with its evidence on expanding it: current and suggested
//! config side by side (differing fields highlighted), the two back-tests, the anomalous periods
//! and warnings. Admins accept or reject after a confirmation (viewers see no buttons). The text
//! comes from [`crate::tuning`]. Alerts are in [`crate::alerts_page`].

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_query_map;
use protocol::Recommendation;

use crate::api::{self, ApiError};
use crate::app::Session;
use crate::confirm::Confirm;
use crate::format;
use crate::loading::Loading;
use crate::tuning;

type List = LocalResource<Result<Vec<Recommendation>, ApiError>>;

#[component]
pub fn Recommendations() -> impl IntoView {
    let query = use_query_map();
    let selected =
        Memo::new(move |_| query.with(|query| tuning::parse_id(query.get("id").as_deref())));
    let list: List = LocalResource::new(api::recommendations);
    let problem = RwSignal::new(None::<String>);
    view! {
        <section class="page recommendations" data-page="recommendations">
            <h2>"Recommendations"</h2>
            <p class="hint">
                "Suggestions of the adaptive engine, learned from a breaker's history. "
                "Admins make one from a breaker's page (Suggest thresholds)."
            </p>
            {move || problem.get().map(|problem| view! { <p class="error" role="alert">{problem}</p> })}
            <Loading what="the recommendations">
                {move || list.get().map(|loaded| loaded.map(|recs| rec_list(recs, selected, list, problem)))}
            </Loading>
        </section>
    }
}

/// The cards, the one the link names (`?id=N`) open.
fn rec_list(
    recs: Vec<Recommendation>,
    selected: Memo<Option<i64>>,
    list: List,
    problem: RwSignal<Option<String>>,
) -> AnyView {
    if recs.is_empty() {
        return view! { <p class="empty">"No recommendations yet."</p> }.into_any();
    }
    view! {
        <div class="rec-list">
            {recs
                .into_iter()
                .map(|rec| {
                    let open = selected.get_untracked() == Some(rec.id);
                    view! { <RecCard rec=rec open=open list=list problem=problem /> }
                })
                .collect_view()}
        </div>
    }
    .into_any()
}

#[component]
fn RecCard(
    rec: Recommendation,
    open: bool,
    list: List,
    problem: RwSignal<Option<String>>,
) -> impl IntoView {
    let session = expect_context::<Session>();
    let id = rec.id;
    let is_open = rec.status == "open";
    let asked = RwSignal::new(None::<bool>);
    let busy = RwSignal::new(false);
    // Replaces this recommendation in the list with the server's answer.
    let confirm = move |_| {
        let Some(accept) = asked.get_untracked() else {
            return;
        };
        asked.set(None);
        busy.set(true);
        spawn_local(async move {
            let answer = api::decide_recommendation(id, accept).await;
            busy.set(false);
            match answer {
                Ok(updated) => {
                    problem.set(None);
                    list.update(|list| {
                        if let Some(Ok(recs)) = list
                            && let Some(slot) = recs.iter_mut().find(|rec| rec.id == id)
                        {
                            *slot = updated;
                        }
                    });
                }
                Err(err) => problem.set(Some(err.to_string())),
            }
        });
    };
    let href = format::detail_href(&rec.service, &rec.breaker);
    let diff = tuning::config_diff(&rec.current, &rec.suggested);
    let backtests = tuning::backtest_rows(&rec.current_backtest, &rec.suggested_backtest);
    let decision = tuning::decision_text(&rec);
    let applied = rec.applied_version;
    // The before/after chart is drawn when the evidence is first opened.
    let expanded = RwSignal::new(open);
    let details = NodeRef::<leptos::html::Details>::new();
    let replay = rec.replay.clone();
    let replay_chart = move || {
        let trace = replay.as_ref()?;
        expanded
            .get()
            .then(|| view! {
                <h4>"Replay over the history"</h4>
                <p class="hint">"Shaded: the anomalous periods found. Refusals inside them cut an outage short; outside them they lose good calls."</p>
                <ReplayChart trace=trace.clone() />
            })
    };
    let history = format!(
        "learned from {} to {} UTC, against config version {}",
        format::timestamp(rec.from_ms),
        format::timestamp(rec.to_ms),
        rec.base_version
    );
    view! {
        <article class="rec-card" data-id=id data-status=rec.status.as_str()>
            <header class="rec-head">
                <span class="rec-status">{rec.status.as_str()}</span>
                <a class="rec-breaker" href=href.clone()>{rec.service.clone()} " / " {rec.breaker.clone()}</a>
                <span class="rec-confidence" title="confidence">"confidence " {tuning::confidence_text(rec.confidence)}</span>
                {(!rec.doubts.is_empty()).then(|| view! {
                    <span class="rec-low" title="auto mode does not apply it; check the doubts before accepting">"low confidence"</span>
                })}
                <span class="rec-made">"made " {format::timestamp(rec.made_ms)} " UTC"</span>
            </header>
            <p class="rec-summary">{rec.summary.clone()}</p>
            {(!rec.explanation.is_empty()).then(|| view! {
                <ul class="rec-why">
                    {rec.explanation.iter().map(|line| view! { <li>{line.clone()}</li> }).collect_view()}
                </ul>
            })}
            {(!rec.doubts.is_empty()).then(|| view! {
                <div class="rec-doubts">
                    <strong>"Why it may be wrong:"</strong>
                    <ul>
                        {rec.doubts.iter().map(|doubt| view! { <li>{doubt.clone()}</li> }).collect_view()}
                    </ul>
                </div>
            })}
            {decision.map(|text| view! {
                <p class="rec-decision" data-applied-version=applied.map(|v| v.to_string())>
                    {text}
                    {applied.map(|_| view! {
                        " · " <a href=href.clone()>"see the breaker's config and per-instance sync"</a>
                    })}
                </p>
            })}
            <details class="rec-detail" open=open node_ref=details
                on:toggle=move |_| {
                    if details.get_untracked().is_some_and(|d| d.open()) {
                        expanded.set(true);
                    }
                }>
                <summary>"evidence"</summary>
                <p class="hint">{history}</p>
                <h4>"Config"</h4>
                <table class="table rec-diff">
                    <thead><tr><th>"field"</th><th>"current"</th><th>"suggested"</th></tr></thead>
                    <tbody>
                        {diff.into_iter().map(|row| view! {
                            <tr class:differs=row.differs data-differs=row.differs.to_string()>
                                <td>{row.name}</td><td>{row.current}</td><td>{row.suggested}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <h4>"Back-test over the history"</h4>
                <table class="table rec-backtest">
                    <thead><tr><th></th><th>"current"</th><th>"suggested"</th></tr></thead>
                    <tbody>
                        {backtests.into_iter().map(|(name, current, suggested)| view! {
                            <tr><td>{name}</td><td>{current}</td><td>{suggested}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
                {replay_chart}
                <h4>"Anomalous periods"</h4>
                {if rec.anomalies.is_empty() {
                    view! { <p class="empty">"None found."</p> }.into_any()
                } else {
                    view! {
                        <ul class="rec-anomalies">
                            {rec.anomalies.iter().map(|period| view! { <li>{tuning::anomaly_line(period)}</li> }).collect_view()}
                        </ul>
                    }.into_any()
                }}
                {(!rec.warnings.is_empty()).then(|| view! {
                    <h4>"Warnings"</h4>
                    <ul class="rec-warnings">
                        {rec.warnings.iter().map(|warning| view! { <li>{warning.clone()}</li> }).collect_view()}
                    </ul>
                })}
                {is_open.then(|| view! {
                    <Show when=move || session.is_admin()>
                        <div class="rec-actions">
                            <button type="button" class="accept" disabled=move || busy.get()
                                on:click=move |_| asked.set(Some(true))>"Accept"</button>
                            <button type="button" class="reject" disabled=move || busy.get()
                                on:click=move |_| asked.set(Some(false))>"Reject"</button>
                        </div>
                        {move || asked.get().map(|accept| view! {
                            <Confirm
                                question=if accept {
                                    "Accept? The suggested config becomes the breaker's next version and reaches every instance."
                                } else {
                                    "Reject this recommendation?"
                                }
                                on_yes=Callback::new(move |()| confirm(()))
                                on_no=Callback::new(move |()| asked.set(None))
                            />
                        })}
                    </Show>
                })}
            </details>
        </article>
    }
}

/// The before/after replay chart, drawn as wide as it is shown.
#[component]
fn ReplayChart(trace: protocol::ReplayTrace) -> impl IntoView {
    let element = NodeRef::<leptos::html::Div>::new();
    let width = crate::shown::shown_width(element);
    let svg = move || {
        width
            .get()
            .map(|width| charts::replay::render(&trace, width.svg_px, Some(width.css_px)))
            .unwrap_or_default()
    };
    view! { <div class="svg rec-replay" node_ref=element inner_html=svg></div> }
}
