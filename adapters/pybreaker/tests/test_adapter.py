"""fusebox-pybreaker against a real `fusebox serve` and real pybreaker breakers."""

from __future__ import annotations

import json
import threading
import time
import warnings

import pybreaker
import pytest

import fusebox_pybreaker
from conftest import FuseboxServer, pybreaker_config, wait_for

SERVICE = "py-shop"


class Dependency:
    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.down:
            raise ConnectionError("dependency down")
        return "ok"


@pytest.fixture
def attach(server):
    reporters = []

    def make(breaker, **changes):
        options = dict(url=server.url, key=server.keys[SERVICE], service=SERVICE, instance="py-1",
                       interval_s=0.2, no_config_retry_s=0.1)
        options.update(changes)
        reporter = fusebox_pybreaker.attach(breaker, **options)
        reporters.append(reporter)
        return reporter

    yield make
    for reporter in reporters:
        reporter.close()


def call(breaker, dependency) -> str:
    try:
        return breaker.call(dependency)
    except pybreaker.CircuitBreakerError:
        return "rejected"
    except ConnectionError:
        return "failed"


def series_totals(server, service, breaker, from_ms, to_ms) -> dict:
    series = server.get(f"/api/v1/breakers/{service}/{breaker}/series?from_ms={from_ms}&to_ms={to_ms}")
    totals = {"success": 0, "failure": 0, "rejected": 0}
    for point in series["points"]:
        for outcome in totals:
            totals[outcome] += point["counts"][outcome]
    return totals


def config_view(server, breaker):
    return server.get(f"/api/v1/breakers/{SERVICE}/{breaker}/config")


def test_a_trip_shows_in_the_list_the_log_with_its_trigger_and_the_stream(server, attach):
    stream = server.stream()
    from_ms = int(time.time() * 1000) - 1000
    breaker = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=60, name="payments")
    dependency = Dependency()
    attach(breaker)
    for _ in range(4):
        assert call(breaker, dependency) == "ok"
    dependency.down = True
    outcomes = [call(breaker, dependency) for _ in range(3)]
    assert outcomes == ["failed", "failed", "rejected"]  # the third failure trips; pybreaker raises its own error
    assert breaker.current_state == "open"
    assert call(breaker, dependency) == "rejected"

    event = stream.next(lambda e: e["event"] == "transition" and json.loads(e["data"])["breaker"] == "payments", 10)
    live = json.loads(event["data"])
    stream.close()
    assert (live["service"], live["instance"], live["from"], live["to"]) == (SERVICE, "py-1", "closed", "open")
    assert live["trigger"] == {"kind": "consecutive_failures", "value": 3.0, "threshold": 3.0}

    summary = wait_for("payments Open in /api/v1/breakers", 10, lambda: (b := server.breaker(SERVICE, "payments")) and b["state"] == "open" and b)
    assert summary["last_trip"]["trigger"]["kind"] == "consecutive_failures"
    log = server.get(f"/api/v1/breakers/{SERVICE}/payments/transitions")
    assert (log[0]["to"], log[0]["trigger"]["kind"], log[0]["trigger"]["value"]) == ("open", "consecutive_failures", 3.0)

    # Calls reach the aggregates: 4 successes, 3 failures (the tripping one too), 1 rejection.
    wait_for("the calls in the series", 10, lambda: series_totals(
        server, SERVICE, "payments", from_ms, int(time.time() * 1000) + 1000) == {"success": 4, "failure": 3, "rejected": 1})


def test_a_pushed_config_reaches_the_live_breaker_and_shows_in_sync(server, attach):
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60, name="inventory")
    attach(breaker)
    wait_for("inventory reported", 10, lambda: server.breaker(SERVICE, "inventory"))
    server.write("PUT", f"/api/v1/breakers/{SERVICE}/inventory/config", {"config": pybreaker_config(consecutive_failures=7)})
    wait_for("the first config applied", 10, lambda: breaker.fail_max == 7)

    saved = server.write("PUT", f"/api/v1/breakers/{SERVICE}/inventory/config", {
        "config": pybreaker_config(consecutive_failures=2, wait={"kind": "fixed", "ms": 1500},
                                   half_open_probes=3, half_open_successes=3),
        "reason": "tighter",
    })
    version = saved["config"]["version"]
    # How soon is the bench's business; a loaded machine gets a generous deadline here.
    wait_for("the change applied to the live breaker", 10,
             lambda: (breaker.fail_max, breaker.reset_timeout, breaker.success_threshold) == (2, 1.5, 3))

    def in_sync():
        instance = next((i for i in config_view(server, "inventory")["instances"] if i["instance"] == "py-1"), None)
        return instance and instance["in_sync"] and instance["running_version"] == version and instance["refused"] is None

    wait_for("the instance in sync", 5, in_sync)
    wait_for("the version in the breaker list", 5,
             lambda: server.breaker(SERVICE, "inventory")["instances"][0]["config_version"] == version)


