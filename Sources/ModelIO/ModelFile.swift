#if canImport(TensorCore)
  import TensorCore
#endif
#if canImport(Glibc)
  import Glibc
#endif

/// A model as the command line names it: a `.gguf` file, a Hugging Face folder (`config.json` +
/// `*.safetensors`, single or sharded, with `tokenizer.json` if present), or a bare `.safetensors` file (tensors
/// only: `inspect` lists it, nothing can run it). One interface over all three, in HF names.
public enum ModelFile: Sendable {
  case gguf(GGUFFile)
  case safetensors(SafetensorsModel)
  /// One safetensors file without its folder's `config.json`: tensors, dtypes, shapes, bytes; architecture unknown.
  case safetensorsFile(SafetensorsFile)

  /// Opens `path`: a directory is read as an HF folder; a file is recognised by its content (the GGUF magic, or a
  /// safetensors header: a little-endian u64 length followed by `{`), whatever its name.
  /// - Throws: `ModelIOError` with the file's path; `.io` when it does not exist, `.badMagic` for another format.
  public init(path: String) throws(ModelIOError) {
    var st = stat()
    guard stat(path, &st) == 0 else { throw ModelIOError(.io, "no such file or folder", path: path) }
    if (st.st_mode & S_IFMT) == S_IFDIR {
      self = .safetensors(try SafetensorsModel(folder: path))
      return
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
      throw ModelIOError(.io, "not a regular file (a device, FIFO or socket)", path: path)
    }
    let source = try ByteSource(path: path)
    if source.count >= 4, try source.load(UInt32.self, at: 0, "magic") == 0x4655_4747 {  // "GGUF"
      self = .gguf(try GGUFFile(source: source))
      return
    }
    if Self.looksLikeSafetensors(source) || path.hasSuffix(".safetensors") {
      self = .safetensorsFile(try SafetensorsFile(source: source))
      return
    }
    throw ModelIOError(.badMagic, "neither a GGUF file (no 'GGUF' magic) nor a safetensors file, nor a folder", path: path)
  }

  /// Whether the bytes start as a safetensors file does: a u64 header length that fits the file, then `{`.
  static func looksLikeSafetensors(_ source: ByteSource) -> Bool {
    guard source.count >= 9, let length = try? source.load(UInt64.self, at: 0, "header length") else { return false }
    guard length >= 2, length <= UInt64(source.count - 8) else { return false }
    return (try? source.load(UInt8.self, at: 8, "header")) == UInt8(ascii: "{")
  }

  /// `gguf v3`, `safetensors (2 files)`, or `safetensors (1 file, no config.json)`.
  public var formatName: String {
    switch self {
    case .gguf(let f): "gguf v\(f.version)"
    case .safetensors(let m): "safetensors (\(m.shards.count) file\(m.shards.count == 1 ? "" : "s"))"
    case .safetensorsFile: "safetensors (1 file, no config.json)"
    }
  }

  /// `general.architecture` of a GGUF, `llama` for an HF folder whose config.json read as one, nil (unknown)
  /// for a bare safetensors file.
  public var architecture: String? {
    switch self {
    case .gguf(let f): try? f.architecture()
    case .safetensors(let m): (try? m.config()) != nil ? "llama" : nil
    case .safetensorsFile: nil
    }
  }

  /// Every stored tensor, HF names, PyTorch-order shapes, stored type and bytes, in file order.
  public var tensorInfos: [TensorInfo] {
    switch self {
    case .gguf(let f): f.tensorInfos
    case .safetensors(let m): m.tensors
    case .safetensorsFile(let f): f.tensors
    }
  }

  /// The llama hyper-parameters (GGUF `llama.*` metadata or `config.json`), checked against the tensors the
  /// file holds (`LlamaConfig.check(against:path:)`): block, head and vocabulary counts that disagree with the
  /// stored shapes are refused before anything is sized by them.
  /// - Throws: `.badConfig` for a count that disagrees with the tensors; `.unsupported` for a bare safetensors
  ///   file (no config); the reader's errors.
  public func llamaConfig() throws(ModelIOError) -> LlamaConfig {
    let config: LlamaConfig
    switch self {
    case .gguf(let f): config = try f.llamaConfig()
    case .safetensors(let m): config = try m.config()
    case .safetensorsFile: throw Self.noConfig(path)
    }
    try config.check(against: tensorInfos, path: path)
    return config
  }

  static func noConfig(_ path: String) -> ModelIOError {
    ModelIOError(
      .unsupported, "a bare .safetensors file has no config.json: pass the folder that holds it and config.json",
      path: path)
  }

