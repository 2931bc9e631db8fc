// The portable integer GEMV (plain C, any CPU) and the choice of table.
//
// This is the C twin of Swift's `IntDot.integer` without the SIMD structure: per group an exact Int64 sum of
// (u − z)·a, then one Float multiply-add per group in row order. It defines what the vector tables must compute
// bit for bit in their integer part.

#include "CKernels.h"
#include "gemm_internal.h"

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

/// The little-endian binary16 at p, as Float.
static float f16_at(const uint8_t *p) { return half_to_float((uint16_t)(p[0] | p[1] << 8)); }

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
      } else if (layout->bits != 4) {
        // A little-endian bit stream per chunk of 32 codes (4·bits bytes): code k at bits bits·k ….
        const int bits = layout->bits;
        for (size_t i = 0; i < values; i++) {
          const uint8_t *chunk = q + (i / 32) * 4 * (size_t)bits;
          const size_t bit = (size_t)bits * (i % 32);
          const unsigned word = chunk[bit / 8] | (bit / 8 + 1 < 4 * (size_t)bits ? (unsigned)chunk[bit / 8 + 1] << 8 : 0u);
          isum += ((int64_t)((word >> (bit % 8)) & ((1u << bits) - 1)) - zero) * a[i];
        }
      } else {
        // Chunk c: byte j holds value 32c + j (low nibble) and 32c + 16 + j (high nibble).
        for (size_t c = 0; c < layout->chunks; c++) {
          for (size_t j = 0; j < 16; j++) {
            const uint8_t byte = q[16 * c + j];
            isum += ((int64_t)(byte & 15) - zero) * a[32 * c + j] + ((int64_t)(byte >> 4) - zero) * a[32 * c + 16 + j];
          }
        }
      }
      const float s = f16_at(p);
      sum += (layout->group_scales ? s * scales[g] : s) * (float)isum;
    }
    y[r] = layout->group_scales ? sum : sum * scales[0];
  }
}

/// Scale and min of sub-block j of a q4_K super-block, from its 12 packed bytes `q`: j < 4 in the low six bits of
/// q[j] and q[j + 4]; j ≥ 4 low four bits from q[j + 4] (scale: low nibble, min: high nibble) and high two bits
/// from the top of q[j − 4] and q[j].
static void q4_k_scale_min(const uint8_t *q, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
    *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
  }
}

/// q4_K (`fifth` 0) or q5_K (176-byte super-blocks: qh[32] at 16, qs at 48, bit 2c + t of qh[l] adds 16).
static void portable_q45_k(int fifth, const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                           const int8_t *codes, const float *scales, float *y) {
  for (size_t r = 0; r < rows; r++) {
    float sum = 0;
    for (size_t s = 0; s < super_blocks; s++) {
      const uint8_t *p = weights + r * row_bytes + (fifth ? 176 : 144) * s, *qs = p + (fifth ? 48 : 16);
      float main = 0, mins = 0;
      for (int j = 0; j < 8; j++) {
        const size_t b = 8 * s + (size_t)j;
        const int8_t *a = codes + 32 * b;
        const uint8_t *q = qs + 32 * (j / 2);
        int64_t isum = 0, asum = 0;
        for (int l = 0; l < 32; l++) {
          const int high = fifth ? (p[16 + l] >> j & 1) << 4 : 0;
          isum += (int64_t)((j % 2 ? q[l] >> 4 : q[l] & 15) | high) * a[l];
          asum += a[l];
        }
        int sc, m;
        q4_k_scale_min(p + 4, j, &sc, &m);
        main += scales[b] * (float)(sc * isum);
        mins += scales[b] * (float)(m * asum);
      }
      sum += f16_at(p) * main - f16_at(p + 2) * mins;
    }
    y[r] = sum;
  }
}

static void portable_q4_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                          const int8_t *codes, const float *scales, float *y) {
  portable_q45_k(0, weights, row_bytes, rows, super_blocks, codes, scales, y);
}

static void portable_q5_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                          const int8_t *codes, const float *scales, float *y) {
  portable_q45_k(1, weights, row_bytes, rows, super_blocks, codes, scales, y);
}

static void portable_q6_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                          const int8_t *codes, const float *scales, float *y) {
  for (size_t r = 0; r < rows; r++) {
    float sum = 0;
    for (size_t s = 0; s < super_blocks; s++) {
      const uint8_t *p = weights + r * row_bytes + 210 * s;
      float main = 0;
      for (int h = 0; h < 2; h++) {
        for (int g = 0; g < 4; g++) {
          const size_t b = 8 * s + 4 * (size_t)h + (size_t)g;  // the activation block of these 32 values
          const int8_t *a = codes + 32 * b;
          int64_t isum = 0;
          for (int l = 0; l < 32; l++) {
            const uint8_t low = p[64 * h + 32 * (g % 2) + l], high = p[128 + 32 * h + l];
            const int q = ((g < 2 ? low : low >> 4) & 15) | ((high >> (2 * g)) & 3) << 4;
            isum += (int64_t)(int8_t)p[192 + 8 * h + 2 * g + l / 16] * (q - 32) * a[l];
          }
          main += scales[b] * (float)isum;
        }
      }
      sum += f16_at(p + 208) * main;
    }
    y[r] = sum;
  }
}

