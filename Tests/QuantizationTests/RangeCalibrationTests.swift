import Testing
import _TestSupport

@testable import Quantization

/// Range calibration: min-max, percentile, MSE clip search and KL entropy.
struct RangeCalibrationTests {
  /// Heavy-tailed weights (a few large outliers among small values), where clipping pays off.
  static func heavyTailed(_ n: Int, seed: UInt64) -> [Float] {
    let base = randomFloats(n, seed: seed, scale: 0.02)
    let u = randomFloats(n, seed: seed + 1)
    return zip(base, u).map { b, v in abs(v) > 0.995 ? b * 40 : b }
  }

  static func squaredError(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
  }

  /// The MSE grid contains ratio 1 (min-max), so per group it can only lower the error.
  @Test(arguments: ["int4-g128", "int3-g128-asym", "int2-g64", "int8"])
  func mseSearchNeverWorseThanMinMax(name: String) throws {
    let format = try QuantFormat(parsing: name)
    let w = Self.heavyTailed(4 * 256, seed: 3)
    let minMax = try quantizeDequantize(w, rows: 4, columns: 256, format: format, calibration: .minMax)
    let mse = try quantizeDequantize(w, rows: 4, columns: 256, format: format, calibration: .mse(steps: 16))
    #expect(Self.squaredError(w, mse) <= Self.squaredError(w, minMax))
  }

  /// percentile(100) clips at the tensor's amax: identical bytes to min-max.
  @Test func percentile100IsMinMax() throws {
    let w = Self.heavyTailed(512, seed: 5)
    let format = try QuantFormat(parsing: "int4-g64")
    let a = try quantize(w, rows: 2, columns: 256, format: format, calibration: .minMax)
    let b = try quantize(w, rows: 2, columns: 256, format: format, calibration: .percentile(100))
    #expect(a.bytes == b.bytes)
  }

  /// The KL threshold lies inside (0, amax]; on heavy tails at 3 bits it clips (below amax).
  @Test func klThresholdClipsHeavyTails() throws {
    let w = Self.heavyTailed(4096, seed: 7)
    let amax = w.map(abs).max()!
    let t = w.withUnsafeBufferPointer { RangeCalibration.entropyThreshold($0, bins: 512, levels: 4) }
    #expect(t > 0 && t <= amax * (1 + 1.0 / 512))
    #expect(t < amax)
    let zero = [Float](repeating: 0, count: 64).withUnsafeBufferPointer { RangeCalibration.entropyThreshold($0, bins: 64, levels: 4) }
    #expect(zero == 0)
  }

  /// `compare` reports every method, sorted by error; on heavy tails at 3 bits per-channel a clipping method wins.
  @Test func compareRanksMethods() throws {
    let w = Self.heavyTailed(4 * 512, seed: 9)
    let format = try QuantFormat(parsing: "int3")
    let methods: [RangeCalibration] = [.minMax, .percentile(99.5), .mse(steps: 20), .kl(bins: 256)]
    let results = try RangeCalibration.compare(w, rows: 4, columns: 512, format: format, methods: methods)
    #expect(results.count == 4)
    #expect(Set(results.map(\.method)) == Set(methods))
    #expect(zip(results, results.dropFirst()).allSatisfy { $0.squaredError <= $1.squaredError })
    #expect(results.first?.method != .minMax)
  }

  @Test func badSettingsThrowTypedErrors() throws {
    let w = randomFloats(64, seed: 1)
    let format = try QuantFormat(parsing: "int4-g32")
    for bad: RangeCalibration in [.percentile(0), .percentile(150), .mse(steps: 0), .kl(bins: 8)] {
      do {
        _ = try quantize(w, rows: 1, columns: 64, format: format, calibration: bad)
        Issue.record("\(bad) accepted")
      } catch let error as QuantizationError {
        #expect(error.code == .badCalibration, "\(bad)")
      }
    }
  }

  /// GGML formats ignore calibration: their bytes are ggml's.
  @Test func ggmlIgnoresCalibration() throws {
    let w = Self.heavyTailed(256, seed: 2)
    let a = try quantize(w, rows: 1, columns: 256, format: .ggml(.q4_0), calibration: .minMax)
    let b = try quantize(w, rows: 1, columns: 256, format: .ggml(.q4_0), calibration: .mse(steps: 10))
    #expect(a.bytes == b.bytes)
  }
}
