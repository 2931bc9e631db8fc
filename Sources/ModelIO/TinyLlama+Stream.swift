#if canImport(TensorCore)
  import TensorCore
#endif
import Foundation
import GGML

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Writing synthetic llama models of any size: the same seeded values as `writeGGUF` and `writeHFFolder` (which
/// hold the whole model in memory and stay the reference), made a block of rows at a time and written as they
/// are made, so memory stays at one block (about 4 MiB) whatever the model's size. Matrices may be stored as
/// F32, F16 or BF16 (round to nearest even); norms stay F32 in GGUF as llama.cpp keeps them, and take the matrix
/// type in safetensors as HF checkpoints do.
extension TinyLlama {
  /// Float types the streaming writers store.
  public enum StoredType: String, Sendable, CaseIterable {
    case f32, f16, bf16

    var byteCount: Int { self == .f32 ? 4 : 2 }
    var ggml: GGMLType { self == .f32 ? .f32 : self == .f16 ? .f16 : .bf16 }
    var safetensors: SafetensorsDType { self == .f32 ? .f32 : self == .f16 ? .f16 : .bf16 }
  }

  /// Bytes of the GGUF file `streamGGUF` writes (header and padding included).
  public static func ggufBytes(config: LlamaConfig, seed: UInt64, type: StoredType) throws(ModelIOError) -> Int {
    let (header, infos) = try ggufLayout(config: config, seed: seed, type: type)
    guard let last = infos.last else { return header.count }
    return header.count + GGUFWriter.pad(last.offset + last.sizeInBytes, GGUFFile.defaultAlignment)
  }

  /// Bytes of the safetensors file `streamHFFolder` writes.
  public static func safetensorsBytes(config: LlamaConfig, type: StoredType) throws(ModelIOError) -> Int {
    let specs = tensorSpecs(config: config)
    let header = try SafetensorsWriter.header(
      specs.map { ($0.name, $0.shape, $0.count) }, dtype: type.safetensors, metadata: ["format": "pt"])
    return header.count + specs.reduce(0) { $0 + $1.count * type.byteCount }
  }

  /// Writes the model as a GGUF v3 file like `writeGGUF` (byte for byte the same file for `.f32`), streaming.
  /// - Throws: `.io` when the file cannot be written (nothing is left behind), `.badShape` for heads that do not
  ///   divide the projections.
  public static func streamGGUF(_ path: String, config: LlamaConfig, seed: UInt64, type: StoredType = .f32)
    throws(ModelIOError)
  {
    let (header, infos) = try ggufLayout(config: config, seed: seed, type: type)
    let specs = Dictionary(uniqueKeysWithValues: tensorSpecs(config: config).map { ($0.name, $0) })
    let file = try StreamedFile(path)
    try file.put(header)
    var written = 0
    for info in infos {
      let hf = NameMapping.hfName(forGGUF: info.name)!
      let spec = specs[hf]!
      // GGUF stores Q/K rows interleaved per head: GGUF row g holds HF row source[g].
      var source: [Int]? = nil
      if let projection = NameMapping.ropeProjection(hfName: hf) {
        let order = try NameMapping.ggufRows(rows: spec.shape[0], heads: projection == .query ? config.headCount : config.kvHeadCount)
        var inverse = [Int](repeating: 0, count: order.count)
        for (h, g) in order.enumerated() { inverse[g] = h }
        source = inverse
      }
      let stored: StoredType = spec.shape.count >= 2 ? type : .f32
      try file.put(padding: info.offset - written)
      try writeValues(spec, seed: seed, rows: source, as: stored, to: file)
      written = info.offset + info.sizeInBytes
    }
    if let last = infos.last { try file.put(padding: GGUFWriter.pad(last.offset + last.sizeInBytes, GGUFFile.defaultAlignment) - written) }
    try file.commit()
  }

  /// Writes `folder/config.json`, `folder/model.safetensors` (matrices and norms in `type`) and
  /// `folder/tokenizer.json` like `writeHFFolder` (the same files for `.f32`), streaming the weights.
  /// - Throws: `.io` when a file cannot be written.
  public static func streamHFFolder(_ folder: String, config: LlamaConfig, seed: UInt64, type: StoredType = .f32)
    throws(ModelIOError)
  {
    guard mkdir(folder, 0o755) == 0 || errno == EEXIST else {
      throw ModelIOError(.io, "cannot create the folder: \(String(cString: strerror(errno)))", path: folder)
    }
    let specs = tensorSpecs(config: config)
    let file = try StreamedFile(folder + "/model.safetensors")
    try file.put(
      try SafetensorsWriter.header(specs.map { ($0.name, $0.shape, $0.count) }, dtype: type.safetensors, metadata: ["format": "pt"]))
    for spec in specs { try writeValues(spec, seed: seed, rows: nil, as: type, to: file) }
    try file.commit()
    var json = hfConfigJSON(config)
    if type != .f32 { json = json.replacingOccurrences(of: "\"torch_dtype\": \"float32\"", with: "\"torch_dtype\": \"\(type == .f16 ? "float16" : "bfloat16")\"") }
    try SafetensorsWriter.writeAtomically(Array(json.utf8), to: folder + "/config.json")
    try SafetensorsWriter.writeAtomically(Array(tokenizerJSON(vocabSize: config.vocabSize).utf8), to: folder + "/tokenizer.json")
  }

  /// The GGUF header and tensor infos (GGUF order and names) of the model in `type`.
  static func ggufLayout(config: LlamaConfig, seed: UInt64, type: StoredType) throws(ModelIOError)
    -> (header: [UInt8], infos: [GGUFTensorInfo])
  {
    let writer = try ggufWriter(config: config, seed: seed)
    let declared = tensorSpecs(config: config)
      .map { (gguf: NameMapping.ggufName(forHF: $0.name)!, spec: $0) }
      .sorted { GGUFWriter.llamaOrder($0.gguf) < GGUFWriter.llamaOrder($1.gguf) }
      .map { (name: $0.gguf, shape: $0.spec.shape, type: $0.spec.shape.count >= 2 ? type.ggml : GGMLType.f32) }
    return try writer.header(declaring: declared)
  }

  /// Writes a tensor's values in `type`, a block of rows at a time; `rows[g]` is the row of the tensor stored
  /// g-th (nil: in order).
  static func writeValues(_ spec: TensorSpec, seed: UInt64, rows: [Int]?, as type: StoredType, to file: StreamedFile)
    throws(ModelIOError)
  {
    let columns = spec.shape.last ?? 1, rowCount = spec.count / max(columns, 1)
    let block = max(1, (1 << 20) / max(columns, 1))
    var floats = [Float](repeating: 0, count: block * columns)
    var bytes = [UInt8](repeating: 0, count: block * columns * type.byteCount)
    var r0 = 0
    while r0 < rowCount {
      let n = min(block, rowCount - r0)
      floats.withUnsafeMutableBufferPointer { f in
        for i in 0..<n {
          let r = rows?[r0 + i] ?? r0 + i
          fill(spec, seed: seed, values: r * columns..<(r + 1) * columns, into: UnsafeMutableBufferPointer(rebasing: f[(i * columns)...]))
        }
      }
      bytes.withUnsafeMutableBytes { out in
        for i in 0..<(n * columns) {
          switch type {
          case .f32: out.storeBytes(of: floats[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
          case .f16: out.storeBytes(of: Half.f16Bits(floats[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
          case .bf16: out.storeBytes(of: Half.bf16Bits(floats[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
          }
        }
      }
      try file.put(bytes, count: n * columns * type.byteCount)
      r0 += n
    }
  }
}

/// A file written through a temporary beside it and renamed into place by `commit()`; dropped without a commit
/// (or after a failed write), the temporary is removed, so no partial file is ever left under the name.
final class StreamedFile {
  let path: String
  private let target: String
  private let temporary: String
  private var fd: Int32
  private var committed = false

  init(_ path: String) throws(ModelIOError) {
    self.path = path
    target = FileChecks.resolvedTarget(path)
    do { (temporary, fd) = try FileChecks.createTemporary(beside: target, option: "-o", path: path) } catch {
      throw ModelIOError(.io, error.message, path: path)
    }
  }

  deinit {
    guard !committed else { return }
    if fd >= 0 { close(fd) }
    unlink(temporary)
  }

  /// Writes the first `count` bytes (all when nil).
  func put(_ bytes: [UInt8], count: Int? = nil) throws(ModelIOError) {
    let n = count ?? bytes.count, fd = self.fd
    let ok = bytes.withUnsafeBytes { writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[..<n])) }
    guard ok else { throw ModelIOError(.io, "write failed: \(String(cString: strerror(errno)))", path: path) }
  }

  func put(padding count: Int) throws(ModelIOError) {
    if count > 0 { try put([UInt8](repeating: 0, count: count)) }
  }

  /// Flushes, closes and renames the temporary over the path.
  func commit() throws(ModelIOError) {
    guard fsync(fd) == 0 else { throw ModelIOError(.io, "fsync failed: \(String(cString: strerror(errno)))", path: path) }
    let status = close(fd)
    fd = -1
    guard status == 0 else { throw ModelIOError(.io, "close failed", path: path) }
    do { try FileChecks.replace(target, with: temporary, option: "-o", path: path) } catch {
      throw ModelIOError(.io, error.message, path: path)
    }
    committed = true
  }
}
