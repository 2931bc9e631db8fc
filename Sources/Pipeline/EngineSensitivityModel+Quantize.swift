import Engine
import Foundation
import Quantization
import Sensitivity

/// Quantizing one layer to one candidate with the best range calibration for that layer.
extension EngineSensitivityModel {
  /// What `/calibration/method` records for formats whose range is not chosen by a calibration method: f16/bf16
  /// rounding, the GGML block types' own scale search, ternary's absmean scale.
  public static var fixedCalibrationName: String { "fixed" }

  /// Rows of a layer on which the calibration methods are compared (evenly spaced; all rows when fewer).
  public static var calibrationSampleRows: Int { 16 }

  /// `Q(W)` of layer `layer` in candidate `candidate`, with its exact bytes, the calibration and the quantizer
  /// used; `nil` when the format does not fit the layer's shape.
  ///
  /// Range calibration: for integer and nf4 formats, every method of `RangeCalibration.standard` (min-max,
  /// percentile 99.99, MSE clip search, KL) quantizes `calibrationSampleRows` evenly spaced rows of the layer, the
  /// method with the least `‖Q(W) − W‖²` on them is chosen (ties to the earlier method, as `RangeCalibration.compare`
  /// ranks), and the whole layer is quantized with it. Comparing on all rows would cost ~3× the whole-layer
  /// quantization (the percentile sort and the KL histogram are per tensor; on SmolLM2 they took 5.7 s and 4.1 s
  /// per 21 layers for the default candidates, against 5.3 s for the MSE search, which won on every one of those
  /// 231 pairs). Other formats have one fixed algorithm (`fixedCalibrationName`).
  ///
  /// Quantizer (`quantizer`): round to nearest with that calibration; GPTQ with the layer's input Gram matrix
  /// `G = XᵀX/n` over the calibration tokens (`GPTQ.quantize`, the same calibration finding each group's scale),
  /// kept only where its output error is below round to nearest's (`GuardedGPTQ`; else the layer records `rtn`);
  /// AWQ with the scales searched over the layer's input group (`LayerQuantizer.awqGroup`: q/k/v, gate/up, or the
  /// layer alone) at this candidate, every member in this format; `best` runs each that applies and keeps the one
  /// with the least output error `tr(ΔW G ΔWᵀ)` (round to nearest on ties). A quantizer that does not take the
  /// format (GPTQ and AWQ on f16, bf16, nf4, ternary) or the layer (the token embedding, a lookup) falls back to
  /// round to nearest, and the result says so (`QuantizedWeights.quantizer`).
  ///
  /// Asked for candidate 0 (the per-layer stage asks in column order), all candidates of the layer are quantized
  /// at once on both cores and kept until the next layer; other requests (the audit's) quantize just one.
  /// - Throws: `QuantizationError` from the quantizer (a non-finite weight).
  public func quantize(layer: Int, candidate: Int) throws -> QuantizedWeights? {
    if let cached = quantizedLayer, cached.layer == layer { return try cached.results[candidate].get() }
    if candidate != 0 { return try quantizeOne(layer: layer, candidate: candidate) }
    let w = try weights(of: layer)
    let context = try quantizerContext(layer: layer)
    // w8a8 reads the captured inputs whatever the quantizer: capture them here, not racing in the workers.
    if formats.contains(where: \.isW8A8) && !Self.isEmbedding(linearLayers[layer]) { _ = try layerInputs(of: layer) }
    let results = UnsafeMutableBufferPointer<Result<QuantizedWeights?, any Error>>.allocate(capacity: formats.count)
    // Deinitialized before it is freed: each slot holds a reference to its candidate's Q(W) (`Array(results)`
    // below takes its own), and freeing the slots without releasing those leaked every candidate of every layer
    // (4.6 GB over SmolLM2's 210 layers with the 12 default candidates).
    defer {
      results.deinitialize()
      results.deallocate()
    }
    // Each worker reads only immutable state (the layer list, the formats, `w`, the context) and writes its own
    // slot; the AWQ group cache has its own lock.
    nonisolated(unsafe) let (slots, model) = (results, self)
    DispatchQueue.concurrentPerform(iterations: formats.count) { c in
      (slots.baseAddress! + c).initialize(
        to: Result { try model.quantizeOne(layer: layer, candidate: c, weights: w, context: context) })
    }
    quantizedLayer = (layer, Array(results))
    return try results[candidate].get()
  }

  /// Whether `layer` is the token embedding (`model.embed_tokens`), which a target may offer other formats.
  static func isEmbedding(_ layer: MeasuredRun.Layer) -> Bool { layer.name == LlamaModel<Scalar>.embeddingSlot }

