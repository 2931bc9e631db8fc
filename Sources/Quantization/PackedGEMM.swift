import CKernels
import TensorCore

/// How a packed layer runs for T tokens (`PackedTensor.executionPath(activations:)`).
public enum PackedExecutionPath: String, Sendable, Codable, CaseIterable {
  /// Per-token int8 activations (`Q8ActivationBatch`) against the packed codes in the `CKernels` GEMM: Int32 block
  /// sums, one Float multiply-add per block; bit for bit the per-token `gemvInt8`.
  case int8GEMM
  /// Float activations against a tile of rows dequantized into scratch (the block decoders), multiplied by BLAS
  /// `sgemm`.
  case floatGEMM
}

extension PackedTensor {
  /// The path `PackedGEMM` takes for this format under `activations`, or a `QuantizationError` naming the format.
  ///
  /// - `.float` (`--activations f32`, for runtimes that keep float activations: MLX, GPTQ kernels): every format,
  ///   `floatGEMM`.
  /// - `.int8`: int2 … int8 (any group size, symmetric or not; one activation scale per token) and every GGML type
  ///   (q4_0, q4_1, q5_0, q5_1, q8_0, q2_K … q6_K; activation blocks of 32), `int8GEMM`. q4_0, q8_0 and q4_1 run
  ///   register-tiled AVX-512 VNNI kernels (several tokens per weight load); the others repeat their GEMV per token
  ///   over tiles of rows that stay in L1.
  /// - `.int8` with f32, f16 or bf16 weights: `floatGEMM`, by rule. These formats have no integer codes, and
  ///   quantizing the activations would only add error; llama.cpp likewise runs f16 weights against f32
  ///   activations.
  /// - `.int8` with nf4 (a non-uniform codebook), ternary or affine (MLX's format: a Float bias per group, which the
  ///   int8 kernels' integer zero points cannot express; MLX itself runs it on float activations): no packed int8
  ///   kernel; throws `.noPackedKernel`
  ///   (choose `.float` for them). Rows longer than 2²⁰ values (`IntDot.cKernelMaxColumns`) also throw.
  /// - Throws: `QuantizationError` with code `.noPackedKernel`.
  public func executionPath(activations: ActivationPrecision) throws -> PackedExecutionPath {
    if activations == .float { return .floatGEMM }
    switch format.scheme {
    case .f32, .f16, .bf16: return .floatGEMM
    case .nf4, .ternary, .affine:
      throw QuantizationError(.noPackedKernel,
        "\(format.name) has no packed kernel for int8 activations; run it with float activations (--activations f32)")
    case .integer, .ggml:
      guard IntDot.gemmCall(format, columns: columns, rowBytes: rowSizeInBytes) != nil else {
        throw QuantizationError(.noPackedKernel,
          "\(format.name) [\(rows), \(columns)]: rows longer than \(IntDot.cKernelMaxColumns) values have no int8 kernel")
      }
      return .int8GEMM
    }
  }

  /// Whether `executionPath(activations:)` succeeds: true for every format with `.float`; with `.int8` false only
  /// for nf4, ternary and affine (and rows past 2²⁰ values).
  public func supports(activations: ActivationPrecision) -> Bool {
    (try? executionPath(activations: activations)) != nil
  }

  /// `Y[tokens, rows] (+)= X[tokens, columns] · Wᵀ` with per-token int8 activations (`PackedExecutionPath.int8GEMM`),
  /// through a temporary `PackedGEMM`. An engine that calls this repeatedly should keep a `PackedGEMM`, which reuses
  /// its scratch.
  /// - Throws: `QuantizationError.Code.noPackedKernel` when `executionPath(activations: .int8)` does.
  public func gemmInt8(
    _ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false,
    threads: Int = 1, variant: KernelVariant = .best
  ) throws {
    try PackedGEMM(self, activations: .int8, variant: variant).apply(x, tokens: tokens, into: y, accumulate: accumulate, threads: threads)
  }

  /// `Y[tokens, rows] (+)= X[tokens, columns] · Wᵀ` with Float activations (`PackedExecutionPath.floatGEMM`), through
  /// a temporary `PackedGEMM`.
  public func gemmFloat(
    _ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false, threads: Int = 1
  ) {
    // `.float` never throws.
    try! PackedGEMM(self, activations: .float).apply(x, tokens: tokens, into: y, accumulate: accumulate, threads: threads)
  }
}

