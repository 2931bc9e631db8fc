import TensorCore

/// GPTQ (Frantar et al. 2023, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers"):
/// quantize a `[rows, columns]` weight one input column at a time and spread each column's rounding error over the
/// columns not yet quantized, weighted by the inverse Hessian of the layer's output error ‖(W − Ŵ)·Xᵀ‖² (H = XᵀX/n,
/// the `Sensitivity.GramMatrix` measure gathers). The result is a valid encoding in the requested format, so
/// dequantization, the packed kernels, GGUF writing and the exporters use it unchanged.
///
/// Algorithm (the paper's Algorithm 1; `quantize` is the blocked form, `quantizeReference` the plain one):
/// 1. H = `hessian` + λ·I with λ = `damping` × the mean of H's diagonal. A *dead* column (H[i,i] = 0: its input
///    was always zero) gets H[i,i] = the mean diagonal (1 if every column is dead) and zero off-diagonals, so it
///    neither receives nor sends error: it is **rounded to nearest** against its group's scale. (Reference GPTQ
///    zeroes such weights instead; BitPlan keeps them, since a stored weight must still encode the model.)
/// 2. With act-order the columns are processed in order of decreasing H[i,i] (stable: ties keep their order).
/// 3. U = the upper Cholesky factor of H⁻¹ (`GPTQ+Factor.swift`), in Double.
/// 4. For each column i in order: q = Q(w_i) on the grid of its group; e = (w_i − q)/U[i,i];
///    w_k −= e·U[i,k] for every later column k.
///
/// Scales (`GPTQGrid`): without act-order a group's scales (an integer group's scale and zero point, a GGML block's
/// d, m, sub-block scales and mins, an affine group's scale and bias) are found when the pass reaches the group's
/// first column, by the format's own RTN quantizer on the group's *current* (error-updated) values, as GPTQ's
/// `find_params` does. With act-order the groups' columns are not processed together, so the scales are fixed
/// before the pass from the original weights ("static groups"); our groups are always contiguous columns. The
/// range calibration applies as in `quantize(_:rows:columns:format:calibration:)`: percentile and KL thresholds
/// from the original tensor, the MSE search per group on the values the scales are found from.
///
/// Blocked form (`quantize`): the weights are kept transposed (one contiguous row per column) in Float; each lazy
/// batch of `blockSize` columns is quantized with rank-1 updates inside the batch only (loops over rows), and the
/// rest of W is updated once per batch by one GEMM (`BLAS.sgemm`). When a group starts inside a batch and extends
/// past it, its later columns' current values are formed with the batch's pending updates before its scales are
/// found, so the blocked result is the reference's for any `blockSize`. Differences from `quantizeReference` are
/// rounding only (Float against Double), which can flip a code that lies within ~1e-6 of a rounding boundary.
///
/// Supported formats (`supports`): `int<B>[-g<G>][-asym]` (per-channel without a group), `affine<B>-g<G>`, and the
/// GGML types q4_0, q4_1, q5_0, q5_1, q8_0, q2_K … q6_K. Not supported: f32, f16, bf16 (nothing to gain), nf4 and
/// ternary (callers fall back to round-to-nearest and record "rtn").
public enum GPTQ {
  /// Settings of one GPTQ run.
  public struct Options: Sendable, Equatable, Codable {
    /// Fraction of the mean diagonal of H added to the diagonal (default 0.01).
    public var damping: Double
    /// Lazy-batch width in columns (default 128). The result does not depend on it beyond rounding.
    public var blockSize: Int
    /// Columns in order of decreasing H diagonal, with static groups (default false).
    public var actOrder: Bool

    public init(damping: Double = 0.01, blockSize: Int = 128, actOrder: Bool = false) {
      self.damping = damping
      self.blockSize = blockSize
      self.actOrder = actOrder
    }
  }

  /// Whether `quantize` takes this format (callers fall back to round-to-nearest and record "rtn" otherwise).
  public static func supports(_ format: QuantFormat) -> Bool { GPTQGrid.supports(format) }

