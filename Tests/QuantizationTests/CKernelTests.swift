import GGML
import Testing
import _TestSupport

@testable import Quantization

/// The `CKernels` int4 / int8 GEMV (variants `intrinsics` and `portableC`) against the Swift reference, bit for bit.
///
/// With every group scale 1.0 (f16 0x3C00) and activations that quantize to themselves (integers with |x| ≤ 127
/// and one x = 127, so d = 1), the result is the integer Σ (u − z)·a. Every Float operation on the way is exact as
/// long as all partial sums stay below 2²⁴, so every variant must return exactly the reference's value: this checks
/// the integer paths (nibble order, zero points, chunk and block tails, group strides) without a tolerance.
struct CKernelTests {
  static let formats: [QuantFormat] = ["int4", "int8", "int4-asym", "int8-asym", "int4-g32", "int4-g32-asym", "int4-g64",
    "int4-g64-asym", "int4-g128", "int4-g256", "int8-g32", "int8-g32-asym", "int8-g64", "int8-g128-asym", "int4-g160", "int2-g64", "int2-asym", "int3", "int3-g32-asym", "int3-g64",
    "int5-asym", "int5-g128", "int6-g64", "int6-g160-asym", "int7", "int7-g64-asym"]
    .map { try! QuantFormat(parsing: $0) }

  /// A `[rows, n]` tensor in the IntegerCodec layout with scale 1.0 per group: codes u = z + δ (δ from `delta`),
  /// zero point z = 2^(bits−1) or, asymmetric, `zero(g)`.
  static func unitScaleTensor(
    _ format: QuantFormat, rows: Int, n: Int, zero: (Int) -> Int, delta: (Int) -> Int
  ) throws -> PackedTensor {
    guard case .integer(let bits) = format.scheme else { fatalError("\(format) is not an integer format") }
    let length = format.groupSize ?? n
    let groupBytes = IntegerCodec.groupBytes(length: length, bits: bits, symmetric: format.symmetric)
    var bytes = [UInt8](repeating: 0, count: format.sizeInBytes(rows: rows, columns: n))
    bytes.withUnsafeMutableBytes { out in
      for r in 0..<rows {
        for g in 0..<(n / length) {
          let p = out.baseAddress! + r * format.rowSizeInBytes(columns: n) + g * groupBytes
          p.storeBytes(of: UInt16(0x3C00).littleEndian, as: UInt16.self)
          let z = format.symmetric ? 1 << (bits - 1) : zero(r * 7 + g)
          if !format.symmetric { p.storeBytes(of: UInt8(z), toByteOffset: 2, as: UInt8.self) }
          for j in 0..<length {
            let u = min(max(z + delta(r * n + g * length + j), 0), (1 << bits) - 1)
            IntegerCodec.storeCode(p + (format.symmetric ? 2 : 3), j, u, bits: bits)
          }
        }
      }
    }
    return try PackedTensor(format: format, rows: rows, columns: n, bytes: bytes)
  }

  /// Quantizes the integer-valued `x` (|x| ≤ 127, a 127 in every activation block) in blocks of `blockSize`,
  /// expects it to quantize to itself (every scale 1, codes = x), then every variant's `gemvInt8` to equal the
  /// reference's bit for bit.
  static func expectVariantsExact(_ packed: PackedTensor, _ x: [Float], blockSize: Int?, _ label: String) {
    let a = Q8Activations(x, blockSize: blockSize)
    #expect(a.scales.allSatisfy { $0 == 1 } && a.codes.prefix(x.count).map { Float($0) } == x, "\(label): activations")
    var want = [Float](repeating: .nan, count: packed.rows), got = want
    want.withUnsafeMutableBufferPointer { packed.gemvInt8(a, into: $0, variant: .reference) }
    for variant in KernelVariant.allCases where variant != .reference {
      got.withUnsafeMutableBufferPointer { packed.gemvInt8(a, into: $0, variant: variant) }
      #expect(got == want, "\(label) \(variant)")
    }
  }

