#!/usr/bin/env bash
# K-quant golden bytes from ggml itself: builds ggml (as scripts/bench_ggml.sh does) and quantizes seeded rows with
# ggml_quantize_chunk into Tests/QuantizationTests/Fixtures/ggml_kquant.bin.
#   scripts/ggml_quant_golden.sh [GGML_GIT_DIR_OR_URL] [BUILD_DIR]
set -euo pipefail
src=${1:-https://github.com/ggml-org/ggml}
build=${2:-/tmp/ggml-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build"
if [ ! -d "$build/ggml" ]; then git clone --quiet "$src" "$build/ggml"; fi
cmake -S "$build/ggml" -B "$build/out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_BUILD_TESTS=ON \
  -DGGML_BUILD_EXAMPLES=OFF -DGGML_OPENMP=OFF >"$build/cmake.log" 2>&1
cmake --build "$build/out" --target ggml -j 2 >"$build/build.log" 2>&1
cc -O2 -std=c11 -I"$build/ggml/include" "$root/scripts/ggml_quant_golden.c" -L"$build/out/src" -lggml -lggml-base -lm \
  -Wl,-rpath,"$build/out/src" -o "$build/ggml_quant_golden"
"$build/ggml_quant_golden" "$root/Tests/QuantizationTests/Fixtures/ggml_kquant.bin"
echo "ggml $(git -C "$build/ggml" rev-parse --short HEAD): wrote Tests/QuantizationTests/Fixtures/ggml_kquant.bin"
