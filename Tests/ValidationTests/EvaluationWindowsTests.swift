import Testing
@testable import Validation

@Suite struct EvaluationWindowsTests {
  let ids = Array(100..<1100)  // 1,000 ids

  @Test func bitplanWindowsSpreadOverTheText() throws {
    let w = try EvaluationWindows(ids: ids, bos: 1, length: 101, count: 4, protocol: .bitplan)
    #expect(w.windows.count == 4 && w.windows.allSatisfy { $0.count == 101 && $0[0] == 1 })
    // 100 ids per window, spare = 900: starts 0, 300, 600, 900; the last window ends at the end of the text.
    #expect(w.starts == [0, 300, 600, 900])
    #expect(w.windows[3].last == 1099)
    #expect(w.firstScored == 0 && w.scoredPerWindow == 100)
    #expect(w.targets(window: 1) == Array(400..<500))
  }

  @Test func bitplanSingleWindowStartsAtTheTop() throws {
    let w = try EvaluationWindows(ids: ids, bos: nil, length: 50, count: 1, protocol: .bitplan)
    #expect(w.windows == [Array(100..<150)])
  }

  @Test func tooShortTextIsATypedError() {
    #expect(throws: PlanValidationError.self) { try EvaluationWindows(ids: ids, bos: 1, length: 512, count: 8, protocol: .bitplan) }
    do {
      _ = try EvaluationWindows(ids: ids, bos: 1, length: 512, count: 8, protocol: .bitplan, source: "--eval 'e.txt'")
    } catch {
      #expect(error.code == .textTooShort)
      #expect(error.message.contains("--eval 'e.txt'") && error.message.contains("1000 tokens"))
    }
    #expect(throws: PlanValidationError.self) { try EvaluationWindows(ids: ids, bos: 1, length: 3, count: 1, protocol: .bitplan) }
    #expect(throws: PlanValidationError.self) { try EvaluationWindows(ids: ids, bos: 1, length: 8, count: 0, protocol: .bitplan) }
    #expect(throws: PlanValidationError.self) { try EvaluationWindows(ids: ids, bos: 1, length: 8, count: Int.max, protocol: .bitplan) }
  }

  @Test func llamaPerplexityChunksConsecutivelyAndScoresTheSecondHalf() throws {
    // BOS + 1,000 ids = 1,001 tokens: 3 chunks of 300, each with its first token replaced by BOS.
    let w = try EvaluationWindows(ids: ids, bos: 1, length: 300, count: 3, protocol: .llamaPerplexity)
    #expect(w.starts == [0, 300, 600])
    #expect(w.windows[0] == [1] + Array(100..<399))
    #expect(w.windows[1] == [1] + Array(400..<699))
    #expect(w.firstScored == 150 && w.scoredPerWindow == 149)
    #expect(w.targets(window: 0) == Array(250..<399))
    #expect(throws: PlanValidationError.self) { try EvaluationWindows(ids: ids, bos: 1, length: 300, count: 4, protocol: .llamaPerplexity) }
  }
}
