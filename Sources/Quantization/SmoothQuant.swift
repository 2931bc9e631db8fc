#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif
import TensorCore

/// SmoothQuant W8A8 (Xiao et al. 2023, "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large
/// Language Models"), buffers in: the format `w8a8[-a<α>]` (`QuantFormat.w8a8(alpha:)`).
///
/// A layer Y = X·Wᵀ (X [n, in], W [out, in]) is run as Y' = Q8tok(X·diag(s)⁻¹)·Q8ch(W·diag(s))ᵀ: the weights
/// per-output-channel symmetric int8 (`int8`'s codes, one f16 scale per row), the activations per-token int8 (one
/// scale amax/127 per token, `Q8Activations` with one block), and s a per-input-channel smoothing factor that moves
/// the activations' outliers into the weights, where per-channel scales absorb them.
///
/// Smoothing factor, per input channel j (`scales`):
///
///     s_j = (max_t |X[t, j]| / max_r |W[r, j]|)^α,    α ∈ [0, 1] (the migration strength)
///
/// so α = 0 gives s = 1 exactly (the format is then `int8` with int8 activations, bit for bit), and
/// max|X_j/s_j| = max|X_j|^(1−α)·max|W_j|^α, max|W_j·s_j| = max|X_j|^α·max|W_j|^(1−α). The paper's eq. 4 is
/// s_j = max|X_j|^α / max|W_j|^(1−α); the two are equal at α = 0.5 (SmoothQuant's default and ours) and differ
/// elsewhere by the per-channel factor max|W_j|^(1−2α) (the paper's α = 0 is s = 1/max|W_j|, not 1). Where several
/// layers read one input (q/k/v, gate/up) max|W_j| is taken over all of them, as the paper's `smooth_ln_fcs` does,
/// so one s can be folded into the preceding RMSNorm. Guards: a channel never active on the calibration inputs
/// (max|X_j| = 0), or with an all-zero weight column, gets s_j = 1; s is clamped into [2⁻⁶⁴, 2⁶⁴], so it is always
/// finite and non-zero.
///
/// max|X_j| comes from the layer's calibration inputs (the inputs `measure` and `validate` capture for GPTQ/AWQ).
public enum SmoothQuant {
  /// Bounds of s (its guard against a near-zero weight or activation maximum).
  public static let scaleRange: ClosedRange<Float> = 0x1p-64...0x1p64

  /// max_t |X[t, j]| per column of X [n, columns] (exact: a maximum does not round).
  public static func activationMaxima(_ inputs: [Float], rows n: Int, columns: Int) -> [Float] {
    precondition(inputs.count == n * columns, "inputs: \(inputs.count) values for [\(n), \(columns)]")
    var out = [Float](repeating: 0, count: columns)
    inputs.withUnsafeBufferPointer { x in
      for t in 0..<n {
        for j in 0..<columns { out[j] = Swift.max(out[j], abs(x[t * columns + j])) }
      }
    }
    return out
  }

