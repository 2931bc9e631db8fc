import Allocation
import Engine
import Foundation
import Quantization
import TensorCore
import Validation

/// Reading a PLAN.json and checking it against the model it is applied to.
public enum PlanFile {
  /// The plan in `path`.
  /// - Throws: `FileCheckError` for a missing file, `PlanValidationError.badSettings` naming the file and the JSON path
  ///   of the first bad value.
  public static func read(_ path: String, option: String = "PLAN.json") throws -> PlanDocument {
    try FileChecks.checkInput(option: option, path: path)
    guard let data = FileManager.default.contents(atPath: path) else {
      throw FileCheckError(.missingInput, option: option, path: path, "cannot be read")
    }
    do {
      return try JSONDecoder().decode(PlanDocument.self, from: data)
    } catch let DecodingError.dataCorrupted(context) {
      let detail = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
      throw PlanValidationError(.badSettings, "\(option) '\(path)': not valid JSON (\(detail ?? context.debugDescription))")
    } catch let DecodingError.keyNotFound(key, context) {
      throw PlanValidationError(.badSettings, "\(option) '\(path)': \(jsonPath(context.codingPath + [key])) is missing; not a BitPlan plan")
    } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
      throw PlanValidationError(.badSettings, "\(option) '\(path)': \(jsonPath(context.codingPath)): \(context.debugDescription)")
    } catch {
      throw PlanValidationError(.badSettings, "\(option) '\(path)': \(error)")
    }
  }

  static func jsonPath(_ keys: [any CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
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
        "'\(path)' was made for the model with sha256 \(sha.prefix(12))…, this model's is \(modelSHA256.prefix(12))…")
    }
    guard !plan.layers.isEmpty else { throw PlanValidationError(.badSettings, "'\(path)' plans no layers") }
    let byName = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, $0) })
    let blocks = (layers.filter { $0.name.hasPrefix("model.layers.") }.map(\.block).max() ?? -1) + 1
    var formats: [String: QuantFormat] = [:]
    for (name, layer) in plan.layers.sorted(by: { $0.key < $1.key }) {
      guard let l = byName[name] else {
        throw PlanValidationError(.unknownLayer, "'\(path)' names '\(name)', which the model lacks (\(blocks) blocks, \(layers.count) plannable layers)")
      }
      let format: QuantFormat
      do { format = try QuantFormat(parsing: layer.format) } catch {
        throw PlanValidationError(.unknownFormat, "'\(path)': \(name): \(error)")
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
