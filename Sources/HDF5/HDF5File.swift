import CHDF5

/// An open HDF5 file: groups, datasets of `Double`/`Int64`/UTF-8 strings, and attributes, addressed by path.
///
/// Objects inside the file are named by slash-separated paths (`"/hessian/trace"`; the leading slash is optional).
/// Every group, dataset, dataspace, datatype and attribute handle is opened and closed inside one method call, so
/// the only handle that lives longer is the file's own, closed by `close()` or at the latest by `deinit`.
///
/// Thread safety: HDF5 1.10 is not reliably thread-safe, so every method holds one process-wide lock while it
/// calls the library (see `H5`). Instances may be shared between threads; calls are serialized.
///
/// ```swift
/// try HDF5File.withFile("run.h5", mode: .create) { file in
///   try file.write([1.5, 2.5], shape: [2], to: "/weights/variance")
///   try file.setAttribute("format_version", Int64(1))
/// }
/// ```
public final class HDF5File: @unchecked Sendable {
  /// How to open a file.
  public enum Mode: String, Sendable, CaseIterable {
    /// Create the file, truncating an existing one.
    case create
    /// Open an existing file for reading only.
    case readOnly
    /// Open an existing file for reading and writing.
    case readWrite
  }

  /// What a path inside the file names.
  public enum ObjectKind: String, Sendable {
    case group, dataset, other
  }

  /// The file on disk.
  public let path: String
  /// How it was opened.
  public let mode: Mode
  /// The file identifier; negative once closed. Only read and written under the global lock.
  private var id: hid_t

  /// Creates or opens `path`.
  /// - Parameter userBlockSize: for `.create`, bytes reserved at the start of the file for the caller (0, or a
  ///   power of two ≥ 512); HDF5 puts its superblock after them and never touches them. Ignored when opening.
  /// - Throws: `.notHDF5` when an existing file has no HDF5 signature, `.io` when it cannot be created or opened.
  public init(path: String, mode: Mode, userBlockSize: Int = 0) throws(HDF5Error) {
    self.path = path
    self.mode = mode
    let site = H5Site(file: path, object: "/")
    id = try H5.locked { () throws(HDF5Error) -> hid_t in
      if mode == .create { return try H5.fileCreate(path, userBlockSize: userBlockSize, site) }
      if !(try H5.fileIsHDF5(path, site)) {
        throw HDF5Error(.notHDF5, "no HDF5 signature; this is not an HDF5 file", path: path)
      }
      return try H5.fileOpen(path, writable: mode == .readWrite, site)
    }
  }

  deinit {
    let file = id
    if file >= 0 { H5.lockedQuietly { try? H5.fileClose(file, H5Site(file: nil, object: "/")) } }
  }

  /// Opens `path`, runs `body`, and closes the file whether `body` returns or throws.
  /// - Throws: what opening, `body` or closing throws.
  public static func withFile<R>(
    _ path: String, mode: Mode, userBlockSize: Int = 0, _ body: (HDF5File) throws -> R
  ) throws -> R {
    let file = try HDF5File(path: path, mode: mode, userBlockSize: userBlockSize)
    let result: R
    do { result = try body(file) } catch {
      try? file.close()
      throw error
    }
    try file.close()
    return result
  }