  @Test(arguments: formats)
  func integerSumsAreExact(format: QuantFormat) throws {
    guard case .integer(let bits) = format.scheme else { return }
    // Row counts: the vector kernel pairs row i with row ⌊rows/2⌋ + i and runs an odd last row alone.
    // tailLengths, plus group counts that leave 1…3 groups after the packed steps of int4-g32/-g64 and int8-g32.
    let shapes = [1, 4, 5].flatMap { rows in (tailLengths + [96, 160, 192, 224, 320, 2304]).map { (rows, $0) } }
    for (rows, n) in shapes where n > 0 && format.canQuantize(rows: rows, columns: n) {
      var rng = SplitMix64(seed: UInt64(n))
      // Small random codes and activations (|partial sums| ≤ n·2·8 + 2·127 < 2²⁴), then the extremes: every code
      // at an end of its range against ±127 (widths above 5 bits only while n·252·127 < 2²⁴, i.e. n ≤ 512; int5:
      // 4099·31·127 < 2²⁴).
      let small = (0..<(rows * n)).map { _ in Int(rng.next() % 5) - 2 }
      var cases: [(delta: (Int) -> Int, x: [Float])] = [
        ({ small[$0] }, (0..<n).map { $0 == n / 2 ? 127 : Float(Int(rng.next() % 17) - 8) })
      ]
      if bits <= 5 || n <= 512 {
        cases.append(({ _ in 1 << bits }, [Float](repeating: 127, count: n)))
        cases.append(({ _ in -(1 << bits) }, (0..<n).map { $0 % 3 == 0 ? 127 : -127 }))
      }
      for (delta, x) in cases {
        let packed = try Self.unitScaleTensor(format, rows: rows, n: n, zero: { 3 + $0 % 9 }, delta: delta)
        Self.expectVariantsExact(packed, x, blockSize: nil, "\(format) rows=\(rows) n=\(n)")
      }
    }
  }

  /// ggml's q4_0 and q8_0 against 32-value activation blocks (the C kernel's per-group activation scales, and
  /// q8_0's signed codes), bit for bit on integer-valued inputs: every block scale is 1.0 and every activation
  /// block holds a 127, so each d_b = 1 and y is the integer Σ q·a (q = nibble − 8 or the signed byte).
  @Test(arguments: ["q4_0", "q8_0"])
  func ggmlBlockSumsAreExact(name: String) throws {
    let format = try QuantFormat(parsing: name)
    let isQ4 = name == "q4_0", blockBytes = isQ4 ? 18 : 34
    for rows in [1, 4, 5] {
      for n in [32, 64, 96, 128, 160, 224, 256, 288, 1024, 2304] {
        var rng = SplitMix64(seed: UInt64(n * 10 + rows))
        // Random codes, then every code at an end of its range (q8_0 only while n·128·127 < 2²⁴, n ≤ 1024).
        var codeCases: [(Int) -> Int] = [{ _ in Int(rng.next() % (isQ4 ? 16 : 256)) }]
        if isQ4 || n <= 1024 { codeCases += [{ _ in 0 }, { _ in isQ4 ? 15 : 255 }] }
        for code in codeCases {
          var bytes = [UInt8](repeating: 0, count: format.sizeInBytes(rows: rows, columns: n))
          for r in 0..<rows {
            for b in 0..<(n / 32) {
              let at = r * format.rowSizeInBytes(columns: n) + b * blockBytes
              (bytes[at], bytes[at + 1]) = (0x00, 0x3C)  // f16 1.0
              for j in 0..<(isQ4 ? 16 : 32) {
                // q4_0: byte j holds values j (low nibble) and j + 16 (high); q8_0: u = q + 128 stored as q.
                bytes[at + 2 + j] = isQ4 ? UInt8(code(r) | code(r) << 4) : UInt8(code(r)) ^ 0x80
              }
            }
          }
          let packed = try PackedTensor(format: format, rows: rows, columns: n, bytes: bytes)
          let x = (0..<n).map { $0 % 32 == 7 ? Float(127) : Float(Int(rng.next() % 255) - 127) }
          #expect(IntDot.cLayout(format, columns: n, rowBytes: packed.rowSizeInBytes, activationBlock: 32) != nil)
          Self.expectVariantsExact(packed, x, blockSize: 32, "\(name) rows=\(rows) n=\(n)")
        }
      }
    }
  }

