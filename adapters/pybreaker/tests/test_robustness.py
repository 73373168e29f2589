"""fusebox-pybreaker without a real server: threads calling at once, ``calling()`` and generator
functions, the counters' invariant, and fake servers that cut answers short or redirect."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
import warnings

import pybreaker
import pytest

import fusebox_pybreaker
from conftest import wait_for
from fusebox_pybreaker._binding import PybreakerBinding
from fusebox_pybreaker._reporter import OUTCOMES

SUCCESS, FAILURE, REJECTED, SLOW = (OUTCOMES.index(name) for name in ("success", "failure", "rejected", "slow"))


class Transitions:
    """Stands in for the reporter: keeps the transitions a binding reports."""

    def __init__(self) -> None:
        self.seen = []

    def transition(self, binding, from_state, to_state, trigger) -> None:
        self.seen.append((from_state, to_state, trigger["kind"]))


def bind(breaker) -> tuple[PybreakerBinding, Transitions]:
    transitions = Transitions()
    return PybreakerBinding(breaker, transitions), transitions


def test_calls_from_many_threads_at_once_are_all_counted():
    breaker = pybreaker.CircuitBreaker(fail_max=10_000, name="concurrent")
    binding, _ = bind(breaker)
    n_threads, n_calls = 8, 200
    start = threading.Barrier(n_threads)

    def work():
        # Gives the other threads the interpreter while this one is inside the breaker.
        time.sleep(0)
        return "ok"

    def caller():
        start.wait()
        for _ in range(n_calls):
            breaker.call(work)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=caller) for _ in range(n_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(old_interval)
    counts, latency = binding.take_counts()
    assert counts[SUCCESS] == n_threads * n_calls
    assert sum(latency) == n_threads * n_calls


def test_a_trip_by_one_of_many_threads_keeps_its_trigger():
    breaker = pybreaker.CircuitBreaker(fail_max=50, reset_timeout=600, name="concurrent-trip")
    binding, transitions = bind(breaker)
    start = threading.Barrier(8)

    def failing():
        time.sleep(0)
        raise ConnectionError("down")

    def caller():
        start.wait()
        for _ in range(20):
            try:
                breaker.call(failing)
            except (ConnectionError, pybreaker.CircuitBreakerError):
                pass

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=caller) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(old_interval)
    counts, _ = binding.take_counts()
    assert counts[FAILURE] == 50 and counts[REJECTED] == 8 * 20 - 50
    assert transitions.seen == [("closed", "open", "consecutive_failures")]


def test_the_probe_pybreaker_runs_by_calling_again_is_one_call_with_its_triggers():
    # pybreaker moves Open → Half-Open by calling `call` again from inside the first call after
    # the wait: that inner call is the probe, not a second call.
    breaker = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=0.05, name="probe")
    binding, transitions = bind(breaker)
    binding.slow_ms = 20.0

    def failing():
        raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises((ConnectionError, pybreaker.CircuitBreakerError)):
            breaker.call(failing)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(lambda: "refused")
    time.sleep(0.06)
    assert breaker.call(lambda: time.sleep(0.025) or "probe") == "probe"
    assert breaker.current_state == pybreaker.STATE_CLOSED
    assert transitions.seen == [
        ("closed", "open", "consecutive_failures"),
        ("open", "half_open", "wait_elapsed"),
        ("half_open", "closed", "probe_succeeded"),
    ]
    counts, latency = binding.take_counts()
    assert (counts[SUCCESS], counts[FAILURE], counts[REJECTED]) == (1, 2, 1)
    # Three calls timed (the refused one is not); the probe took 25 ms or more: slow, and in
    # the bucket up to 50 ms or a later one.
    assert sum(latency) == 3 and sum(latency[5:]) >= 1 and 1 <= counts[SLOW] <= 3
    # Taken: the next interval starts from nothing.
    assert binding.take_counts() == ([0] * len(OUTCOMES), [0] * len(latency))


def test_calling_counts_the_block_when_it_ends_and_a_failing_block_trips_with_its_trigger():
    breaker = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=600, name="calling")
    binding, transitions = bind(breaker)

    with breaker.calling():
        # Inside the block the call has not finished: nothing is counted yet.
        assert binding.take_counts()[0][SUCCESS] == 0
    counts, latency = binding.take_counts()
    assert (counts[SUCCESS], counts[FAILURE], sum(latency)) == (1, 0, 1)

    with pytest.raises(ConnectionError):
        with breaker.calling():
            raise ConnectionError("down")
    counts, latency = binding.take_counts()
    assert (counts[SUCCESS], counts[FAILURE], sum(latency)) == (0, 1, 1)

    # The second failure in a row trips the breaker, which raises its own error instead.
    with pytest.raises(pybreaker.CircuitBreakerError):
        with breaker.calling():
            raise ConnectionError("down")
    assert breaker.current_state == "open"
    with pytest.raises(pybreaker.CircuitBreakerError):
        with breaker.calling():
            pytest.fail("the block of a rejected call runs")
    counts, _ = binding.take_counts()
    assert (counts[SUCCESS], counts[FAILURE], counts[REJECTED]) == (0, 1, 1)
    assert transitions.seen == [("closed", "open", "consecutive_failures")]


def test_an_excluded_error_in_a_calling_block_is_a_success_as_pybreaker_counts_it():
    breaker = pybreaker.CircuitBreaker(fail_max=1, exclude=[KeyError], name="calling-excluded")
    binding, _ = bind(breaker)
    with pytest.raises(KeyError):
        with breaker.calling():
            raise KeyError("business")
    counts, _ = binding.take_counts()
    assert (counts[SUCCESS], counts[FAILURE]) == (1, 0)
    assert breaker.current_state == "closed"


def test_a_generator_function_is_counted_when_it_finishes():
    breaker = pybreaker.CircuitBreaker(fail_max=5, name="generator")
    binding, _ = bind(breaker)

    @breaker
    def numbers(fail: bool):
        yield 1
        yield 2
        if fail:
            raise ConnectionError("down")

    items = numbers(False)
    assert next(items) == 1
    assert binding.take_counts()[0][SUCCESS] == 0
    assert list(items) == [2]
    counts, _ = binding.take_counts()
    assert (counts[SUCCESS], counts[FAILURE]) == (1, 0)

    with pytest.raises(ConnectionError):
        list(numbers(True))
    counts, _ = binding.take_counts()
    assert (counts[SUCCESS], counts[FAILURE]) == (0, 1)
    assert breaker.fail_counter == 1


def test_counts_taken_while_calls_run_never_hold_a_latency_or_slow_mark_without_its_outcome():
    breaker = pybreaker.CircuitBreaker(fail_max=10_000, name="invariant")
    binding, _ = bind(breaker)
    # Every call is slow, so every call writes an outcome, a slow mark and a latency.
    binding.slow_ms = 0.0
    stop = threading.Event()

    def calls():
        while not stop.is_set():
            breaker.call(lambda: None)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    caller = threading.Thread(target=calls)
    caller.start()
    try:
        for _ in range(20_000):
            counts, latency = binding.take_counts()
            ran = counts[SUCCESS] + counts[FAILURE]
            assert counts[SLOW] <= ran and sum(latency) <= ran, (counts, latency)
    finally:
        stop.set()
        caller.join(60)
        sys.setswitchinterval(old_interval)


# --- fake servers ---


class FakeServer:
    """An HTTP server on a free port whose ``answer(handler)`` writes each answer itself."""

    def __init__(self, answer) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, dict(self.headers), body))
                answer(self)

            do_GET = do_POST = handle_one

            def log_message(self, *args):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def count(self, path_prefix: str) -> int:
        return sum(1 for _, path, _, _ in list(self.requests) if path.startswith(path_prefix))

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def reply(handler, status: int, body: bytes, headers: dict | None = None) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def cut_short(handler) -> None:
    """Promises 100 bytes, sends 10 and closes: urllib raises http.client.IncompleteRead."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b'{"seq": 12')
    handler.close_connection = True