  /// Closes the file. Later calls on this instance throw `.invalidArgument`; closing twice is allowed.
  public func close() throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      if id < 0 { return }
      let file = id
      id = -1
      try H5.fileClose(file, site("/"))
    }
  }

  /// Writes HDF5's buffered data and metadata to disk (`H5Fflush`). A resumable writer flushes after each unit
  /// of work, so that an interrupted run finds everything up to its last flush; a crash in the middle of a later
  /// write can still damage what that write touches, which is why finished files are renamed into place.
  public func flush() throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in try H5.fileFlush(try handle("/"), site("/")) }
  }

  // MARK: - Groups and links

  /// Creates the group `path` and any missing parents; existing groups are kept.
  /// - Throws: `.typeMismatch` when a component exists but is not a group.
  public func createGroup(_ path: String) throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in try createGroups(HDF5File.components(path, site(path))) }
  }

  /// Whether `path` names an existing object (the root always exists).
  /// A path that runs through a dataset (`/dataset/x`) does not exist.
  public func exists(_ path: String) throws(HDF5Error) -> Bool {
    try H5.locked { () throws(HDF5Error) -> Bool in
      let file = try handle(path)
      let parts = try HDF5File.components(path, site(path))
      var prefix = ""
      for (i, c) in parts.enumerated() {
        prefix += "/" + c
        if !(try H5.linkExists(file, prefix, site(prefix))) { return false }
        if i < parts.count - 1, try kind(of: prefix) != .group { return false }
      }
      return true
    }
  }

  /// Whether `path` is a group or a dataset.
  /// - Throws: `.notFound` when it does not exist.
  public func kind(of path: String) throws(HDF5Error) -> ObjectKind {
    try H5.locked { () throws(HDF5Error) -> ObjectKind in
      let object = try H5.objectOpen(try handle(path), HDF5File.absolute(path, site(path)), site(path))
      defer { H5.objectClose(object) }
      switch H5.identifierType(object) {
      case H5I_GROUP: return .group
      case H5I_DATASET: return .dataset
      default: return .other
      }
    }
  }

  /// Names (not paths) of the links in the group `path`, in increasing byte order.
  /// - Throws: `.notFound` when the group does not exist.
  public func members(of path: String = "/") throws(HDF5Error) -> [String] {
    try H5.locked { () throws(HDF5Error) -> [String] in
      let group = try H5.groupOpen(try handle(path), HDF5File.absolute(path, site(path)), site(path))
      defer { H5.groupClose(group) }
      return try (0..<H5.groupLinkCount(group, site(path))).map { (i) throws(HDF5Error) in
        try H5.linkName(group, at: i, site(path))
      }
    }
  }

  /// Removes the link `path` (a dataset or a whole group). HDF5 does not reclaim the space inside the file;
  /// `h5repack` does.
  /// - Throws: `.notFound` when it does not exist.
  public func delete(_ path: String) throws(HDF5Error) {
    try H5.locked { () throws(HDF5Error) in
      try requireWritable(path)
      if !(try exists(path)) { throw HDF5Error(.notFound, "'\(path)' does not exist", path: self.path) }
      try H5.linkDelete(try handle(path), HDF5File.absolute(path, site(path)), site(path))
    }
  }

  // MARK: - Internals shared by the extensions (call under the lock)

  func site(_ object: String) -> H5Site { H5Site(file: path, object: object) }

  /// The open file identifier, or `.invalidArgument` after `close()`.
  func handle(_ object: String) throws(HDF5Error) -> hid_t {
    if id < 0 { throw HDF5Error(.invalidArgument, "'\(object)': the file is closed", path: path) }
    return id
  }

  func requireWritable(_ object: String) throws(HDF5Error) {
    if mode == .readOnly {
      throw HDF5Error(.invalidArgument, "'\(object)': the file is open read-only; open it with .readWrite", path: path)
    }
  }

  /// Creates every missing group along `components`.
  func createGroups(_ components: some Collection<String>) throws(HDF5Error) {
    let file = try handle("/")
    var prefix = ""
    for c in components {
      prefix += "/" + c
      if try H5.linkExists(file, prefix, site(prefix)) {
        if try kind(of: prefix) != .group {
          throw HDF5Error(.typeMismatch, "'\(prefix)' exists and is not a group", path: path)
        }
      } else {
        try requireWritable(prefix)
        H5.groupClose(try H5.groupCreate(file, prefix, site(prefix)))
      }
    }
  }

  /// The components of `path`; empty for the root.
  /// - Throws: `.invalidArgument` for empty components inside the path, `.`, `..` or a NUL byte.
  static func components(_ path: String, _ site: H5Site) throws(HDF5Error) -> [String] {
    var parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    if parts.first == "" { parts.removeFirst() }
    if parts.last == "" { parts.removeLast() }
    for p in parts where p.isEmpty || p == "." || p == ".." || p.utf8.contains(0) {
      throw HDF5Error(.invalidArgument, "bad object path '\(path)'", path: site.file)
    }
    return parts
  }

  /// `path` in the canonical form `/a/b` (`/` for the root).
  static func absolute(_ path: String, _ site: H5Site) throws(HDF5Error) -> String {
    "/" + (try components(path, site)).joined(separator: "/")
  }
}
