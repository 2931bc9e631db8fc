/// The predicted loss increase of quantizing one layer, by several proxies, each stored under a score name.
///
/// With `ΔW = Q(W) − W` and `n` the layer's parameter count:
/// - `weight_error`: `‖ΔW‖²_F`, no curvature at all.
/// - `hawq_trace`: `tr(H)/n · ‖ΔW‖²_F`, HAWQ-V2's average-curvature proxy (Dong et al. 2020, eq. 7 with the
///   Hutchinson trace of the layer's diagonal Hessian block).
/// - `fisher_diag`: `Σ_j g_j² ΔW_j²`, the element-wise Fisher-weighted error with `g` the mean NLL gradient over the
///   calibration windows (diagonal empirical Fisher; cf. Kim et al. 2023, SqueezeLLM).
/// - `taylor_diag`: `½ Σ_j diag(H)_j ΔW_j²`, the second-order Taylor term with the Hutchinson diagonal
///   `diag(H) ≈ mean_k(v_k ⊙ Hv_k)` (Bekas et al. 2007; the first-order term vanishes near a minimum).
/// - `output_error`: `tr(ΔW G ΔWᵀ)` with `G = XᵀX/n`, the layer-local output error (GPTQ's objective).
public enum LossProxy: String, Sendable, Codable, CaseIterable {
  /// `‖ΔW‖²_F`.
  case weightError = "weight_error"
  /// `tr(H)/n · ‖ΔW‖²_F`.
  case hawqTrace = "hawq_trace"
  /// `Σ g² ΔW²`.
  case fisherDiagonal = "fisher_diag"
  /// `½ Σ diag(H) ΔW²`.
  case taylorDiagonal = "taylor_diag"
  /// `tr(ΔW G ΔWᵀ)`.
  case outputError = "output_error"

  /// `‖ΔW‖²_F` in Double.
  public static func weightError(delta: [Float]) -> Double {
    var sum = 0.0
    for d in delta { sum += Double(d) * Double(d) }
    return sum
  }

  /// `tr(H)/n · ‖ΔW‖²_F`; `n = parameterCount`.
  public static func hawqTrace(hessianTrace: Double, parameterCount: Int, weightError: Double) -> Double {
    hessianTrace / Double(parameterCount) * weightError
  }

  /// `Σ_j weights_j · ΔW_j²` in Double, the shared kernel of `fisher_diag` (weights `g²`) and `taylor_diag`
  /// (weights `diag(H)`, then halved).
  /// - Precondition: equal lengths.
  public static func weightedError(weights: [Double], delta: [Float]) -> Double {
    precondition(weights.count == delta.count, "length mismatch \(weights.count) != \(delta.count)")
    var sum = 0.0
    for j in delta.indices {
      let d = Double(delta[j])
      sum += weights[j] * d * d
    }
    return sum
  }

  /// `Σ_j g_j² ΔW_j²` from the mean gradient `g` of the layer.
  public static func fisherDiagonal(gradient: [Double], delta: [Float]) -> Double {
    precondition(gradient.count == delta.count, "length mismatch \(gradient.count) != \(delta.count)")
    var sum = 0.0
    for j in delta.indices {
      let gd = gradient[j] * Double(delta[j])
      sum += gd * gd
    }
    return sum
  }

  /// `½ Σ_j diag(H)_j ΔW_j²` from the Hutchinson diagonal of the layer.
  public static func taylorDiagonal(hessianDiagonal: [Double], delta: [Float]) -> Double {
    0.5 * weightedError(weights: hessianDiagonal, delta: delta)
  }
}
