#!/usr/bin/env python3
"""Solve one budget of a PROBLEM.json with an ILP (PuLP + CBC) and compare with `bitplan allocate --solver exact`.

The multiple-choice knapsack as a 0/1 program:
    minimise   sum_{l,c} error[l,c] * x[l,c]
    subject to sum_c x[l,c] = 1                        for every layer l
               sum_{l,c} bytes[l,c] * x[l,c] <= budget
               x[a,f] = x[b,f]                           for every tie group {a, b, ...} and shared format f
               x[l,c] = 0                                for formats a tied layer's partners lack
CBC runs with a relative gap of 0, so its answer is a proven optimum (or the status says otherwise).

Usage (from the repository root, after `swift build -c release`):
    .build/release/bitplan bench solver --write-problem /tmp/problem-210x10.json
    python3 scripts/ilp_compare.py /tmp/problem-210x10.json --bpw 4.5 [--bitplan .build/release/bitplan]

Needs `pip install pulp` (brings the CBC binary). Not used by the tests.
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile
import time

import pulp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("problem")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget-bytes", type=int)
    budget.add_argument("--bpw", type=float)
    parser.add_argument("--bitplan", default=".build/release/bitplan", help="bitplan binary to compare with")
    parser.add_argument("--time-limit", type=float, default=300)
    args = parser.parse_args()

    with open(args.problem) as f:
        problem = json.load(f)
    layers = problem["layers"]
    params = sum(layer["params"] for layer in layers)
    budget_bytes = args.budget_bytes if args.budget_bytes is not None else math.floor(args.bpw * params / 8)

    start = time.perf_counter()
    model = pulp.LpProblem("allocation", pulp.LpMinimize)
    x = {}
    for i, layer in enumerate(layers):
        for j, c in enumerate(layer["candidates"]):
            x[i, j] = pulp.LpVariable(f"x_{i}_{j}", cat="Binary")
        model += pulp.lpSum(x[i, j] for j in range(len(layer["candidates"]))) == 1
    model += pulp.lpSum(c["error"] * x[i, j] for i, layer in enumerate(layers) for j, c in enumerate(layer["candidates"]))
    model += pulp.lpSum(c["bytes"] * x[i, j] for i, layer in enumerate(layers) for j, c in enumerate(layer["candidates"])) <= budget_bytes
    index = {layer["name"]: i for i, layer in enumerate(layers)}
    for group in problem.get("ties") or []:
        members = [index[name] for name in group]
        formats = [{c["format"]: j for j, c in enumerate(layers[m]["candidates"])} for m in members]
        shared = set.intersection(*(set(f) for f in formats))
        for m, f in zip(members, formats):
            for name, j in f.items():
                if name not in shared:
                    model += x[m, j] == 0
        for name in shared:
            for m, f in zip(members[1:], formats[1:]):
                model += x[members[0], formats[0][name]] == x[m, f[name]]
    built = time.perf_counter()
    status = model.solve(pulp.PULP_CBC_CMD(msg=False, gapRel=0, timeLimit=args.time_limit))
    solved = time.perf_counter()
    chosen_bytes = sum(c["bytes"] for i, layer in enumerate(layers) for j, c in enumerate(layer["candidates"]) if x[i, j].value() > 0.5)
    ilp_loss = sum(c["error"] for i, layer in enumerate(layers) for j, c in enumerate(layer["candidates"]) if x[i, j].value() > 0.5)
    print(f"instance   {len(layers)} layers, {sum(len(l['candidates']) for l in layers)} candidates, budget {budget_bytes} bytes")
    print(f"CBC        status {pulp.LpStatus[status]}, predicted loss {ilp_loss:.12g}, {chosen_bytes} bytes, "
          f"model build {built - start:.3f} s, solve {solved - built:.3f} s (PuLP {pulp.__version__})")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = subprocess.run(
            [args.bitplan, "allocate", args.problem, "--budget", str(budget_bytes), "-o", f"{tmp}/plan.json", "--json"],
            check=True, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    summary = json.loads(out.stdout)
    print(f"bitplan    exact, predicted loss {summary['predicted_loss_delta']:.12g}, {summary['total_bytes']} bytes, "
          f"{elapsed:.3f} s for the whole command (whole frontier: {summary['frontier_points']} points)")
    difference = ilp_loss - summary["predicted_loss_delta"]
    print(f"difference CBC − bitplan = {difference:.3g} (relative {difference / max(abs(ilp_loss), 1e-300):.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
