import ModelIO
import Testing

@Suite struct GGUFCorruptionTests {
  /// (file, expected code) from Fixtures/gguf/corrupt_expectations.txt, written with the files by
  /// scripts/make_gguf_fixtures.py. One file per validation rule.
  static let cases: [(String, String)] = {
    guard let text = try? GGUFFixtures.text("gguf/corrupt_expectations.txt") else { return [] }
    return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
      let parts = line.split(separator: " ")
      return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
    }
  }()

  @Test func everyRuleHasAFixture() {
    #expect(Self.cases.count >= 25)
    let codes = Set(Self.cases.map(\.1))
    for code: ModelIOError.Code in [
      .truncated, .badMagic, .unsupportedVersion, .absurdCount, .headerTooLarge, .badHeader, .duplicate,
      .unknownDType, .badShape, .sizeMismatch, .misaligned, .outOfBounds, .overlap,
    ] {
      #expect(codes.contains(code.rawValue), "no fixture for \(code)")
    }
  }

  @Test(arguments: cases.map(\.0))
  func corruptFileThrowsItsCode(file: String) throws {
    let expected = try #require(Self.cases.first { $0.0 == file }.flatMap { ModelIOError.Code(rawValue: $0.1) })
    let path = GGUFFixtures.path("gguf/\(file)")
    do {
      let parsed = try GGUFFile(path: path)
      Issue.record("\(file) parsed (\(parsed.tensors.count) tensors), expected \(expected)")
    } catch {
      #expect(error.code == expected, "\(file): \(error)")
      #expect(error.path == path, "the error names the file")
    }
  }

  /// Every prefix of a valid file either parses (only the full file, or one cut inside the final padding) or
  /// throws a `ModelIOError`: nothing traps, whatever the cut.
  @Test func everyTruncationThrows() throws {
    let bytes = try GGUFFixtures.bytes("gguf/valid_ggufpy.gguf")
    for n in 0..<bytes.count {
      do {
        let file = try GGUFFile(bytes: Array(bytes[..<n]))
        // Only a cut inside the last tensor's padding still holds every byte of data.
        let end = file.tensors.map { file.dataOffset + $0.offset + $0.sizeInBytes }.max() ?? 0
        #expect(n >= end, "prefix of \(n) bytes parsed but data ends at \(end)")
      } catch {
        #expect(
          [.truncated, .headerTooLarge, .absurdCount, .outOfBounds].contains(error.code), "prefix \(n): \(error)")
      }
    }
  }

  /// Every single-byte flip of the header gives a file that parses or throws `ModelIOError` (never a trap).
  @Test func headerByteFlipsNeverTrap() throws {
    let bytes = try GGUFFixtures.bytes("gguf/valid_v3.gguf")
    let header = try GGUFFile(bytes: bytes).dataOffset
    var thrown = 0
    for i in 0..<header {
      for mask: UInt8 in [0x01, 0x80, 0xFF] {
        var copy = bytes
        copy[i] ^= mask
        do { _ = try GGUFFile(bytes: copy) } catch { thrown += 1 }
      }
    }
    #expect(thrown > 0)
  }
}
