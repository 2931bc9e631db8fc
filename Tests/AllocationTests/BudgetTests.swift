import Allocation
import Testing

@Suite struct BudgetTests {
  @Test(arguments: [
    ("123456", 123_456), ("0", 0), ("80MiB", 83_886_080), ("80MB", 80_000_000), ("1.5GiB", 1_610_612_736),
    ("512KiB", 524_288), ("2KB", 2000), ("100B", 100), (" 80 MiB ", 83_886_080), ("0.5MiB", 524_288),
    ("1.0000001KiB", 1024),  // 1024.0001 bytes, floored
  ])
  func parsesSizes(text: String, bytes: Int) throws {
    #expect(try Budget.parse(text) == .bytes(bytes))
  }

  @Test(arguments: ["", "MiB", "-5", "-1MiB", "80Mb", "80 mib", "1e6", "eighty", "1.2.3MB", "99999999999TiB", "nan"])
  func rejectsBadSizes(text: String) {
    #expect {
      try Budget.parse(text)
    } throws: { ($0 as? AllocationError)?.code == .badBudget }
  }

  /// --bpw 4.5 over 1,000,001 weights is ⌊4.5 · 1,000,001 / 8⌋ = ⌊562,500.5625⌋ = 562,500 bytes.
  @Test func bitsPerWeightFloorsToBytes() throws {
    #expect(try Budget.bitsPerWeight("4.5").bytes(parameterCount: 1_000_001) == 562_500)
    #expect(try Budget.bitsPerWeight("16").bytes(parameterCount: 3) == 6)
    #expect(try Budget.parse("80MiB").bytes(parameterCount: 1) == 83_886_080)
    for bad in ["0", "-1", "x", "inf", ""] {
      #expect(throws: AllocationError.self) { try Budget.bitsPerWeight(bad) }
    }
  }
}
