import CKernels
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An input or output path that a command refuses before any work: an output naming one of its inputs, a folder, a
/// device; a missing input; two outputs that are one file.
///
/// `description` is one line that names the option and the path: `-o 'run.h5': is also the input RUN.h5`.
public struct FileCheckError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong; the command line maps each code to an exit status.
  public enum Code: String, Sendable, CaseIterable {
    /// An input file or folder that does not exist or cannot be read.
    case missingInput
    /// An input that is a folder where a file is needed, or a device, FIFO or socket.
    case notAFile
    /// An output that would overwrite one of the command's inputs.
    case outputIsInput
    /// Two outputs of one command that are the same file.
    case duplicateOutput
    /// An output path that names a folder, a device, a FIFO, a socket or a broken link, or whose folder is
    /// missing or not writable.
    case cannotCreate
    /// Writing or renaming the output failed (disk full, permissions changed while the command ran).
    case writeFailed
  }

  /// What went wrong.
  public var code: Code
  /// The option the user wrote (`-o`, `--frontier`, `--calib`), or `MODEL` for a positional argument.
  public var option: String
  /// The path as the user wrote it.
  public var path: String
  /// What is wrong, in the user's words.
  public var message: String

  /// Creates an error.
  public init(_ code: Code, option: String, path: String, _ message: String) {
    self.code = code
    self.option = option
    self.path = path
    self.message = message
  }

  /// `option 'path': message`.
  public var description: String { "\(option) '\(path)': \(message)" }
}

/// A path a command reads, named by the option that gave it.
public struct InputPath: Sendable, Equatable {
  /// `--calib`, `MODEL`, …
  public var option: String
  /// As the user wrote it.
  public var path: String
  /// Whether a folder is what the option expects (a Hugging Face model folder); otherwise it must be a file.
  public var allowsFolder: Bool

  /// An input path.
  public init(option: String, path: String, allowsFolder: Bool = false) {
    self.option = option
    self.path = path
    self.allowsFolder = allowsFolder
  }
}

/// A path a command writes, named by the option that gave it.
public struct OutputPath: Sendable, Equatable {
  /// `-o`, `--frontier`, …
  public var option: String
  /// As the user wrote it.
  public var path: String

  /// An output path.
  public init(option: String, path: String) {
    self.option = option
    self.path = path
  }
}

