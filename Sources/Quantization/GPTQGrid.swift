import GGML

/// The quantization grid GPTQ chooses codes on: for each block of a row (an integer group, the whole row when
/// per-channel, a GGML block, an affine group) the scales are fixed first by the format's own quantizer, then every
/// value of the block is given a code against them, one column at a time, and the bytes are written at the end.
///
/// **Scales.** `fixBlock` runs the format's RTN quantizer on the block's values for every row (the current,
/// error-updated values when GPTQ reaches the block's first column; the original weights for act-order's static
/// groups) and reads the scales back from the bytes it wrote:
/// - `int<B>[-g<G>][-asym]`: `IntegerCodec.quantizeRow` with the tensor's `IntegerCodec.Clip` (min-max, the
///   percentile or KL threshold of the original tensor, or the per-group MSE search on the block's values); the f16
///   scale d (and zero point z) from the group header.
/// - GGML types: `GGMLEncode.fast` on the block (32 or 256 values), so d, m / dmin and the sub-block scales and mins
///   are exactly ggml's for those values; K-quant sub-block steps `d·sc` and offsets `dmin·m` from `GGMLLayout`.
/// - `affine<B>-g<G>`: `AffineCodec.groupParameters` (mlx's scale and bias), stored as f16.
///
/// **Codes.** Each format's own final code rule, evaluated with the same Float operations as its RTN quantizer, so
/// that values GPTQ does not move get exactly RTN's codes (`GPTQTests`: with H = I the bytes equal `quantize`'s):
/// - `roundAway` (intN, q8_0): `u = clamp(roundf(x·f) + z, low, high)`, f = 1/d with d the stored scale (q8_0: the
///   unrounded `amax/127`, as ggml); q8_0 is clamped to ±127.
/// - `floorOffset` (q4_0, q5_0, q4_1, q5_1): `u = clamp(⌊(x + sh)·f + c⌋, 0, high)`: ggml's `(int)(x·id + 8.5)`
///   (q4_0) and `(int)((x − min)·id + 0.5)` (q4_1) with ggml's unrounded d and min, floored for negative arguments
///   (where ggml's cast would wrap: values RTN never produces).
/// - `divideEven` (K-quants, affine): `u = clamp(rint((x + sh)/f) + z, low, high)`: ggml's
///   `nearest_int((x + dmin·m)/(d·sc))` and mlx's `rint((x − bias)/scale)`. A K-quant sub-block whose step d·sc is 0
///   keeps the encoder's codes (every code decodes to the same value there).
///
/// **Values.** `x̂ = (u − z)·a + b` with the stored (f16-derived) step a and offset b, which is the decoder's value
/// (`GGMLDecode`, `IntegerCodec.dequantizeRow*`, `AffineCodec.dequantizeRow*`): GPTQ feeds back the error of the
/// weight the packed tensor really holds.
struct GPTQGrid {
  /// The code rule (see the type's documentation).
  enum Rule { case roundAway, floorOffset, divideEven }

  let format: QuantFormat
  let rows: Int
  let columns: Int
  /// Columns whose scales are found together: a group, a GGML block, or the whole row.
  let blockLength: Int
  /// Columns that share one step and offset per row: the block, or a K-quant sub-block (16 or 32).
  let paramLength: Int
  let rule: Rule
  /// `c` of `floorOffset`.
  let offset: Float
  /// Clamp bounds of the unsigned code u.
  let low: Float, high: Float
  /// The clip rule of the integer formats.
  let clip: IntegerCodec.Clip
  /// Bytes of one stored row.
  let rowSize: Int

  /// Per parameter group p and row r, at `p·rows + r`: code factor f, shift sh, zero z, value step a and offset b.
  private(set) var f: [Float], sh: [Float], z: [Float], a: [Float], b: [Float]
  /// The tensor's bytes: scales (and the encoder's codes) written by `fixBlock`, codes by `pack`.
  private(set) var bytes: [UInt8]

  /// Whether GPTQ can use this format (`GPTQ.supports`).
  static func supports(_ format: QuantFormat) -> Bool {
    switch format.scheme {
    case .integer, .affine: return true
    case .ggml(let type): return type.canQuantize
    case .f32, .f16, .bf16, .nf4, .ternary: return false
    }
  }