  /// ggml's q4_1, q5_0 and q5_1 against 32-value activation blocks, bit for bit on integer-valued inputs: d = 1.0,
  /// m = −3.0 (exact in f16), every activation block holds a 127 (d_b = 1), so y is the integer Σ_b (Σ q·a + m·Σ a)
  /// or Σ_b Σ (q − 16)·a, below 2²⁴ for 2304 columns (72 blocks × 31·(31·8 + 127)). Lengths that leave 1, 2 and 3
  /// blocks after the 4-block steps check the masked last step.
  @Test(arguments: ["q4_1", "q5_0", "q5_1"])
  func legacyBlockSumsAreExact(name: String) throws {
    let format = try QuantFormat(parsing: name)
    let (size, qs) = name == "q4_1" ? (20, 4) : name == "q5_0" ? (22, 6) : (24, 8)
    for rows in [1, 4, 5] {
      for n in [32, 64, 96, 128, 160, 224, 256, 288, 1024, 2304] {
        var rng = SplitMix64(seed: UInt64(n * 3 + rows))
        // Random codes against small activations, then every code at its top (15 or 31) against 127 everywhere:
        // the largest Int16 pairs any kernel may add before widening them (|y| ≤ 2304·31·127 < 2²⁴).
        for extreme in [false, true] {
          var bytes = [UInt8](repeating: 0, count: format.sizeInBytes(rows: rows, columns: n))
          for r in 0..<rows {
            for b in 0..<(n / 32) {
              let at = r * format.rowSizeInBytes(columns: n) + size * b
              (bytes[at], bytes[at + 1]) = (0x00, 0x3C)  // d = 1.0
              if name != "q5_0" { (bytes[at + 2], bytes[at + 3]) = (0x00, 0xC2) }  // m = −3.0
              for i in (name == "q4_1" ? 4 : qs - 4)..<size {  // qh, qs
                bytes[at + i] = extreme ? 0xFF : UInt8(truncatingIfNeeded: rng.next())
              }
            }
          }
          let packed = try PackedTensor(format: format, rows: rows, columns: n, bytes: bytes)
          let x = (0..<n).map { extreme || $0 % 32 == 11 ? Float(127) : Float(Int(rng.next() % 17) - 8) }
          Self.expectVariantsExact(packed, x, blockSize: 32, "\(name) rows=\(rows) n=\(n) extreme=\(extreme)")
        }
      }
    }
  }

