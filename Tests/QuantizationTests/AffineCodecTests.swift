import Testing
import _TestSupport

@testable import Quantization

/// MLX's affine format (`affine<B>-g<G>`): groups worked by hand from mlx's `affine_quantize` formula, byte for
/// byte; the error bound; reference and fast decoders bit for bit; and the format everywhere a format goes.
@Suite struct AffineCodecTests {
  static func affine(_ bits: Int, _ group: Int) -> QuantFormat { try! .affine(bits: bits, group: group) }

  /// A 4-bit group where |min| > |max|: positive scale, bias = min.
  ///
  /// x = [−1.5, 0.75, 0, 0.1, −0.3, 0.2, 0 × 26]. s₀ = 2.25/15 = 0.15; edge = min = −1.5; q0 = rint(−1.5/0.15) = −10;
  /// s = −1.5/−10 = 0.15, b = −1.5. Codes rint((x + 1.5)/0.15): 0, 15, 10, 10.67→11, 8, 11.33→11, then 10.
  /// Bytes (LSB first): F0 BA B8 AA, then AA × 12; scale f16(0.15) = 0x30CD (1229/8192), bias f16(−1.5) = 0xBE00.
  @Test func handWorkedGroupWithPositiveScale() throws {
    let x: [Float] = [-1.5, 0.75, 0, 0.1, -0.3, 0.2] + [Float](repeating: 0, count: 26)
    let packed = try quantize(x, rows: 1, columns: 32, format: Self.affine(4, 32))
    let codes: [UInt8] = [0xF0, 0xBA, 0xB8, 0xAA] + [UInt8](repeating: 0xAA, count: 12)
    #expect(packed.bytes == codes + [0xCD, 0x30, 0x00, 0xBE])
    let s: Float = 1229.0 / 8192.0
    let y = packed.dequantize(variant: .reference)
    let expected: [Float] = [0 * s - 1.5, 15 * s - 1.5, 10 * s - 1.5, 11 * s - 1.5, 8 * s - 1.5, 11 * s - 1.5] + [Float](repeating: 10 * s - 1.5, count: 26)
    #expect(y == expected)
    #expect(y[1] == 0.7503662109375 && y[2] == 0.000244140625)
  }

  /// A 2-bit group where |max| ≥ |min|: the scale is negative and code 0 is the maximum.
  ///
  /// x = [1, −0.5, 0, 0.5, 0.3, 0 × 27]. s₀ = 1.5/3 = 0.5, s = −0.5; edge = max = 1; q0 = rint(1/−0.5) = −2;
  /// s = 1/−2 = −0.5, b = 1. Codes rint((x − 1)/−0.5): 0, 3, 2, 1, 1.4→1, then 2. Bytes: 0x6C (0 | 3<<2 | 2<<4 |
  /// 1<<6), 0xA9, then 0xAA × 6; scale f16(−0.5) = 0xB800, bias f16(1) = 0x3C00.
  @Test func handWorkedGroupWithNegativeScale() throws {
    let x: [Float] = [1, -0.5, 0, 0.5, 0.3] + [Float](repeating: 0, count: 27)
    let packed = try quantize(x, rows: 1, columns: 32, format: Self.affine(2, 32))
    #expect(packed.bytes == [0x6C, 0xA9] + [UInt8](repeating: 0xAA, count: 6) + [0x00, 0xB8, 0x00, 0x3C])
    #expect(packed.dequantize() == [1, -0.5, 0, 0.5, 0.5] + [Float](repeating: 0, count: 27))
  }

  /// All zeros: s = −1e-7 (the floor), q0 = 0, so b = 0 and every code is 0; the row decodes to zeros.
  @Test func zeroGroupKeepsTheFloorScaleAndZeroBias() throws {
    let packed = try quantize([Float](repeating: 0, count: 64), rows: 1, columns: 64, format: Self.affine(3, 64))
    #expect(packed.bytes.count == 24 + 4)
    #expect(packed.bytes[0..<24].allSatisfy { $0 == 0 })
    #expect(Float(Float16(bitPattern: UInt16(packed.bytes[24]) | UInt16(packed.bytes[25]) << 8)) == Float(Float16(-1e-7 as Float)))
    #expect(packed.bytes[26] == 0 && packed.bytes[27] == 0)
    #expect(packed.dequantize() == [Float](repeating: 0, count: 64))
  }

