import GGML
import TensorCore

/// T tokens of activations quantized to int8, token by token: the input of the int8-activation GEMM
/// (`PackedGEMM`).
///
/// Token t is quantized exactly as `Q8Activations(x[t], blockSize:)`: per block b of `blockLength` values
/// `d_b = amax_b/127`, `a_i = roundf(x_i·(1/d_b))`, codes zero-padded to `codeStride`. So `codes(token:)` and
/// `scales(token:)` equal that value's `codes` and `scales` bit for bit, which is what makes the GEMM equal to the
/// per-token GEMV (`Q8ActivationBatchTests`). Storage is reused: `quantize` allocates only when a batch needs more
/// tokens than any before it.
public struct Q8ActivationBatch: Sendable {
  /// Values per token.
  public let columns: Int
  /// Values per scale: 32 (GGML types), or `codeStride` for one scale per token (`blockSize` nil).
  public let blockLength: Int
  /// Codes per token: `columns` rounded up to a multiple of 32 (and of `blockLength`).
  public let codeStride: Int
  /// Scales per token.
  public let scaleStride: Int
  /// Tokens quantized by the last `quantize`.
  public private(set) var tokens: Int = 0
  /// `tokens · codeStride` codes (more capacity may follow).
  public private(set) var codes: [Int8] = []
  /// `tokens · scaleStride` scales.
  public private(set) var scales: [Float] = []

  /// An empty batch for rows of `columns` values in blocks of `blockSize` (a multiple of 32), or one block per
  /// token when nil: pass `PackedTensor.activationBlockSize`.
  public init(columns: Int, blockSize: Int?) {
    precondition(columns >= 0, "columns \(columns)")
    precondition(blockSize.map { $0 > 0 && $0 % 32 == 0 } ?? true, "activation block size \(blockSize!) is not a multiple of 32")
    self.columns = columns
    let padded = (columns + 31) / 32 * 32
    blockLength = blockSize ?? max(padded, 32)
    scaleStride = (padded + blockLength - 1) / blockLength
    codeStride = scaleStride * blockLength
  }

  /// Quantizes `x` (`[tokens, columns]`, row-major), replacing the previous batch. Tokens are split over the
  /// `Parallel` workers when the batch is large; the result does not depend on the split.
  public mutating func quantize(_ x: UnsafePointer<Float>, tokens: Int) {
    precondition(tokens >= 0, "tokens \(tokens)")
    self.tokens = tokens
    if codes.count < tokens * codeStride { codes = [Int8](repeating: 0, count: tokens * codeStride) }
    if scales.count < tokens * scaleStride { scales = [Float](repeating: 0, count: tokens * scaleStride) }
    let (columns, block, codeStride, scaleStride) = (self.columns, blockLength, self.codeStride, self.scaleStride)
    codes.withUnsafeMutableBufferPointer { q in
      scales.withUnsafeMutableBufferPointer { d in
        let (q, d) = (q.baseAddress!, d.baseAddress!)
        Parallel.forEachChunk(tokens, costPerItem: columns, minimumWork: 1 << 18) { range in
          for t in range {
            Self.quantizeToken(x + t * columns, columns: columns, block: block, codes: q + t * codeStride,
              padded: codeStride, scales: d + t * scaleStride)
          }
        }
      }
    }
  }

  /// One token: `Q8Activations.init`'s loop, without its arrays.
  @inline(__always)
  static func quantizeToken(
    _ x: UnsafePointer<Float>, columns: Int, block: Int, codes q: UnsafeMutablePointer<Int8>, padded: Int,
    scales: UnsafeMutablePointer<Float>
  ) {
    var b = 0, start = 0
    while start < padded {
      let end = min(columns, start + block)
      // |x| bit patterns order like the values, and an integer max reduction vectorizes (a Float one does not).
      var amaxBits: UInt32 = 0
      var i = start
      while i < end { amaxBits = max(amaxBits, x[i].bitPattern & 0x7FFF_FFFF); i += 1 }
      let d = Float(bitPattern: amaxBits) / 127
      let id: Float = d != 0 ? 1 / d : 0
      scales[b] = d
      i = start
      // 16 lanes at a time, the same arithmetic as `BlockBytes.roundAwayToInt8` (truncate, then step away from zero
      // when the dropped part is at least ½): bit for bit the scalar loop, which finishes the tail.
      let scale = SIMD16<Float>(repeating: id)
      while i + 16 <= end {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) * scale
        let t = v.rounded(.towardZero)
        let dropped = v - t
        var step = SIMD16<Float>(repeating: 1)
        step.replace(with: -1, where: v .< 0)
        var r = t
        r.replace(with: t + step, where: dropped .>= 0.5 .| dropped .<= -0.5)
        // r is a whole number in −127…127: adding 1.5·2²³ puts it in the low mantissa bits (the scalar helper's
        // trick; Swift's Float→Int SIMD conversion runs lane by lane).
        let bits = unsafeBitCast(r + 12_582_912, to: SIMD16<UInt32>.self) & 0x7F_FFFF &- 0x40_0000
        UnsafeMutableRawPointer(q + i).storeBytes(of: SIMD16<Int8>(truncatingIfNeeded: bits), as: SIMD16<Int8>.self)
        i += 16
      }
      while i < end { q[i] = BlockBytes.roundAwayToInt8(x[i] * id); i += 1 }
      while i < start + block { q[i] = 0; i += 1 }  // padding
      b += 1
      start += block
    }
  }

  /// Token t's codes (`codeStride` values, zero past `columns`).
  public func codes(token t: Int) -> ArraySlice<Int8> {
    precondition(t >= 0 && t < tokens, "token \(t) of \(tokens)")
    return codes[(t * codeStride)..<((t + 1) * codeStride)]
  }

  /// Token t's scales.
  public func scales(token t: Int) -> ArraySlice<Float> {
    precondition(t >= 0 && t < tokens, "token \(t) of \(tokens)")
    return scales[(t * scaleStride)..<((t + 1) * scaleStride)]
  }
}
