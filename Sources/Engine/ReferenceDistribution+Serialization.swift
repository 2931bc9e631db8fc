/// Raw bytes of a `ReferenceDistribution`, for caching base distributions on disk.
///
/// Layout, all little-endian, no padding beyond what is listed:
/// ```
/// 0   magic      4 bytes "BPRD"
/// 4   version    UInt32 = 1
/// 8   precision  UInt32 (0 exact, 1 uint16)
/// 12  reserved   UInt32 = 0
/// 16  rows       UInt64
/// 24  vocabulary UInt64
/// 32  argmax     [rows] UInt32
///     .uint16:   offsets [rows] Float64, steps [rows] Float64, codes [rows · vocabulary] UInt16
///     .exact:    probabilities [rows · vocabulary] Float64, negative entropy [rows] Float64
/// ```
/// Everything else (the renormalisers, Σ p̂ log p̂) is derived from these on load by the code that derives it for
/// a fresh reference, so scores against a loaded reference are bit-identical to scores against the original.
extension ReferenceDistribution {
  /// "BPRD".
  static let magic: [UInt8] = [0x42, 0x50, 0x52, 0x44]
  /// Version of the layout above.
  public static let formatVersion: UInt32 = 1
  static let headerBytes = 32

  /// The serialized form (see the layout above).
  public func serialized() -> [UInt8] {
    var out = Self.magic
    out.reserveCapacity(Self.expectedBytes(rows: rows, vocabulary: vocabulary, precision: precision) ?? 0)
    append(&out, Self.formatVersion)
    append(&out, precision.rawValue)
    append(&out, UInt32(0))
    append(&out, UInt64(rows))
    append(&out, UInt64(vocabulary))
    for a in argmax { append(&out, UInt32(a)) }
    switch precision {
    case .uint16:
      for x in offsets { append(&out, x.bitPattern) }
      for x in steps { append(&out, x.bitPattern) }
      appendBulk(&out, codes)
    case .exact:
      appendBulk(&out, probabilities.map(\.bitPattern))
      for x in negativeEntropy { append(&out, x.bitPattern) }
    }
    return out
  }

  /// Reads a reference back from `serialized()`'s bytes, checking every length before use.
  /// - Throws: `EngineError.badReference` naming the problem (magic, version, precision, sizes, a length that is
  ///   not exactly the header's, an argmax outside the vocabulary, a non-finite or negative grid).
  public init(serialized bytes: UnsafeRawBufferPointer) throws(EngineError) {
    guard bytes.count >= Self.headerBytes else {
      throw EngineError(.badReference, "reference distribution has \(bytes.count) bytes, the header alone is \(Self.headerBytes)")
    }
    guard Array(bytes[0..<4]) == Self.magic else { throw EngineError(.badReference, "not a reference distribution (bad magic)") }
    func load<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T { bytes.loadUnaligned(fromByteOffset: offset, as: T.self).littleEndian }
    let version = load(4, UInt32.self)
    guard version == Self.formatVersion else {
      throw EngineError(.badReference, "reference distribution format version \(version), this build reads \(Self.formatVersion)")
    }
    guard let precision = Precision(rawValue: load(8, UInt32.self)) else {
      throw EngineError(.badReference, "unknown reference precision \(load(8, UInt32.self))")
    }
    let (rows64, vocabulary64) = (load(16, UInt64.self), load(24, UInt64.self))
    guard rows64 <= UInt64(Int32.max), vocabulary64 >= 1, vocabulary64 <= UInt64(Int32.max),
      let expected = Self.expectedBytes(rows: Int(rows64), vocabulary: Int(vocabulary64), precision: precision)
    else {
      throw EngineError(.badReference, "reference distribution of \(rows64) x \(vocabulary64) is out of range")
    }
    let (rows, v) = (Int(rows64), Int(vocabulary64))
    guard bytes.count == expected else {
      throw EngineError(.badReference, "reference distribution of \(rows) x \(v) (\(precision)) needs \(expected) bytes, got \(bytes.count)")
    }
    var offset = Self.headerBytes
    let argmax = (0..<rows).map { Int32(bitPattern: load(offset + 4 * $0, UInt32.self)) }
    offset += 4 * rows
    if let bad = argmax.firstIndex(where: { $0 < 0 || Int($0) >= v }) {
      throw EngineError(.badReference, "argmax \(argmax[bad]) of row \(bad) outside vocabulary 0..<\(v)")
    }
    func doubles(_ count: Int) -> [Double] {
      defer { offset += 8 * count }
      return (0..<count).map { [offset] in Double(bitPattern: load(offset + 8 * $0, UInt64.self)) }
    }
    switch precision {
    case .uint16:
      let offsets = doubles(rows), steps = doubles(rows)
      if let bad = (0..<rows).first(where: { !offsets[$0].isFinite || !steps[$0].isFinite || steps[$0] < 0 }) {
        throw EngineError(.badReference, "row \(bad) has grid offset \(offsets[bad]) and step \(steps[bad])")
      }
      var codes = [UInt16](repeating: 0, count: rows * v)
      codes.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + 2 * rows * v])) }
      #if _endian(big)
        for i in codes.indices { codes[i] = UInt16(littleEndian: codes[i]) }
      #endif
      self.init(
        rows: rows, vocabulary: v, precision: .uint16, argmax: argmax, codes: codes, offsets: offsets, steps: steps,
        probabilities: [], negativeEntropy: nil)
    case .exact:
      let probabilities = doubles(rows * v), negativeEntropy = doubles(rows)
      self.init(
        rows: rows, vocabulary: v, precision: .exact, argmax: argmax, codes: [], offsets: [], steps: [],
        probabilities: probabilities, negativeEntropy: negativeEntropy)
    }
  }

  /// `init(serialized:)` from an array.
  public init(serialized bytes: [UInt8]) throws(EngineError) {
    let result = bytes.withUnsafeBytes { raw in Result { () throws(EngineError) in try Self(serialized: raw) } }
    self = try result.get()
  }

  /// Bytes of the layout for these sizes (nil on overflow).
  static func expectedBytes(rows: Int, vocabulary: Int, precision: Precision) -> Int? {
    let (entries, o1) = rows.multipliedReportingOverflow(by: vocabulary)
    let perEntry = precision == .uint16 ? 2 : 8
    let (body, o2) = entries.multipliedReportingOverflow(by: perEntry)
    guard !o1, !o2 else { return nil }
    let perRow = 4 + (precision == .uint16 ? 16 : 8)
    let (total, o3) = body.addingReportingOverflow(headerBytes + rows * perRow)
    return o3 ? nil : total
  }

  private func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T) {
    withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
  }

  /// Appends many integers at once (one copy on a little-endian host).
  private func appendBulk<T: FixedWidthInteger>(_ out: inout [UInt8], _ values: [T]) {
    #if _endian(little)
      values.withUnsafeBytes { out.append(contentsOf: $0) }
    #else
      for x in values { append(&out, x) }
    #endif
  }
}
