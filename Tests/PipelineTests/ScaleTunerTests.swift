import Engine
import Foundation
@testable import Pipeline
import Quantization
import Testing
import Validation
import _TestSupport

/// Scale tuning (`ScaleTuner`) on the committed tiny model with round-to-nearest integer layers: the calibration
/// loss (KL from the unquantized model, or the NLL) falls, the codes and byte counts stay, the loss reported after is the one of the tensors returned, and bad
/// options are typed errors.
@Suite struct ScaleTunerTests {
  /// A calibration text of token ids: BOS (256) then a fixed pattern over the byte vocabulary.
  static let tokens = [256] + Array(0..<255).map { ($0 * 37 + 11) % 256 }

  static func load() throws -> LoadedModel {
    try LoadedModel.load(path: TestModels.repositoryRoot + "/fixtures/tiny-llama")
  }

  /// Every linear layer of the tiny model in `format` by round to nearest (from the file's values, as validate
  /// quantizes them), with input scales drawn from [0.5, 2] when `inputScales` (an AWQ-style layer).
  static func layers(_ loaded: LoadedModel, format: String, inputScales: Bool = false) throws -> [ScaleTuner.Layer] {
    let f = try QuantFormat(parsing: format)
    return try loaded.model.linearLayers.enumerated().map { i, layer in
      var w = try loaded.file.tensor(named: layer.weightName).storage
      var s: [Float]?
      if inputScales {
        let scales = randomFloats(layer.inFeatures, seed: UInt64(100 + i)).map { Float(pow(2, Double($0))) }
        for r in 0..<layer.outFeatures { for c in 0..<layer.inFeatures { w[r * layer.inFeatures + c] *= scales[c] } }
        s = scales
      }
      let packed = try quantize(w, rows: layer.outFeatures, columns: layer.inFeatures, format: f)
      return ScaleTuner.Layer(weightName: layer.weightName, packed: packed, inputScales: s)
    }
  }

  /// 30 steps lower the calibration loss; codes and byte counts are unchanged; evaluating the returned tensors on a
  /// fresh model gives the loss reported after.
  @Test(arguments: [
    ("int4-g32", false, ScaleTuner.Loss.kld), ("int3-g32", false, .kld), ("int3-g32-asym", false, .kld), ("int4-g32", true, .kld),
    ("int3-g32", false, .nll), ("int4-g32", true, .nll),
  ])
  func thirtyStepsLowerTheCalibrationLoss(format: String, awq: Bool, loss kind: ScaleTuner.Loss) throws {
    let loaded = try Self.load()
    let layers = try Self.layers(loaded, format: format, inputScales: awq)
    var losses: [Double] = []
    let result = try ScaleTuner.tune(
      loaded.model, layers: layers, tokens: Self.tokens, bos: 256,
      options: ScaleTuner.Options(steps: 30, windowTokens: 64, loss: kind)
    ) { done, total, loss in
      #expect(total == 30 && done == losses.count + 1)
      losses.append(loss)
    }
    #expect(result.windows == 4 && result.stepLosses == losses && result.tunedLayers == layers.count)
    #expect(result.lossAfter < result.lossBefore, "\(format) awq \(awq): \(result.lossBefore) → \(result.lossAfter)")
    print("tune \(format) awq \(awq) \(kind): \(result.lossBefore) → \(result.lossAfter)")
    var moved = 0
    for layer in layers {
      let tuned = try #require(result.tuned[layer.weightName])
      #expect(tuned.bytes.count == layer.packed.bytes.count && tuned.format == layer.packed.format)
      let before = try ScaleTuning.Groups(layer.packed), after = try ScaleTuning.Groups(tuned)
      #expect(after.integerCodes == before.integerCodes, "\(layer.weightName): codes unchanged")
      moved += zip(before.scales, after.scales).filter { $0 != $1 }.count
    }
    #expect(moved > 0)

    // The returned tensors, dequantized into a fresh model, give exactly the loss reported after.
    let fresh = try Self.load()
    for layer in layers {
      let w = try result.tuned[layer.weightName]!.dequantize()
      try fresh.model.replaceWeight(name: layer.weightName, with: ScaleTuner.divide(w, by: layer.inputScales))
    }
    let teacher = try Self.load()
    let windows = try ScaleTuner.windows(of: Self.tokens, bos: 256, length: 64)
    var total = 0.0
    for w in windows {
      if kind == .nll {
        total += try fresh.model.meanNLL(tokens: w)
      } else {
        total += try fresh.model.distillationLoss(tokens: w, teacher: teacher.model.probabilities(tokens: w).storage)
      }
    }
    #expect(total / Double(windows.count) == result.lossAfter)
  }

