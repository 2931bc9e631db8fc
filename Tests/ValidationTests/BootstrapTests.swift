import Engine
import Testing
import TensorCore
@testable import Validation

@Suite struct BootstrapTests {
  @Test func percentileInterpolatesLikeNumpy() {
    let x = [1.0, 2, 3, 4, 5]
    #expect(WindowBootstrap.percentile(x, 0) == 1)
    #expect(WindowBootstrap.percentile(x, 1) == 5)
    #expect(WindowBootstrap.percentile(x, 0.5) == 3)
    #expect(abs(WindowBootstrap.percentile(x, 0.99) - 4.96) < 1e-12)  // numpy.percentile([1..5], 99) = 4.96
  }

  @Test func intervalContainsTheValueAndIsSeeded() {
    var rng = SplitMix64(seed: 11)
    let x = (0..<8).map { _ in Double(rng.next() % 1000) / 1000 }
    let a = WindowBootstrap(windows: 8, replicates: 500, seed: 3).interval(x)
    let b = WindowBootstrap(windows: 8, replicates: 500, seed: 3).interval(x)
    #expect(a == b)
    #expect(a.low <= a.value && a.value <= a.high)
    #expect(a.low >= x.min()! && a.high <= x.max()!)
    let c = WindowBootstrap(windows: 8, replicates: 500, seed: 4).interval(x)
    #expect(c != a)
  }

  @Test func constantDataHasAZeroWidthInterval() {
    let i = WindowBootstrap(windows: 5, replicates: 100, seed: 1).interval([2, 2, 2, 2, 2])
    #expect(i == Interval(value: 2, low: 2, high: 2))
  }

  @Test func pairedDifferenceCancelsASharedWindowEffect() {
    // b = a + 0.1 exactly: the paired interval is a point, although the windows differ wildly.
    let a = [0.1, 5, 0.3, 9, 0.2, 7]
    let b = a.map { $0 + 0.1 }
    let d = WindowBootstrap(windows: 6, replicates: 300, seed: 9).difference(b, a)
    #expect(abs(d.low - 0.1) < 1e-12 && abs(d.high - 0.1) < 1e-12)
  }

  @Test func positionSummary() {
    let s = WindowScores(nll: [1, 2, 3, 4], kld: [0, 0.1, 0.2, 0.5], top1Agrees: [true, true, false, true])
      .summary(start: 7)
    #expect(s.start == 7 && s.nll == 2.5 && abs(s.kld - 0.2) < 1e-15 && s.kldMax == 0.5 && s.top1 == 0.75)
    #expect(abs(s.kldP99 - (0.2 + 0.97 * 0.3)) < 1e-12)
  }
}