def test_answers_cut_short_leave_the_reporter_and_the_config_follower_running():
    n_ingest = [0]
    n_config = [0]
    config = {
        "version": 3, "failure_rate_threshold": None, "consecutive_failures": 9,
        "window": {"kind": "count", "calls": 10}, "minimum_calls": 5,
        "wait": {"kind": "fixed", "ms": 60000}, "half_open_probes": 1, "half_open_successes": 1,
    }

    def answer(handler):
        _, path, _, body = fake.requests[-1]
        if path == "/api/v1/ingest":
            n_ingest[0] += 1
            if n_ingest[0] == 1:
                cut_short(handler)
            else:
                reply(handler, 200, json.dumps({"seq": json.loads(body)["seq"], "duplicate": False}).encode())
        elif path.startswith("/api/v1/config/"):
            n_config[0] += 1
            if n_config[0] == 1:
                cut_short(handler)
            else:
                reply(handler, 200, json.dumps(config).encode())
        else:
            reply(handler, 200, b"{}")

    fake = FakeServer(answer)
    breaker = pybreaker.CircuitBreaker(fail_max=5, name="cut-short")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reporter = fusebox_pybreaker.attach(breaker, url=fake.url, key="fbk_test", service="py-fake", instance="py-1",
                                            interval_s=0.05, min_backoff_s=0.01, poll_timeout_s=1.0)
        try:
            wait_for("a batch acknowledged after an answer cut short", 30, lambda: reporter.snapshot()["batches_acked"] > 0)
            assert reporter._thread.is_alive()
            wait_for("the config applied after an answer cut short", 30, lambda: breaker.fail_max == 9)
        finally:
            reporter.close(timeout_s=1.0)
            fake.close()


