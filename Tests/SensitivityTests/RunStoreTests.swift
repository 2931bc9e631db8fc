import Foundation
import HDF5
import Sensitivity
import Testing
import _TestSupport

@Suite struct RunStoreTests {
  let layers: [MeasuredRun.Layer] = [
    .init(name: "model.layers.0.self_attn.q_proj", rows: 2, columns: 3), .init(name: "lm_head", rows: 1, columns: 4),
  ]
  let candidates: [MeasuredRun.Candidate] = [
    .init(name: "int8", bitsPerWeight: 8.5), .init(name: "int4", bitsPerWeight: 4.5),
    .init(name: "int2-g6", bitsPerWeight: 2 + 16.0 / 6),
  ]

  func provenance() -> RunProvenance {
    var p = toyProvenance()
    p.seed = 0xFEDC_BA98_7654_3210  // above Int64.max: stored as the int64 with the same bits
    return p
  }

  /// A store with every kind of record, filled through the public API.
  func filledStore(_ path: String) throws -> RunStore {
    let store = try RunStore(path: path, provenance: provenance(), layers: layers, candidates: candidates)
    try store.recordFisherWindow(0, gradientSum: [randomDoubles(10, seed: 1)])
    try store.recordFisherTrace([0.5, 0.25])
    try store.recordProbe(0, values: [1.5, -2], diagonalSum: [randomDoubles(4, seed: 2), randomDoubles(6, seed: 9)])
    try store.recordProbe(1, values: [2.5, -1], diagonalSum: [randomDoubles(10, seed: 3)])
    try store.recordHessianTrace([
      Estimate(mean: 2, standardError: 0.5, samples: [1.5, 2.5], converged: false),
      Estimate(mean: -1.5, standardError: 0.5, samples: [-2, -1], converged: false),
    ])
    try store.recordTopEigenvalue(3.25, layer: 0)
    for l in 0..<2 {
      let result = LayerMeasurement.CandidateResult(
        weightError: Double(l) + 0.125, outputError: 0.375, bytes: 10 + l, calibration: "mse-grid",
        proxies: ["weight_error": 0.125, "hawq_trace": 1e-300, "custom": 7])
      var m = LayerMeasurement(
        statistics: try WeightStatistics(weights: [1, -2, 3]), inputTrace: 4.5,
        candidates: [result, result, l == 1 ? nil : result])
      if l == 0 { m.inputSquareMeans = [0.5, 1e-300, 2] }  // layer 1 without (an untied embedding's lookup)
      try store.recordLayer(l, m)
    }
    try store.recordAuditBaseline(meanNLL: 2.75)
    try store.recordAudit(layer: 0, candidate: 1, deltaNLL: 0.01, deltaKLD: 0.02)
    try store.recordAudit(layer: 1, candidate: 0, deltaNLL: 0.03, deltaKLD: 0.01)
    store.recordAuditCorrelations()
    return store
  }

  @Test func finishedFileRoundTrips() throws {
    let folder = temporaryFolder("roundtrip")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let store = try filledStore(folder + "/RUN.h5")
    let written = try store.finish()
    let read = try RunStore.read(folder + "/RUN.h5")
    #expect(try canonicalJSON(read) == canonicalJSON(written))
    #expect(read.provenance == provenance())
    #expect(read.bytes == [[10, 10, 10], [11, 11, -1]])
    #expect(read.calibrationMethod[1] == ["mse-grid", "mse-grid", ""])
    #expect(read.proxies["custom"]![1][1] == 7 && read.proxies["hawq_trace"]![0][0] == 1e-300)
    #expect(read.probeValues == [[1.5, -2], [2.5, -1]] && read.probesUsed == [2, 2])
    #expect(read.topEigenvalue[0] == 3.25 && read.topEigenvalue[1].isNaN)
    #expect(read.audit?.spearmanNLL["weight_error"]?.isNaN == true, "constant proxy: ρ undefined")
    #expect(read.audit?.deltaKLD == [0.02, 0.01])
    #expect(read.inputSquareMeans == [[0.5, 1e-300, 2], []])
  }

