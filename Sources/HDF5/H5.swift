import CHDF5
import Foundation

/// Where a C call happens, for error messages: the file and the object inside it.
struct H5Site {
  var file: String?
  var object: String
}

/// The only caller of the HDF5 C API: one static function per C function used, each turning a negative
/// `herr_t`/`hid_t`/`htri_t` into an `HDF5Error` that names the function, the object and HDF5's own description.
///
/// HDF5 1.10 is not safe to call from several threads at once unless built thread-safe, and even then its error
/// stack and `H5Eset_auto` setting are per thread. So every public entry point of this module runs inside
/// `locked`, which holds one process-wide recursive lock and switches automatic error printing off for the
/// calling thread. Close functions ignore failures: they run in `defer` blocks, where nothing can be thrown.
enum H5 {
  /// Serializes every call into the library (see the type's documentation).
  private static let lock = NSRecursiveLock()

  /// Runs `body` holding the global lock, with HDF5's automatic error-stack printing off for this thread.
  static func locked<R>(_ body: () throws(HDF5Error) -> R) throws(HDF5Error) -> R {
    lock.lock()
    defer { lock.unlock() }
    _ = H5Eset_auto2(bitplan_H5E_DEFAULT(), nil, nil)
    return try body()
  }

  /// `locked` for bodies that cannot fail (deinitializers).
  static func lockedQuietly(_ body: () -> Void) {
    lock.lock()
    defer { lock.unlock() }
    _ = H5Eset_auto2(bitplan_H5E_DEFAULT(), nil, nil)
    body()
  }

  /// `lockedQuietly` returning a value.
  static func lockedQuietly<R>(returning body: () -> R) -> R {
    lock.lock()
    defer { lock.unlock() }
    _ = H5Eset_auto2(bitplan_H5E_DEFAULT(), nil, nil)
    return body()
  }

  // MARK: - Errors

  /// HDF5's descriptions on the current error stack, innermost first (at most three), then clears the stack.
  static func stackDescription() -> String {
    let walker: H5E_walk2_t = { _, entry, data in
      guard let entry, let data, let desc = entry.pointee.desc else { return 0 }
      let parts = data.assumingMemoryBound(to: [String].self)
      // Some descriptions embed ctime(3) output, which ends in a newline: keep messages on one line.
      let text = String(cString: desc).split(whereSeparator: \.isNewline).joined(separator: " ")
      if !text.isEmpty, !parts.pointee.contains(text) { parts.pointee.append(text) }
      return 0
    }
    var parts: [String] = []
    _ = withUnsafeMutablePointer(to: &parts) { H5Ewalk2(bitplan_H5E_DEFAULT(), H5E_WALK_UPWARD, walker, $0) }
    _ = H5Eclear2(bitplan_H5E_DEFAULT())
    return parts.isEmpty ? "no HDF5 error description" : parts.prefix(3).joined(separator: "; ")
  }

  /// The error for a failed call of `function` at `site`.
  static func failure(_ code: HDF5Error.Code, _ function: String, _ site: H5Site) -> HDF5Error {
    HDF5Error(code, "\(function) failed for '\(site.object)': \(stackDescription())", path: site.file)
  }

  /// `value` unless it is negative, which becomes `failure(code, function, site)`.
  static func check<T: BinaryInteger>(
    _ value: T, _ function: String, _ site: H5Site, _ code: HDF5Error.Code = .library
  ) throws(HDF5Error) -> T {
    if value < 0 { throw failure(code, function, site) }
    return value
  }

  // MARK: - Files

  /// `H5Fcreate`, truncating; `userBlockSize` bytes at the start of the file are left to the caller (0, or a
  /// power of two ≥ 512; `H5Pset_userblock`).
  static func fileCreate(_ path: String, userBlockSize: Int = 0, _ site: H5Site) throws(HDF5Error) -> hid_t {
    var creation = bitplan_H5P_DEFAULT()
    if userBlockSize > 0 {
      creation = try check(H5Pcreate(bitplan_H5P_FILE_CREATE()), "H5Pcreate", site)
      if H5Pset_userblock(creation, hsize_t(userBlockSize)) < 0 {
        let error = failure(.invalidArgument, "H5Pset_userblock", site)
        propertyListClose(creation)
        throw error
      }
    }
    defer { if creation != bitplan_H5P_DEFAULT() { propertyListClose(creation) } }
    return try check(
      path.withCString { H5Fcreate($0, bitplan_H5F_ACC_TRUNC(), creation, bitplan_H5P_DEFAULT()) },
      "H5Fcreate", site, .io)
  }