  /// One tensor as Float, by HF name, in HF row order (GGUF q/k rows un-permuted).
  public func tensor(named name: String) throws(ModelIOError) -> Tensor {
    switch self {
    case .gguf(let f): try f.hfTensor(named: name)
    case .safetensors(let m): try m.tensor(named: name)
    case .safetensorsFile(let f): try f.tensor(named: name)
    }
  }

  /// Drops the memory-mapped pages that hold tensor `name` (HF name) from this process's resident set, once its
  /// values have been read (`ByteSource.dropResidentPages(offset:length:)`): a model streamed from its file then
  /// holds only the weight a pass is at, not every page it has read. Nothing for a name the model lacks.
  public func dropResidentPages(ofTensor name: String) {
    switch self {
    case .gguf(let f):
      guard let info = f.info(named: NameMapping.ggufName(forHF: name) ?? name) else { return }
      f.source.dropResidentPages(offset: f.dataOffset + info.offset, length: info.sizeInBytes)
    case .safetensors(let m):
      (try? m.shard(of: name))?.dropResidentPages(of: name)
    case .safetensorsFile(let f):
      f.dropResidentPages(of: name)
    }
  }

  /// `tensor(named:)`'s values, then its pages dropped from the resident set (`dropResidentPages(ofTensor:)`): a
  /// weight read once from a streamed model's file.
  public func valuesDroppingPages(ofTensor name: String) throws(ModelIOError) -> [Float] {
    defer { dropResidentPages(ofTensor: name) }
    return try tensor(named: name).storage
  }

  /// `valuesDroppingPages(ofTensor:)` written into `out` (exactly the tensor's element count) instead of a new
  /// array: a streamed model's table is expanded straight into the buffer it is kept in, so reading a 1 GB table
  /// does not need a second gigabyte for a moment. GGUF tensors of any GGML type and F32/F16/BF16 safetensors decode
  /// in place; a GGUF q/k projection, whose rows are moved back to HF order, goes through `tensor(named:)`.
  /// - Throws: as `tensor(named:)`; `.sizeMismatch` when `out` has another count.
  public func readValuesDroppingPages(ofTensor name: String, into out: UnsafeMutableBufferPointer<Float>) throws(ModelIOError) {
    defer { dropResidentPages(ofTensor: name) }
    switch self {
    case .gguf(let f):
      let ggufName = NameMapping.ggufName(forHF: name) ?? name
      if NameMapping.ropeProjection(hfName: name) == nil, let info = f.info(named: ggufName) {
        guard info.elementCount == out.count else {
          throw ModelIOError(.sizeMismatch, "tensor '\(name)' holds \(info.elementCount) values, not \(out.count)", path: path)
        }
        try GGMLDequantize.dequantize(info.type, try f.rawBytes(of: info), into: out)
        return
      }
    case .safetensors(let m):
      try m.shard(of: name).readValues(named: name, into: out)
      return
    case .safetensorsFile(let f):
      try f.readValues(named: name, into: out)
      return
    }
    let values = try tensor(named: name).storage
    guard values.count == out.count else {
      throw ModelIOError(.sizeMismatch, "tensor '\(name)' holds \(values.count) values, not \(out.count)", path: path)
    }
    _ = out.update(fromContentsOf: values)
  }

  /// The model's tokenizer: GGUF metadata, or `tokenizer.json` in the HF folder (BOS/EOS from config.json).
  public func tokenizer() throws(ModelIOError) -> BPETokenizer {
    switch self {
    case .gguf(let f):
      return try f.tokenizer()
    case .safetensors(let m):
      let path = m.folder + "/tokenizer.json"
      let source: ByteSource
      do { source = try ByteSource(path: path) } catch {
        throw ModelIOError(.badTokenizer, "no tokenizer.json in the model folder", path: path)
      }
      let bytes = [UInt8](UnsafeRawBufferPointer(start: source.base, count: source.count))
      let config = try? m.config()
      return try BPETokenizer(tokenizerJSON: bytes, path: path, bosTokenId: config?.bosTokenId, eosTokenId: config?.eosTokenId)
    case .safetensorsFile:
      throw Self.noConfig(path)
    }
  }

  /// Where the model lives (the file, or the folder).
  public var path: String {
    switch self {
    case .gguf(let f): f.path ?? ""
    case .safetensors(let m): m.folder
    case .safetensorsFile(let f): f.path ?? ""
    }
  }
}
