#!/usr/bin/env python3
"""Tiny GGUF fixtures for BitPlan's reader tests and fuzz seeds: Tests/ModelIOTests/Fixtures/gguf/ and Fuzz/seeds/gguf/.

  valid_ggufpy.gguf (+ .golden.txt)  written by gguf-py's own GGUFWriter (an independent writer): every metadata
                                     type, nested arrays, F32/F16/Q8_0/Q4_0 tensors; the .golden.txt holds gguf-py's
                                     dequantized values in the format of scripts/gguf_golden.py.
  valid_v2.gguf, valid_align64.gguf  hand-packed GGUF v2 file, and a v3 file with general.alignment = 64.
  <rule>.gguf                        one hand-corrupted file per validation rule; the Swift test asserts the exact
                                     ModelIOError.Code named in CORRUPT below.

Deterministic: re-running rewrites identical bytes. Usage: python3 scripts/make_gguf_fixtures.py
"""
import hashlib
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ModelIOTests", "Fixtures", "gguf")
SEEDS = os.path.join(ROOT, "Fuzz", "seeds", "gguf")

# value types (gguf.h)
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def tinfo(name, dims, ggml_type, offset, n_dims=None):
    out = s(name) + struct.pack("<I", len(dims) if n_dims is None else n_dims)
    out += b"".join(struct.pack("<q", d) for d in dims)
    return out + struct.pack("<IQ", ggml_type, offset)


def pack(kvs, infos, data, version=3, alignment=32, n_tensors=None, n_kv=None, magic=b"GGUF"):
    """Header with the given raw kv and tensor-info blobs, padded to `alignment`, then `data`."""
    head = magic + struct.pack("<IQQ", version, len(infos) if n_tensors is None else n_tensors,
                               len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(infos)
    head += b"\0" * (-len(head) % alignment)
    return head + data


def base_parts():
    """A small valid file: two metadata entries, an F32 [2, 3] tensor and a Q8_0 [1, 32] tensor."""
    kvs = [kv("general.architecture", STR, s("test")), kv("test.count", U32, struct.pack("<I", 7))]
    f32 = np.arange(6, dtype="<f4").tobytes()
    q8 = quantize(np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 32), T.Q8_0).tobytes()
    infos = [tinfo("a.weight", [3, 2], T.F32, 0), tinfo("b.weight", [32, 1], T.Q8_0, 32)]
    data = f32 + b"\0" * (32 - len(f32)) + q8 + b"\0" * (-len(q8) % 32)
    return kvs, infos, data


