#if canImport(TensorCore)
  import TensorCore
#endif
#if canImport(Glibc)
  import Glibc
#endif

/// A model as the command line names it: a `.gguf` file, or a Hugging Face folder (`config.json` +
/// `*.safetensors`, single or sharded, with `tokenizer.json` if present). One interface over both, in HF names.
public enum ModelFile: Sendable {
  case gguf(GGUFFile)
  case safetensors(SafetensorsModel)

  /// Opens `path`: a directory is read as an HF folder, a file must start with the GGUF magic.
  /// - Throws: `ModelIOError` with the file's path; `.io` when it does not exist, `.badMagic` for another format.
  public init(path: String) throws(ModelIOError) {
    var st = stat()
    guard stat(path, &st) == 0 else { throw ModelIOError(.io, "no such file or folder", path: path) }
    if (st.st_mode & S_IFMT) == S_IFDIR {
      self = .safetensors(try SafetensorsModel(folder: path))
      return
    }
    let source = try ByteSource(path: path)
    if source.count >= 4, try source.load(UInt32.self, at: 0, "magic") == 0x4655_4747 {  // "GGUF"
      self = .gguf(try GGUFFile(source: source))
      return
    }
    if path.hasSuffix(".safetensors") {
      throw ModelIOError(
        .unsupported, "a bare .safetensors file has no config: pass the folder that holds it and config.json",
        path: path)
    }
    throw ModelIOError(.badMagic, "not a GGUF file (no 'GGUF' magic) and not a folder", path: path)
  }

  /// `gguf` or `safetensors`.
  public var formatName: String {
    switch self {
    case .gguf(let f): "gguf v\(f.version)"
    case .safetensors(let m): "safetensors (\(m.shards.count) file\(m.shards.count == 1 ? "" : "s"))"
    }
  }

  /// `general.architecture` of a GGUF, or `llama` for an HF folder whose config.json read as one.
  public var architecture: String? {
    switch self {
    case .gguf(let f): try? f.architecture()
    case .safetensors(let m): (try? m.config()) != nil ? "llama" : nil
    }
  }

  /// Every stored tensor, HF names, PyTorch-order shapes, stored type and bytes, in file order.
  public var tensorInfos: [TensorInfo] {
    switch self {
    case .gguf(let f): f.tensorInfos
    case .safetensors(let m): m.tensors
    }
  }

  /// The llama hyper-parameters (GGUF `llama.*` metadata or `config.json`).
  public func llamaConfig() throws(ModelIOError) -> LlamaConfig {
    switch self {
    case .gguf(let f): try f.llamaConfig()
    case .safetensors(let m): try m.config()
    }
  }

  /// One tensor as Float, by HF name, in HF row order (GGUF q/k rows un-permuted).
  public func tensor(named name: String) throws(ModelIOError) -> Tensor {
    switch self {
    case .gguf(let f): try f.hfTensor(named: name)
    case .safetensors(let m): try m.tensor(named: name)
    }
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
    }
  }

  /// Where the model lives (the file, or the folder).
  public var path: String {
    switch self {
    case .gguf(let f): f.path ?? ""
    case .safetensors(let m): m.folder
    }
  }
}