  /// What the input-aware quantizers need of one layer, gathered once for all its candidates.
  struct QuantizerContext: @unchecked Sendable {
    /// The layer's captured inputs `X` `[n, in]` and `n`.
    var inputs: [Float]
    var rows: Int
    /// `G = XᵀX/n` `[in, in]`: GPTQ's Hessian, and the output error `best` and GPTQ's guard compare by.
    var gram: GramMatrix?
    /// The importance weights llama-quantize would read for the layer (`ImportanceQuantizer.weights` of
    /// `diag(XᵀX)/n`), when `imatrix` is one of the methods.
    var importance: [Float]?
  }

  /// The context of `layer` for the configured quantizer; `nil` for round to nearest alone. The token embedding (a
  /// lookup table) gets one only for `imatrix` when it is tied, from the LM head's inputs, as `bitplan export
  /// --imatrix` writes its entry; GPTQ and AWQ never apply to it.
  func quantizerContext(layer: Int) throws -> QuantizerContext? {
    let methods = quantizer.methods
    if methods == [.rtn] { return nil }
    if Self.isEmbedding(linearLayers[layer]) {
      guard methods.contains(.imatrix), try tableLookup(of: layer)?.isAlsoProjection == true else { return nil }
    }
    let (x, n) = try layerInputs(of: layer)
    let columns = linearLayers[layer].columns
    let gram = try GramMatrix(inputs: x, rows: n, columns: columns)
    let importance = methods.contains(.imatrix) ? PackedQuantizer.importance(inputs: x, rows: n, columns: columns) : nil
    return QuantizerContext(inputs: x, rows: n, gram: gram, importance: importance)
  }

  /// One candidate of one layer (see `quantize(layer:candidate:)`).
  func quantizeOne(
    layer: Int, candidate: Int, weights given: [Float]? = nil, context given2: QuantizerContext?? = nil
  ) throws -> QuantizedWeights? {
    let l = linearLayers[layer]
    let format = formats[candidate]
    let isEmbedding = Self.isEmbedding(l)
    guard target.canStore(format, rows: l.rows, columns: l.columns, isEmbedding: isEmbedding) else { return nil }
    if format.isW8A8 {
      // A lookup has no activations to quantize: the token embedding is not offered w8a8.
      if isEmbedding { return nil }
      return try w8a8Weights(layer: layer, candidate: candidate, weights: try given ?? weights(of: layer))
    }
    let w = try given ?? weights(of: layer)
    let context = try given2 ?? quantizerContext(layer: layer)
    let method = try Self.chooseCalibration(w, rows: l.rows, columns: l.columns, format: format)
    let bytes = target.storedBytes(format, rows: l.rows, columns: l.columns, isEmbedding: isEmbedding)
    let calibrationName = method?.description ?? Self.fixedCalibrationName
    var best: (weights: [Float], quantizer: QuantizerMethod, error: Double)?
    for m in quantizer.methods {
      let q: [Float]
      switch m {
      case .rtn:
        q = try quantizeDequantize(w, rows: l.rows, columns: l.columns, format: format, calibration: method ?? .minMax)
      case .gptq:
        guard !isEmbedding, let context, let gram = context.gram, GPTQ.supports(format) else { continue }
        let (packed, used) = try GuardedGPTQ.quantize(
          w, rows: l.rows, columns: l.columns, format: format, gram: gram, calibration: method ?? .minMax,
          options: gptqOptions)
        if quantizer.methods.count == 1 {
          best = (packed.dequantize(), used, 0)
          continue
        }
        q = packed.dequantize()
      case .awq:
        guard !isEmbedding, let context, AWQ.supports(format) else { continue }
        let (weights, used) = try awqWeights(layer: layer, candidate: candidate, weights: w, context: context)
        if quantizer.methods.count == 1 {
          best = (weights, used, 0)
          continue
        }
        q = weights
      case .imatrix:
        guard let weights = context?.importance, ImportanceQuantizer.supports(format) else { continue }
        q = try ImportanceQuantizer.quantize(w, rows: l.rows, columns: l.columns, format: format, weights: weights).dequantize()
      }
      guard quantizer.methods.count > 1, let gram = context?.gram else {
        best = (q, m, 0)
        continue
      }
      let error = try gram.outputError(delta: zip(q, w).map { $0 - $1 }, rows: l.rows)
      if best == nil || error < best!.error { best = (q, m, error) }
    }
    // A single input-aware method that does not apply: round to nearest, recorded as such.
    if best == nil {
      let q = try quantizeDequantize(w, rows: l.rows, columns: l.columns, format: format, calibration: method ?? .minMax)
      best = (q, .rtn, 0)
    }
    return QuantizedWeights(weights: best!.weights, bytes: bytes, calibration: calibrationName, quantizer: best!.quantizer.rawValue)
  }

