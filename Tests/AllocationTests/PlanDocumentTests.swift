import Allocation
import Foundation
import Testing

/// `PlanDocument.decode(_:source:)`: every PLAN.json a command reads goes through it, so a malformed, newer or
/// self-contradicting plan is one typed `badPlanFile` error naming the file, the key and the (shortened) value.
@Suite struct PlanDocumentTests {
  /// A plan as `bitplan allocate` writes it: two layers, 136 + 100 bytes.
  static func written() throws -> Data {
    let problem = AllocationProblem(
      layers: [
        .init(
          name: "a", parameterCount: 256,
          options: [.init(format: "int4-g128", bytes: 136, loss: 0.5, bits: 4, groupSize: 128, symmetric: true, quantizer: "rtn")]),
        .init(name: "b", parameterCount: 256, options: [.init(format: "int8", bytes: 100, loss: 0.25)]),
      ], model: "m")
    return PlanDocument(plan: try problem.solve(budget: 300), problem: problem).jsonData()
  }

  /// `written()` with `edit` applied to its JSON object.
  static func edited(_ edit: (inout [String: Any]) -> Void) throws -> Data {
    var object = try JSONSerialization.jsonObject(with: written()) as! [String: Any]
    edit(&object)
    return try JSONSerialization.data(withJSONObject: object)
  }

  /// The message of the error `decode` throws for `data` (its code must be `.badPlanFile`), or nil when it decodes.
  static func refusal(_ data: Data, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    do {
      _ = try PlanDocument.decode(data, source: "PLAN.json 'p.json'")
      return nil
    } catch {
      #expect(error.code == .badPlanFile, "\(error)", sourceLocation: sourceLocation)
      #expect(error.message.hasPrefix("PLAN.json 'p.json': "), "\(error)", sourceLocation: sourceLocation)
      #expect(!error.message.contains("\n"), "one line: \(error)", sourceLocation: sourceLocation)
      return error.message
    }
  }

  /// What allocate writes decodes to the same document.
  @Test func allocatesOwnPlansDecode() throws {
    let data = try Self.written()
    #expect(Self.refusal(data) == nil)
    #expect(try PlanDocument.decode(data, source: "x") == JSONDecoder().decode(PlanDocument.self, from: data))
  }

  /// Bug 1: empty, truncated, not JSON or of the wrong types: bad data, with the JSON path where there is one.
  @Test func malformedDocumentsAreBadPlanFiles() throws {
    let data = try Self.written()
    for damaged in [Data(), data.prefix(data.count / 2), Data("not json".utf8), Data("[1, 2]".utf8), Data("null".utf8)] {
      #expect(Self.refusal(damaged) != nil)
    }
    let text = String(decoding: data, as: UTF8.self)
    let wrongType = Data(text.replacingOccurrences(of: "\"bytes\" : 136", with: "\"bytes\" : \"136\"").utf8)
    #expect(Self.refusal(wrongType)?.contains("layers['a'].bytes") == true, "\(Self.refusal(wrongType) ?? "")")
    let missing = try Self.edited { $0["layers"] = nil }
    #expect(Self.refusal(missing)?.contains("layers is missing") == true)
  }

  /// Bug 2: a version this build does not know is refused by number, before its other keys are looked at.
  @Test func unknownFormatVersionsAreRefused() throws {
    let newer = try Self.edited { $0["format_version"] = 2; $0["layers"] = "another layout" }
    #expect(Self.refusal(newer) == "PLAN.json 'p.json': format_version 2 is not supported (this build reads 1)")
    #expect(Self.refusal(try Self.edited { $0["format_version"] = 0 })?.contains("format_version 0") == true)
  }

  /// Bug 4: byte counts that cannot be, and totals that are not the sum of the layers'.
  @Test func inconsistentNumbersAreRefused() throws {
    func layer(_ name: String, _ key: String, _ value: Any) throws -> Data {
      try Self.edited {
        var layers = $0["layers"] as! [String: [String: Any]]
        layers[name]![key] = value
        $0["layers"] = layers
      }
    }
    #expect(Self.refusal(try layer("a", "bytes", -5))?.contains("layers['a'].bytes -5 is negative") == true)
    #expect(Self.refusal(try layer("b", "group_size", 0))?.contains("layers['b'].group_size 0 is not a positive") == true)
    #expect(Self.refusal(try layer("a", "group_size", -64))?.contains("group_size -64") == true)
    #expect(Self.refusal(try layer("a", "bits", 0))?.contains("layers['a'].bits 0 is not a positive") == true)
    #expect(Self.refusal(try Self.edited { $0["budget_bytes"] = -1 })?.contains("budget_bytes -1 is negative") == true)
    #expect(
      Self.refusal(try Self.edited { $0["total_bytes"] = 237 })
        == "PLAN.json 'p.json': total_bytes 237 is not the sum of the layers' bytes (236)")
    let overflow = try Self.edited {
      $0["layers"] = ["a": ["format": "int8", "bytes": Int.max, "predicted_loss_delta": 0], "b": ["format": "int8", "bytes": 1, "predicted_loss_delta": 0]]
    }
    #expect(Self.refusal(overflow)?.contains("add up to more than") == true)
  }

  /// Bug 4: JSONDecoder keeps one of two equal keys; a layer listed twice (or any key given twice) is refused,
  /// also when an escape spells the key differently.
  @Test func duplicateKeysAreRefused() throws {
    let text = String(decoding: try Self.written(), as: UTF8.self)
    let twice = text.replacingOccurrences(of: "\"layers\" : {", with: "\"layers\" : {\"b\": {\"format\": \"int8\", \"bytes\": 0, \"predicted_loss_delta\": 0},")
    #expect(Self.refusal(Data(twice.utf8)) == "PLAN.json 'p.json': layers has the key 'b' twice")
    let escaped = text.replacingOccurrences(of: "\"layers\" : {", with: "\"layers\" : {\"\\u0062\": {\"format\": \"int8\", \"bytes\": 0, \"predicted_loss_delta\": 0},")
    #expect(Self.refusal(Data(escaped.utf8))?.contains("the key 'b' twice") == true)
    let topLevel = "{\"total_bytes\": 236," + text.dropFirst()
    #expect(Self.refusal(Data(topLevel.utf8))?.contains("the top-level object has the key 'total_bytes' twice") == true)
    let inLayer = text.replacingOccurrences(of: "\"format\" : \"int8\"", with: "\"format\" : \"int8\", \"format\" : \"int4\"")
    #expect(Self.refusal(Data(inLayer.utf8))?.contains("layers.b has the key 'format' twice") == true)
    // The same key in different objects, and key-like strings among values, are fine.
    let distinct = #"{"a": {"x": 1}, "b": {"x": ["a", "a", {"a": "a"}], "y": "\"x\""}}"#
    #expect(PlanDocument.firstDuplicateKey(in: Data(distinct.utf8)) == nil)
  }

  /// Bug 5: a value quoted back is shortened to 64 characters and `…`.
  @Test func quotedValuesAreShortened() throws {
    let long = String(repeating: "x", count: 1_000_000)
    let data = try Self.edited {
      $0["layers"] = [long: ["format": "int8", "bytes": -1, "predicted_loss_delta": 0]]
      $0["total_bytes"] = 0
    }
    let message = try #require(Self.refusal(data))
    #expect(message.contains("layers['" + String(repeating: "x", count: 64) + "…'].bytes -1 is negative"), "\(message.prefix(300))")
    #expect(message.count < 200)
    #expect(PlanDocument.excerpt("short") == "short" && PlanDocument.excerpt(String(repeating: "y", count: 64)).count == 64)
  }
}
