import Quantization
import Testing
@testable import Validation

@Suite struct BaselinesTests {
  /// Four blocks of SmolLM2's shapes (d 576, ffn 1536, 3 kv heads of 64).
  var layers: [LayerShape] {
    (0..<4).flatMap { b in
      [("self_attn.q_proj", 576, 576), ("self_attn.k_proj", 192, 576), ("self_attn.v_proj", 192, 576),
       ("self_attn.o_proj", 576, 576), ("mlp.gate_proj", 1536, 576), ("mlp.up_proj", 1536, 576),
       ("mlp.down_proj", 576, 1536)].map { LayerShape(name: "model.layers.\(b).\($0.0)", rows: $0.1, columns: $0.2) }
    }
  }
  let candidates = try! ["q4_0", "q5_0", "q8_0", "q4_k", "q6_k", "int4-g64"].map { try QuantFormat(parsing: $0) }

  func bytes(_ f: String) -> Int {
    let format = try! QuantFormat(parsing: f)
    return layers.reduce(0) { $0 + format.sizeInBytes(rows: $1.rows, columns: $1.columns) }
  }

  @Test func useMoreBitsMatchesLlamaCpp() {
    // n = 30 (SmolLM2): i < 3, i ≥ 26, or (i − 3) mod 3 == 2 → 0,1,2,5,8,…,26,27,28,29.
    let more = (0..<30).filter { Baselines.useMoreBits($0, 30) }
    #expect(more == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29])
  }

  @Test func uniformPicksTheLargestFormatThatFits() throws {
    let budget = bytes("q5_0") + 10
    let b = try Baselines.make(.uniform, layers: layers, candidates: candidates, budgetBytes: budget).get()
    // q4_k/q6_k cannot take 576-wide rows, so they are not uniform candidates; q5_0 is the largest that fits.
    #expect(b.label == "uniform q5_0")
    #expect(b.assignment.totalBytes == bytes("q5_0"))
    #expect(throws: PlanValidationError.self) { try Baselines.make(.uniform, layers: layers, candidates: candidates, budgetBytes: 100).get() }
  }

  @Test func uniformPrefersTheLeastPredictedLossWhenScored() throws {
    // A score that makes q4_0 look best although q5_0 also fits.
    let b = try Baselines.make(
      .uniform, layers: layers, candidates: candidates, budgetBytes: bytes("q5_0"),
      predictedLoss: { _, f in f.name == "q4_0" ? 0 : 1 }
    ).get()
    #expect(b.label == "uniform q4_0")
  }

  @Test func q4kmRaisesVAndDownInTheMoreBitsBlocksAndStaysInBudget() throws {
    let budget = bytes("q4_0") + bytes("q4_0") / 10
    let b = try Baselines.make(.q4km, layers: layers, candidates: candidates, budgetBytes: budget).get()
    #expect(b.assignment.totalBytes <= budget)
    // n = 4: use_more_bits holds for blocks 0 (i < 0? no: 4/8 = 0), 3 (≥ 7·4/8 = 3), and (i − 0) mod 3 == 2 → 2.
    #expect((0..<4).filter { Baselines.useMoreBits($0, 4) } == [2, 3])
    // down_proj (1536 wide) can take q6_k: in a more-bits block it starts there (and filling may raise it).
    for b3 in [2, 3] {
      let f = b.assignment.formats["model.layers.\(b3).mlp.down_proj"]!.name
      #expect(f == "q6_k" || f == "q8_0")
    }
    #expect(b.assignment.formats["model.layers.1.mlp.down_proj"]!.name != "q6_k" || b.label.contains("filled"))
    // A 576-wide v_proj cannot take q6_k: its nearest rung to 6.56 bits is q5_0 (5.5) rather than q8_0 (8.5).
    let v3 = b.assignment.formats["model.layers.3.self_attn.v_proj"]!.name
    #expect(v3 == "q5_0" || v3 == "q8_0")
  }

  /// llama.cpp's Q4_K_M for the output matrices (`llama_tensor_get_type`, src/llama-quant.cpp): `output.weight`, and
  /// `token_embd.weight` when tied, become q6_K, or q8_0 when the row is not a multiple of 256 (`nx % qk_k != 0`);
  /// an untied `token_embd.weight` keeps the ftype's q4_K. At a budget of exactly the rule's bytes nothing moves.
  @Test(arguments: [true, false])
  func q4kmQuantizesTheOutputMatricesAsLlamaCpp(tied: Bool) throws {
    let embedding = LayerShape(name: "model.embed_tokens", rows: 49152, columns: 576)
    let head = LayerShape(name: "lm_head", rows: 49152, columns: 768)
    let all = [embedding] + layers + (tied ? [] : [head])
    let rule = try Baselines.make(.q4km, layers: all, candidates: candidates, budgetBytes: .max, tiedEmbedding: tied).get()
    var expected: [String: QuantFormat] = [:]
    for l in all {
      // the rule's start, rebuilt: the high v/down layers as the test above, the rest nearest 4.5 bits
      let high = (l.kind == "v_proj" || l.kind == "down_proj") && Baselines.useMoreBits(l.block!, 4)
      let f: String
      switch l.name {
      case "model.embed_tokens": f = tied ? "q8_0" : "q4_0"
      case "lm_head": f = "q6_k"
      // (q4_k and q4_0 have equal bytes on a 1536-wide row; the ladder keeps the one listed first, q4_0)
      default: f = high ? (l.columns % 256 == 0 ? "q6_k" : "q5_0") : "q4_0"
      }
      expected[l.name] = try QuantFormat(parsing: f)
    }
    let budget = Assignment(formats: expected, layers: all).totalBytes
    let b = try Baselines.make(.q4km, layers: all, candidates: candidates, budgetBytes: budget, tiedEmbedding: tied).get()
    #expect(b.assignment.formats == expected)
    #expect(rule.assignment.formats.count == all.count)
  }

