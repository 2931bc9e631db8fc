import GGML

/// Activations quantized to int8, the partner of packed weights in the integer GEMV (ggml pairs q4_0 and q8_0
/// weights with q8_0 activations the same way).
///
/// Per block b of `blockSize` values: `d_b = amax_b/127` (kept as Float, not f16), `a_i = roundf(x_i·(1/d_b))` in
/// −127…127, `x_i ≈ d_b·a_i` with error ≤ d_b/2. GGML formats use blocks of 32 (like ggml's q8_0); the integer and
/// ternary formats use one block for the whole vector (per-token quantization), so a weight group's integer dot
/// needs one scale multiply, not one per 32 values. `sums16[k]` is Σ a_i over values 16k…16k+15, used by formats
/// with an offset (x̂ = s·q + m needs m·Σ a) and by the fused kernels, which multiply unsigned codes and subtract
/// the bias times Σ a. Codes are padded with zeros to a multiple of `blockSize` (and of 32).
public struct Q8Activations: Sendable, Equatable {
  /// Number of real values.
  public let count: Int
  /// Values per scale: 32, or the padded count for per-vector quantization.
  public let blockSize: Int
  /// Padded codes.
  public private(set) var codes: [Int8]
  /// One scale per block.
  public private(set) var scales: [Float]
  /// Σ codes over each 16 values.
  public private(set) var sums16: [Int32]
  /// The codes widened to Int16 once per vector, so the fused kernels multiply 16-bit lanes without re-extending
  /// the activations for every weight row.
  public private(set) var codes16: [Int16]
  /// For per-vector activations (one block) and blocks of 32: the codes rearranged once for the int4 and q4_0
  /// kernels, 160 Int16 per whole 128 values (`IntDot.nibblePlanes`); empty for other block sizes.
  public private(set) var nibblePlanes: [Int16]
  /// For blocks of 32: the codes split into even and odd elements per 64 values for the q8_0 kernel
  /// (`IntDot.bytePlanes`); empty otherwise.
  public private(set) var bytePlanes: [Int16]

  /// Quantizes `x` in blocks of `blockSize` (a multiple of 32), or as one block when `blockSize` is nil.
  public init(_ x: UnsafeBufferPointer<Float>, blockSize: Int? = 32) {
    precondition(blockSize.map { $0 > 0 && $0 % 32 == 0 } ?? true, "activation block size \(blockSize!) is not a multiple of 32")
    count = x.count
    let padded = (x.count + 31) / 32 * 32
    let block = blockSize ?? max(padded, 32)
    self.blockSize = block
    let blocks = (padded + block - 1) / block
    let total = blocks * block
    var scales = [Float](repeating: 0, count: blocks)
    let codes = [Int8](unsafeUninitializedCapacity: total) { q, initialized in
      q.initialize(repeating: 0)
      initialized = total
      for b in 0..<blocks {
        let range = (b * block)..<min(x.count, (b + 1) * block)
        // |x| bit patterns order like the values, and an integer max reduction vectorizes (a Float one does not).
        var amaxBits: UInt32 = 0
        for i in range { amaxBits = max(amaxBits, x[i].bitPattern & 0x7FFF_FFFF) }
        let d = Float(bitPattern: amaxBits) / 127
        let id: Float = d != 0 ? 1 / d : 0
        scales[b] = d
        for i in range { q[i] = BlockBytes.roundAwayToInt8(x[i] * id) }
      }
    }
    self.codes = codes
    self.scales = scales
    (self.codes16, self.sums16) = codes.withUnsafeBufferPointer { q in
      let wide = [Int16](unsafeUninitializedCapacity: total) { w, initialized in
        for i in 0..<total { w[i] = Int16(q[i]) }
        initialized = total
      }
      let sums = [Int32](unsafeUninitializedCapacity: total / 16) { s, initialized in
        for k in 0..<(total / 16) {
          var sum: Int32 = 0
          for i in 0..<16 { sum &+= Int32(q[16 * k + i]) }
          s[k] = sum
        }
        initialized = total / 16
      }
      return (wide, sums)
    }
    let planeBlocks = blocks == 1 || block == 32 ? total / 128 : 0
    nibblePlanes = codes16.withUnsafeBufferPointer { wide in
      [Int16](unsafeUninitializedCapacity: IntDot.planeStride * planeBlocks) { p, initialized in
        if planeBlocks > 0 { IntDot.nibblePlanes(codes16: wide.baseAddress!, blocks: planeBlocks, into: p.baseAddress!) }
        initialized = IntDot.planeStride * planeBlocks
      }
    }
    let pairs = block == 32 ? total / 64 : 0
    bytePlanes = codes16.withUnsafeBufferPointer { wide in
      [Int16](unsafeUninitializedCapacity: IntDot.bytePlaneStride * pairs) { p, initialized in
        if pairs > 0 { IntDot.bytePlanes(codes16: wide.baseAddress!, pairs: pairs, into: p.baseAddress!) }
        initialized = IntDot.bytePlaneStride * pairs
      }
    }
  }

  /// Quantizes an array.
  public init(_ x: [Float], blockSize: Int? = 32) {
    self = x.withUnsafeBufferPointer { Q8Activations($0, blockSize: blockSize) }
  }
}
