import Testing
import _TestSupport

@testable import Quantization

/// GEMV and GEMM variants against their references, over every SIMD tail.
struct KernelTests {
  static let formats: [QuantFormat] = ["q4_0", "q8_0", "q4_1", "q5_0", "q5_1", "int4", "int8", "int4-g32", "int4-g128", "int8-g64",
    "int3-g32-asym", "int4-g64-asym", "int8-asym", "int4-asym", "int5", "ternary", "nf4", "f16", "bf16", "q4_k", "q6_k", "q2_k", "q3_k", "q5_k"].map { try! QuantFormat(parsing: $0) }

  /// Every variant but the reference; each is compared with `.reference`.
  static let fastVariants = KernelVariant.allCases.filter { $0 != .reference }

  /// Float dot tolerance: the SIMD dot sums n/32 products per lane, then 8 lanes and a ≤31-term tail, so at most
  /// n/32 + 40 rounded additions in Float; the reference is exact to 2⁻⁵³ and rounded once:
  /// |Δ| ≤ (n/32 + 41)·2⁻²⁴·Σ|wᵢxᵢ|.
  static func floatDotTolerance(_ n: Int, _ absSum: Float) -> Float { (Float(n) / 32 + 41) * 0x1p-24 * absSum + 1e-30 }

  /// Int8 dot tolerance: block sums are exact Int32 in both variants; the fast path multiplies two Float scales
  /// with each block sum (2 roundings) and adds ≤ n/16 + 2 terms in Float: |Δ| ≤ (n/16 + 6)·2⁻²⁴·Σ|ŵᵢ|·|d·aᵢ|.
  static func int8DotTolerance(_ n: Int, _ absSum: Float) -> Float { (Float(n) / 16 + 6) * 0x1p-24 * absSum + 1e-30 }

  @Test(arguments: formats)
  func gemvFloatMatchesReference(format: QuantFormat) throws {
    let rows = 3
    for n in tailLengths + [2304] where format.canQuantize(rows: rows, columns: n) {
      let w = randomFloats(rows * n, seed: 1, scale: 0.1), x = randomFloats(n, seed: 2)
      let packed = try quantize(w, rows: rows, columns: n, format: format)
      let want = packed.gemv(x, variant: .reference)
      let wq = packed.dequantize()
      for variant in Self.fastVariants {
        let got = packed.gemv(x, variant: variant)
        for r in 0..<rows {
          let absSum = (0..<n).reduce(Float(0)) { $0 + abs(wq[r * n + $1] * x[$1]) }
          #expect(abs(want[r] - got[r]) <= Self.floatDotTolerance(n, absSum), "\(format) \(variant) n=\(n) row \(r)")
        }
      }
    }
  }

  @Test(arguments: formats.filter(\.hasIntegerCodes))
  func gemvInt8MatchesReference(format: QuantFormat) throws {
    let rows = 3
    for n in tailLengths + [2304] where format.canQuantize(rows: rows, columns: n) {
      let w = randomFloats(rows * n, seed: 3, scale: 0.1), x = randomFloats(n, seed: 4)
      let packed = try quantize(w, rows: rows, columns: n, format: format)
      let want = packed.gemv(x, activations: .int8, variant: .reference)
      let got = Self.fastVariants.map { packed.gemv(x, activations: .int8, variant: $0) }
      let floatPath = packed.gemv(x, activations: .float, variant: .reference)
      let wq = packed.dequantize(), a = Q8Activations(x, blockSize: packed.activationBlockSize)
      for r in 0..<rows {
        var absSum: Float = 0, activationError: Float = 0
        for i in 0..<n {
          let d = a.scales[i / a.blockSize]
          absSum += abs(wq[r * n + i]) * abs(d * Float(a.codes[i]))
          // Activation rounding: |xᵢ − d·aᵢ| ≤ d/2 (+ the rounding of 1/d and of the product, < d·2⁻²⁰).
          activationError += abs(wq[r * n + i]) * d * (0.5 + 0x1p-20)
        }
        for (variant, y) in zip(Self.fastVariants, got) {
          #expect(abs(want[r] - y[r]) <= Self.int8DotTolerance(n, absSum), "\(format) \(variant) n=\(n) row \(r)")
        }
        // The int8 path differs from the Float path only by activation rounding.
        #expect(abs(want[r] - floatPath[r]) <= activationError + Self.floatDotTolerance(n, absSum) * 2, "\(format) n=\(n) row \(r)")
      }
    }
  }

