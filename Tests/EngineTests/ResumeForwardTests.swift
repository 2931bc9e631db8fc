import Engine
import Testing
import _TestSupport

/// `logits(resumingAt:from:)` against the full forward pass: the same code on the same inputs, so equal bit for bit.
@Suite struct ResumeForwardTests {
  func check<S: EngineScalar>(_: S.Type, tied: Bool) throws {
    let model: LlamaModel<S> = try TinyModel.model(tied: tied, layers: 3)
    let tokens = TinyModel.tokens
    let inputs = try model.blockInputs(tokens: tokens)
    #expect(inputs.states.count == 4 && inputs.states.allSatisfy { $0.count == tokens.count * 8 })
    let full = try model.logits(tokens: tokens)
    for block in 0...3 {
      #expect(try model.logits(resumingAt: block, from: inputs).storage == full.storage, "block \(block)")
    }
    // Change a layer of block 1: resuming at block 0 or 1 from the unchanged model's states gives the changed model's
    // logits exactly; resuming at block 2 (above the change) does not (the test can fail).
    let name = "model.layers.1.mlp.up_proj.weight"
    let original = try model.weight(named: name)
    try model.replaceWeight(name: name, with: original.map { $0 * S(0.5) })
    let changed = try model.logits(tokens: tokens)
    #expect(changed.storage != full.storage)
    #expect(try model.logits(resumingAt: 0, from: inputs).storage == changed.storage)
    #expect(try model.logits(resumingAt: 1, from: inputs).storage == changed.storage)
    #expect(try model.logits(resumingAt: 2, from: inputs).storage != changed.storage)
    try model.replaceWeight(name: name, with: original)
    #expect(try model.logits(resumingAt: 2, from: inputs).storage == full.storage)
  }

  @Test func resumedEqualsFullForwardFloat() throws {
    try check(Float.self, tied: true)
    try check(Float.self, tied: false)
  }

  @Test func resumedEqualsFullForwardDouble() throws { try check(Double.self, tied: false) }

  @Test func outOfRangeBlockOrForeignStatesAreRefused() throws {
    let model: LlamaModel<Float> = try TinyModel.model(layers: 2)
    let inputs = try model.blockInputs(tokens: TinyModel.tokens)
    #expect(throws: EngineError.self) { try model.logits(resumingAt: 3, from: inputs) }
    #expect(throws: EngineError.self) { try model.logits(resumingAt: -1, from: inputs) }
    let other: LlamaModel<Float> = try TinyModel.model(layers: 3)
    #expect(throws: EngineError.self) { try other.logits(resumingAt: 1, from: inputs) }
  }
}
