import Foundation
import GGML
import ModelIO
import TensorCore
import Testing
import _TestSupport

/// `ImportanceMatrix`: llama.cpp's imatrix files (GGUF written here with `GGUFWriter`, legacy `.dat` as bytes) read
/// as llama-quantize reads them, and every damaged file refused with one typed line.
@Suite struct ImportanceMatrixTests {
  /// One entry: `sums` (n_expert · ne0 values) and `counts` (one per expert), with their storage types.
  struct Entry {
    var name: String
    var sums: [Float]
    var counts: [Float]
    var sumsType = GGMLType.f32
    var countsType = GGMLType.f32
  }

  static let metadata: [(String, GGUFValue)] = [
    ("general.type", .string("imatrix")),
    ("imatrix.datasets", .array(.string, [.string("/data/pride.txt")])),
    ("imatrix.chunk_count", .uint32(64)),
    ("imatrix.chunk_size", .uint32(512)),
  ]

  /// A GGUF importance matrix as llama-imatrix writes one: the metadata, then `T.in_sum2` and `T.counts` per entry
  /// (shapes [n_expert, ne0] and [n_expert] in PyTorch order); `skip` names tensors left out.
  static func gguf(
    _ entries: [Entry], metadata: [(String, GGUFValue)] = metadata, skip: Set<String> = []
  ) throws -> [UInt8] {
    var w = GGUFWriter()
    for (key, value) in metadata { try w.add(key, value) }
    for e in entries {
      let experts = e.counts.count
      for (suffix, values, type) in [(".in_sum2", e.sums, e.sumsType), (".counts", e.counts, e.countsType)]
      where !skip.contains(e.name + suffix) {
        let rows = suffix == ".counts" || values.count % max(experts, 1) != 0 ? 1 : max(experts, 1)
        let shape = rows == 1 ? [values.count] : [rows, values.count / rows]
        try w.addTensor(e.name + suffix, Tensor(shape: shape, storage: values), as: type)
      }
    }
    return w.serialized()
  }

  /// The code and one-line message `bytes` are refused with, or nil when they are read.
  static func refusal(_ bytes: [UInt8]) -> ModelIOError? {
    do {
      _ = try ImportanceMatrix(bytes: bytes, path: "imatrix.gguf")
      return nil
    } catch { return error }
  }

  @Test func readsWeightsAndMetadata() throws {
    let sums = randomFloats(64, seed: 3).map { $0 * $0 * 300 }
    let m = try ImportanceMatrix(bytes: try Self.gguf([
      Entry(name: "blk.0.attn_q.weight", sums: sums, counts: [32768]),
      Entry(name: "blk.0.ffn_down.weight", sums: [1, 2, 3, 4], counts: [0]),
    ]))
    #expect(m.format == .gguf)
    #expect(m.datasets == ["/data/pride.txt"] && m.chunkCount == 64 && m.chunkSize == 512)
    #expect(m.weights.keys.sorted() == ["blk.0.attn_q.weight", "blk.0.ffn_down.weight"])
    // w = sums / Float(count), in Float.
    #expect(m.weights["blk.0.attn_q.weight"] == sums.map { $0 / Float(32768) })
    // count 0: every weight 1, whatever the sums.
    #expect(m.weights["blk.0.ffn_down.weight"] == [1, 1, 1, 1])
  }

  /// Counts go through `std::lround` into int64_t: to nearest, halves away from zero; ≤ 0 means weights 1.
  static let roundings: [(count: Float, sums: [Float], weights: [Float])] = [
    (2.5, [3, 6], [1, 2]), (2.49, [4, 6], [2, 3]), (0.4, [4, 6], [1, 1]), (0.5, [4, 6], [4, 6]), (-3, [4, 6], [1, 1]),
    (1e10, [1e10, 2e10], [1, 2]),
  ]

  @Test(arguments: roundings)
  func countsAreRoundedToIntegers(count: Float, sums: [Float], weights: [Float]) throws {
    let m = try ImportanceMatrix(bytes: try Self.gguf([Entry(name: "t", sums: sums, counts: [count])]))
    #expect(m.weights["t"] == weights, "count \(count)")
  }

