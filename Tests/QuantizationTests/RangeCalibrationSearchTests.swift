import Testing
import _TestSupport

@testable import Quantization

/// The fast MSE clip search and KL divergences against their references.
struct RangeCalibrationSearchTests {
  /// Groups that exercise the search: heavy tails, all zeros, one value, a negative extreme, values near f16's
  /// smallest step.
  static func groups(length n: Int, seed: UInt64) -> [[Float]] {
    var negative = randomFloats(n, seed: seed + 2, scale: 0.03)
    if n > 0 { negative[n / 2] = -1.5 }
    return [
      RangeCalibrationTests.heavyTailed(n, seed: seed), [Float](repeating: 0, count: n),
      [Float](repeating: 0.25, count: n), negative, randomFloats(n, seed: seed + 3, scale: 1e-6),
    ]
  }

  /// Every ratio's error from `searchErrors` is bit-identical to `quantizeGroup`'s, so the chosen ratio is too.
  @Test(arguments: [2, 3, 4, 6, 8], [true, false])
  func searchErrorsEqualQuantizeGroup(bits: Int, symmetric: Bool) {
    for n in [1, 7, 32, 33, 64, 576] {
      for (g, x) in Self.groups(length: n, seed: UInt64(n)).enumerated() {
        var scratch = [UInt8](repeating: 0, count: IntegerCodec.groupBytes(length: n, bits: bits, symmetric: symmetric))
        for steps in [1, 7, 16, 20, 33] {
          x.withUnsafeBufferPointer { xs in
            scratch.withUnsafeMutableBytes { s in
              let fast = IntegerCodec.searchErrors(xs.baseAddress!, n, bits: bits, symmetric: symmetric, steps: steps)
              let slow = (0..<steps).map { k in
                IntegerCodec.quantizeGroup(
                  xs.baseAddress!, n, s.baseAddress!, bits: bits, symmetric: symmetric,
                  ratio: IntegerCodec.searchRatio(k, steps: steps), threshold: .infinity)
              }
              #expect(fast == slow, "int\(bits) sym=\(symmetric) n=\(n) group \(g) steps=\(steps)")
              let chosen = IntegerCodec.searchRatio(xs.baseAddress!, n, bits: bits, symmetric: symmetric, steps: steps)
              let reference = IntegerCodec.searchRatioReference(
                xs.baseAddress!, n, scratch: s.baseAddress!, bits: bits, symmetric: symmetric, steps: steps)
              #expect(chosen == reference)
            }
          }
        }
      }
    }
  }

  /// `quantizeGroupFast` writes the reference's bytes: every width, both signs of zero point, partial chunks,
  /// clipping by ratio and by threshold.
  @Test(arguments: [2, 3, 4, 5, 6, 7, 8], [true, false])
  func quantizeGroupFastEqualsReference(bits: Int, symmetric: Bool) {
    for n in [1, 7, 31, 32, 33, 64, 65, 576] {
      for (g, x) in Self.groups(length: n, seed: UInt64(n) + 50).enumerated() {
        let size = IntegerCodec.groupBytes(length: n, bits: bits, symmetric: symmetric)
        for (ratio, threshold) in [(Float(1), Float.infinity), (0.8, .infinity), (0.55, .infinity), (1, 0.01)] {
          var want = [UInt8](repeating: 0xAA, count: size), got = [UInt8](repeating: 0x55, count: size)
          x.withUnsafeBufferPointer { xs in
            want.withUnsafeMutableBytes { w in
              _ = IntegerCodec.quantizeGroup(
                xs.baseAddress!, n, w.baseAddress!, bits: bits, symmetric: symmetric, ratio: ratio, threshold: threshold)
            }
            got.withUnsafeMutableBytes { o in
              IntegerCodec.quantizeGroupFast(
                xs.baseAddress!, n, o.baseAddress!, bits: bits, symmetric: symmetric, ratio: ratio, threshold: threshold)
            }
          }
          #expect(got == want, "int\(bits) sym=\(symmetric) n=\(n) group \(g) ratio \(ratio) threshold \(threshold)")
        }
      }
    }
  }

  /// Histograms like the calibration's: heavy tails and Gaussians of a few thousand weights (sparse high bins),
  /// a few weights only, and one bin.
  static func histograms(bins: Int) -> [[Double]] {
    let samples: [[Float]] = [
      RangeCalibrationTests.heavyTailed(9216, seed: 11), RangeCalibrationTests.heavyTailed(576, seed: 12),
      randomFloats(4096, seed: 13), Array(randomFloats(24, seed: 14)),
      (0..<2000).map { i in Float(i % 7) }, [3, 3, 3],
    ]
    return samples.map { w in w.withUnsafeBufferPointer { RangeCalibration.entropyHistogram($0, bins: bins)!.counts } }
  }

  /// Largest divergence difference allowed: the prefix-sum form rounds differently, by ~1e-15 of terms of size
  /// log(N) ≈ 10; 1e-11 leaves four orders of margin and is far below the gaps between thresholds' divergences.
  static let divergenceTolerance = 1e-11

  /// Same divergences up to rounding, and the same chosen bin.
  @Test(arguments: [64, 512, 2048], [2, 4, 8, 32, 128])
  func entropyDivergencesMatchReference(bins: Int, levels: Int) {
    guard bins >= 2 * levels else { return }
    for (h, histogram) in Self.histograms(bins: bins).enumerated() {
      let fast = RangeCalibration.entropyDivergences(histogram, levels: levels)
      let slow = RangeCalibration.entropyDivergencesReference(histogram, levels: levels)
      #expect(fast.count == slow.count)
      for i in slow.indices where !(fast[i] == slow[i]) {
        #expect(abs(fast[i] - slow[i]) <= Self.divergenceTolerance, "histogram \(h) bin \(i): \(fast[i]) vs \(slow[i])")
      }
      #expect(RangeCalibration.entropyBin(fast) == RangeCalibration.entropyBin(slow), "histogram \(h)")
    }
  }

  /// The percentile's selection returns the sort's element for every k: random magnitudes, runs of equal values,
  /// one value, sorted and reversed inputs (where a poor pivot would take n rounds), sizes around the rounds' limit.
  @Test func orderStatisticEqualsSort() {
    let inputs: [[Float]] = [
      [5], [2, 1], [1, 1, 1, 1], randomFloats(1000, seed: 31).map(abs), randomFloats(33, seed: 32),
      (0..<700).map { Float($0 % 5) }, (0..<513).map(Float.init), (0..<513).reversed().map(Float.init),
      RangeCalibrationTests.heavyTailed(9216, seed: 33).map(abs),
      (0..<4096).map { Float(($0 * 2_654_435_761) % 97) },
    ]
    for (c, values) in inputs.enumerated() {
      let sorted = values.sorted()
      let ks = values.count <= 64 ? Array(values.indices) : [0, 1, values.count / 2, values.count - 2, values.count - 1]
      for k in ks {
        var scratch = values
        #expect(RangeCalibration.orderStatistic(&scratch, k) == sorted[k], "input \(c), k = \(k)")
        #expect(scratch.sorted() == sorted, "input \(c): a permutation of the input")
      }
    }
  }
}

