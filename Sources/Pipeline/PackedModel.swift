#if canImport(Glibc)
  import Glibc

  /// glibc's `int malloc_trim(size_t pad)` (declared in malloc.h, which no Swift module exports).
  @_silgen_name("malloc_trim") private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
import Engine
import Foundation
import ModelIO
import Quantization
import TensorCore
import Validation

/// One installed layer: its packed tensor, the per-input-channel scales its input is divided by (AWQ; nil
/// otherwise), and the quantizer that chose its codes.
public struct PackedLayer: Sendable {
  public var packed: PackedTensor
  public var inputScales: [Float]?
  public var quantizer: QuantizerMethod

  public init(packed: PackedTensor, inputScales: [Float]?, quantizer: QuantizerMethod) {
    self.packed = packed
    self.inputScales = inputScales
    self.quantizer = quantizer
  }
}

/// Installing packed layers in a loaded model: a plan's formats, or a GGUF's own stored types.
///
/// Quantized layers are built from the model file's own values (`ModelFile.tensor(named:)`, HF row order), never
/// from the engine's buffers, so a layer whose dense copy was released can be requantized for the next plan or
/// baseline. Every installed layer releases its dense Float copy: the engine then holds the packed bytes only.
public struct PackedModel {
  /// The model whose engine receives the operators.
  public let loaded: LoadedModel
  /// Int8 or Float activations for every packed layer.
  public let activations: ActivationMode
  /// The working memory all the layers share (the engine runs them one at a time).
  let scratch = PackedGEMM.Scratch()

  public init(_ loaded: LoadedModel, activations: ActivationMode) {
    self.loaded = loaded
    self.activations = activations
  }

