import Foundation
@testable import TensorCore
import Testing
import _TestSupport

@Suite struct SHA256Tests {
  /// FIPS 180-2 appendix B examples, and the empty string.
  @Test(arguments: [
    ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    ),
  ])
  func fipsExamples(message: String, digest: String) {
    #expect(SHA256.hexDigest(Array(message.utf8)) == digest)
  }

  @Test func millionAs() {
    #expect(
      SHA256.hexDigest([UInt8](repeating: 0x61, count: 1_000_000))
        == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  /// 100,003 bytes (the low byte of each SplitMix64(seed: 9) draw), fed in uneven chunks and read from a file;
  /// the digest is Python's `hashlib.sha256` of the same bytes.
  @Test func chunkedAndFromFile() throws {
    var rng = SplitMix64(seed: 9)
    let bytes = (0..<100_003).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let want = "c057bdf3b5486f693d14ee992071695491ba0d8fb973a3b63a8bd2e4e88cc1eb"
    var h = SHA256()
    var offset = 0
    for size in [0, 1, 63, 64, 65, 1000, 4099] + Array(repeating: 10_000, count: 10) {
      let end = min(offset + size, bytes.count)
      h.update(bytes[offset..<end])
      offset = end
    }
    h.update(bytes[offset...])
    #expect(h.hexDigest() == want)
    let folder = temporaryFolder("sha")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/calib.txt"))
    #expect(try SHA256.hexDigest(fileAt: folder + "/calib.txt") == want)
    #expect { try SHA256.hexDigest(fileAt: folder + "/missing") } throws: { ($0 as? SHA256.FileError)?.path == folder + "/missing" }
  }

  /// The SHA-extension kernel (`bp_sha256_blocks`) against its Swift twin: the same state after 0–40 random blocks
  /// (seeded), and after blocks that exercise every byte value. The digests above go through the kernel wherever
  /// the CPU has the extensions; this says whether this run did.
  @Test func hardwareBlocksEqualTheSwiftCompression() {
    var rng = SplitMix64(seed: 31)
    for count in [0, 1, 2, 3, 7, 16, 40] {
      let blocks = (0..<64 * count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      #expect(SHA256.state(afterBlocks: blocks, hardware: true) == SHA256.state(afterBlocks: blocks, hardware: false), "\(count) blocks")
    }
    let ramp = (0..<256 * 4).map { UInt8(truncatingIfNeeded: $0) }
    #expect(SHA256.state(afterBlocks: ramp, hardware: true) == SHA256.state(afterBlocks: ramp, hardware: false))
    print("SHA256Tests: SHA extensions \(CPUFeatures.current.contains(.sha) ? "used" : "absent; the Swift compression ran both sides")")
  }
}
