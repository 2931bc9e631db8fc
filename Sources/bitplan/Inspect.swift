import ArgumentParser
import Foundation
import ModelIO
import TensorCore

/// `bitplan inspect MODEL [--json]`: tensors, shapes, dtypes, parameter count, bytes.
struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List a model's tensors: HF name, shape, stored type and bytes, with totals.")

  @OptionGroup var modelArgument: ModelArgument
  var model: String { modelArgument.model }

  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }

  func run() throws {
    try FileChecks.check(inputs: [InputPath(option: "MODEL", path: model, allowsFolder: true)], outputs: [])
    let file = try ModelFile(path: model)
    let infos = file.tensorInfos
    let params = infos.reduce(0) { $0 + $1.parameterCount }
    let bytes = infos.reduce(0) { $0 + $1.sizeInBytes }
    if json {
      let report = InspectReport(
        path: model, format: file.formatName, architecture: file.architecture ?? "unknown", tensorCount: infos.count,
        parameterCount: params, tensorBytes: bytes, tensors: infos)
      try printJSON(report)
      return
    }
    print("model: \(model)")
    print("format: \(file.formatName)   architecture: \(file.architecture ?? "unknown")")
    print("tensors: \(infos.count)   parameters: \(grouped(params))   tensor bytes: \(grouped(bytes))")
    var byType: [String: (count: Int, params: Int)] = [:]
    for t in infos { byType[t.dtype, default: (0, 0)].count += 1; byType[t.dtype, default: (0, 0)].params += t.parameterCount }
    print("types: " + byType.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value.count)" }.joined(separator: ", "))
    print("")
    let width = max(4, infos.map { $0.name.count }.max() ?? 0)
    print(pad("name", width) + "  " + pad("shape", 14) + "  " + pad("type", 6) + "  " + "bytes".leftPadded(12))
    for t in infos {
      let shape = t.shape.map(String.init).joined(separator: " x ")
      print(pad(t.name, width) + "  " + pad(shape, 14) + "  " + pad(t.dtype, 6) + "  " + grouped(t.sizeInBytes).leftPadded(12))
    }
  }
}

/// What `inspect --json` prints.
struct InspectReport: Codable {
  var path: String
  var format: String
  var architecture: String?
  var tensorCount: Int
  var parameterCount: Int
  var tensorBytes: Int
  var tensors: [TensorInfo]
}
