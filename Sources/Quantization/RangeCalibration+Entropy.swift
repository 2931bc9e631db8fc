#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// TensorRT's entropy calibration (`RangeCalibration.kl`): the threshold bin i ∈ [Q, bins] with the least
/// KL(P‖Q̃), where P is the histogram of |w| cut at bin i with the tail folded into bin i − 1, and Q̃ merges those i
/// bins into Q levels (level L covers bins ⌊L·i/Q⌋ ..< ⌊(L+1)·i/Q⌋, the last one also the tail) and spreads each
/// level's mass evenly over its non-empty bins (bin i − 1 counts as non-empty when the tail lands there).
/// Reference: Migacz (2017), "8-bit Inference with TensorRT".
///
/// `entropyDivergencesReference` builds P and Q̃ bin by bin for every i: O(bins²) with a log per non-empty bin.
/// `entropyDivergences` gets the same sums from prefix sums: with N = Σh (= Σ P, exactly: counts are integers),
/// Q̃ constant (q_L) over the non-empty bins of a level and P = h there, a level contributes
/// `Σ (h/N)·log((h/N)/q_L) = (Σ h·log h − Σh·(log N + log q_L)) / N`, and bin i − 1 (where the tail lands) is added
/// on its own. That is O(bins · Q) with Q logs per threshold. The two differ only by rounding (~1e-15 of the
/// divergence). Ties matter: at i = Q every level is one bin, so Q̃ = P and the reference's divergence is exactly
/// 0, its minimum, whatever the weights (so this calibration always clips at (Q + 0.5)·amax/bins, far inside the
/// range: it never wins `RangeCalibration.compare`). The fast form reproduces exact zeros: a level with one
/// non-empty bin uses the reference's term, and the prefix-sum term of a level below the last, ≥ 0 in exact
/// arithmetic, is clamped at 0.
extension RangeCalibration {
  /// TensorRT's entropy threshold for `weights` (see the extension's documentation): `(i + 0.5)·amax/bins` for the
  /// chosen bin i, or 0 when every weight is 0.
  static func entropyThreshold(_ weights: UnsafeBufferPointer<Float>, bins: Int, levels: Int) -> Float {
    guard let (histogram, width) = entropyHistogram(weights, bins: bins) else { return 0 }
    return (Float(entropyBin(entropyDivergences(histogram, levels: levels))) + 0.5) * width
  }

  /// The histogram of |w| over [0, amax] in `bins` bins, and the bin width; `nil` when amax is 0.
  static func entropyHistogram(_ weights: UnsafeBufferPointer<Float>, bins: Int) -> (counts: [Double], width: Float)? {
    let amax = weights.reduce(Float(0)) { max($0, abs($1)) }
    guard amax > 0 else { return nil }
    let width = amax / Float(bins)
    var histogram = [Double](repeating: 0, count: bins)
    for w in weights { histogram[min(bins - 1, Int(abs(w) / width))] += 1 }
    return (histogram, width)
  }

  /// The first i with the least divergence (`divergences[i]`, +∞ where P or Q̃ is empty), or `bins` if none.
  static func entropyBin(_ divergences: [Double]) -> Int {
    var best = (divergence: Double.infinity, bin: divergences.count - 1)
    for i in divergences.indices where divergences[i] < best.divergence { best = (divergences[i], i) }
    return best.bin
  }