  /// - Precondition: `supports(format)` and `format.canQuantize(rows:columns:)`.
  init(format: QuantFormat, rows: Int, columns: Int, clip: IntegerCodec.Clip) {
    self.format = format
    self.rows = rows
    self.columns = columns
    self.clip = clip
    rowSize = format.rowSizeInBytes(columns: columns)
    switch format.scheme {
    case .integer(let bits):
      blockLength = format.groupSize ?? columns
      paramLength = blockLength
      rule = .roundAway
      (offset, low, high) = (0, 0, Float((1 << bits) - 1))
    case .affine(let bits):
      blockLength = format.groupSize!
      paramLength = blockLength
      rule = .divideEven
      (offset, low, high) = (0, 0, Float((1 << bits) - 1))
    case .ggml(let type):
      blockLength = type.blockSize
      switch type {
      case .q4_0, .q5_0:
        let levels = type == .q4_0 ? 8 : 16
        (rule, offset, low, high) = (.floorOffset, Float(levels) + 0.5, 0, Float(2 * levels - 1))
      case .q4_1, .q5_1: (rule, offset, low, high) = (.floorOffset, 0.5, 0, type == .q4_1 ? 15 : 31)
      case .q8_0: (rule, offset, low, high) = (.roundAway, 0, 1, 255)  // u = q + 128, q in ±127
      default:
        let range = GGMLLayout.codeRange(type)
        (rule, offset, low, high) = (.divideEven, 0, 0, Float(range.upperBound - range.lowerBound))
      }
      paramLength = type.blockSize == 32 ? 32 : GGMLLayout.subBlockLength(type)
    case .f32, .f16, .bf16, .nf4, .ternary: preconditionFailure("GPTQ does not quantize \(format.name)")
    }
    let count = rows * (columns / max(paramLength, 1))
    (f, sh, z, a, b) = (Array(repeating: 0, count: count), Array(repeating: 0, count: count),
      Array(repeating: 0, count: count), Array(repeating: 0, count: count), Array(repeating: 0, count: count))
    bytes = Array(repeating: 0, count: rows * rowSize)
  }

  /// The bias between a GGML type's unsigned code u and the signed code `GGMLLayout.code` returns.
  private static func ggmlBias(_ type: GGMLType) -> Int {
    switch type {
    case .q8_0: 128
    default: -GGMLLayout.codeRange(type).lowerBound
    }
  }

  // MARK: - Scales

  /// Fixes the scales of block `block` (columns `block·blockLength ..< +blockLength`) from `values`, the block's
  /// `rows × blockLength` values row-major.
  mutating func fixBlock(_ block: Int, values: UnsafePointer<Float>) {
    let L = blockLength
    let perBlock = L / paramLength
    // The bytes are moved out while the parameter arrays (also `self`) are written.
    var buffer = [UInt8]()
    swap(&buffer, &bytes)
    defer { swap(&buffer, &bytes) }
    buffer.withUnsafeMutableBytes { out in
      let o = out.baseAddress!
      for r in 0..<rows {
        let v = values + r * L
        let row = o + r * rowSize
        switch format.scheme {
        case .integer(let bits):
          let size = IntegerCodec.groupBytes(length: L, bits: bits, symmetric: format.symmetric)
          let y = row + block * size
          IntegerCodec.quantizeRow(
            UnsafeBufferPointer(start: v, count: L), UnsafeMutableRawBufferPointer(start: y, count: size), bits: bits,
            group: format.groupSize, symmetric: format.symmetric, clip: clip)
          let d = BlockBytes.f16(y, 0)
          let k = block * rows + r
          if format.symmetric {
            (f[k], z[k]) = (d != 0 ? 1 / d : 0, Float(1 << (bits - 1)))
          } else {
            (f[k], z[k]) = (d > 0 ? 1 / d : 0, Float(y.load(fromByteOffset: 2, as: UInt8.self)))
          }
          (sh[k], a[k], b[k]) = (0, d, 0)
        case .affine(let bits):
          let (scale, bias) = AffineCodec.groupParameters(v, count: L, bits: bits)
          let groups = columns / L, codeBytes = columns * bits / 8
          BlockBytes.storeF16(scale, row, codeBytes + 2 * block)
          BlockBytes.storeF16(bias, row, codeBytes + 2 * groups + 2 * block)
          let k = block * rows + r
          (f[k], sh[k], z[k]) = (scale, -bias, 0)
          (a[k], b[k]) = (BlockBytes.f16(row, codeBytes + 2 * block), BlockBytes.f16(row, codeBytes + 2 * groups + 2 * block))
        case .ggml(let type):
          let y = row + block * type.bytesPerBlock
          GGMLEncode.fast(
            type, UnsafeBufferPointer(start: v, count: L), into: UnsafeMutableRawBufferPointer(start: y, count: type.bytesPerBlock))
          if L == 32 {
            setLegacyParameters(type, v, y, index: block * rows + r)
          } else {
            let (d, dmin) = GGMLLayout.blockScales(type, y)
            let bias = Float(Self.ggmlBias(type))
            for s in 0..<perBlock {
              let (sc, mn) = GGMLLayout.subScale(type, y, s)
              let dj = d * Float(sc), dm = dmin * Float(mn)
              let k = (block * perBlock + s) * rows + r
              (f[k], sh[k], z[k], a[k], b[k]) = (dj, dm, bias, dj, -dm)
            }
          }
        case .f32, .f16, .bf16, .nf4, .ternary: preconditionFailure("unsupported")
        }
      }
    }
  }

