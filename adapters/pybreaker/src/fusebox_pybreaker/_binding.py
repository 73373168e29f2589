"""The binding of one pybreaker CircuitBreaker: counts its calls, reports its transitions with
their trigger, and applies pushed configs to it (docs/adapters.md has the mapping table).

pybreaker runs every call under the breaker's re-entrant lock, tells listeners ``before_call``
just before the function runs, ``success``/``failure`` after it, and ``state_change`` on every
transition; a call rejected while Open raises ``CircuitBreakerError`` and reaches no listener.
So the binding replaces the instance's ``call`` (which ``@breaker`` and ``calling()`` use too)
with a wrapper that takes the same lock, times the call and classifies it: the function ran
(``before_call`` was heard) or it was rejected. pybreaker moves from Open to Half-Open on the
first call after ``reset_timeout``; that call is the probe.

A generator function, and the block of ``with breaker.calling():`` (pybreaker runs it as a
generator), returns from ``call`` before it has run: pybreaker judges it when the generator
finishes. So the wrapper hands back a generator of its own that drives pybreaker's, and records
the outcome and the latency when it finishes.

Whether a call is running is kept on the binding, read and written only under the breaker's
lock: other threads wait for that lock, so while a thread holds it, a call running is that
thread's own (pybreaker re-enters ``call`` moving from Open to Half-Open, and a transition
during a call is the call's).

Counts: every call is one increment of one item of a flat tally (outcome × slow or not ×
latency bucket, or the outcome alone for a refused call), made under the breaker's lock, so
writers never race; the reporter copies the tally in one step without that lock (it must not
wait for a running call) and the copy always holds whole calls, never a latency or slow mark
without its outcome.
"""

from __future__ import annotations

import math
import random
import time
import types
from bisect import bisect_left
from time import perf_counter

import pybreaker

from ._reporter import LATENCY_BOUNDS_MS, N_BUCKETS

_SUCCESS, _FAILURE, _TIMEOUT, _REJECTED, _SLOW, _IGNORED = range(6)
_N_OUTCOMES = 6
# Where a timed call of an outcome goes in the tally: `_TIMED[outcome][slow] + bucket`.
_TIMED = tuple(((2 * o) * N_BUCKETS, (2 * o + 1) * N_BUCKETS) for o in range(_N_OUTCOMES))
# Where a call counted without a latency (refused) goes: `_UNTIMED + outcome`.
_UNTIMED = 2 * _N_OUTCOMES * N_BUCKETS
_TALLY_SIZE = _UNTIMED + _N_OUTCOMES
_GENERATOR = types.GeneratorType
_STATE_NAMES = {pybreaker.STATE_CLOSED: "closed", pybreaker.STATE_OPEN: "open", pybreaker.STATE_HALF_OPEN: "half_open"}
_MANUAL = {"kind": "manual", "value": 0.0, "threshold": 0.0}


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, binding: "PybreakerBinding") -> None:
        self.binding = binding
        # Set when pybreaker is about to run the function; read by the call holding the lock.
        self.ran = False

    def before_call(self, cb, func, *args, **kwargs) -> None:
        self.ran = True

    def state_change(self, cb, old_state, new_state) -> None:
        self.binding.on_state_change(old_state, new_state)