  /// Per-expert rows: each count divides its own row of sums.
  @Test func expertsHaveTheirOwnCounts() throws {
    let m = try ImportanceMatrix(bytes: try Self.gguf([
      Entry(name: "blk.0.ffn_up_exps.weight", sums: [2, 4, 6, 8, 10, 12], counts: [2, 0, 4])
    ]))
    #expect(m.weights["blk.0.ffn_up_exps.weight"] == [1, 2, 1, 1, 2.5, 3])
  }

  @Test func refusesMissingMetadata() throws {
    for key in ["imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"] {
      let e = Self.refusal(try Self.gguf([Entry(name: "t", sums: [1], counts: [1])], metadata: Self.metadata.filter { $0.0 != key }))
      #expect(e?.code == .badHeader && e!.message.contains("missing imatrix metadata (\(key))"), "\(String(describing: e))")
      #expect(e.map { "\($0)" }?.contains("\n") == false)
    }
    // llama.cpp's gguf_get_val_u32 asserts the type.
    var wrong = Self.metadata
    wrong[2] = ("imatrix.chunk_count", .int32(64))
    let e = Self.refusal(try Self.gguf([Entry(name: "t", sums: [1], counts: [1])], metadata: wrong))
    #expect(e?.code == .badHeader && e!.message.contains("imatrix.chunk_count"), "\(String(describing: e))")
    // Datasets that are not an array of strings are ignored, as llama.cpp ignores them.
    var other = Self.metadata
    other[1] = ("imatrix.datasets", .uint32(1))
    #expect(try ImportanceMatrix(bytes: try Self.gguf([Entry(name: "t", sums: [1], counts: [1])], metadata: other)).datasets == [])
  }

  @Test func refusesDamagedEntries() throws {
    let good = Entry(name: "blk.0.attn_k.weight", sums: [1, 2, 3, 4], counts: [2])
    let cases: [([Entry], Set<String>, ModelIOError.Code, String)] = [
      ([good], ["blk.0.attn_k.weight.counts"], .missingTensor, "'blk.0.attn_k.weight.in_sum2' has no 'blk.0.attn_k.weight.counts'"),
      ([good], ["blk.0.attn_k.weight.in_sum2"], .missingTensor, "'blk.0.attn_k.weight.counts' has no 'blk.0.attn_k.weight.in_sum2'"),
      ([Entry(name: "t", sums: [1, 2], counts: [1], countsType: .f16)], [], .badHeader, "'t': sums are F32 and counts F16"),
      ([Entry(name: "t", sums: [1, 2], counts: [1], sumsType: .bf16)], [], .badHeader, "llama.cpp reads F32"),
      ([Entry(name: "t", sums: [1, 2, 3], counts: [1, 1, 1, 1, 1, 1])], [], .sizeMismatch, "3 sums are not whole rows for 6 counts"),
      ([Entry(name: "t", sums: [1, 2], counts: [.nan])], [], .badValue, "'t.counts'[0] is nan"),
      ([Entry(name: "t", sums: [1, 2], counts: [.infinity])], [], .badValue, "not a token count"),
      ([Entry(name: "t", sums: [1, 2], counts: [1e30])], [], .badValue, "not a token count"),
      ([Entry(name: "t", sums: [1, .nan], counts: [2])], [], .badValue, "weight 1 is nan; llama-quantize refuses"),
      ([Entry(name: "t", sums: [.infinity, 1], counts: [2])], [], .badValue, "weight 0 is inf"),
      ([Entry(name: "t", sums: [1, -2], counts: [2])], [], .badValue, "weight 1 is -1.0, a mean of squares cannot be negative"),
    ]
    for (entries, skip, code, message) in cases {
      let e = Self.refusal(try Self.gguf(entries, skip: skip))
      #expect(e?.code == code && e!.message.contains(message), "\(message): \(String(describing: e))")
      #expect(e?.path == "imatrix.gguf" && !"\(e!)".contains("\n"))
    }
    // No tensors at all (llama.cpp: "no data"); tensors, but no pair among them.
    let empty = Self.refusal(try Self.gguf([]))
    #expect(empty?.code == .missingTensor && empty!.message.contains("no tensors (no data)"), "\(String(describing: empty))")
    var w = GGUFWriter()
    for (k, v) in Self.metadata { try w.add(k, v) }
    try w.addTensor("unrelated", Tensor(shape: [2], storage: [1, 2]))
    let unpaired = Self.refusal(w.serialized())
    #expect(unpaired?.code == .missingTensor && unpaired!.message.contains("no '<tensor>.in_sum2' and '<tensor>.counts' pairs"))
    // A NaN sum where the count is 0: the weights are 1 and llama.cpp takes the file; so does this.
    let m = try ImportanceMatrix(bytes: try Self.gguf([Entry(name: "t", sums: [.nan, 2], counts: [0])]))
    #expect(m.weights["t"] == [1, 1])
  }

