import GGML
import Testing
import _TestSupport

@testable import Quantization

/// Round-trip error bounds, variant agreement and the integer decode, for every format.
struct CodecTests {
  /// f16 rounds a scale by at most 2⁻¹¹ relative; codes are chosen against the stored (or, for ggml, the unrounded)
  /// scale, so a reconstruction can move by up to (code range)·2⁻¹¹ steps. With ≤ 2⁸ codes that is ≤ 1/8 step.
  static let f16ScaleSlack: Float = 1.0 / 8

  static let allFormats: [QuantFormat] = QuantFormat.defaultCandidates
    + ["f32", "bf16", "int7-g32", "int5", "int6-g64-asym", "nf4", "ternary", "int2-asym", "int4", "int8-g128-asym"]
    .map { try! QuantFormat(parsing: $0) }

  /// Largest |x − x̂| per group for symmetric and asymmetric intN under min-max: one step (see IntegerCodec).
  @Test(arguments: [2, 3, 4, 5, 6, 7, 8], [nil, 32, 128] as [Int?])
  func integerErrorWithinOneStep(bits: Int, group: Int?) throws {
    let (rows, columns) = (3, 256)
    let w = randomFloats(rows * columns, seed: UInt64(bits), scale: 0.2)
    for symmetric in [true, false] {
      let format = try QuantFormat.integer(bits: bits, group: group, symmetric: symmetric)
      let approx = try quantizeDequantize(w, rows: rows, columns: columns, format: format)
      let length = group ?? columns
      for g in 0..<(w.count / length) {
        let slice = w[(g * length)..<((g + 1) * length)]
        let step: Float
        if symmetric {
          step = slice.map(abs).max()! / Float(1 << (bits - 1))
        } else {
          step = (max(slice.max()!, 0) - min(slice.min()!, 0)) / Float((1 << bits) - 1)
        }
        let worst = slice.indices.map { abs(w[$0] - approx[$0]) }.max()!
        #expect(worst <= step * (1 + Self.f16ScaleSlack), "\(format) group \(g): \(worst) > step \(step)")
      }
    }
  }

  /// Asymmetric formats represent zero exactly (the zero point is an integer code).
  @Test func asymmetricKeepsZeroExact() throws {
    var w = randomFloats(256, seed: 3, scale: 0.5).map { $0 + 0.3 }
    w[5] = 0
    let approx = try quantizeDequantize(w, rows: 1, columns: 256, format: try QuantFormat(parsing: "int3-g64-asym"))
    #expect(approx[5] == 0)
  }

  /// nf4: half the widest codebook gap, 0.152·absmax (+ f16 rounding of the absmax).
  @Test func nf4ErrorWithinHalfGap() throws {
    let w = randomFloats(512, seed: 4, scale: 0.3)
    let approx = try quantizeDequantize(w, rows: 2, columns: 256, format: try .nf4(group: 64))
    for g in 0..<8 {
      let range = (64 * g)..<(64 * g + 64)
      let amax = range.map { abs(w[$0]) }.max()!
      let worst = range.map { abs(w[$0] - approx[$0]) }.max()!
      #expect(worst <= amax * (0.1520 + 0.001), "group \(g)")
    }
  }

  /// ternary: ≤ max(γ/2, amax − γ), γ = mean |x|.
  @Test func ternaryErrorBound() throws {
    let w = randomFloats(320, seed: 5, scale: 0.3)
    let approx = try quantizeDequantize(w, rows: 1, columns: 320, format: try .ternary(group: 64))
    for g in 0..<5 {
      let range = (64 * g)..<(64 * g + 64)
      let gamma = range.map { abs(w[$0]) }.reduce(0, +) / 64
      let amax = range.map { abs(w[$0]) }.max()!
      let worst = range.map { abs(w[$0] - approx[$0]) }.max()!
      #expect(worst <= max(gamma / 2, amax - gamma) * 1.001, "group \(g)")
      #expect(Set(range.map { approx[$0] }).count <= 3)
    }
  }

  /// GGML legacy types: one step (q4_0, q5_0, whose top code is clamped) or half a step (q4_1, q5_1, q8_0), plus the
  /// f16 slack; step = amax/levels or (max − min)/(2^bits − 1).
  @Test(arguments: [(GGMLType.q4_0, 8, true), (.q5_0, 16, true), (.q8_0, 127, true), (.q4_1, 15, false), (.q5_1, 31, false)])
  func legacyErrorWithinStep(type: GGMLType, levels: Int, symmetric: Bool) throws {
    let w = randomFloats(1024, seed: 6, scale: 0.1)
    let approx = try quantizeDequantize(w, rows: 4, columns: 256, format: .ggml(type))
    for b in 0..<32 {
      let block = w[(32 * b)..<(32 * b + 32)]
      let step = symmetric ? block.map(abs).max()! / Float(levels) : (block.max()! - block.min()!) / Float(levels)
      let allowed = (type == .q4_0 || type == .q5_0 ? step : step / 2) + step * Self.f16ScaleSlack + abs(block.min()!) * 0x1p-11
      let worst = block.indices.map { abs(w[$0] - approx[$0]) }.max()!
      #expect(worst <= allowed, "\(type.ggmlName) block \(b): \(worst) > \(allowed)")
    }
  }

