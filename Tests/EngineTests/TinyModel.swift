import Engine
import _TestSupport

/// A seeded in-memory llama small enough for finite differences and an exact Hessian: 2 blocks, d = 8, F = 12,
/// 4 heads over 2 kv heads (GQA), head dim 4 (two RoPE frequencies), vocabulary 11.
///
/// Weights are uniform in ±`scale`/√in so activations stay O(1) and every nonlinearity (softmax, SiLU, the RMS)
/// works away from its linear regime; norm weights are 1 ± 0.25.
enum TinyModel {
  static func configuration(tied: Bool, layers: Int = 2) -> LlamaConfiguration {
    LlamaConfiguration(
      hidden: 8, intermediate: 12, layers: layers, heads: 4, kvHeads: 2, headDim: 4, vocab: 11, rmsEps: 1e-5,
      ropeTheta: 10_000, tied: tied)
  }

  /// 9 tokens of the 11-word vocabulary, BOS-like 1 first.
  static let tokens = [1, 4, 9, 2, 2, 7, 10, 0, 5]

  /// Seeded weights for `configuration`, in the scalar type asked for.
  static func weights<S: EngineScalar>(_ c: LlamaConfiguration, seed: UInt64 = 7, scale: Double = 1.5) -> [String: WeightTensor<S>] {
    var result: [String: WeightTensor<S>] = [:]
    for (i, (name, shape)) in c.expectedTensors.enumerated() {
      let raw = randomDoubles(shape.reduce(1, *), seed: seed &* 1000 &+ UInt64(i))
      let values: [Double]
      if shape.count == 1 {
        values = raw.map { 1 + 0.25 * $0 }
      } else {
        values = raw.map { $0 * scale / Double(shape[1]).squareRoot() }
      }
      result[name] = WeightTensor(shape: shape, values: values.map { S($0) })
    }
    return result
  }

  static func model<S: EngineScalar>(tied: Bool = false, layers: Int = 2, as _: S.Type = S.self) throws -> LlamaModel<S> {
    let c = configuration(tied: tied, layers: layers)
    return try LlamaModel(configuration: c, weights: weights(c))
  }
}