  /// The lookup llama-quantize does for a tensor it re-encodes: by exact name, sized ne[0]·ne[2].
  @Test func importanceForATensor() throws {
    let m = try ImportanceMatrix(bytes: try Self.gguf([
      Entry(name: "blk.0.attn_q.weight", sums: [Float](repeating: 2, count: 64), counts: [2]),
      Entry(name: "blk.0.attn_k.weight", sums: [Float](repeating: 2, count: 32), counts: [2]),
      Entry(name: "token_embd.weight", sums: [Float](repeating: 2, count: 32), counts: [2]),
      Entry(name: "blk.0.ffn_up_exps.weight", sums: [Float](repeating: 2, count: 128), counts: [2, 2]),
    ]), path: "pp.imatrix")
    // Tensor infos as a model GGUF holds them (dimensions innermost first).
    var w = GGUFWriter()
    let dims = [
      "blk.0.attn_q.weight": [64, 16], "blk.0.attn_v.weight": [64, 16], "token_embd.weight": [64, 100],
      "blk.0.ffn_up_exps.weight": [64, 8, 2], "blk.0.attn_k.weight": [64, 16],
    ]
    for (name, d) in dims.sorted(by: { $0.key < $1.key }) {
      try w.addTensor(name, Tensor(zeros: d.reversed()))
    }
    let model = try GGUFFile(bytes: w.serialized())
    func info(_ name: String) -> GGUFTensorInfo { model.info(named: name)! }
    #expect(try m.importance(for: info("blk.0.attn_q.weight")) == [Float](repeating: 1, count: 64))
    #expect(try m.importance(for: info("blk.0.attn_v.weight")) == nil)  // no entry: quantized without
    #expect(try m.importance(for: info("token_embd.weight")) == nil)  // wrong size, ignored for the embedding
    #expect(try m.importance(for: info("blk.0.ffn_up_exps.weight"))?.count == 128)
    do throws(ModelIOError) {
      _ = try m.importance(for: info("blk.0.attn_k.weight"))
      Issue.record("a 32-value entry for 64 columns was taken")
    } catch {
      #expect(error.code == .sizeMismatch && error.path == "pp.imatrix")
      #expect(error.message == "importance matrix entry 'blk.0.attn_k.weight' has 32 values, the tensor's rows take 64 (llama-quantize refuses it too)")
    }
  }

