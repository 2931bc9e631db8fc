import Testing

/// SHA-256 (FIPS 180-4) of bytes, for comparing dequantized tensors with the digests in the golden files.
/// Tests only: Foundation on Linux has no CryptoKit and the package takes no crypto dependency.
struct GGUFTestSHA256 {
  private var h: [UInt32] = [
    0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
  ]
  private var buffer: [UInt8] = []
  private var length: UInt64 = 0
  private var w = [UInt32](repeating: 0, count: 64)

  private static let k: [UInt32] = [
    0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
    0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
    0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
    0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
    0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
    0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
    0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
    0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
  ]

  /// Adds bytes to the message.
  mutating func update(_ bytes: UnsafeRawBufferPointer) {
    length &+= UInt64(bytes.count)
    var i = 0
    if !buffer.isEmpty {
      while i < bytes.count && buffer.count < 64 { buffer.append(bytes[i]); i += 1 }
      if buffer.count == 64 { buffer.withUnsafeBytes { compress($0, 0) }; buffer.removeAll(keepingCapacity: true) }
    }
    while i + 64 <= bytes.count { compress(bytes, i); i += 64 }
    while i < bytes.count { buffer.append(bytes[i]); i += 1 }
  }

  /// The digest as lowercase hex.
  mutating func finalize() -> String {
    let bitLength = length &* 8
    var tail: [UInt8] = [0x80]
    while (buffer.count + tail.count) % 64 != 56 { tail.append(0) }
    for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(s))) }
    let savedLength = length
    tail.withUnsafeBytes { update($0) }
    length = savedLength
    return h.map { word in
      let hex = String(word, radix: 16)
      return String(repeating: "0", count: 8 - hex.count) + hex
    }.joined()
  }

  private mutating func compress(_ p: UnsafeRawBufferPointer, _ offset: Int) {
    // Raw pointers and locals only: `swift test` builds -Onone, where array accessors dominate otherwise.
    let src = p.baseAddress! + offset
    w.withUnsafeMutableBufferPointer { wb in
      let w = wb.baseAddress!
      for t in 0..<16 { w[t] = UInt32(bigEndian: src.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self)) }
      for t in 16..<64 {
        let a = w[t - 15], b = w[t - 2]
        let s0 = (a >> 7 | a << 25) ^ (a >> 18 | a << 14) ^ (a >> 3)
        let s1 = (b >> 17 | b << 15) ^ (b >> 19 | b << 13) ^ (b >> 10)
        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
      }
      h.withUnsafeMutableBufferPointer { hb in
        let h = hb.baseAddress!
        var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
        Self.k.withUnsafeBufferPointer { kb in
          let k = kb.baseAddress!
          for t in 0..<64 {
            let s1 = (e >> 6 | e << 26) ^ (e >> 11 | e << 21) ^ (e >> 25 | e << 7)
            let t1 = hh &+ s1 &+ ((e & f) ^ (~e & g)) &+ k[t] &+ w[t]
            let s0 = (a >> 2 | a << 30) ^ (a >> 13 | a << 19) ^ (a >> 22 | a << 10)
            let t2 = s0 &+ ((a & b) ^ (a & c) ^ (b & c))
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
          }
        }
        h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
      }
    }
  }

  /// Digest of `Float` values as little-endian float32 bytes (the golden files' convention).
  static func hex(of values: [Float]) -> String {
    var sha = GGUFTestSHA256()
    values.withUnsafeBytes { sha.update($0) }  // little-endian host (x86-64, arm64)
    return sha.finalize()
  }
}

@Suite struct GGUFTestSHA256Tests {
  /// FIPS 180-4 examples, plus a 1000-byte message that crosses the block boundary in uneven pieces.
  @Test func knownDigests() {
    func digest(_ s: String) -> String {
      var sha = GGUFTestSHA256()
      Array(s.utf8).withUnsafeBytes { sha.update($0) }
      return sha.finalize()
    }
    #expect(digest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(
      digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    var sha = GGUFTestSHA256()
    let a = [UInt8](repeating: 0x61, count: 1000)
    a.withUnsafeBytes { raw in
      var i = 0
      for n in [1, 63, 64, 65, 7, 800] { sha.update(UnsafeRawBufferPointer(rebasing: raw[i..<i + n])); i += n }
    }
    #expect(sha.finalize() == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
  }
}
