import CHDF5

/// Numeric datasets: whole writes and reads, creation with a fill value, and block (hyperslab) writes and reads
/// for files that are filled progressively, such as a resumable measurement run.
extension HDF5File {
  /// Writes `values` as the dataset `path` with extent `shape`, creating parent groups as needed.
  ///
  /// An existing dataset with the same element type and shape is overwritten in place; any other object at
  /// `path` is unlinked first and a new dataset created (HDF5 does not reclaim the old space; `h5repack` does).
  /// - Parameters:
  ///   - values: `shape.reduce(1, *)` values, row-major.
  ///   - shape: the extent, outermost first; `[n]` for a vector, `[rows, columns]` for a matrix.
  ///   - path: where to store it, e.g. `"/error/weight"`.
  /// - Throws: `.shapeMismatch` when the count disagrees with `shape`, `.invalidArgument` for a bad path or a
  ///   read-only file.
  public func write<T: HDF5Numeric>(_ values: [T], shape: [Int], to path: String) throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      _ = try checkedElementCount(shape, values: values.count, site(path))
      let dataset = try prepareDataset(path, element: T.hdf5Kind, type: T.fileType, shape: shape, fill: nil)
      defer { H5.datasetClose(dataset) }
      try H5Data.dataset(dataset).writeNumbers(values, site(path))
    }
  }

  /// Writes a 1-D dataset of `values.count` elements; see `write(_:shape:to:)`.
  public func write<T: HDF5Numeric>(_ values: [T], to path: String) throws(HDF5Error) {
    try write(values, shape: [values.count], to: path)
  }

  /// Reads the whole dataset `path` with its shape.
  /// - Throws: `.notFound` when it does not exist, `.typeMismatch` when it does not hold `T`'s type class.
  public func read<T: HDF5Numeric>(_ path: String, as _: T.Type = T.self) throws(HDF5Error) -> HDF5Array<T> {
    try H5.locked { () throws(HDF5Error) -> HDF5Array<T> in
      try withDataset(path) { (dataset) throws(HDF5Error) in
        try H5Data.dataset(dataset).readNumbers(T.self, site(path))
      }
    }
  }

  /// Creates (or replaces, as `write` does) the dataset `path` with every element set to `fill`, to be filled
  /// later block by block with `write(_:to:start:count:)`. Unwritten elements read back as `fill`, which is
  /// how a resumed run tells measured values (say, anything but NaN) from missing ones.
  /// An existing dataset of the same type and shape is kept as it is, so reopening a run keeps its data.
  public func createDataset<T: HDF5Numeric>(_ path: String, shape: [Int], filledWith fill: T) throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      _ = try checkedProduct(shape, site(path))
      var value = fill
      let dataset = try withUnsafeBytes(of: &value) { (raw) throws(HDF5Error) in
        try prepareDataset(
          path, element: T.hdf5Kind, type: T.fileType, shape: shape, fill: (T.memoryType, raw.baseAddress!))
      }
      H5.datasetClose(dataset)
    }
  }

  /// Writes the block `start ..< start + count` of the existing dataset `path` (an HDF5 hyperslab).
  /// For a row `r` of an `[L, C]` dataset: `start: [r, 0], count: [1, C]`.
  /// - Throws: `.shapeMismatch` when the block's rank or extent does not fit the dataset, or `values.count` is not
  ///   `count.reduce(1, *)`; `.typeMismatch` when the dataset holds another type.
  public func write<T: HDF5Numeric>(_ values: [T], to path: String, start: [Int], count: [Int]) throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      try requireWritable(path)
      try withBlock(path, T.hdf5Kind, start: start, count: count, values: values.count) {
        (dataset, memory, file) throws(HDF5Error) in
        if values.isEmpty { return }
        try withBytes(of: values) { (raw) throws(HDF5Error) in
          try H5.datasetWrite(
            dataset, memoryType: T.memoryType, memorySpace: memory, fileSpace: file, raw.baseAddress!, site(path))
        }
      }
    }
  }

  /// Writes the whole row `row` of the 2-D dataset `path` (`start: [row, 0], count: [1, columns]`).
  /// - Throws: `.shapeMismatch` unless the dataset is 2-D with `values.count` columns and `row` is inside it.
  public func writeRow<T: HDF5Numeric>(_ values: [T], row: Int, to path: String) throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      let dims = try shape(of: path)
      if dims.count != 2 || dims[1] != values.count {
        throw HDF5Error(
          .shapeMismatch, "'\(path)': a row of \(values.count) values does not fit extent \(dims)", path: self.path)
      }
      try write(values, to: path, start: [row, 0], count: [1, values.count])
    }
  }

  /// Reads the block `start ..< start + count` of the dataset `path`, row-major.
  public func read<T: HDF5Numeric>(
    _ path: String, start: [Int], count: [Int], as _: T.Type = T.self
  )
    throws(HDF5Error) -> [T]
  {
    try H5.locked { () throws(HDF5Error) -> [T] in
      let n = try checkedProduct(count, site(path))
      var values = [T](unsafeUninitializedCapacity: n) { _, k in k = n }
      try withBlock(path, T.hdf5Kind, start: start, count: count, values: n) {
        (dataset, memory, file) throws(HDF5Error) in
        if n == 0 { return }
        try withMutableBytes(of: &values) { (raw) throws(HDF5Error) in
          try H5.datasetRead(
            dataset, memoryType: T.memoryType, memorySpace: memory, fileSpace: file, raw.baseAddress!, site(path))
        }
      }
      return values
    }
  }

  /// The extent of the dataset `path`, outermost first.
  public func shape(of path: String) throws(HDF5Error) -> [Int] {
    try H5.locked { () throws(HDF5Error) -> [Int] in
      try withDataset(path) { (dataset) throws(HDF5Error) in
        let space = try H5.datasetSpace(dataset, site(path))
        defer { H5.spaceClose(space) }
        return try H5.spaceDims(space, site(path))
      }
    }
  }

  /// What the dataset `path` holds.
  /// - Throws: `.typeMismatch` for a type class other than float, integer or string.
  public func elementKind(of path: String) throws(HDF5Error) -> HDF5ElementKind {
    try H5.locked { () throws(HDF5Error) -> HDF5ElementKind in
      try withDataset(path) { (dataset) throws(HDF5Error) in
        let type = try H5.datasetType(dataset, site(path))
        defer { H5.typeClose(type) }
        let c = try H5.typeClass(type, site(path))
        guard let kind = HDF5ElementKind.allCases.first(where: { $0.typeClass == c }) else {
          throw HDF5Error(.typeMismatch, "'\(path)' holds \(H5Data.describe(c))", path: self.path)
        }
        return kind
      }
    }
  }

  // MARK: - Internals (call under the lock)

  /// Opens the dataset `path` for `body` and closes it afterwards.
  func withDataset<R>(_ path: String, _ body: (hid_t) throws(HDF5Error) -> R) throws(HDF5Error) -> R {
    let name = try HDF5File.absolute(path, site(path))
    if !(try exists(name)) { throw HDF5Error(.notFound, "no dataset '\(name)'", path: self.path) }
    let dataset = try H5.datasetOpen(try handle(name), name, site(name))
    defer { H5.datasetClose(dataset) }
    return try body(dataset)
  }

  /// Opens an existing dataset of the right shape and kind, or replaces whatever is at `path` by a new one.
  /// Strings are always recreated: their stored layout may differ. Returns an open dataset the caller closes.
  func prepareDataset(
    _ path: String, element: HDF5ElementKind, type: hid_t, shape: [Int], fill: (hid_t, UnsafeRawPointer)?
  ) throws(HDF5Error) -> hid_t {
    let parts = try HDF5File.components(path, site(path))
    let name = "/" + parts.joined(separator: "/")
    if parts.isEmpty { throw HDF5Error(.invalidArgument, "a dataset cannot be the root group", path: self.path) }
    try requireWritable(name)
    try createGroups(parts.dropLast())
    let file = try handle(name)
    if try H5.linkExists(file, name, site(name)) {
      if element != .string, try kind(of: name) == .dataset {
        let dataset = try H5.datasetOpen(file, name, site(name))
        let same = try? H5Data.dataset(dataset).shape(expecting: element, site(name)) == shape
        if same == true { return dataset }
        H5.datasetClose(dataset)
      }
      try H5.linkDelete(file, name, site(name))
    }
    let space = try H5.spaceCreate(shape, site(name))
    defer { H5.spaceClose(space) }
    let creation = try H5.datasetCreationList(site(name))
    defer { H5.propertyListClose(creation) }
    if let (memoryType, value) = fill { try H5.setFillValue(creation, memoryType, value, site(name)) }
    return try H5.datasetCreate(file, name, type: type, space: space, creation: creation, site(name))
  }

  /// Opens `path`, checks the block against its extent and selects it, then calls `body(dataset, memory, file)`.
  private func withBlock(
    _ path: String, _ kind: HDF5ElementKind, start: [Int], count: [Int], values: Int,
    _ body: (hid_t, hid_t, hid_t) throws(HDF5Error) -> Void
  ) throws(HDF5Error) {
    try withDataset(path) { (dataset) throws(HDF5Error) in
      let dims = try H5Data.dataset(dataset).shape(expecting: kind, site(path))
      let fits =
        start.count == dims.count && count.count == dims.count
        && zip(zip(start, count), dims).allSatisfy { s, d in s.0 >= 0 && s.1 >= 0 && s.0 <= d && s.1 <= d - s.0 }
      if !fits {
        throw HDF5Error(
          .shapeMismatch, "'\(path)': block at \(start) of \(count) does not fit extent \(dims)", path: self.path)
      }
      _ = try checkedElementCount(count, values: values, site(path))
      let file = try H5.datasetSpace(dataset, site(path))
      defer { H5.spaceClose(file) }
      try H5.spaceSelectBlock(file, start: start, count: count, site(path))
      let memory = try H5.spaceCreate(count, site(path))
      defer { H5.spaceClose(memory) }
      try body(dataset, memory, file)
    }
  }
}
