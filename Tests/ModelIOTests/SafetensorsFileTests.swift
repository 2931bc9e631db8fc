import Foundation
import ModelIO
import TensorCore
import Testing
import _TestSupport

@Suite("SafetensorsWriter and SafetensorsFile")
struct SafetensorsFileTests {
  /// Seeded tensors of assorted ranks, including a scalar and an empty one.
  static func items(seed: UInt64) -> [SafetensorsWriter.Item] {
    [
      ([4, 5], "model.layers.0.self_attn.q_proj.weight"), ([7], "model.norm.weight"), ([], "scalar"),
      ([0, 3], "empty"), ([2, 3, 2], "cube \"quoted\" \\ name"),
    ].enumerated().map { i, t in
      (name: t.1, shape: t.0, values: randomFloats(t.0.reduce(1, *), seed: seed + UInt64(i), scale: 3))
    }
  }

  /// F32 is stored exactly; F16 and BF16 must give back exactly `Half`'s round-to-nearest-even of each value
  /// (decoding widens exactly, so the only error is the one rounding on encode).
  @Test(arguments: [SafetensorsDType.f32, .f16, .bf16])
  func roundTrip(dtype: SafetensorsDType) throws {
    let items = Self.items(seed: 40)
    let bytes = try SafetensorsWriter.encode(items, dtype: dtype, metadata: ["format": "pt"])
    let file = try SafetensorsFile(bytes: bytes, path: "memory")
    #expect(file.dataStart % 8 == 0, "header padded to 8 bytes")
    #expect(file.metadata == ["format": "pt"])
    #expect(file.tensors.map(\.name) == items.map(\.name))
    for item in items {
      let tensor = try file.tensor(named: item.name)
      let expected = item.values.map { v -> Float in
        switch dtype {
        case .f16: Half.float(fromF16: Half.f16Bits(v))
        case .bf16: Half.float(fromBF16: Half.bf16Bits(v))
        default: v
        }
      }
      #expect(tensor == Tensor(shape: item.shape, storage: expected), "\(item.name) \(dtype)")
      #expect(try file.rawBytes(named: item.name).count == item.values.count * dtype.byteCount)
    }
  }

  @Test func writeIsAtomicAndReadable() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("bitplan-st-\(getpid()).safetensors").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try SafetensorsWriter.write(Self.items(seed: 1), dtype: .bf16, to: path)
    try SafetensorsWriter.write(Self.items(seed: 2), to: path)  // replaces the first
    let file = try SafetensorsFile(path: path)
    #expect(try file.tensor(named: "model.norm.weight").storage == randomFloats(7, seed: 3, scale: 3))
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
    #expect(!leftovers.contains { $0.hasPrefix("bitplan-st-\(getpid()).safetensors.tmp") })
    let error = #expect(throws: ModelIOError.self) {
      try SafetensorsWriter.write([], to: "/nonexistent-dir/x.safetensors")
    }
    #expect(error?.code == .cannotCreate, "a missing folder: the output cannot be created (exit 73)")
  }

  @Test func writerRejectsBadInput() {
    func code(_ items: [SafetensorsWriter.Item], _ dtype: SafetensorsDType = .f32) -> ModelIOError.Code? {
      (#expect(throws: ModelIOError.self) { _ = try SafetensorsWriter.encode(items, dtype: dtype) })?.code
    }
    #expect(code([("a", [2], [1, 2]), ("a", [1], [3])]) == .duplicate)
    #expect(code([("__metadata__", [1], [1])]) == .duplicate)
    #expect(code([("a", [2, 2], [1, 2, 3])]) == .sizeMismatch)
    #expect(code([("a", [-1], [])]) == .badShape)
    #expect(code([("a", [Int.max, 4], [])]) == .badShape)
    #expect(code([("a", [1], [1])], .i32) == .unsupported)
  }

  /// Every prefix of a valid file, and every single-byte corruption of its header, is refused with a typed error
  /// or parsed; nothing traps. Prefixes shorter than the header are `.truncated`; longer ones lose tensor data.
  @Test func truncationsAndByteFlipsNeverTrap() throws {
    let bytes = try SafetensorsWriter.encode(Self.items(seed: 9), dtype: .f16)
    let dataStart = try SafetensorsFile(bytes: bytes).dataStart
    for n in 0..<bytes.count {
      let error = #expect(throws: ModelIOError.self) { _ = try SafetensorsFile(bytes: Array(bytes[..<n])) }
      #expect(error?.code == (n < dataStart ? .truncated : .outOfBounds), "prefix \(n)")
    }
    var rng = SplitMix64(seed: 77)
    for _ in 0..<400 {
      var corrupt = bytes
      corrupt[Int.random(in: 0..<dataStart, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
      if let file = try? SafetensorsFile(bytes: corrupt) {
        for t in file.tensors where ["F32", "F16", "BF16"].contains(t.dtype) { _ = try file.tensor(named: t.name) }
      }
    }
  }
}