  /// `/hessian/input_diagonal` is one float64 vector over the layers' columns, NaN for a layer without statistics;
  /// a vector of the wrong length is refused, and a negative mean square in a file is a bad run file.
  @Test func inputDiagonalIsConcatenatedAndChecked() throws {
    let folder = temporaryFolder("input-diagonal")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/RUN.h5"
    _ = try filledStore(path).finish()
    let stored = try HDF5File.withFile(path, mode: .readOnly) { try $0.read("/hessian/input_diagonal", as: Double.self) }
    #expect(stored.shape == [7])
    #expect(Array(stored.values[0..<3]) == [0.5, 1e-300, 2] && stored.values[3...].allSatisfy(\.isNaN))

    let store = try RunStore(path: folder + "/bad.h5", provenance: provenance(), layers: layers, candidates: candidates)
    var m = LayerMeasurement(statistics: try WeightStatistics(weights: [1, 2]), inputTrace: 1, candidates: [nil, nil, nil])
    m.inputSquareMeans = [1, 2]  // the layer has 3 columns
    #expect(throws: SensitivityError.self) { try store.recordLayer(0, m) }

    // A negative mean square (written through the store, which takes what it is given) does not read back.
    let lying = folder + "/lying.h5"
    let liar = try RunStore(path: lying, provenance: provenance(), layers: layers, candidates: candidates)
    for l in 0..<2 {
      var m = LayerMeasurement(statistics: try WeightStatistics(weights: [1, 2]), inputTrace: 1, candidates: [nil, nil, nil])
      m.inputSquareMeans = l == 0 ? [0.5, -1, 2] : []
      try liar.recordLayer(l, m)
    }
    _ = try? liar.finish()
    #expect { try RunStore.read(lying) } throws: { ($0 as? SensitivityError)?.code == .badRunFile }
  }

  /// The quantizer of each (layer, candidate) and the one asked for are stored and read back; a different
  /// quantizer does not resume the run.
  @Test func quantizerRoundTrips() throws {
    let folder = temporaryFolder("quantizer")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var p = provenance()
    p.quantizer = "best"
    let store = try RunStore(path: folder + "/RUN.h5", provenance: p, layers: layers, candidates: candidates)
    for l in 0..<2 {
      var results: [LayerMeasurement.CandidateResult?] = []
      for (c, q) in ["gptq", "rtn", "awq"].enumerated() {
        var r = LayerMeasurement.CandidateResult(
          weightError: 1, outputError: 2, bytes: 10 + c, calibration: "minmax", proxies: ["weight_error": 1])
        r.quantizer = q
        results.append(l == 1 && c == 2 ? nil : r)
      }
      try store.recordLayer(l, LayerMeasurement(statistics: try WeightStatistics(weights: [1, 2]), inputTrace: 1, candidates: results))
    }
    _ = try store.finish()
    let read = try RunStore.read(folder + "/RUN.h5")
    #expect(read.provenance.quantizer == "best")
    #expect(read.quantizer == [["gptq", "rtn", "awq"], ["gptq", "rtn", ""]])
    let columns = try read.problemColumns(score: "weight_error")
    #expect(columns[1].quantizers == ["gptq", "rtn"] && columns[1].formats == ["int8", "int4"])
    var other = p
    other.quantizer = "gptq"
    #expect(other != p, "the quantizer is part of what a resumed run must match")
  }

