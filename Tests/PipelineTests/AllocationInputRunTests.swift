import Allocation
import Foundation
import HDF5
import Pipeline
@testable import Sensitivity
import Testing
import _TestSupport

/// A run file whose checksum matches can still say things no bitplan wrote (a robustness sweep resealed edited
/// copies): the allocation input refuses them as bad data naming the file, before a plan is written.
@Suite struct AllocationInputRunTests {
  /// A copy of the committed demo run with one root attribute changed, resealed.
  func edited(_ attribute: String, _ value: String) throws -> String {
    let source = TestModels.repositoryRoot + "/reports/smollm2-135m/run.h5"
    try #require(TestModels.exists(source))
    let folder = NSTemporaryDirectory() + "bitplan-allocation-input-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let path = folder + "/run.h5"
    try FileManager.default.copyItem(atPath: source, toPath: path)
    try HDF5File.withFile(path, mode: .readWrite) { f in try f.setAttribute(attribute, value) }
    try RunFile.seal(path)
    return path
  }

  @Test func theCommittedRunLoads() throws {
    let path = try edited("quantizer", "rtn")
    defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
    #expect(try AllocationInput.load(from: path, score: nil).problem.layers.count > 100)
  }

  @Test(arguments: [("target", "the run's target 'nonsense'"), ("quantizer", "the run's quantizer 'nonsense'")])
  func unknownNamesAreRefused(attribute: String, message: String) throws {
    let path = try edited(attribute, "nonsense")
    defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
    let error = #expect(throws: AllocationError.self) { try AllocationInput.load(from: path, score: nil) }
    #expect(error?.code == .badProblemFile)
    #expect(error.map { "\($0)".contains("'\(path)': \(message)") } == true, "\(error.map { "\($0)" } ?? "")")
  }
}
