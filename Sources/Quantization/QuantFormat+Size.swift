import GGML

/// Shapes, exact byte counts and default candidate sets.
extension QuantFormat {
  /// Whether a row-major `[rows, columns]` weight can be stored in this format.
  ///
  /// Groups and blocks run along a row (the input dimension), so the group or block size must divide `columns`:
  /// GGML legacy blocks need `columns % 32 == 0`, K-quants `columns % 256 == 0` (on SmolLM2, hidden 576, only
  /// `ffn_down` with 1536 columns qualifies), `int4-g128` needs `columns % 128 == 0`. Per-channel and float formats
  /// take any shape. Negative sizes are never accepted.
  public func canQuantize(rows: Int, columns: Int) -> Bool {
    guard rows >= 0, columns >= 0 else { return false }
    guard let g = groupSize else { return true }
    return columns % g == 0
  }

  /// Exact bytes of one stored row of `columns` weights (codes, scales, zero points, super-block metadata and
  /// padding). A tensor is `rows` rows back to back, so `sizeInBytes = rows · rowSizeInBytes`.
  ///
  /// - `f32` 4c, `f16`/`bf16` 2c.
  /// - `intN[-gG][-asym]`: per group of L weights (L = G, or c per-channel): 2 (f16 scale) + 1 if asymmetric
  ///   (u8 zero point) + ⌈L/32⌉·4N bytes of codes (32-value chunks, the last zero-padded).
  /// - `affine<B>-g<G>`: B·c/8 bytes of codes (MLX's uint32 words) + 4·c/G (f16 scale and f16 bias per group).
  /// - `nf4[-gG]`: per group 2 + ⌈L/32⌉·16. `ternary[-gG]`: per group 2 + ⌈L/5⌉ (five trits per byte).
  /// - GGML: `c / blockSize · bytesPerBlock`.
  /// - Precondition: `canQuantize(rows: 1, columns: columns)`.
  public func rowSizeInBytes(columns: Int) -> Int {
    precondition(canQuantize(rows: 1, columns: columns), "\(name) cannot take rows of \(columns) values")
    if columns == 0 { return 0 }
    let groupLength = groupSize ?? columns
    let groups = columns / groupLength
    switch scheme {
    case .f32: return 4 * columns
    case .f16, .bf16: return 2 * columns
    case .integer(let bits):
      return groups * (2 + (symmetric ? 0 : 1) + (groupLength + 31) / 32 * 4 * bits)
    case .nf4: return groups * (2 + (groupLength + 31) / 32 * 16)
    case .ternary: return groups * (2 + (groupLength + 4) / 5)
    case .ggml(let type): return columns / type.blockSize * type.bytesPerBlock
    case .affine(let bits): return AffineCodec.rowBytes(columns: columns, bits: bits, group: groupLength)
    }
  }

  /// Exact bytes of a `[rows, columns]` tensor in this format; equals `PackedTensor.bytes.count` of what
  /// `quantize` produces.
  /// - Precondition: `canQuantize(rows:columns:)`.
  public func sizeInBytes(rows: Int, columns: Int) -> Int {
    precondition(canQuantize(rows: rows, columns: columns), "\(name) cannot take a [\(rows), \(columns)] tensor")
    return rows * rowSizeInBytes(columns: columns)
  }

  /// Bits per weight including every byte of metadata: `8 · sizeInBytes / (rows · columns)` (0 for an empty tensor).
  public func bitsPerWeight(rows: Int, columns: Int) -> Double {
    let count = rows * columns
    return count == 0 ? 0 : 8 * Double(sizeInBytes(rows: rows, columns: columns)) / Double(count)
  }

  /// Whether the format has integer codes that the int8-activation GEMV path (`PackedTensor.gemv(_:activations:)`)
  /// can use; `f32`, `f16`, `bf16`, `nf4` (a non-uniform codebook) and `affine` (a Float bias per group, which the
  /// int8 kernels' integer zero points cannot express) run on Float activations only.
  public var hasIntegerCodes: Bool {
    switch scheme {
    case .f32, .f16, .bf16, .nf4, .affine: return false
    case .integer, .ternary, .ggml: return true
    }
  }

  /// The default candidate set: f16, per-channel int8, int6…int2 at groups 128/64/32 (symmetric) plus the common
  /// asymmetric variants, nf4-g64, ternary-g64, and every GGML type.
  public static let defaultCandidates: [QuantFormat] = {
    var names = ["f16", "int8"]
    for bits in [6, 5, 4, 3] { for g in [128, 64, 32] { names.append("int\(bits)-g\(g)") } }
    names += ["int2-g64", "int2-g32", "int4-g128-asym", "int3-g128-asym", "int2-g64-asym", "nf4-g64", "ternary-g64"]
    names += ["q8_0", "q6_k", "q5_k", "q5_1", "q5_0", "q4_k", "q4_1", "q4_0", "q3_k", "q2_k"]
    return names.map { try! QuantFormat(parsing: $0) }
  }()

  /// The formats of `from` that can take a `[rows, columns]` tensor, in their given order. A format is never
  /// offered to a tensor whose shape it cannot take.
  public static func candidates(
    for rows: Int, columns: Int, from list: [QuantFormat] = defaultCandidates
  ) -> [QuantFormat] {
    list.filter { $0.canQuantize(rows: rows, columns: columns) }
  }

  /// Parses a comma-separated list (`--candidates int4-g128,q4_k,f16`).
  /// - Throws: `QuantizationError.badFormatName` for the first bad entry.
  public static func parseList(_ text: String) throws -> [QuantFormat] {
    try text.split(separator: ",").map { try QuantFormat(parsing: String($0.filter { !$0.isWhitespace })) }
  }
}