  /// Quantizes `weights` (`[rows, columns]` row-major) by GPTQ, the blocked algorithm.
  /// - Parameters:
  ///   - hessian: G = XᵀX/n, `[columns, columns]` row-major (any positive multiple gives the same result); the lower
  ///     triangle is read.
  ///   - calibration: the range calibration of the integer formats (as `quantize`).
  /// - Returns: a valid encoding in `format`: `dequantize()` gives the GPTQ weights; validation, `bitplan quantize`
  ///   (GGUF bytes) and the exporters use the bytes as they are.
  /// - Throws: `QuantizationError.badFormatName` for a format GPTQ does not support, `.unsupportedShape` when the
  ///   format cannot take the shape, `.sizeMismatch` for a weight or hessian of the wrong length, `.badData` for a
  ///   non-finite weight or hessian entry, a negative hessian diagonal, or a hessian that is not positive definite
  ///   after damping, `.badCalibration` for bad options or calibration settings.
  public static func quantize(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat, hessian: [Float],
    calibration: RangeCalibration, options: Options = Options()
  ) throws(QuantizationError) -> PackedTensor {
    try run(weights, rows: rows, columns: columns, format: format, hessian: hessian, calibration: calibration,
      options: options, reference: false).packed
  }

  /// The plain column-by-column algorithm (reference twin of `quantize`, Double for H, its factor and the
  /// updated weights; `options.blockSize` is ignored). Same parameters, result and errors as `quantize`.
  public static func quantizeReference(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat, hessian: [Float],
    calibration: RangeCalibration, options: Options = Options()
  ) throws(QuantizationError) -> PackedTensor {
    try run(weights, rows: rows, columns: columns, format: format, hessian: hessian, calibration: calibration,
      options: options, reference: true).packed
  }

  /// The packed tensor and the weights GPTQ fed its errors back from (`values`, `[rows, columns]` row-major), which
  /// `packed.dequantize()` must reproduce.
  static func run(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat, hessian: [Float],
    calibration: RangeCalibration, options: Options, reference: Bool
  ) throws(QuantizationError) -> (packed: PackedTensor, values: [Float]) {
    try check(weights, rows: rows, columns: columns, format: format, hessian: hessian, options: options)
    let clip: IntegerCodec.Clip
    do {
      clip = try weights.withUnsafeBufferPointer { try calibration.clip(for: $0, format: format) }
    } catch let error as QuantizationError {
      throw error
    } catch {
      throw QuantizationError(.badCalibration, "\(calibration): \(error)")
    }
    let (order, h) = prepare(hessian, n: columns, options: options)
    let factored = reference ? factorReference(h, n: columns) : factor(h, n: columns)
    let u: [Double]
    switch factored {
    case .success(let factor): u = factor
    case .failure(let failure):
      throw QuantizationError(
        .badData,
        "hessian is not positive definite even with damping \(options.damping) (Cholesky pivot of input column \(order[failure.column]) not positive); pass G = XᵀX/n of the layer's inputs or raise the damping")
    }
    var grid = GPTQGrid(format: format, rows: rows, columns: columns, clip: clip)
    if options.actOrder { fixAllBlocks(&grid, weights) }
    var codes = [UInt8](repeating: 0, count: rows * columns)  // [column, row] in original column order
    var values = [Float](repeating: 0, count: rows * columns)  // [row, column]
    if reference {
      passReference(weights, &grid, order: order, u: u, actOrder: options.actOrder, codes: &codes, values: &values)
    } else {
      passBlocked(weights, &grid, order: order, u: u.map(Float.init), blockSize: options.blockSize, actOrder: options.actOrder,
        codes: &codes, values: &values)
    }
    do {
      let packed = try PackedTensor(format: format, rows: rows, columns: columns, bytes: grid.pack(codes: codes))
      return (packed, values)
    } catch let error as QuantizationError {
      throw error
    } catch {
      throw QuantizationError(.badData, "\(error)")
    }
  }

