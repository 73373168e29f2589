"""The reporter: per-second aggregates and every transition to a fusebox server, and the config
long poll, for breakers bound through a binding (see _binding.py).

It follows the Rust reporter (breaker/src/reporter.rs) and subscriber: batches are numbered when
first sent and retried with the same number and content until acknowledged, with exponential
backoff (or the server's Retry-After); memory is bounded by ``max_buffered`` items (aggregates
coalesced per breaker first, then dropped, transitions dropped last, every loss counted in the
next batch's ``dropped``). Calls never wait for it: a call only adds to counters, a transition is
queued and the reporter's daemon thread sends it. Each breaker's config is long-polled by a
daemon thread of its own.
"""

from __future__ import annotations

import atexit
import email.utils
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections import deque

#: The fixed latency bucket upper bounds (ms) of docs/protocol.md; one more unbounded bucket.
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)
N_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
#: Outcome slots of a binding's counters, in wire order.
OUTCOMES = ("success", "failure", "timeout", "rejected", "slow", "ignored")

# 4xx answers worth retrying: the batch is fine, the moment or the key is not.
_RETRYABLE_4XX = {401, 403, 404, 408, 425, 429}

# The same warning at most once in this many seconds (a server down for an hour says so once a
# minute, not once a retry).
_WARNING_EVERY_S = 60.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Answers a redirect with its own 3xx instead of following it: following would send the
    ingest key to whatever host the Location names, and turn a POST into a GET. The reporter
    treats the 3xx as a failed attempt and retries."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def now_ms() -> int:
    return int(time.time() * 1000)