/// The one place that decides whether a command may read and write the paths it was given, and how an output is
/// put in place.
///
/// Rules (checked by `check(inputs:outputs:)` before any work):
/// - every input exists, is readable, and is a regular file (or a folder where the option takes one);
/// - no output is, by device and inode, an input or a file inside an input folder (hard and symbolic links
///   included), and no two outputs resolve to one file;
/// - an output is a regular file or absent (never a folder, device, FIFO, socket or broken link), in a folder that
///   exists and is writable.
///
/// `write(_:to:)` then writes a temporary file beside the target, created exclusively, and renames it over the
/// target only when the target is (still) a regular file or absent; the check is repeated right before the rename.
public enum FileChecks {
  /// Checks every input and output. See the type's rules.
  /// - Throws: `FileCheckError` for the first rule broken, naming the option and the path.
  public static func check(inputs: [InputPath], outputs: [OutputPath]) throws(FileCheckError) {
    var inputIdentities: [FileIdentity: InputPath] = [:]
    for input in inputs {
      let info = try checkInput(input)
      inputIdentities[info.identity] = input
      if info.isFolder {
        // A model folder: every file in it is an input too (config.json, shards, tokenizer.json).
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: input.path)) ?? []
        for entry in entries {
          if let id = FileIdentity(path: input.path + "/" + entry) { inputIdentities[id] = input }
        }
      }
    }
    var seen: [String: OutputPath] = [:]
    var seenIdentities: [FileIdentity: OutputPath] = [:]
    for output in outputs {
      let resolved = try checkOutput(output)
      if let id = FileIdentity(path: output.path) {
        if let input = inputIdentities[id] {
          throw FileCheckError(
            .outputIsInput, option: output.option, path: output.path,
            "is also the input \(input.option) '\(input.path)'; write the output to another file")
        }
        if let other = seenIdentities[id] {
          throw duplicate(output, other)
        }
        seenIdentities[id] = output
      }
      if let other = seen[resolved] { throw duplicate(output, other) }
      seen[resolved] = output
    }
  }

  private static func duplicate(_ output: OutputPath, _ other: OutputPath) -> FileCheckError {
    FileCheckError(
      .duplicateOutput, option: output.option, path: output.path,
      "is the same file as \(other.option) '\(other.path)'; give each output its own path")
  }

  /// Checks one input; returns its identity and whether it is a folder.
  static func checkInput(_ input: InputPath) throws(FileCheckError) -> (identity: FileIdentity, isFolder: Bool) {
    var st = stat()
    guard !input.path.isEmpty, stat(input.path, &st) == 0 else {
      let reason = input.path.isEmpty ? "is empty" : String(cString: strerror(errno))
      throw FileCheckError(.missingInput, option: input.option, path: input.path, "cannot be read: \(reason)")
    }
    let kind = st.st_mode & S_IFMT
    if kind == S_IFDIR {
      guard input.allowsFolder else {
        throw FileCheckError(.notAFile, option: input.option, path: input.path, "is a folder, not a file")
      }
    } else if kind != S_IFREG {
      throw FileCheckError(
        .notAFile, option: input.option, path: input.path, "is \(describe(kind)), not a regular file")
    }
    guard access(input.path, R_OK) == 0 else {
      throw FileCheckError(
        .missingInput, option: input.option, path: input.path, "cannot be read: \(String(cString: strerror(errno)))")
    }
    return (FileIdentity(st), kind == S_IFDIR)
  }

  /// Checks that one input is a readable regular file (or folder, when allowed).
  /// - Throws: `.missingInput` or `.notAFile`.
  public static func checkInput(option: String, path: String, allowsFolder: Bool = false) throws(FileCheckError) {
    _ = try checkInput(InputPath(option: option, path: path, allowsFolder: allowsFolder))
  }

  /// Checks one output on its own and returns its resolved absolute path (the final symbolic link followed).
  @discardableResult
  public static func checkOutput(_ output: OutputPath) throws(FileCheckError) -> String {
    func refuse(_ message: String) -> FileCheckError {
      FileCheckError(.cannotCreate, option: output.option, path: output.path, message)
    }
    let path = output.path
    if path.isEmpty { throw refuse("is empty") }
    if path.hasSuffix("/") { throw refuse("names a folder; give a file name") }
    var link = stat()
    if lstat(path, &link) == 0 {
      var st = stat()
      guard stat(path, &st) == 0 else { throw refuse("is a broken symbolic link") }
      let kind = st.st_mode & S_IFMT
      if kind == S_IFDIR { throw refuse("is a folder; give a file name") }
      if kind != S_IFREG { throw refuse("is \(describe(kind)), not a regular file; refusing to replace it") }
    }
    let target = resolvedTarget(path)
    let folder = split(target).folder
    var st = stat()
    guard stat(folder.isEmpty ? "." : folder, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
      throw refuse("its folder '\(folder)' does not exist")
    }
    guard access(folder.isEmpty ? "." : folder, W_OK) == 0 else {
      throw refuse("its folder '\(folder)' is not writable")
    }
    return target
  }

  /// The absolute path that writing `path` replaces: symbolic links resolved (the link itself is kept and the file
  /// it names is replaced), the folder made absolute.
  /// `path` split at its last `/` into the folder and the name: `("x", "a")` for `x/a`, `("", "a")` for `a`,
  /// `("/", "a")` for `/a`; trailing slashes are dropped first. What `NSString`'s `deletingLastPathComponent` and
  /// `lastPathComponent` give, without them: Foundation on Linux (Swift 6.3) traps on a one-character path such as
  /// `a` (SIGILL in `String._startOfLastPathComponent`), which `-o a` reached.
  public static func split(_ path: String) -> (folder: String, name: String) {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return ("", String(p)) }
    let name = String(p[p.index(after: slash)...])
    if name.isEmpty { return ("/", "/") }
    return (slash == p.startIndex ? "/" : String(p[..<slash]), name)
  }

  public static func resolvedTarget(_ path: String) -> String {
    if let real = realpath(path, nil) {
      defer { free(real) }
      return String(cString: real)
    }
    let (folder, name) = split(path)
    if let real = realpath(folder.isEmpty ? "." : folder, nil) {
      defer { free(real) }
      let base = String(cString: real)
      return (base == "/" ? "" : base) + "/" + name
    }
    return path
  }

  /// Writes `bytes` to a temporary file beside `path` and renames it over `path` (see `replace(_:with:)`).
  /// - Parameter option: the option that named the path, for messages.
  /// - Throws: `.cannotCreate` when the target has become a folder or device, `.writeFailed` when writing fails;
  ///   the temporary file is removed and the target left as it was.
  public static func write(_ bytes: some DataProtocol, to path: String, option: String = "-o") throws(FileCheckError) {
    let target = resolvedTarget(path)
    let (temporary, descriptor) = try createTemporary(beside: target, option: option, path: path)
    var ok = true
    for region in bytes.regions where ok {
      ok = region.withUnsafeBytes { writeAll(descriptor, $0) }
    }
    let reason = ok ? "" : String(cString: strerror(errno))
    if close(descriptor) != 0 && ok { ok = false }
    guard ok else {
      unlink(temporary)
      throw FileCheckError(.writeFailed, option: option, path: path, "cannot write: \(reason)")
    }
    try replace(target, with: temporary, option: option, path: path)
  }

  /// Creates an empty temporary file beside `target` with a name nothing else uses (`O_EXCL`), mode 0644.
  /// - Returns: its path and an open descriptor for writing.
  public static func createTemporary(beside target: String, option: String, path: String) throws(FileCheckError)
    -> (path: String, descriptor: Int32)
  {
    let (folder, name) = split(target)
    removeAbandonedTemporaries(in: folder, of: name)
    for attempt in 0..<100 {
      let candidate = (folder.isEmpty ? "" : folder + "/") + ".\(name).\(getpid())-\(attempt).tmp"
      let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
      if fd >= 0 {
        bp_temporary_register(candidate)  // removed if SIGINT/SIGTERM/SIGHUP ends the command before the rename
        return (candidate, fd)
      }
      if errno != EEXIST {
        throw FileCheckError(
          .cannotCreate, option: option, path: path,
          "cannot create a temporary file in '\(folder)': \(String(cString: strerror(errno)))")
      }
    }
    throw FileCheckError(.cannotCreate, option: option, path: path, "cannot find a free temporary name in '\(folder)'")
  }

  /// Makes SIGINT, SIGTERM and SIGHUP (those not ignored) remove the temporaries `createTemporary` made and no
  /// rename has taken yet, then end the process by the same signal (CKernels' `temporaries.c`). Call once, early.
  public static func removeTemporariesOnInterrupt() { bp_temporaries_install_handlers() }

  /// Runs `body` with SIGINT, SIGTERM and SIGHUP held until it returns (when `removeTemporariesOnInterrupt` is in
  /// effect): for renames that must all happen or none, such as a report's two files.
  public static func withInterruptsDeferred<T>(_ body: () throws -> T) rethrows -> T {
    bp_interrupts_defer()
    defer { bp_interrupts_resume() }
    return try body()
  }

  /// Removes the temporaries `createTemporary` made for `name` in `folder` (`.NAME.PID-N.tmp`) whose process no
  /// longer exists: a command killed while writing (SIGKILL, which no handler sees; `bp_temporaries_install_handlers` covers SIGINT,
  /// SIGTERM and SIGHUP) left
  /// them, hidden, beside the target, and the next write of the same target is the first to know.
  static func removeAbandonedTemporaries(in folder: String, of name: String) {
    let directory = folder.isEmpty ? "." : folder
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
    let prefix = "." + name + "."
    for entry in entries where entry.hasPrefix(prefix) && entry.hasSuffix(".tmp") {
      let middle = entry.dropFirst(prefix.count).dropLast(4)  // "PID-N"
      let parts = middle.split(separator: "-")
      guard parts.count == 2, let pid = Int32(parts[0]), Int(parts[1]) != nil, pid > 0, pid != getpid() else { continue }
      guard kill(pid, 0) != 0 && errno == ESRCH else { continue }  // still running (or not ours to ask): keep it
      let path = directory + "/" + entry
      var st = stat()
      if lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG { unlink(path) }
    }
  }

  /// Renames `temporary` over `target` when `target` is a regular file or absent, checked right before the rename;
  /// otherwise removes `temporary` and throws. POSIX `rename` is atomic: readers see the old or the new file.
  public static func replace(
    _ target: String, with temporary: String, option: String = "-o", path: String? = nil
  ) throws(FileCheckError) {
    var st = stat()
    if lstat(target, &st) == 0, st.st_mode & S_IFMT != S_IFREG {
      unlink(temporary)
      throw FileCheckError(
        .cannotCreate, option: option, path: path ?? target,
        "is \(describe(st.st_mode & S_IFMT)), not a regular file; refusing to replace it")
    }
    defer { bp_temporary_forget(temporary) }
    if rename(temporary, target) != 0 {
      let reason = String(cString: strerror(errno))
      unlink(temporary)
      throw FileCheckError(.writeFailed, option: option, path: path ?? target, "cannot rename into place: \(reason)")
    }
  }

  /// Removes `path` when it is a regular file or a symbolic link (a stale temporary file), so that a writer that
  /// creates it afresh never writes through a link or into a device. Anything else is refused.
  public static func clearStaleTemporary(_ path: String, option: String = "-o") throws(FileCheckError) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    let kind = st.st_mode & S_IFMT
    guard kind == S_IFREG || kind == S_IFLNK else {
      throw FileCheckError(
        .cannotCreate, option: option, path: path, "is \(describe(kind)), where a temporary file must go")
    }
    unlink(path)
  }

  /// "a folder", "a character device", … for messages.
  static func describe(_ kind: mode_t) -> String {
    switch kind {
    case S_IFDIR: "a folder"
    case S_IFCHR: "a character device"
    case S_IFBLK: "a block device"
    case S_IFIFO: "a FIFO"
    case S_IFSOCK: "a socket"
    case S_IFLNK: "a symbolic link"
    case S_IFREG: "a regular file"
    default: "not a regular file"
    }
  }
}

/// A file's device and inode: equal for two paths that name one file (hard links, symbolic links, `./a` and `a`).
public struct FileIdentity: Hashable, Sendable {
  public var device: UInt64
  public var inode: UInt64

  init(_ st: stat) {
    device = UInt64(st.st_dev)
    inode = UInt64(st.st_ino)
  }

  /// The identity of the file `path` names (links followed); nil when it does not exist.
  public init?(path: String) {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    self.init(st)
  }
}

/// `write(2)` until every byte is written, retrying short writes and EINTR; false on any other error (errno set).
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
  guard let base = bytes.baseAddress else { return true }
  var done = 0
  while done < bytes.count {
    let n = write(fd, base + done, bytes.count - done)
    if n < 0 {
      if errno == EINTR { continue }
      return false
    }
    done += n
  }
  return true
}