def test_an_unsupported_field_is_refused_with_its_reason(server, attach):
    breaker = pybreaker.CircuitBreaker(fail_max=5, name="search")
    attach(breaker)
    wait_for("search reported", 10, lambda: server.breaker(SERVICE, "search"))
    server.write("PUT", f"/api/v1/breakers/{SERVICE}/search/config", {"config": pybreaker_config(consecutive_failures=4)})
    wait_for("the config applied", 10, lambda: breaker.fail_max == 4)
    good = config_view(server, "search")["current"]["config"]["version"]

    saved = server.write("PUT", f"/api/v1/breakers/{SERVICE}/search/config",
                         {"config": pybreaker_config(consecutive_failures=2, failure_rate_threshold=0.5)})

    def refused():
        instance = next((i for i in config_view(server, "search")["instances"] if i["instance"] == "py-1"), None)
        return instance and instance["refused"] and instance

    instance = wait_for("the refusal reported", 10, refused)
    assert instance["refused"]["version"] == saved["config"]["version"]
    assert instance["refused"]["field"] == "failure_rate_threshold"
    assert "pybreaker has no failure-rate rule" in instance["refused"]["rule"]
    assert instance["running_version"] == good
    assert instance["in_sync"] is False
    assert breaker.fail_max == 4


def test_forced_open_holds_disabled_and_metrics_only_let_calls_through(server, attach):
    breaker = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=60, name="ledger")
    dependency = Dependency()
    attach(breaker)
    wait_for("ledger reported", 10, lambda: server.breaker(SERVICE, "ledger"))
    server.write("PUT", f"/api/v1/breakers/{SERVICE}/ledger/config",
                 {"config": pybreaker_config(consecutive_failures=3, wait={"kind": "fixed", "ms": 50})})
    wait_for("the config applied", 10, lambda: breaker.reset_timeout == 0.05)

    server.write("POST", f"/api/v1/breakers/{SERVICE}/ledger/control", {"mode": "forced_open", "reason": "maintenance"})
    wait_for("the breaker forced open", 5, lambda: breaker.current_state == "open")
    calls = dependency.calls
    # Far past the configured 50 ms wait: still Open, every call rejected, none reaches the dependency.
    hold_until = time.monotonic() + 0.3
    while time.monotonic() < hold_until:
        assert call(breaker, dependency) == "rejected"
        time.sleep(0.01)
    assert breaker.current_state == "open"
    assert dependency.calls == calls
    log = wait_for("the manual transition logged", 5, lambda: (l := server.get(f"/api/v1/breakers/{SERVICE}/ledger/transitions")) and l[0]["to"] == "open" and l)
    assert log[0]["trigger"]["kind"] == "manual"

    server.write("POST", f"/api/v1/breakers/{SERVICE}/ledger/control", {"mode": "disabled"})
    wait_for("the breaker disabled and closed", 5, lambda: breaker.current_state == "closed")
    dependency.down = True
    assert [call(breaker, dependency) for _ in range(10)] == ["failed"] * 10
    assert breaker.current_state == "closed"

    server.write("POST", f"/api/v1/breakers/{SERVICE}/ledger/control", {"mode": "metrics_only"})
    binding = wait_for("metrics only", 5, lambda: (b := fusebox_binding(breaker)).mode == "metrics_only" and b)
    while breaker.current_state != "open":
        call(breaker, dependency)
    before = dependency.calls
    # Open, yet the call reaches the dependency (its error, not a rejection).
    assert call(breaker, dependency) == "failed"
    assert dependency.calls == before + 1

    dependency.down = False
    server.write("POST", f"/api/v1/breakers/{SERVICE}/ledger/control", {"mode": "automatic"})
    wait_for("automatic again", 5, lambda: binding.mode == "automatic")
    wait_for("closed by a good probe", 5, lambda: call(breaker, dependency) and breaker.current_state == "closed")


def fusebox_binding(breaker):
    # The bound `call` is the binding's method.
    return breaker.call.__self__


def test_with_the_server_down_calls_never_wait_memory_stays_bounded_and_everything_arrives(tmp_path):
    down = FuseboxServer(["py-down"])
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=600, name="db")
    dependency = Dependency()
    max_buffered = 40
    reporter = fusebox_pybreaker.attach(breaker, url=down.url, key=down.keys["py-down"], service="py-down",
                                        instance="py-1", interval_s=0.01, max_buffered=max_buffered,
                                        max_backoff_s=0.2, follow_configs=False)
    try:
        wait_for("a first batch acknowledged", 10, lambda: reporter.snapshot()["batches_acked"] > 0)
        from_ms = int(time.time() * 1000) - 1000
        down.stop()

        # Calls go on while the server is down and the reporter's sends fail and back off: a call
        # only adds to its counters, and a transition only queues itself under the reporter's lock.
        outcomes = {"ok": 0, "failed": 0, "rejected": 0}
        for round_ in range(30):
            dependency.down = round_ >= 20
            for _ in range(100):
                outcomes[call(breaker, dependency)] += 1
            time.sleep(0.01)
        # The call that trips the breaker failed, though pybreaker raises its own error for it.
        ran = dependency.calls
        outcomes["failed"] = ran - outcomes["ok"]
        outcomes["rejected"] = 3000 - ran
        assert breaker.current_state == "open"
        wait_for("the reporter failing and coalescing", 10, lambda: (s := reporter.snapshot())["failed_attempts"] > 0 and s["drops"]["aggregates_coalesced"] > 0)
        held = reporter.snapshot()["held_items"]
        assert held <= max_buffered, f"holds {held} items, over {max_buffered}"

        down.resume()
        wait_for("everything acknowledged", 20, lambda: reporter.snapshot()["pending_items"] == 0)
        totals = series_totals(down, "py-down", "db", from_ms, int(time.time() * 1000) + 1000)
        assert totals == {"success": outcomes["ok"], "failure": outcomes["failed"], "rejected": outcomes["rejected"]}
        log = down.get("/api/v1/breakers/py-down/db/transitions")
        assert (log[0]["to"], log[0]["trigger"]["kind"]) == ("open", "consecutive_failures")
    finally:
        reporter.close()
        down.close()


