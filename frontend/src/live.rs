//! The page's live model: the board of every breaker, kept current by the stream.
//!
//! Stream events are buffered and applied in batches, at most every [`FLUSH_WINDOW`]: with
//! hundreds of breakers reporting every second, applying each event alone would re-render the
//! overview hundreds of times a second. Each batch's cost (apply plus the DOM updates it causes,
//! measured with `performance.now()`) is appended to `window.__fusebox_batches` as
//! `[ms, events]`, and the wall-clock time each breaker's latest transition became visible to
//! `window.__fusebox_seen[breaker]`, for the browser tests' figures.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::StreamEvent;
use wasm_bindgen::{JsCast, JsValue};

use crate::api;
use crate::board::Board;
use crate::stream::{LiveStream, StreamMessage};

/// Events arriving within this window are applied together.
pub const FLUSH_WINDOW: Duration = Duration::from_millis(40);
/// After the browser gave up on the stream, a new one is opened this much later.
const STREAM_RETRY: Duration = Duration::from_secs(3);

/// The state of the live stream, as the header and banner show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    Down,
}

/// The live model's signals; `Copy`, provided as context to every page.
#[derive(Clone, Copy)]
pub struct Live {
    pub board: RwSignal<Board>,
    pub connection: RwSignal<Connection>,
    pub load_error: RwSignal<Option<String>>,
    /// The server refused to let us read: show the sign-in form.
    pub needs_token: RwSignal<bool>,
    /// The clock, ticking every second, for "open for 3m 12s".
    pub now_ms: RwSignal<i64>,
    /// Bumped by every applied batch that held a transition, so open detail pages refetch.
    pub transitions_seen: RwSignal<u64>,
    stream: StoredValue<Option<LiveStream>, LocalStorage>,
    pending: StoredValue<Vec<StreamEvent>, LocalStorage>,
}

impl Live {
    pub fn new() -> Live {
        Live {
            board: RwSignal::new(Board::default()),
            connection: RwSignal::new(Connection::Connecting),
            load_error: RwSignal::new(None),
            needs_token: RwSignal::new(false),
            now_ms: RwSignal::new(js_sys::Date::now() as i64),
            transitions_seen: RwSignal::new(0),
            stream: StoredValue::new_local(None),
            pending: StoredValue::new_local(Vec::new()),
        }
    }

    /// Opens the live stream (closing any previous one); on (re)connect, fetches the list to
    /// catch up on what was missed.
    pub fn connect(self) {
        self.stream.set_value(None);
        let result = LiveStream::connect(api::STREAM_URL, move |message| match message {
            StreamMessage::Opened => {
                self.connection.set(Connection::Live);
                self.fetch_list();
            }
            StreamMessage::Failed { gave_up } => {
                self.connection.set(Connection::Down);
                if gave_up {
                    // The browser gives up on an error status, such as a missing token: ask the
                    // list endpoint why, and try again later.
                    self.fetch_list();
                    set_timeout(move || self.connect(), STREAM_RETRY);
                }
            }
            StreamMessage::Event(event) => self.enqueue(event),
        });
        match result {
            Ok(stream) => self.stream.set_value(Some(stream)),
            Err(err) => {
                self.connection.set(Connection::Down);
                self.load_error.set(Some(err));
                set_timeout(move || self.connect(), STREAM_RETRY);
            }
        }
    }

    pub fn disconnect(self) {
        self.stream.set_value(None);
    }

    fn enqueue(self, event: StreamEvent) {
        let first = self.pending.with_value(Vec::is_empty);
        self.pending.update_value(|pending| pending.push(event));
        if first {
            set_timeout(move || self.flush(), FLUSH_WINDOW);
        }
    }

    fn flush(self) {
        let started = now();
        let events = self
            .pending
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        if events.is_empty() {
            return;
        }
        let n_events = events.len();
        let transitions: Vec<String> = events
            .iter()
            .filter_map(|event| match event {
                StreamEvent::Transition(record) => Some(record.transition.breaker.clone()),
                StreamEvent::Summary(_) => None,
            })
            .collect();
        self.board.update(|board| {
            for event in events {
                board.apply(event);
            }
        });
        if !transitions.is_empty() {
            self.transitions_seen.update(|seen| *seen += 1);
        }
        // Effects run as microtasks; a zero timeout runs after them, once the DOM is updated.
        set_timeout(
            move || {
                record_batch(now() - started, n_events);
                record_seen(&transitions);
            },
            Duration::ZERO,
        );
    }

    pub fn fetch_list(self) {
        spawn_local(async move {
            match api::list_breakers().await {
                Ok(summaries) => {
                    self.load_error.set(None);
                    self.needs_token.set(false);
                    self.board.update(|board| board.apply_snapshot(summaries));
                    if let Ok(sparklines) = api::sparklines().await {
                        self.board
                            .update(|board| board.apply_sparklines(sparklines));
                    }
                }
                Err(err) if err.is_unauthorized() => self.needs_token.set(true),
                Err(err) => self.load_error.set(Some(err.to_string())),
            }
        });
    }
}

impl Default for Live {
    fn default() -> Live {
        Live::new()
    }
}

fn now() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}

/// Appends `[ms, events]` to `window.__fusebox_batches`.
fn record_batch(elapsed_ms: f64, n_events: usize) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let key = JsValue::from_str("__fusebox_batches");
    let batches = js_sys::Reflect::get(&window, &key)
        .ok()
        .filter(|value| value.is_object())
        .unwrap_or_else(|| {
            let fresh = js_sys::Array::new().into();
            let _ = js_sys::Reflect::set(&window, &key, &fresh);
            fresh
        });
    let entry = js_sys::Array::of2(
        &JsValue::from_f64(elapsed_ms),
        &JsValue::from_f64(n_events as f64),
    );
    batches.unchecked_into::<js_sys::Array>().push(&entry);
}

/// Sets `window.__fusebox_seen[breaker] = Date.now()` for each breaker with a new transition.
fn record_seen(breakers: &[String]) {
    if breakers.is_empty() {
        return;
    }
    let Some(window) = web_sys::window() else {
        return;
    };
    let key = JsValue::from_str("__fusebox_seen");
    let seen = js_sys::Reflect::get(&window, &key)
        .ok()
        .filter(|value| value.is_object())
        .unwrap_or_else(|| {
            let fresh: JsValue = js_sys::Object::new().into();
            let _ = js_sys::Reflect::set(&window, &key, &fresh);
            fresh
        });
    let at = JsValue::from_f64(js_sys::Date::now());
    for breaker in breakers {
        let _ = js_sys::Reflect::set(&seen, &JsValue::from_str(breaker), &at);
    }
}
