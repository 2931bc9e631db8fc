import GGML
import ModelIO
import Pipeline
import Quantization
import Testing
import _TestSupport

/// `Target.llamaCpp.storedBytes` against a file llama-quantize wrote: SmolLM2-135M-Instruct Q4_1's tensor table.
/// Every weight matrix's stored type must be one the target offers for its shape, and its bytes must equal the
/// tensor's data size and the gap to the next tensor's offset (less GGUF's alignment padding).
@Suite struct TargetGGUFTests {
  @Test func llamaCppBytesEqualTheGGUFTensorTable() throws {
    let path = TestModels.smolLM2Path
    guard TestModels.exists(path) else {
      Issue.record(Comment(rawValue: TestModels.missing(path)))
      return
    }
    let file = try GGUFFile(path: path)
    let byOffset = file.tensors.sorted { $0.offset < $1.offset }
    var checked: [String: String] = [:]
    for (i, info) in byOffset.enumerated() where info.dimensions.count == 2 && info.name.hasSuffix(".weight") {
      let (columns, rows) = (info.dimensions[0], info.dimensions[1])
      let format: QuantFormat
      switch info.type {
      case .f16: format = .f16
      case let type where type.canQuantize: format = .ggml(type)
      default: continue  // f32 norms are 1-D; nothing else is expected
      }
      let isEmbedding = info.name == "token_embd.weight"
      #expect(Target.llamaCpp.canStore(format, rows: rows, columns: columns, isEmbedding: isEmbedding), "\(info.name) \(format)")
      let bytes = Target.llamaCpp.storedBytes(format, rows: rows, columns: columns, isEmbedding: isEmbedding)
      #expect(bytes == info.sizeInBytes, "\(info.name)")
      if i + 1 < byOffset.count {
        let gap = byOffset[i + 1].offset - info.offset
        #expect(gap - bytes >= 0 && gap - bytes < file.alignment, "\(info.name): \(bytes) bytes, next tensor \(gap) bytes on")
      }
      checked[info.name] = format.name
    }
    // 30 blocks × 7 linear weights + the (tied) token embedding.
    #expect(checked.count == 211, "\(checked.count) weights checked")
    #expect(checked["token_embd.weight"] != nil && checked["blk.0.attn_q.weight"] != nil && checked["blk.29.ffn_down.weight"] != nil)
  }
}

/// `MeasureSettings.candidateFormats`: the run's columns with and without a target.
@Suite struct MeasureTargetTests {
  static let smol: [(rows: Int, columns: Int)] = [(576, 576), (192, 576), (1536, 576), (576, 1536)]

  @Test func defaultStaysTheSevenFormats() throws {
    #expect(try MeasureSettings().candidateFormats(shapes: Self.smol) == MeasureSettings.defaultCandidates)
  }

  @Test func targetOffersTheUnionOfWhatItStores() throws {
    var s = MeasureSettings()
    s.target = .llamaCpp
    let names = try s.candidateFormats(shapes: Self.smol).map(\.name)
    #expect(names.first == "f16")
    #expect(Set(names) == ["f16", "q8_0", "q6_k", "q5_k", "q5_1", "q5_0", "q4_k", "q4_1", "q4_0", "q3_k", "q2_k"])
    let bits = try s.candidateFormats(shapes: Self.smol).map(\.nominalBits)
    #expect(bits == bits.sorted(by: >), "by decreasing bits")
    s.target = .mlx
    #expect(try s.candidateFormats(shapes: Self.smol).count == 1 + 6 * 3)
  }

  @Test func listedCandidatesMustBeStorable() throws {
    var s = MeasureSettings()
    s.target = .llamaCpp
    s.candidates = try QuantFormat.parseList("q4_0,int4-g32,f16")
    #expect {
      try s.candidateFormats(shapes: Self.smol)
    } throws: { error in
      let e = error as? MeasureError
      return e?.code == .badCandidate && e!.message.contains("int4-g32") && e!.message.contains("llama-cpp")
    }
    s.candidates = try QuantFormat.parseList("q4_0,q6_k,f16")
    #expect(try s.candidateFormats(shapes: Self.smol).map(\.name) == ["q4_0", "q6_k", "f16"], "q6_k fits ffn_down")
  }
}
