#!/usr/bin/env python3
"""Optional PyTorch CPU reference for `bitplan bench engine` (not used by tests or CI).

Times the same three steps on the same model and window, fp32, with a fixed number of threads (default 2):
  forward           mean next-token NLL of the window (no grad)
  forward+backward  loss.backward() into every parameter (embedding/LM head, norms, linear weights)
  HVP               one exact Hessian-vector product over the 210 linear weights (double backward,
                    create_graph=True), Rademacher probe
plus torch's fp32 GEMM GFLOP/s for a 512x576 @ 576x1536 product.

Self-contained: loads the GGUF with gguf-py (dequantize + Q/K un-permute to HF rotate-half order) into a
hand-built llama. Attention uses SDPA (is_causal) for the first two steps and the explicit softmax form for the HVP
(SDPA's CPU flash kernel has no double backward).

Usage (venv with the torch CPU wheel and gguf):
  /root/.cache/bitplan/venv-torch/bin/python scripts/bench_torch.py MODEL.gguf --ids ../shared/data/pp-window-ids.txt
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGUFReader
from gguf.quants import dequantize

NAMES = {"attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o", "ffn_gate": "gate", "ffn_up": "up",
         "ffn_down": "down", "attn_norm": "norm1", "ffn_norm": "norm2"}


def load(path):
    r = GGUFReader(path)
    f = lambda k: r.fields[k].contents()
    cfg = dict(heads=f("llama.attention.head_count"), kv=f("llama.attention.head_count_kv"),
               layers=f("llama.block_count"), eps=f("llama.attention.layer_norm_rms_epsilon"),
               theta=f("llama.rope.freq_base"), head_dim=f("llama.rope.dimension_count"))
    w = {}
    for t in r.tensors:
        a = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1, int(t.shape[0]))
        if t.name.endswith("attn_q.weight") or t.name.endswith("attn_k.weight"):
            nh = cfg["heads"] if "attn_q" in t.name else cfg["kv"]
            rows, cols = a.shape
            a = a.reshape(nh, rows // nh // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)
        if a.shape[0] == 1:
            a = a.reshape(-1)
        w[t.name] = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(a)))
    return cfg, w


def loss_fn(cfg, w, ids, math_attention):
    T = ids.shape[0]
    H, G, D = cfg["heads"], cfg["kv"], cfg["head_dim"]
    inv = 1.0 / (cfg["theta"] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = torch.cat((ang.cos(), ang.cos()), -1), torch.cat((ang.sin(), ang.sin()), -1)

    def rms(x, g):
        return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["eps"]))

    def rope(x):  # [heads, T, D]
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return x * cos + torch.cat((-x2, x1), -1) * sin

    x = w["token_embd.weight"][ids]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["layers"]):
        p = lambda n: w[f"blk.{l}.{n}.weight"]
        n1 = rms(x, p("attn_norm"))
        q = rope((n1 @ p("attn_q").T).view(T, H, D).transpose(0, 1))
        k = rope((n1 @ p("attn_k").T).view(T, G, D).transpose(0, 1)).repeat_interleave(H // G, 0)
        v = (n1 @ p("attn_v").T).view(T, G, D).transpose(0, 1).repeat_interleave(H // G, 0)
        if math_attention:
            o = torch.softmax(q @ k.transpose(1, 2) / D ** 0.5 + mask, -1) @ v
        else:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + o.transpose(0, 1).reshape(T, H * D) @ p("attn_output").T
        n2 = rms(x, p("ffn_norm"))
        x = x + (F.silu(n2 @ p("ffn_gate").T) * (n2 @ p("ffn_up").T)) @ p("ffn_down").T
    head = w.get("output.weight", w["token_embd.weight"])
    logits = rms(x[:-1], w["output_norm.weight"]) @ head.T
    return F.cross_entropy(logits, ids[1:])


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ids", default="../shared/data/pp-window-ids.txt")
    ap.add_argument("--tokens", type=int, nargs="+", default=[512, 128])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a, b = torch.rand(512, 576), torch.rand(576, 1536)
    gemm = 2 * 512 * 576 * 1536 / best(lambda: a @ b, 6) / 1e9
    cfg, w = load(args.model)
    all_ids = [int(s) for s in open(args.ids) if s.strip() and not s.startswith("#")]
    linear = [t for n, t in w.items() if t.dim() == 2 and n.startswith("blk.")]
    rows = []
    for T in args.tokens:
        ids = torch.tensor(all_ids[:T])
        with torch.no_grad():
            nll = loss_fn(cfg, w, ids, False).item()
            fwd = best(lambda: loss_fn(cfg, w, ids, False), args.repeats)

        def fwd_bwd():
            for p in w.values():
                p.grad = None
            loss_fn(cfg, w, ids, False).backward()

        bwd = best(fwd_bwd, args.repeats)
        gen = torch.Generator().manual_seed(1)
        probe = [torch.randint(0, 2, p.shape, generator=gen).float() * 2 - 1 for p in linear]

        def hvp():
            g = torch.autograd.grad(loss_fn(cfg, w, ids, True), linear, create_graph=True)
            torch.autograd.grad(g, linear, grad_outputs=probe)

        h = best(hvp, args.repeats)
        rows.append(dict(tokens=T, mean_nll=nll, forward_s=fwd, forward_backward_s=bwd, hvp_s=h,
                         forward_tok_s=T / fwd, forward_backward_tok_s=T / bwd, hvp_tok_s=T / h))
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.json:
        print(json.dumps(dict(torch=torch.__version__, threads=args.threads, gemm_512x1536x576_gflops=gemm,
                              peak_rss_bytes=rss, windows=rows), indent=1))
        return
    print(f"torch {torch.__version__}, {args.threads} threads: matmul 512x576x1536 {gemm:.1f} GFLOP/s")
    for r in rows:
        print(f"T={r['tokens']}: mean NLL {r['mean_nll']:.5f}  forward {r['forward_tok_s']:.1f} tok/s ({r['forward_s']:.3f} s)"
              f"  fwd+bwd {r['forward_backward_tok_s']:.1f} tok/s ({r['forward_backward_s']:.3f} s)"
              f"  HVP {r['hvp_tok_s']:.1f} tok/s ({r['hvp_s']:.3f} s)")
    print(f"peak RSS {rss / 1048576:.1f} MiB")


if __name__ == "__main__":
    main()
