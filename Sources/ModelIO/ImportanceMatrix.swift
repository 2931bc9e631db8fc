import GGML

#if canImport(TensorCore)
  import TensorCore
#endif

/// llama.cpp's importance matrix (`llama-imatrix -o FILE`), read as `llama-quantize --imatrix FILE` reads it:
/// `common_imatrix_load` (common/imatrix-loader.cpp), then `load_imatrix` (tools/quantize/quantize.cpp), then the
/// non-finite check of `llama_model_quantize_impl` (src/llama-quant.cpp), llama.cpp b0.3.36.
///
/// The GGUF format holds, for each tensor `T` llama-imatrix saw, two F32 tensors: `T.in_sum2` (Σ over the calibration
/// tokens of xⱼ², `ne0 · n_expert` values) and `T.counts` (tokens seen, one per expert). Each count is rounded to an
/// integer (`std::lround` into `int64_t`: to nearest, halves away from zero, so 2.5 → 3 and 0.4 → 0), then made a
/// `Float` again, and the weight llama-quantize hands ggml for column j of expert e is
///
///     w[e·ne0 + j] = in_sum2[e·ne0 + j] / Float(count[e])   (Float division)   when count[e] > 0,
///     w[e·ne0 + j] = 1                                                         otherwise.
///
/// The metadata `imatrix.datasets` (array of strings), `imatrix.chunk_count` and `imatrix.chunk_size` (u32) must all
/// be present, as llama-quantize requires. The legacy `.dat` format (`ImportanceMatrix+Legacy.swift`) stores the
/// means already scaled by the call count: w = sums / ncall (sums as stored when ncall ≤ 0).
///
/// Where llama.cpp's behaviour on a damaged file is undefined (a crash, an abort, an unspecified `lround`), this
/// refuses with a one-line `ModelIOError` naming the file and the entry instead:
/// - `.missingTensor`: a file with no tensors (llama.cpp: "no data"), or with no `.in_sum2`/`.counts` pair at all
///   (llama-quantize would quietly quantize without weights), or a `.in_sum2` without its `.counts` or the reverse;
/// - `.badHeader`: missing metadata, `imatrix.chunk_count`/`chunk_size` not u32 (llama.cpp asserts), sums or counts
///   not F32;
/// - `.sizeMismatch`: no counts, or sums that are not a whole number of rows for the counts (llama.cpp divides by
///   zero, or leaves the remainder 0);
/// - `.badValue`: a count that is NaN, infinite or beyond ±2⁶³ (`lround` unspecified); a weight that is not finite
///   (llama-quantize refuses it too: "imatrix contains non-finite value"); a negative weight, which a mean of
///   squares cannot be and ggml's weighted searches do not expect (llama.cpp would pass it on).
/// A negative or zero count is kept as llama.cpp treats it: that expert's weights are all 1.
public struct ImportanceMatrix: Sendable {
  /// How the file stores the matrix.
  public enum Format: String, Sendable, Codable {
    /// llama-imatrix's default output: a GGUF with `.in_sum2`/`.counts` tensors.
    case gguf
    /// The older `.dat` file (`--output-format dat`).
    case legacy
  }

  /// The file's format.
  public let format: Format
  /// The file read, when there is one.
  public let path: String?
  /// What llama-quantize passes ggml for each entry (by tensor name): one weight per column of each expert's matrix.
  public let weights: [String: [Float]]
  /// `imatrix.datasets` (GGUF; empty when it is not an array of strings) or the legacy trailer's dataset name.
  public let datasets: [String]
  /// `imatrix.chunk_count` (as llama.cpp's `int32_t`) or the legacy trailer's call count; 0 when absent.
  public let chunkCount: Int32
  /// `imatrix.chunk_size` (as `int32_t`); 0 for the legacy format.
  public let chunkSize: Int32

  /// The metadata keys llama.cpp's loader reads from a GGUF importance matrix.
  public static let datasetsKey = "imatrix.datasets"
  public static let chunkCountKey = "imatrix.chunk_count"
  public static let chunkSizeKey = "imatrix.chunk_size"

  /// Reads the importance matrix at `path`: a GGUF when it starts with `GGUF`, else the legacy format.
  /// - Throws: `ModelIOError`: `.io` when it cannot be read; the GGUF reader's codes for a malformed GGUF; the codes
  ///   listed on the type for a well-formed file that is not a usable importance matrix.
  public init(path: String) throws(ModelIOError) {
    try self.init(source: try ByteSource(path: path))
  }

  /// Reads an importance matrix held in memory (tests); `path` only labels error messages.
  public init(bytes: [UInt8], path: String? = nil) throws(ModelIOError) {
    try self.init(source: ByteSource(bytes: bytes, path: path))
  }

