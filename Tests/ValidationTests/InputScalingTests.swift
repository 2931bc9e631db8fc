import Engine
import Foundation
import Quantization
import Testing
import Validation
import _TestSupport

/// Running an AWQ-scaled layer: diag(s)⁻¹ folded into the RMSNorm in front of q/k/v and gate/up (Engine), or applied
/// to the input by `PackedLinear(inputScale:)` for o_proj and down_proj, leaves the float model's output unchanged
/// when each W is replaced by W·diag(s) unquantized; each half alone changes it.
@Suite struct InputScalingTests {
  typealias Model = LlamaModel<Float>

  /// 2 blocks, d = 32, F = 64, 4 heads over 2 kv heads, head dim 8, vocabulary 19; seeded weights of O(1/√in),
  /// norm weights 1 ± 0.25.
  static func model(seed: UInt64 = 5) throws -> Model {
    let c = LlamaConfiguration(
      hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 8, vocab: 19, rmsEps: 1e-5,
      ropeTheta: 10_000, tied: false)
    var weights: [String: WeightTensor<Float>] = [:]
    for (i, (name, shape)) in c.expectedTensors.enumerated() {
      let raw = randomFloats(shape.reduce(1, *), seed: seed &* 1000 &+ UInt64(i))
      weights[name] = WeightTensor(
        shape: shape, values: shape.count == 1 ? raw.map { 1 + 0.25 * $0 } : raw.map { $0 * 1.5 / Float(shape[1]).squareRoot() })
    }
    return try Model(configuration: c, weights: weights)
  }

  static let tokens = [1, 4, 9, 2, 2, 7, 10, 0, 5, 18, 3, 3, 12, 16]

  /// Log-uniform scales in [1/4, 4]: far enough from 1 that a missing or inverted scale shows.
  static func scales(_ n: Int, seed: UInt64) -> [Float] {
    randomFloats(n, seed: seed).map { Float(pow(2.0, 2 * Double($0))) }
  }

  static func scaled(_ w: [Float], columns: Int, by s: [Float]) -> [Float] {
    w.enumerated().map { $0.element * s[$0.offset % columns] }
  }

