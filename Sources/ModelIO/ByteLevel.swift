/// GPT-2's byte-level alphabet (`bytes_to_unicode` in OpenAI's `encoder.py`, `ByteLevel` in Hugging Face
/// `tokenizers`): every byte 0...255 is shown as one printable Unicode scalar, so that a byte-level BPE vocabulary
/// can be stored as ordinary strings.
///
/// The 188 bytes that are printable Latin-1 (`!`...`~`, `¡`...`¬`, `®`...`ÿ`) stand for themselves. The other 68
/// (controls, space, DEL, the C1 range, NBSP and the soft hyphen) are shifted, in byte order, to U+0100, U+0101, ...
/// so the space 0x20 becomes `Ġ` (U+0120) and the newline 0x0A becomes `Ċ` (U+010A).
public enum ByteLevel {
  /// The scalar that stands for each byte, indexed by the byte.
  public static let scalarForByte: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: "\0", count: 256)
    var shifted: UInt32 = 256
    for byte in 0..<256 {
      if isSelfMapped(UInt8(byte)) {
        table[byte] = Unicode.Scalar(UInt8(byte))
      } else {
        table[byte] = Unicode.Scalar(shifted)!  // 256...323, always a valid scalar
        shifted += 1
      }
    }
    return table
  }()

  /// The inverse of `scalarForByte`, indexed by scalar value (0...323); `-1` where no byte maps there.
  static let byteForScalarValue: [Int16] = {
    var table = [Int16](repeating: -1, count: 324)
    for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
    return table
  }()

  /// Whether `byte` is printable Latin-1 and so stands for itself.
  @inline(__always)
  static func isSelfMapped(_ byte: UInt8) -> Bool {
    (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
  }

  /// The byte that `scalar` stands for, or `nil` when it is not in the byte-level alphabet.
  @inline(__always)
  public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
    let value = Int(scalar.value)
    guard value < byteForScalarValue.count else { return nil }
    let byte = byteForScalarValue[value]
    return byte < 0 ? nil : UInt8(byte)
  }

  /// The byte-level spelling of `bytes`: one scalar per byte.
  public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var scalars = String.UnicodeScalarView()
    for byte in bytes { scalars.append(scalarForByte[Int(byte)]) }
    return String(scalars)
  }

  /// The bytes spelled by a byte-level string, or `nil` when it contains a scalar outside the alphabet
  /// (a control token such as `<|im_start|>` is spelled in plain text and is not byte-level).
  public static func decode(_ text: String) -> [UInt8]? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
      guard let byte = byte(for: scalar) else { return nil }
      bytes.append(byte)
    }
    return bytes
  }
}