  /// The `quantize.imatrix.*` keys, in llama-quantize's order, its strings cut at 127 bytes.
  @Test func quantizeMetadata() throws {
    let m = try ImportanceMatrix(bytes: try Self.gguf([
      Entry(name: "a", sums: [1], counts: [1]), Entry(name: "b", sums: [1], counts: [1]),
    ]))
    let keys = try m.quantizeMetadata(file: "imx/pp.gguf")
    #expect(keys.map(\.key) == ["quantize.imatrix.file", "quantize.imatrix.dataset", "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count"])
    #expect(keys.map(\.value) == [.string("imx/pp.gguf"), .string("/data/pride.txt"), .uint32(2), .uint32(64)])
    let long = String(repeating: "x", count: 200)
    #expect(try m.quantizeMetadata(file: long)[0].value == .string(String(repeating: "x", count: 127)))
    // A cut inside a two-byte character cannot be written as a string.
    #expect(throws: ModelIOError.self) { try m.quantizeMetadata(file: String(repeating: "x", count: 126) + "é") }
    // No datasets and no chunk count: those two keys are left out.
    var bare = Self.metadata
    bare[1] = ("imatrix.datasets", .array(.string, []))
    bare[2] = ("imatrix.chunk_count", .uint32(0))
    let b = try ImportanceMatrix(bytes: try Self.gguf([Entry(name: "a", sums: [1], counts: [1])], metadata: bare))
    #expect(try b.quantizeMetadata(file: "f").map(\.key) == ["quantize.imatrix.file", "quantize.imatrix.entries_count"])
  }

  // MARK: - Legacy .dat

  /// A legacy file: count, then per entry name length, name, ncall, nval, sums; then the optional trailer.
  static func legacy(_ entries: [(String, Int32, [Float])], trailer: (Int32, String)?) -> [UInt8] {
    var out: [UInt8] = []
    func int(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    int(Int32(entries.count))
    for (name, ncall, sums) in entries {
      int(Int32(name.utf8.count))
      out += Array(name.utf8)
      int(ncall)
      int(Int32(sums.count))
      for s in sums { withUnsafeBytes(of: s.bitPattern.littleEndian) { out += $0 } }
    }
    if let (calls, dataset) = trailer {
      int(calls)
      int(Int32(dataset.utf8.count))
      out += Array(dataset.utf8)
    }
    return out
  }

  @Test func readsLegacy() throws {
    let m = try ImportanceMatrix(bytes: Self.legacy(
      [("blk.0.attn_q.weight", 4, [4, 8, 12]), ("blk.0.attn_k.weight", 0, [5, 6]), ("blk.0.attn_q.weight", 2, [2, 4])],
      trailer: (64, "/data/pride.txt")))
    #expect(m.format == .legacy && m.chunkCount == 64 && m.chunkSize == 0 && m.datasets == ["/data/pride.txt"])
    // sums / ncall; ncall ≤ 0 keeps the sums; a repeated name replaces the earlier entry.
    #expect(m.weights == ["blk.0.attn_q.weight": [1, 2], "blk.0.attn_k.weight": [5, 6]])
    #expect(try m.quantizeMetadata(file: "x.dat").map(\.value) == [.string("x.dat"), .string("/data/pride.txt"), .uint32(2), .uint32(64)])
    // No trailer; a trailer cut after its call count (no dataset, as llama.cpp).
    let bare = try ImportanceMatrix(bytes: Self.legacy([("t", 1, [1])], trailer: nil))
    #expect(bare.chunkCount == 0 && bare.datasets.isEmpty)
    let cut = try ImportanceMatrix(bytes: Array(Self.legacy([("t", 1, [1])], trailer: (9, "abc")).dropLast(5)))
    #expect(cut.chunkCount == 9 && cut.datasets.isEmpty)
  }

  @Test func refusesDamagedLegacy() throws {
    let good = Self.legacy([("t", 1, [1, 2])], trailer: (3, "d"))
    let cases: [([UInt8], ModelIOError.Code, String)] = [
      ([], .missingTensor, "no data"),
      (Self.legacy([], trailer: nil), .missingTensor, "0 entries"),
      (Array(good.prefix(20)), .truncated, "the 2 sums of 't'"),
      (Array(good.prefix(good.count - 7)), .truncated, "the call count after the entries"),
      (Self.legacy([("t", 1, [])], trailer: nil), .badHeader, "'t': 0 values"),
      (Self.legacy([("t", 1, [-1])], trailer: nil), .badValue, "cannot be negative"),
      (Self.legacy([("t", 1, [.nan])], trailer: nil), .badValue, "non-finite"),
      ([1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], .badHeader, "name length -1"),
      ([1, 0, 0, 0, 2, 0, 0, 0, 0xC3, 0x28], .badHeader, "is not UTF-8"),
    ]
    for (bytes, code, message) in cases {
      let e = Self.refusal(bytes)
      #expect(e?.code == code && e!.message.contains(message), "\(message): \(String(describing: e))")
    }
  }

  /// llama-imatrix's own file, when it is cached: 210 entries of 576 or 1536 weights, counts 32768.
  @Test(.enabled(if: FileManager.default.fileExists(atPath: ImportanceMatrixTests.cached)))
  func readsLlamaImatrixOutput() throws {
    let m = try ImportanceMatrix(path: Self.cached)
    #expect(m.format == .gguf && m.weights.count == 210 && m.chunkCount == 64 && m.chunkSize == 512)
    #expect(m.weights["token_embd.weight"] == nil && Set(m.weights.values.map(\.count)) == [576, 1536])
  }

  static let cached = NSHomeDirectory() + "/.cache/bitplan/llamacpp/imatrix/prideprejudice-c512-n64.gguf"
}

/// Seeded random damage to good GGUF and legacy importance matrices: every mutated file either reads (and then
/// answers `importance(for:)` for its tensors) or is refused with a `ModelIOError`; never a crash or a hang.
@Suite struct ImportanceMatrixFuzzTests {
  static func files() throws -> [[UInt8]] {
    var rng = SplitMix64(seed: 17)
    let entries = (0..<3).map { i in
      ImportanceMatrixTests.Entry(
        name: "blk.\(i).ffn_up.weight", sums: (0..<64).map { _ in Float.random(in: 0...100, using: &rng) }, counts: [512])
    }
    return [
      try ImportanceMatrixTests.gguf(entries),
      ImportanceMatrixTests.legacy(entries.map { ($0.name, 4, $0.sums) }, trailer: (8, "/data/pride.txt")),
    ]
  }

