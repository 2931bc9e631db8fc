import Foundation
import Quantization
import Sensitivity
import Testing
import _TestSupport

/// `measure --target` and `allocate --target` on the committed tiny model (widths 64 and 128): every candidate a
/// run offers is one the target stores, at the target's bytes; allocate restricts a run to a target and records it.
@Suite struct TargetCLITests {
  static var calib: String { TestModels.sharedData + "/prideprejudice.txt" }

  /// A quick measurement of the tiny model into `output`.
  static func measure(_ output: String, _ extra: [String]) throws -> BitplanProcess.Result {
    try BitplanProcess.run(
      ["measure", BitplanProcess.fixture("tiny-llama"), "--calib", calib, "--tokens", "64", "--hvp-tokens", "32",
       "--probes", "4", "--seed", "3", "-o", output] + extra)
  }

  static func plan(_ path: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
  }

  /// Every (layer, candidate) the run offers is storable by `target`, with `target.storedBytes`; every other cell
  /// is not offered.
  static func expectOffersMatch(_ run: MeasuredRun, _ target: Target) throws {
    for (l, layer) in run.layers.enumerated() {
      for (c, candidate) in run.candidates.enumerated() {
        let format = try QuantFormat(parsing: candidate.name)
        if target.canStore(format, rows: layer.rows, columns: layer.columns) {
          #expect(run.bytes[l][c] == target.storedBytes(format, rows: layer.rows, columns: layer.columns), "\(layer.name) \(candidate.name)")
        } else {
          #expect(run.bytes[l][c] < 0, "\(layer.name) \(candidate.name) is not offered")
        }
      }
    }
  }

