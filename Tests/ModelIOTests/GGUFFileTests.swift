import ModelIO
import TensorCore
import Testing

@Suite struct GGUFFileTests {
  /// A file written by gguf-py's own GGUFWriter: every metadata type reads back as written, tensors have the
  /// right shapes, and their values equal gguf-py's dequantization bit for bit.
  @Test func readsFileWrittenByGGUFPy() throws {
    let file = try GGUFFile(path: GGUFFixtures.path("gguf/valid_ggufpy.gguf"))
    #expect(file.version == 3)
    #expect(file.alignment == 32)
    #expect(file.dataOffset % 32 == 0)
    #expect(try file.architecture() == "test")
    #expect(file.value("t.u8") == .uint8(200))
    #expect(file.value("t.i8") == .int8(-100))
    #expect(file.value("t.u16") == .uint16(60000))
    #expect(file.value("t.i16") == .int16(-30000))
    #expect(file.value("t.u32") == .uint32(4_000_000_000))
    #expect(file.value("t.i32") == .int32(-2_000_000_000))
    #expect(file.value("t.f32") == .float32(1.5))
    #expect(file.value("t.u64") == .uint64((1 << 40) + 3))
    #expect(file.value("t.i64") == .int64(-(1 << 40)))
    #expect(file.value("t.f64") == .float64(0.1))
    #expect(file.value("t.bool") == .bool(true))
    #expect(try file.string("t.str") == "héllo ✓")
    #expect(try file.intArray("t.ints") == [1, -2, 3])
    #expect(try file.stringArray("t.strs") == ["a", "bc", ""])
    #expect(try file.floatArray("t.floats") == [0.5, -1.25])
    #expect(file.value("t.nested")?.arrayValue?.map { $0.arrayValue?.compactMap(\.intValue) } == [[1, 2], [3]])
    #expect(try file.int("t.u64") == (1 << 40) + 3)
    #expect(try file.double("t.f64") == 0.1)
    #expect(try file.bool("t.bool") == true)

    let golden = try GGUFGolden("gguf/valid_ggufpy.gguf.golden.txt")
    #expect(file.tensors.count == golden.tensors.count)
    for entry in golden.tensors {
      let info = try #require(file.info(named: entry.name))
      #expect(info.type.name == entry.type)
      #expect(info.shape == entry.shape)
      let t = try file.tensor(named: entry.name)
      #expect(t.shape == entry.shape)
      #expect(GGUFTestSHA256.hex(of: t.storage) == entry.sha256, "\(entry.name)")
      #expect(Array(t.storage.prefix(64).map(\.bitPattern)) == entry.first, "\(entry.name)")
    }
  }

  /// Typed lookups: nil when absent, `.badHeader` when the key holds another type.
  @Test func typedLookupsRejectWrongTypes() throws {
    let file = try GGUFFile(path: GGUFFixtures.path("gguf/valid_ggufpy.gguf"))
    #expect(try file.string("no.such.key") == nil)
    #expect(try file.int("no.such.key") == nil)
    let wrong: [(String, (GGUFFile) throws(ModelIOError) -> Void)] = [
      ("string of u8", { f throws(ModelIOError) in _ = try f.string("t.u8") }),
      ("int of string", { f throws(ModelIOError) in _ = try f.int("t.str") }),
      ("int of float", { f throws(ModelIOError) in _ = try f.int("t.f32") }),
      ("float of int", { f throws(ModelIOError) in _ = try f.float("t.u32") }),
      ("bool of u8", { f throws(ModelIOError) in _ = try f.bool("t.u8") }),
      ("stringArray of ints", { f throws(ModelIOError) in _ = try f.stringArray("t.ints") }),
      ("intArray of strings", { f throws(ModelIOError) in _ = try f.intArray("t.strs") }),
      ("floatArray of ints", { f throws(ModelIOError) in _ = try f.floatArray("t.ints") }),
      ("intArray of scalar", { f throws(ModelIOError) in _ = try f.intArray("t.u8") }),
    ]
    for (label, lookup) in wrong {
      do {
        try lookup(file)
        Issue.record("\(label) should throw")
      } catch { #expect(error.code == .badHeader, "\(label)") }
    }
  }

  /// GGUF v2 has the v3 layout; a v3 file with general.alignment = 64 puts data at multiples of 64.
  @Test func readsVersion2AndCustomAlignment() throws {
    let v2 = try GGUFFile(path: GGUFFixtures.path("gguf/valid_v2.gguf"))
    #expect(v2.version == 2)
    #expect(try v2.tensor(named: "a.weight") == Tensor(shape: [2, 3], storage: [0, 1, 2, 3, 4, 5]))
    let a64 = try GGUFFile(path: GGUFFixtures.path("gguf/valid_align64.gguf"))
    #expect(a64.alignment == 64)
    #expect(a64.dataOffset % 64 == 0)
    #expect(a64.info(named: "b.weight")?.offset == 64)
    let v3 = try GGUFFile(path: GGUFFixtures.path("gguf/valid_v3.gguf"))
    #expect(try a64.tensor(named: "b.weight") == v3.tensor(named: "b.weight"))
    #expect(try v3.int("test.count") == 7)
  }

  /// The same bytes parse the same from memory and from disk.
  @Test func bytesAndPathAgree() throws {
    let bytes = try GGUFFixtures.bytes("gguf/valid_ggufpy.gguf")
    let fromMemory = try GGUFFile(bytes: bytes)
    let fromDisk = try GGUFFile(path: GGUFFixtures.path("gguf/valid_ggufpy.gguf"))
    #expect(fromMemory.metadata == fromDisk.metadata)
    #expect(fromMemory.metadataKeys == fromDisk.metadataKeys)
    #expect(fromMemory.tensors == fromDisk.tensors)
    #expect(try fromMemory.rawData(named: "q8_0.weight") == fromDisk.rawData(named: "q8_0.weight"))
  }

  @Test func missingTensorAndMissingFile() throws {
    let file = try GGUFFile(path: GGUFFixtures.path("gguf/valid_v3.gguf"))
    do {
      _ = try file.tensor(named: "nope")
      Issue.record("expected .missingTensor")
    } catch { #expect(error.code == .missingTensor) }
    do {
      _ = try GGUFFile(path: GGUFFixtures.path("gguf/does_not_exist.gguf"))
      Issue.record("expected .io")
    } catch { #expect(error.code == .io) }
  }
}