  /// Tile dequantize + BLAS against per-token reference GEMV. OpenBLAS sums k products in Float in an unknown
  /// order: |Δ| ≤ (k + 41)·2⁻²⁴·Σ|wx|.
  @Test(arguments: ["q4_0", "int4-g32", "q6_k", "nf4", "f16"].map { try! QuantFormat(parsing: $0) })
  func gemmMatchesReference(format: QuantFormat) throws {
    for (tokens, rows, n) in [(1, 3, 256), (5, 7, 512), (3, 300, 256), (2, 1, 0)] where format.canQuantize(rows: rows, columns: n) {
      let w = randomFloats(rows * n, seed: 5, scale: 0.1), x = randomFloats(tokens * n, seed: 6)
      let packed = try quantize(w, rows: rows, columns: n, format: format)
      let want = packed.gemm(x, tokens: tokens, variant: .reference), got = packed.gemm(x, tokens: tokens, variant: .simd)
      let wq = packed.dequantize()
      for t in 0..<tokens {
        for r in 0..<rows {
          let absSum = (0..<n).reduce(Float(0)) { $0 + abs(wq[r * n + $1] * x[t * n + $1]) }
          #expect(abs(want[t * rows + r] - got[t * rows + r]) <= (Float(n) + 41) * 0x1p-24 * absSum + 1e-30, "\(format) t=\(t) r=\(r)")
        }
      }
    }
  }

  /// Activation quantization: codes within ±127, reconstruction within d/2, sums16 are the code sums.
  @Test(arguments: tailLengths, [32, 64, nil] as [Int?])
  func q8ActivationsRoundTrip(n: Int, blockSize: Int?) {
    let x = randomFloats(n, seed: 9, scale: 3)
    let a = Q8Activations(x, blockSize: blockSize)
    #expect(a.codes.count % 32 == 0 && a.codes.count >= n && a.codes.count % a.blockSize == 0)
    for i in 0..<n {
      let d = a.scales[i / a.blockSize]
      #expect(abs(x[i] - d * Float(a.codes[i])) <= d * (0.5 + 0x1p-20) + 1e-30)
    }
    for k in 0..<a.sums16.count {
      let want = ((16 * k)..<(16 * k + 16)).reduce(Int32(0)) { $0 + Int32(a.codes[$1]) }
      #expect(a.sums16[k] == want)
    }
  }

  /// Large tensors are quantized in parallel row blocks; the bytes equal row-by-row quantization.
  @Test(arguments: ["q4_k", "int4-g128", "q8_0", "nf4-g64"].map { try! QuantFormat(parsing: $0) })
  func parallelQuantizeEqualsRowByRow(format: QuantFormat) throws {
    let (rows, columns) = (64, 1024)
    let w = randomFloats(rows * columns, seed: 17, scale: 0.1)
    let whole = try quantize(w, rows: rows, columns: columns, format: format)
    var pieces = [UInt8]()
    for r in 0..<rows { pieces += try quantize(Array(w[(r * columns)..<((r + 1) * columns)]), rows: 1, columns: columns, format: format).bytes }
    #expect(whole.bytes == pieces)
  }

  /// Integer formats also accept 32-blocked activations (the decoded path) and agree with the reference.
  @Test func integerFormatsAcceptBlockedActivations() throws {
    for name in ["int4-g64", "int8", "int3-g32-asym", "ternary-g64"] {
      let format = try QuantFormat(parsing: name)
      let (rows, n) = (4, 256)
      let w = randomFloats(rows * n, seed: 31, scale: 0.1), x = randomFloats(n, seed: 32)
      let packed = try quantize(w, rows: rows, columns: n, format: format)
      let a = Q8Activations(x, blockSize: 32)
      var want = [Float](repeating: 0, count: rows), got = want
      want.withUnsafeMutableBufferPointer { packed.gemvInt8(a, into: $0, variant: .reference) }
      let wq = packed.dequantize()
      for variant in Self.fastVariants {
        got.withUnsafeMutableBufferPointer { packed.gemvInt8(a, into: $0, variant: variant) }
        for r in 0..<rows {
          let absSum = (0..<n).reduce(Float(0)) { $0 + abs(wq[r * n + $1]) * abs(a.scales[$1 / 32] * Float(a.codes[$1])) }
          #expect(abs(want[r] - got[r]) <= Self.int8DotTolerance(n, absSum), "\(name) \(variant) row \(r)")
        }
      }
    }
  }