  @Test(arguments: [Target.mlx, .llamaCpp, .gptqmodel])
  func measureOffersExactlyWhatTheTargetStores(target: Target) throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.path + "/RUN.h5"
    // gptqmodel offers 33 formats; a short list keeps the test quick and still mixes groups and symmetry.
    let list = target == .gptqmodel ? ["--candidates", "f16,int8,int4-g32-asym,int3-g64,int2-g128"] : []
    let r = try Self.measure(path, ["--target", target.rawValue] + list)
    #expect(r.status == 0, "\(r.stderr)")
    let run = try RunStore.read(path)
    #expect(run.provenance.target == target.rawValue)
    try Self.expectOffersMatch(run, target)
    if target == .mlx {
      // Widths 64 and 128: groups 32 and 64 everywhere, 128 on down_proj.
      #expect(run.candidates.count == 1 + 6 * 3)
      #expect(run.candidates.allSatisfy { $0.name == "f16" || $0.name.hasPrefix("affine") })
    }
    if target == .llamaCpp {
      #expect(Set(run.candidates.map(\.name)) == ["f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"], "no K-quant fits 64 or 128")
    }
  }

  @Test func measureRefusesAListedCandidateTheTargetCannotStore() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let r = try Self.measure(folder.path + "/RUN.h5", ["--target", "llama-cpp", "--candidates", "q4_0,int4-g32"])
    #expect(r.status != 0)
    let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
    #expect(lines.count == 1 && lines[0].contains("int4-g32") && lines[0].contains("llama-cpp"), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/RUN.h5"))
    let unknown = try Self.measure(folder.path + "/RUN.h5", ["--target", "gguf"])
    #expect(unknown.status == 64 && unknown.stderr.contains("--target"), "\(unknown.stderr)")
  }

  /// A run measured with `any` holding grammar, GGML and affine formats: `allocate --target mlx` plans only affine
  /// and f16 at MLX's bytes, `--target llama-cpp` only GGML types and f16; without --target the plan says `any`.
  @Test func allocateRestrictsARunToTheTarget() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.path + "/RUN.h5"
    let r = try Self.measure(path, ["--candidates", "f16,int8,int4-g32,q4_0,q8_0,affine4-g32,affine8-g64,affine2-g32"])
    #expect(r.status == 0, "\(r.stderr)")
    let run = try RunStore.read(path)
    #expect(run.provenance.target == "any")
    let shapes = Dictionary(uniqueKeysWithValues: run.layers.map { ($0.name, $0) })
    for (target, allowed) in [(Target.mlx, "affine"), (.llamaCpp, "q")] {
      let planPath = folder.path + "/\(target.rawValue).json"
      let a = try BitplanProcess.run(["allocate", path, "--bpw", "5", "--target", target.rawValue, "-o", planPath])
      #expect(a.status == 0, "\(a.stderr)")
      let plan = try Self.plan(planPath)
      #expect(plan["target"] as? String == target.rawValue)
      let layers = plan["layers"] as! [String: [String: Any]]
      #expect(layers.count == run.layers.count)
      var total = 0
      for (name, entry) in layers {
        let format = try QuantFormat(parsing: entry["format"] as! String)
        #expect(format == .f16 || format.name.hasPrefix(allowed), "\(name): \(format)")
        let l = shapes[name]!
        #expect(entry["bytes"] as? Int == target.storedBytes(format, rows: l.rows, columns: l.columns))
        total += entry["bytes"] as! Int
      }
      #expect(plan["total_bytes"] as? Int == total)
    }
    let plain = try BitplanProcess.run(["allocate", path, "--bpw", "5", "-o", folder.path + "/plain.json"])
    #expect(plain.status == 0, "\(plain.stderr)")
    #expect(try Self.plan(folder.path + "/plain.json")["target"] as? String == "any")
  }

  /// A run measured for MLX holds nothing llama.cpp stores but f16; with f16 left out, allocate says so in one line.
  @Test func allocateForAnotherTargetFailsClearlyWhenNothingFits() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.path + "/RUN.h5"
    let r = try Self.measure(path, ["--target", "mlx", "--candidates", "affine4-g32,affine8-g32"])
    #expect(r.status == 0, "\(r.stderr)")
    let plan = folder.path + "/PLAN.json"
    let a = try BitplanProcess.run(["allocate", path, "--bpw", "6", "--target", "llama-cpp", "-o", plan])
    #expect(a.status != 0)
    let lines = a.stderr.split(separator: "\n").filter { !$0.isEmpty }
    #expect(lines.count == 1 && lines[0].contains("--target mlx") && lines[0].contains("llama-cpp"), "\(a.stderr)")
    #expect(!FileManager.default.fileExists(atPath: plan))
    // Without --target the plan keeps the run's own target.
    let same = try BitplanProcess.run(["allocate", path, "--bpw", "6", "-o", plan])
    #expect(same.status == 0, "\(same.stderr)")
    #expect(try Self.plan(plan)["target"] as? String == "mlx")
  }

  @Test func allocateTargetOnAProblemFileIsAnError() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    let r = try BitplanProcess.run(["allocate", BitplanProcess.fixture("problem-small.json"), "--bpw", "4.5", "--target", "mlx", "-o", plan])
    #expect(r.status != 0)
    #expect(r.stderr.contains("--target mlx") && r.stderr.contains("PROBLEM.json"), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: plan))
  }

  /// An MLX plan validates with float activations; with int8 activations the affine format is refused by name.
  @Test func validateRunsAnAffinePlanOnFloatActivations() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    let kinds = [("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"), ("self_attn", "o_proj"),
      ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj")]
    var layers: [String] = []
    for b in 0..<2 {
      for (module, k) in kinds {
        layers.append("\"model.layers.\(b).\(module).\(k)\": {\"format\": \"affine4-g32\", \"bytes\": 0, \"predicted_loss_delta\": 0}")
      }
    }
    try """
      {"format_version": 1, "model": "tiny", "model_sha256": null, "budget_bytes": 0, "total_bytes": 0,
       "bits_per_weight": 0, "solver": "exact", "score": "output_error", "predicted_loss_delta": 0, "target": "mlx",
       "layers": {\(layers.joined(separator: ",\n"))}}
      """.write(toFile: plan, atomically: true, encoding: .utf8)
    func validate(_ activations: String) throws -> BitplanProcess.Result {
      try BitplanProcess.run(
        ["validate", BitplanProcess.fixture("tiny-llama"), plan, "--eval", TestModels.sharedData + "/emma.txt",
         "--tokens", "64", "--windows", "2", "--bootstrap", "50", "--activations", activations, "--baselines", "uniform",
         "-o", folder.path + "/V-\(activations).json"],
        environment: ["XDG_CACHE_HOME": folder.path + "/cache"])
    }
    let f32 = try validate("f32")
    #expect(f32.status == 0, "\(f32.stderr)")
    let json = try Self.plan(folder.path + "/V-f32.json")
    #expect(json["activations"] as? String == "f32")
    let int8 = try validate("int8")
    #expect(int8.status != 0 && int8.stderr.contains("affine4-g32"), "\(int8.stderr)")
  }
}