/// One packed linear layer executed for T tokens at a time: `Y[T, rows] (+)= X[T, columns] · Wᵀ`, with the scratch
/// (quantized activations, prepared activations, dequantized tiles) kept between calls, so an engine that calls it
/// for every layer of every forward pass allocates only when a batch is larger than any before.
///
/// `apply` is not reentrant: one call at a time per object (the engine owns one per layer). Results do not depend on
/// `threads`: each output is computed by one kernel call over the whole row.
///
/// - int8 (`PackedExecutionPath.int8GEMM`): X is quantized once per token (`Q8ActivationBatch`, blocks of
///   `activationBlockSize`), the C kernels' per-call preparation is done once for all rows, and the rows are split
///   over `threads` parts. Y[t, ·] equals `gemvInt8(Q8Activations(X[t]), variant:)` bit for bit (then one Float add
///   when accumulating).
/// - float (`floatGEMM`): per part, tiles of rows are dequantized (`RowCodec`'s block decoders) into scratch and
///   multiplied by single-threaded OpenBLAS `sgemm` straight into Y (β = 1 when accumulating). Error: the fp32 GEMM's
///   against Σ x·dequantize(w), |error| ≤ ~columns·ε·Σ|x·w| (ε = 2⁻²⁴).
public final class PackedGEMM: @unchecked Sendable {
  /// The packed weights, `[rows, columns]`.
  public let weights: PackedTensor
  /// The path every `apply` takes.
  public let path: PackedExecutionPath
  /// The kernel variant of the int8 path: `.intrinsics` (`.best` on CPUs with AVX-512 VNNI or AVX2) runs the
  /// fast C table, `.avx2C` the AVX2 one, `.portableC` the portable one; the Swift variants (`.reference`, `.simd`)
  /// use the portable C GEMM, the reference of them all.
  public let variant: KernelVariant

  private let kernels: UnsafePointer<bp_int_gemv_kernels>
  private var format = bp_gemm_format()
  /// Quantized activations, prepared activations and dequantized tiles; shared with the other layers of a model.
  public let scratch: Scratch

  /// The working memory of `apply`, which several `PackedGEMM`s may share when they never run at the same time
  /// (the layers of one model: the engine runs them one after another). A model's 211 layers each with its own
  /// scratch held ~380 MiB at 512 tokens on SmolLM2; one shared scratch holds one layer's worth.
  public final class Scratch: @unchecked Sendable {
    struct BatchKey: Hashable {
      var columns: Int
      var blockSize: Int?
    }
    var batches: [BatchKey: Q8ActivationBatch] = [:]
    var prepared: UnsafeMutableRawPointer?
    var preparedCapacity = 0
    var tiles: UnsafeMutablePointer<Float>?
    var tilesCapacity = 0

    public init() {}

    deinit {
      prepared?.deallocate()
      tiles?.deallocate()
    }
  }

  /// Prepares a layer for `activations` (see `PackedTensor.executionPath(activations:)`).
  /// - Parameter scratch: working memory, shared with other layers that never run concurrently with this one.
  /// - Throws: `QuantizationError.Code.noPackedKernel` for nf4 and ternary with `.int8`.
  public init(
    _ weights: PackedTensor, activations: ActivationPrecision, variant: KernelVariant = .best, scratch: Scratch = Scratch()
  ) throws {
    self.weights = weights
    self.variant = variant
    self.scratch = scratch
    path = try weights.executionPath(activations: activations)
    kernels = IntDot.cKernels(variant) ?? IntDot.portableKernels
    if path == .int8GEMM {
      format = IntDot.gemmCall(weights.format, columns: weights.columns, rowBytes: weights.rowSizeInBytes)!
    }
  }

