// The portable integer GEMV (plain C, any CPU) and the choice of table.
//
// This is the C twin of Swift's `IntDot.integer` without the SIMD structure: per group an exact Int64 sum of
// (u − z)·a, then one Float multiply-add per group in row order. It defines what the vector tables must compute
// bit for bit in their integer part.

#include "CKernels.h"

#include <string.h>

/// binary16 bits to Float, exact (subnormals included; no F16C needed).
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf, nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // 112 = 127 − 15
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal: mantissa·2⁻²⁴; shift until the leading 1 is the implicit bit.
    exponent = 113;
    while ((mantissa & 0x400) == 0) { mantissa <<= 1; exponent -= 1; }
    bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
  }
  float x;
  memcpy(&x, &bits, sizeof x);
  return x;
}

static void portable_gemv(bp_int_layout layout_value, const uint8_t *weights, size_t rows, const int8_t *codes,
                          const float *scales, float *y) {
  const bp_int_layout *layout = &layout_value;
  const size_t values = 32 * layout->chunks;  // activation codes per group
  const size_t code_offset = layout->symmetric ? 2 : 3;
  const size_t group_bytes = code_offset + layout->chunks * 4 * (size_t)layout->bits;
  for (size_t r = 0; r < rows; r++) {
    const uint8_t *row = weights + r * layout->row_bytes;
    float sum = 0;
    for (size_t g = 0; g < layout->groups; g++) {
      const uint8_t *p = row + g * group_bytes, *q = p + code_offset;
      const int8_t *a = codes + g * values;
      const int64_t zero = layout->symmetric ? (1 << (layout->bits - 1)) : p[2];
      int64_t isum = 0;
      if (layout->bits == 8 && layout->signed_codes) {
        for (size_t i = 0; i < values; i++) isum += (int64_t)(int8_t)q[i] * a[i];  // u − 128 = q
      } else if (layout->bits == 8) {
        for (size_t i = 0; i < values; i++) isum += ((int64_t)q[i] - zero) * a[i];
      } else {
        // Chunk c: byte j holds value 32c + j (low nibble) and 32c + 16 + j (high nibble).
        for (size_t c = 0; c < layout->chunks; c++) {
          for (size_t j = 0; j < 16; j++) {
            const uint8_t byte = q[16 * c + j];
            isum += ((int64_t)(byte & 15) - zero) * a[32 * c + j] + ((int64_t)(byte >> 4) - zero) * a[32 * c + 16 + j];
          }
        }
      }
      const float s = half_to_float((uint16_t)(p[0] | p[1] << 8));
      sum += (layout->group_scales ? s * scales[g] : s) * (float)isum;
    }
    y[r] = layout->group_scales ? sum : sum * scales[0];
  }
}

static const bp_int_gemv_kernels portable_kernels = {
  "portable", portable_gemv,
};

const bp_int_gemv_kernels *bp_int_gemv_portable(void) { return &portable_kernels; }

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
extern const bp_int_gemv_kernels bp_int_gemv_avx512_vnni;

const bp_int_gemv_kernels *bp_int_gemv_best(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
      && __builtin_cpu_supports("avx512vbmi")
      && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("gfni") && __builtin_cpu_supports("f16c")
      && __builtin_cpu_supports("fma")) {
    return &bp_int_gemv_avx512_vnni;
  }
  return &portable_kernels;
}
#else
const bp_int_gemv_kernels *bp_int_gemv_best(void) { return &portable_kernels; }
#endif
