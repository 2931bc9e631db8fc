#!/usr/bin/env python3
"""Print a summary of a BitPlan RUN.h5 (Documentation/RunFormat.md) using h5py.

Usage: python3 scripts/read_run.py RUN.h5 [--score NAME] [--layers N]

Optional tooling, not used by CI: `pip install h5py numpy`. It checks the file's shapes against /layers and
/candidates, prints the provenance, per-layer statistics, and the audit's Spearman correlations, so a person can
confirm that files written by `bitplan measure` read correctly outside Swift.
"""
import argparse
import sys

import h5py
import numpy as np


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--score", default="hawq_trace", help="proxy under /proxies to show (default hawq_trace)")
    parser.add_argument("--layers", type=int, default=10, help="layers to list (default 10)")
    args = parser.parse_args()

    with h5py.File(args.path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        if int(attrs.get("format_version", -1)) != 1:
            sys.exit(f"{args.path}: format_version {attrs.get('format_version')} (this script reads 1)")
        if "progress" in f:
            print("note: a partial run (has /progress); rerun `bitplan measure` with the same settings to finish it")
        for key in ["tool_version", "model_sha256", "calib_sha256", "tokens", "hvp_tokens", "probes", "min_probes",
                    "tol", "seed", "hessian_diagonal", "eigen_iterations", "audit", "created"]:
            if key in attrs:
                print(f"{key:17} {text(attrs[key])}")
        names = [text(n) for n in f["layers/name"][()]]
        candidates = [text(n) for n in f["candidates/name"][()]]
        L, C = len(names), len(candidates)
        assert f["layers/shape"].shape == (L, 2), "layers/shape"
        for path in ["error/weight", "error/output", "bytes", "calibration/method"]:
            assert f[path].shape == (L, C), path
        bpw = f["candidates/bits_per_weight"][()]
        print(f"{L} layers, {C} candidates: " + ", ".join(f"{c} ({b:.3f} bpw)" for c, b in zip(candidates, bpw)))
        print("scores: " + ", ".join(sorted(f["proxies"].keys())))

        trace, stderr = f["hessian/trace"][()], f["hessian/trace_stderr"][()]
        probes = f["hessian/probes_used"][()]
        print(f"Hessian trace over all layers: {np.nansum(trace):.6g} "
              f"± {np.sqrt(np.nansum(stderr ** 2)):.3g} ({int(probes.max()) if L else 0} probes)")
        score = f["proxies"][args.score][()] if args.score in f["proxies"] else None
        nbytes = f["bytes"][()]
        print(f"{'layer':44} {'params':>9} {'tr(H)':>11} {'±':>9} {'fisher':>10} {'var':>10} {'kurt':>7}  "
              + (f"{args.score} per candidate" if score is not None else ""))
        params = f["layers/params"][()]
        for i in range(min(L, args.layers)):
            row = (f"{names[i]:44} {params[i]:9d} {trace[i]:11.4g} {stderr[i]:9.3g} "
                   f"{f['fisher/trace'][i]:10.4g} {f['weights/variance'][i]:10.4g} {f['weights/kurtosis'][i]:7.3g}")
            if score is not None:
                row += "  " + " ".join("-" if nbytes[i, c] < 0 else f"{score[i, c]:.3g}" for c in range(C))
            print(row)
        if "audit" in f:
            a = f["audit"]
            print(f"audit: baseline NLL {a.attrs['baseline_nll']:.6f}, "
                  f"{len(a['delta_nll']) if 'delta_nll' in a else 0} single-layer quantizations")
            if "score" in a:
                for s, rn, rk in zip(a["score"][()], a["spearman_nll"][()], a["spearman_kld"][()]):
                    print(f"  Spearman rho {text(s):14} vs dNLL {rn:+.3f}  vs dKLD {rk:+.3f}")


if __name__ == "__main__":
    main()
