import Foundation

/// Header parsing: every rule of the format is checked before any offset is used, each with its own code.
///
/// Layout: `u64` little-endian header length `N`, `N` bytes of UTF-8 JSON, then the data section. The JSON maps
/// tensor names to `{"dtype": String, "shape": [Int], "data_offsets": [begin, end]}`, offsets relative to the data
/// section; an optional `"__metadata__"` maps strings to strings.
extension SafetensorsFile {
  /// Largest header we accept: 100 MB, the `safetensors` crate's `MAX_HEADER_SIZE`.
  public static let maximumHeaderByteCount = 100_000_000

  /// One validated header entry. Offsets are absolute positions in the file.
  struct Entry: Sendable {
    var name: String
    var dtype: SafetensorsDType
    var shape: [Int]
    var begin: Int
    var end: Int
  }

  /// Parses and validates the header of `bytes`.
  ///
  /// Rules, in order, with the code each breaks:
  /// 1. the file holds the 8-byte length (`.truncated`);
  /// 2. `N ≤ 100 MB` (`.headerTooLarge`), then `N ≤ fileSize − 8` (`.truncated`): an absurd length is reported
  ///    as too large even when the file is also short;
  /// 3. the header is UTF-8 holding one JSON object (`.badHeader`);
  /// 4. `__metadata__`, when present, maps strings to strings (`.badHeader`);
  /// 5. every other value is an object with a string `dtype`, an integer array `shape` and an integer pair
  ///    `data_offsets` (`.badHeader`);
  /// 6. the dtype is known (`.unknownDType`);
  /// 7. every dimension is ≥ 0 and `Π shape × byteCount` does not overflow (`.badShape`);
  /// 8. `0 ≤ begin ≤ end ≤ dataSize` (`.outOfBounds`);
  /// 9. `end − begin = Π shape × byteCount` (`.sizeMismatch`);
  /// 10. sorted by `begin`, no non-empty range starts before the previous ones end (`.overlap`).
  /// Gaps between tensors and unused trailing bytes are accepted (the `safetensors` crate is stricter).
  /// Entries are checked in name order, so a file with several faults always reports the same one.
  /// - Returns: the entries in file order (by offset, then name), the metadata, and where the data section starts.
  static func parseHeader(
    _ bytes: ByteSource
  ) throws(ModelIOError)
    -> (entries: [Entry], metadata: [String: String], dataStart: Int)
  {
    let path = bytes.path
    let length = try bytes.load(UInt64.self, at: 0, "safetensors header length")
    if length > UInt64(maximumHeaderByteCount) {
      throw ModelIOError(
        .headerTooLarge, "header length \(length) exceeds the limit of \(maximumHeaderByteCount) bytes", path: path)
    }
    let headerCount = Int(length)
    if headerCount > bytes.count - 8 {
      throw ModelIOError(
        .truncated, "header of \(headerCount) bytes ends past the end of the file (\(bytes.count) bytes)", path: path)
    }
    let dataStart = 8 + headerCount
    let dataSize = bytes.count - dataStart
    let headerBytes = try bytes.slice(8, headerCount, "safetensors header")
    guard let json = SafetensorsJSON.object(headerBytes) else {
      throw ModelIOError(
        .badHeader, "header is not one UTF-8 JSON object: \(SafetensorsJSON.syntaxError(headerBytes)) (in the header "
          + "that starts at byte 8)", path: path)
    }
    var metadata: [String: String] = [:]
    var entries: [Entry] = []
    for name in json.keys.sorted() {
      let value = json[name]!
      if name == "__metadata__" {
        guard let map = value as? [String: Any] else {
          throw ModelIOError(.badHeader, "__metadata__ is not an object", path: path)
        }
        for (k, v) in map {
          guard let s = SafetensorsJSON.string(v) else {
            throw ModelIOError(.badHeader, "__metadata__['\(k)'] is not a string", path: path)
          }
          metadata[k] = s
        }
        continue
      }
      entries.append(try parseEntry(name, value, dataStart: dataStart, dataSize: dataSize, path: path))
    }
    entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
    var previous: Entry?
    for e in entries where e.end > e.begin {
      if let p = previous, e.begin < p.end {
        throw ModelIOError(
          .overlap,
          "tensor '\(e.name)' (bytes \(e.begin - dataStart)..<\(e.end - dataStart)) overlaps '\(p.name)' "
            + "(bytes \(p.begin - dataStart)..<\(p.end - dataStart))", path: path)
      }
      if previous == nil || e.end > previous!.end { previous = e }
    }
    return (entries, metadata, dataStart)
  }

  /// Validates one tensor entry (rules 5-9 of `parseHeader`).
  private static func parseEntry(
    _ name: String, _ value: Any, dataStart: Int, dataSize: Int, path: String?
  )
    throws(ModelIOError) -> Entry
  {
    func bad(_ what: String) -> ModelIOError { ModelIOError(.badHeader, "tensor '\(name)': \(what)", path: path) }
    guard let object = value as? [String: Any] else { throw bad("entry is not an object") }
    guard let dtypeName = object["dtype"].flatMap(SafetensorsJSON.string) else {
      throw bad("dtype missing or not a string")
    }
    guard let shapeValues = object["shape"] as? [Any] else { throw bad("shape missing or not an array") }
    guard let offsetValues = object["data_offsets"] as? [Any], offsetValues.count == 2 else {
      throw bad("data_offsets missing or not an array of two integers")
    }
    var shape: [Int] = []
    for v in shapeValues {
      switch SafetensorsJSON.integer(v) {
      case nil: throw bad("shape \(shapeValues) holds a value that is not an integer")
      case .outOfRange: throw ModelIOError(.badShape, "tensor '\(name)': dimension \(v) is too large", path: path)
      case .value(let d): shape.append(d)
      }
    }
    var offsets: [Int] = []
    for v in offsetValues {
      switch SafetensorsJSON.integer(v) {
      case nil: throw bad("data_offsets holds a value that is not an integer")
      case .outOfRange: throw ModelIOError(.outOfBounds, "tensor '\(name)': offset \(v) is too large", path: path)
      case .value(let o): offsets.append(o)
      }
    }
    guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
      throw ModelIOError(.unknownDType, "tensor '\(name)': unknown dtype '\(dtypeName)'", path: path)
    }
    var byteCount = dtype.byteCount
    for d in shape {
      let (product, overflow) = byteCount.multipliedReportingOverflow(by: d)
      if d < 0 || overflow { throw ModelIOError(.badShape, "tensor '\(name)': impossible shape \(shape)", path: path) }
      byteCount = product
    }
    let (begin, end) = (offsets[0], offsets[1])
    if begin < 0 || begin > end || end > dataSize {
      throw ModelIOError(
        .outOfBounds, "tensor '\(name)': data_offsets [\(begin), \(end)] outside the data section of \(dataSize) bytes",
        path: path)
    }
    if end - begin != byteCount {
      throw ModelIOError(
        .sizeMismatch,
        "tensor '\(name)': \(end - begin) bytes, but shape \(shape) of \(dtype.rawValue) needs \(byteCount)",
        path: path)
    }
    return Entry(name: name, dtype: dtype, shape: shape, begin: dataStart + begin, end: dataStart + end)
  }
}