  /// The code rule of a legacy block from ggml's own Float parameters (recomputed as `GGMLLegacyCodec` computes
  /// them: the unrounded d and min), its values from the stored f16 d and m.
  private mutating func setLegacyParameters(_ type: GGMLType, _ x: UnsafePointer<Float>, _ y: UnsafeRawPointer, index k: Int) {
    switch type {
    case .q4_0, .q5_0:
      var amax: Float = 0, m: Float = 0
      for j in 0..<32 where amax < abs(x[j]) {
        amax = abs(x[j])
        m = x[j]
      }
      let levels: Float = type == .q4_0 ? 8 : 16
      let d = m / -levels
      (f[k], sh[k], z[k], b[k]) = (d != 0 ? 1 / d : 0, 0, levels, 0)
    case .q4_1, .q5_1:
      var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
      for j in 0..<32 {
        if x[j] < lo { lo = x[j] }
        if x[j] > hi { hi = x[j] }
      }
      let d = (hi - lo) / (type == .q4_1 ? 15 : 31)
      (f[k], sh[k], z[k], b[k]) = (d != 0 ? 1 / d : 0, -lo, 0, BlockBytes.f16(y, 2))
    case .q8_0:
      var amax: Float = 0
      for j in 0..<32 { amax = max(amax, abs(x[j])) }
      let d = amax / 127
      (f[k], sh[k], z[k], b[k]) = (d != 0 ? 1 / d : 0, 0, 128, 0)
    default: preconditionFailure("\(type.name) is not a legacy type")
    }
    a[k] = BlockBytes.f16(y, 0)
  }

  // MARK: - Codes

  /// Codes and values of column `column` for every row: `x` in, unsigned codes `u` and decoded values `q` out.
  func quantizeColumn(
    _ column: Int, _ x: UnsafePointer<Float>, codes u: UnsafeMutablePointer<UInt8>, values q: UnsafeMutablePointer<Float>
  ) {
    let base = (column / paramLength) * rows
    f.withUnsafeBufferPointer { fp in
      sh.withUnsafeBufferPointer { shp in
        z.withUnsafeBufferPointer { zp in
          a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
              let (f, sh, z, a, b) = (fp.baseAddress! + base, shp.baseAddress! + base, zp.baseAddress! + base,
                ap.baseAddress! + base, bp.baseAddress! + base)
              let (low, high, c) = (self.low, self.high, offset)
              for r in 0..<rows {
                var t: Float
                switch rule {
                case .roundAway: t = (x[r] * f[r]).rounded(.toNearestOrAwayFromZero) + z[r]
                case .floorOffset: t = ((x[r] + sh[r]) * f[r] + c).rounded(.down)
                case .divideEven: t = f[r] != 0 ? ((x[r] + sh[r]) / f[r]).rounded(.toNearestOrEven) + z[r] : z[r]
                }
                t = t < low ? low : t
                t = t > high ? high : t
                u[r] = UInt8(t)
                q[r] = (t - z[r]) * a[r] + b[r]
              }
            }
          }
        }
      }
    }
  }

  // MARK: - Bytes

  /// Writes the codes (`codes[column·rows + r]`, unsigned) into the bytes and returns them.
  func pack(codes: [UInt8]) -> [UInt8] {
    var out = bytes
    out.withUnsafeMutableBytes { raw in
      let o = raw.baseAddress!
      for r in 0..<rows {
        let row = o + r * rowSize
        switch format.scheme {
        case .integer(let bits):
          let L = blockLength
          let size = IntegerCodec.groupBytes(length: L, bits: bits, symmetric: format.symmetric)
          let header = format.symmetric ? 2 : 3
          for g in 0..<(columns / L) {
            let area = row + g * size + header
            area.initializeMemory(as: UInt8.self, repeating: 0, count: size - header)
            for j in 0..<L { IntegerCodec.storeCode(area, j, Int(codes[(g * L + j) * rows + r]), bits: bits) }
          }
        case .affine(let bits):
          let codeBytes = columns * bits / 8
          row.initializeMemory(as: UInt8.self, repeating: 0, count: codeBytes)
          for i in 0..<columns {
            let u = Int(codes[i * rows + r])
            for bit in 0..<bits where (u >> bit) & 1 == 1 {
              let at = i * bits + bit
              row.storeBytes(
                of: row.load(fromByteOffset: at / 8, as: UInt8.self) | UInt8(1 << (at % 8)), toByteOffset: at / 8, as: UInt8.self)
            }
          }
        case .ggml(let type):
          let bias = Self.ggmlBias(type)
          for i in 0..<columns {
            // A K-quant sub-block with step 0 keeps the encoder's codes (all decode to the same value).
            if rule == .divideEven && f[(i / paramLength) * rows + r] == 0 { continue }
            let p = row + (i / blockLength) * type.bytesPerBlock
            GGMLLayout.setCode(type, p, i % blockLength, Int(codes[i * rows + r]) - bias)
          }
        case .f32, .f16, .bf16, .nf4, .ternary: preconditionFailure("unsupported")
        }
      }
    }
    return out
  }
}
