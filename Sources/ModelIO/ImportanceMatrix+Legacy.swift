/// The legacy `.dat` importance matrix (`llama-imatrix --output-format dat`), as `common_imatrix_load_legacy`
/// (common/imatrix-loader.cpp) and `load_imatrix` (tools/quantize/quantize.cpp) read it.
///
/// Layout (little-endian `int32_t` unless said): entry count n ≥ 1; n times { name length len, len name bytes (cut at
/// the first NUL), ncall, nval ≥ 1, nval `float` sums }; then, optionally, the call count and { dataset name length,
/// the name } (llama.cpp ignores anything after). The sums are the means scaled by ncall, so the weights are
/// `sums[j] / Float(ncall)` when ncall > 0, else the sums as stored. A later entry with an earlier entry's name
/// replaces it (llama.cpp's map). There is no metadata to require; `chunkSize` is 0.
///
/// Refused (one-line `ModelIOError`): no entries (`.missingTensor`), a negative name length or nval < 1
/// (`.badHeader`), a file that ends inside an entry or inside the trailer's call count (`.truncated`), a name or
/// dataset that is not UTF-8 (`.badHeader`). A trailer cut after its call count has no dataset, as in llama.cpp.
extension ImportanceMatrix {
  static func readLegacy(_ source: ByteSource) throws(ModelIOError) -> Contents {
    let path = source.path
    var at = 0
    func int32(_ what: @autoclosure () -> String) throws(ModelIOError) -> Int32 {
      defer { at += 4 }
      return try source.load(Int32.self, at: at, what())
    }
    func text(_ count: Int, _ what: @autoclosure () -> String) throws(ModelIOError) -> String {
      let raw = try source.slice(at, count, what())
      at += count
      guard let s = String(validating: raw.prefix { $0 != 0 }, as: UTF8.self) else {
        throw ModelIOError(.badHeader, "\(what()) is not UTF-8", path: path)
      }
      return s
    }
    guard source.count >= 4 else {
      throw ModelIOError(
        .missingTensor, "\(source.count) bytes: neither a GGUF nor a legacy importance matrix (no data)", path: path)
    }
    let count = try int32("the entry count")
    guard count >= 1 else {
      throw ModelIOError(.missingTensor, "legacy importance matrix with \(count) entries (no data)", path: path)
    }
    var weights: [String: [Float]] = [:]
    for i in 0..<Int(count) {
      let length = try int32("the name length of entry \(i + 1)")
      guard length >= 0 else {
        throw ModelIOError(.badHeader, "entry \(i + 1): name length \(length)", path: path)
      }
      let name = try text(Int(length), "the name of entry \(i + 1)")
      let ncall = try int32("the call count of '\(name)'")
      let nval = try int32("the value count of '\(name)'")
      guard nval >= 1 else { throw ModelIOError(.badHeader, "'\(name)': \(nval) values", path: path) }
      let sums = try source.slice(at, 4 * Int(nval), "the \(nval) sums of '\(name)'")
      at += 4 * Int(nval)
      let scale = Float(ncall)  // int64_t ncall promoted to float for the division
      weights[name] = (0..<Int(nval)).map { j in
        let s = Float(bitPattern: UInt32(littleEndian: sums.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self)))
        return ncall > 0 ? s / scale : s
      }
    }
    // The optional trailer: the call count, then (when whole) the dataset name.
    var chunkCount: Int32 = 0
    var datasets: [String] = []
    if at < source.count {
      chunkCount = try int32("the call count after the entries")
      if source.count - at >= 4 {
        let length = try int32("the dataset name length")
        if length > 0, Int(length) <= source.count - at { datasets = [try text(Int(length), "the dataset name")] }
      }
    }
    return (.legacy, weights, datasets, chunkCount, 0)
  }
}
