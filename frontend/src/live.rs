//! The page's live model: the board of every breaker, kept current by the stream, with one
//! reactive trigger per tile so an update re-renders only the tiles it changed.
//!
//! Transitions apply at once. Summaries, which arrive by the hundreds a second, wait for the next
//! animation frame, coalesced per breaker by [`crate::coalesce`]: a frame applies each breaker's
//! newest summary once, the summaries of every breaker the page does not show yet and of at most
//! [`FrameCap`] others. The overview's order is recomputed only when a breaker appears or a key it
//! sorts or filters by changed ([`crate::board::Applied`]).
//!
//! Each applied batch's cost (apply plus the DOM updates it causes, measured with
//! `performance.now()`) is appended to `window.__fusebox_batches` as `[ms, events]` for a frame
//! of summaries and to `window.__fusebox_transition_batches` for a transition, and the
//! wall-clock time each breaker's latest transition reached the stream's handler and became
//! visible to `window.__fusebox_arrived[breaker]` and `window.__fusebox_seen[breaker]`, for the
//! browser tests' figures.

use std::collections::HashMap;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::{AlertNotice, TransitionRecord};
use wasm_bindgen::{JsCast, JsValue};

use crate::api;
use crate::board::{Applied, Board, Entry, Key, StateCounts};
use crate::coalesce::{FrameCap, Pending};
use crate::filter::SortBy;
use crate::stream::{LiveStream, StreamMessage};

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
    /// Every breaker; read through [`Live::with_board`] after tracking what the reader shows.
    board: StoredValue<Board, LocalStorage>,
    /// One trigger per tile, notified when that breaker's entry changed.
    tiles: StoredValue<HashMap<Key, ArcTrigger>, LocalStorage>,
    /// Notified when a breaker appeared or some breaker's state changed.
    members: Trigger,
    /// Notified when some breaker's failure rate changed.
    failure_rates: Trigger,
    /// Notified when some breaker's calls/s changed.
    volumes: Trigger,
    pub connection: RwSignal<Connection>,
    pub load_error: RwSignal<Option<String>>,
    /// The server refused to let us read: show the sign-in form.
    pub needs_token: RwSignal<bool>,
    /// The clock, ticking every second, for "open for 3m 12s".
    pub now_ms: RwSignal<i64>,
    /// Bumped by every applied batch that held a transition, so open detail pages refetch.
    pub transitions_seen: RwSignal<u64>,
    /// The newest alert news from the stream, for toasts, notifications and the alerts page.
    pub alert_notice: RwSignal<Option<AlertNotice>, LocalStorage>,
    stream: StoredValue<Option<LiveStream>, LocalStorage>,
    pending: StoredValue<Pending, LocalStorage>,
    /// A frame applies the summaries of at most this many breakers (those waiting longest);
    /// the rest wait for the next frame and keep coalescing meanwhile. This bounds a frame's
    /// cost, so the page stays responsive while thousands of breakers report at once.
    frame_cap: StoredValue<FrameCap, LocalStorage>,
}

impl Live {
    pub fn new() -> Live {
        Live {
            board: StoredValue::new_local(Board::default()),
            tiles: StoredValue::new_local(HashMap::new()),
            members: Trigger::new(),
            failure_rates: Trigger::new(),
            volumes: Trigger::new(),
            connection: RwSignal::new(Connection::Connecting),
            load_error: RwSignal::new(None),
            needs_token: RwSignal::new(false),
            now_ms: RwSignal::new(js_sys::Date::now() as i64),
            transitions_seen: RwSignal::new(0),
            alert_notice: RwSignal::new_local(None),
            stream: StoredValue::new_local(None),
            pending: StoredValue::new_local(Pending::default()),
            frame_cap: StoredValue::new_local(FrameCap::default()),
        }
    }

    /// Reads the board without tracking; pair it with [`Live::track_order`] or
    /// [`Live::tile_trigger`] so the reader re-runs when what it shows changed.
    pub fn with_board<T>(self, read: impl FnOnce(&Board) -> T) -> T {
        self.board.with_value(read)
    }

    /// Tracks what the overview's order and filter depend on under `sort`.
    pub fn track_order(self, sort: SortBy) {
        self.members.track();
        match sort {
            SortBy::FailureRate => self.failure_rates.track(),
            SortBy::Volume => self.volumes.track(),
            SortBy::State | SortBy::Name => {}
        }
    }

    /// How many breakers are in each state (tracked).
    pub fn counts(self) -> StateCounts {
        self.members.track();
        self.with_board(Board::counts)
    }

    /// Whether no breaker is known yet (tracked).
    pub fn is_empty(self) -> bool {
        self.members.track();
        self.with_board(Board::is_empty)
    }

    /// How many breakers are known (tracked, as is every state change: a matrix row's counts
    /// read it).
    pub fn len(self) -> usize {
        self.members.track();
        self.with_board(Board::len)
    }

    /// The trigger notified whenever `key`'s entry changes.
    pub fn tile_trigger(self, key: &Key) -> ArcTrigger {
        if let Some(trigger) = self.tiles.with_value(|tiles| tiles.get(key).cloned()) {
            return trigger;
        }
        let trigger = ArcTrigger::new();
        self.tiles
            .update_value(|tiles| drop(tiles.insert(key.clone(), trigger.clone())));
        trigger
    }

