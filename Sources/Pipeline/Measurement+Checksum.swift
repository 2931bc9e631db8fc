import TensorCore
import Foundation
import Sensitivity

/// The model's checksum for `model_sha256`.
extension Measurement {
  /// SHA-256 of the model, lower-case hex: of the file for a `.gguf`; for a Hugging Face folder, of the
  /// concatenated bytes of `config.json`, every `*.safetensors` file in name order, then `tokenizer.json` if
  /// present (the files that determine the weights, the architecture and the tokens).
  /// - Throws: `MeasureError.io` when a file cannot be read.
  public static func modelSHA256(path: String) throws(MeasureError) -> String {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw MeasureError(.io, "no such model file or folder", path: path)
    }
    var files = [path]
    if isDirectory.boolValue {
      let names: [String]
      do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
        throw MeasureError(.io, "cannot list the model folder: \(error.localizedDescription)", path: path)
      }
      files = ["config.json"] + names.filter { $0.hasSuffix(".safetensors") }.sorted()
      if names.contains("tokenizer.json") { files.append("tokenizer.json") }
      files = files.map { path + "/" + $0 }
    }
    var hash = SHA256()
    for file in files {
      guard let handle = FileHandle(forReadingAtPath: file) else {
        throw MeasureError(.io, "cannot open the model file to checksum it", path: file)
      }
      defer { try? handle.close() }
      do {
        while let chunk = try handle.read(upToCount: 1 << 22), !chunk.isEmpty { hash.update(chunk) }
      } catch {
        throw MeasureError(.io, "reading the model file: \(error.localizedDescription)", path: file)
      }
    }
    return hash.hexDigest()
  }
}
