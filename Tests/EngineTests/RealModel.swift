import Engine
import Foundation

/// SmolLM2-135M-Instruct for the real-model tests.
///
/// TEMPORARY LOADER: until ModelIO's GGUF reader is merged, this reads the HF-named F32 dump written by
/// `scripts/dump_f32_weights.py MODEL.gguf ~/.cache/bitplan/smollm2-f32` (raw little-endian floats + JSON index).
/// It will be replaced by `GGUFFile(path:)` from ModelIO.
enum RealModel {
  static var dumpPathResolved: String {
    ProcessInfo.processInfo.environment["BITPLAN_F32_DUMP"] ?? "/root/.cache/bitplan/smollm2-f32"
  }

  /// The tests run when the dump exists (the model is ~540 MB of F32, not a fixture).
  static var isAvailable: Bool {
    FileManager.default.fileExists(atPath: dumpPathResolved + ".json")
      && FileManager.default.fileExists(atPath: dumpPathResolved + ".f32")
  }

  /// The Pride and Prejudice window: 512 ids, BOS first (shared/data/pp-window-ids.txt).
  static func ppWindow() throws -> [Int] {
    let here = URL(fileURLWithPath: #filePath)
    let candidates = [
      ProcessInfo.processInfo.environment["BITPLAN_PP_IDS"],
      here.deletingLastPathComponent().appendingPathComponent("../../../shared/data/pp-window-ids.txt").path,
      "/work/shared/data/pp-window-ids.txt",
    ].compactMap { $0 }
    guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
      throw CocoaError(.fileNoSuchFile)
    }
    return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
      .filter { !$0.hasPrefix("#") && !$0.isEmpty }.map { Int($0)! }
  }

  /// Loads the F32 dump into a Float model.
  static func load() throws -> LlamaModel<Float> {
    let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dumpPathResolved + ".json"))) as! [String: Any]
    let c = index["config"] as! [String: Any]
    let configuration = LlamaConfiguration(
      hidden: c["hidden"] as! Int, intermediate: c["intermediate"] as! Int, layers: c["layers"] as! Int,
      heads: c["heads"] as! Int, kvHeads: c["kvHeads"] as! Int, headDim: c["headDim"] as! Int,
      vocab: c["vocab"] as! Int, rmsEps: c["rmsEps"] as! Double, ropeTheta: c["ropeTheta"] as! Double,
      tied: c["tied"] as! Bool)
    let data = try Data(contentsOf: URL(fileURLWithPath: dumpPathResolved + ".f32"), options: .alwaysMapped)
    var weights: [String: WeightTensor<Float>] = [:]
    data.withUnsafeBytes { raw in
      for entry in index["tensors"] as! [[String: Any]] {
        let shape = entry["shape"] as! [Int]
        let (offset, count) = (entry["offset"] as! Int, shape.reduce(1, *))
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, n in
          for i in 0..<count {
            buffer[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: (offset + i) * 4, as: UInt32.self)))
          }
          n = count
        }
        weights[entry["name"] as! String] = WeightTensor(shape: shape, values: values)
      }
    }
    return try LlamaModel(configuration: configuration, weights: weights)
  }
}