def test_a_config_the_binding_raises_on_is_asked_for_again():
    config = {
        "version": 4, "failure_rate_threshold": None, "consecutive_failures": 6,
        "window": {"kind": "count", "calls": 10}, "minimum_calls": 5,
        "wait": {"kind": "fixed", "ms": 60000}, "half_open_probes": 1, "half_open_successes": 1,
    }

    def answer(handler):
        _, path, _, _ = fake.requests[-1]
        reply(handler, 200, json.dumps(config).encode() if path.startswith("/api/v1/config/") else b"{}")

    fake = FakeServer(answer)
    breaker = pybreaker.CircuitBreaker(fail_max=5, name="raising-listener")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reporter = fusebox_pybreaker.PybreakerReporter(fake.url, "fbk_test", "py-fake", "py-1", interval_s=60,
                                                       min_backoff_s=0.01, follow_configs=False)
        try:
            binding = reporter.add(breaker)
            apply = binding.apply_config
            n_applied = [0]

            def apply_once_raising(pushed):
                n_applied[0] += 1
                if n_applied[0] == 1:
                    raise RuntimeError("a listener raised")
                return apply(pushed)

            binding.apply_config = apply_once_raising
            follower = threading.Thread(target=reporter._follow, args=(binding,), daemon=True)
            follower.start()
            wait_for("the config applied after the binding raised", 30, lambda: breaker.fail_max == 6)
            assert follower.is_alive()
        finally:
            reporter.close(timeout_s=1.0)
            fake.close()


def test_a_redirect_is_never_followed_with_the_key_and_the_batch_is_retried():
    # urllib would follow a 302 for the POST (as a GET) and a 307 for the config poll, with the
    # Authorization header, to whatever host Location names.
    elsewhere = FakeServer(lambda handler: reply(handler, 200, b"{}"))

    def redirect(handler):
        _, path, _, _ = redirecting.requests[-1]
        status = 302 if path == "/api/v1/ingest" else 307
        reply(handler, status, b"", {"Location": elsewhere.url + path})

    redirecting = FakeServer(redirect)
    breaker = pybreaker.CircuitBreaker(name="redirected")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reporter = fusebox_pybreaker.attach(breaker, url=redirecting.url, key="fbk_secret", service="py-fake",
                                            instance="py-1", interval_s=0.05, min_backoff_s=0.01,
                                            max_backoff_s=0.05)
        try:
            wait_for("the batch retried", 30, lambda: redirecting.count("/api/v1/ingest") >= 3)
            wait_for("the config polled again", 30, lambda: redirecting.count("/api/v1/config/") >= 2)
            snapshot = reporter.snapshot()
            assert snapshot["batches_acked"] == 0 and snapshot["failed_attempts"] >= 2
            assert elsewhere.requests == []
            seqs = {json.loads(body)["seq"] for _, path, _, body in list(redirecting.requests) if path == "/api/v1/ingest"}
            assert len(seqs) == 1
        finally:
            reporter.close(timeout_s=0.2)
            redirecting.close()
            elsewhere.close()
    # The first failed attempt is said at once, as the Rust reporter says it.
    assert any("reporting failed (302)" in str(warning.message) for warning in caught)


def test_close_keeps_to_its_timeout():
    # A port nothing listens on: every attempt fails, the flush retries until its deadline.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    breaker = pybreaker.CircuitBreaker(name="closing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reporter = fusebox_pybreaker.attach(breaker, url=url, key="fbk_test", service="py-fake", instance="py-1",
                                            interval_s=60, shutdown_timeout_s=600, follow_configs=False)
        reporter.close(timeout_s=0.5)
        # Joined well before the 600 s default: the flush used the 0.5 s it was given.
        assert reporter._closed.is_set()
        assert not reporter._thread.is_alive()


def test_forced_open_then_metrics_only_stays_open_as_the_rust_breaker_does():
    breaker = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=600, name="modes")
    binding, transitions = bind(breaker)
    config = {
        "version": 1, "failure_rate_threshold": None, "consecutive_failures": 3,
        "window": {"kind": "count", "calls": 10}, "minimum_calls": 5,
        "wait": {"kind": "fixed", "ms": 600_000}, "half_open_probes": 1, "half_open_successes": 1,
        "mode": "forced_open",
    }
    assert binding.apply_config(config) is None
    assert breaker.current_state == "open"
    assert binding.apply_config({**config, "version": 2, "mode": "metrics_only"}) is None
    assert breaker.current_state == "open"
    # Never rejected while metrics only, though Open.
    assert breaker.call(lambda: "ran") == "ran"
    assert binding.apply_config({**config, "version": 3, "mode": "disabled"}) is None
    assert breaker.current_state == "closed"
    assert transitions.seen == [("closed", "open", "manual"), ("open", "closed", "manual")]