  /// The scale gradient of an AWQ-style layer (∂L/∂W divided by s_in column by column, then to the groups) equals
  /// central finite differences of the model's loss in that group's scale (unrounded, written straight into W).
  @Test func scaleGradientThroughInputScalesMatchesFiniteDifferences() throws {
    let loaded = try Self.load()
    let layers = try Self.layers(loaded, format: "int4-g32", inputScales: true)
    for l in layers {
      try loaded.model.replaceWeight(name: l.weightName, with: ScaleTuner.divide(l.packed.dequantize(), by: l.inputScales))
    }
    let window = Array(Self.tokens.prefix(64))
    for layer in [layers[1], layers[6], layers[10]] {
      let groups = try ScaleTuning.Groups(layer.packed)
      let (_, gradients) = try loaded.model.gradients(tokens: window, of: [layer.weightName])
      let g = try groups.gradient(weightGradient: ScaleTuner.divide(gradients[layer.weightName]!, by: layer.inputScales))
      let i = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
      let (q, length) = (groups.integerCodes, groups.groupLength)
      func loss(_ s: Float) throws -> Double {
        var w = layer.packed.dequantize()
        for j in (i * length)..<((i + 1) * length) { w[j] = Float(q[j]) * s }
        try loaded.model.replaceWeight(name: layer.weightName, with: ScaleTuner.divide(w, by: layer.inputScales))
        return try loaded.model.meanNLL(tokens: window)
      }
      let (s0, h) = (groups.scales[i], abs(groups.scales[i]) * 0.02)
      let difference = (try loss(s0 + h) - loss(s0 - h)) / Double(2 * h)
      _ = try loss(s0)
      #expect(abs(difference - Double(g[i])) <= 0.05 * abs(difference), "\(layer.weightName) group \(i): \(g[i]) vs \(difference)")
    }
  }

  /// Zero steps tune nothing: the same bytes, the same loss before and after. Layers of other formats run
  /// dequantized but are not returned.
  @Test func zeroStepsAndOtherFormats() throws {
    let loaded = try Self.load()
    var layers = try Self.layers(loaded, format: "int4-g32")
    let q4 = try quantize(
      loaded.file.tensor(named: layers[0].weightName).storage, rows: layers[0].packed.rows, columns: layers[0].packed.columns,
      format: .ggml(.q4_0))
    layers[0].packed = q4
    let result = try ScaleTuner.tune(loaded.model, layers: layers, tokens: Self.tokens, bos: 256, options: .init(steps: 0))
    #expect(result.lossAfter == result.lossBefore && result.stepLosses.isEmpty && result.tunedLayers == layers.count - 1)
    #expect(result.tuned[layers[0].weightName] == nil)
    for layer in layers.dropFirst() { #expect(result.tuned[layer.weightName] == layer.packed) }
    #expect(try loaded.model.weight(named: layers[0].weightName) == q4.dequantize())
  }

  /// Windows: BOS + slices of length − 1, a trailing partial slice dropped unless it is the only one.
  @Test func windowsAreBOSPlusSlices() throws {
    let w = try ScaleTuner.windows(of: [9] + Array(0..<10), bos: 9, length: 4)
    #expect(w == [[9, 0, 1, 2], [9, 3, 4, 5], [9, 6, 7, 8]])
    #expect(try ScaleTuner.windows(of: [9, 1, 2], bos: 9, length: 8) == [[9, 1, 2]])
    #expect(try ScaleTuner.windows(of: Array(0..<6), bos: nil, length: 3) == [[0, 1, 2], [3, 4, 5]])
    #expect(throws: PlanValidationError.self) { try ScaleTuner.windows(of: [9], bos: 9, length: 8) }
  }

  @Test func badOptionsAreTypedErrors() throws {
    let loaded = try Self.load()
    let layers = try Self.layers(loaded, format: "int4-g32")
    for options in [ScaleTuner.Options(steps: -1), .init(steps: 3, learningRate: 0), .init(steps: 3, learningRate: .nan)] {
      #expect(throws: PlanValidationError.self) {
        try ScaleTuner.tune(loaded.model, layers: layers, tokens: Self.tokens, bos: 256, options: options)
      }
    }
  }
}
