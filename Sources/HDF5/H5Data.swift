import CHDF5

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An open dataset or attribute: the two things that hold values. Reading and writing whole values works the
/// same way for both, so numeric and string conversions are written once, here.
enum H5Data {
  case dataset(hid_t)
  case attribute(hid_t)

  /// A new handle on the stored dataspace; the caller closes it.
  func space(_ site: H5Site) throws(HDF5Error) -> hid_t {
    switch self {
    case .dataset(let id): try H5.datasetSpace(id, site)
    case .attribute(let id): try H5.attributeSpace(id, site)
    }
  }

  /// A new handle on the stored datatype; the caller closes it.
  func type(_ site: H5Site) throws(HDF5Error) -> hid_t {
    switch self {
    case .dataset(let id): try H5.datasetType(id, site)
    case .attribute(let id): try H5.attributeType(id, site)
    }
  }

  /// Writes every element from `buffer`, laid out as `memoryType`.
  func write(_ memoryType: hid_t, _ buffer: UnsafeRawPointer, _ site: H5Site) throws(HDF5Error) {
    switch self {
    case .dataset(let id):
      try H5.datasetWrite(
        id, memoryType: memoryType, memorySpace: bitplan_H5S_ALL(), fileSpace: bitplan_H5S_ALL(), buffer, site)
    case .attribute(let id): try H5.attributeWrite(id, memoryType, buffer, site)
    }
  }

  /// Reads every element into `buffer`, laid out as `memoryType`.
  func read(_ memoryType: hid_t, _ buffer: UnsafeMutableRawPointer, _ site: H5Site) throws(HDF5Error) {
    switch self {
    case .dataset(let id):
      try H5.datasetRead(
        id, memoryType: memoryType, memorySpace: bitplan_H5S_ALL(), fileSpace: bitplan_H5S_ALL(), buffer, site)
    case .attribute(let id): try H5.attributeRead(id, memoryType, buffer, site)
    }
  }

  /// The stored extent and the stored type class, checked against `kind`.
  func shape(expecting kind: HDF5ElementKind, _ site: H5Site) throws(HDF5Error) -> [Int] {
    let type = try type(site)
    defer { H5.typeClose(type) }
    let stored = try H5.typeClass(type, site)
    if stored != kind.typeClass {
      throw HDF5Error(
        .typeMismatch, "'\(site.object)' holds \(H5Data.describe(stored)), not \(kind.rawValue)",
        path: site.file)
    }
    let space = try space(site)
    defer { H5.spaceClose(space) }
    return try H5.spaceDims(space, site)
  }

  /// A readable name of a type class for messages.
  static func describe(_ typeClass: H5T_class_t) -> String {
    HDF5ElementKind.allCases.first { $0.typeClass == typeClass }?.rawValue ?? "HDF5 type class \(typeClass.rawValue)"
  }

  // MARK: - Numbers

  func writeNumbers<T: HDF5Numeric>(_ values: [T], _ site: H5Site) throws(HDF5Error) {
    if values.isEmpty { return }  // a zero-sized extent has nothing to write
    try withBytes(of: values) { (raw) throws(HDF5Error) in try write(T.memoryType, raw.baseAddress!, site) }
  }

  func readNumbers<T: HDF5Numeric>(_: T.Type, _ site: H5Site) throws(HDF5Error) -> HDF5Array<T> {
    let shape = try shape(expecting: T.hdf5Kind, site)
    let count = shape.reduce(1, *)
    var values = [T](unsafeUninitializedCapacity: count) { _, n in n = count }
    if count > 0 {
      try withMutableBytes(of: &values) { (raw) throws(HDF5Error) in try read(T.memoryType, raw.baseAddress!, site) }
    }
    return HDF5Array(shape: shape, values: values)
  }

  // MARK: - Strings

