// The CPU's instruction-set features as one bit mask (BP_CPU_* in CKernels.h), read with cpuid and checked against
// what the operating system saves (xgetbv): an AVX-512 bit is reported only when the OS enables the ZMM state.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <cpuid.h>

static uint64_t xcr0(void) {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}

uint64_t bp_cpu_features(void) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
  const unsigned max_leaf = a;
  uint64_t f = BP_CPU_X86_64;
  __cpuid(1, a, b, c, d);
  if (d & (1u << 26)) f |= BP_CPU_SSE2;
  if (c & (1u << 0)) f |= BP_CPU_SSE3;
  if (c & (1u << 9)) f |= BP_CPU_SSSE3;
  if (c & (1u << 19)) f |= BP_CPU_SSE41;
  if (c & (1u << 20)) f |= BP_CPU_SSE42;
  const int osxsave = (c >> 27) & 1;
  const uint64_t xcr = osxsave ? xcr0() : 0;
  const int os_avx = (xcr & 0x6) == 0x6;            // XMM and YMM state
  const int os_avx512 = os_avx && (xcr & 0xE0) == 0xE0;  // opmask, ZMM_Hi256, Hi16_ZMM
  const int os_amx = (xcr & 0x60000) == 0x60000;     // XTILECFG, XTILEDATA
  if (os_avx) {
    if (c & (1u << 28)) f |= BP_CPU_AVX;
    if (c & (1u << 12)) f |= BP_CPU_FMA;
    if (c & (1u << 29)) f |= BP_CPU_F16C;
  }
  if (max_leaf >= 7) {
    unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    if (os_avx && (b7 & (1u << 5))) f |= BP_CPU_AVX2;
    if (os_avx512) {
      if (b7 & (1u << 16)) f |= BP_CPU_AVX512F;
      if (b7 & (1u << 17)) f |= BP_CPU_AVX512DQ;
      if (b7 & (1u << 28)) f |= BP_CPU_AVX512CD;
      if (b7 & (1u << 30)) f |= BP_CPU_AVX512BW;
      if (b7 & (1u << 31)) f |= BP_CPU_AVX512VL;
      if (c7 & (1u << 1)) f |= BP_CPU_AVX512VBMI;
      if (c7 & (1u << 11)) f |= BP_CPU_AVX512VNNI;
      if (d7 & (1u << 23)) f |= BP_CPU_AVX512FP16;
      if (a7 >= 1) {
        unsigned a71 = 0, b71 = 0, c71 = 0, d71 = 0;
        __cpuid_count(7, 1, a71, b71, c71, d71);
        if (a71 & (1u << 5)) f |= BP_CPU_AVX512BF16;
      }
    }
    if (os_amx && (d7 & (1u << 24))) f |= BP_CPU_AMX_TILE;
    // the SHA extensions work on XMM registers: SSE state only, which every x86-64 OS saves
    if ((b7 & (1u << 29)) && (f & BP_CPU_SSE41) && (f & BP_CPU_SSSE3)) f |= BP_CPU_SHA;
  }
  return f;
}
#else
uint64_t bp_cpu_features(void) { return 0; }
#endif
