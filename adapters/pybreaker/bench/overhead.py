"""Per-call overhead of fusebox-pybreaker: the same call through a bare pybreaker breaker and
through one attached to a reporter, alternating, several rounds; prints each round and the
medians. Run: python bench/overhead.py [calls per round] [rounds]   (cargo xtask bench --only pybreaker)
"""

import importlib.metadata
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pybreaker  # noqa: E402

import fusebox_pybreaker  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 7


def action(x):
    return x


bare = pybreaker.CircuitBreaker(name="bare")
attached = pybreaker.CircuitBreaker(name="attached")
# The reporter sends to a closed port: its retries run beside the calls, as with a server down.
reporter = fusebox_pybreaker.attach(attached, url="http://127.0.0.1:9", key="fbk_bench", service="bench",
                                    instance="bench-1", follow_configs=False, shutdown_timeout_s=0.1)


def ns_per_call(breaker) -> float:
    call = breaker.call
    start = time.perf_counter_ns()
    for i in range(CALLS):
        call(action, i)
    return (time.perf_counter_ns() - start) / CALLS


ns_per_call(bare)
ns_per_call(attached)
bare_ns, attached_ns, added_ns = [], [], []
for round_ in range(1, ROUNDS + 1):
    b = ns_per_call(bare)
    a = ns_per_call(attached)
    bare_ns.append(b)
    attached_ns.append(a)
    added_ns.append(a - b)
    print(f"round {round_}: bare {b:.0f} ns/call, attached {a:.0f} ns/call, added {a - b:.0f} ns")
print(f"pybreaker {importlib.metadata.version('pybreaker')}, "
      f"python {sys.version.split()[0]}, {CALLS} calls × {ROUNDS} rounds")
print(f"median: bare {statistics.median(bare_ns):.0f} ns/call, attached {statistics.median(attached_ns):.0f} ns/call, "
      f"added {statistics.median(added_ns):.0f} ns/call (goal ≤ 2000 ns)")
# What it could not send to the closed port is no news here.
warnings.simplefilter("ignore")
reporter.close()
