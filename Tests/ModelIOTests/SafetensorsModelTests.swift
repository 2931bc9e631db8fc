import Foundation
import ModelIO
import Testing
import _TestSupport

/// Model folders written into a fresh temporary directory: single file, sharded with an index, and broken ones.
@Suite("SafetensorsModel folders")
struct SafetensorsModelTests {
  /// A fresh empty folder, unique per test.
  static func folder(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("bitplan-stm-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: path)
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  static func write(_ text: String, _ path: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) }

  static let shard1: [SafetensorsWriter.Item] = [
    ("model.embed_tokens.weight", [6, 4], randomFloats(24, seed: 1)),
    ("model.norm.weight", [4], randomFloats(4, seed: 2)),
  ]
  static let shard2: [SafetensorsWriter.Item] = [
    ("model.layers.0.mlp.up_proj.weight", [3, 4], randomFloats(12, seed: 3))
  ]
  static let index = """
    {"metadata": {"total_size": 160}, "weight_map": {
      "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "model.norm.weight": "model-00001-of-00002.safetensors",
      "model.layers.0.mlp.up_proj.weight": "model-00002-of-00002.safetensors"}}
    """

  /// A two-shard folder with an index; `second` replaces the second shard's tensors.
  static func sharded(_ name: String, second: [SafetensorsWriter.Item] = shard2, index: String = index) throws -> String
  {
    let dir = folder(name)
    try SafetensorsWriter.write(shard1, to: dir + "/model-00001-of-00002.safetensors")
    try SafetensorsWriter.write(second, dtype: .bf16, to: dir + "/model-00002-of-00002.safetensors")
    try write(index, dir + "/model.safetensors.index.json")
    return dir
  }

  @Test func shardedFolderWithIndex() throws {
    let dir = try Self.sharded("sharded")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let model = try SafetensorsModel(folder: dir)
    #expect(model.shards.count == 2)
    #expect(model.tensors.map(\.name) == Self.shard1.map(\.name) + Self.shard2.map(\.name))
    #expect(try model.tensor(named: "model.norm.weight").storage == Self.shard1[1].values)
    let up = try model.tensor(named: "model.layers.0.mlp.up_proj.weight")
    #expect(up.shape == [3, 4] && up.storage.count == 12)
    #expect(try model.shard(of: "model.layers.0.mlp.up_proj.weight").tensors.count == 1)
    #expect(try model.rawBytes(named: "model.embed_tokens.weight").count == 96)
    #expect(
      (#expect(throws: ModelIOError.self) { _ = try model.tensor(named: "lm_head.weight") })?.code == .missingTensor)
  }

  @Test func singleFileFolder() throws {
    let dir = Self.folder("single")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try SafetensorsWriter.write(Self.shard1, dtype: .f16, to: dir + "/model.safetensors")
    let model = try SafetensorsModel(folder: dir)
    #expect(model.shards.count == 1 && model.tensors.count == 2)
    #expect(try model.tensor(named: "model.embed_tokens.weight").shape == [6, 4])
    #expect((#expect(throws: ModelIOError.self) { _ = try model.config() })?.code == .io)
  }

  @Test func brokenFoldersGiveTheirCodes() throws {
    func code(_ dir: String) -> ModelIOError.Code? {
      defer { try? FileManager.default.removeItem(atPath: dir) }
      return (#expect(throws: ModelIOError.self) { _ = try SafetensorsModel(folder: dir) })?.code
    }
    #expect(code(Self.folder("empty")) == .io)
    // The second shard repeats a tensor of the first.
    #expect(try code(Self.sharded("duplicate", second: Self.shard2 + [Self.shard1[1]])) == .duplicate)
    // The index puts a tensor in a shard that does not hold it.
    let misplaced = Self.index.replacingOccurrences(
      of: "\"model.norm.weight\": \"model-00001", with: "\"model.norm.weight\": \"model-00002")
    #expect(try code(Self.sharded("misplaced", index: misplaced)) == .missingTensor)
    // A shard listed in the index is absent.
    let absent = Self.index.replacingOccurrences(of: "model-00002-of-00002", with: "model-00003-of-00003")
    #expect(try code(Self.sharded("absent", index: absent)) == .io)
    #expect(
      try code(Self.sharded("escape", index: Self.index.replacingOccurrences(of: "model-00002", with: "../x")))
        == .badHeader)
    #expect(try code(Self.sharded("badjson", index: "{\"weight_map\": [")) == .badHeader)
    #expect(try code(Self.sharded("nomap", index: "{\"metadata\": {}}")) == .badHeader)
    #expect(try code(Self.sharded("emptymap", index: "{\"weight_map\": {}}")) == .badHeader)
    #expect(try code(Self.sharded("numbermap", index: "{\"weight_map\": {\"a\": 1}}")) == .badHeader)
    // A corrupt shard reports the shard's own code.
    let dir = try Self.sharded("corrupt")
    try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/model-00002-of-00002.safetensors"))
    #expect(code(dir) == .truncated)
  }
}