  /// Reads the importance matrix in `source`.
  public init(source: ByteSource) throws(ModelIOError) {
    let magic = source.count >= 4 ? Array(try source.slice(0, 4, "magic")) : []
    // llama.cpp tries GGUF first and falls back to the legacy reader when ggml's GGUF parser refuses the file; a
    // file that starts like a GGUF but is damaged gets the GGUF error here, which says more.
    let read =
      magic == Array("GGUF".utf8) ? try Self.readGGUF(try GGUFFile(source: source)) : try Self.readLegacy(source)
    try Self.checkWeights(read.weights, path: source.path)
    format = read.format
    path = source.path
    weights = read.weights
    datasets = read.datasets
    chunkCount = read.chunkCount
    chunkSize = read.chunkSize
  }

  /// The fields of a matrix, before `checkWeights`.
  typealias Contents = (
    format: Format, weights: [String: [Float]], datasets: [String], chunkCount: Int32, chunkSize: Int32
  )

  /// `common_imatrix_load`'s GGUF branch and `load_imatrix`'s division by the counts.
  static func readGGUF(_ file: GGUFFile) throws(ModelIOError) -> Contents {
    let path = file.path
    guard !file.tensors.isEmpty else {
      throw ModelIOError(.missingTensor, "the importance matrix holds no tensors (no data)", path: path)
    }
    let keys = [datasetsKey, chunkCountKey, chunkSizeKey]
    guard keys.allSatisfy({ file.metadata[$0] != nil }) else {
      let missing = keys.filter { file.metadata[$0] == nil }.joined(separator: ", ")
      throw ModelIOError(
        .badHeader, "missing imatrix metadata (\(missing)), which llama-quantize requires: write it with a current "
          + "llama-imatrix", path: path)
    }
    var datasets: [String] = []
    if case .array(.string, let elements)? = file.metadata[datasetsKey] { datasets = elements.compactMap(\.stringValue) }
    func u32(_ key: String) throws(ModelIOError) -> Int32 {
      guard case .uint32(let v)? = file.metadata[key] else {
        throw ModelIOError(
          .badHeader, "\(key) is \(file.metadata[key]!.typeDescription), llama.cpp reads a u32", path: path)
      }
      return Int32(truncatingIfNeeded: v)  // into common_imatrix's int32_t
    }
    let chunkCount = try u32(chunkCountKey), chunkSize = try u32(chunkSizeKey)

    // Pair T.in_sum2 with T.counts; other tensors are ignored, as llama.cpp ignores them.
    var pairs: [String: (sums: GGUFTensorInfo?, counts: GGUFTensorInfo?)] = [:]
    for info in file.tensors where !info.name.isEmpty {
      if info.name.hasSuffix(".in_sum2") {
        pairs[String(info.name.dropLast(8)), default: (nil, nil)].sums = info
      } else if info.name.hasSuffix(".counts") {
        pairs[String(info.name.dropLast(7)), default: (nil, nil)].counts = info
      }
    }
    guard !pairs.isEmpty else {
      throw ModelIOError(
        .missingTensor, "no '<tensor>.in_sum2' and '<tensor>.counts' pairs among its \(file.tensors.count) tensors",
        path: path)
    }
    var weights: [String: [Float]] = [:]
    // In name order, as llama.cpp's std::map: the same first complaint.
    for (name, pair) in pairs.sorted(by: { $0.key < $1.key }) {
      guard let sums = pair.sums, let counts = pair.counts else {
        let (has, lacks) = pair.sums == nil ? ("counts", "in_sum2") : ("in_sum2", "counts")
        throw ModelIOError(
          .missingTensor, "'\(name).\(has)' has no '\(name).\(lacks)' (unpaired sums and counts)", path: path)
      }
      guard sums.type == .f32, counts.type == .f32 else {
        throw ModelIOError(
          .badHeader, "'\(name)': sums are \(sums.type.name) and counts \(counts.type.name); llama.cpp reads F32", path: path)
      }
      let sumValues = try floats(file, sums), countValues = try floats(file, counts)
      guard !countValues.isEmpty, sumValues.count % countValues.count == 0 else {
        throw ModelIOError(
          .sizeMismatch, "'\(name)': \(sumValues.count) sums are not whole rows for \(countValues.count) counts", path: path)
      }
      let rowLength = sumValues.count / countValues.count
      var w = [Float](repeating: 0, count: sumValues.count)
      for (e, c) in countValues.enumerated() {
        // std::lround into int64_t, then (float): defined only for finite values within ±2⁶³.
        let rounded = c.rounded(.toNearestOrAwayFromZero)
        guard rounded.isFinite, abs(rounded) < 0x1p63 else {
          throw ModelIOError(.badValue, "'\(name).counts'[\(e)] is \(c), not a token count", path: path)
        }
        let count = Float(Int64(rounded))
        for j in e * rowLength..<(e + 1) * rowLength { w[j] = count > 0 ? sumValues[j] / count : 1 }
      }
      weights[name] = w
    }
    return (.gguf, weights, datasets, chunkCount, chunkSize)
  }

