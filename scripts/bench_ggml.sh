#!/usr/bin/env bash
# Build ggml's tests/test-quantize-perf (Release, GGML_NATIVE) and run the vec_dot benchmarks that
# `bitplan bench kernels` compares against: q4_0 × q8_0 and q8_0 × q8_0 at ggml's L1/L2/L3/MEM sizes.
#   scripts/bench_ggml.sh [GGML_GIT_DIR_OR_URL] [BUILD_DIR]
# GGML_GIT_DIR_OR_URL: a ggml checkout or bare git dir (default https://github.com/ggml-org/ggml); needs cmake and a
# C/C++ compiler. Single-threaded, like our benchmark.
set -euo pipefail
src=${1:-https://github.com/ggml-org/ggml}
build=${2:-/tmp/ggml-bench}
mkdir -p "$build"
if [ ! -d "$build/ggml" ]; then git clone --quiet "$src" "$build/ggml"; fi
echo "ggml commit: $(git -C "$build/ggml" rev-parse --short HEAD)"
cmake -S "$build/ggml" -B "$build/out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_BUILD_TESTS=ON \
  -DGGML_BUILD_EXAMPLES=OFF -DGGML_OPENMP=OFF >"$build/cmake.log" 2>&1
cmake --build "$build/out" --target test-quantize-perf -j 2 >"$build/build.log" 2>&1
bin=$(find "$build/out" -name test-quantize-perf -type f | head -n 1)
"$bin" -4 --op vec_dot_q --type q4_0 --type q8_0
