#!/usr/bin/env bash
# Checks a `bitplan export --format llama-cpp` recipe against llama.cpp itself: exports PLAN.json for MODEL.gguf,
# runs `llama-quantize --dry-run` with the recipe, and checks that every tensor gets the type the recipe names and
# that llama.cpp reports no shape fallback. With --real it also quantizes for real (to a temporary file, removed
# afterwards) and reads the output's tensor types back with `bitplan inspect --json`.
#
# usage: scripts/check_llamacpp_recipe.sh PLAN.json MODEL.gguf [--real]
# env:   BITPLAN (default .build/release/bitplan), LLAMA_QUANTIZE (default
#        ~/.cache/bitplan/llamacpp/build-0.3.36/bin/llama-quantize)
set -euo pipefail
plan=${1:?usage: $0 PLAN.json MODEL.gguf [--real]}
model=${2:?usage: $0 PLAN.json MODEL.gguf [--real]}
real=${3:-}
bitplan=${BITPLAN:-.build/release/bitplan}
quantize=${LLAMA_QUANTIZE:-$HOME/.cache/bitplan/llamacpp/build-0.3.36/bin/llama-quantize}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bitplan" export "$plan" --format llama-cpp --model "$model" -o "$work/recipe.txt" 2>"$work/command.txt"
ftype=$(awk '{print $NF}' "$work/command.txt")
echo "recipe: $(wc -w <"$work/recipe.txt") rules, ftype $ftype"

# The recipe's intent: tensor name (pattern without ^…$ and backslashes) → type, lower-case.
sed -e 's/^\^//' -e 's/\$=/ /' -e 's/\\//g' "$work/recipe.txt" | tr 'A-Z' 'a-z' | sort >"$work/want.txt"

# llama-quantize --dry-run: "[  i/  n] NAME - [shape], type = CUR, size = a MiB -> b MiB (NEW)" for a tensor it
# converts, "…, type = CUR, size = a MiB" for one it copies.
"$quantize" --dry-run --allow-requantize --tensor-type-file "$work/recipe.txt" "$model" "$ftype" >"$work/dry.txt" 2>&1
if grep -q "required fallback" "$work/dry.txt"; then
  grep "fallback" "$work/dry.txt"
  echo "FAIL: llama-quantize fell back for some tensors" >&2
  exit 1
fi
grep -E '^\[ *[0-9]+/ *[0-9]+\]' "$work/dry.txt" | sed -E \
  -e 's/^\[ *[0-9]+\/ *[0-9]+\] +([^ ]+) +- .*type = +([A-Za-z0-9_]+), .*-> .*\(([A-Za-z0-9_]+)\)$/\1 \3/' \
  -e 's/^\[ *[0-9]+\/ *[0-9]+\] +([^ ]+) +- .*type = +([A-Za-z0-9_]+), size = [^>]*$/\1 \2/' \
  | tr 'A-Z' 'a-z' | sort >"$work/got.txt"
# Only the tensors the recipe names (norms are copied and not in the recipe).
join "$work/want.txt" "$work/got.txt" >"$work/joined.txt"
bad=$(awk '$2 != $3' "$work/joined.txt" | wc -l)
covered=$(wc -l <"$work/joined.txt")
if [[ $covered -ne $(wc -l <"$work/want.txt") || $bad -ne 0 ]]; then
  awk '$2 != $3' "$work/joined.txt" | head
  echo "FAIL: dry run: $covered of $(wc -l <"$work/want.txt") recipe tensors seen, $bad with another type" >&2
  exit 1
fi
echo "dry run: all $covered tensors get the recipe's type, no fallback"

if [[ $real == --real ]]; then
  "$quantize" --allow-requantize --tensor-type-file "$work/recipe.txt" "$model" "$work/out.gguf" "$ftype" >"$work/real.txt" 2>&1
  "$bitplan" inspect "$work/out.gguf" --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tensors"]:
    print(t["file_name"], t["dtype"].lower())' | sort >"$work/real-got.txt"
  join "$work/want.txt" "$work/real-got.txt" >"$work/real-joined.txt"
  bad=$(awk '$2 != $3' "$work/real-joined.txt" | wc -l)
  covered=$(wc -l <"$work/real-joined.txt")
  if [[ $covered -ne $(wc -l <"$work/want.txt") || $bad -ne 0 ]]; then
    awk '$2 != $3' "$work/real-joined.txt" | head
    echo "FAIL: quantized file: $covered tensors seen, $bad with another type" >&2
    exit 1
  fi
  echo "quantized: all $covered tensors of the output GGUF have the recipe's type"
fi
