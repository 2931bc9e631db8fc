#!/usr/bin/env bash
# Build an independent llama.cpp reference (llama-quantize, llama-perplexity, llama-imatrix,
# test-quantize-perf, llama-bench) for validating BitPlan's quantized models.
#
# Source: the llama.cpp tree vendored in the PyPI sdist of llama-cpp-python
# (vendor/llama.cpp). CPU-only Release build, GGML_NATIVE=ON, no CUDA, no
# curl/openssl, static libs. Idempotent: each step is skipped when its output
# already exists (re-running only re-invokes the incremental cmake build).
#
# Usage: scripts/build_llamacpp.sh
# Env:   LLAMACPP_DIR     work dir            (default ~/.cache/bitplan/llamacpp)
#        LLAMACPP_VERSION llama-cpp-python version (default 0.3.36)
#        JOBS             parallel jobs       (default 2)
#        NICE             nice level          (default 10)
#        WITH_BENCH       1 = also build llama-bench (default 1)
# Prints the absolute paths of the built binaries, one "NAME=PATH" a line
# (so `eval "$(scripts/build_llamacpp.sh | grep =)"` is possible).
set -euo pipefail

LLAMACPP_DIR="${LLAMACPP_DIR:-$HOME/.cache/bitplan/llamacpp}"
VERSION="${LLAMACPP_VERSION:-0.3.36}"
JOBS="${JOBS:-2}"
NICE="${NICE:-10}"
WITH_BENCH="${WITH_BENCH:-1}"

mkdir -p "$LLAMACPP_DIR"
cd "$LLAMACPP_DIR"

SDIST="llama_cpp_python-${VERSION}.tar.gz"
SRCROOT="$LLAMACPP_DIR/llama_cpp_python-${VERSION}"
SRC="$SRCROOT/vendor/llama.cpp"
BUILD="$LLAMACPP_DIR/build-${VERSION}"

# 1. Tools: Debian's cmake + compilers.
if ! command -v cmake >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
    echo "[build_llamacpp] installing cmake build-essential (apt)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake build-essential
fi

# 2. Download the sdist. `--no-binary llama-cpp-python` (not :all:) so that pip
#    may use wheels for the metadata-preparation build backend (scikit-build-core,
#    cmake); `--no-binary :all:` would compile cmake itself from source.
if [ ! -f "$SDIST" ]; then
    echo "[build_llamacpp] downloading $SDIST" >&2
    nice -n "$NICE" python3 -m pip download --no-deps --no-binary llama-cpp-python \
        "llama-cpp-python==${VERSION}" -d "$LLAMACPP_DIR"
fi

# 3. Unpack.
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    echo "[build_llamacpp] unpacking $SDIST" >&2
    tar xzf "$SDIST"
fi

# 4. Configure (only once; delete $BUILD to reconfigure).
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    echo "[build_llamacpp] configuring in $BUILD" >&2
    nice -n "$NICE" cmake -S "$SRC" -B "$BUILD" \
        -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=ON \
        -DGGML_CUDA=OFF \
        -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF \
        -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_TESTS=ON \
        -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=OFF
fi

# 5. Build only the targets we need.
TARGETS=(llama-quantize llama-perplexity llama-imatrix test-quantize-perf)
if [ "$WITH_BENCH" = 1 ]; then TARGETS+=(llama-bench); fi
echo "[build_llamacpp] building ${TARGETS[*]} with -j$JOBS (nice $NICE)" >&2
nice -n "$NICE" cmake --build "$BUILD" --config Release -j "$JOBS" --target "${TARGETS[@]}"

# 6. Report.
for t in "${TARGETS[@]}"; do
    p="$BUILD/bin/$t"
    if [ ! -x "$p" ]; then echo "[build_llamacpp] missing $p" >&2; exit 1; fi
    v="$(echo "$t" | tr 'a-z-' 'A-Z_')"
    echo "${v}=$p"
done
echo "LLAMACPP_SRC=$SRC"
echo "LLAMACPP_BIN=$BUILD/bin"
