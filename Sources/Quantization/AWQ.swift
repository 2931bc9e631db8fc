#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

/// Activation-aware weight scaling (AWQ; Lin et al. 2023, mit-han-lab/llm-awq `auto_scale.py`), buffers in.
///
/// A group of linear layers that read the same input X [n, in] (q/k/v read the attention norm's output, gate/up the
/// MLP norm's; o_proj and down_proj are groups of one) shares one per-input-channel scale s. Each member's weight W is
/// stored as Q(W·diag(s)) and its input divided by s, so the layer computes (X·diag(s)⁻¹)·Q(W·diag(s))ᵀ: channels
/// with large activations get finer steps. In the model, diag(s)⁻¹ is folded into the preceding RMSNorm weight where
/// one exists (Engine, `LlamaModel.foldInputScale(_:into:)`) or applied to the input by the packed operator
/// (`PackedLinear(inputScale:)` in Validation).
///
/// The search, as AWQ does it:
/// - m_j = mean over tokens of |x_j| (`activationMeans`);
/// - for α = i / grid, i = 0 … grid − 1: s_j = max(m_j^α, 1e-4), then s ← s / √(max s · min s) (`scales`), so that
///   α = 0 gives s = 1 exactly;
/// - the score of α is the output error summed over the members, Σ_members ‖X·Wᵀ − (X·diag(s)⁻¹)·Q(W·diag(s))ᵀ‖²_F / n
///   (per token, the units of the run file's `/error/output`), each member quantized in its own format with its own
///   range calibration; the least score wins, ties to the smaller α.
///
/// AWQ's own score is the output of the whole attention or MLP module; ours is the sum of the members' outputs, the
/// part of that error the quantizer controls, and the quantity `measure` records. Since α = 0 is plain
/// round-to-nearest to the bit (`quantize` of W itself), the result's error never exceeds RTN's on the
/// calibration inputs.
public enum AWQ {
  /// Search settings.
  public struct Options: Sendable, Equatable, Codable {
    /// Grid points for α in [0, 1): α = i / grid (AWQ's `n_grid`, 20).
    public var grid: Int
    public init(grid: Int = 20) { self.grid = grid }
  }

  /// One layer of a group sharing an input.
  public struct Member: Sendable {
    /// W [rows, columns], row-major (`[out, in]`).
    public var weights: [Float]
    /// Output features.
    public var rows: Int
    /// The storage format of this layer (members of one group may differ).
    public var format: QuantFormat
    /// Range calibration for `format` (`quantize`'s).
    public var calibration: RangeCalibration
    public init(weights: [Float], rows: Int, format: QuantFormat, calibration: RangeCalibration = .minMax) {
      self.weights = weights
      self.rows = rows
      self.format = format
      self.calibration = calibration
    }
  }

  /// The chosen scaling of a group.
  public struct Result: Sendable, Equatable {
    /// The chosen α (0 means plain round-to-nearest).
    public var alpha: Double
    /// s [columns]: divide the input by it (fold 1/s into the norm), multiply W's columns by it.
    public var scales: [Float]
    /// Q(W·diag(s)) per member, in the members' order and formats.
    public var packed: [PackedTensor]
    /// The group's output error at `alpha`, Σ ‖X·ΔWᵀ‖²_F / n over the members.
    public var outputError: Double
    /// The same at α = 0: round-to-nearest of W.
    public var rtnOutputError: Double
    /// Each member's output error at `alpha`.
    public var memberErrors: [Double]
    /// The group's output error at every grid point (index i is α = i / grid).
    public var history: [Double]
    /// Q(W) per member at α = 0 (s = 1: round to nearest, byte for byte `quantize`'s) and each one's output error.
    public var rtnPacked: [PackedTensor] = []
    public var rtnMemberErrors: [Double] = []

    /// Member `k`'s codes and the input scales they need: AWQ's when its own output error is below round to
    /// nearest's, else round to nearest's with no scales. α is chosen for the group's total, so one member (k_proj
    /// beside q and v, say) can lose alone; keeping its plain codes then lowers the total further, and the
    /// member reads its input unscaled (it has its own operator, so the others' scales do not reach it).
    public func choice(member k: Int) -> (packed: PackedTensor, scales: [Float]?) {
      guard k < rtnMemberErrors.count, !(memberErrors[k] < rtnMemberErrors[k]) else { return (packed[k], scales) }
      return (rtnPacked[k], nil)
    }
  }

  /// Whether AWQ is meaningful for `format`: every quantized format (integer, affine, GGML blocks, nf4, ternary).
  /// Float formats (f32, f16, bf16) store W as it is, so there is nothing to scale; `search` refuses them with
  /// `QuantizationError.badFormatName` and callers keep such layers round-to-nearest (recorded "rtn").
  public static func supports(_ format: QuantFormat) -> Bool {
    switch format.scheme {
    case .f32, .f16, .bf16: return false
    case .integer, .affine, .ggml, .nf4, .ternary: return true
    }
  }

  /// m_j = mean_t |X[t, j]| in Double.
  public static func activationMeans(_ inputs: [Float], rows n: Int, columns: Int) -> [Double] {
    precondition(inputs.count == n * columns, "inputs: \(inputs.count) values for [\(n), \(columns)]")
    var sums = [Double](repeating: 0, count: columns)
    inputs.withUnsafeBufferPointer { x in
      for t in 0..<n {
        let row = x.baseAddress! + t * columns
        for j in 0..<columns { sums[j] += Double(abs(row[j])) }
      }
    }
    return sums.map { $0 / Double(max(n, 1)) }
  }