  /// Splitting rows over threads computes every row exactly as one thread does.
  @Test(arguments: ["q4_0", "int4-g64", "int4-g128", "int4", "int8", "int8-g64-asym", "q6_k", "nf4", "q4_1"].map { try! QuantFormat(parsing: $0) })
  func threadedGEMVIsIdentical(format: QuantFormat) throws {
    let (rows, n) = (37, 256)
    let w = randomFloats(rows * n, seed: 41, scale: 0.1), x = randomFloats(n, seed: 42)
    let packed = try quantize(w, rows: rows, columns: n, format: format)
    for precision in ActivationPrecision.allCases {
      let one = packed.gemv(x, activations: precision, threads: 1)
      for threads in [2, 3, 64] {
        #expect(packed.gemv(x, activations: precision, threads: threads) == one, "\(format) \(precision) threads=\(threads)")
      }
    }
  }

  /// `IntDot.nibbleLanes` (16-bit lanes over `nibblePlanes`) equals the plain Int sum of (nibble − zero) × activation
  /// over the q4_0 order, bit for bit, for block counts around its 4-block step, zero points 0, 8 and 15, and at the
  /// lane-bound extremes (every nibble 15 or 0, every activation +127 or −127: 4 blocks reach ±30,480 per Int16 lane).
  @Test(arguments: [0, 1, 2, 3, 4, 5, 7, 8, 9, 33])
  func nibbleLanesMatchScalarSum(blocks: Int) {
    var rng = SplitMix64(seed: UInt64(100 + blocks))
    let n = 128 * blocks
    let cases: [(bytes: [UInt8], codes: [Int8])] = [
      ((0..<(n / 2)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, (0..<n).map { _ in Int8(Int(rng.next() % 255) - 127) }),
      ([UInt8](repeating: 0xFF, count: n / 2), [Int8](repeating: 127, count: n)),
      ([UInt8](repeating: 0xFF, count: n / 2), [Int8](repeating: -127, count: n)),
      ([UInt8](repeating: 0x00, count: n / 2), [Int8](repeating: 127, count: n)),
    ]
    for (bytes, codes) in cases {
      for zero in [0, 8, 15] {
        // Plain reference: byte b of chunk c holds value 32c + b%16 (low nibble) and 32c + 16 + b%16 (high nibble).
        var want = 0
        for (i, byte) in bytes.enumerated() {
          let c = i / 16, j = i % 16
          want += (Int(byte & 15) - zero) * Int(codes[32 * c + j]) + (Int(byte >> 4) - zero) * Int(codes[32 * c + 16 + j])
        }
        let codes16 = codes.map { Int16($0) } + [0]
        var planes = [Int16](repeating: 0, count: IntDot.planeStride * blocks + 1)
        let got = codes16.withUnsafeBufferPointer { c16 in
          planes.withUnsafeMutableBufferPointer { p in
            IntDot.nibblePlanes(codes16: c16.baseAddress!, blocks: blocks, into: p.baseAddress!)
            return (bytes + [0]).withUnsafeBytes { q in
              IntDot.nibbleLanes(q.baseAddress!, p.baseAddress!, count: blocks, zero: Int16(zero))
            }
          }
        }
        #expect(Int(got.wrappedSum()) == want, "blocks=\(blocks) zero=\(zero)")
      }
    }
  }

  /// int4 groups that go through `nibbleBlocks` (multiples of 128, and one group per row) and those that cannot
  /// (groups of 96 or 160 values: not every group starts on a block) agree with the reference, 1…9 groups per row.
  @Test(arguments: ["int4-g128", "int4-g256", "int4-g128-asym", "int4-g512-asym", "int4-g96", "int4-g160-asym"].map { try! QuantFormat(parsing: $0) })
  func int4GroupedGEMVMatchesReference(format: QuantFormat) throws {
    let group = format.groupSize!
    for groups in [1, 2, 3, 4, 5, 9] {
      let (rows, n) = (3, groups * group)
      #expect(IntDot.usesNibblePlanes(columns: n, length: group) == (group % 128 == 0 || (groups == 1 && group > 96)))
      let w = randomFloats(rows * n, seed: 51, scale: 0.1), x = randomFloats(n, seed: 52)
      let packed = try quantize(w, rows: rows, columns: n, format: format)
      let want = packed.gemv(x, activations: .int8, variant: .reference)
      let wq = packed.dequantize(), a = Q8Activations(x, blockSize: packed.activationBlockSize)
      for variant in Self.fastVariants {
        let got = packed.gemv(x, activations: .int8, variant: variant)
        for r in 0..<rows {
          let absSum = (0..<n).reduce(Float(0)) { $0 + abs(wq[r * n + $1]) * abs(a.scales[0] * Float(a.codes[$1])) }
          #expect(abs(want[r] - got[r]) <= Self.int8DotTolerance(n, absSum), "\(format) \(variant) groups=\(groups) row \(r)")
        }
      }
    }
  }

  /// q4_0 through `IntDot.q4_0Planes` (four blocks per step) and q8_0 through `IntDot.q8_0Pairs` (two per step),
  /// the rest one block at a time, agree with the reference for 1…13 blocks, so every block tail is hit; also at
  /// the lane-bound extremes (every weight and activation code ±127 or, for q4_0, the code range ends).
  @Test(arguments: ["q4_0", "q8_0"], [1, 2, 3, 4, 5, 6, 7, 8, 9, 13])
  func blockedGEMVStepsMatchReference(name: String, blocks: Int) throws {
    let format = try QuantFormat(parsing: name)
    let (rows, n) = (3, 32 * blocks)
    let inputs: [(w: [Float], x: [Float])] = [
      (randomFloats(rows * n, seed: 61, scale: 0.1), randomFloats(n, seed: 62)),
      ([Float](repeating: 0.1, count: rows * n), [Float](repeating: 1, count: n)),
      ((0..<(rows * n)).map { $0 % 2 == 0 ? 0.1 : -0.1 }, (0..<n).map { $0 % 2 == 0 ? -1 : 1 }),
    ]
    for (w, x) in inputs {
      let packed = try quantize(w, rows: rows, columns: n, format: format)
      let a = Q8Activations(x, blockSize: packed.activationBlockSize)
      #expect(a.nibblePlanes.count == IntDot.planeStride * (n / 128) && a.bytePlanes.count == IntDot.bytePlaneStride * (n / 64))
      let want = packed.gemv(x, activations: .int8, variant: .reference)
      let got = packed.gemv(x, activations: .int8, variant: .simd)
      let wq = packed.dequantize()
      for r in 0..<rows {
        let absSum = (0..<n).reduce(Float(0)) { $0 + abs(wq[r * n + $1]) * abs(a.scales[$1 / 32] * Float(a.codes[$1])) }
        #expect(abs(want[r] - got[r]) <= Self.int8DotTolerance(n, absSum), "\(name) blocks=\(blocks) row \(r)")
      }
    }
  }

  /// `hasFusedInt8Kernel` names exactly the formats whose simd int8 GEMV differs from the decoded path's code.
  @Test func fusedKernelListIsAccurate() throws {
    let fused = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q6_k", "int4", "int8-g64", "int4-g32-asym"]
    let decoded = ["q2_k", "q3_k", "q5_k", "int3-g32", "ternary-g64", "nf4", "f16"]
    for name in fused + decoded {
      let format = try QuantFormat(parsing: name)
      let packed = try quantize(randomFloats(256, seed: 1), rows: 1, columns: 256, format: format)
      #expect(packed.hasFusedInt8Kernel == fused.contains(name), "\(name)")
    }
  }
}