  /// SmoothQuant's `w8a8` of `layer` (`SmoothQuant`): s from the layer's calibration inputs and the column maxima
  /// of every layer reading the same input (`LayerQuantizer.awqGroup`, so one s could be folded into the norm),
  /// Q8ch(W·diag(s)) with the range calibration `int8` would choose for W·diag(s) (so α = 0 gives `int8`'s codes),
  /// the effective weights dequant·diag(s)⁻¹ (their ΔW gives the weight error), and the output error with per-token
  /// int8 activations, run through the packed int8 GEMM on the calibration inputs. Every quantizer setting runs
  /// this one algorithm (recorded `rtn`: the codes are round to nearest of W·diag(s)).
  func w8a8Weights(layer: Int, candidate: Int, weights w: [Float]) throws -> QuantizedWeights {
    let l = linearLayers[layer]
    let format = formats[candidate]
    let (x, n) = try layerInputs(of: layer)
    let names = linearLayers.map(\.name)
    let others = try (LayerQuantizer.awqGroup(of: l.name, in: names) ?? []).filter { $0 != layer }.map { try weights(of: $0) }
    var calibrationName = Self.fixedCalibrationName
    let (packed, scales) = try SmoothQuant.quantize(
      w, rows: l.rows, columns: l.columns, groupWeights: others, format: format, inputs: x, inputRows: n,
      calibration: { scaled in
        let method = try Self.chooseCalibration(scaled, rows: l.rows, columns: l.columns, format: format) ?? .minMax
        calibrationName = method.description
        return method
      })
    let error = try SmoothQuant.outputError(weights: w, packed: packed, scales: scales, inputs: x, inputRows: n)
    return QuantizedWeights(
      weights: SmoothQuant.effectiveWeights(packed, scales: scales),
      bytes: target.storedBytes(format, rows: l.rows, columns: l.columns), calibration: calibrationName,
      quantizer: QuantizerMethod.rtn.rawValue, outputError: error)
  }

  /// AWQ's effective weights `dequant(Q(W·diag(s)))·diag(s)⁻¹` of `layer` in candidate `candidate`, with `s`
  /// searched over the layer's input group (`LayerQuantizer.awqGroup`), each member that can store the format in
  /// it. A group's search is done once per candidate and kept for its other members (`awqCache`).
  /// Round to nearest's where AWQ's codes would not lower this layer's own output error (`AWQ.Result.choice`).
  func awqWeights(
    layer: Int, candidate: Int, weights w: [Float], context: QuantizerContext
  ) throws -> ([Float], QuantizerMethod) {
    let format = formats[candidate]
    let names = linearLayers.map(\.name)
    let group = (LayerQuantizer.awqGroup(of: names[layer], in: names) ?? [layer]).filter {
      target.canStore(format, rows: linearLayers[$0].rows, columns: linearLayers[$0].columns, isEmbedding: false)
    }
    let key = "\(group.first!) \(candidate)"
    func chosen(_ result: AWQ.Result, _ index: Int) -> ([Float], QuantizerMethod) {
      let (packed, scales) = result.choice(member: index)
      guard let scales else { return (packed.dequantize(), .rtn) }
      return (AWQ.effectiveWeights(packed, scales: scales), .awq)
    }
    if let cached = awqCache.value(key), let index = group.firstIndex(of: layer) { return chosen(cached, index) }
    var members: [AWQ.Member] = []
    for g in group {
      let gw = g == layer ? w : try weights(of: g)
      let method = try Self.chooseCalibration(gw, rows: linearLayers[g].rows, columns: linearLayers[g].columns, format: format)
      members.append(AWQ.Member(weights: gw, rows: linearLayers[g].rows, format: format, calibration: method ?? .minMax))
    }
    let result = try AWQ.search(
      members: members, columns: linearLayers[layer].columns, inputs: context.inputs, inputRows: context.rows)
    awqCache.store(key, result, keepingGroup: group.first!)
    return chosen(result, group.firstIndex(of: layer)!)
  }

  /// Whether `format` takes a range calibration (integer codes with a per-group scale, and nf4's absmax).
  public static func takesCalibration(_ format: QuantFormat) -> Bool {
    switch format.scheme {
    case .integer, .nf4: true
    default: false
    }
  }

  /// The calibration with the least squared error on the sampled rows, or `nil` for a format that takes none.
  static func chooseCalibration(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat
  ) throws -> RangeCalibration? {
    guard takesCalibration(format) else { return nil }
    let sampled = sampleRows(rows: rows)
    var sample: [Float] = []
    sample.reserveCapacity(sampled.count * columns)
    for r in sampled { sample += weights[r * columns..<(r + 1) * columns] }
    let ranked = try RangeCalibration.compare(sample, rows: sampled.count, columns: columns, format: format)
    return ranked.first!.method
  }

  /// `calibrationSampleRows` evenly spaced row indices `⌊k · rows / s⌋`, or every row when there are fewer.
  static func sampleRows(rows: Int) -> [Int] {
    let s = calibrationSampleRows
    return rows <= s ? Array(0..<rows) : (0..<s).map { $0 * rows / s }
  }
}
