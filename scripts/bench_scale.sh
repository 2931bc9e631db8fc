#!/usr/bin/env bash
# Scale benchmark (issue 18, point 3; CI does not run it): synthetic llamas of SmolLM2-135M's, SmolLM2-360M's and
# Llama-3.2-1B's shapes, written in bf16 by `bitplan tiny-model` (seeded weights, byte-level vocabulary padded with
# control tokens to the real size), then per model, each under /usr/bin/time:
#   measure  (512 calibration tokens, 128 for the HVPs, PROBES probes, CANDIDATES; stage seconds from its summary)
#   ppl      (512 tokens of Emma)
#   validate (the plan `allocate --bpw 6` makes from that run, WINDOWS windows of 256 Emma tokens)
# and prints one row per model: weights, GGUF bytes, peak RSS of each command, its ratio to the file, and the
# measure stages per probe and per calibration token. Usage: scripts/bench_scale.sh [WORK] (default /tmp/bitplan-scale;
# needs ~8 GB of disk for the three models; SHAPES="llama-3.2-1b" runs one of them).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/bitplan}
WORK=${1:-/tmp/bitplan-scale}
PROBES=${PROBES:-4}
CANDIDATES=${CANDIDATES:-int8,int4-g64}
MEASURE_FLAGS=${MEASURE_FLAGS:---no-hessian-diagonal}
WINDOWS=${WINDOWS:-2}
CALIB=../shared/data/prideprejudice.txt
EVAL=../shared/data/emma.txt
mkdir -p "$WORK"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(git rev-parse --short HEAD)"
echo "# measure: --probes $PROBES --candidates $CANDIDATES $MEASURE_FLAGS"
printf '| shape | weights | GGUF MB | measure peak MB (×file) | ppl peak MB (×file) | validate peak MB (×file) | fisher s/token | hessian s/probe | layers s | measure s |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
shape() {  # name, then tiny-model shape flags
  local name=$1; shift
  local dir=$WORK/$name
  [ -f "$dir/tiny-llama.gguf" ] || "$BIN" tiny-model "$dir" --dtype bf16 "$@" > /dev/null
  local model=$dir/tiny-llama.gguf
  local bytes; bytes=$(stat -c %s "$model")
  rm -f "$dir/run.h5" "$dir/run.h5.partial" "$dir/plan.json" "$dir/validation.json"
  /usr/bin/time -f '%M %e' -o "$dir/measure.time" "$BIN" measure "$model" --calib $CALIB --tokens 512 --hvp-tokens 128 \
    --probes "$PROBES" --candidates "$CANDIDATES" $MEASURE_FLAGS -o "$dir/run.h5" > "$dir/measure.log" 2>&1
  /usr/bin/time -f '%M %e' -o "$dir/ppl.time" "$BIN" ppl "$model" --text $EVAL --tokens 512 > "$dir/ppl.log" 2>&1
  "$BIN" allocate "$dir/run.h5" --bpw 6 -o "$dir/plan.json" > /dev/null 2>&1
  /usr/bin/time -f '%M %e' -o "$dir/validate.time" "$BIN" validate "$model" "$dir/plan.json" --eval $EVAL \
    --windows "$WINDOWS" --tokens 256 -o "$dir/validation.json" > "$dir/validate.log" 2>&1
  # "time 77.3 s (setup 1.5, fisher 7.9, hessian 6.3, layers 61.6, finish 0.0)"
  python3 - "$name" "$bytes" "$dir" "$PROBES" <<'PY'
import re, sys
name, size, d, probes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def peak(cmd):
    kb, s = open(f"{d}/{cmd}.time").read().split()[-2:]
    return int(kb) / 1024, float(s)
log = open(f"{d}/measure.log").read().replace('\r', '\n')
t = re.search(r"time ([\d.]+) s \(setup ([\d.]+), fisher ([\d.]+), hessian ([\d.]+), layers ([\d.]+)", log)
total, setup, fisher, hessian, layers = map(float, t.groups())
params = re.search(r"([\d,]+) weights", log)
mb = size / 2**20
m, _ = peak("measure"); p, _ = peak("ppl"); v, _ = peak("validate")
print(f"| {name} | {params.group(1) if params else '?'} | {mb:,.0f} | {m:,.0f} ({m/mb:.1f}×) | {p:,.0f} ({p/mb:.1f}×) | "
      f"{v:,.0f} ({v/mb:.1f}×) | {fisher/512*1000:.1f} ms | {hessian/probes:.1f} | {layers:.1f} | {total:.1f} |")
PY
}
# SHAPES picks some of the three (default: all), e.g. SHAPES=llama-3.2-1b
wants() { [ -z "${SHAPES:-}" ] || [[ " $SHAPES " == *" $1 "* ]]; }
run() { if wants "$1"; then shape "$@"; fi; }
run smollm2-135m --layers 30 --hidden 576 --heads 9 --kv-heads 3 --intermediate 1536 --vocab 49152 --tied
run smollm2-360m --layers 32 --hidden 960 --heads 15 --kv-heads 5 --intermediate 2560 --vocab 49152 --tied
run llama-3.2-1b --layers 16 --hidden 2048 --heads 32 --kv-heads 8 --intermediate 8192 --vocab 128256 --tied
