import ArgumentParser
import Foundation
import Pipeline
import Quantization
import Sensitivity

struct ZZExperiment: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "zz-exp", shouldDisplay: false)
  @Argument var model: String
  @Option var blocks: [Int] = [0, 15, 29]
  func run() throws {
    let loaded = try LoadedModel.load(path: model)
    let clock = ContinuousClock()
    var wins: [String: [String: Int]] = [:]
    var times: [String: Double] = [:]
    var gain: [String: Double] = [:]
    for layer in loaded.model.linearLayers where blocks.contains(layer.block) {
      let w = try loaded.model.weight(named: layer.weightName)
      for f in MeasureSettings.defaultCandidates where f.canQuantize(rows: layer.outFeatures, columns: layer.inFeatures) {
        var errs: [(String, Double)] = []
        for m in RangeCalibration.standard {
          var q: [Float] = []
          let d = try clock.measure { q = try quantizeDequantize(w, rows: layer.outFeatures, columns: layer.inFeatures, format: f, calibration: m) }
          times[m.description, default: 0] += Double(d.components.attoseconds) * 1e-18 + Double(d.components.seconds)
          var e = 0.0
          for i in w.indices { e += Double(w[i] - q[i]) * Double(w[i] - q[i]) }
          errs.append((m.description, e))
        }
        let best = errs.min { $0.1 < $1.1 }!
        wins[f.name, default: [:]][best.0, default: 0] += 1
        let mse = errs.first { $0.0.hasPrefix("mse") }!.1
        gain[f.name, default: 0] = max(gain[f.name, default: 0], mse / best.1 - 1)
      }
    }
    print(times)
    for (k, v) in wins.sorted(by: { $0.key < $1.key }) { print(k, v, "max mse excess", gain[k]!) }
  }
}