  /// Writes `strings` with the memory type that matches `layout`; the stored type was chosen by `stringType`.
  func writeStrings(_ strings: [String], layout: HDF5StringLayout, _ site: H5Site) throws(HDF5Error) {
    if strings.isEmpty { return }
    switch layout {
    case .variableLength:
      let type = try H5.stringType(size: nil, site)
      defer { H5.typeClose(type) }
      let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
      defer { pointers.forEach { free($0) } }
      try withBytes(of: pointers) { (raw) throws(HDF5Error) in try write(type, raw.baseAddress!, site) }
    case .fixedLength:
      let size = H5Data.fixedSize(strings)
      let type = try H5.stringType(size: size, site)
      defer { H5.typeClose(type) }
      var bytes = [UInt8](repeating: 0, count: max(strings.count * size, 1))
      for (i, s) in strings.enumerated() { bytes.replaceSubrange(i * size..<(i * size + s.utf8.count), with: s.utf8) }
      try withBytes(of: bytes) { (raw) throws(HDF5Error) in try write(type, raw.baseAddress!, site) }
    }
  }

  /// Bytes per element of a fixed-length layout: the longest UTF-8 encoding, at least 1.
  static func fixedSize(_ strings: [String]) -> Int { max(1, strings.map(\.utf8.count).max() ?? 1) }

  /// Reads a string dataset or attribute of either layout; invalid UTF-8 is a `.typeMismatch`.
  func readStrings(_ site: H5Site) throws(HDF5Error) -> HDF5Array<String> {
    let shape = try shape(expecting: .string, site)
    let count = shape.reduce(1, *)
    let stored = try type(site)
    defer { H5.typeClose(stored) }
    if count == 0 { return HDF5Array(shape: shape, values: []) }
    var encoded: [[UInt8]] = []
    if try H5.typeIsVariableString(stored, site) {
      let type = try H5.stringType(size: nil, site)
      defer { H5.typeClose(type) }
      let space = try space(site)
      defer { H5.spaceClose(space) }
      var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
      try withMutableBytes(of: &pointers) { (raw) throws(HDF5Error) in try read(type, raw.baseAddress!, site) }
      encoded = pointers.map { p in p.map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) } ?? [] }
      pointers.withUnsafeMutableBytes { H5.reclaimVariableLength(type, space, $0.baseAddress!) }
    } else {
      let size = try H5.typeSize(stored, site)
      let type = try H5.stringType(size: size, site)
      defer { H5.typeClose(type) }
      var bytes = [UInt8](repeating: 0, count: count * size)
      try withMutableBytes(of: &bytes) { (raw) throws(HDF5Error) in try read(type, raw.baseAddress!, site) }
      encoded = (0..<count).map { i in Array(bytes[i * size..<(i + 1) * size].prefix { $0 != 0 }) }
    }
    var values: [String] = []
    values.reserveCapacity(count)
    for (i, e) in encoded.enumerated() {
      guard let s = String(validating: e, as: UTF8.self) else {
        throw HDF5Error(.typeMismatch, "'\(site.object)': element \(i) is not valid UTF-8", path: site.file)
      }
      values.append(s)
    }
    return HDF5Array(shape: shape, values: values)
  }
}

/// `array.withUnsafeBytes` keeping the typed error (the standard library's version rethrows `any Error`).
func withBytes<T, R>(of array: [T], _ body: (UnsafeRawBufferPointer) throws(HDF5Error) -> R) throws(HDF5Error) -> R {
  try array.withUnsafeBytes { raw in Result { () throws(HDF5Error) in try body(raw) } }.get()
}

/// `array.withUnsafeMutableBytes` keeping the typed error.
func withMutableBytes<T, R>(
  of array: inout [T], _ body: (UnsafeMutableRawBufferPointer) throws(HDF5Error) -> R
)
  throws(HDF5Error) -> R
{
  try array.withUnsafeMutableBytes { raw in Result { () throws(HDF5Error) in try body(raw) } }.get()
}
