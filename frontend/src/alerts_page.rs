//! The alerts page: every alert, newest first, with its breakers, history and deliveries; admins
//! acknowledge and silence (viewers see no buttons). Alert news on the live stream reloads it.
//! The text comes from [`crate::alerts`].

use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::Alert;

use crate::alerts::{self, SILENCES};
use crate::api::{self, ApiError};
use crate::app::Session;
use crate::format;
use crate::live::Live;
use crate::loading::Loading;

type List = LocalResource<Result<Vec<Alert>, ApiError>>;

#[component]
pub fn Alerts() -> impl IntoView {
    let live = expect_context::<Live>();
    // Loads on mount and again on every alert news from the stream.
    let alerts: List = LocalResource::new(move || {
        live.alert_notice.track();
        api::alerts()
    });
    let problem = RwSignal::new(None::<String>);
    view! {
        <section class="page alerts" data-page="alerts">
            <h2>"Alerts"</h2>
            {move || problem.get().map(|problem| view! { <p class="error" role="alert">{problem}</p> })}
            <Loading what="the alerts">
                {move || alerts.get().map(|loaded| loaded.map(|list| alert_list(list, alerts, problem)))}
            </Loading>
        </section>
    }
}

fn alert_list(list: Vec<Alert>, alerts: List, problem: RwSignal<Option<String>>) -> AnyView {
    if list.is_empty() {
        return view! { <p class="empty">"No alerts."</p> }.into_any();
    }
    view! {
        <div class="alert-list">
            {list
                .into_iter()
                .map(|alert| view! { <AlertCard alert=alert alerts=alerts problem=problem /> })
                .collect_view()}
        </div>
    }
    .into_any()
}

#[component]
fn AlertCard(alert: Alert, alerts: List, problem: RwSignal<Option<String>>) -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    let id = alert.id;
    let now_ms = live.now_ms.get_untracked();
    let silenced = alerts::is_silenced(&alert, now_ms);
    let acknowledged = alert.acknowledged_by.is_some();
    let firing = alert.status == "firing";
    // Replaces this alert in the list with the server's answer.
    let act = move |action: Action| {
        spawn_local(async move {
            let answer = match action {
                Action::Acknowledge => api::acknowledge_alert(id).await,
                Action::Silence(for_ms) => api::silence_alert(id, for_ms).await,
            };
            match answer {
                Ok(updated) => {
                    problem.set(None);
                    alerts.update(|alerts| {
                        if let Some(Ok(list)) = alerts
                            && let Some(slot) = list.iter_mut().find(|alert| alert.id == id)
                        {
                            *slot = updated;
                        }
                    });
                }
                Err(err) => problem.set(Some(err.to_string())),
            }
        });
    };
    let resolved = alert
        .resolved_ms
        .map(|at_ms| format!("resolved {}", format::timestamp(at_ms)));
    view! {
        <article class="alert-card" data-id=id data-status=alert.status.as_str() data-severity=alert.severity.clone()>
            <header class="alert-head">
                <span class="alert-status">{alert.status.as_str()}</span>
                <span class="alert-severity">{alert.severity.clone()}</span>
                <h3 class="alert-title">{alert.title.clone()}</h3>
            </header>
            <p class="alert-meta">
                <span>"rule " {alert.rule.clone()}</span>
                " · "
                <span>{alerts::trigger_text(&alert)}</span>
                " · "
                <span>"started " {format::timestamp(alert.started_ms)}</span>
                {resolved.map(|text| view! { " · " <span>{text}</span> })}
            </p>
            <ul class="alert-breakers">
                {alerts::breaker_lines(&alert)
                    .into_iter()
                    .zip(alert.breakers.iter().map(|b| format::detail_href(&b.service, &b.breaker)))
                    .map(|(line, href)| view! { <li><a href=href>{line}</a></li> })
                    .collect_view()}
            </ul>
            <p class="alert-flags">
                {alerts::acknowledged_text(&alert).map(|text| view! { <span class="acked">{text}</span> })}
                {alerts::silenced_text(&alert, now_ms).map(|text| view! { <span class="silenced">{text}</span> })}
            </p>
            <Show when=move || session.is_admin()>
                <div class="alert-actions">
                    {(!acknowledged).then(|| view! {
                        <button class="ack" on:click=move |_| act(Action::Acknowledge)>"Acknowledge"</button>
                    })}
                    {firing.then(|| {
                        if silenced {
                            view! {
                                <button class="unsilence" on:click=move |_| act(Action::Silence(0))>"Lift silence"</button>
                            }
                            .into_any()
                        } else {
                            SILENCES
                                .into_iter()
                                .map(|(label, for_ms)| view! {
                                    <button class="silence" data-for-ms=for_ms on:click=move |_| act(Action::Silence(for_ms))>
                                        "Silence " {label}
                                    </button>
                                })
                                .collect_view()
                                .into_any()
                        }
                    })}
                </div>
            </Show>
            <details class="alert-history">
                <summary>"history (" {alert.events.len()} ") and deliveries (" {alert.deliveries.len()} ")"</summary>
                <ol class="alert-events">
                    {alert.events.iter().map(|event| view! { <li data-kind=event.kind.clone()>{alerts::event_line(event)}</li> }).collect_view()}
                </ol>
                <ul class="alert-deliveries">
                    {alert.deliveries.iter().map(|delivery| view! { <li>{alerts::delivery_line(delivery)}</li> }).collect_view()}
                </ul>
            </details>
        </article>
    }
}

#[derive(Clone, Copy)]
enum Action {
    Acknowledge,
    Silence(i64),
}
