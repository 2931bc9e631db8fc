import Foundation
import Testing
import TensorCore
import _TestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// `FileChecks`: the one output-path rule set. Inputs are compared by device and inode, so links and other
/// spellings of an input are caught; folders, devices, FIFOs and broken links are never replaced.
@Suite struct FileChecksTests {
  private func code(_ body: () throws -> Void) -> FileCheckError.Code? {
    do { try body() } catch let error as FileCheckError { return error.code } catch { return nil }
    return nil
  }

  private func makeFolder() -> (String, [UInt8]) {
    let folder = temporaryFolder("filechecks")
    let bytes: [UInt8] = Array("input bytes".utf8)
    _ = FileManager.default.createFile(atPath: folder + "/in.txt", contents: Data(bytes))
    return (folder, bytes)
  }

  @Test func anOutputThatIsAnInputUnderAnySpellingIsRefused() throws {
    let (folder, bytes) = makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try FileManager.default.createSymbolicLink(atPath: folder + "/link.txt", withDestinationPath: folder + "/in.txt")
    #expect(link(folder + "/in.txt", folder + "/hard.txt") == 0)
    try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: false)
    let input = InputPath(option: "--calib", path: folder + "/in.txt")
    for spelling in ["/in.txt", "/link.txt", "/hard.txt", "/./in.txt", "/sub/../in.txt"] {
      let output = OutputPath(option: "-o", path: folder + spelling)
      #expect(code { try FileChecks.check(inputs: [input], outputs: [output]) } == .outputIsInput, "\(spelling)")
    }
    // A file inside an input folder (a model folder) is an input too.
    let model = InputPath(option: "MODEL", path: folder, allowsFolder: true)
    #expect(code { try FileChecks.check(inputs: [model], outputs: [OutputPath(option: "-o", path: folder + "/in.txt")]) } == .outputIsInput)
    #expect(try Array(Data(contentsOf: URL(fileURLWithPath: folder + "/in.txt"))) == bytes)
    // A fresh file beside the input is fine.
    #expect(code { try FileChecks.check(inputs: [input], outputs: [OutputPath(option: "-o", path: folder + "/new.txt")]) } == nil)
  }

  @Test func twoOutputsThatAreOneFileAreRefused() throws {
    let (folder, _) = makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let a = OutputPath(option: "-o", path: folder + "/x.json")
    let b = OutputPath(option: "--frontier", path: folder + "/./x.json")
    #expect(code { try FileChecks.check(inputs: [], outputs: [a, b]) } == .duplicateOutput)
    #expect(code { try FileChecks.check(inputs: [], outputs: [a, OutputPath(option: "--frontier", path: folder + "/y.csv")]) } == nil)
  }

  @Test func foldersDevicesFifosAndBrokenLinksAreNeverOutputs() throws {
    let (folder, _) = makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    #expect(mkfifo(folder + "/fifo", 0o644) == 0)
    try FileManager.default.createSymbolicLink(atPath: folder + "/broken", withDestinationPath: folder + "/nowhere/x")
    for path in [folder, folder + "/", "/dev/null", folder + "/fifo", folder + "/broken", folder + "/missing/x.json", ""] {
      #expect(code { try FileChecks.checkOutput(OutputPath(option: "-o", path: path)) } == .cannotCreate, "\(path)")
    }
    var st = stat()
    #expect(stat("/dev/null", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR, "/dev/null is still a device")
  }

  @Test func inputsMustExistAndBeFiles() throws {
    let (folder, _) = makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    #expect(code { try FileChecks.checkInput(option: "--text", path: folder + "/none.txt") } == .missingInput)
    #expect(code { try FileChecks.checkInput(option: "--text", path: folder) } == .notAFile)
    #expect(code { try FileChecks.checkInput(option: "--text", path: "/dev/null") } == .notAFile)
    #expect(code { try FileChecks.checkInput(option: "MODEL", path: folder, allowsFolder: true) } == nil)
    let error = try #require(throws: FileCheckError.self) { try FileChecks.checkInput(option: "--text", path: folder) }
    #expect(error.description == "--text '\(folder)': is a folder, not a file")
  }

  /// `write` replaces a regular file whole and leaves no temporary file; through a symbolic link it replaces the
  /// file the link names and keeps the link.
  @Test func writeReplacesAtomicallyAndKeepsLinks() throws {
    let (folder, _) = makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var rng = SplitMix64(seed: 12)
    let payload = (0..<100_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    try FileChecks.write(payload, to: folder + "/out.bin")
    #expect(try Array(Data(contentsOf: URL(fileURLWithPath: folder + "/out.bin"))) == payload)
    try FileChecks.write(Array("second".utf8), to: folder + "/out.bin")
    #expect(try String(contentsOfFile: folder + "/out.bin", encoding: .utf8) == "second")
    try FileManager.default.createSymbolicLink(atPath: folder + "/alias", withDestinationPath: folder + "/out.bin")
    try FileChecks.write(Array("third".utf8), to: folder + "/alias")
    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: folder + "/alias") == folder + "/out.bin")
    #expect(try String(contentsOfFile: folder + "/out.bin", encoding: .utf8) == "third")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["alias", "in.txt", "out.bin"])
  }

  /// The final rename re-checks the target: a folder put there while the command ran is not replaced, and the
  /// temporary file is removed.
  @Test func replaceRefusesATargetThatBecameAFolder() throws {
    let (folder, _) = makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let (temporary, fd) = try FileChecks.createTemporary(beside: folder + "/out", option: "-o", path: folder + "/out")
    close(fd)
    try FileManager.default.createDirectory(atPath: folder + "/out", withIntermediateDirectories: false)
    #expect(code { try FileChecks.replace(folder + "/out", with: temporary) } == .cannotCreate)
    #expect(!FileManager.default.fileExists(atPath: temporary))
    var isFolder: ObjCBool = false
    #expect(FileManager.default.fileExists(atPath: folder + "/out", isDirectory: &isFolder) && isFolder.boolValue)
  }

  /// A stale temporary that is a link is removed, never written through.
  @Test func staleTemporaryLinksAreRemovedNotFollowed() throws {
    let (folder, bytes) = makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try FileManager.default.createSymbolicLink(atPath: folder + "/run.h5.tmp", withDestinationPath: folder + "/in.txt")
    try FileChecks.clearStaleTemporary(folder + "/run.h5.tmp")
    #expect(!FileManager.default.fileExists(atPath: folder + "/run.h5.tmp"))
    #expect(try Array(Data(contentsOf: URL(fileURLWithPath: folder + "/in.txt"))) == bytes)
    #expect(mkfifo(folder + "/fifo.tmp", 0o644) == 0)
    #expect(code { try FileChecks.clearStaleTemporary(folder + "/fifo.tmp") } == .cannotCreate)
  }

  /// Foundation's NSString path methods trap (SIGILL) on a one-character path on Linux; `-o a` crashed every
  /// command. `split` gives what they give, and the checks of a one-character name in the current folder pass.
  @Test func pathsSplitWithoutFoundationsPathMethods() throws {
    #expect(FileChecks.split("a") == ("", "a"))
    #expect(FileChecks.split("x/a") == ("x", "a"))
    #expect(FileChecks.split("/a") == ("/", "a"))
    #expect(FileChecks.split("/") == ("/", "/"))
    #expect(FileChecks.split("x/dir/") == ("x", "dir"))
    #expect(FileChecks.split("a/b/c.h5") == ("a/b", "c.h5"))
    let missing = "b"
    #expect(!FileManager.default.fileExists(atPath: missing), "the test runs where 'b' does not exist")
    #expect(FileChecks.resolvedTarget(missing) == FileManager.default.currentDirectoryPath + "/b")
  }

  /// A command killed while writing (SIGKILL) leaves `.NAME.PID-N.tmp` beside its target; the next write of the
  /// same target removes those whose process is gone, and keeps a live process's (a second command writing).
  @Test func abandonedTemporariesAreRemovedByTheNextWrite() throws {
    let folder = temporaryFolder("filechecks-abandoned")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let finished = Process()
    finished.executableURL = URL(fileURLWithPath: "/bin/true")
    try finished.run()
    finished.waitUntilExit()
    let dead = folder + "/.plan.json.\(finished.processIdentifier)-0.tmp"
    let live = folder + "/.plan.json.1-0.tmp"  // pid 1 outlives the test
    let other = folder + "/.other.json.\(finished.processIdentifier)-0.tmp"
    for path in [dead, live, other] { _ = FileManager.default.createFile(atPath: path, contents: Data("x".utf8)) }
    try FileChecks.write(Data("{}".utf8), to: folder + "/plan.json")
    #expect(!FileManager.default.fileExists(atPath: dead))
    #expect(FileManager.default.fileExists(atPath: live))
    #expect(FileManager.default.fileExists(atPath: other), "another target's temporaries are left to its own writes")
    #expect(try String(contentsOfFile: folder + "/plan.json", encoding: .utf8) == "{}")
  }
}
