import Allocation
import Engine
import Foundation
import Quantization
import TensorCore
import Validation

/// Reading a PLAN.json and checking it against the model it is applied to.
public enum PlanFile {
  /// The plan in `path`, checked as far as the document alone allows (`decode(_:source:)`).
  /// - Throws: `FileCheckError` for a missing file; `AllocationError.badPlanFile` naming the file, the JSON path and
  ///   the (shortened) value for a malformed or inconsistent plan.
  public static func read(_ path: String, option: String = "PLAN.json") throws -> PlanDocument {
    try FileChecks.checkInput(option: option, path: path)
    guard let data = FileManager.default.contents(atPath: path) else {
      throw FileCheckError(.missingInput, option: option, path: path, "cannot be read")
    }
    return try decode(data, source: "\(option) '\(path)'")
  }

  /// The plan in `data`: Allocation's `PlanDocument.decode(_:source:)` (JSON, version, duplicate keys, bytes and
  /// totals), then what the formats' grammar and this build's names tell: `target` is a `Target`, each layer's
  /// `quantizer` a `QuantizerMethod` and its `format` a name of the grammar whose nominal bits, group size and
  /// symmetry agree with the layer's `bits`, `group_size` and `symmetric` where given (a per-channel or float
  /// format leaves the group size open: the document does not say how long a row is).
  /// - Parameter source: how messages name the document (`PLAN.json 'plan.json'`, `RUN.h5 'r.h5': /plan/document`).
  /// - Throws: `AllocationError.badPlanFile`, one line starting with `source`.
  public static func decode(_ data: Data, source: String) throws(AllocationError) -> PlanDocument {
    let document = try PlanDocument.decode(data, source: source)
    func fail(_ message: String) -> AllocationError { AllocationError(.badPlanFile, "\(source): \(message)") }
    if let target = document.target, Target(rawValue: target) == nil {
      throw fail(
        "target '\(PlanDocument.excerpt(target))' is not a runtime this build knows "
          + "(\(Target.names))")
    }
    for (name, layer) in document.layers.sorted(by: { $0.key < $1.key }) {
      let key = PlanDocument.layerKey(name)
      if let quantizer = layer.quantizer, QuantizerMethod(rawValue: quantizer) == nil {
        throw fail(
          "\(key).quantizer '\(PlanDocument.excerpt(quantizer))' is not a quantizer this build knows "
            + "(\(QuantizerMethod.names))")
      }
      let format: QuantFormat
      do { format = try QuantFormat(parsing: layer.format) } catch {
        // The grammar's message quotes the name; only a short name is worth repeating.
        let why = layer.format.count <= 64 ? ": \(error)" : ""
        throw fail("\(key).format '\(PlanDocument.excerpt(layer.format))' is not a format name\(why)")
      }
      if let contradiction = contradiction(format, bits: layer.bits, groupSize: layer.groupSize, symmetric: layer.symmetric) {
        throw fail("\(key).\(contradiction)")
      }
    }
    return document
  }

  /// How `bits`, `groupSize` and `symmetric` (each optional, as PLAN.json and PROBLEM.json give them) contradict
  /// `format`, e.g. `bits 2 contradicts its format int5-g64 (5 bits)`; nil when they agree. Bits are compared with
  /// `nominalBits` to a relative 1e-9 (ternary's log₂ 3 is written with every digit), the group size only when the
  /// format has one (a per-channel group is a row, whose length the document does not give).
  static func contradiction(_ format: QuantFormat, bits: Double?, groupSize: Int?, symmetric: Bool?) -> String? {
    if let bits, !(abs(bits - format.nominalBits) <= 1e-9 * format.nominalBits) {
      return "bits \(PlanDocument.number(bits)) contradicts its format \(format.name) (\(PlanDocument.number(format.nominalBits)) bits)"
    }
    if let groupSize, let formatGroup = format.groupSize, groupSize != formatGroup {
      return "group_size \(groupSize) contradicts its format \(format.name) (groups of \(formatGroup))"
    }
    if let symmetric, symmetric != format.symmetric {
      return "symmetric \(symmetric) contradicts its format \(format.name) (\(format.symmetric ? "symmetric" : "asymmetric"))"
    }
    return nil
  }

  /// The plan's layers as formats, checked against the model.
  /// - Parameters:
  ///   - modelSHA256: the model's checksum; a plan that records another is refused.
  ///   - layers: the layers a plan may name (`LlamaModel.plannableLayers`: the token embedding `model.embed_tokens`,
  ///     the linear layers, and an untied model's `lm_head`).
  /// - Throws: `PlanValidationError` `.modelMismatch`, `.unknownLayer` (naming the layer and how many blocks the model
  ///   has), `.unknownFormat` (an unparsable name, or a format the layer's shape cannot take).
  public static func formats(
    of plan: PlanDocument, path: String, modelSHA256: String, layers: [LinearLayer]
  ) throws(PlanValidationError) -> [String: QuantFormat] {
    if let sha = plan.modelSHA256, !sha.isEmpty, sha.lowercased() != modelSHA256 {
      throw PlanValidationError(
        .modelMismatch,
        "'\(path)' was made for the model with sha256 \(PlanDocument.excerpt(sha, limit: 12)), this model's is \(modelSHA256.prefix(12))…")
    }
    guard !plan.layers.isEmpty else { throw PlanValidationError(.badSettings, "'\(path)' plans no layers") }
    let byName = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, $0) })
    let blocks = (layers.filter { $0.name.hasPrefix("model.layers.") }.map(\.block).max() ?? -1) + 1
    var formats: [String: QuantFormat] = [:]
    for (name, layer) in plan.layers.sorted(by: { $0.key < $1.key }) {
      guard let l = byName[name] else {
        throw PlanValidationError(.unknownLayer, "'\(path)' names '\(PlanDocument.excerpt(name))', which the model lacks (\(blocks) blocks, \(layers.count) plannable layers)")
      }
      let format: QuantFormat
      do { format = try QuantFormat(parsing: layer.format) } catch {
        throw PlanValidationError(.unknownFormat, "'\(path)': \(PlanDocument.excerpt(name)): \(error)")
      }
      guard format.canQuantize(rows: l.outFeatures, columns: l.inFeatures) else {
        throw PlanValidationError(
          .unknownFormat, "'\(path)': \(name) [\(l.outFeatures), \(l.inFeatures)] cannot be stored as \(format.name): \(format.shapeRule)")
      }
      formats[name] = format
    }
    return formats
  }
}
