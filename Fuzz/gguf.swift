// libFuzzer target for the GGUF reader: scripts/fuzz.sh gguf [RUNS]. Compiled in one module with ModelIO's and
// TensorCore's sources (see scripts/fuzz.sh), so it uses their types without imports.
//
// Oracle: parsing never traps (ASan and Swift's own checks catch any out-of-bounds read or overflow); a file that
// parses can be read completely (every metadata lookup, every tensor dequantized, HF names and Q/K un-permuting);
// and GGUFWriter re-serializes it into a file that parses to the same bytes again (write ∘ read is idempotent).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let file = try? GGUFFile(bytes: bytes) else { return 0 }

  // Every typed lookup on every key: each either returns or throws .badHeader.
  for key in file.metadataKeys {
    _ = try? file.string(key)
    _ = try? file.int(key)
    _ = try? file.float(key)
    _ = try? file.bool(key)
    _ = try? file.stringArray(key)
    _ = try? file.intArray(key)
    _ = try? file.floatArray(key)
    _ = file.value(key)?.description
  }
  _ = try? file.llamaConfig()
  _ = file.tensorInfos

  // Every tensor: raw bytes, dequantized values, and the HF view (un-permuted Q/K for llama files).
  for info in file.tensors {
    guard let raw = try? file.rawBytes(of: info), raw.count == info.sizeInBytes else {
      fatalError("tensor '\(info.name)' passed validation but its bytes cannot be read")
    }
    if info.type.canDequantize {
      guard let t = try? file.tensor(named: info.name), t.count == info.elementCount else {
        fatalError("tensor '\(info.name)' (\(info.type.name)) passed validation but does not dequantize")
      }
      _ = try? file.hfTensor(named: NameMapping.hfName(forGGUF: info.name) ?? info.name)
    }
  }

  // Round trip through the writer.
  let first = rewrite(file)
  guard let reparsed = try? GGUFFile(bytes: first) else { fatalError("GGUFWriter output does not parse") }
  guard rewrite(reparsed) == first else { fatalError("write(read(write(read(x)))) != write(read(x))") }
  return 0
}

/// The file re-serialized by GGUFWriter with the same alignment, metadata and raw tensor bytes.
private func rewrite(_ file: GGUFFile) -> [UInt8] {
  var w = GGUFWriter(alignment: file.alignment)
  for key in file.metadataKeys where key != "general.alignment" {
    do { try w.add(key, file.value(key)!) } catch { fatalError("metadata '\(key)' read but not writable: \(error)") }
  }
  for info in file.tensors {
    do {
      try w.addTensor(info.name, shape: info.shape, type: info.type, data: try file.rawData(named: info.name))
    } catch { fatalError("tensor '\(info.name)' read but not writable: \(error)") }
  }
  return w.serialized()
}