  /// Quantizes each layer of `formats` (module path → format) from the file's values and installs it packed.
  ///
  /// Layers: those of `LlamaModel.plannableLayers`. A linear layer or an untied `lm_head` becomes a `PackedLinear`
  /// operator. `model.embed_tokens` becomes a `PackedEmbedding` (the lookup), and for a tied model the same packed
  /// tensor is also installed as the `lm_head` operator; the dense table is released once both uses read the
  /// packed one.
  /// - Parameters:
  ///   - calibration: the range calibration of (layer, format) recorded by `measure`, or nil for the default
  ///     (the method `measure` would choose: least squared error on sampled rows; GGML and float formats have
  ///     their own fixed algorithm).
  ///   - quantizer: the quantizer per (layer, format) and the calibration inputs GPTQ and AWQ need
  ///     (`PackedQuantizer`); round to nearest by default. AWQ layers run with their input divided by the scales
  ///     (`PackedLinear`'s input scales).
  ///   - prebuilt: layers (module path → packed layer) installed as given instead of quantized, e.g. a plan's
  ///     layers with tuned scales (`ScaleTuner`); their format must be the one `formats` gives.
  ///   - installed: called with each layer's module path and what was installed (to keep a plan's tensors).
  ///   - progress: called after each layer with (done, total).
  /// - Returns: the quantizer each layer was quantized by (a method that does not apply falls back to `rtn`).
  /// - Throws: `ModelIOError` reading the file, `QuantizationError`, `PlanValidationError.noPackedKernel`, `EngineError`.
  @discardableResult
  public func install(
    _ formats: [String: QuantFormat], calibration: (String, QuantFormat) -> RangeCalibration? = { _, _ in nil },
    quantizer: PackedQuantizer = .roundToNearest, prebuilt: [String: PackedLayer] = [:],
    installed: (String, PackedLayer) -> Void = { _, _ in }, progress: (Int, Int) -> Void = { _, _ in }
  ) throws -> [String: QuantizerMethod] {
    let model = loaded.model
    let layers = model.plannableLayers.filter { formats[$0.name] != nil }
    let names = layers.map(\.name)
    var used: [String: QuantizerMethod] = [:]
    var awqSearches: [Int: AWQ.Result] = [:]
    func rangeCalibration(_ layer: LinearLayer, _ values: [Float], _ format: QuantFormat) throws -> RangeCalibration {
      if let recorded = calibration(layer.name, format) { return recorded }
      return try EngineSensitivityModel<Float>.chooseCalibration(
        values, rows: layer.outFeatures, columns: layer.inFeatures, format: format) ?? .minMax
    }
    // A weight's values as the file stores them; its mapped pages then leave the resident set (a streamed model's
    // file would otherwise stay resident page by page as every planned layer is read).
    func fileValues(_ name: String) throws -> [Float] { try loaded.file.valuesDroppingPages(ofTensor: name) }
    // The layer `i` of `layers` by its quantizer.
    func quantizeLayer(_ i: Int) throws -> PackedLayer {
      let layer = layers[i]
      let format = formats[layer.name]!
      let values = try fileValues(layer.weightName)
      if format.isW8A8 { return try smoothQuantLayer(i, values) }
      let method = try rangeCalibration(layer, values, format)
      // AWQ: the layers reading this one's input that are also planned with AWQ share one search.
      let awq = { () throws -> (AWQ.Result, Int)? in
        let group = (LayerQuantizer.awqGroup(of: layer.name, in: names) ?? [i]).filter {
          quantizer.method(names[$0], formats[names[$0]]!) == .awq && AWQ.supports(formats[names[$0]]!)
        }
        guard let first = group.first, let index = group.firstIndex(of: i), let x = quantizer.inputs[layer.name] else {
          return nil
        }
        if let done = awqSearches[first] { return (done, index) }
        var members: [AWQ.Member] = []
        for g in group {
          let l = layers[g]
          let f = formats[l.name]!
          let w = g == i ? values : try fileValues(l.weightName)
          members.append(AWQ.Member(weights: w, rows: l.outFeatures, format: f, calibration: try rangeCalibration(l, w, f)))
        }
        let result = try AWQ.search(members: members, columns: layer.inFeatures, inputs: x.values, inputRows: x.rows)
        awqSearches[first] = result
        return (result, index)
      }
      let (packed, scales, usedMethod) = try quantizer.quantize(
        values, name: layer.name, rows: layer.outFeatures, columns: layer.inFeatures, format: format,
        calibration: method, awq: awq)
      return PackedLayer(packed: packed, inputScales: scales, quantizer: usedMethod)
    }
    // SmoothQuant's `w8a8` (`SmoothQuant`): s from the layer's captured inputs and the column maxima of the
    // layers reading the same input that are planned in the same format (as `measure` takes them when the whole
    // group is), Q8ch(W·diag(s)) with `int8`'s range calibration of W·diag(s), and s applied to the input by the
    // operator (the same per-layer input scale AWQ's layers use; folding it into the norm is equal to rounding).
    func smoothQuantLayer(_ i: Int, _ values: [Float]) throws -> PackedLayer {
      let layer = layers[i]
      let format = formats[layer.name]!
      guard layer.name != model.embeddingLayer.name else {
        throw PlanValidationError(
          .unknownFormat, "\(layer.name): \(format.name) quantizes a layer's input; the token embedding is a lookup")
      }
      guard let x = quantizer.inputs[layer.name] else {
        throw PlanValidationError(
          .badSettings, "\(layer.name): \(format.name) needs the layer's calibration inputs (give --calib FILE)")
      }
      let others = try (LayerQuantizer.awqGroup(of: layer.name, in: names) ?? []).filter {
        $0 != i && formats[names[$0]] == format
      }.map { try fileValues(layers[$0].weightName) }
      let (packed, scales) = try SmoothQuant.quantize(
        values, rows: layer.outFeatures, columns: layer.inFeatures, groupWeights: others, format: format,
        inputs: x.values, inputRows: x.rows, calibration: { try rangeCalibration(layer, $0, format) })
      return PackedLayer(packed: packed, inputScales: scales.allSatisfy { $0 == 1 } ? nil : scales, quantizer: .rtn)
    }
    for (i, layer) in layers.enumerated() {
      let format = formats[layer.name]!
      let built: PackedLayer
      if let given = prebuilt[layer.name] {
        guard given.packed.format == format, given.packed.rows == layer.outFeatures, given.packed.columns == layer.inFeatures else {
          throw PlanValidationError(
            .unknownFormat,
            "\(layer.name): the packed layer given is \(given.packed.format.name) [\(given.packed.rows), \(given.packed.columns)], "
              + "the plan asks for \(format.name) [\(layer.outFeatures), \(layer.inFeatures)]")
        }
        built = given
      } else {
        built = try quantizeLayer(i)
      }
      installed(layer.name, built)
      let (packed, scales) = (built.packed, built.inputScales)
      used[layer.name] = built.quantizer
      if layer.name == model.embeddingLayer.name {
        let tied = model.configuration.tied
        try model.installEmbedding(PackedEmbedding(packed), releaseDenseWeight: !tied)
        if tied {
          try model.installOperator(
            try PackedLinear(packed, activations: activations, scratch: scratch), forLayer: LlamaModel<Float>.lmHeadSlot,
            releaseDenseWeight: true)
        }
      } else {
        try model.installOperator(
          try Self.linear(packed, inputScales: scales, activations: activations, scratch: scratch), forLayer: layer.name,
          releaseDenseWeight: true)
      }
      progress(i + 1, layers.count)
    }
    returnFreedMemory()
    return used
  }

  /// The operator of a packed layer whose input is divided by `inputScales` first (AWQ), or as it is.
  static func linear(
    _ packed: PackedTensor, inputScales: [Float]?, activations: ActivationMode, scratch: PackedGEMM.Scratch
  ) throws -> PackedLinear {
    try PackedLinear(packed, activations: activations, scratch: scratch, inputScale: inputScales)
  }