  static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max()!
  }

  /// Applies AWQ-style scales to every group of `model`: W ← W·diag(s) (dense for groups with a norm, an f32
  /// `PackedLinear` for the others); `fold` and `operatorScale` switch the compensating halves off for the controls.
  static func applyScales(to model: Model, fold: Bool = true, operatorScale: Bool = true) throws {
    for (g, group) in model.inputGroups.enumerated() {
      let s = scales(group.inFeatures, seed: 100 + UInt64(g))
      if group.norm != nil {
        if fold { try model.foldInputScale(s, into: group) }
        for layer in group.layers {
          let w = try model.weight(named: layer + ".weight")
          try model.replaceWeight(name: layer + ".weight", with: scaled(w, columns: group.inFeatures, by: s))
        }
      } else {
        let layer = group.layers[0]
        let w = try model.weight(named: layer + ".weight")
        let rows = w.count / group.inFeatures
        let packed = try quantize(scaled(w, columns: group.inFeatures, by: s), rows: rows, columns: group.inFeatures, format: .f32)
        let op = try PackedLinear(packed, activations: .f32, inputScale: operatorScale ? s : nil)
        try model.installOperator(op, forLayer: layer, releaseDenseWeight: true)
      }
    }
  }

  /// Folded model = original to rounding: |Δlogit| ≤ 1e-4 on logits of magnitude ~1–10 (Float; scales up to 4×
  /// move each product's rounding by a few ulps). Each control (norm not folded, operator scale left off) moves the
  /// logits by more than 1e-2.
  @Test func foldedModelKeepsItsOutput() throws {
    let base = try Self.model().logits(tokens: Self.tokens).storage
    let folded = try Self.model()
    try Self.applyScales(to: folded)
    let out = try folded.logits(tokens: Self.tokens).storage
    #expect(Self.maxDifference(out, base) <= 1e-4, "max |Δlogit| \(Self.maxDifference(out, base))")

    let noFold = try Self.model()
    try Self.applyScales(to: noFold, fold: false)
    #expect(Self.maxDifference(try noFold.logits(tokens: Self.tokens).storage, base) > 1e-2)
    let noOperatorScale = try Self.model()
    try Self.applyScales(to: noOperatorScale, operatorScale: false)
    #expect(Self.maxDifference(try noOperatorScale.logits(tokens: Self.tokens).storage, base) > 1e-2)
  }

  /// The groups: q/k/v after input_layernorm, o alone, gate/up after post_attention_layernorm, down alone; every
  /// linear layer in exactly one.
  @Test func inputGroupsCoverEveryLayerOnce() throws {
    let model = try Self.model()
    let groups = model.inputGroups
    #expect(groups.count == 8)
    #expect(groups.flatMap(\.layers).sorted() == model.linearLayers.map(\.name).sorted())
    #expect(groups[0].layers == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj"])
    #expect(groups[0].norm == "model.layers.0.input_layernorm.weight")
    #expect(groups[1].norm == nil && groups[3].norm == nil)
    #expect(groups[6].norm == "model.layers.1.post_attention_layernorm.weight" && groups[6].inFeatures == 32)
    #expect(groups[7].inFeatures == 64)
    #expect(try model.inputGroup(ofLayer: "model.layers.1.mlp.up_proj") == groups[6])
    #expect(throws: EngineError.self) { try model.inputGroup(ofLayer: "lm_head") }
  }

  @Test func foldingIsCheckedAndExact() throws {
    let model = try Self.model()
    let group = model.inputGroups[2]
    let g = try model.weight(named: group.norm!)
    let s = Self.scales(32, seed: 3)
    try model.foldInputScale(s, into: group)
    #expect(try model.weight(named: group.norm!) == zip(g, s).map { $0 / $1 })
    try model.scaleNormWeight(group.norm!, by: s)
    let back = try model.weight(named: group.norm!)
    #expect(Self.maxDifference(back, g) <= 1e-6)
    #expect(throws: EngineError.self) { try model.foldInputScale(s, into: model.inputGroups[1]) }  // o_proj: no norm
    #expect(throws: EngineError.self) { try model.foldInputScale([Float](repeating: 1, count: 31), into: group) }
    var zero = s
    zero[4] = 0
    #expect(throws: EngineError.self) { try model.foldInputScale(zero, into: group) }
    #expect(throws: EngineError.self) { try model.scaleNormWeight("model.norm.weight", by: s) }
    #expect(throws: EngineError.self) { try model.scaleNormWeight("model.layers.0.mlp.up_proj.weight", by: s) }
  }

  /// The scale-vector path with real codes: Float activations give X·(dequant(Q(W·diag s))·diag(s)⁻¹)ᵀ, the
  /// effective weights `measure` scores, to 1e-5 relative; int8 activations are bit for bit the unscaled operator on
  /// X ⊙ s⁻¹ (the scaling happens before the activations are quantized); accumulate adds.
  @Test func scaledOperatorComputesTheEffectiveWeights() throws {
    let (rows, columns, tokens) = (24, 128, 7)
    let w = randomFloats(rows * columns, seed: 61, scale: 0.1)
    let s = Self.scales(columns, seed: 62)
    let x = randomFloats(tokens * columns, seed: 63)
    let packed = try quantize(Self.scaled(w, columns: columns, by: s), rows: rows, columns: columns, format: try QuantFormat(parsing: "int4-g32"))
    let effective = AWQ.effectiveWeights(packed, scales: s)
    var expected = [Float](repeating: 0, count: tokens * rows)
    BLAS.sgemmReference(transposeB: true, m: tokens, n: rows, k: columns, a: x, b: effective, c: &expected)

    let op = try PackedLinear(packed, activations: .f32, inputScale: s)
    var y = [Float](repeating: 0, count: tokens * rows)
    op.apply(x, tokens: tokens, into: &y, accumulate: false)
    let scale = expected.map(abs).max()!
    #expect(Self.maxDifference(y, expected) <= 1e-5 * scale)
    op.apply(x, tokens: tokens, into: &y, accumulate: true)
    #expect(Self.maxDifference(y, expected.map { 2 * $0 }) <= 2e-5 * scale)

    let int8 = try PackedLinear(packed, activations: .int8, inputScale: s)
    let plain = try PackedLinear(packed, activations: .int8)
    let divided = x.enumerated().map { $0.element / s[$0.offset % columns] }
    var a = [Float](repeating: 0, count: tokens * rows)
    var b = a
    int8.apply(x, tokens: tokens, into: &a, accumulate: false)
    plain.apply(divided, tokens: tokens, into: &b, accumulate: false)
    #expect(a == b)
    #expect(Self.maxDifference(a, expected) <= 0.05 * scale)  // int8 activations: close, not equal

    #expect(throws: PlanValidationError.self) { try PackedLinear(packed, activations: .f32, inputScale: Array(s.dropLast())) }
    var bad = s
    bad[0] = 0
    #expect(throws: PlanValidationError.self) { try PackedLinear(packed, activations: .f32, inputScale: bad) }
  }
}