  /// The DESIGN.md core, by path, type and shape, as other tools will read it.
  /// A trace within two standard errors of zero, or negative, is too noisy to rank its layer; the proxies built on
  /// the Hessian estimate are the ones allocate refuses on such a run.
  @Test func noisyTracesAreCounted() throws {
    let folder = temporaryFolder("noisy")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var run = try filledStore(folder + "/RUN.h5").finish()
    #expect(run.noisyTraceLayers == [1], "2 ± 0.5 ranks; −1.5 ± 0.5 does not")
    run.hessianTrace = [0.9, 3]
    run.hessianTraceStandardError = [0.5, 1]
    #expect(run.noisyTraceLayers == [0], "0.9 < 2 · 0.5")
    run.hessianTrace = [.nan, 3]
    #expect(run.noisyTraceLayers == [0], "not measured")
    #expect(LossProxy.allCases.filter(\.usesHessianEstimate) == [.hawqTrace, .taylorDiagonal])
  }

  /// The final rename re-checks its target: a folder put at RUN.h5 while the run went on is left alone.
  @Test func finishNeverRenamesOverAFolder() throws {
    let folder = temporaryFolder("finish-folder")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let store = try filledStore(folder + "/RUN.h5")
    try FileManager.default.createDirectory(atPath: folder + "/RUN.h5", withIntermediateDirectories: false)
    let error = try #require(throws: SensitivityError.self) { try store.finish() }
    #expect(error.code == .io && error.message.contains("folder"), "\(error)")
    var isFolder: ObjCBool = false
    #expect(FileManager.default.fileExists(atPath: folder + "/RUN.h5", isDirectory: &isFolder) && isFolder.boolValue)
    #expect(FileManager.default.fileExists(atPath: folder + "/RUN.h5.partial"), "the partial run is kept")
  }

  /// Cleaning up side files deletes files only: a folder that happens to carry a side file's name is left alone.
  @Test func cleanupNeverDeletesAFolder() throws {
    let folder = temporaryFolder("cleanup")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let lookalike = folder + "/RUN.h5.partial.gradient.7"
    try FileManager.default.createDirectory(atPath: lookalike, withIntermediateDirectories: false)
    _ = FileManager.default.createFile(atPath: lookalike + "/keep.txt", contents: Data("keep".utf8))
    try filledStore(folder + "/RUN.h5").finish()
    #expect(FileManager.default.fileExists(atPath: lookalike + "/keep.txt"))
    #expect(!FileManager.default.fileExists(atPath: folder + "/RUN.h5.partial"))
  }

  @Test func fileHasTheDesignLayout() throws {
    let folder = temporaryFolder("layout")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try filledStore(folder + "/RUN.h5").finish()
    try HDF5File.withFile(folder + "/RUN.h5", mode: .readOnly) { f in
      for name in ["format_version", "tokens", "probes", "seed"] { _ = try f.attribute(name, as: Int64.self) }
      for name in ["tool_version", "model_sha256", "calib_sha256", "created"] { _ = try f.stringAttribute(name) }
      #expect(try f.attribute("seed", as: Int64.self) == Int64(bitPattern: 0xFEDC_BA98_7654_3210))
      #expect(try f.readStrings("/layers/name").values == layers.map(\.name))
      #expect(try f.read("/layers/params", as: Int64.self).values == [6, 4])
      #expect(try f.read("/layers/shape", as: Int64.self) == HDF5Array(shape: [2, 2], values: [2, 3, 1, 4]))
      for path in [
        "/weights/variance", "/weights/absmax", "/weights/kurtosis", "/hessian/trace", "/hessian/trace_stderr",
        "/hessian/input_trace", "/fisher/trace",
      ] { #expect(try f.shape(of: path) == [2] && f.elementKind(of: path) == .float64, "\(path)") }
      #expect(try f.elementKind(of: "/hessian/probes_used") == .int64)
      #expect(try f.readStrings("/candidates/name").values == ["int8", "int4", "int2-g6"])
      #expect(try f.shape(of: "/candidates/bits_per_weight") == [3])
      for path in ["/error/weight", "/error/output", "/bytes", "/proxies/fisher_diag", "/calibration/method"] {
        #expect(try f.shape(of: path) == [2, 3], "\(path)")
      }
      #expect(try f.elementKind(of: "/bytes") == .int64)
      #expect(try f.shape(of: "/hessian/probe_values") == [2, 2])
      #expect(try !f.exists("/progress"))
    }
  }

  @Test func partialFileIsNotAFinishedRun() throws {
    let folder = temporaryFolder("partial")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let store = try filledStore(folder + "/RUN.h5")
    #expect(store.progress.layersDone == 2 && store.progress.fisherDone && store.progress.hessianDone)
    #expect { try RunStore.read(store.partialPath) } throws: { ($0 as? SensitivityError)?.code == .badRunFile }
    let reopened = try RunStore(
      path: folder + "/RUN.h5", provenance: provenance(), layers: layers, candidates: candidates)
    #expect(reopened.resumed && reopened.progress == store.progress)
    #expect(try reopened.diagonalSum() == randomDoubles(10, seed: 3))
    #expect(try reopened.gradientSum() == randomDoubles(10, seed: 1))
    var others = layers
    others[1].columns = 5
    #expect {
      try RunStore(path: folder + "/RUN.h5", provenance: provenance(), layers: others, candidates: candidates)
    } throws: { ($0 as? SensitivityError)?.code == .provenanceMismatch }
  }

