import Foundation
import GGML
import Testing
import _TestSupport

/// `GGMLEncode.weighted` against ggml itself: ggml-quants.c's `quantize_row_<type>_impl` (run by
/// `ggml_quantize_chunk(type, x, q, 0, nrows, n_per_row, imatrix)` with a non-NULL imatrix), byte for byte per row.
/// Fixture from scripts/ggml_quant_golden_imatrix.sh (llama.cpp's static ggml; BPQI format documented in
/// scripts/ggml_quant_golden_imatrix.c).
struct GGMLImportanceGoldenTests {
  struct Case {
    var type: GGMLType
    var rows: Int
    var columns: Int
    var rowSize: Int
    var distribution: Int
    var values: [Float]
    var importance: [Float]
    var bytes: [UInt8]
    var label: String { "\(type.ggmlName) \(rows)x\(columns) distribution \(distribution)" }
  }

  struct FixtureError: Error, CustomStringConvertible {
    var description: String
  }

  /// Reads the `BPQI` fixture, checking every count against the bytes left before using it.
  static func load() throws -> [Case] {
    let name = "ggml_imatrix", rerun = "re-run scripts/ggml_quant_golden_imatrix.sh"
    guard let url = Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures") else {
      throw FixtureError(description: "fixture \(name).bin missing; \(rerun)")
    }
    let data = [UInt8](try Data(contentsOf: url))
    var offset = 0
    func take(_ n: Int) throws -> ArraySlice<UInt8> {
      guard n >= 0, n <= data.count - offset else { throw FixtureError(description: "\(name).bin truncated at \(offset)") }
      defer { offset += n }
      return data[offset..<(offset + n)]
    }
    func u32() throws -> Int { Int(try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
    func floats(_ n: Int) throws -> [Float] { try (0..<n).map { _ in Float(bitPattern: UInt32(try u32())) } }
    guard try take(4).elementsEqual("BPQI".utf8) else { throw FixtureError(description: "\(name).bin: bad magic") }
    guard try u32() == 1 else { throw FixtureError(description: "\(name).bin: version mismatch; \(rerun)") }
    return try (0..<u32()).map { _ in
      let id = try u32(), rows = try u32(), columns = try u32(), rowSize = try u32(), distribution = try u32()
      guard let type = GGMLType(rawValue: UInt32(id)), type.canQuantize else {
        throw FixtureError(description: "\(name).bin: unexpected type id \(id)")
      }
      guard columns % type.blockSize == 0, rowSize == type.rowSizeInBytes(columns), rows * columns <= data.count else {
        throw FixtureError(description: "\(name).bin: \(type.ggmlName) \(rows)x\(columns) with row size \(rowSize)")
      }
      return Case(type: type, rows: rows, columns: columns, rowSize: rowSize, distribution: distribution,
        values: try floats(rows * columns), importance: try floats(columns), bytes: Array(try take(rows * rowSize)))
    }
  }

  /// One row through `GGMLEncode.weighted` (or `reference` when `importance` is nil).
  static func quantize(_ type: GGMLType, _ row: ArraySlice<Float>, importance: [Float]?) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: type.rowSizeInBytes(row.count)!)
    let x = Array(row)
    x.withUnsafeBufferPointer { px in
      out.withUnsafeMutableBytes { po in
        if let importance {
          importance.withUnsafeBufferPointer { GGMLEncode.weighted(type, px, importance: $0, into: po) }
        } else {
          GGMLEncode.reference(type, px, into: po)
        }
      }
    }
    return out
  }

  @Test func fixtureCoversEveryQuantizableType() throws {
    let cases = try Self.load()
    #expect(cases.count == 28)
    #expect(Set(cases.map(\.type)) == [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    #expect(cases.contains { $0.rows == 2 && $0.type.blockSize == 32 })  // per-row σ² for the legacy types
    #expect(cases.contains { $0.importance.contains(0) })
  }

  /// Every row of every case byte for byte; on a mismatch, names the first differing block. Also checks that the
  /// importance changes ggml's bytes for every type but q8_0, so the fixture exercises the weighted searches.
  @Test func weightedQuantizersMatchGGMLByteForByte() throws {
    var changedByImportance: Set<GGMLType> = []
    for c in try Self.load() {
      for r in 0..<c.rows {
        let row = c.values[(r * c.columns)..<((r + 1) * c.columns)]
        let ours = Self.quantize(c.type, row, importance: c.importance)
        let theirs = Array(c.bytes[(r * c.rowSize)..<((r + 1) * c.rowSize)])
        let size = c.type.bytesPerBlock
        let firstBad = (0..<(c.rowSize / size)).first { b in
          ours[(b * size)..<((b + 1) * size)] != theirs[(b * size)..<((b + 1) * size)]
        }
        #expect(firstBad == nil, "\(c.label) row \(r): block \(firstBad ?? -1) differs")
        if theirs != Self.quantize(c.type, row, importance: nil) { changedByImportance.insert(c.type) }
      }
    }
    #expect(changedByImportance == [.q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
  }

  /// ggml's `quantize_q8_0` ignores `quant_weights`: weighted equals unweighted, on the fixture and on seeded rows
  /// with seeded importances (including zeros).
  @Test func q8_0IgnoresImportance() throws {
    for c in try Self.load() where c.type == .q8_0 {
      for r in 0..<c.rows {
        let row = c.values[(r * c.columns)..<((r + 1) * c.columns)]
        #expect(Self.quantize(.q8_0, row, importance: c.importance) == Self.quantize(.q8_0, row, importance: nil))
      }
    }
    for seed in 1...4 as ClosedRange<UInt64> {
      let x = randomFloats(256, seed: seed, scale: 0.1)
      let importance = randomFloats(256, seed: seed + 100).map { $0 < -0.5 ? 0 : abs($0) }
      #expect(Self.quantize(.q8_0, x[...], importance: importance) == Self.quantize(.q8_0, x[...], importance: nil))
    }
  }
}
