//! The places navigation keeps for alerts and recommendations: alerts read-only from the alerts
//! API, recommendations still to come.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::format;

#[component]
pub fn Alerts() -> impl IntoView {
    let alerts = RwSignal::new(None::<Result<Vec<protocol::Alert>, String>>);
    spawn_local(async move {
        alerts.set(Some(api::alerts().await.map_err(|err| err.to_string())));
    });
    view! {
        <section class="page alerts" data-page="alerts">
            <h2>"Alerts"</h2>
            {move || match alerts.get() {
                None => view! { <p class="hint">"Loading…"</p> }.into_any(),
                Some(Err(err)) => view! { <p class="error">{err}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="empty">"No alerts."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <table class="table">
                        <thead><tr><th>"started (UTC)"</th><th>"status"</th><th>"severity"</th><th>"alert"</th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|alert| view! {
                                <tr data-status=alert.status.clone() data-id=alert.id>
                                    <td>{format::timestamp(alert.started_ms)}</td>
                                    <td>{alert.status.clone()}</td>
                                    <td>{alert.severity}</td>
                                    <td>{alert.title}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
pub fn Recommendations() -> impl IntoView {
    view! {
        <section class="page recommendations" data-page="recommendations">
            <h2>"Recommendations"</h2>
            <p class="empty">"Tuning recommendations from the engine will be listed here."</p>
        </section>
    }
}
