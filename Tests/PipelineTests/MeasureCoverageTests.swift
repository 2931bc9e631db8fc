import Engine
import Foundation
import Pipeline
import Quantization
import Sensitivity
import Testing
import _TestSupport

/// Issue 7, point 1: the per-layer Hutchinson traces of a real measurement (engine, one-sided HVPs, the run store)
/// against the exact per-layer traces of a tiny llama in Double, whose Hessian diagonal is computed column by column
/// with the engine's one-sided HVP in Double (relative error ~5e-8 on the engine's tiny model, `HessianTests`).
@Suite struct MeasureCoverageTests {
  /// Seeds (independent runs) and probes per run.
  static let seeds: [UInt64] = Array(1...20)
  static let probes = 32
  /// A 3-standard-error interval of a mean of 32 samples covers the true value ~99% of the time for a normal
  /// sample mean (Student t, 31 d.f.: 99.5%); the issue asks for at least 95%, which leaves room for the skewed
  /// distribution of vᵀHv.
  static let requiredCoverage = 0.95

  /// 1 block, d = 8, F = 12, 4 heads over 2 kv heads, vocabulary 11: 7 linear layers, 672 weights.
  static func tinyModel() throws -> LlamaModel<Double> {
    let c = LlamaConfiguration(
      hidden: 8, intermediate: 12, layers: 1, heads: 4, kvHeads: 2, headDim: 4, vocab: 11, rmsEps: 1e-5,
      ropeTheta: 10_000, tied: false)
    var weights: [String: WeightTensor<Double>] = [:]
    for (i, (name, shape)) in c.expectedTensors.enumerated() {
      let raw = randomDoubles(shape.reduce(1, *), seed: 7000 &+ UInt64(i))
      let values = shape.count == 1 ? raw.map { 1 + 0.25 * $0 } : raw.map { $0 * 1.5 / Double(shape[1]).squareRoot() }
      weights[name] = WeightTensor(shape: shape, values: values)
    }
    return try LlamaModel(configuration: c, weights: weights)
  }

  /// 24 calibration tokens, BOS-like 1 first; the first 12 are the Hessian window.
  static let tokens: [Int] = [1] + (0..<23).map { Int(SplitMix64Sequence.value(seed: 99, index: $0) % 11) }

  /// tr(Hᵢᵢ) per layer from the diagonal entries (H e_j)_j, one HVP per weight.
  static func exactTraces(_ model: LlamaModel<Double>, hvpTokens: [Int]) throws -> [Double] {
    let base = try model.gradients(tokens: hvpTokens, of: Set(model.linearWeightNames)).gradients
    return try model.linearLayers.map { layer in
      var trace = 0.0
      for j in 0..<layer.parameterCount {
        var e = [Double](repeating: 0, count: layer.parameterCount)
        e[j] = 1
        let hv = try model.hessianVectorProduct(
          tokens: hvpTokens, vector: [layer.weightName: e], baseGradient: base, of: [layer.weightName])
        trace += hv[layer.weightName]![j]
      }
      return trace
    }
  }

  @Test func hutchinsonTracesCoverTheExactTraces() throws {
    let model = try Self.tinyModel()
    let hvpTokens = Array(Self.tokens.prefix(12))
    let exact = try Self.exactTraces(model, hvpTokens: hvpTokens)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("bitplan-coverage-\(getpid())").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var (covered, total) = (0, 0)
    var misses: [String] = []
    var (sums, variances) = ([Double](repeating: 0, count: exact.count), [Double](repeating: 0, count: exact.count))
    for seed in Self.seeds {
      let sensitivity = try EngineSensitivityModel(
        model: model, calibrationTokens: Self.tokens, hvpTokenCount: 12, formats: [try QuantFormat(parsing: "int8")])
      var settings = MeasureSettings()
      (settings.tokens, settings.hvpTokens, settings.probes, settings.seed) = (24, 12, Self.probes, seed)
      let provenance = settings.provenance(
        toolVersion: "test", modelSHA256: "", calibSHA256: "", candidates: ["int8"], auditSHA256: "", auditTokens: 0,
        created: "")
      let run = try MeasurementRun(model: sensitivity, provenance: provenance, path: "\(folder)/\(seed).h5").run()
      #expect(run.probesUsed.allSatisfy { $0 == Self.probes })
      for (i, layer) in run.layers.enumerated() {
        total += 1
        sums[i] += run.hessianTrace[i]
        variances[i] += run.hessianTraceStandardError[i] * run.hessianTraceStandardError[i]
        let z = abs(run.hessianTrace[i] - exact[i]) / run.hessianTraceStandardError[i]
        if z <= 3 { covered += 1 } else { misses.append("seed \(seed) \(layer.name): z = \(z)") }
      }
    }
    let coverage = Double(covered) / Double(total)
    #expect(total == Self.seeds.count * 7)
    #expect(coverage >= Self.requiredCoverage, "coverage \(coverage); misses: \(misses)")
    #expect(exact.contains { abs($0) > 1e-3 }, "a Hessian with a non-trivial trace")
    // No bias either: the mean over all seeds (640 probes) is within 4 of its standard errors of the exact trace.
    let n = Double(Self.seeds.count)
    for i in exact.indices {
      let z = abs(sums[i] / n - exact[i]) / (variances[i].squareRoot() / n)
      #expect(z <= 4, "layer \(i): mean \(sums[i] / n), exact \(exact[i]), z = \(z)")
    }
  }
}

/// Deterministic values of a SplitMix64 stream by index (for fixed token lists).
enum SplitMix64Sequence {
  static func value(seed: UInt64, index: Int) -> UInt64 {
    var g = SplitMix64(seed: seed &+ UInt64(index))
    return g.next()
  }
}
