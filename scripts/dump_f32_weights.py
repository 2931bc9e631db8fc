#!/usr/bin/env python3
"""Dev helper (not used by tests or CI): dequantize a llama GGUF to HF-named F32 tensors.

Writes two files next to each other:
  OUT.f32   all tensors, little-endian float32, concatenated in index order
  OUT.json  {"config": {...}, "tensors": [{"name", "shape", "offset" (in floats)}...]}

Q/K rows are un-permuted from GGUF's interleaved-RoPE order back to HF rotate-half order:
  w.reshape(nh, rows//nh//2, 2, in).swapaxes(1, 2).reshape(rows, in)
with nh = head_count for q and head_count_kv for k (inverse of llama.cpp's convert_hf_to_gguf permute).

Usage: scripts/dump_f32_weights.py MODEL.gguf /root/.cache/bitplan/smollm2-f32
The Engine tests and `bitplan bench engine` read this with a clearly-marked temporary loader until ModelIO's
GGUF reader is merged.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

GGUF_TO_HF = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def hf_name(name: str) -> str:
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    blk, n, kind, suffix = name.split(".")
    assert blk == "blk" and suffix == "weight", name
    return f"model.layers.{n}.{GGUF_TO_HF[kind]}.weight"


def unpermute(w: np.ndarray, nh: int) -> np.ndarray:
    rows, cols = w.shape
    return w.reshape(nh, rows // nh // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    r = GGUFReader(src)
    f = lambda k: r.fields[k].contents()
    heads, kv_heads = f("llama.attention.head_count"), f("llama.attention.head_count_kv")
    config = {
        "hidden": f("llama.embedding_length"), "intermediate": f("llama.feed_forward_length"),
        "layers": f("llama.block_count"), "heads": heads, "kvHeads": kv_heads,
        "headDim": f("llama.rope.dimension_count"), "vocab": f("llama.vocab_size"),
        "rmsEps": f("llama.attention.layer_norm_rms_epsilon"), "ropeTheta": f("llama.rope.freq_base"),
        "tied": not any(t.name == "output.weight" for t in r.tensors),
    }
    index, offset = [], 0
    with open(out + ".f32", "wb") as fh:
        for t in r.tensors:
            w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
            if w.ndim == 2 or t.name.endswith("attn_q.weight") or t.name.endswith("attn_k.weight"):
                w = w.reshape(-1, int(t.shape[0]))
            if t.name.endswith("attn_q.weight"):
                w = unpermute(w, heads)
            elif t.name.endswith("attn_k.weight"):
                w = unpermute(w, kv_heads)
            if w.ndim == 2 and w.shape[0] == 1:
                w = w.reshape(-1)
            w = np.ascontiguousarray(w, dtype="<f4")
            fh.write(w.tobytes())
            index.append({"name": hf_name(t.name), "shape": list(w.shape), "offset": offset})
            offset += w.size
    with open(out + ".json", "w") as fh:
        json.dump({"config": config, "tensors": index}, fh, indent=1)
    print(f"{len(index)} tensors, {offset} floats -> {out}.f32")


if __name__ == "__main__":
    main()
