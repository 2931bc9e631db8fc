#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// How the integer formats choose each group's range before quantizing. Applies to `intN` and `nf4`; GGML,
/// ternary and float formats have fixed algorithms and ignore it.
///
/// - `minMax`: the full range of each group (no clipping).
/// - `percentile(p)`: one threshold per tensor, the p-th percentile of |w|; each group is clipped to
///   [−T, T] ∩ its own range.
/// - `mse(steps:)`: per group, a search over the clip ratio r ∈ {1, 1 − 0.5/steps, …, 0.5 + 0.5/steps} of the
///   group's range, keeping the r with the least Σ (w − ŵ)² (the "mse" grid of GPTQ/AWQ implementations).
/// - `kl(bins:)`: one threshold per tensor by TensorRT's entropy calibration (Migacz 2017): a histogram of |w|
///   over [0, amax] with `bins` bins; for each candidate threshold bin i ≥ Q (Q = 2^(bits−1) levels), fold the tail
///   into bin i−1 (P), merge the first i bins into Q levels and spread back over the non-empty bins (Q̃), keep the i
///   with the least KL(P‖Q̃); T = (i + 0.5)·width.
public enum RangeCalibration: Hashable, Sendable, Codable, CustomStringConvertible {
  case minMax
  case percentile(Double)
  case mse(steps: Int)
  case kl(bins: Int)

  /// The four methods with their usual settings.
  public static let standard: [RangeCalibration] = [.minMax, .percentile(99.99), .mse(steps: 20), .kl(bins: 2048)]

  /// `minmax`, `percentile-99.99`, `mse-20`, `kl-2048`.
  public var description: String {
    switch self {
    case .minMax: return "minmax"
    case .percentile(let p): return "percentile-\(p)"
    case .mse(let steps): return "mse-\(steps)"
    case .kl(let bins): return "kl-\(bins)"
    }
  }

  /// Parses `description` back (`minmax`, `percentile-99.99`, `mse-20`, `kl-2048`); nil for anything else, such as
  /// the run file's `fixed` or "" (formats without a calibration).
  public init?(recorded text: String) {
    if text == "minmax" { self = .minMax; return }
    let parts = text.split(separator: "-", maxSplits: 1).map(String.init)
    guard parts.count == 2 else { return nil }
    switch parts[0] {
    case "percentile": guard let p = Double(parts[1]) else { return nil }; self = .percentile(p)
    case "mse": guard let s = Int(parts[1]) else { return nil }; self = .mse(steps: s)
    case "kl": guard let b = Int(parts[1]) else { return nil }; self = .kl(bins: b)
    default: return nil
    }
  }

  /// The per-group clip rule this calibration gives for `weights` in `format`.
  func clip(for weights: UnsafeBufferPointer<Float>, format: QuantFormat) throws -> IntegerCodec.Clip {
    let levels: Int
    switch format.scheme {
    case .integer(let bits): levels = 1 << (bits - 1)
    case .nf4: levels = 8
    default: return .none
    }
    switch self {
    case .minMax: return .none
    case .percentile(let p):
      guard p > 0, p <= 100 else { throw QuantizationError(.badCalibration, "percentile \(p) is outside (0, 100]") }
      var magnitudes = weights.map { abs($0) }
      guard !magnitudes.isEmpty else { return .none }
      let index = min(magnitudes.count - 1, Int((p / 100 * Double(magnitudes.count)).rounded(.up)) - 1)
      return .threshold(Self.orderStatistic(&magnitudes, max(0, index)))
    case .mse(let steps):
      guard steps >= 1 else { throw QuantizationError(.badCalibration, "mse search needs at least 1 step, got \(steps)") }
      if case .nf4 = format.scheme { return .none }  // the nf4 codec takes a threshold only
      return .mseSearch(steps: steps)
    case .kl(let bins):
      guard bins >= 2 * levels else { throw QuantizationError(.badCalibration, "kl needs at least \(2 * levels) bins, got \(bins)") }
      return .threshold(Self.entropyThreshold(weights, bins: bins, levels: levels))
    }
  }
}

/// The squared error of one calibration method on one tensor.
public struct CalibrationResult: Sendable, Codable, Equatable {
  /// The method.
  public var method: RangeCalibration
  /// ‖Q(W) − W‖²_F with this method.
  public var squaredError: Double
}

extension RangeCalibration {
  /// Quantizes `weights` with each method and reports ‖Q(W) − W‖²_F, best (lowest) first.
  /// - Throws: as `quantize`.
  public static func compare(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat, methods: [RangeCalibration] = standard
  ) throws -> [CalibrationResult] {
    try methods.map { method in
      let approx = try quantizeDequantize(weights, rows: rows, columns: columns, format: format, calibration: method)
      var sum = 0.0
      for i in weights.indices { sum += Double(weights[i] - approx[i]) * Double(weights[i] - approx[i]) }
      return CalibrationResult(method: method, squaredError: sum)
    }.sorted { $0.squaredError < $1.squaredError }
  }
}

extension RangeCalibration {
  /// The value at index `k` of `values` sorted ascending (`values.sorted()[k]`), by selection in O(n) expected time
  /// instead of a sort: the percentile's threshold is one order statistic, and the measurement asks for it for
  /// every integer candidate of every layer. Quickselect with a median-of-three pivot and three-way partitioning
  /// (runs of equal values end a round); after `2·log₂ n + 8` rounds without an answer the remaining range is sorted,
  /// so adversarial inputs stay O(n log n). The same value as the sort's, whatever the algorithm: an order
  /// statistic is unique. `values` is reordered. No NaN (the callers check values first).
  static func orderStatistic(_ values: inout [Float], _ k: Int) -> Float {
    precondition(values.indices.contains(k), "order statistic \(k) of \(values.count) values")
    var (low, high) = (0, values.count - 1)
    var rounds = 2 * (Int.bitWidth - values.count.leadingZeroBitCount) + 8
    return values.withUnsafeMutableBufferPointer { v in
      while low < high {
        if rounds == 0 {
          v[low...high].sort()
          return v[k]
        }
        rounds -= 1
        let mid = low + (high - low) / 2
        let (a, b, c) = (v[low], v[mid], v[high])
        let pivot = max(min(a, b), min(max(a, b), c))
        // three-way partition of [low, high]: < pivot | == pivot | > pivot
        var (lt, i, gt) = (low, low, high)
        while i <= gt {
          if v[i] < pivot {
            v.swapAt(lt, i)
            lt += 1
            i += 1
          } else if v[i] > pivot {
            v.swapAt(i, gt)
            gt -= 1
          } else {
            i += 1
          }
        }
        if k < lt {
          high = lt - 1
        } else if k > gt {
          low = gt + 1
        } else {
          return pivot
        }
      }
      return v[k]
    }
  }
}
