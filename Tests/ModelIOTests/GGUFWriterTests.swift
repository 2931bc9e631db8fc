#if canImport(Glibc)
  import Glibc
#endif
import ModelIO
import TensorCore
import Testing
import _TestSupport

@Suite struct GGUFWriterTests {
  static let metadata: [(String, GGUFValue)] = [
    ("general.architecture", .string("llama")),
    ("a.u8", .uint8(255)), ("a.i8", .int8(-128)), ("a.u16", .uint16(65535)), ("a.i16", .int16(-32768)),
    ("a.u32", .uint32(.max)), ("a.i32", .int32(.min)), ("a.f32", .float32(-0.0)), ("a.bool", .bool(false)),
    ("a.str", .string("ünïcode ✓")), ("a.u64", .uint64(.max)), ("a.i64", .int64(.min)), ("a.f64", .float64(.pi)),
    ("a.strings", .array(.string, [.string("x"), .string(""), .string("zz")])),
    ("a.empty", .array(.float32, [])),
    ("a.nested", .array(.array, [.array(.int16, [.int16(1), .int16(-2)]), .array(.int16, [])])),
  ]

  /// Metadata of every type and tensors of several types survive a write and a read, byte for byte.
  @Test(arguments: [32, 64, 1])
  func roundTrip(alignment: Int) throws {
    var w = GGUFWriter(alignment: alignment)
    for (k, v) in Self.metadata { try w.add(k, v) }
    let f32 = Tensor(shape: [3, 5], storage: randomFloats(15, seed: 1))
    let f16 = Tensor(shape: [7], storage: randomFloats(7, seed: 2))
    let bf16 = Tensor(shape: [2, 2, 3], storage: randomFloats(12, seed: 3))
    var rng = SplitMix64(seed: 4)
    let q8 = (0..<2 * 34).map { _ in UInt8.random(in: 0...255, using: &rng) }.enumerated().map { i, b in
      i % 34 == 1 ? b & 0x3B : b  // f16 scale high byte below 0x3C: a finite value
    }
    let q4 = (0..<3 * 18).map { _ in UInt8.random(in: 0...255, using: &rng) }.enumerated().map { i, b in
      i % 18 == 1 ? b & 0x3B : b
    }
    try w.addTensor("f32.weight", f32)
    try w.addTensor("f16.weight", f16, as: .f16)
    try w.addTensor("bf16.weight", bf16, as: .bf16)
    try w.addTensor("q8.weight", shape: [2, 32], type: .q8_0, data: q8)
    try w.addTensor("q4.weight", shape: [3, 32], type: .q4_0, data: q4)
    let bytes = w.serialized()

    let file = try GGUFFile(bytes: bytes)
    #expect(file.version == 3)
    #expect(file.alignment == alignment)
    let expectedKeys = (alignment == 32 ? [] : ["general.alignment"]) + Self.metadata.map(\.0)
    #expect(file.metadataKeys == expectedKeys)
    for (k, v) in Self.metadata { #expect(file.value(k) == v, "\(k)") }
    #expect(try file.tensor(named: "f32.weight") == f32)
    #expect(try file.tensor(named: "f16.weight").storage == f16.storage.map { Float(Float16($0)) })
    #expect(try file.tensor(named: "bf16.weight").storage == bf16.storage.map { Half.float(fromBF16: Half.bf16Bits($0)) })
    #expect(try file.tensor(named: "bf16.weight").shape == [2, 2, 3])
    #expect(try file.rawData(named: "q8.weight") == q8)
    #expect(try file.rawData(named: "q4.weight") == q4)
    #expect(try file.tensor(named: "q4.weight").storage == GGMLDequantize.reference(.q4_0, q4, count: 96))
    for info in file.tensors { #expect((file.dataOffset + info.offset) % alignment == 0) }
    // Writing what was read gives the same bytes.
    var again = GGUFWriter(alignment: alignment)
    for k in file.metadataKeys where k != "general.alignment" { try again.add(k, file.value(k)!) }
    for info in file.tensors {
      try again.addTensor(info.name, shape: info.shape, type: info.type, data: try file.rawData(named: info.name))
    }
    #expect(again.serialized() == bytes)
  }

  /// `write(to:)` renames a complete temporary file into place and leaves nothing else behind.
  @Test func writeIsAtomic() throws {
    var w = GGUFWriter()
    try w.add("general.architecture", .string("llama"))
    try w.addTensor("x.weight", Tensor(shape: [4], storage: [1, 2, 3, 4]))
    let dir = "/tmp/bitplan-gguf-writer-\(getpid())"
    mkdir(dir, 0o755)
    defer { rmdir(dir) }
    let path = "\(dir)/out.gguf"
    try w.write(to: path)
    defer { unlink(path) }
    let file = try GGUFFile(path: path)
    #expect(try file.tensor(named: "x.weight").storage == [1, 2, 3, 4])
    let written = try ByteSource(path: path)
    #expect(Array(UnsafeRawBufferPointer(start: written.base, count: written.count)) == w.serialized())
    var entries: [String] = []
    if let d = opendir(dir) {
      while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { entries.append(name) }
      }
      closedir(d)
    }
    #expect(entries == ["out.gguf"])
    do {
      try w.write(to: "/nonexistent-dir/x.gguf")
      Issue.record("expected .cannotCreate")
    } catch { #expect(error.code == .cannotCreate) }
  }

  @Test func rejectsBadInput() throws {
    var w = GGUFWriter()
    try w.add("k", .uint8(1))
    func code(_ body: () throws(ModelIOError) -> Void) -> ModelIOError.Code? {
      do { try body() } catch { return error.code }
      return nil
    }
    #expect(code { () throws(ModelIOError) in try w.add("k", .uint8(2)) } == .duplicate)
    #expect(code { () throws(ModelIOError) in try w.add("m", .array(.uint8, [.int8(1)])) } == .badHeader)
    #expect(code { () throws(ModelIOError) in try w.addTensor("t", shape: [2, 31], type: .q8_0, data: []) } == .sizeMismatch)
    #expect(code { () throws(ModelIOError) in try w.addTensor("t", shape: [2, 32], type: .q8_0, data: [0]) } == .sizeMismatch)
    #expect(code { () throws(ModelIOError) in try w.addTensor("t", shape: [0, 4], type: .f32, data: []) } == .badShape)
    #expect(code { () throws(ModelIOError) in try w.addTensor("t", shape: [1, 1, 1, 1, 1], type: .f32, data: [0, 0, 0, 0]) } == .badShape)
    #expect(code { () throws(ModelIOError) in try w.addTensor(String(repeating: "n", count: 64), Tensor(zeros: [1])) } == .badHeader)
    #expect(code { () throws(ModelIOError) in try w.addTensor("q", Tensor(zeros: [32]), as: .q8_0) } == .unsupported)
    try w.addTensor("t", Tensor(zeros: [1]))
    #expect(code { () throws(ModelIOError) in try w.addTensor("t", Tensor(zeros: [1])) } == .duplicate)
  }
}