  /// ggml's q4_K and q5_K against 32-value activation blocks, bit for bit on integer-valued inputs: d = dmin = 1.0,
  /// every activation block holds a 127 (d_b = 1), so y is the integer Σ_j (sc_j·Σ q·a − m_j·Σ a). Scales and mins
  /// span all six bits (the packed high bits included) while every partial sum stays below 2²⁴: per sub-block
  /// |sc·Σ q·a| ≤ 63·q_max·(31·8 + 127), i.e. 32 sub-blocks (1024 columns) for q4_K and 16 (512) for q5_K; beyond
  /// that, scales and mins ≤ 3.
  @Test(arguments: ["q4_k", "q5_k"])
  func q4_KAndQ5_KSumsAreExact(name: String) throws {
    let format = try QuantFormat(parsing: name)
    let isQ5 = name == "q5_k", blockBytes = isQ5 ? 176 : 144
    for rows in [1, 4, 5] {
      // Then, at 256 and 512 columns, every code at its top (15 or 31) against 127 everywhere (the largest Int16
      // pairs a kernel may add before widening), scales and mins ≤ 3: |y| ≤ 16·3·31·127·32 < 2²⁴.
      for (n, extreme) in [256, 512, 1024, 2304].map({ ($0, false) }) + [(256, true), (512, true)] {
        var rng = SplitMix64(seed: UInt64(n + rows))
        let top = n <= (isQ5 ? 512 : 1024) && !extreme ? 64 : 4
        var bytes = [UInt8](repeating: 0, count: format.sizeInBytes(rows: rows, columns: n))
        for r in 0..<rows {
          for s in 0..<(n / 256) {
            let at = r * format.rowSizeInBytes(columns: n) + blockBytes * s
            (bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]) = (0x00, 0x3C, 0x00, 0x3C)  // d = dmin = 1.0
            let sc = (0..<8).map { _ in Int(rng.next() % UInt64(top)) }, m = (0..<8).map { _ in Int(rng.next() % UInt64(top)) }
            for j in 0..<4 {
              bytes[at + 4 + j] = UInt8(sc[j] | (sc[j + 4] >> 4) << 6)
              bytes[at + 8 + j] = UInt8(m[j] | (m[j + 4] >> 4) << 6)
              bytes[at + 12 + j] = UInt8((sc[j + 4] & 15) | (m[j + 4] & 15) << 4)
            }
            bytes.withUnsafeBytes { raw in  // the codec reads back what was packed
              for j in 0..<8 {
                let (scale, min) = GGMLLayout.scaleMinK4(raw.baseAddress! + at + 4, j)
                #expect(Int(scale) == sc[j] && Int(min) == m[j], "sub-block \(j)")
              }
            }
            for l in 0..<(blockBytes - 16) {  // qh, qs
              bytes[at + 16 + l] = extreme ? 0xFF : UInt8(truncatingIfNeeded: rng.next())
            }
          }
        }
        let packed = try PackedTensor(format: format, rows: rows, columns: n, bytes: bytes)
        let x = (0..<n).map { extreme || $0 % 32 == 5 ? Float(127) : Float(Int(rng.next() % 17) - 8) }
        Self.expectVariantsExact(packed, x, blockSize: 32, "\(name) rows=\(rows) n=\(n) extreme=\(extreme)")
      }
    }
  }

  /// ggml's q6_K against 32-value activation blocks, bit for bit on integer-valued inputs: d = 1.0, every activation
  /// block holds a 127 (d_b = 1), so y is the integer Σ_k sc_k·Σ (q − 32)·a. Per super-block |Σ (q − 32)·a| over
  /// its 16 sub-blocks is at most 8·32·(15·8 + 127) + 8·32·16·8 < 2¹⁷, so scales span all of int8 at 256 columns
  /// and −8…7 beyond (9 super-blocks), every partial sum below 2²⁴.
  @Test func q6_KSumsAreExact() throws {
    let format = try QuantFormat(parsing: "q6_k")
    for rows in [1, 4, 5] {
      for n in [256, 512, 2304] {
        var rng = SplitMix64(seed: UInt64(7 * n + rows))
        var bytes = [UInt8](repeating: 0, count: format.sizeInBytes(rows: rows, columns: n))
        for r in 0..<rows {
          for s in 0..<(n / 256) {
            let at = r * format.rowSizeInBytes(columns: n) + 210 * s
            for i in 0..<192 { bytes[at + i] = UInt8(truncatingIfNeeded: rng.next()) }  // ql, qh: any bits
            for k in 0..<16 {
              let scale = n == 256 ? Int(rng.next() % 256) - 128 : Int(rng.next() % 16) - 8
              bytes[at + 192 + k] = UInt8(bitPattern: Int8(scale))
            }
            (bytes[at + 208], bytes[at + 209]) = (0x00, 0x3C)  // d = 1.0
          }
        }
        let packed = try PackedTensor(format: format, rows: rows, columns: n, bytes: bytes)
        let x = (0..<n).map { $0 % 32 == 20 ? Float(127) : Float(Int(rng.next() % 17) - 8) }
        Self.expectVariantsExact(packed, x, blockSize: 32, "q6_k rows=\(rows) n=\(n)")
        // Every code −32 (ql = qh = 0) against 127 everywhere, scales ±1: the largest Int16 pairs a kernel may add
        // before applying the scales (4·2·32·127 < 2¹⁵); |y| ≤ 2304·32·127 < 2²⁴.
        var extreme = [UInt8](repeating: 0, count: bytes.count)
        for r in 0..<rows {
          for s in 0..<(n / 256) {
            let at = r * format.rowSizeInBytes(columns: n) + 210 * s
            for k in 0..<16 { extreme[at + 192 + k] = UInt8(bitPattern: Int8(k % 3 == 0 ? -1 : 1)) }
            (extreme[at + 208], extreme[at + 209]) = (0x00, 0x3C)
          }
        }
        Self.expectVariantsExact(
          try PackedTensor(format: format, rows: rows, columns: n, bytes: extreme), [Float](repeating: 127, count: n),
          blockSize: 32, "q6_k rows=\(rows) n=\(n) extreme")
      }
    }
  }

  /// ggml's q2_K against 32-value activation blocks, bit for bit on integer-valued inputs: d = dmin = 1.0, every
  /// activation block holds a 127 (d_b = 1), so y is the integer Σ_k (sc_k·Σ q·a − m_k·Σ a) over sub-blocks of 16,
  /// with all 4-bit scales and mins; per super-block at most 15·3·8·(31·8 + 127) + 15·8·(31·8 + 127) < 2¹⁸, so 9
  /// super-blocks stay below 2²⁴.
  /// q3_K likewise with d = 1.0 (any hmask, qs and 6-bit scales): |sc − 32|·|q| ≤ 32·4, so a super-block sums to at
  /// most 128·8·(31·8 + 127) < 2¹⁹.
  @Test(arguments: ["q2_k", "q3_k"])
  func q2_KAndQ3_KSumsAreExact(name: String) throws {
    let format = try QuantFormat(parsing: name)
    let isQ2 = name == "q2_k", blockBytes = isQ2 ? 84 : 110
    for rows in [1, 4, 5] {
      for n in [256, 512, 2304] {
        var rng = SplitMix64(seed: UInt64(5 * n + rows))
        var bytes = [UInt8](repeating: 0, count: format.sizeInBytes(rows: rows, columns: n))
        for r in 0..<rows {
          for s in 0..<(n / 256) {
            let at = r * format.rowSizeInBytes(columns: n) + blockBytes * s
            // q2_K: scales and mins, qs; q3_K: hmask, qs, scales. Then d (and q2_K's dmin) = 1.0.
            for i in 0..<(isQ2 ? 80 : 108) { bytes[at + i] = UInt8(truncatingIfNeeded: rng.next()) }
            (bytes[at + blockBytes - (isQ2 ? 4 : 2)], bytes[at + blockBytes - (isQ2 ? 3 : 1)]) = (0x00, 0x3C)
            if isQ2 { (bytes[at + 82], bytes[at + 83]) = (0x00, 0x3C) }
          }
        }
        let packed = try PackedTensor(format: format, rows: rows, columns: n, bytes: bytes)
        let x = (0..<n).map { $0 % 32 == 3 ? Float(127) : Float(Int(rng.next() % 17) - 8) }
        Self.expectVariantsExact(packed, x, blockSize: 32, "\(name) rows=\(rows) n=\(n)")
      }
    }
  }

  /// The C path is taken for int4 / int8 with per-vector activations and for q4_0 / q8_0 with 32-value blocks, and
  /// reports its table.
  @Test func variantsNameTheirTables() throws {
    #expect(KernelVariant.portableC.integerGEMVTable == "portable")
    #expect(["avx512-vnni", "avx2", "portable"].contains(KernelVariant.intrinsics.integerGEMVTable))
    #expect(["avx2", "portable"].contains(KernelVariant.avx2C.integerGEMVTable))
    #expect(KernelVariant.best == (KernelVariant.intrinsics.integerGEMVTable == "portable" ? .simd : .intrinsics))
    let int4 = try QuantFormat(parsing: "int4-g64"), nf4 = try QuantFormat(parsing: "nf4-g64")
    #expect(IntDot.cLayout(int4, columns: 128, rowBytes: int4.rowSizeInBytes(columns: 128), activationBlock: 128) != nil)
    #expect(IntDot.cLayout(int4, columns: 128, rowBytes: int4.rowSizeInBytes(columns: 128), activationBlock: 32) == nil)
    #expect(IntDot.cLayout(nf4, columns: 128, rowBytes: nf4.rowSizeInBytes(columns: 128), activationBlock: 128) == nil)
    let q4_0 = try QuantFormat(parsing: "q4_0"), q4_1 = try QuantFormat(parsing: "q4_1")
    #expect(IntDot.cLayout(q4_0, columns: 128, rowBytes: 72, activationBlock: 32) != nil)
    #expect(IntDot.cLayout(q4_0, columns: 128, rowBytes: 72, activationBlock: 128) == nil)
    #expect(IntDot.cLayout(q4_1, columns: 128, rowBytes: 80, activationBlock: 32) == nil)
  }
}
