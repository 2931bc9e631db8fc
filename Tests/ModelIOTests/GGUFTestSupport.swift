#if canImport(Glibc)
  import Glibc
#endif
import ModelIO
import _TestSupport
import Testing

/// Where the GGUF fixtures, golden files and downloaded models are, and how to read them.
enum GGUFFixtures {
  /// `Tests/ModelIOTests/Fixtures`, found from this source file (no bundle lookup needed).
  static let directory: String = {
    let file = "\(#filePath)"
    return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures"
  }()

  /// The version line every golden file starts with.
  static let goldenMagic = "bitplan-gguf-golden 1"

  static func path(_ relative: String) -> String { "\(directory)/\(relative)" }

  /// The bytes of a fixture file.
  static func bytes(_ relative: String) throws -> [UInt8] {
    let source = try ByteSource(path: path(relative))
    return Array(UnsafeRawBufferPointer(start: source.base, count: source.count))
  }

  /// The text of a fixture file.
  static func text(_ relative: String) throws -> String {
    String(decoding: try bytes(relative), as: UTF8.self)
  }

  static func exists(_ path: String) -> Bool { access(path, R_OK) == 0 }

  /// SmolLM2-135M-Instruct Q4_1: `$BITPLAN_MODEL`, else the cache path `make test` downloads to.
  static var smolLM2Path: String { TestModels.smolLM2Path }

  /// Gemma 3 270M Q4_K_M: `$BITPLAN_GEMMA`, else the cache path; nil when absent (tests that need it are skipped).
  static var gemmaPath: String? {
    exists(TestModels.gemmaPath) ? TestModels.gemmaPath : nil
  }

  /// Opens SmolLM2, or records the issue "run make test (it fetches the model)" and returns nil.
  static func smolLM2(sourceLocation: SourceLocation = #_sourceLocation) throws -> GGUFFile? {
    guard exists(smolLM2Path) else {
      Issue.record("SmolLM2 GGUF not found at \(smolLM2Path): run make test (it fetches the model)", sourceLocation: sourceLocation)
      return nil
    }
    return try GGUFFile(path: smolLM2Path)
  }
}

/// A golden file written by scripts/gguf_golden.py or scripts/make_gguf_fixtures.py: `key value…` lines.
struct GGUFGolden {
  /// One dequantized tensor: name, type, PyTorch shape, sha256 of all float32 LE bytes, first ≤ 64 values' bits.
  struct TensorEntry {
    var tag: String
    var name: String
    var type: String
    var shape: [Int]
    var sha256: String
    var first: [UInt32]
  }

  var fields: [String: String] = [:]
  var tensors: [TensorEntry] = []

  /// Parses `relative` under Fixtures; throws a message asking to re-run the script on a version mismatch.
  init(_ relative: String) throws {
    let lines = try GGUFFixtures.text(relative).split(separator: "\n").map(String.init)
    guard lines.first == GGUFFixtures.goldenMagic else {
      throw GoldenError("\(relative) starts with '\(lines.first ?? "")', expected '\(GGUFFixtures.goldenMagic)': "
        + "re-run scripts/gguf_golden.py")
    }
    for line in lines.dropFirst() where !line.hasPrefix("#") {
      let parts = line.split(separator: " ").map(String.init)
      guard let key = parts.first else { continue }
      if key == "tensor" || key == "hftensor" {
        guard parts.count >= 6 else { throw GoldenError("bad line in \(relative): \(line)") }
        tensors.append(
          TensorEntry(
            tag: key, name: parts[1], type: parts[2], shape: parts[3].split(separator: ",").compactMap { Int($0) },
            sha256: parts[4], first: parts[5...].compactMap { UInt32($0, radix: 16) }))
      } else {
        fields[key] = parts.dropFirst().joined(separator: " ")
      }
    }
  }

  /// A hex string as bytes.
  static func hexBytes(_ s: String) -> [UInt8] {
    let chars = Array(s.utf8)
    return stride(from: 0, to: chars.count - 1, by: 2).map { i in
      UInt8(String(decoding: chars[i...i + 1], as: UTF8.self), radix: 16)!
    }
  }

  /// Space-separated float32 bit patterns.
  static func floatBits(_ s: String) -> [UInt32] {
    s.split(separator: " ").compactMap { UInt32($0, radix: 16) }
  }
}

struct GoldenError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
