import Foundation

#if canImport(TensorCore)
  import TensorCore
#endif

/// A Hugging Face model folder: `config.json` plus one `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (`{"weight_map": {"tensor name": "model-00001-of-00002.safetensors", ...}}`).
///
/// Opening checks the whole folder: the index is a JSON object whose non-empty `weight_map` maps strings to
/// plain file names in the folder (`.badHeader`), every shard is a valid safetensors file (its own codes; `.io`
/// when missing), every tensor is where the map says (`.missingTensor`), and no name appears in two shards
/// (`.duplicate`). Tensors a shard holds but the map omits are kept, as `transformers` does.
public final class SafetensorsModel: Sendable {
  /// The folder.
  public let folder: String
  /// The shards, in the order of their file names (one for a single `model.safetensors`).
  public let shards: [SafetensorsFile]
  /// Every tensor of every shard, shard by shard, each in file order.
  public let tensors: [TensorInfo]
  private let shardOfTensor: [String: Int]

  /// Opens and validates the folder.
  /// - Throws: `.io` when neither `model.safetensors.index.json` nor `model.safetensors` exists, else the code of
  ///   the first rule broken (see the type's documentation).
  public init(folder: String) throws(ModelIOError) {
    self.folder = folder
    let indexPath = folder + "/model.safetensors.index.json"
    var names: [String]
    var map: [String: String] = [:]
    if FileManager.default.fileExists(atPath: indexPath) {
      map = try SafetensorsModel.weightMap(indexPath)
      names = Array(Set(map.values)).sorted()
    } else if FileManager.default.fileExists(atPath: folder + "/model.safetensors") {
      names = ["model.safetensors"]
    } else {
      throw ModelIOError(.io, "no model.safetensors or model.safetensors.index.json in the folder", path: folder)
    }
    var shards: [SafetensorsFile] = []
    var location: [String: Int] = [:]
    var tensors: [TensorInfo] = []
    for (i, name) in names.enumerated() {
      let shard = try SafetensorsFile(path: folder + "/" + name)
      for t in shard.tensors {
        if let other = location[t.name] {
          throw ModelIOError(.duplicate, "tensor '\(t.name)' is in both \(names[other]) and \(name)", path: folder)
        }
        location[t.name] = i
        tensors.append(t)
      }
      shards.append(shard)
    }
    for (tensor, file) in map.sorted(by: { $0.key < $1.key })
    where !shards[names.firstIndex(of: file)!].contains(tensor) {
      throw ModelIOError(
        .missingTensor, "the index puts '\(tensor)' in \(file), which does not hold it", path: indexPath)
    }
    self.shards = shards
    self.tensors = tensors
    self.shardOfTensor = location
  }

  /// The tensor `name` as `Float` (F32, F16 and BF16 convert exactly).
  /// - Throws: `.missingTensor` when no shard holds it; `.unsupported` for another dtype.
  public func tensor(named name: String) throws(ModelIOError) -> Tensor {
    try shard(of: name).tensor(named: name)
  }

  /// A copy of the stored bytes of `name`.
  public func rawBytes(named name: String) throws(ModelIOError) -> [UInt8] {
    try shard(of: name).rawBytes(named: name)
  }

  /// The shard that holds `name`.
  /// - Throws: `.missingTensor` when none does.
  public func shard(of name: String) throws(ModelIOError) -> SafetensorsFile {
    guard let i = shardOfTensor[name] else {
      throw ModelIOError(.missingTensor, "no tensor '\(name)' in any of \(shards.count) shard(s)", path: folder)
    }
    return shards[i]
  }

  /// The architecture read from the folder's `config.json`.
  /// - Throws: `.io` when it is missing; see `LlamaConfig.init(hfConfigPath:)`.
  public func config() throws(ModelIOError) -> LlamaConfig {
    try LlamaConfig(hfConfigPath: folder + "/config.json")
  }

  /// The validated `weight_map` of an index file.
  private static func weightMap(_ path: String) throws(ModelIOError) -> [String: String] {
    let source = try ByteSource(path: path)
    let raw = UnsafeRawBufferPointer(start: source.base, count: source.count)
    guard let json = SafetensorsJSON.object(raw) else {
      throw ModelIOError(.badHeader, "not one UTF-8 JSON object: \(SafetensorsJSON.syntaxError(raw))", path: path)
    }
    guard let raw = json["weight_map"] as? [String: Any] else {
      throw ModelIOError(.badHeader, "weight_map missing or not an object", path: path)
    }
    if raw.isEmpty { throw ModelIOError(.badHeader, "weight_map is empty", path: path) }
    var map: [String: String] = [:]
    for (tensor, value) in raw {
      guard let file = SafetensorsJSON.string(value), !file.isEmpty, !file.contains("/"), file != ".", file != ".."
      else {
        throw ModelIOError(.badHeader, "weight_map['\(tensor)'] is not a file name in the folder", path: path)
      }
      map[tensor] = file
    }
    return map
  }
}