class PybreakerBinding:
    def __init__(self, breaker: pybreaker.CircuitBreaker, reporter, name: str | None = None) -> None:
        name = name or breaker.name
        if not name:
            raise ValueError("fusebox: the breaker has no name; give it one (name=...) or pass name to attach")
        self.breaker = breaker
        self.reporter = reporter
        self.name = name
        # Cumulative, one item per call (see the module's doc); what the last take saw.
        self._tally = [0] * _TALLY_SIZE
        self._reported = [0] * _TALLY_SIZE
        self.state = _STATE_NAMES.get(breaker.current_state, "closed")
        self.config_version = 0
        self.known_version = 0
        self.refused = None
        self.mode = "automatic"
        self.slow_ms = 60_000.0
        self.exponential_wait = None
        self.opens_in_a_row = 0
        self.opened_at = time.monotonic()
        # True while a call runs through the wrapper; only meaningful under the breaker's lock.
        self._in_call = False
        self._breaker_lock = breaker._lock
        self._lock_is_mine = breaker._lock._is_owned
        self.changing_mode = False
        self._listener = _Listener(self)
        breaker.add_listener(self._listener)
        self._original_call = breaker.call
        breaker.call = self._call

    def detach(self) -> None:
        with self.breaker._lock:
            self.changing_mode = True
            self._leave_mode()
            self.changing_mode = False
            self.breaker.remove_listener(self._listener)
            del self.breaker.call

    # --- the call path ---

    @property
    def in_call(self) -> bool:
        """Whether the current thread is inside a call through the wrapper."""
        return self._in_call and self._lock_is_mine()

    def _call(self, func, *args, **kwargs):
        # A call running and the lock ours: pybreaker calling `call` again as it moves from
        # Open to Half-Open.
        if self._in_call and self._lock_is_mine():
            return self._original_call(func, *args, **kwargs)
        if self.mode != "automatic":
            return self._call_in_mode(func, args, kwargs)
        listener = self._listener
        with self._breaker_lock:
            self._in_call = True
            listener.ran = False
            start = perf_counter()
            try:
                result = self._original_call(func, *args, **kwargs)
            except pybreaker.CircuitBreakerError:
                if listener.ran:
                    # It ran, failed, and tripped the breaker, which raised instead.
                    self._record(_FAILURE, start)
                else:
                    self._tally[_UNTIMED + _REJECTED] += 1
                raise
            except BaseException as error:
                self._record(_FAILURE if self.breaker.is_system_error(error) else _SUCCESS, start)
                raise
            finally:
                self._in_call = False
            if type(result) is _GENERATOR:
                return self._finish_later(result, start)
            # `_record(_SUCCESS, start)`, inline: this is every call's path.
            ms = (perf_counter() - start) * 1000.0
            self._tally[_TIMED[_SUCCESS][ms >= self.slow_ms] + bisect_left(LATENCY_BOUNDS_MS, ms)] += 1
            return result

    def _finish_later(self, generator, start: float):
        """Drives ``generator`` (pybreaker's, or the function's own) on behalf of the caller and
        records the call when it finishes: exhausted is a success, an error is judged as
        pybreaker judges it (a ``CircuitBreakerError`` then is the trip, so a failure). Each
        step runs under the breaker's lock and as a call, so a transition it causes keeps its
        trigger."""
        breaker = self.breaker
        to_send = None
        to_throw = None
        while True:
            with self._breaker_lock:
                self._in_call = True
                try:
                    if to_throw is not None:
                        item = generator.throw(to_throw)
                    else:
                        item = generator.send(to_send)
                except StopIteration as stop:
                    self._record(_SUCCESS, start)
                    return stop.value
                except pybreaker.CircuitBreakerError:
                    self._record(_FAILURE, start)
                    raise
                except BaseException as error:
                    self._record(_FAILURE if breaker.is_system_error(error) else _SUCCESS, start)
                    raise
                finally:
                    self._in_call = False
                    to_throw = None
            try:
                to_send = yield item
            except BaseException as error:
                to_throw = error

    def _record(self, outcome: int, start: float) -> None:
        """Counts a call that ran from ``start``. The caller holds the breaker's lock."""
        ms = (perf_counter() - start) * 1000.0
        self._tally[_TIMED[outcome][ms >= self.slow_ms] + bisect_left(LATENCY_BOUNDS_MS, ms)] += 1

    def _record_unlocked(self, outcome: int, start: float) -> None:
        """``_record`` for a call that ran without the breaker's lock."""
        ms = (perf_counter() - start) * 1000.0
        index = _TIMED[outcome][ms >= self.slow_ms] + bisect_left(LATENCY_BOUNDS_MS, ms)
        with self._breaker_lock:
            self._tally[index] += 1

    def _call_in_mode(self, func, args, kwargs):
        breaker = self.breaker
        mode = self.mode
        if mode == "forced_open":
            with self._breaker_lock:
                self._tally[_UNTIMED + _REJECTED] += 1
            raise pybreaker.CircuitBreakerError("circuit breaker forced open by fusebox")
        if mode == "metrics_only":
            listener = self._listener
            with self._breaker_lock:
                self._in_call = True
                listener.ran = False
                start = perf_counter()
                try:
                    result = self._original_call(func, *args, **kwargs)
                except pybreaker.CircuitBreakerError:
                    if listener.ran:
                        self._record(_FAILURE, start)
                        raise
                    # Open: the call goes through anyway, judged by us, unseen by pybreaker.
                else:
                    if isinstance(result, types.GeneratorType):
                        return self._finish_later(result, start)
                    self._record(_SUCCESS, start)
                    return result
                finally:
                    self._in_call = False
        # Disabled, or metrics only while Open: the function runs, its outcome is only reported.
        start = perf_counter()
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            self._record_unlocked(_FAILURE if breaker.is_system_error(error) else _SUCCESS, start)
            raise
        if type(result) is _GENERATOR:
            return self._finish_later(result, start)
        self._record_unlocked(_SUCCESS, start)
        return result

    # --- what the reporter reads ---

    def take_counts(self) -> tuple[list[int], list[int]]:
        """This interval's counts and latency histogram (since the last take)."""
        # One copy in one step: whole calls only (see the module's doc).
        tally = self._tally[:]
        interval = [now - before for now, before in zip(tally, self._reported)]
        self._reported = tally
        counts = [0] * _N_OUTCOMES
        latency = [0] * N_BUCKETS
        for outcome, bases in enumerate(_TIMED):
            for slow, base in enumerate(bases):
                part = interval[base : base + N_BUCKETS]
                n = sum(part)
                if n:
                    counts[outcome] += n
                    if slow:
                        counts[_SLOW] += n
                    for bucket, calls in enumerate(part):
                        latency[bucket] += calls
        for outcome in range(_N_OUTCOMES):
            counts[outcome] += interval[_UNTIMED + outcome]
        return counts, latency

    def failure_rate(self) -> tuple[None, None]:
        # pybreaker judges consecutive failures, not a rate.
        return None, None

    # --- transitions ---

    def on_state_change(self, old_state, new_state) -> None:
        breaker = self.breaker
        from_state = self.state
        to_state = _STATE_NAMES.get(new_state.name, "closed")
        self.state = to_state
        by_call = self.in_call and not self.changing_mode
        trigger = _MANUAL
        if to_state == "open":
            if by_call and from_state == "half_open":
                trigger = {"kind": "probe_failed", "value": 1.0, "threshold": 1.0}
            elif by_call and breaker.fail_counter >= breaker.fail_max:
                trigger = {"kind": "consecutive_failures", "value": float(breaker.fail_counter), "threshold": float(breaker.fail_max)}
            self.opens_in_a_row = self.opens_in_a_row + 1 if from_state == "half_open" else 1
            self.opened_at = time.monotonic()
            if self.exponential_wait is not None:
                # Read by pybreaker on the first call after this opening.
                breaker._reset_timeout = _exponential_wait_s(self.exponential_wait, self.opens_in_a_row)
        elif to_state == "half_open" and by_call:
            trigger = {"kind": "wait_elapsed", "value": time.monotonic() - self.opened_at, "threshold": float(breaker.reset_timeout)}
        elif to_state == "closed":
            self.opens_in_a_row = 0
            if by_call and from_state == "half_open":
                trigger = {"kind": "probe_succeeded", "value": float(breaker.success_threshold), "threshold": float(breaker.success_threshold)}
        self.reporter.transition(self, from_state, to_state, trigger)

    # --- pushed configs ---

    def apply_config(self, config: dict) -> dict | None:
        """Applies a pushed config (protocol.md's BreakerConfig) when pybreaker can run it live;
        otherwise returns ``{"field", "rule"}`` and changes nothing."""
        refusal = refuse(config)
        if refusal is not None:
            return refusal
        breaker = self.breaker
        wait = config["wait"]
        with breaker._lock:
            breaker.fail_max = config["consecutive_failures"]
            breaker.success_threshold = config["half_open_successes"]
            if wait["kind"] == "fixed":
                self.exponential_wait = None
                breaker.reset_timeout = wait["ms"] / 1000.0
            else:
                self.exponential_wait = wait
                breaker.reset_timeout = wait["initial_ms"] / 1000.0
            slow_ms = config.get("slow_call_duration_ms")
            self.slow_ms = 60_000.0 if slow_ms is None else float(slow_ms)
            self.config_version = config["version"]
            self._set_mode(config.get("mode") or "automatic")
        return None

    def _set_mode(self, mode: str) -> None:
        """Forced open rejects every call and holds Open; disabled lets every call through
        unjudged in Closed; metrics only judges and reports but never rejects. As the Rust
        breaker's modes: leaving forced open or disabled for automatic closes the breaker, and
        metrics only keeps the state it finds (forced open then stays Open until the wait
        elapses)."""
        if mode == self.mode:
            return
        breaker = self.breaker
        self.changing_mode = True
        try:
            self._leave_mode(mode)
            self.mode = mode
            if mode == "forced_open" and self.state != "open":
                breaker.open()
            elif mode == "disabled" and self.state != "closed":
                breaker.close()
        finally:
            self.changing_mode = False

    def _leave_mode(self, next_mode: str = "automatic") -> None:
        previous = self.mode
        self.mode = "automatic"
        closes = previous in ("forced_open", "disabled") and next_mode != "metrics_only"
        if closes and self.state != "closed":
            self.breaker.close()


