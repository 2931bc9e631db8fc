#!/usr/bin/env bash
# BitPlan's llama-cpp plans against llama.cpp's presets, both scored by llama.cpp itself (issue 14, point 4).
#
# For each preset (scripts/llamacpp_presets.sh quantizes and scores them; run it first):
#  1. the preset's bytes of quantizable 2-D weights (token_embd + the 7·L linears) become the budget:
#     `bitplan allocate RUN.h5 --target llama-cpp --budget BYTES` (RUN.h5 from `bitplan measure … --target llama-cpp`,
#     which also measures the token embedding);
#  2. `bitplan export PLAN --format llama-cpp` writes the --tensor-type-file recipe and prints the llama-quantize
#     command on stderr; the script runs that command (the same source model as the presets) and checks that every
#     tensor got the planned type;
#  3. `llama-perplexity --kl-divergence` against the same base log-prob file as the presets.
# Prints one TSV line per plan, in the presets' columns (preset, weight_bytes, bpw, kld_mean, kld_se, ppl_q,
# same_top_p, types), the plan named "bitplan@PRESET".
#
# With IMATRIX=1 the run's own activation statistics go to llama-quantize as its importance matrix (`bitplan export
# --imatrix OUT/imatrix.gguf --run RUN.h5`, the tied token embedding included), and the plans are named
# bitplan+imatrix@PRESET.
#
# Usage: scripts/llamacpp_plans.sh RUN.h5 [PRESETS...]   (default: Q4_0 Q3_K_M Q4_K_M Q5_0)
# Env: as scripts/llamacpp_presets.sh; OUT (where plans, recipes and models go: $LLAMACPP_DIR/plans),
#      SCORE (allocate --score; default: allocate's default), IMATRIX (1: use the run's importance matrix)
set -euo pipefail
RUN="${1:?usage: scripts/llamacpp_plans.sh RUN.h5 [PRESETS...]}"; shift
PRESETS=("$@"); [ ${#PRESETS[@]} -gt 0 ] || PRESETS=(Q4_0 Q3_K_M Q4_K_M Q5_0)
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp_common.sh"
OUT="${OUT:-$LLAMACPP_DIR/plans}"
SCORE_ARGS=(); [ -z "${SCORE:-}" ] || SCORE_ARGS=(--score "$SCORE")
mkdir -p "$OUT"
EXPORT_ARGS=(); IMATRIX_ARGS=(); name=bitplan
if [ "${IMATRIX:-}" = 1 ]; then
    EXPORT_ARGS=(--run "$RUN" --imatrix "$OUT/imatrix.gguf"); IMATRIX_ARGS=(--imatrix "$OUT/imatrix.gguf"); name=bitplan+imatrix
fi
echo "# run $RUN"
for p in "${PRESETS[@]}"; do
    preset="$LLAMACPP_DIR/models/$stem.preset-$p.gguf"
    [ -s "$preset" ] || { echo "$preset missing; run scripts/llamacpp_presets.sh $p" >&2; exit 1; }
    read -r budget _ _ < <(weights "$preset")
    plan="$OUT/plan-$p.json"; recipe="$OUT/recipe-$p.txt"; model="$OUT/$stem.bitplan-$p.gguf"
    "$BITPLAN" allocate "$RUN" --target llama-cpp --budget "$budget" "${SCORE_ARGS[@]}" -o "$plan" > "$OUT/allocate-$p.txt"
    "$BITPLAN" export "$plan" --format llama-cpp --model "$BASE_MODEL" -o "$recipe" "${EXPORT_ARGS[@]}" 2> "$OUT/export-$p.txt"
    ftype="$(grep -o 'llama-quantize .*' "$OUT/export-$p.txt" | awk '{print $NF}' | head -1)"
    [ -n "$ftype" ] || { echo "no llama-quantize command in $OUT/export-$p.txt" >&2; exit 1; }
    rm -f "$model"
    nice -n "$NICE" "$BIN/llama-quantize" --allow-requantize "${IMATRIX_ARGS[@]}" --tensor-type-file "$recipe" "$BASE_MODEL" "$model" "$ftype" \
        "$THREADS" > "$LLAMACPP_DIR/logs/quantize-bitplan-$p.log" 2>&1
    if grep -q "required fallback" "$LLAMACPP_DIR/logs/quantize-bitplan-$p.log"; then
        echo "llama-quantize fell back on some tensor of $recipe" >&2; exit 1
    fi
    # every planned layer got its planned type
    "$BITPLAN" inspect "$model" --json | python3 -c '
import json, sys
plan = json.load(open(sys.argv[1]))["layers"]
types = {t["name"].removesuffix(".weight"): t["dtype"].lower() for t in json.load(sys.stdin)["tensors"]}
bad = [(n, l["format"], types.get(n)) for n, l in plan.items() if types.get(n) != l["format"].lower()]
sys.exit(f"planned types not in the file: {bad[:5]}" if bad else 0)' "$plan"
    if [ ${#IMATRIX_ARGS[@]} -gt 0 ] && grep -q "did not find weights" "$LLAMACPP_DIR/logs/quantize-bitplan-$p.log"; then
        echo "llama-quantize found no importance data for some tensor: $(grep -m1 'did not find weights' "$LLAMACPP_DIR/logs/quantize-bitplan-$p.log")" >&2; exit 1
    fi
    score "$name@$p" "$model" "$LLAMACPP_DIR/logs/kld-$name-$p.log"
done
