#!/usr/bin/env bash
# Importance-matrix golden bytes from ggml itself: links scripts/ggml_quant_golden_imatrix.c against an already
# built static ggml (llama.cpp's, as scripts/build_llamacpp.sh leaves it) and writes
# Tests/QuantizationTests/Fixtures/ggml_imatrix.bin (BPQI format, documented in the .c).
#   scripts/ggml_quant_golden_imatrix.sh [GGML_INCLUDE_DIR] [GGML_LIB_DIR]
# or set GGML_INCLUDE / GGML_LIB; the defaults are the llama-cpp-python 0.3.36 build in $LLAMACPP_DIR
# (default ~/.cache/bitplan/llamacpp, as scripts/build_llamacpp.sh leaves it).
set -euo pipefail
cache=${LLAMACPP_DIR:-$HOME/.cache/bitplan/llamacpp}
inc=${1:-${GGML_INCLUDE:-$cache/llama_cpp_python-0.3.36/vendor/llama.cpp/ggml/include}}
lib=${2:-${GGML_LIB:-$cache/build-0.3.36/ggml/src}}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# libggml-base.a holds ggml.c (ggml_quantize_chunk) and ggml-quants.c; it was compiled with -fopenmp and has C++
# objects, hence -fopenmp and -lstdc++.
cc -O2 -std=c11 -I"$inc" "$root/scripts/ggml_quant_golden_imatrix.c" "$lib/libggml-base.a" \
  -fopenmp -lstdc++ -lm -lpthread -o "$out/ggml_quant_golden_imatrix"
"$out/ggml_quant_golden_imatrix" "$root/Tests/QuantizationTests/Fixtures/ggml_imatrix.bin"
echo "wrote Tests/QuantizationTests/Fixtures/ggml_imatrix.bin ($(wc -c <"$root/Tests/QuantizationTests/Fixtures/ggml_imatrix.bin") bytes) with ggml from $lib"