  /// AWQ's scales for one α: s_j = max(m_j^α, 1e-4), normalised by √(max s · min s). α = 0 gives exactly 1.
  public static func scales(means: [Double], alpha: Double) -> [Float] {
    let raw = means.map { Swift.max(pow($0, alpha), 1e-4) }
    guard let hi = raw.max(), let lo = raw.min() else { return [] }
    let norm = (hi * lo).squareRoot()
    return raw.map { Float($0 / norm) }
  }

  /// Searches α for a group of layers sharing `inputs` (see the type's comment).
  /// - Parameters:
  ///   - members: the group's layers, each `rows · columns` weights.
  ///   - columns: the shared input width.
  ///   - inputs: X [inputRows, columns], row-major: the layers' captured calibration inputs.
  /// - Throws: `QuantizationError.badFormatName` for a float format (`supports`), `.badData` for mismatched counts,
  ///   no members or non-finite inputs, `.badCalibration` for a grid < 1, and whatever `quantize` throws
  ///   (`.unsupportedShape` when a format cannot take its member's shape).
  public static func search(
    members: [Member], columns: Int, inputs: [Float], inputRows: Int, options: Options = Options()
  ) throws(QuantizationError) -> Result {
    guard !members.isEmpty else { throw QuantizationError(.badData, "AWQ needs at least one layer in a group") }
    guard options.grid >= 1 else { throw QuantizationError(.badCalibration, "AWQ grid must have at least 1 point, got \(options.grid)") }
    guard columns >= 1, inputRows >= 1, inputs.count == inputRows * columns else {
      throw QuantizationError(.badData, "AWQ inputs: \(inputs.count) values for [\(inputRows), \(columns)]")
    }
    if let bad = inputs.firstIndex(where: { !$0.isFinite }) {
      throw QuantizationError(.badData, "AWQ input \(bad) (token \(bad / columns)) is \(inputs[bad]); capture finite activations")
    }
    for (i, m) in members.enumerated() {
      guard supports(m.format) else {
        throw QuantizationError(.badFormatName, "AWQ does not take \(m.format.name) (member \(i)): a float format has nothing to scale; keep it as is")
      }
      guard m.rows >= 1, m.weights.count == m.rows * columns else {
        throw QuantizationError(.badData, "AWQ member \(i): \(m.weights.count) weights for [\(m.rows), \(columns)]")
      }
    }
    let means = activationMeans(inputs, rows: inputRows, columns: columns)
    var best: (alpha: Double, scales: [Float], packed: [PackedTensor], errors: [Double])?
    var history: [Double] = []
    var rtn: (packed: [PackedTensor], errors: [Double]) = ([], [])
    for i in 0..<options.grid {
      let alpha = Double(i) / Double(options.grid)
      let s = scales(means: means, alpha: alpha)
      var packed: [PackedTensor] = []
      var errors: [Double] = []
      for m in members {
        let p = try quantizeScaled(m, columns: columns, scales: s)
        packed.append(p)
        errors.append(outputError(weights: m.weights, approximation: effectiveWeights(p, scales: s), rows: m.rows,
          columns: columns, inputs: inputs, inputRows: inputRows))
      }
      let total = errors.reduce(0, +)
      if i == 0 { rtn = (packed, errors) }
      history.append(total)
      if best == nil || total < best!.errors.reduce(0, +) { best = (alpha, s, packed, errors) }
    }
    let b = best!
    return Result(
      alpha: b.alpha, scales: b.scales, packed: b.packed, outputError: b.errors.reduce(0, +), rtnOutputError: history[0],
      memberErrors: b.errors, history: history, rtnPacked: rtn.packed, rtnMemberErrors: rtn.errors)
  }

  /// Q(W·diag(s)) for one member, in its format and calibration.
  static func quantizeScaled(_ m: Member, columns: Int, scales s: [Float]) throws(QuantizationError) -> PackedTensor {
    var scaled = m.weights
    if s.contains(where: { $0 != 1 }) {
      for r in 0..<m.rows { for j in 0..<columns { scaled[r * columns + j] *= s[j] } }
    }
    do {
      return try quantize(scaled, rows: m.rows, columns: columns, format: m.format, calibration: m.calibration)
    } catch let e as QuantizationError {
      throw e
    } catch {
      throw QuantizationError(.badData, "\(error)")
    }
  }

  /// The dense weights a scaled layer computes with: dequantize(Q(W·diag(s)))·diag(s)⁻¹, [rows, columns]
  /// row-major. This is the layer's quantized weight for error measurement (`measure`) and for a dense model.
  /// - Precondition: `scales.count == packed.columns`.
  public static func effectiveWeights(_ packed: PackedTensor, scales: [Float]) -> [Float] {
    precondition(scales.count == packed.columns, "\(scales.count) scales for \(packed.columns) columns")
    var w = packed.dequantize()
    let c = packed.columns
    if scales.contains(where: { $0 != 1 }) {
      for r in 0..<packed.rows { for j in 0..<c { w[r * c + j] /= scales[j] } }
    }
    return w
  }
}
