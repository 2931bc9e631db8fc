import Engine
import Foundation
@testable import Pipeline
import Quantization
import Testing
import Validation
import _TestSupport

/// A plan run packed against its reference twin, the dense model holding `dequantize(quantize(W))`.
@Suite struct PackedModelTests {
  static var tiny: String { TestModels.repositoryRoot + "/fixtures/tiny-llama" }
  static let window = [256] + (0..<47).map { ($0 * 37 + 11) % 256 }

  /// Every layer of the tiny model in `format`.
  static func formats(_ loaded: LoadedModel, _ format: String) throws -> [String: QuantFormat] {
    let f = try QuantFormat(parsing: format)
    return Dictionary(uniqueKeysWithValues: loaded.model.linearLayers.map { ($0.name, f) })
  }

  /// The same formats as dense fake quantization, with the calibration `PackedModel.install` chooses.
  static func fakeQuantized(_ formats: [String: QuantFormat]) throws -> LoadedModel {
    let dense = try LoadedModel.load(path: tiny)
    for layer in dense.model.linearLayers {
      let w = try dense.file.tensor(named: layer.weightName).storage
      let format = formats[layer.name]!
      let method = try EngineSensitivityModel<Float>.chooseCalibration(w, rows: layer.outFeatures, columns: layer.inFeatures, format: format)
      try dense.model.replaceWeight(
        name: layer.weightName,
        with: quantizeDequantize(w, rows: layer.outFeatures, columns: layer.inFeatures, format: format, calibration: method ?? .minMax))
    }
    return dense
  }

  @Test(arguments: ["int4-g32", "q4_0", "q8_0", "int3-g64-asym", "f16"])
  func floatActivationsEqualFakeQuantization(format: String) throws {
    let packed = try LoadedModel.load(path: Self.tiny)
    let formats = try Self.formats(packed, format)
    try PackedModel(packed, activations: .f32).install(formats)
    #expect(packed.model.installedOperatorCount == 14 && packed.model.releasedWeightNames.count == 14)
    let reference = try Self.fakeQuantized(formats)
    let a = try packed.model.logits(tokens: Self.window).storage, b = try reference.model.logits(tokens: Self.window).storage
    let worst = zip(a, b).map { abs($0 - $1) }.max()!
    let scale = b.map(abs).max()!
    #expect(worst <= 1e-5 * scale, "\(format): max |Δlogit| \(worst) of \(scale)")
  }

  @Test(arguments: ["int4-g32", "q4_0", "q4_1", "q5_0", "q8_0", "int8", "int2-g64-asym"])
  func int8ActivationsStayCloseToFakeQuantization(format: String) throws {
    let packed = try LoadedModel.load(path: Self.tiny)
    let formats = try Self.formats(packed, format)
    try PackedModel(packed, activations: .int8).install(formats)
    let reference = try Self.fakeQuantized(formats)
    let a = try packed.model.meanNLL(tokens: Self.window), b = try reference.model.meanNLL(tokens: Self.window)
    // Per-token int8 activations: relative error ≤ 1/254 per value, a few thousandths of a nat over the model.
    #expect(abs(a - b) < 0.02, "\(format): NLL \(a) packed vs \(b) fake-quantized")
    #expect(throws: EngineError.self) { _ = try packed.model.gradients(tokens: Self.window, of: [packed.model.linearWeightNames[0]]) }
  }

  @Test func nf4HasNoInt8KernelAndSaysSo() throws {
    let packed = try LoadedModel.load(path: Self.tiny)
    #expect(throws: PlanValidationError.self) { try PackedModel(packed, activations: .int8).install(try Self.formats(packed, "nf4-g32")) }
    try PackedModel(packed, activations: .f32).install(try Self.formats(packed, "nf4-g32"))
  }

  /// SmolLM2's Q4_1 file run from its stored types with float activations is the dequantized model: the same NLL on
  /// the P&P window (this also checks that the Q/K rows were moved back to HF order block row by block row).
  @Test func smolLM2StoredTypesPackedEqualTheDequantizedModel() throws {
    try #require(TestModels.exists(TestModels.smolLM2Path), "\(TestModels.missing(TestModels.smolLM2Path))")
    let ids = try String(contentsOfFile: TestModels.sharedData + "/pp-window-ids.txt", encoding: .utf8)
      .split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { Int($0) }
    let window = Array(ids.prefix(128))
    let dense = try LoadedModel.load(path: TestModels.smolLM2Path)
    let reference = try dense.model.meanNLL(tokens: window)
    let packed = try LoadedModel.load(path: TestModels.smolLM2Path)
    try PackedModel(packed, activations: .f32).installFileTypes()
    #expect(packed.model.hasEmbeddingSource && packed.model.installedOperatorCount == 211)
    let f32 = try packed.model.meanNLL(tokens: window)
    #expect(abs(f32 - reference) < 1e-4, "packed f32 \(f32) vs dense \(reference)")
    // Int8 activations over the whole 512-token window. Over 128 tokens their mean NLL moved by a few hundredths
    // when only the kernels' Float rounding changed (SmolLM2's residual reaches |x| ≈ 25,000, so a code that flips
    // at a rounding boundary in such a 32-value block moves by a whole step of that block's scale): dense + 0.0145
    // with the former row-at-a-time AVX2 kernel, + 0.0162 with the portable table, − 0.0223 with the octet kernel,
    // whose GEMM outputs equal the portable table's on every call of that pass to about 1e-7 relative. Over 512
    // tokens: + 0.0070 (former AVX2) and − 0.0032 (octet), both well inside the bound.
    // This model is loaded without ever expanding its packed layers (`load(path:deferring:)`): every plannable
    // matrix starts released and is then installed from the file.
    let long = Array(ids.prefix(512))
    let denseLong = try dense.model.meanNLL(tokens: long)
    let int8 = try LoadedModel.load(path: TestModels.smolLM2Path) {
      try PackedModel.storedTypeLayers(path: TestModels.smolLM2Path, configuration: $0)
    }
    #expect(int8.model.releasedWeightNames.count == 211)
    try PackedModel(int8, activations: .int8).installFileTypes()
    let q8 = try int8.model.meanNLL(tokens: long)
    #expect(abs(q8 - denseLong) < 0.02, "packed int8 \(q8) vs dense \(denseLong) over \(long.count) tokens")
  }
}
