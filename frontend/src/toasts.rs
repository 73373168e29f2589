//! Toasts for alerts that fire or resolve, from the live stream's `event: alert`, mirrored as
//! browser notifications once the user allowed them with the header's button (never asked on
//! load). The text comes from [`crate::alerts`].

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::alerts::{self, TOAST_MS, Toasts};
use crate::live::Live;
use crate::notify::{self, Permission};

/// The toast stack, fed by the stream's alert news.
#[component]
pub fn ToastStack() -> impl IntoView {
    let live = expect_context::<Live>();
    let toasts = RwSignal::new(Toasts::default());
    Effect::new(move |_| {
        let Some(notice) = live.alert_notice.get() else {
            return;
        };
        let now_ms = js_sys::Date::now() as i64;
        let pushed = toasts
            .try_update(|toasts| toasts.push(&notice, now_ms).is_some())
            .unwrap_or(false);
        if !pushed {
            return;
        }
        if let Some((title, body)) = alerts::notification(&notice) {
            let tag = format!("fusebox-alert-{}-{}", notice.alert.id, notice.event);
            notify::show(&title, &body, &tag);
        }
        set_timeout(
            move || {
                toasts.update(|toasts| {
                    toasts.expire(js_sys::Date::now() as i64);
                });
            },
            std::time::Duration::from_millis(TOAST_MS as u64 + 50),
        );
    });
    view! {
        <div class="toasts" aria-live="polite">
            <For
                each=move || toasts.with(|toasts| toasts.items.clone())
                key=|toast| toast.id
                children=move |toast| {
                    let id = toast.id;
                    view! {
                        <div class="toast" data-event=toast.kind.as_str() data-alert=toast.alert_id role="status">
                            <a class="toast-body" href="/alerts">
                                <strong>{toast.heading}</strong>
                                <span class="toast-title">{toast.title}</span>
                                <span class="toast-detail">{toast.detail}</span>
                            </a>
                            <button
                                class="toast-close"
                                aria-label="dismiss"
                                on:click=move |_| toasts.update(|toasts| toasts.dismiss(id))
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            />
        </div>
    }
}

/// Offers to turn browser notifications on, while the user has not decided.
#[component]
pub fn NotifyButton() -> impl IntoView {
    let permission = RwSignal::new(notify::permission());
    let ask = move |_| {
        spawn_local(async move {
            permission.set(notify::request().await);
        });
    };
    move || match permission.get() {
        Permission::Ask => view! {
            <button class="notify-ask" on:click=ask>"Enable notifications"</button>
        }
        .into_any(),
        Permission::Granted => {
            view! { <span class="hint notify-on">"notifications on"</span> }.into_any()
        }
        Permission::Denied | Permission::Unsupported => ().into_any(),
    }
}
