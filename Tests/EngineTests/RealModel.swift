import Engine
import Foundation
import Pipeline
import ModelIO
import _TestSupport

/// SmolLM2-135M-Instruct for the real-model tests, read through ModelIO (`BITPLAN_MODEL`, as `make test` exports
/// it, else the default cache path).
enum RealModel {
  static var path: String { TestModels.smolLM2Path }

  /// The tests run when the model file exists (it is fetched by `make model`, never committed).
  static var isAvailable: Bool { FileManager.default.fileExists(atPath: path) }

  /// Heavier real-model tests (gradients, HVPs) need an optimized build: `make test` runs `swift test -c release`.
  static var isOptimizedBuild: Bool {
    #if DEBUG
      return false
    #else
      return true
    #endif
  }

  /// The Pride and Prejudice window: 512 ids, BOS first (shared/data/pp-window-ids.txt).
  static func ppWindow() throws -> [Int] {
    let candidates = [
      ProcessInfo.processInfo.environment["BITPLAN_PP_IDS"], TestModels.sharedData + "/pp-window-ids.txt",
    ].compactMap { $0 }
    guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
      throw CocoaError(.fileNoSuchFile)
    }
    return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
      .filter { !$0.hasPrefix("#") && !$0.isEmpty }.map { Int($0)! }
  }

  /// Loads the GGUF into a Float engine model, the way the command line does (`Pipeline.LoadedModel`).
  static func load() throws -> LlamaModel<Float> {
    try LoadedModel.load(path: path).model
  }

}