  @Test func fillingUsesTheBudgetAndLoweringRespectsIt() throws {
    for kind in [Baselines.Kind.q4km, .edges] {
      for budget in [bytes("q4_0"), bytes("q4_0") * 11 / 10, bytes("q5_0"), bytes("q8_0")] {
        let b = try Baselines.make(kind, layers: layers, candidates: candidates, budgetBytes: budget).get()
        #expect(b.assignment.totalBytes <= budget, "\(kind) at \(budget)")
        // Filled: no single layer can move one rung up without breaking the budget.
        for l in layers {
          let ladder = Baselines.ladder(l, index: 0, candidates: candidates, predictedLoss: nil)
          let f = b.assignment.formats[l.name]!
          let i = ladder.firstIndex(of: f)!
          if i + 1 < ladder.count {
            let delta = ladder[i + 1].sizeInBytes(rows: l.rows, columns: l.columns) - f.sizeInBytes(rows: l.rows, columns: l.columns)
            #expect(b.assignment.totalBytes + delta > budget, "\(kind) \(l.name) could still rise")
          }
        }
      }
    }
  }

  @Test func edgesPutsTheFirstAndLastBlocksHigh() throws {
    let budget = bytes("q8_0") * 8 / 10  // two of four blocks at 8.5 bits, two at 4.5: 6.5 on average
    let b = try Baselines.make(.edges, layers: layers, candidates: candidates, budgetBytes: budget).get()
    for l in layers where l.block == 0 || l.block == 3 {
      #expect(b.assignment.formats[l.name]!.bitsPerWeight(rows: l.rows, columns: l.columns) >= 8, "\(l.name)")
    }
    #expect(b.assignment.formats["model.layers.1.self_attn.q_proj"]!.bitsPerWeight(rows: 576, columns: 576) < 8)
  }

  /// With a target's byte model, "same size" is the target's: every baseline is within the budget in
  /// `Target.storedBytes`, is filled in those bytes, and uses only formats the target stores (q4_0, int5 and nf4 are
  /// offered as candidates but GPTQModel stores none of them).
  @Test(arguments: Baselines.Kind.allCases)
  func aTargetsBytesSizeTheBaselines(kind: Baselines.Kind) throws {
    let target = Target.gptqmodel
    let model = ByteModel.target(target)
    let offered = try ["q4_0", "int5-g64", "nf4-g64", "int4-g128", "int4-g64", "int4-g32-asym", "int8", "int3-g64", "f16"]
      .map { try QuantFormat(parsing: $0) }
    func stored(_ f: QuantFormat) -> Int {
      layers.reduce(0) { $0 + target.storedBytes(f, rows: $1.rows, columns: $1.columns) }
    }
    // (576 is no multiple of 128: int4-g128 is offered but GPTQModel cannot store it for these rows.)
    for budget in [stored(try QuantFormat(parsing: "int4-g64")), stored(try QuantFormat(parsing: "int4-g32")) * 21 / 20] {
      let b = try Baselines.make(kind, layers: layers, candidates: offered, budgetBytes: budget, byteModel: model).get()
      let total = layers.reduce(0) { $0 + target.storedBytes(b.assignment.formats[$1.name]!, rows: $1.rows, columns: $1.columns) }
      #expect(b.assignment.totalBytes == total)
      #expect(total <= budget, "\(b.label) at \(budget)")
      for l in layers {
        let f = b.assignment.formats[l.name]!
        #expect(target.canStore(f, rows: l.rows, columns: l.columns), "\(l.name): \(f.name)")
      }
      // Filled in the target's bytes: no layer can rise one rung of its (target) ladder within the budget.
      if kind != .uniform {
        for l in layers {
          let ladder = Baselines.ladder(l, index: 0, candidates: offered, predictedLoss: nil, byteModel: model)
          #expect(ladder.allSatisfy { target.canStore($0, rows: l.rows, columns: l.columns) })
          let f = b.assignment.formats[l.name]!
          let i = ladder.firstIndex(of: f)!
          if i + 1 < ladder.count {
            let delta = model.bytes(ladder[i + 1], l) - model.bytes(f, l)
            #expect(total + delta > budget, "\(kind) \(l.name) could still rise")
          }
        }
      }
    }
    // The grammar's bytes differ from GPTQModel's for these shapes, so the byte model matters.
    let f = try QuantFormat(parsing: "int4-g64")
    #expect(Assignment(formats: Dictionary(uniqueKeysWithValues: layers.map { ($0.name, f) }), layers: layers).totalBytes != stored(f))
  }

  /// Without a byte model the grammar's is used, and `Target.any`'s is the same: the no-target path is unchanged.
  @Test(arguments: Baselines.Kind.allCases)
  func theDefaultByteModelIsTheGrammars(kind: Baselines.Kind) throws {
    for budget in [bytes("q4_0") * 11 / 10, bytes("q5_0")] {
      let plain = Baselines.make(kind, layers: layers, candidates: candidates, budgetBytes: budget)
      let any = Baselines.make(kind, layers: layers, candidates: candidates, budgetBytes: budget, byteModel: .target(.any))
      #expect(plain == any)
      let b = try plain.get()
      #expect(b.assignment.totalBytes == layers.reduce(0) { $0 + b.assignment.formats[$1.name]!.sizeInBytes(rows: $1.rows, columns: $1.columns) })
    }
  }
}
