#!/usr/bin/env bash
# Build and run one libFuzzer target over ModelIO's readers.
#   scripts/fuzz.sh NAME [RUNS]     NAME is a file Fuzz/NAME.swift defining LLVMFuzzerTestOneInput
# The harness is compiled together with ModelIO's and TensorCore's sources (-sanitize=fuzzer,address), because
# SwiftPM does not build libFuzzer executables. Corpus: fuzz-corpus/NAME (git-ignored), seeded from Fuzz/seeds/NAME.
set -euo pipefail
name=${1:?usage: scripts/fuzz.sh NAME [RUNS]}
runs=${2:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.build-fuzz"
mkdir -p "$out" "$root/fuzz-corpus/$name"
if [ -d "$root/Fuzz/seeds/$name" ]; then cp -n "$root/Fuzz/seeds/$name"/* "$root/fuzz-corpus/$name/" 2>/dev/null || true; fi
blas_inc=$(pkg-config --variable=includedir openblas)
blas_lib=$(pkg-config --variable=libdir openblas)
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzModelIO \
  "$root"/Sources/ModelIO/*.swift "$root"/Sources/TensorCore/*.swift "$root/Fuzz/$name.swift" \
  -I "$root/Sources/CBLAS" -Xcc -I"$blas_inc" -L"$blas_lib" -lopenblas \
  -o "$out/$name-fuzz" 2> "$out/$name-build.log" || { cat "$out/$name-build.log"; exit 1; }
"$out/$name-fuzz" -runs="$runs" -max_len=65536 -print_final_stats=1 "$root/fuzz-corpus/$name" 2>&1 | tail -n 25
