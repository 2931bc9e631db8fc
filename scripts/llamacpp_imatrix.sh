#!/usr/bin/env bash
# llama.cpp's own importance matrix of the default model, as a llama.cpp user makes one: `llama-imatrix` over the
# calibration text (Pride and Prejudice, 512-token chunks). It records every `blk.*` weight; a tied token
# embedding (SmolLM2 has no output.weight) gets no entry, since llama-imatrix only takes `output.weight` besides
# the blocks. The reference side for scripts/llamacpp_presets.sh with IMATRIX=…; BitPlan's own comes from
# `bitplan export --imatrix FILE --run RUN.h5` (scripts/llamacpp_plans.sh with IMATRIX=1).
#
# Usage: scripts/llamacpp_imatrix.sh [CALIB_TEXT] [CHUNKS]   (default: ../shared/data/prideprejudice.txt, 64)
# Writes $LLAMACPP_DIR/imatrix/<calib stem>-c512-n<CHUNKS>.gguf and prints its path.
# Env: as scripts/llamacpp_common.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALIB="${1:-$ROOT/../shared/data/prideprejudice.txt}"
CHUNKS="${2:-64}"
source "$ROOT/scripts/llamacpp_common.sh" > /dev/null
[ -x "$BIN/llama-imatrix" ] || { echo "$BIN/llama-imatrix missing; run scripts/build_llamacpp.sh" >&2; exit 1; }
mkdir -p "$LLAMACPP_DIR/imatrix"
out="$LLAMACPP_DIR/imatrix/$(basename "$CALIB" .txt)-c512-n$CHUNKS.gguf"
nice -n "$NICE" "$BIN/llama-imatrix" -m "$BASE_MODEL" -f "$CALIB" -c 512 --chunks "$CHUNKS" -t "$THREADS" -o "$out" \
    > "$LLAMACPP_DIR/logs/imatrix-$(basename "$out" .gguf).log" 2>&1
echo "$out"
