import Foundation
import ModelIO
import TensorCore
import Testing

/// The committed fixtures of `scripts/make_safetensors_fixtures.py`: one valid file written by Python (a second,
/// independent writer) and one hand-corrupted file per header rule, named `<expected code>-<what>.safetensors`.
@Suite("safetensors fixtures")
struct SafetensorsFixtureTests {
  /// Located through `#filePath`, which works with `swift test` whatever the bundle layout.
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/safetensors").path

  static var corruptNames: [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix("valid") }.sorted()
  }

  @Test func everyRuleHasAFixture() {
    let codes = Set(Self.corruptNames.compactMap { $0.split(separator: "-").first.map(String.init) })
    let rules: Set<String> = [
      "truncated", "headerTooLarge", "badHeader", "unknownDType", "badShape", "outOfBounds", "sizeMismatch", "overlap",
    ]
    #expect(codes == rules, "re-run scripts/make_safetensors_fixtures.py")
  }

  @Test(arguments: corruptNames)
  func corruptFileGivesItsCode(name: String) throws {
    let expected = try #require(ModelIOError.Code(rawValue: String(name.split(separator: "-")[0])))
    let path = Self.folder + "/" + name
    let error = #expect(throws: ModelIOError.self) { _ = try SafetensorsFile(path: path) }
    #expect(error?.code == expected, "\(name): \(error.map { "\($0)" } ?? "no error")")
    #expect(error?.path == path)
    // The same bytes held in memory give the same code.
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    #expect((#expect(throws: ModelIOError.self) { _ = try SafetensorsFile(bytes: bytes) })?.code == expected)
  }

  @Test func pythonWrittenFileDecodes() throws {
    let file = try SafetensorsFile(path: Self.folder + "/valid-mixed.safetensors")
    #expect(file.metadata == ["format": "pt", "note": "bitplan fixture"])
    #expect(file.dataStart % 8 == 0)
    #expect(file.tensors.map(\.name) == ["model.embed.weight", "norm.weight", "lm.bf16", "ids", "empty"])
    #expect(file.tensors.map(\.dtype) == ["F32", "F16", "BF16", "I64", "F32"])
    #expect(file.tensors.map(\.sizeInBytes) == [24, 8, 8, 16, 0])
    #expect(file.tensors.allSatisfy { $0.name == $0.fileName })
    let embed = try file.tensor(named: "model.embed.weight")
    #expect(embed.shape == [2, 3])
    #expect(embed.storage == [1.5, -2.25, 3.0, 0.5, 1e-3, -7.0])
    #expect(try file.tensor(named: "norm.weight").storage == [0.5, -1.0, 65504.0, 0x1p-24])
    let b16 = try file.tensor(named: "lm.bf16")
    #expect(b16.shape == [2, 2] && b16.storage == [1.0, -3.5, 256.0, 0.15625])
    #expect(try file.tensor(named: "empty").shape == [0, 3])
    let ids = try file.rawBytes(named: "ids")
    let values = ids.withUnsafeBytes { raw in
      (0..<2).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
    }
    #expect(values == [-1, 1 << 40])
    #expect((#expect(throws: ModelIOError.self) { _ = try file.tensor(named: "ids") })?.code == .unsupported)
    #expect((#expect(throws: ModelIOError.self) { _ = try file.tensor(named: "nope") })?.code == .missingTensor)
    #expect(try file.dtype(of: "ids") == .i64)
  }

  @Test func officialLibraryFileDecodes() throws {
    let file = try SafetensorsFile(path: Self.folder + "/valid-official.safetensors")
    #expect(file.metadata == ["format": "np"])
    let down = try file.tensor(named: "model.layers.0.mlp.down_proj.weight")
    #expect(down == Tensor(shape: [3, 4], storage: (0..<12).map { (Float($0) - 5.5) / 4 }))
    #expect(try file.tensor(named: "model.norm.weight").storage == [1.0, 0.5, -0.25])
    #expect(
      try file.dtype(of: "counts") == .i32 && file.dtype(of: "flags") == .bool && file.dtype(of: "doubles") == .f64)
    #expect(try file.rawBytes(named: "flags") == [1, 0, 1])
    #expect((#expect(throws: ModelIOError.self) { _ = try file.tensor(named: "doubles") })?.code == .unsupported)
  }

  /// Tensors whose files `scripts/check_safetensors_interop.py` loads with the official library; keep in sync.
  static let goldenItems: [SafetensorsWriter.Item] = [
    ("a.weight", [2, 3], (0..<6).map { Float($0) * 0.25 - 0.5 }), ("b", [4], [1e-3, -65504, 3.14159265, 0]),
  ]

  /// The writer's bytes equal the committed files that the official library was shown to read. Regenerate with
  /// `BITPLAN_REGENERATE_FIXTURES=1 swift test --filter writerMatchesGolden`, then run the interop script.
  @Test(arguments: [SafetensorsDType.f32, .f16, .bf16])
  func writerMatchesGolden(dtype: SafetensorsDType) throws {
    let bytes = try SafetensorsWriter.encode(Self.goldenItems, dtype: dtype, metadata: ["writer": "bitplan"])
    let path = Self.folder + "/valid-writer-\(dtype.rawValue).safetensors"
    if ProcessInfo.processInfo.environment["BITPLAN_REGENERATE_FIXTURES"] == "1" {
      try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
    let golden = try #require(
      FileManager.default.contents(atPath: path), "missing \(path): regenerate as this test's documentation says")
    #expect(
      bytes == [UInt8](golden), "writer output changed; regenerate and re-run scripts/check_safetensors_interop.py")
  }
}
