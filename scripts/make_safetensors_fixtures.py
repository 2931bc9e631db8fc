#!/usr/bin/env python3
"""Writes the safetensors test fixtures: one valid file and one hand-corrupted file per validation rule.

    python3 scripts/make_safetensors_fixtures.py

Output: Tests/ModelIOTests/Fixtures/safetensors/*.safetensors (a few hundred bytes each) and the fuzzing seeds
Fuzz/seeds/safetensors/. The expected ModelIOError code of each corrupt file is in its name (`<code>-<what>`);
SafetensorsFixtureTests asserts it. The valid file is written here, independently of SafetensorsWriter, so the
reader is checked against a second writer. Needs numpy (for float16); with the `safetensors` package installed
(pip install safetensors) it also writes valid-official.safetensors with the official library.
"""
import json
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "ModelIOTests", "Fixtures", "safetensors")
SEEDS = os.path.join(ROOT, "Fuzz", "seeds", "safetensors")


def pack(header, data=b"", length=None, pad=True):
    """u64 LE header length + JSON header (space-padded to 8 bytes) + data."""
    text = header if isinstance(header, (bytes, str)) else json.dumps(header, separators=(",", ":"))
    raw = text.encode() if isinstance(text, str) else text
    if pad:
        raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def bf16(values):
    """float32 -> bfloat16 bits, round to nearest even (values here are exact in bf16)."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()


def valid():
    f32 = np.array([1.5, -2.25, 3.0, 0.5, 1e-3, -7.0], dtype="<f4").tobytes()        # [2, 3]
    f16 = np.array([0.5, -1.0, 65504.0, 2.0**-24], dtype="<f2").tobytes()             # [4]
    b16 = bf16([1.0, -3.5, 256.0, 0.15625])                                           # [2, 2]
    i64 = np.array([-1, 2**40], dtype="<i8").tobytes()                                # [2]
    data, header, offset = b"", {"__metadata__": {"format": "pt", "note": "bitplan fixture"}}, 0
    for name, dtype, shape, raw in [("model.embed.weight", "F32", [2, 3], f32), ("norm.weight", "F16", [4], f16),
                                    ("lm.bf16", "BF16", [2, 2], b16), ("ids", "I64", [2], i64),
                                    ("empty", "F32", [0, 3], b"")]:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data, offset = data + raw, offset + len(raw)
    return pack(header, data)


def entry(dtype="F32", shape=(2, 2), offsets=(0, 16)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


SIXTEEN = bytes(range(16))
CORRUPT = {
    "truncated-length": b"\x10\x00\x00\x00\x00",
    "truncated-header_past_end": pack({"a": entry()}, SIXTEEN, length=400),
    "headerTooLarge-absurd_length": struct.pack("<Q", 1 << 62) + b'{"a":{}}',
    "headerTooLarge-just_over_limit": struct.pack("<Q", 100_000_001) + b"{}      ",
    "badHeader-bad_json": pack('{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]', SIXTEEN),
    "badHeader-not_object": pack("[1, 2, 3]", SIXTEEN),
    "badHeader-not_utf8": pack(b'{"\xff\xfe": 1}', SIXTEEN),
    "badHeader-shape_not_array": pack({"a": {"dtype": "F32", "shape": "2x2", "data_offsets": [0, 16]}}, SIXTEEN),
    "badHeader-float_dimension": pack({"a": entry(shape=(2.0, 2))}, SIXTEEN),
    "badHeader-bool_dimension": pack('{"a":{"dtype":"F32","shape":[true,4],"data_offsets":[0,16]}}', SIXTEEN),
    "badHeader-three_offsets": pack({"a": entry(offsets=(0, 8, 16))}, SIXTEEN),
    "badHeader-missing_dtype": pack({"a": {"shape": [2, 2], "data_offsets": [0, 16]}}, SIXTEEN),
    "badHeader-metadata_not_strings": pack({"__metadata__": {"n": 1}, "a": entry()}, SIXTEEN),
    "unknownDType-F7": pack({"a": entry(dtype="F7")}, SIXTEEN),
    "badShape-negative": pack({"a": entry(shape=(-2, -2))}, SIXTEEN),
    "badShape-overflow": pack({"a": entry(shape=(1 << 40, 1 << 40))}, SIXTEEN),
    "outOfBounds-offset_past_end": pack({"a": entry(offsets=(384, 400))}, SIXTEEN),
    "outOfBounds-begin_after_end": pack({"a": entry(offsets=(16, 0))}, SIXTEEN),
    "outOfBounds-negative_offset": pack({"a": entry(offsets=(-16, 0))}, SIXTEEN),
    "sizeMismatch-short": pack({"a": entry(offsets=(0, 12))}, SIXTEEN),
    "overlap-shared_bytes": pack({"a": entry(shape=(2,), offsets=(0, 8)), "b": entry(shape=(2,), offsets=(4, 12))},
                                 SIXTEEN),
    "overlap-contained": pack({"a": entry(shape=(4,)), "b": entry(shape=(1,), offsets=(4, 8))}, SIXTEEN),
}


def official():
    """The same kinds of tensors written by the official `safetensors` library, or None when it is missing."""
    try:
        from safetensors.numpy import save
    except ImportError:
        print("safetensors not installed: keeping the committed valid-official.safetensors")
        return None
    tensors = {
        "model.layers.0.mlp.down_proj.weight": (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 4,
        "model.norm.weight": np.array([1.0, 0.5, -0.25], dtype=np.float16),
        "counts": np.array([[1, 2], [3, 4]], dtype=np.int32),
        "flags": np.array([True, False, True]),
        "doubles": np.array([0.1], dtype=np.float64),
    }
    return save(tensors, metadata={"format": "np"})


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    os.makedirs(SEEDS, exist_ok=True)
    files = {"valid-mixed": valid(), **CORRUPT}
    if (raw := official()) is not None:
        files["valid-official"] = raw
    for name, raw in files.items():
        for folder in (FIXTURES, SEEDS):
            with open(os.path.join(folder, name + ".safetensors"), "wb") as f:
                f.write(raw)
    print(f"wrote {len(files)} files to {FIXTURES} and {SEEDS}")


if __name__ == "__main__":
    main()