  /// max_r |W[r, j]| per column, over every matrix of `weights` (each `[rows_k, columns]`, row-major): the layers
  /// that share one input.
  public static func weightMaxima(_ weights: [[Float]], columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: columns)
    for w in weights {
      precondition(columns > 0 && w.count % columns == 0, "weights: \(w.count) values for rows of \(columns)")
      w.withUnsafeBufferPointer { w in
        for r in 0..<(w.count / columns) {
          for j in 0..<columns { out[j] = Swift.max(out[j], abs(w[r * columns + j])) }
        }
      }
    }
    return out
  }

  /// s_j = (a_j / w_j)^α (see the type's comment), in Double, clamped into `scaleRange`; 1 where a_j or w_j is 0
  /// (or not finite), and exactly 1 everywhere for α = 0.
  /// - Precondition: equal lengths, α in 0...1.
  public static func scales(activationMaxima a: [Float], weightMaxima w: [Float], alpha: Double) -> [Float] {
    precondition(a.count == w.count, "\(a.count) activation maxima, \(w.count) weight maxima")
    precondition((0...1).contains(alpha), "α = \(alpha)")
    return zip(a, w).map { a, w in
      guard alpha > 0, a > 0, w > 0, a.isFinite, w.isFinite else { return 1 }
      let s = Float(pow(Double(a) / Double(w), alpha))
      return Swift.min(Swift.max(s, scaleRange.lowerBound), scaleRange.upperBound)
    }
  }

  /// W·diag(s): column j of W [rows, columns] multiplied by s_j.
  public static func scaledWeights(_ w: [Float], columns: Int, scales s: [Float]) -> [Float] {
    precondition(s.count == columns && w.count % Swift.max(columns, 1) == 0, "\(s.count) scales for rows of \(columns)")
    var out = w
    for r in 0..<(columns == 0 ? 0 : w.count / columns) { for j in 0..<columns { out[r * columns + j] *= s[j] } }
    return out
  }

  /// The smoothing factor of one layer and its `w8a8` tensor Q8ch(W·diag(s)), in `format` (a `w8a8` format) with
  /// range calibration `calibration`.
  /// - Parameters:
  ///   - weights: W [rows, columns].
  ///   - groupWeights: the other layers reading the same input (their W's maxima enter s), or empty.
  ///   - inputs: the calibration inputs X [inputRows, columns].
  ///   - calibration: the range calibration for W·diag(s) (given the scaled weights); min-max by default.
  /// - Throws: `QuantizationError.badFormatName` when `format` is not a `w8a8` format; `quantize`'s errors.
  public static func quantize(
    _ weights: [Float], rows: Int, columns: Int, groupWeights: [[Float]] = [], format: QuantFormat,
    inputs: [Float], inputRows: Int, calibration: ([Float]) throws -> RangeCalibration = { _ in .minMax }
  ) throws -> (packed: PackedTensor, scales: [Float]) {
    guard let alpha = format.migrationStrength else {
      throw QuantizationError(.badFormatName, "\(format.name) is not a SmoothQuant format (w8a8[-a<α>])")
    }
    let s = scales(
      activationMaxima: activationMaxima(inputs, rows: inputRows, columns: columns),
      weightMaxima: weightMaxima([weights] + groupWeights, columns: columns), alpha: alpha)
    let scaled = scaledWeights(weights, columns: columns, scales: s)
    let method = try calibration(scaled)
    return (try Quantization.quantize(scaled, rows: rows, columns: columns, format: format, calibration: method), s)
  }

  /// The output error of a `w8a8` layer with int8 activations on inputs X [n, columns]:
  /// ‖Q8tok(X·diag(s)⁻¹)·Q8ch(W·diag(s))ᵀ − X·Wᵀ‖²_F / n, per token (the units of the run file's `/error/output`,
  /// which for weight-only formats is tr(ΔW·XᵀX·ΔWᵀ)/n = ‖X·ΔWᵀ‖²_F / n). Y' is computed by the packed int8 GEMM
  /// (`PackedGEMM`, the kernel validation runs), Y by OpenBLAS, the squares summed in Double.
  /// - Parameters:
  ///   - weights: W [rows, columns], the unquantized weights.
  ///   - packed: Q8ch(W·diag(s)), a format with integer codes.
  ///   - threads: workers for the GEMM (1 inside an outer parallel loop).
  /// - Throws: `QuantizationError.noPackedKernel` when `packed` has no int8-activation kernel.
  public static func outputError(
    weights: [Float], packed: PackedTensor, scales s: [Float], inputs: [Float], inputRows n: Int, threads: Int = 1
  ) throws -> Double {
    let (rows, columns) = (packed.rows, packed.columns)
    precondition(weights.count == rows * columns && s.count == columns, "weights or scales differ from [\(rows), \(columns)]")
    precondition(inputs.count == n * columns, "inputs: \(inputs.count) values for [\(n), \(columns)]")
    if n == 0 || rows == 0 { return 0 }
    var smoothed = inputs
    for t in 0..<n { for j in 0..<columns { smoothed[t * columns + j] /= s[j] } }
    var exact = [Float](repeating: 0, count: n * rows)
    var approximate = [Float](repeating: 0, count: n * rows)
    let gemm = try PackedGEMM(packed, activations: .int8)
    inputs.withUnsafeBufferPointer { x in
      weights.withUnsafeBufferPointer { w in
        exact.withUnsafeMutableBufferPointer { y in
          // Y[n, rows] = X[n, columns] · W[rows, columns]ᵀ
          BLAS.sgemm(transposeB: true, m: n, n: rows, k: columns, a: x.baseAddress!, b: w.baseAddress!, c: y.baseAddress!)
        }
      }
    }
    smoothed.withUnsafeBufferPointer { x in
      approximate.withUnsafeMutableBufferPointer { y in
        gemm.apply(x.baseAddress!, tokens: n, into: y.baseAddress!, accumulate: false, threads: threads)
      }
    }
    var total = 0.0
    for i in 0..<(n * rows) {
      let d = Double(approximate[i]) - Double(exact[i])
      total += d * d
    }
    return total / Double(n)
  }

  /// The reference twin of `outputError`: each token divided by s and quantized per token by the plain formula
  /// (d = amax/127, a_j = round-half-away(x_j/d)), the weight decoded by `dequantize()`, and
  /// Σ_t Σ_r (Σ_j d·a_j·Ŵ[r, j] − Σ_j X[t, j]·W[r, j])² / n in Double, loop by loop.
  public static func outputErrorReference(
    weights: [Float], packed: PackedTensor, scales s: [Float], inputs: [Float], inputRows n: Int
  ) -> Double {
    let (rows, columns) = (packed.rows, packed.columns)
    let decoded = packed.dequantize()
    var total = 0.0
    for t in 0..<n {
      // x̃ = X[t]·diag(s)⁻¹, then per-token int8
      let smoothed = (0..<columns).map { inputs[t * columns + $0] / s[$0] }
      let amax = smoothed.reduce(Float(0)) { Swift.max($0, abs($1)) }
      let d = amax / 127
      let codes = smoothed.map { d == 0 ? Float(0) : ($0 * (1 / d)).rounded(.toNearestOrAwayFromZero) }
      for r in 0..<rows {
        var approximate = 0.0
        var exact = 0.0
        for j in 0..<columns {
          approximate += Double(d) * Double(codes[j]) * Double(decoded[r * columns + j])
          exact += Double(inputs[t * columns + j]) * Double(weights[r * columns + j])
        }
        total += (approximate - exact) * (approximate - exact)
      }
    }
    return total / Double(Swift.max(n, 1))
  }

  /// The dense weight a `w8a8` layer stands for: dequant(Q8ch(W·diag(s)))·diag(s)⁻¹ (its weight error is
  /// ‖this − W‖²_F; `AWQ.effectiveWeights`, the same formula).
  public static func effectiveWeights(_ packed: PackedTensor, scales: [Float]) -> [Float] {
    AWQ.effectiveWeights(packed, scales: scales)
  }
}
