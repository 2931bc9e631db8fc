import CBLAS
import CKernels

#if canImport(Glibc)
  import Glibc
#endif

/// Instruction-set features of the CPU that the operating system also enables (cpuid and xgetbv, read by CKernels'
/// `bp_cpu_features`). Bits mirror `BP_CPU_*`; tests build feature sets of other CPUs from them.
public struct CPUFeatures: OptionSet, Sendable, Hashable, CustomStringConvertible {
  public let rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }

  public static let x86_64 = CPUFeatures(rawValue: UInt64(BP_CPU_X86_64))
  public static let sse2 = CPUFeatures(rawValue: UInt64(BP_CPU_SSE2))
  public static let sse3 = CPUFeatures(rawValue: UInt64(BP_CPU_SSE3))
  public static let ssse3 = CPUFeatures(rawValue: UInt64(BP_CPU_SSSE3))
  public static let sse41 = CPUFeatures(rawValue: UInt64(BP_CPU_SSE41))
  public static let sse42 = CPUFeatures(rawValue: UInt64(BP_CPU_SSE42))
  public static let avx = CPUFeatures(rawValue: UInt64(BP_CPU_AVX))
  public static let fma = CPUFeatures(rawValue: UInt64(BP_CPU_FMA))
  public static let f16c = CPUFeatures(rawValue: UInt64(BP_CPU_F16C))
  public static let avx2 = CPUFeatures(rawValue: UInt64(BP_CPU_AVX2))
  public static let avx512f = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512F))
  public static let avx512dq = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512DQ))
  public static let avx512cd = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512CD))
  public static let avx512bw = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512BW))
  public static let avx512vl = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512VL))
  public static let avx512vbmi = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512VBMI))
  public static let avx512vnni = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512VNNI))
  public static let avx512bf16 = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512BF16))
  public static let avx512fp16 = CPUFeatures(rawValue: UInt64(BP_CPU_AVX512FP16))
  public static let amxTile = CPUFeatures(rawValue: UInt64(BP_CPU_AMX_TILE))
  /// The SHA extensions (sha256rnds2 …), which `SHA256` uses when present.
  public static let sha = CPUFeatures(rawValue: UInt64(BP_CPU_SHA))

  /// What OpenBLAS' SkylakeX kernels execute: AVX-512 F, CD, BW, DQ and VL.
  public static let avx512Core: CPUFeatures = [.avx512f, .avx512cd, .avx512bw, .avx512dq, .avx512vl]

  /// This machine's features (0 off x86-64).
  public static let current = CPUFeatures(rawValue: bp_cpu_features())

  static let names: [(CPUFeatures, String)] = [
    (.sse2, "sse2"), (.sse3, "sse3"), (.ssse3, "ssse3"), (.sse41, "sse4.1"), (.sse42, "sse4.2"), (.avx, "avx"),
    (.fma, "fma"), (.f16c, "f16c"), (.avx2, "avx2"), (.avx512f, "avx512f"), (.avx512dq, "avx512dq"),
    (.avx512cd, "avx512cd"), (.avx512bw, "avx512bw"), (.avx512vl, "avx512vl"), (.avx512vbmi, "avx512vbmi"),
    (.avx512vnni, "avx512vnni"), (.avx512bf16, "avx512bf16"), (.avx512fp16, "avx512fp16"), (.amxTile, "amx-tile"),
    (.sha, "sha"),
  ]

  /// Space-separated feature names, lower case (`sse2 … avx512vnni`).
  public var description: String {
    contains(.x86_64) ? Self.names.filter { contains($0.0) }.map(\.1).joined(separator: " ") : "not x86-64"
  }
}

/// Which OpenBLAS kernels run, and which this CPU could run.
///
/// OpenBLAS built with `DYNAMIC_ARCH` (Debian's is) picks one kernel set ("core") when the library is loaded, from the
/// CPU's family and model numbers. A CPU newer than the library is unknown to it: Debian's 0.3.21 runs its Prescott
/// (SSE3) kernels on an Emerald Rapids Xeon, 5× slower than its SkylakeX (AVX-512) ones there. `decide` compares the
/// core in use with the best one the CPU's *features* allow (cpuid bits, never model numbers) and says what to do.
public enum BLASKernels {
  /// Kernel families in increasing order of the instruction set their sgemm uses; OpenBLAS core names (as
  /// `openblas_get_corename()` prints them, lower-cased) map to one of these.
  public enum Level: Int, Comparable, Sendable, CustomStringConvertible {
    case sse2 = 0, sse3, avx, avx2, avx512
    public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    public var description: String { ["SSE2", "SSE3", "AVX", "AVX2", "AVX-512"][rawValue] }
  }

  /// The level of an OpenBLAS core name, or nil for a name this table does not know (a newer library's: trusted).
  public static func level(ofCore name: String) -> Level? {
    switch name.lowercased() {
    case "katmai", "coppermine", "northwood", "banias", "athlon", "opteron", "generic": return .sse2
    case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron_sse3", "barcelona", "bobcat":
      return .sse3
    case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return .avx
    case "haswell", "zen": return .avx2
    case "skylakex", "cooperlake", "sapphirerapids": return .avx512
    default: return nil
    }
  }

  /// The core to ask for on a CPU with `features`: the OpenBLAS x86-64 core whose kernels use the widest instruction
  /// set the CPU has (SkylakeX for AVX-512 F/CD/BW/DQ/VL, Haswell for AVX2 + FMA, Sandybridge for AVX, Nehalem for
  /// SSE4.2 — names every DYNAMIC_ARCH build since 0.3.10 accepts), or nil off x86-64.
  public static func bestCore(for features: CPUFeatures) -> (name: String, level: Level)? {
    guard features.contains(.x86_64) else { return nil }
    if features.isSuperset(of: CPUFeatures.avx512Core) { return ("SkylakeX", .avx512) }
    if features.isSuperset(of: [.avx2, .fma]) { return ("Haswell", .avx2) }
    if features.contains(.avx) { return ("Sandybridge", .avx) }
    if features.contains(.sse42) { return ("Nehalem", .sse3) }
    return nil
  }