  @Test(arguments: [0, 1]) func mutatedFilesReadOrAreRefused(file: Int) throws {
    let good = try Self.files()[file]
    var rng = SplitMix64(seed: 2026 + UInt64(file))
    var read = 0, refused = 0
    // The tensors the entries are for, as a model file lists them: [8, 64] each.
    var model = GGUFWriter()
    for i in 0..<3 { try model.addTensor("blk.\(i).ffn_up.weight", Tensor(shape: [8, 64], storage: [Float](repeating: 0, count: 512))) }
    let infos = try GGUFFile(bytes: model.serialized()).tensors
    for _ in 0..<600 {
      var bytes = good
      switch Int.random(in: 0..<4, using: &rng) {
      case 0:
        for _ in 0..<Int.random(in: 1...6, using: &rng) {
          bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        }
      case 1:
        bytes.removeLast(Int.random(in: 1..<bytes.count, using: &rng))
      case 2:
        // a 32- or 64-bit field set to an extreme value (counts, lengths, offsets, dimensions)
        let at = Int.random(in: 0..<(bytes.count - 8), using: &rng)
        let value: UInt64 = [0, 1, 0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 1 << 40].randomElement(using: &rng)!
        for k in 0..<(Bool.random(using: &rng) ? 4 : 8) { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
      default:
        // a float of the data set to NaN, −1, ∞ or a denormal
        let at = max(0, bytes.count - 4 * Int.random(in: 1...200, using: &rng))
        let f: Float = [.nan, -1, .infinity, .leastNonzeroMagnitude, 0].randomElement(using: &rng)!
        withUnsafeBytes(of: f.bitPattern.littleEndian) { for k in 0..<4 where at + k < bytes.count { bytes[at + k] = $0[k] } }
      }
      do {
        let m = try ImportanceMatrix(bytes: bytes, path: "fuzz")
        read += 1
        for (name, weights) in m.weights {
          #expect(weights.allSatisfy { $0.isFinite && $0 >= 0 }, "\(name): weights read back must be usable")
        }
        for info in infos { _ = try? m.importance(for: info) }
      } catch {
        refused += 1
        #expect(!error.message.isEmpty && !error.message.contains("\n"))
      }
    }
    #expect(read + refused == 600 && refused > 0)
  }
}
