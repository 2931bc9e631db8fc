import Engine
import Foundation
@testable import Pipeline
import Quantization
import Testing
import Validation
import _TestSupport

/// SmoothQuant's `w8a8` on the tiny model: measured (its output error with int8 activations) and validated packed.
@Suite struct SmoothQuantModelTests {
  static var tiny: String { PackedModelTests.tiny }
  static let window = PackedModelTests.window
  static let calibration = [256] + (0..<63).map { ($0 * 53 + 7) % 256 }

  /// Every linear layer in `format`, with the layers' inputs captured on `calibration` (what `validate` does).
  static func install(_ format: String, activations: ActivationMode = .int8) throws -> LoadedModel {
    let loaded = try LoadedModel.load(path: tiny)
    let formats = try PackedModelTests.formats(loaded, format)
    let inputs = try PackedQuantizer.capture(loaded.model, tokens: calibration, layers: Array(formats.keys))
    try PackedModel(loaded, activations: activations).install(
      formats, quantizer: PackedQuantizer(method: { _, _ in .rtn }, inputs: inputs))
    return loaded
  }

  /// α = 0: the whole packed model's logits are plain int8's (int8 activations) bit for bit.
  @Test func alphaZeroModelIsPlainInt8() throws {
    let int8 = try Self.install("int8")
    let w8a8 = try Self.install("w8a8-a0")
    #expect(try w8a8.model.logits(tokens: Self.window).storage == int8.model.logits(tokens: Self.window).storage)
  }

  /// α = 0.5 runs packed with int8 activations and stays close to the float model; with Float activations it is the
  /// effective weights dequant(Q8ch(W·s))·s⁻¹ on Float inputs, close to the float model too.
  @Test(arguments: [ActivationMode.int8, .f32])
  func smoothedModelRuns(activations: ActivationMode) throws {
    let base = try LoadedModel.load(path: Self.tiny).model.meanNLL(tokens: Self.window)
    let w8a8 = try Self.install("w8a8", activations: activations)
    #expect(w8a8.model.installedOperatorCount == 14)
    let nll = try w8a8.model.meanNLL(tokens: Self.window)
    #expect(abs(nll - base) < 0.02, "\(activations): NLL \(nll) vs \(base)")
  }

  /// Without captured inputs the layer is refused by name.
  @Test func w8a8NeedsCalibrationInputs() throws {
    let loaded = try LoadedModel.load(path: Self.tiny)
    #expect(throws: PlanValidationError.self) {
      try PackedModel(loaded, activations: .int8).install(try PackedModelTests.formats(loaded, "w8a8"))
    }
  }

  /// `measure`'s w8a8 candidate: the output error is SmoothQuant's with int8 activations on the captured inputs
  /// (the brute-force reference), not tr(ΔW G ΔWᵀ); the weight error is that of the effective weights; at α = 0
  /// the effective weights are int8's; the embedding is not offered w8a8.
  @Test func measuredErrorIncludesTheActivations() throws {
    let loaded = try LoadedModel.load(path: Self.tiny)
    let formats = try ["int8", "w8a8-a0", "w8a8"].map { try QuantFormat(parsing: $0) }
    let model = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: Self.calibration, hvpTokenCount: 12, formats: formats,
      includesTokenEmbedding: true)
    let layer = 4  // model.layers.0.mlp.gate_proj, grouped with up_proj
    let l = model.linearLayers[layer]
    let w = try model.weights(of: layer)
    let int8 = try #require(try model.quantize(layer: layer, candidate: 0))
    let a0 = try #require(try model.quantize(layer: layer, candidate: 1))
    let smooth = try #require(try model.quantize(layer: layer, candidate: 2))
    #expect(int8.outputError == nil)
    #expect(a0.weights == int8.weights)
    let (x, n) = try model.layerInputs(of: layer)
    let up = try model.weights(of: layer + 1)
    #expect(model.linearLayers[layer + 1].name.hasSuffix("up_proj"))
    let (packed, s) = try SmoothQuant.quantize(
      w, rows: l.rows, columns: l.columns, groupWeights: [up], format: formats[2], inputs: x, inputRows: n,
      calibration: { try EngineSensitivityModel<Float>.chooseCalibration($0, rows: l.rows, columns: l.columns, format: formats[2]) ?? .minMax })
    let reference = SmoothQuant.outputErrorReference(weights: w, packed: packed, scales: s, inputs: x, inputRows: n)
    let measured = try #require(smooth.outputError)
    #expect(abs(measured - reference) <= SmoothQuantTestsTolerance.outputError * reference, "\(measured) vs \(reference)")
    #expect(smooth.weights == SmoothQuant.effectiveWeights(packed, scales: s))
    #expect(try model.quantize(layer: model.linearLayers.count - 1, candidate: 2) == nil)  // the embedding
  }
}

/// The relative tolerance of `SmoothQuant.outputError` against its reference (derived in QuantizationTests'
/// `SmoothQuantTests.outputErrorTolerance`).
enum SmoothQuantTestsTolerance {
  static let outputError = 1e-3
}
