//! The app shell: router, header with navigation and live status, the stream banner, and the
//! sign-in page. Pages live in [`crate::overview`], [`crate::detail`] and [`crate::pages`].
//!
//! Names are untrusted: they are only ever text nodes and attribute values. The one kind of
//! string inserted as HTML is a chart's SVG, whose texts plotters escapes.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::hooks::use_navigate;
use leptos_router::path;
use protocol::{AccessRole, Me};

use crate::alerts_page::Alerts;
use crate::api;
use crate::detail::Detail;
use crate::live::{Connection, Live};
use crate::overview::Overview;
use crate::pages::Recommendations;
use crate::toasts::{NotifyButton, ToastStack};

/// Who is looking: decides whether admin controls are shown.
#[derive(Clone, Copy)]
pub struct Session {
    pub me: RwSignal<Option<Me>>,
    /// Why a one-time sign-in link (`#signin=…`) did not sign in, if it did not.
    pub link_problem: RwSignal<Option<String>>,
}

impl Session {
    pub fn is_admin(self) -> bool {
        self.me
            .with(|me| me.as_ref().is_some_and(|me| me.role == AccessRole::Admin))
    }

    /// Asks the server who the token names; a 401 means the sign-in page.
    pub fn refresh(self, live: Live) {
        spawn_local(async move {
            match api::me().await {
                Ok(me) => {
                    self.me.set(Some(me));
                    live.needs_token.set(false);
                }
                Err(err) if err.is_unauthorized() => {
                    self.me.set(None);
                    live.needs_token.set(true);
                }
                Err(err) => live.load_error.set(Some(err.to_string())),
            }
        });
    }
}

#[component]
pub fn App() -> impl IntoView {
    let live = Live::new();
    let session = Session {
        me: RwSignal::new(None),
        link_problem: RwSignal::new(None),
    };
    provide_context(live);
    provide_context(session);
    match take_sign_in_code() {
        // A one-time sign-in link (`fusebox demo` prints one for its admin): exchange the code
        // for the session cookie, then ask who we are, as a token sign-in does.
        Some(code) => spawn_local(async move {
            if let Err(err) = api::sign_in_with_code(&code).await {
                session.link_problem.set(Some(err.to_string()));
            }
            session.refresh(live);
            live.connect();
        }),
        None => {
            session.refresh(live);
            live.connect();
        }
    }
    on_cleanup(move || live.disconnect());
    let clock = set_interval_with_handle(
        move || live.now_ms.set(js_sys::Date::now() as i64),
        Duration::from_secs(1),
    );
    on_cleanup(move || {
        if let Ok(clock) = clock {
            clock.clear();
        }
    });

    view! {
        <Router>
            <Header />
            <StreamBanner />
            <ToastStack />
            <Show when=move || live.needs_token.get()>
                <SignIn />
            </Show>
            <main>
                <Routes fallback=|| view! { <p class="empty">"No such page."</p> }>
                    <Route path=path!("/") view=Overview />
                    <Route path=path!("/breaker") view=Detail />
                    <Route path=path!("/alerts") view=Alerts />
                    <Route path=path!("/recommendations") view=Recommendations />
                    <Route path=path!("/login") view=SignIn />
                </Routes>
            </main>
        </Router>
    }
}

/// The code of a one-time sign-in link (`/#signin=CODE`), taken out of the address bar and
/// the history first, so that neither a reload nor the back button offers it again.
fn take_sign_in_code() -> Option<String> {
    let window = web_sys::window()?;
    let location = window.location();
    let code = location.hash().ok()?.strip_prefix("#signin=")?.to_string();
    let without_fragment = format!("{}{}", location.pathname().ok()?, location.search().ok()?);
    let _ = window.history().ok()?.replace_state_with_url(
        &wasm_bindgen::JsValue::NULL,
        "",
        Some(&without_fragment),
    );
    (!code.is_empty()).then_some(code)
}