  /// What to do about the kernels OpenBLAS chose.
  public enum Decision: Equatable, Sendable {
    /// The active core is as good as the CPU allows (or unknown to this table, or off x86-64): nothing to do.
    case keep
    /// The user set `OPENBLAS_CORETYPE` themselves: respected as it is, even when weaker (`weaker` says whether).
    case userChoice(String, weaker: Bool)
    /// The library chose weaker kernels than the CPU runs: start again with `OPENBLAS_CORETYPE` set to this core.
    case relaunch(core: String)
    /// We already asked for `requested` and the library still runs weaker kernels (a build without them).
    case stillWeaker(requested: String)
  }

  /// The decision, a pure function of the CPU's features, the core the library reports, the user's own
  /// `OPENBLAS_CORETYPE` (nil when unset) and the core this process was relaunched with (nil when it was not).
  public static func decide(
    features: CPUFeatures, activeCore: String, userCoreType: String?, relaunchedWith: String? = nil
  ) -> Decision {
    let best = bestCore(for: features)
    let weaker: Bool = {
      guard let best, let active = level(ofCore: activeCore) else { return false }
      return active < best.level
    }()
    if let relaunchedWith { return weaker ? .stillWeaker(requested: relaunchedWith) : .keep }
    if let user = userCoreType, !user.isEmpty { return .userChoice(user, weaker: weaker) }
    guard weaker, let best else { return .keep }
    return .relaunch(core: best.name)
  }

  /// The library as it reports itself: `openblas_get_config()` ("OpenBLAS 0.3.21 DYNAMIC_ARCH … SkylakeX …").
  public static var libraryConfiguration: String { String(cString: openblas_get_config()) }

  /// `OpenBLAS 0.3.21` from the configuration string.
  public static var libraryVersion: String { libraryConfiguration.split(separator: " ").prefix(2).joined(separator: " ") }

  /// The kernel set in use (`openblas_get_corename()`), e.g. `SkylakeX`.
  public static var activeCore: String { String(cString: openblas_get_corename()) }

  /// Environment variable that marks a process started again by `relaunchWithBestKernelsIfNeeded` (holds the core
  /// it asked for; prevents a second relaunch).
  public static let relaunchMarker = "BITPLAN_BLAS_RELAUNCHED"

  /// This process's decision (the environment and the loaded library as they are now).
  public static var currentDecision: Decision {
    let marker = environmentValue(relaunchMarker)
    return decide(
      features: .current, activeCore: activeCore,
      userCoreType: marker == nil ? environmentValue("OPENBLAS_CORETYPE") : nil, relaunchedWith: marker)
  }

  /// One line for benchmarks: the library, its kernels and the CPU's best, plus a warning when they are weaker.
  public static var summary: String {
    let best = bestCore(for: .current)
    var line = "BLAS: \(libraryVersion), kernels \(activeCore)"
    if let best { line += " (CPU allows \(best.name), \(best.level))" }
    switch currentDecision {
    case .keep: break
    case .userChoice(let core, let weaker):
      line += "; OPENBLAS_CORETYPE=\(core) set by the user"
      if weaker { line += " — warning: weaker kernels than this CPU runs" }
    case .relaunch(let core):
      line += " — warning: weaker kernels than this CPU runs (OPENBLAS_CORETYPE=\(core) would fix it)"
    case .stillWeaker(let requested):
      line += " — warning: asked for \(requested), the library still runs weaker kernels"
    }
    if environmentValue(relaunchMarker) != nil { line += "; relaunched with OPENBLAS_CORETYPE set" }
    return line
  }

  /// Makes OpenBLAS use the kernels the CPU allows, by starting this program again with `OPENBLAS_CORETYPE` set.
  ///
  /// Why a relaunch: OpenBLAS reads `OPENBLAS_CORETYPE` once, in its constructor, when the dynamic loader maps it —
  /// before `main` runs, since the executable links it. Setting the variable afterwards changes nothing, and loading
  /// a second copy with `dlopen` would leave two libraries with two thread pools and two sets of globals in one
  /// process (and every `cblas_*` symbol of this module bound to the first). `execv` of `/proc/self/exe` with the same
  /// arguments and the variable set costs a few milliseconds and gives a process where the library chose right
  /// from the start. The marker variable stops a loop: a relaunched process never relaunches again (if the library
  /// still runs weaker kernels, `summary` says so). A user's own `OPENBLAS_CORETYPE` is never overridden. Call first
  /// thing in `main`, before any thread starts. Returns only when no relaunch happened (or `execv` failed).
  public static func relaunchWithBestKernelsIfNeeded() {
    #if canImport(Glibc)
      guard case .relaunch(let core) = currentDecision else { return }
      setenv("OPENBLAS_CORETYPE", core, 1)
      setenv(relaunchMarker, core, 1)
      execv("/proc/self/exe", CommandLine.unsafeArgv)
      // execv returned: it failed; carry on with the library as it is.
      unsetenv("OPENBLAS_CORETYPE")
      unsetenv(relaunchMarker)
    #endif
  }
}

/// One environment variable (TensorCore does not import Foundation).
func environmentValue(_ name: String) -> String? {
  #if canImport(Glibc)
    return getenv(name).map { String(cString: $0) }
  #else
    return nil
  #endif
}
