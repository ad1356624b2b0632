#!/usr/bin/env python3
"""Tables of benches/peers.sh's results: summarize.py OUT_DIR (reads OUT_DIR/results.tsv and the
per-run OUT_DIR/<latency>ms-<tool>-<run>.calls.json). Prints Markdown on stdout.

Run 0 of every tool is a warm-up and is left out. A run counts only when the tool exited 0 and the
check found nothing left of its scope and no bystander touched; the others are listed as failed
and are in no median.
"""

import csv
import json
import os
import statistics
import sys

TOOLS = {
    "teardown": ("teardown (debug build), workshop plan", "whole workshop"),
    "awscli": ("(a) AWS CLI, cleanup.sh", "whole workshop"),
    "teardown-subset": ("teardown, plan without cluster + repository", "without cluster, repository"),
    "custodian": ("(b) Cloud Custodian, custodian.yml", "without cluster, repository"),
    "custodian+cli": ("(b) Custodian + 2 AWS CLI commands", "whole workshop"),
}
PAIRS = [
    ("(a) AWS CLI script vs teardown", "awscli", "teardown", 10.0),
    ("(b) Cloud Custodian vs teardown, what Custodian can do", "custodian", "teardown-subset", 2.0),
    ("(b) Custodian + 2 CLI commands vs teardown, whole workshop", "custodian+cli", "teardown", 2.0),
]


def is_read(op):
    name = op.split(":", 1)[-1]
    return name.startswith(("Describe", "List", "Get"))


def chain_depth(calls):
    """The longest chain of calls each of which arrived after the one before it was answered: how
    many round trips deep the tool's work was (at a fixed added latency, its wall time is about this
    many latencies). `calls`: [ms since reset at arrival, ms until answered, op, status]."""
    spans = sorted(((c[0], c[0] + c[1]) for c in calls), key=lambda s: s[1])
    depth = []
    for i, (start, _) in enumerate(spans):
        before = [depth[j] for j in range(i) if spans[j][1] <= start]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "results.tsv")) as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["run"] != "0"]
    latencies = sorted({int(float(r["latency_ms"])) for r in rows})
    tools = [t for t in TOOLS if any(r["tool"] == t for r in rows)]

    def runs(latency, tool):
        return [
            r for r in rows if int(float(r["latency_ms"])) == latency and r["tool"] == tool
        ]

    def ok(r):
        return r["exit"] == "0" and r["check"] == "0"

    def calls_json(r):
        with open(os.path.join(out, f"{r['latency_ms']}ms-{r['tool']}-{r['run']}.calls.json")) as f:
            return json.load(f)

    stats = {}
    failed = []
    for latency in latencies:
        for tool in tools:
            rs = runs(latency, tool)
            good = [r for r in rs if ok(r)]
            failed += [r for r in rs if not ok(r)]
            if not good:
                stats[latency, tool] = None
                continue
            secs = [float(r["seconds"]) for r in good]
            cpus = [float(r["cpu_seconds"]) for r in good]
            calls = [int(r["calls"]) for r in good]
            writes = [
                sum(n for op, n in calls_json(r)["by_operation"].items() if not is_read(op))
                for r in good
            ]
            depths = [chain_depth(calls_json(r)["calls"]) for r in good]
            stats[latency, tool] = {
                "n": len(good),
                "of": len(rs),
                "median": statistics.median(secs),
                "min": min(secs),
                "max": max(secs),
                "cpu": statistics.median(cpus),
                "calls": statistics.median(calls),
                "calls_range": (min(calls), max(calls)),
                "writes": statistics.median(writes),
                "depth": statistics.median(depths),
                "notes": sum(1 for r in good if r["notes"] not in ("", "0")),
            }

    def fmt_calls(s):
        lo, hi = s["calls_range"]
        c = f"{s['calls']:g}" + ("" if lo == hi else f" ({lo}–{hi})")
        return c

    print("### Wall time and calls per tool\n")
    print("| added latency | tool | scope | good runs | wall, median | fastest – slowest | CPU, median | calls | of which change something | calls deep |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for latency in latencies:
        for tool in tools:
            s = stats[latency, tool]
            name, scope = TOOLS[tool]
            if s is None:
                print(f"| {latency} ms | {name} | {scope} | 0 of {len(runs(latency, tool))} | failed | | | | | |")
                continue
            print(
                f"| {latency} ms | {name} | {scope} | {s['n']} of {s['of']} | **{s['median']:.2f} s** "
                f"| {s['min']:.2f} – {s['max']:.2f} s | {s['cpu']:.2f} s | {fmt_calls(s)} | {s['writes']:g} "
                f"| {s['depth']:g} |"
            )

    print("\n### Ratios (peer's median / teardown's median) and targets\n")
    print("| added latency | pair | teardown | peer | wall ratio | target | met | CPU ratio | calls: teardown / peer | fewer calls |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for latency in latencies:
        for label, peer, ours, target in PAIRS:
            a, b = stats.get((latency, ours)), stats.get((latency, peer))
            if a is None or b is None:
                print(f"| {latency} ms | {label} | | | no successful runs to compare | ≥ {target:g}x | unknown | | | |")
                continue
            ratio = b["median"] / a["median"]
            print(
                f"| {latency} ms | {label} | {a['median']:.2f} s | {b['median']:.2f} s | **{ratio:.1f}x** "
                f"| ≥ {target:g}x | {'yes' if ratio >= target else '**no**'} | {b['cpu'] / a['cpu']:.1f}x "
                f"| {a['calls']:g} / {b['calls']:g} | {'yes' if a['calls'] < b['calls'] else '**no**'} |"
            )

    # Calls by operation, from the first good run at the lowest latency of each tool.
    latency = latencies[0]
    by_tool = {}
    for tool in tools:
        good = [r for r in runs(latency, tool) if ok(r)]
        if good:
            by_tool[tool] = calls_json(good[0])["by_operation"]
    if by_tool:
        ops = sorted({op for d in by_tool.values() for op in d}, key=lambda o: (is_read(o), o))
        print(f"\n### Calls by operation (one run of each, {latency} ms)\n")
        print("| operation | " + " | ".join(TOOLS[t][0] for t in by_tool) + " |")
        print("|---|" + "---|" * len(by_tool))
        for op in ops:
            print(f"| {op} | " + " | ".join(str(by_tool[t].get(op, "")) for t in by_tool) + " |")
        print("| **total** | " + " | ".join(f"**{sum(d.values())}**" for d in by_tool.values()) + " |")

    if failed:
        print("\n### Failed runs (not timed)\n")
        for r in failed:
            check = os.path.join(out, f"{r['latency_ms']}ms-{r['tool']}-{r['run']}.check.txt")
            with open(check) as f:
                what = "; ".join(line.strip() for line in f if line.strip())
            print(f"- {r['latency_ms']} ms, {r['tool']}, run {r['run']}: exit {r['exit']}, check {r['check']}: {what or '-'}")
    notes = [(k, s["notes"]) for k, s in stats.items() if s and s["notes"]]
    if notes:
        print("\n### Notes from the checks\n")
        for (latency, tool), n in notes:
            print(f"- {latency} ms, {tool}: {n} good run(s) left the secret scheduled for deletion "
                  "with its rotation still configured (Custodian has no action that cancels rotation)")


if __name__ == "__main__":
    main()