static void portable_legacy(int kind, const uint8_t *weights, size_t row_bytes, size_t rows, size_t blocks,
                            const int8_t *codes, const float *scales, float *y) {
  const size_t size = kind == 1 ? 20 : kind == 0 ? 22 : 24, qs = kind == 1 ? 4 : kind == 0 ? 6 : 8;
  for (size_t r = 0; r < rows; r++) {
    float sum = 0, offsets = 0;
    for (size_t b = 0; b < blocks; b++) {
      const uint8_t *p = weights + r * row_bytes + size * b;
      const int8_t *a = codes + 32 * b;
      const uint32_t qh = kind == 1 ? 0 : (uint32_t)p[qs - 4] | (uint32_t)p[qs - 3] << 8 | (uint32_t)p[qs - 2] << 16
                                              | (uint32_t)p[qs - 1] << 24;
      int64_t isum = 0, asum = 0;
      for (int j = 0; j < 32; j++) {
        const int q = (j < 16 ? p[qs + j] & 15 : p[qs + j - 16] >> 4) | (int)(qh >> j & 1) << 4;
        isum += (int64_t)(kind == 0 ? q - 16 : q) * a[j];
        asum += a[j];
      }
      sum += f16_at(p) * scales[b] * (float)isum;
      if (kind != 0) offsets += f16_at(p + 2) * scales[b] * (float)asum;
    }
    y[r] = sum + offsets;
  }
}

static void portable_q2_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                          const int8_t *codes, const float *scales, float *y) {
  for (size_t r = 0; r < rows; r++) {
    float sum = 0;
    for (size_t s = 0; s < super_blocks; s++) {
      const uint8_t *p = weights + r * row_bytes + 84 * s;
      float main = 0, mins = 0;
      for (int k = 0; k < 16; k++) {  // sub-blocks of 16 values; activation block k / 2
        const size_t b = 8 * s + (size_t)k / 2;
        int64_t isum = 0, asum = 0;
        for (int i = 16 * k; i < 16 * k + 16; i++) {
          const int q = (p[16 + 32 * (i / 128) + i % 32] >> (2 * (i % 128 / 32))) & 3;
          isum += (int64_t)q * codes[256 * s + (size_t)i];
          asum += codes[256 * s + (size_t)i];
        }
        main += scales[b] * (float)((p[k] & 15) * isum);
        mins += scales[b] * (float)((p[k] >> 4) * asum);
      }
      sum += f16_at(p + 80) * main - f16_at(p + 82) * mins;
    }
    y[r] = sum;
  }
}

static void portable_q3_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                          const int8_t *codes, const float *scales, float *y) {
  for (size_t r = 0; r < rows; r++) {
    float sum = 0;
    for (size_t s = 0; s < super_blocks; s++) {
      const uint8_t *p = weights + r * row_bytes + 110 * s, *sc = p + 96;
      float main = 0;
      for (int k = 0; k < 16; k++) {  // sub-blocks of 16 values; activation block k / 2
        const int low = k < 8 ? sc[k] & 15 : sc[k - 8] >> 4, high = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
        int64_t isum = 0;
        for (int i = 16 * k; i < 16 * k + 16; i++) {
          const int q = ((p[32 + 32 * (i / 128) + i % 32] >> (2 * (i % 128 / 32))) & 3) - ((p[i % 32] >> (i / 32) & 1) ? 0 : 4);
          isum += (int64_t)q * codes[256 * s + (size_t)i];
        }
        main += scales[8 * s + (size_t)k / 2] * (float)((low | high << 4) - 32) * (float)isum;
      }
      sum += f16_at(p + 108) * main;
    }
    y[r] = sum;
  }
}

static void portable_gemm(const bp_gemm_format *format, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
                          float *y, size_t y_stride, int accumulate);

static const bp_int_gemv_kernels portable_kernels = {
  "portable", portable_gemv, portable_q4_k, portable_q6_k, portable_q5_k, portable_legacy, portable_q2_k, portable_q3_k,
  bp_gemm_no_prepared_bytes, bp_gemm_no_prepare, portable_gemm,
};

/// The GEMM is the per-token GEMV over tiles of rows (`bp_gemm_tiled`), so it is the reference by construction.
static void portable_gemm(const bp_gemm_format *format, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
                          float *y, size_t y_stride, int accumulate) {
  bp_gemm_tiled(&portable_kernels, format, weights, rows, x, y, y_stride, accumulate);
}

const bp_int_gemv_kernels *bp_int_gemv_portable(void) { return &portable_kernels; }

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
extern const bp_int_gemv_kernels bp_int_gemv_avx512_vnni;
extern const bp_int_gemv_kernels bp_int_gemv_avx2_table;

const bp_int_gemv_kernels *bp_int_gemv_avx2(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    return &bp_int_gemv_avx2_table;
  }
  return NULL;
}

const bp_int_gemv_kernels *bp_int_gemv_best(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
      && __builtin_cpu_supports("avx512vbmi")
      && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("gfni") && __builtin_cpu_supports("f16c")
      && __builtin_cpu_supports("fma")) {
    return &bp_int_gemv_avx512_vnni;
  }
  const bp_int_gemv_kernels *avx2 = bp_int_gemv_avx2();
  return avx2 ? avx2 : &portable_kernels;
}
#else
const bp_int_gemv_kernels *bp_int_gemv_avx2(void) { return NULL; }
const bp_int_gemv_kernels *bp_int_gemv_best(void) { return &portable_kernels; }
#endif
