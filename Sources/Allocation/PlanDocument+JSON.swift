import Foundation

/// Reading a PLAN.json: one place that decodes it and refuses what the document alone shows to be wrong, so every
/// command that reads a plan (export, validate, quantize, ppl, report, run) refuses the same documents the same way.
extension PlanDocument {
  /// The `format_version` this build reads and writes.
  public static let supportedFormatVersion = 1

  /// At most `limit` characters of `value`, with `…` when it was cut: how an error message quotes a string read
  /// from a file (a 10 MB format name must not become a 10 MB line on stderr).
  package static func excerpt(_ value: String, limit: Int = 64) -> String {
    let head = value.prefix(limit + 1)
    return head.count > limit ? String(head.prefix(limit)) + "…" : value
  }

  /// The plan in `data`, checked as far as the document alone allows (`checkConsistency()`), with no duplicate keys.
  /// - Parameter source: how messages name the document, e.g. `PLAN.json 'plan.json'`.
  /// - Throws: `AllocationError.badPlanFile`, one line that starts with `source` and names the JSON path and the
  ///   value: not JSON, a missing key or a value of the wrong type, an unknown `format_version`, a key given twice
  ///   in one object (a layer listed twice), or an inconsistency (`checkConsistency()`).
  public static func decode(_ data: Data, source: String) throws(AllocationError) -> PlanDocument {
    func fail(_ message: String) -> AllocationError { AllocationError(.badPlanFile, "\(source): \(message)") }
    // The version first: a newer plan may differ in any other key, and that is what the user needs to hear.
    struct VersionProbe: Decodable {
      var format_version: Int?
    }
    if let version = (try? JSONDecoder().decode(VersionProbe.self, from: data))?.format_version,
      version != supportedFormatVersion
    {
      throw fail("format_version \(version) is not supported (this build reads \(supportedFormatVersion))")
    }
    let document: PlanDocument
    do {
      document = try JSONDecoder().decode(PlanDocument.self, from: data)
    } catch let DecodingError.dataCorrupted(context) {
      let detail = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
      let path = context.codingPath.isEmpty ? "" : jsonPath(context.codingPath) + ": "
      throw fail("\(path)not valid JSON (\(excerpt(detail ?? context.debugDescription, limit: 200)))")
    } catch let DecodingError.keyNotFound(key, context) {
      throw fail("\(jsonPath(context.codingPath + [key])) is missing; not a BitPlan plan")
    } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
      throw fail("\(jsonPath(context.codingPath)): \(excerpt(context.debugDescription, limit: 200))")
    } catch {
      throw fail("not a BitPlan plan (\(excerpt("\(error)", limit: 200)))")
    }
    if let duplicate = firstDuplicateKey(in: data) {
      let within = duplicate.object.isEmpty ? "the top-level object" : duplicate.object
      throw fail("\(within) has the key '\(excerpt(duplicate.key))' twice")
    }
    do { try document.checkConsistency() } catch { throw fail(error.message) }
    return document
  }

  /// Checks what the document says about itself, without the model or the formats' grammar: the version is
  /// `supportedFormatVersion`; `budget_bytes`, `total_bytes`, `bits_per_weight` and every layer's `bytes` are not
  /// negative; `total_bytes` is the sum of the layers' `bytes`; a layer's `group_size` and `bits`, when given, are
  /// positive. (Pipeline's `PlanFile` also checks each layer's `bits`, `group_size` and `symmetric` against its
  /// format, and the `target` and `quantizer` names.)
  /// - Throws: `AllocationError.badPlanFile` naming the key (`layers['model.layers.0.mlp.up_proj'].bytes`) and value.
  public func checkConsistency() throws(AllocationError) {
    func fail(_ message: String) -> AllocationError { AllocationError(.badPlanFile, message) }
    guard formatVersion == Self.supportedFormatVersion else {
      throw fail("format_version \(formatVersion) is not supported (this build reads \(Self.supportedFormatVersion))")
    }
    guard budgetBytes >= 0 else { throw fail("budget_bytes \(budgetBytes) is negative") }
    guard totalBytes >= 0 else { throw fail("total_bytes \(totalBytes) is negative") }
    guard bitsPerWeight >= 0 else { throw fail("bits_per_weight \(Self.number(bitsPerWeight)) is negative") }
    var sum = 0
    for (name, layer) in layers.sorted(by: { $0.key < $1.key }) {
      let key = Self.layerKey(name)
      guard layer.bytes >= 0 else { throw fail("\(key).bytes \(layer.bytes) is negative") }
      if let g = layer.groupSize, g <= 0 { throw fail("\(key).group_size \(g) is not a positive group size") }
      if let b = layer.bits, !(b > 0) { throw fail("\(key).bits \(Self.number(b)) is not a positive number of bits") }
      let (total, overflow) = sum.addingReportingOverflow(layer.bytes)
      guard !overflow else { throw fail("the layers' bytes add up to more than \(Int.max)") }
      sum = total
    }
    guard totalBytes == sum else {
      throw fail("total_bytes \(totalBytes) is not the sum of the layers' bytes (\(sum))")
    }
  }

  /// `layers['name']`, the name shortened: how messages name one layer's entry.
  package static func layerKey(_ name: String) -> String { "layers['\(excerpt(name))']" }

  /// The JSON path of a decoding error as messages write it: `layers['model.layers.0.mlp.up_proj'].bytes`, array
  /// indices as `[i]`, `the document` for the top level.
  static func jsonPath(_ keys: [any CodingKey]) -> String {
    guard !keys.isEmpty else { return "the document" }
    if keys.count >= 2, keys[0].stringValue == CodingKeys.layers.stringValue, keys[1].intValue == nil {
      return layerKey(keys[1].stringValue) + keys.dropFirst(2).map { ".\(excerpt($0.stringValue))" }.joined()
    }
    let path = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\(excerpt($0.stringValue))" }.joined()
    return path.hasPrefix(".") ? String(path.dropFirst()) : path
  }

  /// `value` as a message prints a number read from JSON: `2`, not `2.0`; `4.5` as it is.
  package static func number(_ value: Double) -> String {
    value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
  }

  /// The first key that appears twice in one object of `data`, which must be valid JSON, with the path of that
  /// object (`""` for the top level, `layers`, `layers.model.layers.0.mlp.up_proj`). JSONDecoder keeps one of the
  /// two values silently, so a layer listed twice would otherwise pass with one of its entries lost.
  /// - Complexity: O(bytes); containers on an explicit stack, so depth costs no recursion.
  package static func firstDuplicateKey(in data: Data) -> (object: String, key: String)? {
    struct Container {
      var path: String
      var isObject: Bool
      var keys: Set<String> = []
      var lastKey = ""
      var index = 0
    }
    return data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> (object: String, key: String)? in
      var stack: [Container] = []
      var expectsKey = false
      var i = 0
      func childPath() -> String {
        guard let parent = stack.last else { return "" }
        let step = parent.isObject ? parent.lastKey : "[\(parent.index)]"
        return parent.path.isEmpty ? step : parent.isObject ? parent.path + "." + step : parent.path + step
      }
      while i < bytes.count {
        switch bytes[i] {
        case UInt8(ascii: "{"):
          stack.append(Container(path: childPath(), isObject: true))
          expectsKey = true
        case UInt8(ascii: "["):
          stack.append(Container(path: childPath(), isObject: false))
          expectsKey = false
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
          if !stack.isEmpty { stack.removeLast() }
          expectsKey = false
        case UInt8(ascii: ","):
          if let last = stack.indices.last, !stack[last].isObject { stack[last].index += 1 }
          expectsKey = stack.last?.isObject ?? false
        case UInt8(ascii: "\""):
          // A string: find its closing quote, stepping over escapes.
          let start = i + 1
          var escaped = false
          i = start
          while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\") {
              escaped = true
              i += 2
              continue
            }
            if bytes[i] == UInt8(ascii: "\"") { break }
            i += 1
          }
          if expectsKey, let last = stack.indices.last {
            let raw = Data(bytes[start..<min(i, bytes.count)])
            var key = String(decoding: raw, as: UTF8.self)
            if escaped {
              // Escapes name the same key two ways ("\u0061" is "a"): compare decoded keys.
              let quoted = Data("\"".utf8) + raw + Data("\"".utf8)
              key = (try? JSONSerialization.jsonObject(with: quoted, options: .fragmentsAllowed) as? String) ?? key
            }
            if !stack[last].keys.insert(key).inserted { return (stack[last].path, key) }
            stack[last].lastKey = key
            expectsKey = false
          }
        default:
          break
        }
        i += 1
      }
      return nil
    }
  }
}
