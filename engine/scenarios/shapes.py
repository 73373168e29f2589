#!/usr/bin/env python3
"""Scenarios of failure shapes that the development set (shared/tuning/dev) does not contain,
for `fusebox tune eval`. They use the shared generator's helpers (`schedule`, the latency
histogram, Poisson and binomial draws) and its file format, with other seeds:

    python3 engine/scenarios/shapes.py ../shared/tuning OUT_DIR [--seed N] [--hours H]

Shapes (six incidents per half, lengths log-uniform as in set v2):
- creeping: latency rises first, then failures creep from 2 % to 60 % over many minutes;
- flapping: during an incident the dependency is down 20 s, up 20 s, over and over;
- retry-storm: a hard outage during which callers retry, tripling the volume;
- partial-shard: one shard of four fails (25 % of calls) for 2 to 15 minutes;
- trickle: 0.5 calls/s with hard outages of 5 to 40 minutes;
- long-outage: hard outages of 10 to 60 minutes (one incident of each length per half).
"""
import argparse
import importlib.util
import json
import os
import random
import sys


def load_generator(shared_dir):
    path = os.path.join(shared_dir, "gen_scenarios.py")
    spec = importlib.util.spec_from_file_location("gen_scenarios", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(g, rng, name, description, seconds, incidents, step):
    """`incidents`: (start, length); `step(t, inside, since)` -> (rate, fail_p, median_ms, sigma),
    where `inside` tells whether t is in an incident and `since` how long it has lasted."""
    steps = []
    for t in range(seconds):
        inside, since = False, 0
        for start, length in incidents:
            if start <= t < start + length:
                inside, since = True, t - start
        rate, fail_p, median, sigma = step(t, inside, since)
        n = g.poisson(rng, rate)
        fails = g.binomial(rng, n, min(1.0, max(0.0, fail_p)))
        steps.append({"t": t * 1000, "calls": n, "failures": fails,
                      "lat": g.lognormal_hist(rng, n, median, sigma), "healthy": not inside})
    header = {"scenario": name, "description": description, "step_ms": 1000,
              "latency_buckets_ms": g.BUCKETS_MS,
              "incidents": [{"start_ms": s * 1000, "end_ms": (s + l) * 1000} for s, l in incidents]}
    return header, steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shared")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=2027)
    ap.add_argument("--hours", type=float, default=12.0)
    a = ap.parse_args()
    g = load_generator(a.shared)
    rng = random.Random(a.seed)
    secs = int(a.hours * 3600)
    os.makedirs(a.out, exist_ok=True)
    sets = []

    def creeping(t, inside, since):
        if not inside:
            return 120, 0.02, 40, 0.5
        # Latency first: it doubles within two minutes; failures follow, creeping up.
        median = 40 * min(8.0, 1 + since / 60)
        fail_p = 0.02 + min(0.58, max(0.0, since - 120) / 1200)
        return 120, fail_p, median, 0.6
    sets.append(build(g, rng, "creeping",
        "120 calls/s; latency rises first, then failures creep from 2 % towards 60 % over "
        "~20 minutes; incidents of 5 to 30 minutes",
        secs, g.schedule(rng, secs, 6, 300, 1800), creeping))

    def flapping(t, inside, since):
        if inside and (since // 20) % 2 == 0:
            return 80, 1.0, 30, 0.5
        return 80, 0.02, 40, 0.5
    sets.append(build(g, rng, "flapping",
        "80 calls/s; during an incident the dependency is down 20 s, up 20 s, again and again, "
        "for 2 to 15 minutes",
        secs, g.schedule(rng, secs, 6, 120, 900), flapping))

    def retry_storm(t, inside, since):
        if inside:
            return 300, 1.0, 30, 0.5
        return 100, 0.02, 40, 0.5
    sets.append(build(g, rng, "retry-storm",
        "100 calls/s; hard outages of 1 to 12 minutes during which callers retry, tripling the volume",
        secs, g.schedule(rng, secs, 6, 60, 720), retry_storm))

    def partial_shard(t, inside, since):
        if inside:
            return 150, 0.02 + 0.25, 45, 0.7
        return 150, 0.02, 40, 0.6
    sets.append(build(g, rng, "partial-shard",
        "150 calls/s, 2 % background failures; one shard of four fails (+25 % of calls) for 2 to 15 minutes",
        secs, g.schedule(rng, secs, 6, 120, 900), partial_shard))

    def trickle(t, inside, since):
        if inside:
            return 0.5, 1.0, 30, 0.5
        return 0.5, 0.03, 60, 0.5
    sets.append(build(g, rng, "trickle",
        "0.5 calls/s with 3 % background failures; hard outages of 5 to 40 minutes",
        secs, g.schedule(rng, secs, 6, 300, 2400, gap_s=900), trickle))

    def long_outage(t, inside, since):
        if inside:
            return 100, 1.0, 30, 0.5
        return 100, 0.02, 40, 0.5
    sets.append(build(g, rng, "long-outage",
        "100 calls/s; hard outages of 10 to 60 minutes",
        secs, g.schedule(rng, secs, 3, 600, 3600, gap_s=900), long_outage))

    for header, steps in sets:
        g.write(os.path.join(a.out, header["scenario"] + ".jsonl"), header, steps)
        print(header["scenario"], len(steps), "steps", len(header["incidents"]), "incidents")


if __name__ == "__main__":
    sys.exit(main())
