#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import TensorCore

/// The T-token GEMM rows of `bitplan bench kernels`: `Y[T, rows] = X[T, columns] · Wᵀ` per format and shape.
extension KernelBenchmark {
  /// A linear layer's shape, `[columns → rows]` (input → output features).
  public struct GEMMShape: Sendable, Codable, Hashable {
    /// Input features (the row length of W).
    public var columns: Int
    /// Output features.
    public var rows: Int
    /// `576→1536`.
    public var name: String { "\(columns)→\(rows)" }

    /// SmolLM2-135M's projections: attention/MLP in ([576 → 1536]), MLP out ([1536 → 576]), the tied
    /// embedding / LM head ([576 → 49152]).
    public static let standard: [GEMMShape] = [
      GEMMShape(columns: 576, rows: 1536), GEMMShape(columns: 1536, rows: 576), GEMMShape(columns: 576, rows: 49152),
    ]
  }

  /// Times, per shape: `gemm-q8act` (`PackedGEMM`, int8 path, `KernelVariant.best`), `gemm-q8act-gemv` (the
  /// same product as one `gemvInt8` per token on pre-quantized activations, the path it replaces),
  /// `gemm-f32act` (`PackedGEMM`, float path), `blas-sgemm` (OpenBLAS fp32 on the dequantized weights, split
  /// over the `Parallel` workers) and `packed-sgemm` (the same product on those weights packed once, TensorCore's
  /// `PackedWeights`, the engine's forward GEMM; absent on CPUs without its kernel), each with `threads` threads. `elements` is the multiply-add count
  /// tokens·rows·columns, so `gflops` is 2·elements/s; `gemm-q8act` includes quantizing X.
  public static func gemm(
    format: QuantFormat, shapes: [GEMMShape] = GEMMShape.standard, tokens: Int = 512, threads: Int = 2
  ) throws -> [Row] {
    var rows = [Row]()
    for shape in shapes {
      let (m, n) = (shape.rows, shape.columns)
      // One quantized tile of ≤ 1M values repeated (kernel time does not depend on the values).
      let tileRows = min(m, max(1, (1 << 20) / n))
      let tile = try quantize((0..<(tileRows * n)).map { Float(sin(Double($0) * 0.7)) * 0.05 }, rows: tileRows, columns: n, format: format)
      var bytes = [UInt8]()
      bytes.reserveCapacity(format.sizeInBytes(rows: m, columns: n))
      while bytes.count < format.sizeInBytes(rows: m, columns: n) { bytes += tile.bytes }
      bytes.removeLast(bytes.count - format.sizeInBytes(rows: m, columns: n))
      let packed = try PackedTensor(format: format, rows: m, columns: n, bytes: bytes)
      let x = (0..<(tokens * n)).map { Float(cos(Double($0) * 0.37)) }
      var y = [Float](repeating: 0, count: tokens * m)
      let macs = tokens * m * n
      func row(_ kernel: String, _ seconds: Double) -> Row {
        Row(kernel: kernel, format: format.name, size: shape.name, elements: macs, bytes: packed.bytes.count, seconds: seconds)
      }
      x.withUnsafeBufferPointer { xs in
        y.withUnsafeMutableBufferPointer { ys in
          let (xp, yp) = (xs.baseAddress!, ys.baseAddress!)
          if let op = try? PackedGEMM(packed, activations: .int8), op.path == .int8GEMM {
            rows.append(row("gemm-q8act", best { op.apply(xp, tokens: tokens, into: yp, accumulate: false, threads: threads); sink += yp[0] }))
            let acts = (0..<tokens).map { t in
              Q8Activations(UnsafeBufferPointer(start: xp + t * n, count: n), blockSize: packed.activationBlockSize)
            }
            rows.append(row("gemm-q8act-gemv", best(minimumSeconds: 0) {
              for t in 0..<tokens {
                packed.gemvInt8(acts[t], into: UnsafeMutableBufferPointer(start: yp + t * m, count: m), threads: threads)
              }
              sink += yp[0]
            }))
          }
          let float = try! PackedGEMM(packed, activations: .float)
          rows.append(row("gemm-f32act", best { float.apply(xp, tokens: tokens, into: yp, accumulate: false, threads: threads); sink += yp[0] }))
          let w = packed.dequantize()
          w.withUnsafeBufferPointer { ws in
            rows.append(row("blas-sgemm", best {
              BLAS.sgemm(transposeB: true, m: tokens, n: m, k: n, a: xp, b: ws.baseAddress!, c: yp)
              sink += yp[0]
            }))
            if let weights = PackedWeights(ws.baseAddress!, rows: m, columns: n) {
              rows.append(row("packed-sgemm", best {
                BLAS.sgemm(m: tokens, a: xp, lda: n, packed: weights, accumulate: false, c: yp, ldc: m)
                sink += yp[0]
              }))
            }
          }
        }
      }
    }
    return rows
  }
}
