import Allocation
import Foundation
@testable import Pipeline
import Sensitivity
import Testing
import Validation
import _TestSupport

/// `validate --run` stores the validation in the run, beside its plan: a plan the run cannot have produced (a layer
/// it did not measure, a format it did not offer) is refused instead (a robustness sweep found one accepted).
@Suite struct PlanFromRunTests {
  static let folder = TestModels.repositoryRoot + "/reports/smollm2-135m"

  func plan(_ edit: (inout [String: Any]) -> Void) throws -> PlanDocument {
    let data = try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/llama-cpp/plan.json"))
    var object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    var layers = object["layers"] as! [String: Any]
    edit(&layers)
    object["layers"] = layers
    return try PlanDocument.decode(try JSONSerialization.data(withJSONObject: object), source: "plan.json")
  }

  @Test func thePlansOfTheDemoComeFromItsRun() throws {
    try #require(TestModels.exists(Self.folder + "/run.h5"))
    let run = try RunStore.read(Self.folder + "/run.h5")
    for target in ["llama-cpp", "gptqmodel"] {
      let data = try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/\(target)/plan.json"))
      let document = try PlanDocument.decode(data, source: target)
      try PlanValidation.checkPlanCameFrom(run, path: "run.h5", plan: document, planPath: target)
    }
  }

  @Test func aLayerOrFormatTheRunDidNotHaveIsRefused() throws {
    try #require(TestModels.exists(Self.folder + "/run.h5"))
    let run = try RunStore.read(Self.folder + "/run.h5")
    let renamed = try plan { layers in
      layers["model.layers.99.mlp.up_proj"] = layers.removeValue(forKey: "model.layers.0.mlp.up_proj")
    }
    let unknownLayer = #expect(throws: PlanValidationError.self) {
      try PlanValidation.checkPlanCameFrom(run, path: "run.h5", plan: renamed, planPath: "plan.json")
    }
    #expect(unknownLayer.map { "\($0)".contains("model.layers.99.mlp.up_proj, which --run 'run.h5' did not measure") } == true)
    let offered = Set(run.candidates.map(\.name))
    try #require(!offered.contains("int2-g64"))
    let otherFormat = try plan { layers in
      var layer = layers["model.layers.0.mlp.up_proj"] as! [String: Any]
      layer["format"] = "int2-g64"
      layer["bits"] = 2
      layer["group_size"] = 64
      layer["symmetric"] = true
      layers["model.layers.0.mlp.up_proj"] = layer
    }
    let unknownFormat = #expect(throws: PlanValidationError.self) {
      try PlanValidation.checkPlanCameFrom(run, path: "run.h5", plan: otherFormat, planPath: "plan.json")
    }
    #expect(unknownFormat.map { "\($0)".contains("int2-g64, which --run 'run.h5' did not offer it") } == true)
  }
}