  /// The values of an F32 tensor, little-endian.
  static func floats(_ file: GGUFFile, _ info: GGUFTensorInfo) throws(ModelIOError) -> [Float] {
    let raw = try file.rawBytes(of: info)
    return (0..<info.elementCount).map {
      Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
    }
  }

  /// llama-quantize's check of every entry (`std::isfinite`), and ours for negative weights.
  static func checkWeights(_ weights: [String: [Float]], path: String?) throws(ModelIOError) {
    for (name, w) in weights.sorted(by: { $0.key < $1.key }) {
      if let j = w.firstIndex(where: { !$0.isFinite }) {
        throw ModelIOError(
          .badValue, "'\(name)': weight \(j) is \(w[j]); llama-quantize refuses non-finite importances too", path: path)
      }
      if let j = w.firstIndex(where: { $0 < 0 }) {
        throw ModelIOError(.badValue, "'\(name)': weight \(j) is \(w[j]), a mean of squares cannot be negative", path: path)
      }
    }
  }

  /// The importance llama-quantize gives tensor `info` when it re-encodes it (`llama_model_quantize_impl`): the entry
  /// named exactly as the tensor; nil when there is none, and the tensor is quantized without weights.
  ///
  /// The entry must hold `ne[0]·ne[2]` values (one row of weights per expert; ne[2] = 1 for a matrix). When it does
  /// not, llama-quantize refuses, except for `token_embd.weight` and `per_layer_token_embd.weight`, which it then
  /// quantizes without weights ("tok_embd should be ignored in this case"): so does this.
  /// - Throws: `.sizeMismatch`, one line naming the tensor and both sizes.
  public func importance(for info: GGUFTensorInfo) throws(ModelIOError) -> [Float]? {
    guard let w = weights[info.name] else { return nil }
    let expected = info.rowLength * (info.dimensions.count > 2 ? info.dimensions[2] : 1)
    guard w.count == expected else {
      if info.name == "token_embd.weight" || info.name == "per_layer_token_embd.weight" { return nil }
      throw ModelIOError(
        .sizeMismatch,
        "importance matrix entry '\(info.name)' has \(w.count) values, the tensor's rows take \(expected) "
          + "(llama-quantize refuses it too)", path: path)
    }
    return w
  }

  /// The metadata llama-quantize adds to its output for this matrix (tools/quantize/quantize.cpp, KV overrides applied
  /// after `general.file_type`, each as `gguf_set_val_*`: the old key removed, the new one appended), in its order:
  /// `quantize.imatrix.file` (`file` as given on the command line), `quantize.imatrix.dataset` (the first dataset;
  /// when there is one), `quantize.imatrix.entries_count` (u32, the entries), `quantize.imatrix.chunks_count` (u32;
  /// when `chunkCount > 0`). Strings are cut as `strncpy(val_str, s, 127)` cuts them: at the first NUL, at most 127
  /// bytes.
  /// - Throws: `.unsupported` when that cut falls inside a UTF-8 character (llama.cpp would write the broken bytes).
  public func quantizeMetadata(file: String) throws(ModelIOError) -> [(key: String, value: GGUFValue)] {
    func cut(_ s: String, _ what: String) throws(ModelIOError) -> String {
      let bytes = Array(s.utf8.prefix { $0 != 0 }.prefix(127))
      guard let text = String(validating: bytes, as: UTF8.self) else {
        throw ModelIOError(
          .unsupported, "\(what) is longer than llama.cpp's 127 bytes, and the cut falls inside a UTF-8 character; "
            + "use a shorter name", path: path)
      }
      return text
    }
    var out: [(key: String, value: GGUFValue)] = [("quantize.imatrix.file", .string(try cut(file, "the path")))]
    if let first = datasets.first {
      out.append(("quantize.imatrix.dataset", .string(try cut(first, "the dataset name"))))
    }
    out.append(("quantize.imatrix.entries_count", .uint32(UInt32(weights.count))))
    if chunkCount > 0 { out.append(("quantize.imatrix.chunks_count", .uint32(UInt32(chunkCount)))) }
    return out
  }
}
