import Testing
import TensorCore

/// The BLAS-kernel decision over the feature sets of several CPUs, as cpuid reports them (no model numbers).
@Suite struct BLASKernelsTests {
  static let sse: CPUFeatures = [.x86_64, .sse2, .sse3, .ssse3, .sse41, .sse42]
  /// Haswell or Zen 2: AVX2 + FMA, no AVX-512.
  static let avx2Only: CPUFeatures = sse.union([.avx, .fma, .f16c, .avx2])
  /// Emerald Rapids (family 6, model 207): AVX-512 with VNNI, BF16, FP16 and AMX.
  static let avx512Intel: CPUFeatures = avx2Only.union(CPUFeatures.avx512Core)
    .union([.avx512vbmi, .avx512vnni, .avx512bf16, .avx512fp16, .amxTile])
  /// Zen 4: AVX-512 with VNNI and BF16, no FP16 or AMX.
  static let zen4: CPUFeatures = avx2Only.union(CPUFeatures.avx512Core).union([.avx512vbmi, .avx512vnni, .avx512bf16])
  /// A CPU from after this code: everything above plus feature bits nobody has named yet.
  static let future = CPUFeatures(rawValue: avx512Intel.rawValue | (1 << 40) | (1 << 41))

  @Test func bestCoreFollowsTheInstructionSet() {
    #expect(BLASKernels.bestCore(for: Self.avx2Only)?.name == "Haswell")
    #expect(BLASKernels.bestCore(for: Self.avx512Intel)?.name == "SkylakeX")
    #expect(BLASKernels.bestCore(for: Self.zen4)?.name == "SkylakeX")
    #expect(BLASKernels.bestCore(for: Self.future)?.name == "SkylakeX")
    #expect(BLASKernels.bestCore(for: Self.sse.union(.avx))?.name == "Sandybridge")
    #expect(BLASKernels.bestCore(for: Self.sse)?.name == "Nehalem")
    #expect(BLASKernels.bestCore(for: []) == nil)  // not x86-64
    // AVX-512 F alone (Knights Landing) is not what the SkylakeX kernels need
    #expect(BLASKernels.bestCore(for: Self.avx2Only.union(.avx512f))?.name == "Haswell")
  }

  @Test func aCPUTheLibraryDoesNotKnowGetsItsKernelsByRelaunch() {
    // Debian's 0.3.21 on an Emerald Rapids Xeon: Prescott (SSE3)
    #expect(BLASKernels.decide(features: Self.avx512Intel, activeCore: "Prescott", userCoreType: nil) == .relaunch(core: "SkylakeX"))
    #expect(BLASKernels.decide(features: Self.future, activeCore: "Prescott", userCoreType: nil) == .relaunch(core: "SkylakeX"))
    // 0.3.21 calls Zen 4 "Zen" (AVX2 kernels)
    #expect(BLASKernels.decide(features: Self.zen4, activeCore: "Zen", userCoreType: nil) == .relaunch(core: "SkylakeX"))
    #expect(BLASKernels.decide(features: Self.avx2Only, activeCore: "Nehalem", userCoreType: nil) == .relaunch(core: "Haswell"))
    #expect(BLASKernels.decide(features: Self.avx2Only, activeCore: "Sandybridge", userCoreType: nil) == .relaunch(core: "Haswell"))
  }

  @Test func goodOrUnknownKernelsAreKept() {
    #expect(BLASKernels.decide(features: Self.avx512Intel, activeCore: "SkylakeX", userCoreType: nil) == .keep)
    #expect(BLASKernels.decide(features: Self.avx512Intel, activeCore: "Cooperlake", userCoreType: nil) == .keep)
    #expect(BLASKernels.decide(features: Self.avx2Only, activeCore: "Haswell", userCoreType: nil) == .keep)
    #expect(BLASKernels.decide(features: Self.avx2Only, activeCore: "Zen", userCoreType: nil) == .keep)
    // a newer library's name this table does not know is trusted
    #expect(BLASKernels.decide(features: Self.future, activeCore: "DiamondRapids", userCoreType: nil) == .keep)
    #expect(BLASKernels.decide(features: Self.sse, activeCore: "Nehalem", userCoreType: nil) == .keep)
    #expect(BLASKernels.decide(features: [], activeCore: "ARMV8", userCoreType: nil) == .keep)
    // a CPU weaker than the library's guess (impossible in practice) is never "fixed" downwards
    #expect(BLASKernels.decide(features: Self.avx2Only, activeCore: "SkylakeX", userCoreType: nil) == .keep)
  }

  @Test func theUsersOwnCoreTypeIsRespected() {
    #expect(BLASKernels.decide(features: Self.avx512Intel, activeCore: "Haswell", userCoreType: "Haswell")
      == .userChoice("Haswell", weaker: true))
    #expect(BLASKernels.decide(features: Self.avx512Intel, activeCore: "SkylakeX", userCoreType: "SkylakeX")
      == .userChoice("SkylakeX", weaker: false))
    // an empty variable is no choice
    #expect(BLASKernels.decide(features: Self.avx512Intel, activeCore: "Prescott", userCoreType: "") == .relaunch(core: "SkylakeX"))
  }

  @Test func aRelaunchedProcessNeverRelaunchesAgain() {
    #expect(BLASKernels.decide(features: Self.avx512Intel, activeCore: "SkylakeX", userCoreType: nil, relaunchedWith: "SkylakeX") == .keep)
    #expect(BLASKernels.decide(features: Self.avx512Intel, activeCore: "Prescott", userCoreType: nil, relaunchedWith: "SkylakeX")
      == .stillWeaker(requested: "SkylakeX"))
  }

  @Test func coreLevelsAreOrdered() {
    #expect(BLASKernels.level(ofCore: "Prescott")! < BLASKernels.level(ofCore: "Sandybridge")!)
    #expect(BLASKernels.level(ofCore: "sandybridge")! < BLASKernels.level(ofCore: "HASWELL")!)
    #expect(BLASKernels.level(ofCore: "Zen") == BLASKernels.level(ofCore: "Haswell"))
    #expect(BLASKernels.level(ofCore: "Haswell")! < BLASKernels.level(ofCore: "SkylakeX")!)
    #expect(BLASKernels.level(ofCore: "no such core") == nil)
  }

  /// This machine: the library reports a core, and the process (not relaunched: a test runner) names it.
  @Test func thisMachineReportsItsLibraryAndKernels() {
    #expect(BLASKernels.libraryVersion.hasPrefix("OpenBLAS"))
    #expect(!BLASKernels.activeCore.isEmpty)
    #expect(BLASKernels.summary.contains(BLASKernels.activeCore))
    #if arch(x86_64)
      #expect(CPUFeatures.current.isSuperset(of: [.x86_64, .sse2]))
    #endif
  }
}
