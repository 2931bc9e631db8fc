#!/usr/bin/env bash
# Times SafetensorsWriter and SafetensorsFile on a SmolLM2-135M-shaped model (272 tensors, 134,515,008 values):
#   scripts/bench_safetensors.sh [F32|F16|BF16 ...]
# Builds ModelIO + TensorCore sources with -O into one executable (as scripts/fuzz.sh does), writes the file to a
# temporary folder, opens it, converts every tensor to Float, prints the times, and deletes the file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/main.swift" <<'SWIFT'
import Foundation
// SmolLM2-135M-shaped tensors (134,515,008 params, tied embedding), written by SafetensorsWriter, read back.
var items: [SafetensorsWriter.Item] = [("model.embed_tokens.weight", [49152, 576], [])]
for l in 0..<30 {
  let p = "model.layers.\(l)."
  for (n, s) in [("self_attn.q_proj", [576, 576]), ("self_attn.k_proj", [192, 576]), ("self_attn.v_proj", [192, 576]),
                 ("self_attn.o_proj", [576, 576]), ("mlp.gate_proj", [1536, 576]), ("mlp.up_proj", [1536, 576]),
                 ("mlp.down_proj", [576, 1536])] { items.append((p + n + ".weight", s, [])) }
  items.append((p + "input_layernorm.weight", [576], [])); items.append((p + "post_attention_layernorm.weight", [576], []))
}
items.append(("model.norm.weight", [576], []))
var seed: UInt32 = 1
items = items.map { t in (t.name, t.shape, (0..<t.shape.reduce(1, *)).map { _ in seed = seed &* 1664525 &+ 1013904223; return Float(Int32(bitPattern: seed)) / 2e10 }) }
let params = items.reduce(0) { $0 + $1.values.count }
let dtype = SafetensorsDType(rawValue: CommandLine.arguments[1])!
let path = CommandLine.arguments[2] + "/model-\(dtype.rawValue).safetensors"
var t0 = Date()
try SafetensorsWriter.write(items, dtype: dtype, to: path)
let writeS = Date().timeIntervalSince(t0)
t0 = Date()
let file = try SafetensorsFile(path: path)
let openS = Date().timeIntervalSince(t0)
t0 = Date()
var check = 0.0
for t in file.tensors { let x = try file.tensor(named: t.name); check += Double(x.storage[x.count / 2]) }
let readS = Date().timeIntervalSince(t0)
let bytes = (try FileManager.default.attributesOfItem(atPath: path)[.size] as! NSNumber).intValue
print("\(dtype.rawValue): \(params) params, \(bytes) bytes; write \(String(format: "%.2f", writeS)) s, open+validate \(String(format: "%.4f", openS)) s (\(file.tensors.count) tensors), all tensors to Float \(String(format: "%.2f", readS)) s = \(String(format: "%.2f", Double(params) / readS / 1e9)) G values/s (check \(check))")
try FileManager.default.removeItem(atPath: path)
SWIFT
blas_inc=$(pkg-config --variable=includedir openblas)
blas_lib=$(pkg-config --variable=libdir openblas)
swiftc -O -module-name BenchSafetensors "$work/main.swift" "$root"/Sources/ModelIO/*.swift "$root"/Sources/TensorCore/*.swift \
  -I "$root/Sources/CBLAS" -Xcc -I"$blas_inc" -L"$blas_lib" -lopenblas -o "$work/bench" 2> "$work/build.log" \
  || { cat "$work/build.log"; exit 1; }
for dtype in "${@:-F32 F16 BF16}"; do for d in $dtype; do "$work/bench" "$d" "$work"; done; done