  /// K-quants: each value is at its sub-block's nearest grid level, `|x − x̂| ≤ |scale|/2 + dist(x, grid range)`,
  /// with the grid read back through the integer decode; and the RMS error falls with every added bit.
  @Test func kQuantsRoundToTheStoredGrid() throws {
    let w = randomFloats(4 * 512, seed: 8, scale: 0.05)
    var rms = [Double]()
    for (type, codes) in [(GGMLType.q2_K, 0...3), (.q3_K, -4...3), (.q4_K, 0...15), (.q5_K, 0...31), (.q6_K, -32...31)] {
      let packed = try quantize(w, rows: 4, columns: 512, format: .ggml(type))
      let approx = packed.dequantize()
      var codeBuffer = [Int16](repeating: 0, count: 512), factors = [Float](repeating: 0, count: 64)
      var sq = 0.0
      for r in 0..<4 {
        codeBuffer.withUnsafeMutableBufferPointer { c in
          factors.withUnsafeMutableBufferPointer { f in
            packed.withRows(r..<(r + 1)) {
              RowCodec.decodeIntRow(packed.format, $0, columns: 512,
                into: DecodedIntRow(codes: c.baseAddress!, scales: f.baseAddress!, offsets: f.baseAddress! + 32))
            }
          }
        }
        for i in 0..<512 {
          let x = w[512 * r + i], xhat = approx[512 * r + i]
          let (scale, offset) = (factors[i / 16], factors[32 + i / 16])
          let ends = [scale * Float(codes.lowerBound) + offset, scale * Float(codes.upperBound) + offset]
          let outside = max(0, ends.min()! - x, x - ends.max()!)
          #expect(abs(x - xhat) <= abs(scale) / 2 * 1.0001 + outside + 1e-7, "\(type.ggmlName) row \(r) value \(i)")
          sq += Double(x - xhat) * Double(x - xhat)
        }
      }
      rms.append((sq / Double(w.count)).squareRoot())
    }
    #expect(zip(rms, rms.dropFirst()).allSatisfy { $0 > $1 }, "RMS by bits q2_K…q6_K: \(rms)")
  }

  /// Both dequantizers agree bit for bit, for every format and every length the format allows.
  @Test(arguments: allFormats)
  func dequantizeVariantsBitIdentical(format: QuantFormat) throws {
    for n in tailLengths + [256, 512] where format.canQuantize(rows: 2, columns: n) {
      let w = randomFloats(2 * n, seed: UInt64(n), scale: 0.1)
      let packed = try quantize(w, rows: 2, columns: n, format: format)
      let reference = packed.dequantize(variant: .reference)
      let fast = packed.dequantize(variant: .simd)
      #expect(reference.map(\.bitPattern) == fast.map(\.bitPattern), "\(format) n=\(n)")
    }
  }

  /// `scale·code + offset` from the integer decode reproduces `dequantize` exactly.
  @Test(arguments: allFormats.filter(\.hasIntegerCodes))
  func integerDecodeReproducesDequantize(format: QuantFormat) throws {
    for n in tailLengths + [256] where format.canQuantize(rows: 1, columns: n) && n > 0 {
      let w = randomFloats(n, seed: 21, scale: 0.1)
      let packed = try quantize(w, rows: 1, columns: n, format: format)
      let units = (n + 15) / 16
      var codes = [Int16](repeating: 0, count: 16 * units), factors = [Float](repeating: 0, count: 2 * units)
      codes.withUnsafeMutableBufferPointer { c in
        factors.withUnsafeMutableBufferPointer { f in
          packed.withRows(0..<1) {
            RowCodec.decodeIntRow(format, $0, columns: n, into: DecodedIntRow(codes: c.baseAddress!, scales: f.baseAddress!, offsets: f.baseAddress! + units))
          }
        }
      }
      let rebuilt = (0..<n).map { factors[$0 / 16] * Float(codes[$0]) + factors[units + $0 / 16] }
      // Equal as numbers: a zero code gives +0 here and −0 in dequantize when the scale is negative.
      #expect(rebuilt == packed.dequantize(), "\(format) n=\(n)")
    }
  }

  /// Both quantizers write the same bytes (q4_0 and q8_0 have a vectorizable one), including ties, zero blocks and
  /// outliers.
  @Test(arguments: allFormats)
  func quantizeVariantsByteIdentical(format: QuantFormat) throws {
    for n in tailLengths + [256] where format.canQuantize(rows: 2, columns: n) {
      var w = randomFloats(2 * n, seed: UInt64(n) + 99, scale: 0.1)
      if n >= 64 {
        for j in 0..<32 { w[j] = j % 2 == 0 ? 0.5 : -0.5 }  // ±amax tie: the first wins
        for j in 32..<64 { w[j] = 0 }
        w[70 % w.count] = -9
      }
      let reference = try quantize(w, rows: 2, columns: n, format: format, variant: .reference)
      let fast = try quantize(w, rows: 2, columns: n, format: format, variant: .simd)
      #expect(reference.bytes == fast.bytes, "\(format) n=\(n)")
    }
  }
}
