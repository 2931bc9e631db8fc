import Quantization
import Testing

/// `Target`: the candidate set of each runtime for SmolLM2's shapes, and each byte model against sizes worked by
/// hand from the consumer's tensor shapes (the GGUF tensor table check is `TargetGGUFTests` in PipelineTests).
@Suite struct TargetTests {
  /// SmolLM2-135M `[rows, columns]`: q_proj/o_proj, k_proj/v_proj, gate/up, down, the token embedding.
  static let smolShapes: [(rows: Int, columns: Int)] = [(576, 576), (192, 576), (1536, 576), (576, 1536), (49152, 576)]

  static func names(_ formats: [QuantFormat]) -> [String] { formats.map(\.name) }

  @Test func llamaCppOffersKQuantsOnlyOnRowsOf256() throws {
    let legacy = ["f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"]
    for shape in Self.smolShapes where shape.columns == 576 {
      #expect(Self.names(Target.llamaCpp.candidates(rows: shape.rows, columns: shape.columns)) == legacy, "\(shape)")
    }
    // ffn_down, 1536 = 6 · 256 wide: every K-quant too.
    #expect(
      Set(Self.names(Target.llamaCpp.candidates(rows: 576, columns: 1536)))
        == Set(legacy + ["q6_k", "q5_k", "q4_k", "q3_k", "q2_k"]))
    // The token embedding is offered the same set as a linear weight of its width.
    #expect(Target.llamaCpp.candidates(rows: 49152, columns: 576, isEmbedding: true)
      == Target.llamaCpp.candidates(rows: 49152, columns: 576))
    // A row of 48 values takes no GGML block type: only f16.
    #expect(Self.names(Target.llamaCpp.candidates(rows: 8, columns: 48)) == ["f16"])
    #expect(!Target.llamaCpp.canStore(try QuantFormat(parsing: "q4_k"), rows: 576, columns: 576))
    #expect(Target.llamaCpp.canStore(try QuantFormat(parsing: "q4_k"), rows: 576, columns: 1536))
    #expect(!Target.llamaCpp.canStore(try QuantFormat(parsing: "int4-g32"), rows: 576, columns: 1536))
  }

  @Test func mlxOffersAffineGroupsThatDivideTheRow() throws {
    // 576 = 4.5 · 128: groups 32 and 64 only; 1536: 32, 64 and 128.
    for shape in Self.smolShapes {
      let offered = Target.mlx.candidates(rows: shape.rows, columns: shape.columns)
      let groups = shape.columns == 576 ? [32, 64] : [32, 64, 128]
      var expected = ["f16"]
      for bits in [8, 6, 5, 4, 3, 2] { for g in groups { expected.append("affine\(bits)-g\(g)") } }
      #expect(Self.names(offered) == expected, "\(shape)")
      #expect(offered.allSatisfy { $0.canQuantize(rows: shape.rows, columns: shape.columns) })
    }
    #expect(Target.mlx.candidates(rows: 49152, columns: 576, isEmbedding: true) == Target.mlx.candidates(rows: 49152, columns: 576))
    #expect(!Target.mlx.canStore(try QuantFormat(parsing: "affine7-g64"), rows: 576, columns: 576), "mlx has no 7-bit mode")
    #expect(!Target.mlx.canStore(try QuantFormat(parsing: "affine4-g256"), rows: 576, columns: 1536), "groups 32/64/128 only")
    #expect(!Target.mlx.canStore(try QuantFormat(parsing: "int4-g64"), rows: 576, columns: 576))
  }

  @Test func gptqmodelAndLLMCompressorOfferTheirIntegerGrids() throws {
    for shape in Self.smolShapes {
      let groups: [String] = shape.columns == 576 ? ["", "-g32", "-g64"] : ["", "-g32", "-g64", "-g128"]
      func grid(_ bits: [Int]) -> Set<String> {
        var s: Set<String> = ["f16"]
        for b in bits { for g in groups { s.insert("int\(b)\(g)"); s.insert("int\(b)\(g)-asym") } }
        return s
      }
      #expect(Set(Self.names(Target.gptqmodel.candidates(rows: shape.rows, columns: shape.columns))) == grid([8, 4, 3, 2]))
      #expect(Set(Self.names(Target.llmCompressor.candidates(rows: shape.rows, columns: shape.columns))) == grid([8, 4]))
    }
    // Neither quantizes the embedding.
    #expect(Self.names(Target.gptqmodel.candidates(rows: 49152, columns: 576, isEmbedding: true)) == ["f16"])
    #expect(Self.names(Target.llmCompressor.candidates(rows: 49152, columns: 576, isEmbedding: true)) == ["f16"])
    #expect(!Target.llmCompressor.canStore(try QuantFormat(parsing: "int3-g64"), rows: 576, columns: 576))
    #expect(!Target.gptqmodel.canStore(try QuantFormat(parsing: "int6-g64"), rows: 576, columns: 576))
  }

  @Test func anyKeepsTheGrammarsDefaults() throws {
    for shape in Self.smolShapes {
      #expect(Target.any.candidates(rows: shape.rows, columns: shape.columns)
        == QuantFormat.candidates(for: shape.rows, columns: shape.columns))
    }
    // Any grammar format that fits, not only the default list.
    #expect(Target.any.canStore(try QuantFormat(parsing: "int7-g96"), rows: 4, columns: 192))
    #expect(!Target.any.canStore(try QuantFormat(parsing: "int7-g96"), rows: 4, columns: 640))
  }

  @Test func everyOfferedFormatIsStorableAndHasBytes() {
    for target in Target.allCases {
      for shape in Self.smolShapes {
        for format in target.candidates(rows: shape.rows, columns: shape.columns) {
          #expect(target.canStore(format, rows: shape.rows, columns: shape.columns), "\(target) \(format) \(shape)")
          #expect(target.storedBytes(format, rows: shape.rows, columns: shape.columns) > 0)
        }
      }
    }
  }

  @Test func byteModelsMatchHandCounts() throws {
    func bytes(_ t: Target, _ name: String, _ r: Int, _ c: Int) throws -> Int {
      t.storedBytes(try QuantFormat(parsing: name), rows: r, columns: c)
    }
    // f16 everywhere: 2 bytes a weight.
    for t in Target.allCases { #expect(try bytes(t, "f16", 576, 576) == 663_552) }
    // llama.cpp: q4_1 blocks of 32 in 20 bytes; q6_K super-blocks of 256 in 210; q8_0 32 in 34.
    #expect(try bytes(.llamaCpp, "q4_1", 576, 576) == 576 * 18 * 20)  // 207_360
    #expect(try bytes(.llamaCpp, "q6_k", 576, 1536) == 576 * 6 * 210)  // 725_760
    #expect(try bytes(.llamaCpp, "q8_0", 49152, 576) == 49152 * 18 * 34)
    // MLX: codes B/8 per weight + a 2-byte scale and a 2-byte bias per group.
    #expect(try bytes(.mlx, "affine4-g64", 576, 576) == 576 * 288 + 576 * 9 * 4)  // 186_624
    #expect(try bytes(.mlx, "affine3-g32", 192, 576) == 192 * 216 + 192 * 18 * 4)  // 55_296
    #expect(try bytes(.mlx, "affine6-g128", 576, 1536) == 576 * 1152 + 576 * 12 * 4)
    // GPTQModel int4-g128 on down_proj [576, 1536]: qweight [1536·4/32 = 192, 576] int32, qzeros [12, 576·4/32 = 72]
    // int32, scales [12, 576] f16, g_idx [1536] int32.
    #expect(try bytes(.gptqmodel, "int4-g128", 576, 1536) == 4 * 192 * 576 + 4 * 12 * 72 + 2 * 12 * 576 + 4 * 1536)
    // Symmetric or not, qzeros is written: the same bytes.
    #expect(try bytes(.gptqmodel, "int4-g128-asym", 576, 1536) == bytes(.gptqmodel, "int4-g128", 576, 1536))
    // Per channel (group_size −1 = 576) int3 on k_proj [192, 576]: qweight [54, 192], qzeros [1, 18], scales [1, 192].
    #expect(try bytes(.gptqmodel, "int3", 192, 576) == 4 * 54 * 192 + 4 * 1 * 18 + 2 * 192 + 4 * 576)
    // compressed-tensors int4-g128 on down_proj: weight_packed [576, 192] int32, weight_scale [576, 12] 16-bit,
    // weight_shape int64[2]; asymmetric adds weight_zero_point [576·4/32 = 72, 12] int32.
    #expect(try bytes(.llmCompressor, "int4-g128", 576, 1536) == 4 * 576 * 192 + 2 * 576 * 12 + 16)
    #expect(try bytes(.llmCompressor, "int4-g128-asym", 576, 1536) == 4 * 576 * 192 + 2 * 576 * 12 + 4 * 72 * 12 + 16)
    // Per channel int8 on q_proj: weight_packed [576, 144], weight_scale [576, 1].
    #expect(try bytes(.llmCompressor, "int8", 576, 576) == 4 * 576 * 144 + 2 * 576 + 16)
    // `any` is the grammar's size: int4-g128 = 2-byte scale + 64 code bytes per group of 128.
    #expect(try bytes(.any, "int4-g128", 576, 1536) == 576 * 12 * 66)
  }

  @Test func namesParseCaseInsensitively() {
    #expect(Target(name: "LLAMA-CPP") == .llamaCpp)
    #expect(Target(name: "llm-compressor") == .llmCompressor)
    #expect(Target(name: "gguf") == nil)
    #expect(Target.allCases.map(\.rawValue) == ["any", "llama-cpp", "mlx", "gptqmodel", "llm-compressor"])
  }
}
