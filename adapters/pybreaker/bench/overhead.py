"""Per-call overhead of fusebox-pybreaker: the same call through a bare pybreaker breaker and
through one attached to a reporter, several rounds; prints each round and the medians. A round
is LOOPS loops of each, taking turns loop by loop, and takes each side's fastest loop: other
work on the machine (the reporter's own retries among it) only ever adds time to a loop, and
hits both sides alike. Run: python bench/overhead.py [calls per round] [rounds]   (cargo xtask bench --only pybreaker)
`python bench/overhead.py memory [minutes]` (`cargo xtask bench --only pybreaker -- memory 10`)
instead makes 1,000 calls/s with the server down for that long (10 minutes by default) and prints
the process's memory and what the reporter holds, once a minute.
Under `cargo xtask bench` (FUSEBOX_BENCH_SUMMARY names a file) the median added time is also
appended there as a row of the run's goal/figure summary (the format of xtask/src/bench/row.rs).
"""

import importlib.metadata
import json
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pybreaker  # noqa: E402

import fusebox_pybreaker  # noqa: E402

MEMORY = len(sys.argv) > 1 and sys.argv[1] == "memory"
CALLS = 0 if MEMORY else int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 and not MEMORY else 7
MINUTES = (float(sys.argv[2]) if len(sys.argv) > 2 else 10.0) if MEMORY else 0.0


def action(x):
    return x


bare = pybreaker.CircuitBreaker(name="bare")
attached = pybreaker.CircuitBreaker(name="attached")
# The reporter sends to a closed port: its retries run beside the calls, as with a server down.
reporter = fusebox_pybreaker.attach(attached, url="http://127.0.0.1:9", key="fbk_bench", service="bench",
                                    instance="bench-1", follow_configs=False, shutdown_timeout_s=0.1)


# Loops of each side per round; a loop makes CALLS / LOOPS calls.
LOOPS = 5


def ns_per_call(breaker, calls: int) -> float:
    call = breaker.call
    start = time.perf_counter_ns()
    for i in range(calls):
        call(action, i)
    return (time.perf_counter_ns() - start) / calls


def one_round() -> tuple[float, float]:
    """The fastest loop of each side, the sides taking turns."""
    calls = max(1, CALLS // LOOPS)
    bare_loops, attached_loops = [], []
    for _ in range(LOOPS):
        bare_loops.append(ns_per_call(bare, calls))
        attached_loops.append(ns_per_call(attached, calls))
    return min(bare_loops), min(attached_loops)


def summary_row(row: dict) -> None:
    """One row of `cargo xtask bench`'s summary, when it asked for them."""
    path = os.environ.get("FUSEBOX_BENCH_SUMMARY")
    if not path:
        return
    row = {**row, "command": row.get("command") or os.environ.get("FUSEBOX_BENCH_COMMAND", "")}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


def thread_cpu_s(name: str) -> float:
    """CPU seconds the thread called `name` has used (Linux: its /proc stat)."""
    thread = next(t for t in threading.enumerate() if t.name == name)
    fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1048576


def memory_with_server_down() -> None:
    def report(minute: float) -> None:
        s = reporter.snapshot()
        drops = s["drops"]
        print(f"minute {minute:g}: rss {rss_mb():.1f} MB, reporter holds {s['pending_items']} items, "
              f"coalesced {drops['aggregates_coalesced']}, dropped {drops['aggregates_dropped'] + drops['transitions_dropped']}, "
              f"failed sends {s['failed_attempts']}", flush=True)

    report(0)
    started = time.monotonic()
    calls = 0
    next_report = 1
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= MINUTES * 60:
            break
        # As many calls as 1,000 a second makes by now.
        while calls < elapsed * 1000:
            attached.call(action, calls)
            calls += 1
        if elapsed >= next_report * 60:
            report(next_report)
            next_report += 1
        time.sleep(0.005)
    report(MINUTES)
    print(f"{calls} calls in {MINUTES:g} min with the server down (pybreaker {importlib.metadata.version('pybreaker')}, "
          f"python {sys.version.split()[0]})")


if MEMORY:
    memory_with_server_down()
    warnings.simplefilter("ignore")
    reporter.close()
    sys.exit(0)

one_round()
reporter_cpu = thread_cpu_s("fusebox-reporter")
rounds_started = time.monotonic()
bare_ns, attached_ns, added_ns = [], [], []
for round_ in range(1, ROUNDS + 1):
    b, a = one_round()
    bare_ns.append(b)
    attached_ns.append(a)
    added_ns.append(a - b)
    print(f"round {round_}: bare {b:.0f} ns/call, attached {a:.0f} ns/call, added {a - b:.0f} ns")
reporter_cpu = thread_cpu_s("fusebox-reporter") - reporter_cpu
rounds_s = time.monotonic() - rounds_started
print(f"the reporter's thread (left out of the fastest loops): {reporter_cpu:.2f} CPU-s over the rounds' {rounds_s:.1f} s "
      f"({100 * reporter_cpu / rounds_s:.2f} %)")
print(f"pybreaker {importlib.metadata.version('pybreaker')}, "
      f"python {sys.version.split()[0]}, {ROUNDS} rounds of {LOOPS} loops of {CALLS // LOOPS} calls per side, "
      f"the fastest loop of each side per round")
print(f"median: bare {statistics.median(bare_ns):.0f} ns/call, attached {statistics.median(attached_ns):.0f} ns/call, "
      f"added {statistics.median(added_ns):.0f} ns/call (goal ≤ 2000 ns)")
added = statistics.median(added_ns)
summary_row({
    "bench": "pybreaker",
    "what": f"fusebox-pybreaker: time added per call against bare pybreaker {importlib.metadata.version('pybreaker')} "
            f"(python {sys.version.split()[0]}; {ROUNDS} rounds, each the fastest of {LOOPS} loops of {CALLS // LOOPS} calls "
            f"per side, taking turns), median of rounds",
    "figure": f"{added:.0f} ns",
    "value": added,
    "unit": "ns",
    "goal": "≤ 2000 ns",
    "met": added <= 2000,
    "spread": f"{min(added_ns):.0f}–{max(added_ns):.0f} ns over {ROUNDS} rounds",
})
# What it could not send to the closed port is no news here.
warnings.simplefilter("ignore")
reporter.close()
