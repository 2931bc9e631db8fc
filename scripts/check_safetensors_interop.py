#!/usr/bin/env python3
"""Checks our safetensors fixtures and writer against the official `safetensors` library (pip install safetensors).

    python3 scripts/check_safetensors_interop.py

1. Every corrupt fixture (Tests/ModelIOTests/Fixtures/safetensors/<code>-*.safetensors) is rejected by the
   official library too, and every valid-* file is accepted: the fixtures test real rules, not our own quirks.
2. The files SafetensorsWriter wrote (valid-writer-{F32,F16,BF16}.safetensors, which the Swift test
   `writerMatchesGolden` keeps byte-identical to the writer's output) load in the official library with the
   values the Swift test wrote, rounded to F16 (numpy) and BF16 (round to nearest even) as the writer does.
Exits non-zero with a message on the first disagreement.
"""
import glob
import os
import sys

import numpy as np
from safetensors import SafetensorError, deserialize

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelIOTests", "Fixtures",
                        "safetensors")
# Must match SafetensorsFixtureTests.goldenItems.
GOLDEN = {"a.weight": ([2, 3], [i * 0.25 - 0.5 for i in range(6)]), "b": ([4], [1e-3, -65504.0, 3.14159265, 0.0])}


def bf16_round(values):
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return bits.astype(np.uint32).view(np.float32)


def decode(dtype, raw):
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4")
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


def main():
    failures = 0
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.safetensors"))):
        name = os.path.basename(path)
        try:
            deserialize(open(path, "rb").read())
            accepted = True
        except SafetensorError:
            accepted = False
        if accepted != name.startswith("valid"):
            print(f"FAIL {name}: official library {'accepts' if accepted else 'rejects'} it")
            failures += 1
    for dtype in ["F32", "F16", "BF16"]:
        path = os.path.join(FIXTURES, f"valid-writer-{dtype}.safetensors")
        tensors = dict(deserialize(open(path, "rb").read()))
        for name, (shape, values) in GOLDEN.items():
            info = tensors[name]
            want = {"F32": np.float32(values), "F16": np.float16(values).astype(np.float32),
                    "BF16": bf16_round(values)}[dtype]
            got = decode(info["dtype"], bytes(info["data"]))
            if info["dtype"] != dtype or list(info["shape"]) != shape or not np.array_equal(got, want):
                print(f"FAIL {path}: {name} is {info['dtype']} {info['shape']} {got}, want {dtype} {shape} {want}")
                failures += 1
    print("ok" if failures == 0 else f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
