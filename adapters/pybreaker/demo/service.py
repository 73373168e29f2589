"""A simulated Python service with two pybreaker breakers, attached with fusebox-pybreaker: what
`fusebox demo` runs beside its Rust services, and what the browser test shows on the dashboard.
`inventory` fails for 20 s every 120 s, 60 s after the start, so it opens and recovers; `mailer`
stays healthy. Configured by FUSEBOX_URL, FUSEBOX_KEY, FUSEBOX_SERVICE, FUSEBOX_INSTANCE; it stops,
flushing what is left, when its standard input closes.
"""

import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pybreaker  # noqa: E402

import fusebox_pybreaker  # noqa: E402

started = time.monotonic()


def in_incident() -> bool:
    s = time.monotonic() - started - 60
    return s >= 0 and s % 120 < 20


def dependency(name: str, failure_p: float, incident: bool):
    def call():
        failing = incident and in_incident()
        time.sleep((0.04 if failing else 0.004) * (0.5 + random.random()))
        if random.random() < (0.7 if failing else failure_p):
            raise ConnectionError(f"{name} failed")
        return "ok"

    return call


breakers = {
    "mailer": (pybreaker.CircuitBreaker(fail_max=5, reset_timeout=5, name="mailer"), dependency("mailer", 0.01, False)),
    "inventory": (pybreaker.CircuitBreaker(fail_max=5, reset_timeout=5, name="inventory"), dependency("inventory", 0.02, True)),
}
reporter = fusebox_pybreaker.attach(
    [breaker for breaker, _ in breakers.values()],
    url=os.environ.get("FUSEBOX_URL", "http://127.0.0.1:7878"),
    key=os.environ.get("FUSEBOX_KEY"),
    service=os.environ.get("FUSEBOX_SERVICE", "py-shop"),
    instance=os.environ.get("FUSEBOX_INSTANCE", "py-1"),
)
stop = threading.Event()


def caller(breaker, call) -> None:
    while not stop.is_set():
        try:
            breaker.call(call)
        except Exception:
            pass
        stop.wait(0.05)


threads = [threading.Thread(target=caller, args=pair, daemon=True) for pair in breakers.values()]
for thread in threads:
    thread.start()
sys.stdin.read()
stop.set()
for thread in threads:
    thread.join(5)
reporter.close()