  // MARK: - Checks and preparation

  static func check(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat, hessian: [Float], options: Options
  ) throws(QuantizationError) {
    guard supports(format) else {
      throw QuantizationError(.badFormatName, "gptq does not quantize \(format.name) (it takes int<B>[-g<G>][-asym], affine<B>-g<G>, q4_0…q8_0, q2_k…q6_k); use round-to-nearest")
    }
    guard rows > 0, columns > 0, format.canQuantize(rows: rows, columns: columns) else {
      throw QuantizationError(.unsupportedShape, "\(format.name) cannot take a [\(rows), \(columns)] tensor: \(format.shapeRule)")
    }
    guard weights.count == rows * columns else {
      throw QuantizationError(.sizeMismatch, "gptq: \(weights.count) weights for a [\(rows), \(columns)] tensor")
    }
    guard hessian.count == columns * columns else {
      throw QuantizationError(
        .sizeMismatch, "gptq: the hessian has \(hessian.count) values; a [\(rows), \(columns)] weight needs [\(columns), \(columns)] = \(columns * columns)")
    }
    if let bad = weights.firstIndex(where: { !$0.isFinite }) {
      throw QuantizationError(.badData, "gptq: weight \(bad) (row \(bad / columns), column \(bad % columns)) is \(weights[bad]); quantize finite values only")
    }
    if let bad = hessian.firstIndex(where: { !$0.isFinite }) {
      throw QuantizationError(.badData, "gptq: hessian entry (\(bad / columns), \(bad % columns)) is \(hessian[bad]); the hessian must be finite")
    }
    if let bad = (0..<columns).first(where: { hessian[$0 * columns + $0] < 0 }) {
      throw QuantizationError(
        .badData, "gptq: hessian diagonal entry \(bad) is \(hessian[bad * columns + bad]) < 0; G = XᵀX/n has a non-negative diagonal")
    }
    guard options.damping.isFinite, options.damping >= 0 else {
      throw QuantizationError(.badCalibration, "gptq damping \(options.damping) must be a finite fraction ≥ 0 (default 0.01)")
    }
    guard options.blockSize >= 1 else {
      throw QuantizationError(.badCalibration, "gptq block size \(options.blockSize) must be at least 1 column (default 128)")
    }
  }

  /// The processing order (original column of each step) and the damped H in that order, Double.
  static func prepare(_ hessian: [Float], n: Int, options: Options) -> (order: [Int], h: [Double]) {
    let diagonal = (0..<n).map { Double(hessian[$0 * n + $0]) }
    let mean = diagonal.reduce(0, +) / Double(n)
    let lambda = options.damping * mean
    let order = options.actOrder
      ? (0..<n).sorted { diagonal[$0] != diagonal[$1] ? diagonal[$0] > diagonal[$1] : $0 < $1 } : Array(0..<n)
    var h = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      let oi = order[i]
      for j in 0..<n {
        let oj = order[j]
        let dead = diagonal[oi] == 0 || diagonal[oj] == 0
        // The lower triangle of the input, mirrored: H[i,j] for i ≥ j.
        let value = oi >= oj ? hessian[oi * n + oj] : hessian[oj * n + oi]
        h[i * n + j] = dead ? 0 : Double(value)
      }
      h[i * n + i] = diagonal[oi] == 0 ? (mean > 0 ? mean : 1) : diagonal[oi] + lambda
    }
    return (order, h)
  }

  /// Act-order's static groups: every block's scales from the original weights.
  static func fixAllBlocks(_ grid: inout GPTQGrid, _ weights: [Float]) {
    let (rows, columns, L) = (grid.rows, grid.columns, grid.blockLength)
    var values = [Float](repeating: 0, count: rows * L)
    for block in 0..<(columns / L) {
      for r in 0..<rows {
        for j in 0..<L { values[r * L + j] = weights[r * columns + block * L + j] }
      }
      values.withUnsafeBufferPointer { grid.fixBlock(block, values: $0.baseAddress!) }
    }
  }
}
