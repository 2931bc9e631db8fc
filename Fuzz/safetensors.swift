// libFuzzer harness for the safetensors reader: `scripts/fuzz.sh safetensors [RUNS]`.
// Compiled into one module with ModelIO's and TensorCore's sources, so their types are used without an import.
// Any input must give a file or a ModelIOError; a trap, overflow or out-of-bounds access is a bug.

/// Parses `data` as a safetensors file and, when that succeeds, reads every tensor (as `Float` where the dtype
/// converts, checking the fast decoder against the reference, else as raw bytes). The same bytes are also
/// parsed as a `config.json`, which shares the JSON layer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  if let file = try? SafetensorsFile(bytes: bytes, path: "fuzz") {
    for info in file.tensors {
      if let dtype = SafetensorsDType(rawValue: info.dtype), dtype.convertsToFloat {
        let tensor = try? file.tensor(named: info.name)
        precondition(tensor == nil || tensor!.count == info.parameterCount, "decoded count differs from the header")
        try? file.withRawBytes(named: info.name) { raw in
          let fast = dtype.decodeFloats(raw).map(\.bitPattern)
          precondition(fast == dtype.decodeFloatsReference(raw).map(\.bitPattern), "fast decoding differs")
        }
      } else {
        let raw = try? file.rawBytes(named: info.name)
        precondition(raw == nil || raw!.count == info.sizeInBytes, "raw byte count differs from the header")
      }
    }
  }
  _ = try? LlamaConfig(hfConfig: bytes, path: "fuzz")
  return 0
}
