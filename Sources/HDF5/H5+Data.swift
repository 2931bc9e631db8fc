import CHDF5

// One wrapper per C function for dataspaces, datatypes, datasets and attributes (see `H5`).
extension H5 {
  // MARK: - Dataspaces

  /// A simple dataspace of fixed extent `dims`; an empty `dims` gives a scalar dataspace (`H5Screate`).
  static func spaceCreate(_ dims: [Int], _ site: H5Site) throws(HDF5Error) -> hid_t {
    if dims.isEmpty { return try check(H5Screate(H5S_SCALAR), "H5Screate", site) }
    let extent = dims.map { hsize_t($0) }
    return try check(H5Screate_simple(Int32(extent.count), extent, nil), "H5Screate_simple", site)
  }

  /// The current extent of a dataspace, outermost first (empty for a scalar).
  static func spaceDims(_ space: hid_t, _ site: H5Site) throws(HDF5Error) -> [Int] {
    let rank = try check(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims", site)
    var dims = [hsize_t](repeating: 0, count: Int(rank))
    _ = try check(H5Sget_simple_extent_dims(space, &dims, nil), "H5Sget_simple_extent_dims", site)
    var extent: [Int] = []
    for d in dims {
      guard let i = Int(exactly: d) else {
        throw HDF5Error(.shapeMismatch, "'\(site.object)': dimension \(d) does not fit in Int", path: site.file)
      }
      extent.append(i)
    }
    _ = try checkedProduct(extent, site)
    return extent
  }

  /// Selects the block `start ..< start + count` of `space`.
  static func spaceSelectBlock(_ space: hid_t, start: [Int], count: [Int], _ site: H5Site) throws(HDF5Error) {
    let s = start.map { hsize_t($0) }
    let c = count.map { hsize_t($0) }
    _ = try check(H5Sselect_hyperslab(space, H5S_SELECT_SET, s, nil, c, nil), "H5Sselect_hyperslab", site)
  }

  static func spaceClose(_ space: hid_t) { _ = H5Sclose(space) }

  // MARK: - Datatypes

  /// A UTF-8 C-string type: variable length when `size` is nil, else `size` bytes, NUL-padded.
  static func stringType(size: Int?, _ site: H5Site) throws(HDF5Error) -> hid_t {
    let type = try check(H5Tcopy(bitplan_H5T_C_S1()), "H5Tcopy", site)
    do {
      _ = try check(H5Tset_size(type, size.map { $0 } ?? bitplan_H5T_VARIABLE()), "H5Tset_size", site)
      _ = try check(H5Tset_cset(type, H5T_CSET_UTF8), "H5Tset_cset", site)
      if size != nil { _ = try check(H5Tset_strpad(type, H5T_STR_NULLPAD), "H5Tset_strpad", site) }
    } catch {
      typeClose(type)
      throw error
    }
    return type
  }

  static func typeClass(_ type: hid_t, _ site: H5Site) throws(HDF5Error) -> H5T_class_t {
    let c = H5Tget_class(type)
    if c.rawValue < 0 { throw failure(.library, "H5Tget_class", site) }
    return c
  }

  static func typeIsVariableString(_ type: hid_t, _ site: H5Site) throws(HDF5Error) -> Bool {
    try check(H5Tis_variable_str(type), "H5Tis_variable_str", site) > 0
  }

  static func typeSize(_ type: hid_t, _ site: H5Site) throws(HDF5Error) -> Int {
    let size = H5Tget_size(type)
    if size == 0 { throw failure(.library, "H5Tget_size", site) }
    return size
  }

  static func typeClose(_ type: hid_t) { _ = H5Tclose(type) }

  // MARK: - Datasets

  static func datasetCreate(
    _ loc: hid_t, _ name: String, type: hid_t, space: hid_t, creation: hid_t, _ site: H5Site
  ) throws(HDF5Error) -> hid_t {
    try check(
      name.withCString { H5Dcreate2(loc, $0, type, space, bitplan_H5P_DEFAULT(), creation, bitplan_H5P_DEFAULT()) },
      "H5Dcreate2", site)
  }

  static func datasetOpen(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(name.withCString { H5Dopen2(loc, $0, bitplan_H5P_DEFAULT()) }, "H5Dopen2", site, .notFound)
  }

  static func datasetSpace(_ dataset: hid_t, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(H5Dget_space(dataset), "H5Dget_space", site)
  }

  static func datasetType(_ dataset: hid_t, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(H5Dget_type(dataset), "H5Dget_type", site)
  }

  static func datasetWrite(
    _ dataset: hid_t, memoryType: hid_t, memorySpace: hid_t, fileSpace: hid_t, _ buffer: UnsafeRawPointer?,
    _ site: H5Site
  ) throws(HDF5Error) {
    _ = try check(
      H5Dwrite(dataset, memoryType, memorySpace, fileSpace, bitplan_H5P_DEFAULT(), buffer), "H5Dwrite", site)
  }

  static func datasetRead(
    _ dataset: hid_t, memoryType: hid_t, memorySpace: hid_t, fileSpace: hid_t, _ buffer: UnsafeMutableRawPointer?,
    _ site: H5Site
  ) throws(HDF5Error) {
    _ = try check(
      H5Dread(dataset, memoryType, memorySpace, fileSpace, bitplan_H5P_DEFAULT(), buffer), "H5Dread", site)
  }

  /// Frees the variable-length strings that `datasetRead`/`attributeRead` allocated in `buffer`.
  static func reclaimVariableLength(_ type: hid_t, _ space: hid_t, _ buffer: UnsafeMutableRawPointer) {
    _ = H5Dvlen_reclaim(type, space, bitplan_H5P_DEFAULT(), buffer)
  }

  static func datasetClose(_ dataset: hid_t) { _ = H5Dclose(dataset) }

  // MARK: - Attributes

  static func attributeCreate(
    _ loc: hid_t, _ name: String, type: hid_t, space: hid_t, _ site: H5Site
  ) throws(HDF5Error)
    -> hid_t
  {
    try check(
      name.withCString { H5Acreate2(loc, $0, type, space, bitplan_H5P_DEFAULT(), bitplan_H5P_DEFAULT()) },
      "H5Acreate2", site)
  }

  static func attributeOpen(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(name.withCString { H5Aopen(loc, $0, bitplan_H5P_DEFAULT()) }, "H5Aopen", site, .notFound)
  }

  static func attributeExists(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) -> Bool {
    try check(name.withCString { H5Aexists(loc, $0) }, "H5Aexists", site) > 0
  }

  static func attributeDelete(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) {
    _ = try check(name.withCString { H5Adelete(loc, $0) }, "H5Adelete", site)
  }

  static func attributeSpace(_ attribute: hid_t, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(H5Aget_space(attribute), "H5Aget_space", site)
  }

  static func attributeType(_ attribute: hid_t, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(H5Aget_type(attribute), "H5Aget_type", site)
  }

  static func attributeWrite(
    _ attribute: hid_t, _ type: hid_t, _ buffer: UnsafeRawPointer, _ site: H5Site
  )
    throws(HDF5Error)
  {
    _ = try check(H5Awrite(attribute, type, buffer), "H5Awrite", site)
  }

  static func attributeRead(
    _ attribute: hid_t, _ type: hid_t, _ buffer: UnsafeMutableRawPointer, _ site: H5Site
  )
    throws(HDF5Error)
  {
    _ = try check(H5Aread(attribute, type, buffer), "H5Aread", site)
  }

  /// Names of the attributes of `loc`, in increasing name order (`H5Aiterate2`).
  static func attributeNames(_ loc: hid_t, _ site: H5Site) throws(HDF5Error) -> [String] {
    let collect: H5A_operator2_t = { _, name, _, data in
      guard let name, let data else { return -1 }
      data.assumingMemoryBound(to: [String].self).pointee.append(String(cString: name))
      return 0
    }
    var names: [String] = []
    let status = withUnsafeMutablePointer(to: &names) { H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, nil, collect, $0) }
    _ = try check(status, "H5Aiterate2", site)
    return names
  }

  static func attributeClose(_ attribute: hid_t) { _ = H5Aclose(attribute) }
}
