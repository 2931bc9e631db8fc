import CHDF5

/// String datasets, stored as UTF-8 C strings in either layout (`HDF5StringLayout`).
extension HDF5File {
  /// Writes `strings` as the dataset `path`, replacing whatever is there and creating parent groups.
  /// - Parameters:
  ///   - strings: the values, row-major; none may contain a NUL character.
  ///   - shape: the extent; `nil` means `[strings.count]`.
  ///   - layout: variable length (the default, as h5py writes `str`) or fixed length.
  /// - Throws: `.invalidArgument` for a NUL inside a string, `.shapeMismatch` when the count disagrees with `shape`.
  public func write(
    _ strings: [String], shape: [Int]? = nil, to path: String, layout: HDF5StringLayout = .variableLength
  ) throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      let shape = shape ?? [strings.count]
      _ = try checkedElementCount(shape, values: strings.count, site(path))
      try HDF5File.checkNoNUL(strings, site(path))
      let type = try H5.stringType(size: layout == .fixedLength ? H5Data.fixedSize(strings) : nil, site(path))
      defer { H5.typeClose(type) }
      let dataset = try prepareDataset(path, element: .string, type: type, shape: shape, fill: nil)
      defer { H5.datasetClose(dataset) }
      try H5Data.dataset(dataset).writeStrings(strings, layout: layout, site(path))
    }
  }

  /// Reads the string dataset `path` (either layout) with its shape.
  /// - Throws: `.notFound` when it does not exist, `.typeMismatch` when it holds numbers or invalid UTF-8.
  public func readStrings(_ path: String) throws(HDF5Error) -> HDF5Array<String> {
    try H5.locked { () throws(HDF5Error) -> HDF5Array<String> in
      try withDataset(path) { (dataset) throws(HDF5Error) in try H5Data.dataset(dataset).readStrings(site(path)) }
    }
  }

  /// Throws `.invalidArgument` when a string contains NUL, which a C string cannot hold.
  static func checkNoNUL(_ strings: [String], _ site: H5Site) throws(HDF5Error) {
    if let i = strings.firstIndex(where: { $0.utf8.contains(0) }) {
      throw HDF5Error(.invalidArgument, "'\(site.object)': string \(i) contains a NUL character", path: site.file)
    }
  }
}