#[component]
fn Header() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    let counts = Memo::new(move |_| live.counts());
    let connection_text = move || match live.connection.get() {
        Connection::Connecting => "connecting…",
        Connection::Live => "live",
        Connection::Down => "disconnected",
    };
    let connection_class = move || match live.connection.get() {
        Connection::Connecting => "pill connecting",
        Connection::Live => "pill live",
        Connection::Down => "pill down",
    };
    let who = move || {
        session.me.with(|me| match me {
            Some(Me {
                name: Some(name),
                role,
            }) => format!("{name} ({})", role_text(*role)),
            Some(Me { name: None, role }) => role_text(*role).to_string(),
            None => String::new(),
        })
    };
    let role_key = move || {
        session
            .me
            .with(|me| me.as_ref().map_or("none", |me| role_text(me.role)))
    };
    view! {
        <header class="top">
            <h1>"fusebox"</h1>
            <nav class="nav" aria-label="pages">
                <A href="/" exact=true>"Overview"</A>
                <A href="/alerts">"Alerts"</A>
                <A href="/recommendations">"Recommendations"</A>
            </nav>
            <div class="counts">
                <span class="count open">"✕ " {move || counts.get().open} " open"</span>
                <span class="count half_open">"◐ " {move || counts.get().half_open} " half-open"</span>
                <span class="count closed">"✓ " {move || counts.get().closed} " closed"</span>
            </div>
            <NotifyButton />
            <span class=connection_class>{connection_text}</span>
            <span class="who" data-role=role_key>{who}</span>
            {move || {
                let signed_in = session.me.with(|me| me.as_ref().is_some_and(|me| me.name.is_some()));
                if signed_in {
                    view! {
                        <button type="button" class="link sign-out" on:click=move |_| {
                            spawn_local(async move {
                                // A fresh page asks the server again who it is talking to.
                                if api::sign_out().await.is_ok()
                                    && let Some(window) = web_sys::window()
                                {
                                    let _ = window.location().assign("/");
                                }
                            });
                        }>"Sign out"</button>
                    }.into_any()
                } else {
                    view! { <A href="/login">"Sign in"</A> }.into_any()
                }
            }}
        </header>
    }
}

fn role_text(role: AccessRole) -> &'static str {
    match role {
        AccessRole::Anonymous => "anonymous",
        AccessRole::Viewer => "viewer",
        AccessRole::Admin => "admin",
    }
}

#[component]
fn StreamBanner() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    view! {
        <Show when=move || live.connection.get() == Connection::Down>
            <div class="banner stream-down" role="alert">
                "Live updates are disconnected; reconnecting… States shown may be out of date."
            </div>
        </Show>
        {move || {
            session.link_problem
                .get()
                .map(|err| view! { <div class="banner link-problem" role="alert">"The sign-in link did not sign you in: " {err}</div> })
        }}
        {move || {
            live.load_error
                .get()
                .map(|err| view! { <div class="banner" role="alert">"Could not load breakers: " {err}</div> })
        }}
    }
}

/// The sign-in page: a viewer or admin token, exchanged for the server's HttpOnly session cookie.
#[component]
fn SignIn() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let token = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        problem.set(None);
        let navigate = navigate.clone();
        let token = token.get_untracked();
        spawn_local(async move {
            match api::sign_in(&token).await {
                Ok(me) => {
                    session.me.set(Some(me));
                    live.needs_token.set(false);
                    live.connect();
                    navigate("/", Default::default());
                }
                Err(err) => problem.set(Some(err.to_string())),
            }
        });
    };
    view! {
        <form class="signin" on:submit=submit>
            <label>
                "Sign in with a viewer or admin token "
                <span class="hint">"(create one with `fusebox users add NAME [--admin]`)"</span>
                <input
                    type="password"
                    name="token"
                    autocomplete="off"
                    placeholder="fbu_…"
                    prop:value=move || token.get()
                    on:input=move |event| token.set(event_target_value(&event))
                />
            </label>
            <button type="submit">"Sign in"</button>
            {move || problem.get().map(|problem| view! { <span class="error">{problem}</span> })}
        </form>
    }
}