  /// Reference: KL(P‖Q̃) for every threshold bin i (index i of the result; +∞ below `levels`), P and Q̃ built bin
  /// by bin.
  static func entropyDivergencesReference(_ histogram: [Double], levels: Int) -> [Double] {
    let bins = histogram.count
    var divergences = [Double](repeating: .infinity, count: bins + 1)
    var tail = [Double](repeating: 0, count: bins + 1)
    for i in stride(from: bins - 1, through: 0, by: -1) { tail[i] = tail[i + 1] + histogram[i] }
    var p = [Double](repeating: 0, count: bins), q = [Double](repeating: 0, count: bins)
    for i in levels...bins {
      // P: the first i bins with the tail folded into the last.
      for j in 0..<i { p[j] = histogram[j] }
      p[i - 1] += tail[i]
      // Q̃: i bins merged into `levels` levels, each spread evenly over its non-empty source bins.
      for level in 0..<levels {
        let start = level * i / levels, stop = (level + 1) * i / levels
        var mass = 0.0, nonEmpty = 0
        for j in start..<stop {
          mass += histogram[j]
          if histogram[j] != 0 { nonEmpty += 1 }
        }
        if level == levels - 1 { mass += tail[i] }
        for j in start..<stop { q[j] = histogram[j] != 0 || (j == i - 1 && p[j] != 0) ? mass / Double(max(nonEmpty, 1)) : 0 }
      }
      let pSum = p[0..<i].reduce(0, +), qSum = q[0..<i].reduce(0, +)
      guard pSum > 0, qSum > 0 else { continue }
      var divergence = 0.0
      for j in 0..<i where p[j] > 0 {
        let pj = p[j] / pSum, qj = max(q[j] / qSum, 1e-12)
        divergence += pj * log(pj / qj)
      }
      divergences[i] = divergence
    }
    return divergences
  }

  /// KL(P‖Q̃) for every threshold bin i from prefix sums (see the extension's documentation); equals
  /// `entropyDivergencesReference` up to rounding.
  static func entropyDivergences(_ histogram: [Double], levels: Int) -> [Double] {
    let bins = histogram.count
    var divergences = [Double](repeating: .infinity, count: bins + 1)
    // Prefix sums over bins ..< j: counts (exact), non-empty bins, h·log h.
    var count = [Double](repeating: 0, count: bins + 1), nonEmpty = [Int](repeating: 0, count: bins + 1)
    var hLogH = [Double](repeating: 0, count: bins + 1)
    for j in 0..<bins {
      let h = histogram[j]
      count[j + 1] = count[j] + h
      nonEmpty[j + 1] = nonEmpty[j] + (h != 0 ? 1 : 0)
      hLogH[j + 1] = hLogH[j] + (h > 0 ? h * log(h) : 0)
    }
    let total = count[bins]
    guard total > 0 else { return divergences }
    let logTotal = log(total)
    var spread = [Double](repeating: 0, count: levels)  // q̃ on each non-empty bin of a level
    for i in levels...bins {
      let tail = total - count[i]
      let last = histogram[i - 1] + tail  // P at bin i − 1
      // Q̃'s total: each level's spread value times the bins that receive it.
      var qSum = 0.0
      for level in 0..<levels {
        let start = level * i / levels, stop = (level + 1) * i / levels
        var mass = count[stop] - count[start]
        var receivers = nonEmpty[stop] - nonEmpty[start]
        if level == levels - 1 {
          mass += tail
          if histogram[i - 1] == 0 && last != 0 { receivers += 1 }
        }
        spread[level] = mass / Double(max(nonEmpty[stop] - nonEmpty[start], 1))
        qSum += spread[level] * Double(receivers)
      }
      guard qSum > 0 else { continue }
      // Levels' non-empty bins below i − 1, then bin i − 1 with the tail.
      var divergence = 0.0
      for level in 0..<levels {
        let start = level * i / levels, stop = min((level + 1) * i / levels, i - 1)
        guard stop > start, nonEmpty[stop] > nonEmpty[start] else { continue }
        let q = max(spread[level] / qSum, 1e-12)
        if nonEmpty[stop] - nonEmpty[start] == 1 {
          // One non-empty bin: the reference's own term, so that P = Q̃ there gives exactly 0 as it does.
          let pj = (count[stop] - count[start]) / total
          divergence += pj * log(pj / q)
        } else {
          // Below the last level the terms of a level sum to ≥ 0 (log-sum inequality, as Q̃'s total ≥ P's); the
          // clamp keeps rounding from turning a tie with the reference's exact zeros into a spurious minimum. (The
          // last level's share of the tail sits in bin i − 1, so its other bins alone may sum below 0.)
          let term = (hLogH[stop] - hLogH[start] - (count[stop] - count[start]) * (logTotal + log(q))) / total
          divergence += level < levels - 1 ? max(0, term) : term
        }
      }
      if last > 0 {
        let pj = last / total, qj = max(spread[levels - 1] / qSum, 1e-12)
        divergence += pj * log(pj / qj)
      }
      divergences[i] = divergence
    }
    return divergences
  }
}
