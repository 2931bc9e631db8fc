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
# With IMATRIX=FILE, each preset is quantized with that importance matrix (`llama-quantize --imatrix`; from
# scripts/llamacpp_imatrix.sh, or `bitplan export --imatrix`) and named PRESET+imatrix-<file stem>.
#
# Usage: scripts/llamacpp_presets.sh [PRESETS...]   (default: Q4_0 Q3_K_M Q4_K_M Q5_0)
# Env: LLAMACPP_DIR (~/.cache/bitplan/llamacpp), BASE_MODEL, KLD_FILE (the base log-prob file), THREADS (2), NICE (10),
#      BITPLAN (.build/release/bitplan), IMATRIX; see scripts/llamacpp_common.sh
set -euo pipefail
PRESETS=("$@"); [ ${#PRESETS[@]} -gt 0 ] || PRESETS=(Q4_0 Q3_K_M Q4_K_M Q5_0)
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp_common.sh"
IMATRIX_ARGS=(); tag=""
if [ -n "${IMATRIX:-}" ]; then
    [ -s "$IMATRIX" ] || { echo "IMATRIX=$IMATRIX: no such file" >&2; exit 1; }
    IMATRIX_ARGS=(--imatrix "$IMATRIX"); tag="+imatrix-$(basename "$IMATRIX" .gguf)"
fi
for p in "${PRESETS[@]}"; do
    out="$LLAMACPP_DIR/models/$stem.preset-$p$tag.gguf"
    [ -s "$out" ] || nice -n "$NICE" "$BIN/llama-quantize" --allow-requantize "${IMATRIX_ARGS[@]}" "$BASE_MODEL" "$out" \
        "$p" "$THREADS" > "$LLAMACPP_DIR/logs/quantize-preset-$p$tag.log" 2>&1
    score "$p$tag" "$out" "$LLAMACPP_DIR/logs/kld-preset-$p$tag.log"
done