def corrupt_files():
    kvs, infos, data = base_parts()
    valid = pack(kvs, infos, data)
    out = {
        # rule: (bytes, expected Swift ModelIOError.Code)
        "truncated_header": (valid[:20], "truncated"),  # cut inside the kv count
        "bad_magic": (pack(kvs, infos, data, magic=b"GGUX"), "badMagic"),
        "version1": (pack(kvs, infos, data, version=1), "unsupportedVersion"),
        "version4": (pack(kvs, infos, data, version=4), "unsupportedVersion"),
        "absurd_tensor_count": (pack(kvs, infos, data, n_tensors=1 << 40), "absurdCount"),
        "absurd_kv_count": (pack(kvs, infos, data, n_kv=(1 << 62) + 5), "absurdCount"),
        "absurd_string_length": (pack([kvs[0][:0] + struct.pack("<Q", 1 << 60) + b"general.x"] + kvs[1:], infos, data),
                                 "headerTooLarge"),
        "absurd_array_count": (pack([kv("a.list", ARR, struct.pack("<IQ", U32, 1 << 40))] + kvs, infos, data),
                               "absurdCount"),
        "bad_value_type": (pack([kv("a.x", 13, b"\0" * 8)] + kvs, infos, data), "badHeader"),
        "bad_utf8_key": (pack([kv(b"a.\xff\xfe", U8, b"\1")] + kvs, infos, data), "badHeader"),
        "bad_bool": (pack([kv("a.flag", BOOL, b"\x02")] + kvs, infos, data), "badHeader"),
        "bad_alignment": (pack([kv("general.alignment", U32, struct.pack("<I", 24))] + kvs, infos, data), "badHeader"),
        "duplicate_key": (pack(kvs + [kvs[1]], infos, data), "duplicate"),
        "duplicate_tensor": (pack(kvs, [infos[0], tinfo("a.weight", [32, 1], T.Q8_0, 32)], data), "duplicate"),
        "unknown_dtype": (pack(kvs, [infos[0], tinfo("b.weight", [32, 1], 4, 32)], data), "unknownDType"),
        "unknown_dtype_99": (pack(kvs, [infos[0], tinfo("b.weight", [32, 1], 99, 32)], data), "unknownDType"),
        "zero_dimension": (pack(kvs, [tinfo("a.weight", [3, 0], T.F32, 0), infos[1]], data), "badShape"),
        "too_many_dimensions": (pack(kvs, [tinfo("a.weight", [3, 2, 1, 1, 1], T.F32, 0), infos[1]], data), "badShape"),
        "element_count_overflow": (pack(kvs, [tinfo("a.weight", [1 << 32, 1 << 32], T.F32, 0), infos[1]], data),
                                   "badShape"),
        "row_not_whole_blocks": (pack(kvs, [infos[0], tinfo("b.weight", [30, 1], T.Q8_0, 32)], data), "sizeMismatch"),
        "misaligned_offset": (pack(kvs, [infos[0], tinfo("b.weight", [32, 1], T.Q8_0, 40)], data), "misaligned"),
        "offset_past_end": (pack(kvs, [infos[0], tinfo("b.weight", [32, 1], T.Q8_0, 1 << 20)], data), "outOfBounds"),
        "offset_overflow": (pack(kvs, [infos[0], tinfo("b.weight", [32, 1], T.Q8_0, (1 << 63) - 32)], data),
                            "outOfBounds"),
        "truncated_data": (valid[:-40], "outOfBounds"),
        "overlap": (pack(kvs, [infos[0], tinfo("b.weight", [2, 1], T.F32, 0)], data), "overlap"),
        "long_tensor_name": (pack(kvs, [infos[0], tinfo("b" * 64, [32, 1], T.Q8_0, 32)], data), "badHeader"),
        "nested_too_deep": (pack([kv("a.deep", ARR, struct.pack("<IQ", ARR, 1) + struct.pack("<IQ", ARR, 1) * 8
                                     + struct.pack("<IQ", U8, 1) + b"\1")] + kvs, infos, data), "badHeader"),
    }
    return valid, out


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def ggufpy_file():
    """A file written by gguf-py's GGUFWriter, and gguf-py's dequantized values of its tensors."""
    path = os.path.join(OUT, "valid_ggufpy.gguf")
    w = gguf.GGUFWriter(path, "test")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5)
    w.add_uint64("t.u64", (1 << 40) + 3)
    w.add_int64("t.i64", -(1 << 40))
    w.add_float64("t.f64", 0.1)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo ✓")
    w.add_array("t.ints", [1, -2, 3])
    w.add_array("t.strs", ["a", "bc", ""])
    w.add_array("t.floats", [0.5, -1.25])
    w.add_array("t.nested", [[1, 2], [3]])
    rng = np.random.default_rng(7)
    tensors = {
        "f32.weight": (rng.standard_normal((2, 3)).astype(np.float32), None),
        "f16.weight": (rng.standard_normal((4,)).astype(np.float16), None),
        "q8_0.weight": (quantize(rng.standard_normal((3, 64)).astype(np.float32), T.Q8_0), T.Q8_0),
        "q4_0.weight": (quantize(rng.standard_normal((2, 32)).astype(np.float32), T.Q4_0), T.Q4_0),
    }
    for name, (arr, qtype) in tensors.items():
        w.add_tensor(name, arr, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    lines = ["bitplan-gguf-golden 1", "# written by scripts/make_gguf_fixtures.py; do not edit", "kind model",
             "model valid_ggufpy.gguf", f"tensors {len(tensors)}"]
    for name, (arr, qtype) in tensors.items():
        qtype = qtype or (T.F32 if arr.dtype == np.float32 else T.F16)
        values = np.ascontiguousarray(dequantize(arr, qtype), dtype="<f4")
        first = " ".join(f"{v:08x}" for v in values.ravel()[:64].view("<u4"))
        shape = ",".join(str(d) for d in values.shape)
        lines.append(f"tensor {name} {qtype.name} {shape} {hashlib.sha256(values.tobytes()).hexdigest()} {first}")
    with open(path + ".golden.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def tiny_llama_seed():
    """A 1-block llama file (d 8, 2 heads / 1 KV head) for the fuzzer: llamaConfig, names and Q/K un-permuting."""
    path = os.path.join(SEEDS, "tiny_llama.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_context_length(16)
    w.add_embedding_length(8)
    w.add_feed_forward_length(8)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(4)
    rng = np.random.default_rng(11)
    shapes = {"token_embd.weight": (4, 8), "blk.0.attn_norm.weight": (8,), "blk.0.attn_q.weight": (8, 8),
              "blk.0.attn_k.weight": (4, 8), "blk.0.attn_v.weight": (4, 8), "blk.0.attn_output.weight": (8, 8),
              "blk.0.ffn_norm.weight": (8,), "output_norm.weight": (8,)}
    for name, shape in shapes.items():
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float16 if len(shape) == 2 else np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(SEEDS, exist_ok=True)
    valid, corrupt = corrupt_files()
    kvs, infos, data = base_parts()
    write(os.path.join(OUT, "valid_v3.gguf"), valid)
    write(os.path.join(OUT, "valid_v2.gguf"), pack(kvs, infos, data, version=2))
    a64_infos = [tinfo("a.weight", [3, 2], T.F32, 0), tinfo("b.weight", [32, 1], T.Q8_0, 64)]
    a64_data = data[:24] + b"\0" * 40 + data[32:32 + 34] + b"\0" * 30
    write(os.path.join(OUT, "valid_align64.gguf"),
          pack([kv("general.alignment", U32, struct.pack("<I", 64))] + kvs, a64_infos, a64_data, alignment=64))
    with open(os.path.join(OUT, "corrupt_expectations.txt"), "w") as f:
        f.write("# file code (ModelIOError.Code), written by scripts/make_gguf_fixtures.py\n")
        for rule, (blob, code) in corrupt.items():
            write(os.path.join(OUT, f"{rule}.gguf"), blob)
            f.write(f"{rule}.gguf {code}\n")
    py = ggufpy_file()
    for name in ["valid_v3.gguf", "valid_v2.gguf", "valid_align64.gguf"]:
        write(os.path.join(SEEDS, name), open(os.path.join(OUT, name), "rb").read())
    write(os.path.join(SEEDS, "valid_ggufpy.gguf"), open(py, "rb").read())
    tiny_llama_seed()
    print(f"wrote {len(corrupt) + 4} fixtures to {OUT} and 5 seeds to {SEEDS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
