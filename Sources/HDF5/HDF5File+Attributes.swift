import CHDF5

/// Attributes on the file's root group, on groups and on datasets: scalars and 1-D arrays of `Double`, `Int64`
/// and strings. Setting an attribute that exists replaces it.
extension HDF5File {
  /// Sets the scalar attribute `name` on the object `path` (`"/"`: the file's root group).
  public func setAttribute<T: HDF5Numeric>(_ name: String, _ value: T, on path: String = "/") throws(HDF5Error) {
    try setAttribute(name, on: path, type: T.fileType, shape: []) { (a) throws(HDF5Error) in
      try a.writeNumbers([value], site(path))
    }
  }

  /// Sets the 1-D array attribute `name` on the object `path`.
  public func setAttribute<T: HDF5Numeric>(_ name: String, _ values: [T], on path: String = "/") throws(HDF5Error) {
    try setAttribute(name, on: path, type: T.fileType, shape: [values.count]) { (a) throws(HDF5Error) in
      try a.writeNumbers(values, site(path))
    }
  }

  /// Sets the scalar string attribute `name` (variable-length UTF-8) on the object `path`.
  /// - Throws: `.invalidArgument` when `value` contains NUL.
  public func setAttribute(_ name: String, _ value: String, on path: String = "/") throws(HDF5Error) {
    try setStrings(name, [value], shape: [], on: path)
  }

  /// Sets the 1-D string array attribute `name` (variable-length UTF-8) on the object `path`.
  public func setAttribute(_ name: String, _ values: [String], on path: String = "/") throws(HDF5Error) {
    try setStrings(name, values, shape: [values.count], on: path)
  }

  /// The numeric attribute `name` of `path`, which must hold exactly one value.
  /// - Throws: `.notFound`, `.typeMismatch`, or `.shapeMismatch` when it holds several values.
  public func attribute<T: HDF5Numeric>(
    _ name: String, on path: String = "/", as _: T.Type = T.self
  )
    throws(HDF5Error) -> T
  {
    let array = try attributeValues(name, on: path, as: T.self)
    guard array.values.count == 1 else {
      throw HDF5Error(.shapeMismatch, "attribute '\(name)' of '\(path)' has shape \(array.shape)", path: self.path)
    }
    return array.values[0]
  }

  /// All values of the numeric attribute `name` of `path`, with its shape (`[]` for a scalar).
  public func attributeValues<T: HDF5Numeric>(
    _ name: String, on path: String = "/", as _: T.Type = T.self
  )
    throws(HDF5Error) -> HDF5Array<T>
  {
    try withAttribute(name, on: path) { (a) throws(HDF5Error) in try a.readNumbers(T.self, site("\(path)@\(name)")) }
  }

  /// The string attribute `name` of `path`, which must hold exactly one string.
  public func stringAttribute(_ name: String, on path: String = "/") throws(HDF5Error) -> String {
    let array = try stringAttributeValues(name, on: path)
    guard array.values.count == 1 else {
      throw HDF5Error(.shapeMismatch, "attribute '\(name)' of '\(path)' has shape \(array.shape)", path: self.path)
    }
    return array.values[0]
  }

  /// All strings of the string attribute `name` of `path`, with its shape.
  public func stringAttributeValues(_ name: String, on path: String = "/") throws(HDF5Error) -> HDF5Array<String> {
    try withAttribute(name, on: path) { (a) throws(HDF5Error) in try a.readStrings(site("\(path)@\(name)")) }
  }

  /// Names of the attributes of `path`, in increasing byte order.
  public func attributeNames(on path: String = "/") throws(HDF5Error) -> [String] {
    try H5.locked { () throws(HDF5Error) -> [String] in
      try withObject(path) { (object) throws(HDF5Error) in try H5.attributeNames(object, site(path)) }
    }
  }

  /// Whether `path` has the attribute `name`.
  public func hasAttribute(_ name: String, on path: String = "/") throws(HDF5Error) -> Bool {
    try H5.locked { () throws(HDF5Error) -> Bool in
      try withObject(path) { (object) throws(HDF5Error) in try H5.attributeExists(object, name, site(path)) }
    }
  }

  /// Removes the attribute `name` of `path`.
  /// - Throws: `.notFound` when there is no such attribute.
  public func deleteAttribute(_ name: String, on path: String = "/") throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      try requireWritable(path)
      try withObject(path) { (object) throws(HDF5Error) in
        if !(try H5.attributeExists(object, name, site(path))) {
          throw HDF5Error(.notFound, "'\(path)' has no attribute '\(name)'", path: self.path)
        }
        try H5.attributeDelete(object, name, site(path))
      }
    }
  }

  // MARK: - Internals

  private func setStrings(_ name: String, _ values: [String], shape: [Int], on path: String) throws(HDF5Error) {
    try HDF5File.checkNoNUL(values, site("\(path)@\(name)"))
    let type = try H5.locked { () throws(HDF5Error) in try H5.stringType(size: nil, site(path)) }
    defer { H5.lockedQuietly { H5.typeClose(type) } }
    try setAttribute(name, on: path, type: type, shape: shape) { (a) throws(HDF5Error) in
      try a.writeStrings(values, layout: .variableLength, site(path))
    }
  }

  /// Opens the group or dataset `path` (the root for `"/"`) for `body`.
  private func withObject<R>(_ path: String, _ body: (hid_t) throws(HDF5Error) -> R) throws(HDF5Error) -> R {
    let name = try HDF5File.absolute(path, site(path))
    if !(try exists(name)) { throw HDF5Error(.notFound, "no object '\(name)'", path: self.path) }
    let object = try H5.objectOpen(try handle(name), name, site(name))
    defer { H5.objectClose(object) }
    return try body(object)
  }

  /// Replaces the attribute `name` of `path` by a new one of `type` and `shape`, filled by `write`.
  private func setAttribute(
    _ name: String, on path: String, type: hid_t, shape: [Int], _ write: (H5Data) throws(HDF5Error) -> Void
  ) throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      try requireWritable(path)
      if name.isEmpty || name.utf8.contains(0) {
        throw HDF5Error(.invalidArgument, "bad attribute name '\(name)' on '\(path)'", path: self.path)
      }
      try withObject(path) { (object) throws(HDF5Error) in
        if try H5.attributeExists(object, name, site(path)) { try H5.attributeDelete(object, name, site(path)) }
        let space = try H5.spaceCreate(shape, site(path))
        defer { H5.spaceClose(space) }
        let attribute = try H5.attributeCreate(object, name, type: type, space: space, site("\(path)@\(name)"))
        defer { H5.attributeClose(attribute) }
        try write(.attribute(attribute))
      }
    }
  }

  /// Opens the attribute `name` of `path` for `body`, under the lock.
  private func withAttribute<R>(
    _ name: String, on path: String, _ body: (H5Data) throws(HDF5Error) -> R
  )
    throws(HDF5Error) -> R
  {
    try H5.locked { () throws(HDF5Error) -> R in
      try withObject(path) { (object) throws(HDF5Error) in
        if !(try H5.attributeExists(object, name, site(path))) {
          throw HDF5Error(.notFound, "'\(path)' has no attribute '\(name)'", path: self.path)
        }
        let attribute = try H5.attributeOpen(object, name, site("\(path)@\(name)"))
        defer { H5.attributeClose(attribute) }
        return try body(.attribute(attribute))
      }
    }
  }
}