  static func fileOpen(_ path: String, writable: Bool, _ site: H5Site) throws(HDF5Error) -> hid_t {
    let flags = writable ? bitplan_H5F_ACC_RDWR() : bitplan_H5F_ACC_RDONLY()
    return try check(path.withCString { H5Fopen($0, flags, bitplan_H5P_DEFAULT()) }, "H5Fopen", site, .io)
  }

  /// Whether `path` has an HDF5 signature; throws `.io` when it cannot be read at all.
  static func fileIsHDF5(_ path: String, _ site: H5Site) throws(HDF5Error) -> Bool {
    try check(path.withCString { H5Fis_hdf5($0) }, "H5Fis_hdf5", site, .io) > 0
  }

  static func fileFlush(_ file: hid_t, _ site: H5Site) throws(HDF5Error) {
    _ = try check(H5Fflush(file, H5F_SCOPE_GLOBAL), "H5Fflush", site, .io)
  }

  static func fileClose(_ file: hid_t, _ site: H5Site) throws(HDF5Error) {
    _ = try check(H5Fclose(file), "H5Fclose", site, .io)
  }

  // MARK: - Groups, links, objects

  static func groupCreate(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(
      name.withCString { H5Gcreate2(loc, $0, bitplan_H5P_DEFAULT(), bitplan_H5P_DEFAULT(), bitplan_H5P_DEFAULT()) },
      "H5Gcreate2", site)
  }

  static func groupOpen(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(name.withCString { H5Gopen2(loc, $0, bitplan_H5P_DEFAULT()) }, "H5Gopen2", site, .notFound)
  }

  static func groupClose(_ group: hid_t) { _ = H5Gclose(group) }

  /// Number of links in a group (`H5Gget_info`).
  static func groupLinkCount(_ group: hid_t, _ site: H5Site) throws(HDF5Error) -> Int {
    var info = H5G_info_t()
    _ = try check(H5Gget_info(group, &info), "H5Gget_info", site)
    return Int(info.nlinks)
  }

  /// Whether the link `name` exists in `loc`; every parent of `name` must exist.
  static func linkExists(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) -> Bool {
    try check(name.withCString { H5Lexists(loc, $0, bitplan_H5P_DEFAULT()) }, "H5Lexists", site) > 0
  }

  static func linkDelete(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) {
    _ = try check(name.withCString { H5Ldelete(loc, $0, bitplan_H5P_DEFAULT()) }, "H5Ldelete", site)
  }

  /// Name of the `index`-th link of `group`, in increasing name order.
  static func linkName(_ group: hid_t, at index: Int, _ site: H5Site) throws(HDF5Error) -> String {
    let length = try check(
      H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), nil, 0, bitplan_H5P_DEFAULT()),
      "H5Lget_name_by_idx", site)
    var buffer = [CChar](repeating: 0, count: Int(length) + 1)
    _ = try check(
      H5Lget_name_by_idx(
        group, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), &buffer, buffer.count, bitplan_H5P_DEFAULT()),
      "H5Lget_name_by_idx", site)
    return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  static func objectOpen(_ loc: hid_t, _ name: String, _ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(name.withCString { H5Oopen(loc, $0, bitplan_H5P_DEFAULT()) }, "H5Oopen", site, .notFound)
  }

  static func objectClose(_ object: hid_t) { _ = H5Oclose(object) }

  /// The kind of an open identifier (`H5I_GROUP`, `H5I_DATASET`, ...).
  static func identifierType(_ id: hid_t) -> H5I_type_t { H5Iget_type(id) }

  // MARK: - Property lists

  static func datasetCreationList(_ site: H5Site) throws(HDF5Error) -> hid_t {
    try check(H5Pcreate(bitplan_H5P_DATASET_CREATE()), "H5Pcreate", site)
  }

  static func setFillValue(_ list: hid_t, _ type: hid_t, _ value: UnsafeRawPointer, _ site: H5Site) throws(HDF5Error) {
    _ = try check(H5Pset_fill_value(list, type, value), "H5Pset_fill_value", site)
  }

  static func propertyListClose(_ list: hid_t) { _ = H5Pclose(list) }
}