def refuse(config: dict) -> dict | None:
    """The first field of ``config`` pybreaker cannot run live, with the rule, or None."""
    if config.get("failure_rate_threshold") is not None:
        return {"field": "failure_rate_threshold", "rule": "pybreaker has no failure-rate rule; it must be null"}
    if config.get("slow_call_rate_threshold") is not None:
        return {"field": "slow_call_rate_threshold", "rule": "pybreaker has no slow-call rule; it must be null"}
    if config.get("consecutive_failures") is None:
        return {"field": "consecutive_failures", "rule": "pybreaker trips only on consecutive failures (fail_max); it must be set"}
    if config.get("half_open_rule", "successes") != "successes":
        return {"field": "half_open_rule", "rule": 'pybreaker closes after half_open_successes good probes; it must be "successes"'}
    if config.get("half_open_max_wait_ms") is not None:
        return {"field": "half_open_max_wait_ms", "rule": "pybreaker stays Half-Open until a call comes; it must be null"}
    if config.get("call_timeout_ms") is not None:
        return {"field": "call_timeout_ms", "rule": "pybreaker has no call timeout; it must be null"}
    return None


def _exponential_wait_s(wait: dict, n: int) -> float:
    base = min(wait["initial_ms"] * math.pow(wait["multiplier"], n - 1), wait["max_ms"])
    spread = 1 + wait.get("jitter", 0.0) * (2 * random.random() - 1)
    return max(0.001, base * spread / 1000.0)