    /// `key`'s entry (tracked by its tile trigger).
    pub fn entry(self, key: &Key) -> Option<Entry> {
        self.tile_trigger(key).track();
        self.with_board(|board| board.entry(key).cloned())
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
            StreamMessage::Summaries(lines) => self.enqueue(&lines),
            StreamMessage::Transition(record) => self.apply_transition(record),
            StreamMessage::Alert(notice) => self.alert_notice.set(Some(notice)),
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

    /// Keeps a message's summaries (one per line) for the next animation frame.
    fn enqueue(self, lines: &str) {
        let is_new = |key: &Key| self.board.with_value(|board| board.entry(key).is_none());
        let Some((first, errors)) = self
            .pending
            .try_update_value(|pending| pending.push_summaries_of(lines, is_new))
        else {
            return;
        };
        for err in errors {
            leptos::logging::warn!("ignoring a stream event: {err}");
        }
        if first {
            request_animation_frame(move || self.flush_frame());
        }
    }

    /// Applies the summaries of the breakers waiting longest, and asks for another frame when
    /// some are left.
    fn flush_frame(self) {
        let started = now();
        let cap = self
            .frame_cap
            .try_update_value(|cap| cap.for_frame())
            .unwrap_or(FrameCap::MAX);
        let drained = self
            .pending
            .try_update_value(|pending| pending.drain(cap))
            .unwrap_or_default();
        for err in &drained.errors {
            leptos::logging::warn!("ignoring a stream event: {err}");
        }
        if !self.pending.with_value(Pending::is_empty) {
            request_animation_frame(move || self.flush_frame());
        }
        if drained.summaries.is_empty() {
            return;
        }
        let n_breakers = drained.summaries.len();
        let applied = self
            .board
            .try_update_value(|board| {
                let mut applied = Applied::default();
                for coalesced in drained.summaries {
                    board.apply_summary(coalesced.summary, &coalesced.spark, &mut applied);
                }
                applied
            })
            .unwrap_or_default();
        self.notify(&applied);
        let frame = Some((n_breakers, applied.added));
        self.record_after_render(started, drained.n_events, None, frame);
    }

    /// Applies a transition at once, after its breaker's pending summary (the stream's order).
    fn apply_transition(self, record: TransitionRecord) {
        let started = now();
        record_time("__fusebox_arrived", &record.transition.breaker);
        let key = (record.service.clone(), record.transition.breaker.clone());
        let before = self
            .pending
            .try_update_value(|pending| pending.take(&key))
            .flatten();
        let breaker = record.transition.breaker.clone();
        let applied = self
            .board
            .try_update_value(|board| {
                let mut applied = Applied::default();
                match before {
                    Some(Ok(coalesced)) => {
                        board.apply_summary(coalesced.summary, &coalesced.spark, &mut applied);
                    }
                    Some(Err(err)) => leptos::logging::warn!("ignoring a stream event: {err}"),
                    None => {}
                }
                board.apply_transition(record, &mut applied);
                applied
            })
            .unwrap_or_default();
        self.notify(&applied);
        self.frame_cap.update_value(FrameCap::note_transition);
        self.transitions_seen.update(|seen| *seen += 1);
        self.record_after_render(started, 1, Some(breaker), None);
    }

    /// Records the batch's cost and, for a transition, when it became visible, once the DOM is
    /// updated: effects run as microtasks, and a zero timeout runs after them. For a frame of
    /// summaries (`frame`: the breakers it applied, and whether it added any), the cost also
    /// sets the next frames' cap.
    fn record_after_render(
        self,
        started: f64,
        n_events: usize,
        seen: Option<String>,
        frame: Option<(usize, bool)>,
    ) {
        set_timeout(
            move || {
                let elapsed = now() - started;
                // A transition's cost apart from the frames of summaries, so each figure
                // means one thing whatever the mix.
                let list = if seen.is_some() {
                    "__fusebox_transition_batches"
                } else {
                    "__fusebox_batches"
                };
                record_batch(list, elapsed, n_events);
                if let Some(breaker) = &seen {
                    record_time("__fusebox_seen", breaker);
                }
                if let Some((n_breakers, added)) = frame {
                    (self.frame_cap).update_value(|cap| cap.record(n_breakers, elapsed, added));
                }
            },
            Duration::ZERO,
        );
    }

    fn notify(self, applied: &Applied) {
        self.tiles.with_value(|tiles| {
            for key in &applied.touched {
                if let Some(trigger) = tiles.get(key) {
                    trigger.notify();
                }
            }
        });
        if applied.added || applied.states {
            self.members.notify();
        }
        if applied.failure_rates {
            self.failure_rates.notify();
        }
        if applied.volumes {
            self.volumes.notify();
        }
    }

    pub fn fetch_list(self) {
        spawn_local(async move {
            match api::list_breakers().await {
                Ok(summaries) => {
                    self.load_error.set(None);
                    self.needs_token.set(false);
                    let mut applied = self
                        .board
                        .try_update_value(|board| board.apply_snapshot(summaries))
                        .unwrap_or_default();
                    self.notify(&applied);
                    if let Ok(sparklines) = api::sparklines().await {
                        applied = self
                            .board
                            .try_update_value(|board| board.apply_sparklines(sparklines))
                            .unwrap_or_default();
                        self.notify(&applied);
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

/// Appends `[ms, events]` to the array `window[list]`.
fn record_batch(list: &str, elapsed_ms: f64, n_events: usize) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let key = JsValue::from_str(list);
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

/// Sets `window[map][breaker] = Date.now()`: `__fusebox_arrived` when the stream's handler
/// took a transition of the breaker, `__fusebox_seen` once the page showed it.
fn record_time(map: &str, breaker: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let key = JsValue::from_str(map);
    let times = js_sys::Reflect::get(&window, &key)
        .ok()
        .filter(|value| value.is_object())
        .unwrap_or_else(|| {
            let fresh: JsValue = js_sys::Object::new().into();
            let _ = js_sys::Reflect::set(&window, &key, &fresh);
            fresh
        });
    let at = JsValue::from_f64(js_sys::Date::now());
    let _ = js_sys::Reflect::set(&times, &JsValue::from_str(breaker), &at);
}
