// Helpers shared by the AVX-512 GEMV (int_gemv_avx512.c) and GEMM (int_gemm_avx512.c) kernels. Private to
// CKernels; include only inside `#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))`.

#ifndef BITPLAN_AVX512_COMMON_H
#define BITPLAN_AVX512_COMMON_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define BP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,gfni,f16c,fma")))
/// Helpers are inlined into the per-format loops, so `bits` and `symmetric` are constants there.
#define BP_INLINE static inline __attribute__((always_inline))

/// Mask of the first n ≤ 64 bytes.
BP_AVX512 BP_INLINE __mmask64 first_bytes(size_t n) { return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1); }

/// f16 bits at p.
static inline unsigned short f16_at(const uint8_t *p) { return (unsigned short)(p[0] | p[1] << 8); }

/// For steps of four groups (16 code bytes each, `g` bytes apart after a header of h bytes): byte 16i + j of
/// the codes register comes from byte h + i·g + j of the step, which is byte o of its first 64 bytes (index o) or
/// byte o − last of its last 64 (index 64 + o − last, last = h + 3g + 16 − 64).
BP_AVX512 static inline __m512i step_code_index(size_t h, size_t g) {
  const size_t last = h + 3 * g + 16 - 64;
  _Alignas(64) uint8_t index[64];
  for (size_t i = 0; i < 4; i++) {
    for (size_t j = 0; j < 16; j++) {
      const size_t o = h + i * g + j;
      index[16 * i + j] = (uint8_t)(o < 64 ? o : 64 + o - last);
    }
  }
  return _mm512_load_si512((const void *)index);
}

#endif
