#!/usr/bin/env python3
"""Sums a LibTorch/PyTorch Chrome trace per operator: self time (inclusive minus the events
nested inside it on the same thread), calls, and share of the step.

Usage: trace_summary.py TRACE.json [--top N]
"""
import json
import sys
from collections import defaultdict


def main():
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    spans = [e for e in events if e.get("ph") == "X" and "dur" in e]
    by_thread = defaultdict(list)
    for e in spans:
        by_thread[e.get("tid")].append(e)
    self_time = defaultdict(float)
    calls = defaultdict(int)
    total = 0.0
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # (end, name, child time)
        for e in evs:
            start, end = e["ts"], e["ts"] + e["dur"]
            while stack and stack[-1][0] <= start:
                done = stack.pop()
                self_time[done[1]] += done[3] - done[2]
            if stack:
                stack[-1][2] += e["dur"]
            else:
                total += e["dur"]
            stack.append([end, e["name"], 0.0, e["dur"]])
            calls[e["name"]] += 1
        while stack:
            done = stack.pop()
            self_time[done[1]] += done[3] - done[2]
    print(f"{'operator':50s} {'self ms':>10s} {'share':>7s} {'calls':>7s}")
    for name, t in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{name[:50]:50s} {t / 1000:10.1f} {100 * t / total:6.1f}% {calls[name]:7d}")
    print(f"{'(all top-level events)':50s} {total / 1000:10.1f}")


if __name__ == "__main__":
    main()
