import Testing
import _TestSupport

@testable import Quantization

/// The packed GEMM (`PackedGEMM`, `CKernels` `gemm`) against its reference twin, the per-token GEMV.
///
/// int8 path: Y[t, ·] must equal `gemvInt8(Q8Activations(X[t]))` of the same C table bit for bit (the GEMM promises
/// the GEMV's Int32 block sums and Float operations per output), with and without accumulation, for 1 or 2
/// threads, for every format with an int8 kernel, token counts that leave every tail of the token tiles (1 × 8,
/// 2 × 4) and row counts that leave every row tail. Activations are integer-valued (|x| ≤ 127 with a 127 in every
/// 32-value block, so every activation scale is 1), as in `CKernelTests`; the weights are real quantized tensors.
struct PackedGEMMTests {
  static let int8Formats: [QuantFormat] = ["q4_0", "q8_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k",
    "int4", "int4-g32", "int4-g128-asym", "int8", "int8-g32-asym", "int2-g64", "int3", "int5-g64", "int6-g128", "int7-asym"]
    .map { try! QuantFormat(parsing: $0) }
  static let tokenCounts = [1, 2, 3, 5, 8, 17]
  static let rowCounts = [1, 3, 18, 37]

  /// Integer-valued activations: |x| ≤ 127, and x = 127 at one place in every block of 32.
  static func integerActivations(tokens: Int, columns: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<(tokens * columns)).map { i in i % 32 == Int(seed % 32) ? 127 : Float(Int(rng.next() % 255) - 127) }
  }

  /// Row lengths per format: whole steps, and steps plus 1–3 groups (q4_0 at 96, 160, 576; q8_0 at 96, 160).
  static func columnCounts(_ format: QuantFormat) -> [Int] {
    if case .ggml(let type) = format.scheme, type.blockSize == 256 { return [256, 512] }
    return [96, 160, 576]
  }

  @Test(arguments: int8Formats, [KernelVariant.intrinsics, .avx2C, .portableC])
  func gemmEqualsPerTokenGEMV(format: QuantFormat, variant: KernelVariant) throws {
    for columns in Self.columnCounts(format) where format.canQuantize(rows: 1, columns: columns) {
      for rows in Self.rowCounts {
        let w = randomFloats(rows * columns, seed: UInt64(rows * 1000 + columns), scale: 0.1)
        let packed = try quantize(w, rows: rows, columns: columns, format: format)
        #expect(try packed.executionPath(activations: .int8) == .int8GEMM)
        let op = try PackedGEMM(packed, activations: .int8, variant: variant)  // reused across token counts
        for tokens in Self.tokenCounts {
          let label = "\(format) \(variant) [\(rows), \(columns)] T=\(tokens)"
          let x = Self.integerActivations(tokens: tokens, columns: columns, seed: UInt64(tokens * 7 + rows))
          var want = [Float](repeating: 0, count: tokens * rows)
          for t in 0..<tokens {
            let a = Q8Activations(Array(x[(t * columns)..<((t + 1) * columns)]), blockSize: packed.activationBlockSize)
            want.withUnsafeMutableBufferPointer {
              packed.gemvInt8(a, into: UnsafeMutableBufferPointer(rebasing: $0[(t * rows)..<((t + 1) * rows)]), variant: variant)
            }
          }
          let start = randomFloats(tokens * rows, seed: 99)
          for threads in [1, 2] {
            var got = [Float](repeating: .nan, count: tokens * rows)
            x.withUnsafeBufferPointer { xs in
              got.withUnsafeMutableBufferPointer { op.apply(xs.baseAddress!, tokens: tokens, into: $0.baseAddress!, accumulate: false, threads: threads) }
            }
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(label) threads=\(threads)")
            var summed = start
            x.withUnsafeBufferPointer { xs in
              summed.withUnsafeMutableBufferPointer { op.apply(xs.baseAddress!, tokens: tokens, into: $0.baseAddress!, accumulate: true, threads: threads) }
            }
            #expect(summed.map(\.bitPattern) == zip(start, want).map { ($0 + $1).bitPattern }, "\(label) threads=\(threads) accumulate")
          }
        }
      }
    }
  }

  /// Each token of a batch is quantized exactly as `Q8Activations` quantizes it alone (codes, padding, scales),
  /// for per-token and 32-value blocks, a row length that is not a multiple of 32, and an all-zero token.
  @Test(arguments: [nil, 32] as [Int?])
  func batchQuantizesLikeQ8Activations(blockSize: Int?) {
    for columns in [1, 40, 576] {
      let tokens = 5
      var x = randomFloats(tokens * columns, seed: UInt64(columns), scale: 3)
      for c in 0..<columns { x[2 * columns + c] = 0 }
      var batch = Q8ActivationBatch(columns: columns, blockSize: blockSize)
      x.withUnsafeBufferPointer { batch.quantize($0.baseAddress!, tokens: tokens) }
      for t in 0..<tokens {
        let one = Q8Activations(Array(x[(t * columns)..<((t + 1) * columns)]), blockSize: blockSize)
        #expect(Array(batch.codes(token: t)) == one.codes, "columns=\(columns) token \(t) codes")
        #expect(Array(batch.scales(token: t)) == one.scales, "columns=\(columns) token \(t) scales")
      }
    }
  }

  /// The float path against the reference twin: `dequantize(variant: .reference)` and a Double dot per output.
  /// Bound: the fp32 GEMM's rounding, |error| ≤ k·2⁻²⁴·Σ|x·ŵ| (γ_k for k = columns products and sums), taken as
  /// k·2⁻²³·Σ|x·ŵ| for the block decoder's own single rounding; checked with accumulation and 1 or 2 threads.
  @Test(arguments: ["f16", "bf16", "nf4-g64", "ternary-g64", "q4_0", "q6_k", "int4-g128", "int3-g64-asym"])
  func floatPathMatchesDequantizedReference(name: String) throws {
    let format = try QuantFormat(parsing: name)
    let (rows, columns, tokens) = (37, 512, 5)
    let packed = try quantize(randomFloats(rows * columns, seed: 3, scale: 0.1), rows: rows, columns: columns, format: format)
    #expect(try packed.executionPath(activations: .float) == .floatGEMM)
    let w = packed.dequantize(variant: .reference)
    let x = randomFloats(tokens * columns, seed: 4)
    let start = randomFloats(tokens * rows, seed: 5)
    for threads in [1, 2] {
      for accumulate in [false, true] {
        var y = accumulate ? start : [Float](repeating: .nan, count: tokens * rows)
        x.withUnsafeBufferPointer { xs in
          y.withUnsafeMutableBufferPointer {
            packed.gemmFloat(xs.baseAddress!, tokens: tokens, into: $0.baseAddress!, accumulate: accumulate, threads: threads)
          }
        }
        for t in 0..<tokens {
          for r in 0..<rows {
            var sum = 0.0, magnitude = 0.0
            for c in 0..<columns {
              let p = Double(x[t * columns + c]) * Double(w[r * columns + c])
              sum += p
              magnitude += abs(p)
            }
            let want = sum + (accumulate ? Double(start[t * rows + r]) : 0)
            let bound = Double(columns) * 0x1p-23 * (magnitude + (accumulate ? abs(Double(start[t * rows + r])) : 0))
            #expect(abs(Double(y[t * rows + r]) - want) <= bound, "\(name) t=\(t) r=\(r) threads=\(threads) accumulate=\(accumulate)")
          }
        }
      }
    }
  }

  /// Which format runs which path: int8 kernels for the integer and GGML formats, the float path for f32/f16/bf16
  /// by rule, and a typed error naming nf4 and ternary.
  @Test func executionPathsAreStated() throws {
    func packed(_ name: String) throws -> PackedTensor {
      try quantize(randomFloats(2 * 256, seed: 1), rows: 2, columns: 256, format: QuantFormat(parsing: name))
    }
    for name in ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "int2-g32", "int4", "int8-g128-asym"] {
      #expect(try packed(name).executionPath(activations: .int8) == .int8GEMM, "\(name)")
      #expect(try packed(name).executionPath(activations: .float) == .floatGEMM, "\(name)")
    }
    for name in ["f16", "bf16", "f32"] {
      #expect(try packed(name).executionPath(activations: .int8) == .floatGEMM, "\(name)")
    }
    for name in ["nf4-g64", "ternary-g64"] {
      let p = try packed(name)
      #expect(!p.supports(activations: .int8) && p.supports(activations: .float))
      #expect(throws: QuantizationError.self) { try p.executionPath(activations: .int8) }
      do {
        _ = try PackedGEMM(p, activations: .int8)
        Issue.record("\(name): expected .noPackedKernel")
      } catch let error as QuantizationError {
        #expect(error.code == .noPackedKernel && error.message.contains(name), "\(error)")
      }
    }
  }
}
