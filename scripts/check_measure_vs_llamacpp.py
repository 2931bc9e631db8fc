#!/usr/bin/env python3
"""Does `bitplan measure` measure the tensors llama.cpp writes? For every layer of a plan, the weight error
‖Q(W) − W‖² that RUN.h5 recorded for the planned format (/error/weight) against the same quantity computed from
the GGUF llama-quantize wrote for that plan: dequantize the output tensor and the source tensor with gguf-py and sum
the squared differences in float64 (the sum is the same in the GGUF's RoPE-permuted row order).

With `measure --quantizer imatrix` and `llama-quantize --imatrix` given the file `bitplan export --imatrix` wrote
from that run (scripts/llamacpp_plans.sh with IMATRIX=1), every layer should agree to the last bit; with the default
quantizer and no imatrix, likewise.

Usage: PYTHONPATH=<llama.cpp>/gguf-py python3 scripts/check_measure_vs_llamacpp.py RUN.h5 PLAN.json SOURCE.gguf OUT.gguf
Needs numpy, h5py and gguf-py. Exits 1 when a layer differs by more than 1e-9 relative.
"""
import json
import sys

import h5py
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

BLOCK = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
         "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}


def gguf_name(hf):
    if hf == "model.embed_tokens":
        return "token_embd.weight"
    if hf == "lm_head":
        return "output.weight"
    parts = hf.split(".")
    return f"blk.{parts[2]}.{BLOCK[parts[-1]]}.weight"


def main():
    run, plan, source, output = sys.argv[1:5]
    with h5py.File(run) as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["layers/name"][:]]
        candidates = [n.decode() if isinstance(n, bytes) else n for n in f["candidates/name"][:]]
        error = f["error/weight"][:]
    layers = json.load(open(plan))["layers"]
    src = {t.name: t for t in GGUFReader(source).tensors}
    out = {t.name: t for t in GGUFReader(output).tensors}
    worst, bad = 0.0, 0
    for hf, layer in sorted(layers.items()):
        g = gguf_name(hf)
        a = np.asarray(dequantize(src[g].data, src[g].tensor_type), dtype=np.float64)
        b = np.asarray(dequantize(out[g].data, out[g].tensor_type), dtype=np.float64)
        ours = error[names.index(hf), candidates.index(layer["format"])]
        theirs = float(((b - a) ** 2).sum())
        rel = abs(theirs - ours) / max(theirs, 1e-300)
        worst = max(worst, rel)
        if rel > 1e-9:
            bad += 1
            print(f"differs: {hf} {layer['format']}: measured {ours:.9g}, llama.cpp's file {theirs:.9g}")
    print(f"{len(layers)} layers: {bad} differ; worst relative difference {worst:.2e}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
