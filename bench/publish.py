"""Publish latency: our durable publish of a task message vs a raw redis LPUSH round trip.

Usage: .venv/bin/python bench/publish.py [--n 3000]
Both go to the same Redis server, one after the other in this run. Target: p50 ratio <= 4x.
"""

import argparse
import statistics
import time

from _common import report, setup_django


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    setup_django()
    from core.enqueue import publish_now_rollback_unsafe
    from core.redis import client

    r = client()
    r.delete("bench-lpush", "default")
    for _ in range(200):  # warm both paths (connections, pools)
        r.lpush("bench-lpush", b"x" * 600)
        publish_now_rollback_unsafe("core.ping")
    raw, ours = [], []
    body = b"x" * 600  # about the size of one of our task messages
    for i in range(args.n):
        t = time.perf_counter()
        r.lpush("bench-lpush", body)
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        publish_now_rollback_unsafe("core.ping")
        ours.append(time.perf_counter() - t)
        if i % 500 == 0:
            r.delete("bench-lpush", "default")
    r.delete("bench-lpush", "default")
    us = 1e6
    print(f"raw LPUSH  p50 {percentile(raw, 0.5) * us:.0f} us  p99 {percentile(raw, 0.99) * us:.0f} us")
    print(
        f"our publish p50 {percentile(ours, 0.5) * us:.0f} us  p99 {percentile(ours, 0.99) * us:.0f} us"
        f"  mean {statistics.mean(ours) * us:.0f} us"
    )
    report(
        "publish latency p50 vs redis LPUSH",
        ours=percentile(ours, 0.5) * us,
        baseline=percentile(raw, 0.5) * us,
        unit="us",
        target="<= 4",
        higher_is_better=False,
    )


if __name__ == "__main__":
    main()