class Reporter:
    """Reports bound breakers to ``url`` as ``service``/``instance`` with the ingest key ``key``."""

    def __init__(
        self,
        url: str,
        key: str | None,
        service: str,
        instance: str,
        *,
        interval_s: float = 1.0,
        max_buffered: int = 10_000,
        max_batch_items: int = 2_000,
        request_timeout_s: float = 10.0,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 30.0,
        shutdown_timeout_s: float = 5.0,
        poll_timeout_s: float = 30.0,
        no_config_retry_s: float = 5.0,
        follow_configs: bool = True,
    ) -> None:
        for name, value in (("url", url), ("service", service), ("instance", instance)):
            if not isinstance(value, str) or not value:
                raise TypeError(f"fusebox: {name} must be a non-empty string")
        self.base = url.rstrip("/")
        self.key = key
        self.service = service
        self.instance = instance
        self.interval_s = interval_s
        self.max_buffered = max(1, max_buffered)
        self.max_batch_items = max(1, max_batch_items)
        self.request_timeout_s = request_timeout_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.poll_timeout_s = poll_timeout_s
        self.no_config_retry_s = no_config_retry_s
        self.follow_configs = follow_configs

        self._bindings: dict[str, object] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending_aggregates: deque[dict] = deque()
        self._pending_transitions: deque[dict] = deque()
        self._pending_drops = _zero_drops()
        self._in_flight: dict | None = None
        self._closing = False
        self._closed = threading.Event()
        # Starting from the wall clock keeps numbers increasing across restarts of an instance.
        self._next_seq = now_ms()
        self._interval_start_ms = now_ms()
        self._backoff_s = min_backoff_s
        self._retry_after_s = 0.0
        self._flush_timeout_s = shutdown_timeout_s
        self._warned_at: dict[str, float] = {}
        self.batches_acked = 0
        self.failed_attempts = 0
        self.drops = _zero_drops()
        self._thread = threading.Thread(target=self._run, name="fusebox-reporter", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # --- what bindings and users call ---

    def add(self, binding) -> None:
        with self._lock:
            if self._closing:
                raise RuntimeError("fusebox: the reporter is closed")
            if binding.name in self._bindings:
                raise ValueError(f"fusebox: a breaker named {binding.name!r} is already reported")
            self._bindings[binding.name] = binding
        if self.follow_configs:
            threading.Thread(
                target=self._follow, args=(binding,), name=f"fusebox-config-{binding.name}", daemon=True
            ).start()

    def remove(self, binding) -> None:
        with self._lock:
            if self._bindings.get(binding.name) is binding:
                del self._bindings[binding.name]

    def transition(self, binding, from_state: str, to_state: str, trigger: dict) -> None:
        """Queues a transition and wakes the reporter's thread. Called under the breaker's lock,
        so it does no I/O: it appends under the reporter's lock, keeps the buffer within
        ``max_buffered`` (coalescing pending aggregates when it is full) and notifies."""
        if from_state == to_state:
            return
        record = {
            "breaker": binding.name,
            "at_ms": now_ms(),
            "from": from_state,
            "to": to_state,
            "trigger": trigger,
            "config_version": binding.config_version,
        }
        with self._wake:
            self._pending_transitions.append(record)
            self._enforce_cap()
            self._wake.notify()

    def snapshot(self) -> dict:
        """What the reporter has done so far, and what it holds."""
        with self._lock:
            in_flight = self._in_flight
            held = len(self._pending_aggregates) + len(self._pending_transitions)
            return {
                "batches_acked": self.batches_acked,
                "failed_attempts": self.failed_attempts,
                "pending_items": held + (len(in_flight["aggregates"]) + len(in_flight["transitions"]) if in_flight else 0),
                "held_items": held,
                "drops": dict(self.drops),
            }

    def close(self, timeout_s: float | None = None) -> dict:
        """Sends a last aggregate and everything pending (for at most ``timeout_s``, by default
        ``shutdown_timeout_s``) and stops. Returns the final snapshot. Also runs at interpreter
        exit."""
        timeout_s = self.shutdown_timeout_s if timeout_s is None else max(0.0, timeout_s)
        with self._wake:
            already = self._closing
            if not already:
                self._flush_timeout_s = timeout_s
            self._closing = True
            self._wake.notify()
        if not already:
            atexit.unregister(self.close)
        self._thread.join(timeout_s + 1.0)
        left = self.snapshot()
        if left["pending_items"]:
            warnings.warn(f"fusebox: stopped with {left['pending_items']} items not acknowledged", stacklevel=2)
        return left

    # --- the reporter thread ---

    def _run(self) -> None:
        next_tick = time.monotonic() + self.interval_s
        retry_at = None
        while True:
            try:
                closing, next_tick, retry_at = self._step(next_tick, retry_at)
            except Exception as error:
                # Whatever went wrong, the thread goes on: a dead reporter loses everything after.
                self._warn("reporter", f"reporting failed unexpectedly ({error!r}); carrying on")
                closing = self._closing
                retry_at = time.monotonic() + self._next_backoff()
            if closing:
                break
        try:
            self._flush()
        finally:
            self._closed.set()

    def _step(self, next_tick: float, retry_at: float | None) -> tuple[bool, float, float | None]:
        """One turn of the reporter's thread: waits for the tick, a transition or the retry
        time; collects and sends. Returns (closing, next tick, retry time)."""
        with self._wake:
            while True:
                now = time.monotonic()
                if self._closing:
                    break
                if now >= next_tick:
                    break
                ready = self._in_flight is not None or self._pending_transitions
                if ready and (retry_at is None or now >= retry_at):
                    break
                wait = next_tick - now
                if retry_at is not None:
                    wait = min(wait, max(0.0, retry_at - now))
                self._wake.wait(wait)
            closing = self._closing
        if closing:
            return True, next_tick, retry_at
        if time.monotonic() >= next_tick:
            next_tick += self.interval_s
            if next_tick < time.monotonic():
                next_tick = time.monotonic() + self.interval_s
            self._collect()
        if retry_at is not None and time.monotonic() < retry_at:
            return False, next_tick, retry_at
        retry_at = None
        while self._ready_batch():
            if not self._send_in_flight():
                retry_at = time.monotonic() + self._next_backoff()
                break
        return False, next_tick, retry_at

    def _flush(self) -> None:
        deadline = time.monotonic() + self._flush_timeout_s
        self._collect()
        while self._ready_batch() and time.monotonic() < deadline:
            if not self._send_in_flight():
                time.sleep(max(0.0, min(self._next_backoff(), deadline - time.monotonic())))

    def _collect(self) -> None:
        """One aggregate per breaker for the interval that ends now."""
        end_ms = now_ms()
        with self._lock:
            start_ms = self._interval_start_ms
            self._interval_start_ms = end_ms
            bindings = list(self._bindings.values())
        aggregates = []
        for binding in bindings:
            counts, latency = binding.take_counts()
            rate, threshold = binding.failure_rate()
            aggregates.append({
                "breaker": binding.name,
                "start_ms": start_ms,
                "interval_ms": max(1, end_ms - start_ms),
                "counts": dict(zip(OUTCOMES, counts)),
                "latency": {"counts": latency},
                "state": binding.state,
                "failure_rate": rate,
                "failure_rate_threshold": threshold,
                "config_version": binding.config_version,
            })
        with self._lock:
            self._pending_aggregates.extend(aggregates)
            self._enforce_cap()

    def _enforce_cap(self) -> None:
        """Keeps pending items within ``max_buffered`` (called with the lock held)."""
        cap = self.max_buffered
        if len(self._pending_aggregates) + len(self._pending_transitions) <= cap:
            return
        by_breaker: dict[str, dict] = {}
        before = len(self._pending_aggregates)
        for aggregate in self._pending_aggregates:
            earlier = by_breaker.get(aggregate["breaker"])
            if earlier is None:
                by_breaker[aggregate["breaker"]] = aggregate
            else:
                _merge(earlier, aggregate)
        drops = _zero_drops()
        drops["aggregates_coalesced"] = before - len(by_breaker)
        self._pending_aggregates = deque(by_breaker.values())
        while len(self._pending_aggregates) + len(self._pending_transitions) > cap and self._pending_aggregates:
            self._pending_aggregates.popleft()
            drops["aggregates_dropped"] += 1
        while len(self._pending_transitions) > cap:
            self._pending_transitions.popleft()
            drops["transitions_dropped"] += 1
        _add_drops(self._pending_drops, drops)
        _add_drops(self.drops, drops)

    def _ready_batch(self) -> bool:
        with self._lock:
            if self._in_flight is not None:
                return True
            if not self._pending_aggregates and not self._pending_transitions and not any(self._pending_drops.values()):
                return False
            transitions = [self._pending_transitions.popleft() for _ in range(min(len(self._pending_transitions), self.max_batch_items))]
            room = self.max_batch_items - len(transitions)
            aggregates = [self._pending_aggregates.popleft() for _ in range(min(len(self._pending_aggregates), room))]
            self._in_flight = {
                "service": self.service,
                "instance": self.instance,
                "seq": self._next_seq,
                "sent_at_ms": now_ms(),
                "aggregates": aggregates,
                "transitions": transitions,
                "dropped": self._pending_drops,
            }
            self._next_seq += 1
            self._pending_drops = _zero_drops()
            return True

    def _send_in_flight(self) -> bool:
        """Sends the batch in flight once; True when done with it (acknowledged or refused)."""
        batch = self._in_flight
        # With more to send, the server may answer before the commit (202 once it has
        # journaled the batch), so the next batch is on its way while this one commits.
        with self._lock:
            more = bool(self._pending_aggregates or self._pending_transitions)
        headers = {"Prefer": "respond-async"} if more else None
        status, body, retry_after_s = self._request("POST", "/api/v1/ingest", batch, self.request_timeout_s, headers)
        if status in (200, 202):
            try:
                ack = json.loads(body)
            except ValueError:
                ack = None
            if isinstance(ack, dict) and ack.get("seq") == batch["seq"]:
                with self._lock:
                    self._in_flight = None
                    self.batches_acked += 1
                self._backoff_s = self.min_backoff_s
                self._retry_after_s = 0.0
                return True
        elif 400 <= status < 500 and status not in _RETRYABLE_4XX:
            warnings.warn(f"fusebox: server refused batch {batch['seq']} ({status}: {body[:300]}); dropping it")
            drops = _zero_drops()
            drops["aggregates_dropped"] = len(batch["aggregates"])
            drops["transitions_dropped"] = len(batch["transitions"])
            with self._lock:
                _add_drops(self._pending_drops, drops)
                _add_drops(self.drops, drops)
                self._in_flight = None
            return True
        with self._lock:
            first = self.failed_attempts == 0
            self.failed_attempts += 1
        if first:
            # As the Rust reporter: the first failure is said at once, later ones are counted.
            self._warn("sending", f"reporting failed ({status or body}); retrying")
        self._retry_after_s = retry_after_s
        return False

    def _next_backoff(self) -> float:
        wait = max(self._backoff_s, self._retry_after_s)
        self._backoff_s = min(self._backoff_s * 2, self.max_backoff_s)
        return wait

    def _request(self, method: str, path: str, body, timeout_s: float, headers=None) -> tuple[int, str, float]:
        """One request with the ingest key (and ``headers``): (status, body, Retry-After in s);
        status 0 when there was no answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.key:
            request.add_header("Authorization", f"Bearer {self.key}")
        try:
            with _OPENER.open(request, timeout=timeout_s) as response:
                return response.status, response.read().decode("utf-8", "replace"), 0.0
        except urllib.error.HTTPError as error:
            try:
                text = error.read().decode("utf-8", "replace") if error.fp else ""
            except Exception:
                text = ""
            return error.code, text, _retry_after_s(error.headers.get("Retry-After"))
        except Exception as error:
            # No usable answer: refused, reset, cut short (http.client.IncompleteRead), garbled
            # (BadStatusLine, LineTooLong), or a URL or key urllib will not send.
            return 0, f"{type(error).__name__}: {error}", 0.0

    def _warn(self, what: str, message: str) -> None:
        """Warns, at most once a minute for the same ``what``."""
        now = time.monotonic()
        with self._lock:
            last = self._warned_at.get(what)
            if last is not None and now - last < _WARNING_EVERY_S:
                return
            self._warned_at[what] = now
        warnings.warn(f"fusebox: {message}", stacklevel=2)

    # --- the config long poll, one daemon thread per breaker ---

    def _follow(self, binding) -> None:
        self._report_status(binding)
        backoff_s = self.min_backoff_s
        while not self._closing and self._bindings.get(binding.name) is binding:
            try:
                backoff_s = self._follow_once(binding, backoff_s)
            except Exception as error:
                # A config the binding choked on, a listener that raised: the breaker keeps
                # following, or it would never see another push.
                self._warn(f"config-{binding.name}", f"following the config of {binding.name!r} failed ({error!r}); carrying on")
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.max_backoff_s)

    def _follow_once(self, binding, backoff_s: float) -> float:
        """One long poll of ``binding``'s config and what follows from its answer; returns the
        next backoff."""
        query = urllib.parse.urlencode({
            "wait_for_version_above": binding.known_version,
            "timeout_ms": int(self.poll_timeout_s * 1000),
            "instance": self.instance,
        })
        path = "/api/v1/config/{}/{}?{}".format(
            urllib.parse.quote(self.service, safe=""), urllib.parse.quote(binding.name, safe=""), query
        )
        status, body, retry_after_s = self._request("GET", path, None, self.poll_timeout_s + 10)
        if self._closing:
            return backoff_s
        if status == 200:
            try:
                config = json.loads(body)
            except ValueError:
                config = None
            if not isinstance(config, dict) or not isinstance(config.get("version"), int) \
                    or not config["version"] > binding.known_version:
                time.sleep(self.min_backoff_s)
                return self.min_backoff_s
            # Known only once applied (or refused): a config that raised is asked for again.
            refusal = binding.apply_config(config)
            binding.known_version = config["version"]
            binding.refused = None if refusal is None else {"version": config["version"], **refusal}
            self._report_status(binding)
            return self.min_backoff_s
        if status == 204:
            return self.min_backoff_s
        if status == 404:
            time.sleep(self.no_config_retry_s)
            return backoff_s
        time.sleep(max(backoff_s, retry_after_s))
        return min(backoff_s * 2, self.max_backoff_s)

    def _report_status(self, binding) -> None:
        """Tells the server which version the breaker runs and why it refused the last push
        (best effort: the version also goes out with every aggregate)."""
        self._request("POST", "/api/v1/config-status", {
            "service": self.service,
            "instance": self.instance,
            "at_ms": now_ms(),
            "breakers": [{
                "breaker": binding.name,
                "running_version": binding.config_version,
                "refused": binding.refused,
            }],
        }, 5.0)


def _zero_drops() -> dict:
    return {"aggregates_coalesced": 0, "aggregates_dropped": 0, "transitions_dropped": 0}


def _add_drops(into: dict, add: dict) -> None:
    for field, n in add.items():
        into[field] += n


def _merge(earlier: dict, later: dict) -> None:
    end_ms = later["start_ms"] + later["interval_ms"]
    earlier["start_ms"] = min(earlier["start_ms"], later["start_ms"])
    earlier["interval_ms"] = end_ms - earlier["start_ms"]
    for outcome, n in later["counts"].items():
        earlier["counts"][outcome] += n
    earlier["latency"]["counts"] = [a + b for a, b in zip(earlier["latency"]["counts"], later["latency"]["counts"])]
    for field in ("state", "failure_rate", "failure_rate_threshold", "config_version"):
        earlier[field] = later[field]


def _retry_after_s(header: str | None) -> float:
    if not header:
        return 0.0
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        at = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, at - time.time())
