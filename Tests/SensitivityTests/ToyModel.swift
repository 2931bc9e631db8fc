import Foundation
import Sensitivity
import _TestSupport

/// Thrown by `ToyModel` to simulate a kill after a set number of calls.
struct ToyInterrupt: Error {}

/// Microseconds every `ToyModel` call sleeps: 0, except in the child processes of `KillTests`, where it makes a
/// run last long enough to be killed at many different points.
let toyDelayMicroseconds = UInt32(ProcessInfo.processInfo.environment["BITPLAN_SENS_TOY_DELAY_US"] ?? "") ?? 0

/// Counts calls and throws `ToyInterrupt` when a budget runs out (a reference, so the model can stay a struct).
final class CallBudget {
  var remaining: [String: Int]
  var calls: [String: Int] = [:]
  init(_ remaining: [String: Int] = [:]) { self.remaining = remaining }
  func spend(_ kind: String) throws {
    if toyDelayMicroseconds > 0 { usleep(toyDelayMicroseconds) }
    calls[kind, default: 0] += 1
    if let r = remaining[kind] {
      if r <= 0 { throw ToyInterrupt() }
      remaining[kind] = r - 1
    }
  }
}

/// A "model" whose loss is the quadratic `L(w) = ½ (w − w*)ᵀ A (w − w*)` over three linear layers, with the exact
/// Hessian `A` (positive definite: diagonal shift 6 against off-diagonal entries in [−1, 1)), per-window optima
/// `w*_k` (so gradients differ by window), seeded inputs, and a round-to-nearest quantizer per candidate.
struct ToyModel: SensitivityModel {
  let form: QuadraticForm
  let linearLayers: [MeasuredRun.Layer] = [
    .init(name: "model.layers.0.self_attn.q_proj", rows: 4, columns: 6),
    .init(name: "model.layers.0.mlp.up_proj", rows: 3, columns: 6),
    .init(name: "model.layers.0.mlp.down_proj", rows: 5, columns: 3),
  ]
  /// Bits and step sizes; `int2-g6` is offered only to layers whose input width is a multiple of 6.
  let candidates: [MeasuredRun.Candidate] = [
    .init(name: "int8", bitsPerWeight: 8.5), .init(name: "int4", bitsPerWeight: 4.5),
    .init(name: "int2-g6", bitsPerWeight: 2 + 16.0 / 6),
  ]
  let calibrationWindowCount = 3
  let w: [Float]
  let optimum: [[Double]]
  let budget: CallBudget
  /// A window whose gradient comes back NaN (a model that overflows on it), or nil.
  var poisonedWindow: Int?

  init(budget: CallBudget = CallBudget()) {
    form = QuadraticForm(sizes: [24, 18, 15], seed: 17, diagonalShift: 6, alternatingSigns: false)
    let w = randomFloats(57, seed: 5, scale: 0.5)
    self.w = w
    optimum = (0..<3).map { k in
      randomDoubles(57, seed: 100 + UInt64(k)).enumerated().map { Double(w[$0.offset]) + 0.05 * $0.element }
    }
    self.budget = budget
  }

  var offsets: [Int] { [0, 24, 42, 57] }

  func weights(of layer: Int) throws -> [Float] {
    try budget.spend("weights")
    return Array(w[offsets[layer]..<offsets[layer + 1]])
  }

  func gradient(window: Int) throws -> [[Float]] {
    try budget.spend("gradient")
    if window == poisonedWindow { return offsets.indices.dropLast().map { [Float](repeating: .nan, count: offsets[$0 + 1] - offsets[$0]) } }
    let diff = (0..<57).map { Double(w[$0]) - optimum[window][$0] }
    return form.product(form.blocks.indices.map { b in (offsets[b]..<offsets[b + 1]).map { Float(diff[$0]) } })
  }

  func hessianVectorProduct(_ v: [[Float]]) throws -> [[Float]] {
    try budget.spend("hvp")
    return form.product(v)
  }

