#!/usr/bin/env python3
"""Ratio table from the last `cargo bench` run: every `<group>/paystate` against each other
entry of its group, from criterion's results under target/criterion.

    python3 benches/bench_table.py [TARGET_DIR]

Prints Markdown: group, baseline, paystate median, baseline median, ratio (ours / baseline).
Medians, because on a shared machine an occasional descheduled sample drags the mean.
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target") / "criterion"
groups = {}
for bench in sorted(root.glob("**/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())
    groups.setdefault(meta["group_id"], {})[meta["function_id"]] = est["median"]["point_estimate"]


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


print("| group | baseline | paystate | baseline time | ratio |")
print("|---|---|---|---|---|")
for group, fns in groups.items():
    ours = fns.get("paystate")
    if ours is None:
        continue
    for name, base in fns.items():
        if name != "paystate":
            print(f"| {group} | {name} | {fmt(ours)} | {fmt(base)} | {ours / base:.2f}× |")