def test_a_call_never_waits_for_a_hanging_server(server):
    # A server that accepts and never answers: the reporter's thread blocks in its request.
    import socket

    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    breaker = pybreaker.CircuitBreaker(fail_max=5, name="slow-server")
    reporter = fusebox_pybreaker.attach(breaker, url=url, key="fbk_unused", service="py-hang", instance="py-1",
                                        interval_s=0.01, request_timeout_s=30, follow_configs=False,
                                        shutdown_timeout_s=0.1)
    try:
        dependency = Dependency()
        wait_for("a batch in flight", 5, lambda: reporter._in_flight is not None)
        done = threading.Event()

        def calls():
            for _ in range(1000):
                call(breaker, dependency)
            done.set()

        threading.Thread(target=calls, daemon=True).start()
        wait_for("1,000 calls done while the batch hangs", 5, done.is_set)
        assert reporter.snapshot()["batches_acked"] == 0 and reporter._in_flight is not None
    finally:
        hanging.close()
        with warnings.catch_warnings():
            # What it could not send to the hanging server is expected here.
            warnings.simplefilter("ignore")
            reporter.close()


def test_a_503_with_retry_after_holds_the_next_attempt_back_then_the_same_batch_is_sent():
    import http.server

    attempts = []

    class Busy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/api/v1/ingest":
                self.send_response(404)
                self.end_headers()
                return
            attempts.append((time.monotonic(), batch))
            if len(attempts) == 1:
                body, status, headers = b'{"error":"overloaded","detail":"queue full"}', 503, {"Retry-After": "1"}
            else:
                body, status, headers = json.dumps({"seq": batch["seq"], "duplicate": False}).encode(), 200, {}
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    busy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=busy.serve_forever, daemon=True).start()
    breaker = pybreaker.CircuitBreaker(name="busy")
    reporter = fusebox_pybreaker.attach(breaker, url=f"http://127.0.0.1:{busy.server_address[1]}", key="fbk_test",
                                        service=SERVICE, instance="py-1", interval_s=0.05, follow_configs=False)
    try:
        wait_for("the batch acknowledged after the refusal", 10, lambda: reporter.snapshot()["batches_acked"] > 0)
        # The same batch: its number and all of its content.
        assert attempts[1][1] == attempts[0][1]
        assert attempts[1][0] - attempts[0][0] >= 1.0, f"retried after {attempts[1][0] - attempts[0][0]:.3f} s"
    finally:
        reporter.close()
        busy.shutdown()


def test_a_batch_with_more_behind_it_asks_for_an_early_answer_and_a_202_counts_as_acknowledged():
    import http.server

    up = threading.Event()
    answered = []  # (seq, asked for an early answer, status), for the requests answered while up

    class Stand(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked = self.headers.get("Prefer") == "respond-async"
            if not up.is_set():
                status, body = 503, b'{"error":"overloaded","detail":"down"}'
            else:
                # As the server does when it journals a batch: 202 for one that asks.
                status = 202 if asked else 200
                body = json.dumps({"seq": batch["seq"], "duplicate": False}).encode()
                answered.append((batch["seq"], asked, status))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    stand = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stand)
    threading.Thread(target=stand.serve_forever, daemon=True).start()
    breaker = pybreaker.CircuitBreaker(name="backlog")
    reporter = fusebox_pybreaker.attach(breaker, url=f"http://127.0.0.1:{stand.server_address[1]}", key="fbk_test",
                                        service=SERVICE, instance="py-1", interval_s=3600, follow_configs=False,
                                        max_batch_items=1, min_backoff_s=0.01, max_backoff_s=0.05)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Four transitions queue up while the server refuses.
            for _ in range(2):
                breaker.open()
                breaker.close()
            wait_for("a refused attempt", 10, lambda: reporter.snapshot()["failed_attempts"] > 0)
            up.set()
            wait_for("everything acknowledged", 10, lambda: reporter.snapshot()["pending_items"] == 0)
        assert reporter.snapshot()["batches_acked"] == 4
        assert [asked for _, asked, _ in answered] == [True, True, True, False], answered
        assert [status for _, _, status in answered] == [202, 202, 202, 200], answered
    finally:
        reporter.close()
        stand.shutdown()
