import Foundation
import GGML
import ModelIO
import TensorCore
import Testing
import _TestSupport

/// `GGMLRequantize` (decode + ggml's reference encoders) and `GGUFRewriter` (a streamed GGUF copy with some
/// tensors retyped), checked against their reference twins and against `GGUFWriter`'s layout.
@Suite struct GGUFRewriterTests {
  /// Stored bytes of `rows × columns` seeded values in `type` (Float → type through the reference encoder).
  static func stored(_ type: GGMLType, rows: Int, columns: Int, seed: UInt64) throws -> [UInt8] {
    let values = randomFloats(rows * columns, seed: seed, scale: 0.3)
    let raw = values.withUnsafeBytes { Array($0) }
    return try raw.withUnsafeBytes { try GGMLRequantize.reference($0, from: .f32, to: type, count: values.count, rowLength: columns) }
  }

  static let sources: [GGMLType] = [.f32, .f16, .bf16, .q4_1, .q8_0, .q4_K, .q6_K]
  static let targets: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .f16, .bf16, .f32]

  /// `fast` (rows split over workers, fast decoders and encoders) writes the bytes of `reference` (one thread,
  /// scalar decoders, the whole tensor as one run of rows, as ggml's `quantize_row_*_ref(src, dst, n)`), which are
  /// the bytes `GGMLEncode.reference` makes of `GGMLDecode.reference`'s values row by row.
  @Test(arguments: sources)
  func fastEqualsReference(from: GGMLType) throws {
    let (rows, columns) = (37, 512)
    let src = try Self.stored(from, rows: rows, columns: columns, seed: UInt64(from.rawValue) + 11)
    for to in Self.targets {
      let (fast, reference) = try src.withUnsafeBytes { b in
        (
          try GGMLRequantize.fast(b, from: from, to: to, count: rows * columns, rowLength: columns),
          try GGMLRequantize.reference(b, from: from, to: to, count: rows * columns, rowLength: columns)
        )
      }
      #expect(fast == reference, "\(from.name) → \(to.name)")
      #expect(fast.count == rows * to.rowSizeInBytes(columns)!)
      guard to.canQuantize else { continue }
      // Row by row, from the decoded values.
      let decoded = try GGMLDequantize.reference(from, src, count: rows * columns)
      let rowBytes = to.rowSizeInBytes(columns)!
      var rowByRow = [UInt8](repeating: 0, count: rows * rowBytes)
      decoded.withUnsafeBufferPointer { x in
        rowByRow.withUnsafeMutableBytes { out in
          for r in 0..<rows {
            GGMLEncode.reference(
              to, UnsafeBufferPointer(rebasing: x[r * columns..<(r + 1) * columns]),
              into: UnsafeMutableRawBufferPointer(rebasing: out[r * rowBytes..<(r + 1) * rowBytes]))
          }
        }
      }
      #expect(fast == rowByRow, "\(from.name) → \(to.name) row by row")
    }
  }

  /// Re-encoding commutes with any row permutation (blocks never cross a row): the RoPE-permuted Q/K rows of a
  /// GGUF can be re-encoded in the file's order, as llama-quantize does, with no unpermute.
  @Test func rowOrderDoesNotMatter() throws {
    let (rows, columns) = (24, 256)
    let src = try Self.stored(.q4_1, rows: rows, columns: columns, seed: 5)
    let order = try NameMapping.ggufRows(rows: rows, heads: 3)
    let srcRow = GGMLType.q4_1.rowSizeInBytes(columns)!
    var permuted = [UInt8](repeating: 0, count: src.count)
    for (hf, gguf) in order.enumerated() { permuted[gguf * srcRow..<(gguf + 1) * srcRow] = src[hf * srcRow..<(hf + 1) * srcRow] }
    for to in [GGMLType.q3_K, .q5_0, .f16] {
      let a = try src.withUnsafeBytes { try GGMLRequantize.fast($0, from: .q4_1, to: to, count: rows * columns, rowLength: columns) }
      let b = try permuted.withUnsafeBytes { try GGMLRequantize.fast($0, from: .q4_1, to: to, count: rows * columns, rowLength: columns) }
      let row = to.rowSizeInBytes(columns)!
      for (hf, gguf) in order.enumerated() {
        #expect(a[hf * row..<(hf + 1) * row] == b[gguf * row..<(gguf + 1) * row], "\(to.name) row \(hf)")
      }
    }
  }

  /// With an importance vector, `fast` and `reference` write the bytes of `GGMLEncode.weighted` row by row (the
  /// same vector for every row of a matrix; slice r / (rows / k) for k expert slices); the float types and q8_0
  /// ignore it; the K-quant and legacy bytes differ from the unweighted ones.
  @Test func importanceWeighsEveryRow() throws {
    let (rows, columns) = (8, 512)
    let src = try Self.stored(.q8_0, rows: rows, columns: columns, seed: 21)
    let decoded = try GGMLDequantize.reference(.q8_0, src, count: rows * columns)
    for slices in [1, 2] {
      // Importances are means of squares: non-negative, spread over a few orders of magnitude.
      let importance = randomFloats(slices * columns, seed: 22 + UInt64(slices)).map { $0 * $0 * 50 + 0.01 }
      for to in Self.targets {
        let (fast, reference, plain) = try src.withUnsafeBytes { b in
          (
            try GGMLRequantize.fast(b, from: .q8_0, to: to, count: rows * columns, rowLength: columns, importance: importance),
            try GGMLRequantize.reference(b, from: .q8_0, to: to, count: rows * columns, rowLength: columns, importance: importance),
            try GGMLRequantize.fast(b, from: .q8_0, to: to, count: rows * columns, rowLength: columns)
          )
        }
        #expect(fast == reference, "\(to.name), \(slices) slices")
        guard GGMLRequantize.usesImportance(to) else {
          #expect(fast == plain, "\(to.name) ignores the importance")
          continue
        }
        #expect(fast != plain, "\(to.name) is weighed")
        let rowBytes = to.rowSizeInBytes(columns)!
        var rowByRow = [UInt8](repeating: 0, count: rows * rowBytes)
        decoded.withUnsafeBufferPointer { x in
          importance.withUnsafeBufferPointer { w in
            rowByRow.withUnsafeMutableBytes { out in
              for r in 0..<rows {
                let s = r / (rows / slices)
                GGMLEncode.weighted(
                  to, UnsafeBufferPointer(rebasing: x[r * columns..<(r + 1) * columns]),
                  importance: UnsafeBufferPointer(rebasing: w[s * columns..<(s + 1) * columns]),
                  into: UnsafeMutableRawBufferPointer(rebasing: out[r * rowBytes..<(r + 1) * rowBytes]))
              }
            }
          }
        }
        #expect(fast == rowByRow, "\(to.name) row by row, \(slices) slices")
      }
    }
    // Sizes: not whole rows, or slices that do not divide the rows.
    for count in [columns - 32, 3 * columns, 0] {
      #expect(throws: ModelIOError.self, "\(count) importances") {
        try src.withUnsafeBytes {
          try GGMLRequantize.fast($0, from: .q8_0, to: .q4_K, count: rows * columns, rowLength: columns,
            importance: [Float](repeating: 1, count: count))
        }
      }
    }
  }

  @Test func requantizeRefusesBadSizesAndTypes() throws {
    let src = [UInt8](repeating: 0, count: 4 * 64)
    func code(_ from: GGMLType, _ to: GGMLType, count: Int = 64, row: Int = 64) -> ModelIOError.Code? {
      do {
        _ = try src.withUnsafeBytes { try GGMLRequantize.fast($0, from: from, to: to, count: count, rowLength: row) }
        return nil
      } catch { return (error as? ModelIOError)?.code }
    }
    #expect(code(.f32, .q4_K) == .sizeMismatch)  // 64 values are not a 256-block
    #expect(code(.f32, .q8_K) == .unsupported)  // an activation type
    #expect(code(.iq2_XS, .q4_0) == .unsupported)  // no decoder
    #expect(code(.f32, .q4_0, count: 64, row: 48) == .sizeMismatch)
    #expect(code(.f32, .q4_0, count: 32, row: 32) == .sizeMismatch)  // 256 bytes are not 32 f32 values
    // An f16 overflow is refused, as ggml_validate_row_data refuses it in llama-quantize.
    let big = [Float](repeating: 1e6, count: 32).withUnsafeBytes { Array($0) }
    #expect(throws: ModelIOError.self) {
      try big.withUnsafeBytes { try GGMLRequantize.fast($0, from: .f32, to: .f16, count: 32, rowLength: 32) }
    }
  }

  /// A small GGUF: metadata, a 2-D weight, a 1-D norm, a Q8_0 matrix; alignment `alignment`.
  static func sourceFile(alignment: Int = GGUFFile.defaultAlignment) throws -> GGUFFile {
    var w = GGUFWriter(alignment: alignment)
    try w.add("general.architecture", .string("llama"))
    try w.add("general.file_type", .uint32(0))
    try w.add("tokenizer.ggml.tokens", .array(.string, [.string("a"), .string("b")]))
    try w.add("general.quantization_version", .uint32(2))
    try w.addTensor("blk.0.attn_q.weight", Tensor(shape: [8, 256], storage: randomFloats(8 * 256, seed: 1, scale: 0.2)))
    try w.addTensor("blk.0.attn_norm.weight", Tensor(shape: [256], storage: randomFloats(256, seed: 2)))
    try w.addTensor("blk.0.ffn_down.weight", shape: [4, 64], type: .q8_0, data: try stored(.q8_0, rows: 4, columns: 64, seed: 3))
    return try GGUFFile(bytes: w.serialized())
  }

  /// Unchanged, the rewriter writes the source file byte for byte (GGUFWriter's layout), any alignment.
  @Test(arguments: [32, 64])
  func unchangedCopyIsTheSourceFile(alignment: Int) throws {
    let folder = temporaryFolder("rewriter-copy")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var w = GGUFWriter(alignment: alignment)
    try w.add("general.architecture", .string("llama"))
    try w.addTensor("a.weight", Tensor(shape: [3, 5], storage: randomFloats(15, seed: 9)))
    try w.addTensor("b.weight", Tensor(shape: [7], storage: randomFloats(7, seed: 10)), as: .f16)
    let bytes = w.serialized()
    let rewriter = GGUFRewriter(source: try GGUFFile(bytes: bytes))
    try rewriter.write(to: folder + "/out.gguf")
    let written = try ByteSource(path: folder + "/out.gguf")
    #expect(Array(UnsafeRawBufferPointer(start: written.base, count: written.count)) == bytes)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["out.gguf"])
  }

  /// Retyped tensors hold `GGMLRequantize`'s bytes; the others and the metadata are as in the source; a set key
  /// moves to the end, as ggml's gguf_set_val_* moves it.
  @Test func retypedTensorsAndMetadata() throws {
    let folder = temporaryFolder("rewriter-retype")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let source = try Self.sourceFile(alignment: 64)
    var r = GGUFRewriter(source: source)
    try r.setType(.q4_K, ofTensor: "blk.0.attn_q.weight")
    try r.setType(.q8_0, ofTensor: "blk.0.ffn_down.weight")  // its stored type: copied
    try r.setValue(.uint32(7), forKey: "general.file_type")
    var progress: [String] = []
    try r.write(to: folder + "/out.gguf") { done, total, name in
      #expect(total == 3 && done == progress.count + 1)
      progress.append(name)
    }
    #expect(progress == source.tensors.map(\.name))
    let out = try GGUFFile(path: folder + "/out.gguf")
    #expect(out.alignment == 64)
    #expect(out.metadataKeys == ["general.alignment", "general.architecture", "tokenizer.ggml.tokens", "general.quantization_version", "general.file_type"])
    #expect(out.metadata["general.file_type"] == .uint32(7))
    #expect(out.metadata["tokenizer.ggml.tokens"] == source.metadata["tokenizer.ggml.tokens"])
    #expect(out.tensors.map(\.name) == source.tensors.map(\.name))
    #expect(out.tensors.map(\.shape) == source.tensors.map(\.shape))
    #expect(out.tensors.map(\.type) == [.q4_K, .f32, .q8_0])
    let q = try source.rawBytes(of: source.tensors[0])
    let expected = try GGMLRequantize.reference(q, from: .f32, to: .q4_K, count: 8 * 256, rowLength: 256)
    #expect(try out.rawData(named: "blk.0.attn_q.weight") == expected)
    for name in ["blk.0.attn_norm.weight", "blk.0.ffn_down.weight"] {
      #expect(try out.rawData(named: name) == source.rawData(named: name), "\(name)")
    }
  }

  /// `setImportance`: the re-encoded tensor is weighed by it; a copied tensor ignores it; wrong sizes are refused.
  @Test func importanceWeighsTheReencodedTensor() throws {
    let folder = temporaryFolder("rewriter-importance")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let source = try Self.sourceFile()
    let importance = randomFloats(256, seed: 9).map { $0 * $0 + 0.1 }
    var r = GGUFRewriter(source: source)
    try r.setType(.q4_K, ofTensor: "blk.0.attn_q.weight")
    try r.setImportance(importance, ofTensor: "blk.0.attn_q.weight")
    try r.setImportance([Float](repeating: 1, count: 64), ofTensor: "blk.0.ffn_down.weight")  // kept in its type
    try r.write(to: folder + "/out.gguf")
    let out = try GGUFFile(path: folder + "/out.gguf")
    let q = try source.rawBytes(of: source.tensors[0])
    let weighted = try GGMLRequantize.reference(q, from: .f32, to: .q4_K, count: 8 * 256, rowLength: 256, importance: importance)
    #expect(try out.rawData(named: "blk.0.attn_q.weight") == weighted)
    #expect(try weighted != GGMLRequantize.reference(q, from: .f32, to: .q4_K, count: 8 * 256, rowLength: 256))
    #expect(try out.rawData(named: "blk.0.ffn_down.weight") == source.rawData(named: "blk.0.ffn_down.weight"))
    #expect(throws: ModelIOError(.missingTensor, "no tensor named 'nope'")) { try r.setImportance([1], ofTensor: "nope") }
    #expect(performing: { try r.setImportance([Float](repeating: 1, count: 128), ofTensor: "blk.0.attn_q.weight") }, throws: {
      ($0 as? ModelIOError)?.code == .sizeMismatch && "\($0)".contains("tensor 'blk.0.attn_q.weight' [8, 256]: 128 importances")
    })
  }

  @Test func refusals() throws {
    var r = GGUFRewriter(source: try Self.sourceFile())
    #expect(throws: ModelIOError(.missingTensor, "no tensor named 'nope'")) { try r.setType(.q4_0, ofTensor: "nope") }
    #expect(performing: { try r.setType(.q4_K, ofTensor: "blk.0.ffn_down.weight") }, throws: { ($0 as? ModelIOError)?.code == .sizeMismatch })
    #expect(performing: { try r.setType(.iq4_NL, ofTensor: "blk.0.attn_q.weight") }, throws: { ($0 as? ModelIOError)?.code == .unsupported })
    #expect(performing: { try r.setValue(.uint32(64), forKey: "general.alignment") }, throws: { ($0 as? ModelIOError)?.code == .badHeader })
    // A write into a missing folder fails before anything is created.
    #expect(performing: { try r.write(to: "/nonexistent-bitplan-folder/out.gguf") }, throws: { ($0 as? ModelIOError)?.code == .cannotCreate })
  }

  @Test func llamaFileType() throws {
    func info(_ name: String, _ dims: [Int], _ type: GGMLType) throws -> GGUFTensorInfo {
      var w = GGUFWriter()
      try w.addTensor(name, shape: dims.reversed(), type: type, data: [UInt8](repeating: 0, count: type.rowSizeInBytes(dims[0])! * dims.dropFirst().reduce(1, *)))
      return try GGUFFile(bytes: w.serialized()).tensors[0]
    }
    let norm = try info("blk.0.attn_norm.weight", [4096], .f32)
    let q = try info("blk.0.attn_q.weight", [256, 4], .q4_K)
    let v = try info("blk.0.attn_v.weight", [256, 8], .q6_K)
    let e = try info("token_embd.weight", [256, 64], .f16)
    // The quantized type with the most weights (f16 has more, but a quantized type wins); norms never count.
    #expect(LlamaFileType.of([norm, q, v, e]) == LlamaFileType.mostly(.q6_K))
    #expect(LlamaFileType.of([norm, q, v, e]).rawValue == 18)
    #expect(LlamaFileType.of([q, try info("blk.0.attn_k.weight", [256, 4], .q3_K)]).name == "Q3_K_M")  // tie: lower id
    #expect(LlamaFileType.of([norm, e]).name == "F16")
    #expect(LlamaFileType.of([norm]).name == "F32")
    #expect(!LlamaFileType.isQuantizable(norm) && LlamaFileType.isQuantizable(q))
  }
}