  /// Codes straddle bytes (and MLX's uint32 words) for 3, 5 and 6 bits: code i sits at bits [i·B, (i+1)·B) of the
  /// row. Checked against codes recomputed from the group parameters, for every bit width and two groups.
  @Test(arguments: [2, 3, 4, 5, 6, 8])
  func codesFollowTheBitStream(bits: Int) throws {
    let columns = 128, group = 64
    let x = randomFloats(columns, seed: UInt64(bits), scale: 0.1)
    let packed = try quantize(x, rows: 1, columns: columns, format: Self.affine(bits, group))
    #expect(packed.bytes.count == columns * bits / 8 + 4 * columns / group)
    for g in 0..<(columns / group) {
      let (scale, bias) = x.withUnsafeBufferPointer { AffineCodec.groupParameters($0.baseAddress! + g * group, count: group, bits: bits) }
      for j in 0..<group {
        let i = g * group + j
        var stored = 0
        for b in 0..<bits { stored |= Int(packed.bytes[(i * bits + b) / 8] >> UInt8((i * bits + b) % 8) & 1) << b }
        #expect(UInt64(stored) == AffineCodec.code(x[i], scale: scale, bias: bias, bits: bits), "bits \(bits) value \(i)")
      }
    }
  }

  /// |x − x̂| < s₀ + 2⁻¹¹·(n·|s| + |b|) per group (the codec's doc comment), over random rows with an offset so both
  /// scale signs occur; reference and fast decoders agree bit for bit.
  @Test(arguments: [2, 3, 4, 5, 6, 8], [32, 64, 128])
  func roundTripBoundAndDecodersAgree(bits: Int, group: Int) throws {
    let rows = 6, columns = 256
    var x = randomFloats(rows * columns, seed: UInt64(100 * bits + group), scale: 0.05)
    for i in x.indices where (i / columns) % 2 == 1 { x[i] += 0.03 }  // odd rows: max dominates
    let packed = try quantize(x, rows: rows, columns: columns, format: Self.affine(bits, group))
    #expect(packed.bytes.count == Self.affine(bits, group).sizeInBytes(rows: rows, columns: columns))
    let reference = packed.dequantize(variant: .reference)
    #expect(reference == packed.dequantize(variant: .simd))
    let n = Float((1 << bits) - 1)
    for start in stride(from: 0, to: x.count, by: group) {
      let v = x[start..<(start + group)]
      let s0 = (v.max()! - v.min()!) / n
      let (s, b) = x.withUnsafeBufferPointer { AffineCodec.groupParameters($0.baseAddress! + start, count: group, bits: bits) }
      let bound = s0 + (n * abs(s) + abs(b)) / 2048 + 1e-6
      for i in start..<(start + group) {
        #expect(abs(x[i] - reference[i]) <= bound, "affine\(bits)-g\(group) value \(i)")
      }
    }
  }

  @Test func grammarNamesAndRefusals() throws {
    let f = try QuantFormat(parsing: "AFFINE4-G64")
    #expect(f.name == "affine4-g64" && f.groupSize == 64 && !f.symmetric && f.nominalBits == 4)
    #expect(f.rowSizeInBytes(columns: 576) == 576 * 4 / 8 + 4 * 9)
    #expect(f.bitsPerWeight(rows: 10, columns: 576) == 4.5)
    for bad in ["affine4", "affine4-g64-asym", "affine9-g64", "affine1-g32", "affine4-g48"] {
      #expect(throws: QuantizationError.self, "\(bad)") { try QuantFormat(parsing: bad) }
    }
    #expect(!f.canQuantize(rows: 4, columns: 96))
    #expect(!f.hasIntegerCodes)
  }

  /// The packed layer: Float-activation GEMV and GEMM agree with the dequantized weights; int8 activations are
  /// refused with the format named, as nf4 is.
  @Test func packedKernelsRunOnFloatActivationsOnly() throws {
    let rows = 8, columns = 128
    let w = randomFloats(rows * columns, seed: 3, scale: 0.1)
    let packed = try quantize(w, rows: rows, columns: columns, format: Self.affine(4, 32))
    let dense = packed.dequantize()
    let x = randomFloats(2 * columns, seed: 4)
    let y = packed.gemm(x, tokens: 2)
    for t in 0..<2 {
      for r in 0..<rows {
        var want = 0.0
        for c in 0..<columns { want += Double(dense[r * columns + c]) * Double(x[t * columns + c]) }
        #expect(abs(Double(y[t * rows + r]) - want) <= 1e-4, "token \(t) row \(r)")
      }
    }
    let gemv = packed.gemv(Array(x[0..<columns]), activations: .float, variant: .reference)
    for r in 0..<rows { #expect(abs(gemv[r] - y[r]) <= 1e-4) }
    #expect(try packed.executionPath(activations: .float) == .floatGEMM)
    #expect(throws: QuantizationError.self) { try packed.executionPath(activations: .int8) }
    #expect(!packed.supports(activations: .int8))
  }
}