  @Test func recordsOutOfOrderAreRefused() throws {
    let folder = temporaryFolder("order")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let store = try RunStore(path: folder + "/RUN.h5", provenance: provenance(), layers: layers, candidates: candidates)
    #expect { try store.recordProbe(1, values: [1, 2], diagonalSum: nil) } throws: {
      ($0 as? SensitivityError)?.code == .invalidArgument
    }
    #expect { try store.recordProbe(0, values: [1], diagonalSum: nil) } throws: {
      ($0 as? SensitivityError)?.code == .invalidArgument
    }
    #expect { try store.recordAudit(layer: 0, candidate: 0, deltaNLL: 0, deltaKLD: 0) } throws: {
      ($0 as? SensitivityError)?.code == .invalidArgument
    }
  }

  @Test func damagedFilesGiveTypedErrors() throws {
    let folder = temporaryFolder("damaged")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/RUN.h5"
    try filledStore(path).finish()
    try HDF5File.withFile(path, mode: .readWrite) { try $0.setAttribute("format_version", Int64(99)) }
    // Rewriting an attribute may grow the file (HDF5 reallocates the root's dense attribute storage; with the
    // `target` attribute it does), which the integrity header reports as a length change before the checksum.
    #expect { try RunStore.read(path) } throws: {
      "\($0)".contains("damaged (checksum mismatch)") || "\($0)".contains("truncated or extended")
    }
    try RunStore.resealAfterEditing(path)  // past the checksum, to the reader's own rules
    #expect { try RunStore.read(path) } throws: {
      let e = $0 as? SensitivityError
      return e?.code == .badRunFile && e!.message.contains("format_version 99")
    }
    try filledStore(folder + "/B.h5").finish()
    try HDF5File.withFile(folder + "/B.h5", mode: .readWrite) { try $0.write([1.0], to: "/weights/variance") }
    try RunStore.resealAfterEditing(folder + "/B.h5")
    #expect { try RunStore.read(folder + "/B.h5") } throws: { ($0 as? SensitivityError)?.code == .badRunFile }
    try Data("not hdf5".utf8).write(to: URL(fileURLWithPath: folder + "/C.h5"))
    #expect { try RunStore.read(folder + "/C.h5") } throws: { ($0 as? SensitivityError)?.code == .badRunFile }
    // A side vector with a flipped byte fails its checksum.
    let store = try filledStore(folder + "/D.h5")
    let side = store.partialPath + ".diagonal.2"
    var bytes = try Data(contentsOf: URL(fileURLWithPath: side))
    bytes[40] ^= 1
    try bytes.write(to: URL(fileURLWithPath: side))
    #expect { try store.diagonalSum() } throws: { ($0 as? SensitivityError)?.code == .badRunFile }
  }

  /// The diagonal saved with the last probe `--probes` allows stays in memory for the per-layer stage: the store
  /// that saved it answers without reading the file (here damaged), a resumed store reads the file.
  @Test func lastSideVectorIsKeptInMemory() throws {
    let folder = temporaryFolder("kept")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var settings = provenance()
    settings.probes = 2
    let store = try RunStore(path: folder + "/RUN.h5", provenance: settings, layers: layers, candidates: candidates)
    try store.recordProbe(0, values: [1.5, -2], diagonalSum: [randomDoubles(10, seed: 2)])
    try store.recordProbe(1, values: [2.5, -1], diagonalSum: [randomDoubles(4, seed: 3), randomDoubles(6, seed: 4)])
    let side = store.partialPath + ".diagonal.2"
    var bytes = try Data(contentsOf: URL(fileURLWithPath: side))
    bytes[40] ^= 1
    try bytes.write(to: URL(fileURLWithPath: side))
    #expect(try store.diagonalSum() == randomDoubles(4, seed: 3) + randomDoubles(6, seed: 4))
    let reopened = try RunStore(path: folder + "/RUN.h5", provenance: settings, layers: layers, candidates: candidates)
    #expect { try reopened.diagonalSum() } throws: { ($0 as? SensitivityError)?.code == .badRunFile }
  }

  /// A kill between writing a side vector's new generation and the checkpoint that names it (and one between the
  /// checkpoint and deleting the old generation): the store resumes from the generation its partial file names.
  @Test func killBetweenSideFileAndCheckpoint() throws {
    let folder = temporaryFolder("sidefile")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/RUN.h5"
    let fm = FileManager.default
    let open = { try RunStore(path: path, provenance: provenance(), layers: layers, candidates: candidates) }
    let store = try open()
    try store.recordProbe(0, values: [1, 2], diagonalSum: [randomDoubles(10, seed: 1)])
    try fm.copyItem(atPath: store.partialPath, toPath: folder + "/saved-partial")
    try fm.copyItem(atPath: store.partialPath + ".diagonal.1", toPath: folder + "/saved-1")
    try store.recordProbe(1, values: [3, 4], diagonalSum: [randomDoubles(10, seed: 2)])
    #expect(!fm.fileExists(atPath: store.partialPath + ".diagonal.1"))
    // Checkpoint done, old generation not yet deleted: generation 2 is used.
    try fm.copyItem(atPath: folder + "/saved-1", toPath: store.partialPath + ".diagonal.1")
    #expect(try open().diagonalSum() == randomDoubles(10, seed: 2))
    // New generation written, checkpoint not: back to probe 1 with generation 1.
    try fm.removeItem(atPath: store.partialPath)
    try fm.copyItem(atPath: folder + "/saved-partial", toPath: store.partialPath)
    let resumed = try open()
    #expect(resumed.run.probeValues == [[1, 2]])
    #expect(try resumed.diagonalSum() == randomDoubles(10, seed: 1))
    try resumed.recordProbe(1, values: [5, 6], diagonalSum: [randomDoubles(10, seed: 3)])
    #expect(try open().diagonalSum() == randomDoubles(10, seed: 3))
    try resumed.finish()
    let left = try fm.contentsOfDirectory(atPath: folder).sorted()
    #expect(left == ["RUN.h5", "saved-1", "saved-partial"])
  }

  @Test func timestampIsISO8601UTC() {
    // Python: datetime.fromtimestamp(1795000000, timezone.utc) is 2026-11-18 11:06:40+00:00.
    #expect(RunProvenance.timestamp(Date(timeIntervalSince1970: 1_795_000_000)) == "2026-11-18T11:06:40Z")
  }
}
