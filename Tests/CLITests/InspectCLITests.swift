import Foundation
import Testing
import _TestSupport

@Suite struct InspectCLITests {
  @Test func realSmolLM2Counts() throws {
    try #require(TestModels.exists(TestModels.smolLM2Path), "\(TestModels.missing(TestModels.smolLM2Path))")
    let r = try BitplanProcess.run(["inspect", TestModels.smolLM2Path, "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    #expect(json["tensor_count"] as? Int == 272)
    #expect(json["parameter_count"] as? Int == 134_515_008)
    let tensors = json["tensors"] as! [[String: Any]]
    let q = tensors.first { $0["name"] as? String == "model.layers.0.self_attn.q_proj.weight" }!
    #expect(q["shape"] as? [Int] == [576, 576])
    #expect(q["dtype"] as? String == "Q4_1")
    #expect(q["size_in_bytes"] as? Int == 576 * 576 / 32 * 20)  // Q4_1: 20 bytes per 32 values (2 f16 + 16 nibble bytes)
    #expect(q["file_name"] as? String == "blk.0.attn_q.weight")
    let text = try BitplanProcess.run(["inspect", TestModels.smolLM2Path])
    #expect(text.stdout.contains("tensors: 272   parameters: 134,515,008"))
  }

  @Test(arguments: ["tiny-llama", "tiny-llama.gguf"])
  func tinyFixtures(name: String) throws {
    let r = try BitplanProcess.run(["inspect", BitplanProcess.fixture(name), "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    #expect(json["tensor_count"] as? Int == 20)
    #expect(json["parameter_count"] as? Int == 90_560)
  }

  /// Every corrupted fixture: exit status 65 (bad input data), one line on stderr naming the code and the file,
  /// nothing on stdout.
  @Test func corruptedFilesGiveOneLineTypedErrors() throws {
    let root = TestModels.repositoryRoot + "/Tests/ModelIOTests/Fixtures"
    var cases: [(String, String)] = []
    for line in try String(contentsOfFile: root + "/gguf/corrupt_expectations.txt", encoding: .utf8).split(separator: "\n")
    where !line.hasPrefix("#") {
      let parts = line.split(separator: " ")
      if parts.count >= 2 { cases.append(("gguf/" + parts[0], String(parts[1]))) }
    }
    #expect(cases.count >= 9)
    for (file, code) in cases {
      let r = try BitplanProcess.run(["inspect", root + "/" + file])
      #expect(r.status == 65, "\(file)")
      #expect(r.stdout.isEmpty, "\(file)")
      let lines = r.stderr.split(separator: "\n")
      #expect(lines.count == 1 && lines[0].contains("\(code):") && lines[0].contains(file), "\(file): \(r.stderr)")
    }
  }

  /// Each corrupted safetensors fixture, placed as `model.safetensors` in a folder with a valid config.json.
  @Test func corruptedSafetensorsFoldersGiveOneLineTypedErrors() throws {
    let root = TestModels.repositoryRoot + "/Tests/ModelIOTests/Fixtures/safetensors"
    let files = try FileManager.default.contentsOfDirectory(atPath: root).filter { !$0.hasPrefix("valid") }.sorted()
    #expect(files.count >= 9)
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let config = try Data(contentsOf: URL(fileURLWithPath: BitplanProcess.fixture("tiny-llama/config.json")))
    for file in files {
      let folder = dir.appendingPathComponent(file)
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      try config.write(to: folder.appendingPathComponent("config.json"))
      try FileManager.default.copyItem(atPath: root + "/" + file, toPath: folder.appendingPathComponent("model.safetensors").path)
      let code = file.split(separator: "-")[0]
      let r = try BitplanProcess.run(["inspect", folder.path])
      let lines = r.stderr.split(separator: "\n")
      #expect(r.status == (code == "io" ? 66 : 65) && r.stdout.isEmpty, "\(file)")
      #expect(lines.count == 1 && lines[0].contains("\(code):") && lines[0].contains("model.safetensors"), "\(file): \(r.stderr)")
    }
  }

  /// A missing path is exit status 66; a bare safetensors file is listed like a GGUF (tensors, dtypes, shapes,
  /// bytes), its architecture unknown.
  @Test func missingPathAndBareSafetensors() throws {
    let missing = try BitplanProcess.run(["inspect", "/nonexistent/model.gguf"])
    #expect(missing.status == 66 && missing.stderr.contains("MODEL '/nonexistent/model.gguf': cannot be read"))
    let bare = try BitplanProcess.run(["inspect", BitplanProcess.fixture("tiny-llama/model.safetensors")])
    #expect(bare.status == 0, "\(bare.stderr)")
    #expect(bare.stdout.contains("architecture: unknown") && bare.stdout.contains("tensors: 20   parameters: 90,560"))
    #expect(bare.stdout.contains("model.layers.1.mlp.down_proj.weight") && bare.stdout.contains("64 x 128"))
    let json = try BitplanProcess.run(["inspect", BitplanProcess.fixture("tiny-llama/model.safetensors"), "--json"])
    let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
    #expect(object["architecture"] as? String == "unknown" && object["tensor_bytes"] as? Int == 362_240)
    #expect((object["tensors"] as! [[String: Any]]).allSatisfy { $0["dtype"] as? String == "F32" })
  }
}