  /// Hands the pages of the released dense weights back to the system (glibc keeps freed heap memory otherwise,
  /// and the resident size would still count the Float model).
  func returnFreedMemory() {
    #if canImport(Glibc)
      _ = glibcMallocTrim(0)
    #endif
  }

  /// Installs every linear layer, the LM head and the token embedding in the GGUF's own stored type (f32 tensors
  /// stay dense): what llama.cpp runs when given the file. Q/K rows are moved back to HF order block row by block
  /// row (a row of a GGML tensor is whole blocks, so no value is re-encoded).
  /// - Throws: `PlanValidationError.badSettings` for a model that is not a GGUF, `ModelIOError`, `QuantizationError`.
  public func installFileTypes() throws {
    guard case .gguf(let gguf) = loaded.file else {
      throw PlanValidationError(.badSettings, "the llama-perplexity protocol runs a GGUF's stored types; '\(loaded.file.path)' is not a GGUF file")
    }
    for layer in loaded.model.linearLayers {
      if let packed = try storedTensor(gguf, hfName: layer.weightName) {
        try loaded.model.installOperator(try PackedLinear(packed, activations: activations, scratch: scratch), forLayer: layer.name, releaseDenseWeight: true)
      }
    }
    let headName = loaded.config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"
    let head = try storedTensor(gguf, hfName: headName)
    if let head {
      try loaded.model.installOperator(
        try PackedLinear(head, activations: activations, scratch: scratch), forLayer: LlamaModel<Float>.lmHeadSlot, releaseDenseWeight: !loaded.config.tieWordEmbeddings)
    }
    // A tied head is the table itself: one packed copy serves both the lookup and the head.
    let table = loaded.config.tieWordEmbeddings ? head : try storedTensor(gguf, hfName: "model.embed_tokens.weight")
    if let table {
      try loaded.model.installEmbedding(PackedEmbedding(table), releaseDenseWeight: head != nil || !loaded.config.tieWordEmbeddings)
    }
    gguf.source.dropResidentPages()  // the packed copies hold what is needed; the file's pages need not stay resident
    returnFreedMemory()
  }

  /// The layers `installFileTypes` installs packed (module paths of `plannableLayers`): those whose GGUF tensor is
  /// stored in a type other than f32 (none for an HF folder). Given to `LoadedModel.load(path:deferring:)`, their
  /// Float values are never built.
  public static func storedTypeLayers(path: String, configuration: LlamaConfiguration) throws -> Set<String> {
    guard case .gguf(let gguf) = try ModelFile(path: path) else { return [] }
    var names: Set<String> = []
    for layer in LlamaModel<Float>.plannableLayers(of: configuration) {
      let ggufName = NameMapping.ggufName(forHF: layer.weightName) ?? layer.weightName
      if let info = gguf.info(named: ggufName), info.type.name.lowercased() != "f32" { names.insert(layer.name) }
    }
    return names
  }

  /// The GGUF tensor in its stored type with rows in HF order, or nil when it is stored as f32.
  func storedTensor(_ gguf: GGUFFile, hfName: String) throws -> PackedTensor? {
    let ggufName = NameMapping.ggufName(forHF: hfName) ?? hfName
    guard let info = gguf.info(named: ggufName) else {
      throw ModelIOError(.missingTensor, "no tensor '\(hfName)' (GGUF '\(ggufName)')", path: loaded.file.path)
    }
    let format = try QuantFormat(parsing: info.type.name.lowercased())
    if format == .f32 { return nil }
    let shape = info.shape
    guard shape.count == 2 else { throw ModelIOError(.badShape, "'\(ggufName)' has shape \(shape), a matrix expected", path: loaded.file.path) }
    let (rows, columns) = (shape[0], shape[1])
    var bytes = Array(try gguf.rawBytes(of: info))
    if let projection = NameMapping.ropeProjection(hfName: hfName) {
      let heads = projection == .query ? loaded.config.headCount : loaded.config.kvHeadCount
      bytes = try Self.unpermuteRows(bytes, rows: rows, heads: heads)
    }
    return try PackedTensor(format: format, rows: rows, columns: columns, bytes: bytes)
  }

  /// GGUF's interleaved-RoPE row order back to HF's (`NameMapping.ggufRows`), moving whole stored rows.
  static func unpermuteRows(_ bytes: [UInt8], rows: Int, heads: Int) throws -> [UInt8] {
    let rowBytes = bytes.count / rows
    var out = bytes
    for (hf, gguf) in try NameMapping.ggufRows(rows: rows, heads: heads).enumerated() {
      out.replaceSubrange(hf * rowBytes..<(hf + 1) * rowBytes, with: bytes[gguf * rowBytes..<(gguf + 1) * rowBytes])
    }
    return out
  }
}