  /// `y[t·rows + r] (+)= Σ_c x[t·columns + c]·W[r, c]` for t < tokens (`x`: `tokens · columns` values, `y`:
  /// `tokens · rows`), rows split over `threads` parts run by the `Parallel` pool.
  public func apply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int = 1) {
    precondition(tokens >= 0 && threads >= 1, "tokens \(tokens), threads \(threads)")
    let (rows, columns) = (weights.rows, weights.columns)
    guard tokens > 0, rows > 0 else { return }
    if columns == 0 {
      if !accumulate { y.update(repeating: 0, count: tokens * rows) }
      return
    }
    switch path {
    case .int8GEMM: applyInt8(x, tokens: tokens, into: y, accumulate: accumulate, threads: threads)
    case .floatGEMM: applyFloat(x, tokens: tokens, into: y, accumulate: accumulate, threads: threads)
    }
  }

  /// `body(part, rows)` for `threads` contiguous row ranges (multiples of 16 rows), concurrently through
  /// `Parallel.forEach`; one range runs on the calling thread, marked as a worker so BLAS stays single-threaded.
  private func forEachRowPart(threads: Int, _ body: (Int, Range<Int>) -> Void) {
    let rows = weights.rows
    let parts = max(1, min(threads, (rows + 15) / 16))
    if parts == 1 { return Parallel.asWorker { body(0, 0..<rows) } }
    let per = ((rows + parts - 1) / parts + 15) / 16 * 16
    Parallel.forEach(parts) { p in
      let range = min(rows, p * per)..<min(rows, (p + 1) * per)
      if !range.isEmpty { Parallel.asWorker { body(p, range) } }
    }
  }

  private func applyInt8(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int) {
    let key = Scratch.BatchKey(columns: weights.columns, blockSize: weights.activationBlockSize)
    scratch.batches[key, default: Q8ActivationBatch(columns: key.columns, blockSize: key.blockSize)].quantize(x, tokens: tokens)
    let batch = scratch.batches[key]!
    let table = kernels.pointee, rows = weights.rows, rowBytes = weights.rowSizeInBytes
    let needed = withUnsafePointer(to: format) { table.gemm_prepared_bytes!($0, tokens) }
    if needed > scratch.preparedCapacity {
      scratch.prepared?.deallocate()
      scratch.prepared = UnsafeMutableRawPointer.allocate(byteCount: needed, alignment: 64)
      scratch.preparedCapacity = needed
    }
    let prepared = scratch.prepared
    batch.codes.withUnsafeBufferPointer { codes in
      batch.scales.withUnsafeBufferPointer { scales in
        var acts = bp_gemm_activations(
          codes: codes.baseAddress, code_stride: batch.codeStride, scales: scales.baseAddress,
          scale_stride: batch.scaleStride, tokens: tokens, prepared: nil)
        withUnsafePointer(to: format) { f in
          if needed > 0 {
            withUnsafePointer(to: acts) { table.gemm_prepare!(f, $0, prepared) }
            acts.prepared = UnsafeRawPointer(prepared)
          }
          withUnsafePointer(to: acts) { a in
            weights.withRows(0..<rows) { w in
              let base = w.baseAddress!.assumingMemoryBound(to: UInt8.self)
              forEachRowPart(threads: threads) { _, range in
                table.gemm!(f, base + range.lowerBound * rowBytes, range.count, a, y + range.lowerBound, rows, accumulate ? 1 : 0)
              }
            }
          }
        }
      }
    }
  }

  /// Rows per dequantized tile: about 256 KiB of Float weights (L2), at least 16.
  private var tileRows: Int { max(16, (64 << 10) / max(weights.columns, 1)) }

  private func applyFloat(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int) {
    let (rows, columns, tile) = (weights.rows, weights.columns, tileRows)
    let parts = max(1, min(threads, (rows + 15) / 16))
    if parts * tile * columns > scratch.tilesCapacity {
      scratch.tiles?.deallocate()
      scratch.tilesCapacity = parts * tile * columns
      scratch.tiles = UnsafeMutablePointer<Float>.allocate(capacity: scratch.tilesCapacity)
    }
    let tiles = scratch.tiles!
    forEachRowPart(threads: parts) { part, range in
      let w = tiles + part * tile * columns
      var start = range.lowerBound
      while start < range.upperBound {
        let n = min(tile, range.upperBound - start)
        weights.dequantizeRows(start..<(start + n), into: UnsafeMutableBufferPointer(start: w, count: n * columns), variant: .simd)
        // Y[:, start ..< start + n] (+)= X[tokens, columns] · W_tile[n, columns]ᵀ, in place (ldc = rows).
        BLAS.sgemm(
          transposeB: true, m: tokens, n: n, k: columns, a: x, lda: columns, b: w, ldb: columns,
          beta: accumulate ? 1 : 0, c: y + start, ldc: rows)
        start += n
      }
    }
  }
}
