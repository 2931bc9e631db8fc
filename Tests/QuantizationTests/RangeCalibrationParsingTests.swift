import Quantization
import Testing

@Suite struct RangeCalibrationParsingTests {
  /// What the run file records (`description`) reads back as the same method; `fixed` and "" are not methods.
  @Test func recordedNamesRoundTrip() {
    for method in RangeCalibration.standard + [.percentile(99.9), .mse(steps: 5), .kl(bins: 512)] {
      #expect(RangeCalibration(recorded: method.description) == method, "\(method)")
    }
    for text in ["fixed", "", "mse", "mse-x", "kl-", "percentile-", "minmax-1"] {
      #expect(RangeCalibration(recorded: text) == nil, "'\(text)'")
    }
  }
}