  func layerInputs(of layer: Int) throws -> (values: [Float], rows: Int) {
    try budget.spend("inputs")
    return (randomFloats(16 * linearLayers[layer].columns, seed: 300 + UInt64(layer)), 16)
  }

  func quantize(layer: Int, candidate: Int) throws -> QuantizedWeights? {
    try budget.spend("quantize")
    let l = linearLayers[layer]
    if candidate == 2 && l.columns % 6 != 0 { return nil }
    let levels: Float = [127, 7, 1][candidate]
    let x = try weights(of: layer)
    let absmax = x.map(abs).max()!
    let step = absmax / levels
    let q = x.map { ($0 / step).rounded() * step }
    let bytes = Int((Double(l.parameterCount) * candidates[candidate].bitsPerWeight / 8).rounded(.up))
    return QuantizedWeights(weights: q, bytes: bytes, calibration: "absmax")
  }

  /// `L(w')` with `w*` the mean optimum; KLD stand-in `¼ ΔᵀAΔ` (non-negative, zero for no change).
  func evaluate(replacing layer: Int?, with weights: [Float]?) throws -> (meanNLL: Double, meanKLD: Double) {
    try budget.spend("evaluate")
    var x = w
    if let layer, let weights { x.replaceSubrange(offsets[layer]..<offsets[layer + 1], with: weights) }
    let mean = (0..<57).map { j in optimum.reduce(0.0) { $0 + $1[j] } / 3 }
    func quadratic(_ d: [Double]) -> Double {
      var s = 0.0
      for i in 0..<57 { for j in 0..<57 { s += d[i] * form.a[i * 57 + j] * d[j] } }
      return 0.5 * s
    }
    let nll = 2 + quadratic((0..<57).map { Double(x[$0]) - mean[$0] })
    let kld = 0.5 * quadratic((0..<57).map { Double(x[$0]) - Double(w[$0]) })
    return (nll, kld)
  }
}

extension ToyModel {
  /// Held-out: `evaluate` (the protocol's default). Calibration: the same quadratic with the KLD stand-in doubled
  /// and the NLL shifted by 1, so the two texts' numbers differ.
  func baselineNLL(on text: ScoredText) throws -> Double {
    try budget.spend("score")
    return try evaluate(replacing: nil, with: nil).meanNLL + (text == .heldOut ? 0 : 1)
  }

  func score(layer: Int, candidate: Int, on text: ScoredText) throws -> (meanNLL: Double, meanKLD: Double)? {
    try budget.spend("score")
    guard let q = try quantize(layer: layer, candidate: candidate) else { return nil }
    let e = try evaluate(replacing: layer, with: q.weights)
    return text == .heldOut ? e : (e.meanNLL + 1, 2 * e.meanKLD)
  }
}

/// Settings for toy runs.
func toyProvenance(seed: UInt64 = 7, probes: Int = 24, audit: Int = 5, eigen: Int = 30) -> RunProvenance {
  RunProvenance(
    toolVersion: "test", modelSHA256: String(repeating: "a", count: 64), calibSHA256: String(repeating: "b", count: 64),
    tokens: 48, hvpTokens: 16, probes: probes, minimumProbes: 4, tolerance: 0, seed: seed,
    candidates: ["int8", "int4", "int2-g6"], keepsHessianDiagonal: true, eigenIterations: eigen, auditCount: audit,
    created: "2026-11-24T00:00:00Z")
}

/// The run as sorted JSON, NaN spelled out, `created` cleared: equal JSON means bit-identical numbers (Double
/// encodes as the shortest round-tripping decimal).
func canonicalJSON(_ run: MeasuredRun) throws -> String {
  var r = run
  r.provenance.created = ""
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.sortedKeys]
  encoder.nonConformingFloatEncodingStrategy = .convertToString(
    positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
  return String(decoding: try encoder.encode(r), as: UTF8.self)
}
