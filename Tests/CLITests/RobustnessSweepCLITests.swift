import Foundation
import Testing
import _TestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Cases a robustness sweep of every command found (2026-12-05), each refused now as issue 12 asks: one line, the
/// documented status, no file changed.
extension RobustnessCLITests {
  /// quantize checked -o against MODEL, PLAN.json and --imatrix only: `-o` naming the calibration text or the run
  /// file replaced it with the GGUF and exited 0. The paths are checked before the plan is read.
  @Test func quantizeNeverWritesOverItsRunOrCalibrationText() throws {
    let w = try Workspace()
    let q = ["quantize", "{}/tiny-llama.gguf", "{}/problem.json"]
    try expectRefused(w, q + ["--calib", "{}/calib.txt", "-o", "{}/calib.txt"], status: 64, mention: "is also the input --calib")
    try expectRefused(w, q + ["--run", "{}/calib.txt", "-o", "{}/calib.txt"], status: 64, mention: "is also the input --run")
  }

  /// `bench kernels --tokens 99999999999` asked for 230 TB and died of Swift's allocation failure (SIGABRT).
  @Test func benchKernelsRangeChecksItsNumbers() throws {
    let w = try Workspace()
    try expectRefused(w, ["bench", "kernels", "--gemm-only", "--tokens", "99999999999"], status: 64, mention: "--tokens must be in 1...8192")
    try expectRefused(w, ["bench", "kernels", "--gemm-only", "--tokens", "0"], status: 64, mention: "--tokens must be in 1...8192")
    try expectRefused(w, ["bench", "kernels", "--gemm-only", "--gemm-threads", "100000"], status: 64, mention: "--gemm-threads must be in 1...256")
  }

  /// A GGUF whose RMSNorm epsilon is NaN: the error names the file and the key (it named neither before).
  @Test func ggufNormEpsilonMustBeFinite() throws {
    let w = try Workspace()
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: w.root + "/tiny-llama.gguf")))
    let key = Array("llama.attention.layer_norm_rms_epsilon".utf8)
    let at = try #require((0...(bytes.count - key.count)).first { bytes[$0..<($0 + key.count)].elementsEqual(key) })
    let type = at + key.count
    #expect(bytes[type..<(type + 4)].elementsEqual([6, 0, 0, 0]), "GGUF value type 6 is float32")
    withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { bytes.replaceSubrange((type + 4)..<(type + 8), with: $0) }
    try Data(bytes).write(to: URL(fileURLWithPath: w.root + "/eps-nan.gguf"))
    try expectRefused(
      w, ["ppl", "{}/eps-nan.gguf", "--text", "{}/calib.txt", "--tokens", "16"], status: 65,
      mention: "'llama.attention.layer_norm_rms_epsilon' nan must be positive and finite ({}/eps-nan.gguf)")
  }

  /// A model whose weights are all NaN printed "mean NLL -nan PPL -nan" and exited 0.
  @Test func pplRefusesANonFiniteLoss() throws {
    let w = try Workspace()
    let fm = FileManager.default
    try fm.copyItem(atPath: w.root + "/tiny-llama", toPath: w.root + "/nan-llama")
    let path = w.root + "/nan-llama/model.safetensors"
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let header = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
    for i in (8 + header)..<bytes.count { bytes[i] = 0xFF }  // every f32, f16 or bf16 value a NaN
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    try expectRefused(
      w, ["ppl", "{}/nan-llama", "--text", "{}/calib.txt", "--tokens", "16"], status: 65,
      mention: "hold NaN or infinite values")
  }
}

/// Cases of a second sweep (interrupted work, full disks, two processes at once), 2026-12-05.
extension RunCLITests {
  /// Two `bitplan run` on one -o shared run.h5.tmp and run-state.json: one could leave a damaged run.h5. The folder
  /// is locked while a run uses it, and a second run is refused at once (73), touching nothing.
  @Test func aSecondRunOnTheSameFolderIsRefused() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let dir = folder.path + "/out"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
    let descriptor = open(dir, O_RDONLY | O_DIRECTORY)
    try #require(descriptor >= 0 && flock(descriptor, LOCK_EX | LOCK_NB) == 0)
    defer { close(descriptor) }
    let r = try Self.run(Self.arguments(dir), folder)
    #expect(r.status == 73, "\(r.stderr)")
    #expect(r.stderr.contains("-o '\(dir)' is in use by another bitplan run") && r.stderr.split(separator: "\n").count == 1)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
  }
}

extension RobustnessCLITests {
  /// A one-character output name in the current folder (`-o a`) trapped in Foundation (SIGILL, exit 132).
  @Test func aOneCharacterOutputNameIsWritten() throws {
    let w = try Workspace()
    let r = try BitplanProcess.run(
      ["allocate", w.root + "/problem.json", "--bpw", "4.5", "-o", "a"], environment: [:], directory: w.root)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(FileManager.default.fileExists(atPath: w.root + "/a"))
  }
}
