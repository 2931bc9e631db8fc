// The integer GEMV and GEMM with AVX2 (+ FMA, F16C): the table CPUs without AVX-512 VNNI run (AMD Zen 1–3, Intel
// Haswell to Alder Lake), which would otherwise run the plain C table for every packed GEMM.
//
// One shape for every format: 32 weight values at a time become 32 signed bytes v (the code minus its zero point,
// or the K-quant's signed code), and the exact Int32 lanes of Σ v·a come from vpmaddubsw on |v| and a·sign(v)
// (every pair |v|·|a| + |v|·|a| ≤ 2·128·127 < 2¹⁵, so the Int16 step never saturates) then vpmaddwd against ones
// (or against the sub-block scales of the 16-value K-quants). Each 8-lane Int32 vector, converted to Float (exact
// below 2²⁴), is multiplied by its block's Float scale and added into 8 Float lanes per row, which are summed once
// at the end of the row. Like the AVX-512 table, it differs from the portable table only in the order the Float
// terms are added; the Int32 lane sums are exact (`CKernelTests` checks integer-valued cases bit for bit against
// the reference, and random ones against the portable table to a Float tolerance).
//
// - Integer layouts (IntegerCodec int2 … int8, q4_0, q8_0): for bits ≤ 7 the zero point comes off bytewise (u and
//   z ≤ 127, so u − z fits a signed byte); int8 reads q = u ⊕ 0x80 = u − 128 and, when z ≠ 128 (asymmetric int8),
//   adds (128 − z)·Σa from one more vpmaddubsw of ones against a. int4 chunks split into nibbles (value j low, 16 + j
//   high: ggml's q4_0 order), int8 is one load, and the other widths unpack 8 codes from each `bits` bytes.
//   Groups of one chunk (q4_0, q8_0, int4-g32, int8-g32) take their scale per chunk; longer groups sum their chunks
//   in Int32 lanes first.
// - q4_1, q5_0, q5_1: unsigned q ≤ 31 against a directly (vpmaddubsw of u8 × s8); q5_0's −16 and q4_1/q5_1's
//   offset m·Σa from the same ones-against-a lanes.
// - K-quants: q4_K/q5_K 32-value sub-blocks with their 6-bit scale and min (the min term from ones-against-a);
//   q6_K, q3_K and q2_K 16-value sub-blocks, their scales spread over the two halves of a vpmaddwd.
//
// The GEMM of the integer layouts, the legacy types and q4_K/q5_K/q6_K decodes each chunk of codes once for four
// tokens (`int_row_tokens` and its siblings), with per (row, token) the GEMV's own Int32 lanes and Float
// operations; q2_K and q3_K run `bp_gemm_tiled` over this GEMV (tiles of rows that stay in L1 for every token). Either way the GEMM equals the GEMV bit for bit
// (`PackedGEMMTests`).

#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <string.h>

#include "gemm_internal.h"

#define BP_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BP_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/// The f16 at p as Float (exact).
BP_AVX2_INLINE float half_at(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

/// Σ of the 8 Float lanes, in a fixed order.
BP_AVX2_INLINE float sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

/// Int16 pairs of Σ v·a for signed bytes v (any value, −128 read as 128) and activation bytes a (|a| ≤ 127).
BP_AVX2_INLINE __m256i pairs_signed(__m256i v, __m256i a) {
  return _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(a, v));
}

/// Int32 lanes of Σ v·a (signed v).
BP_AVX2_INLINE __m256i dot_signed(__m256i v, __m256i a) {
  return _mm256_madd_epi16(pairs_signed(v, a), _mm256_set1_epi16(1));
}

/// Int32 lanes of Σ a.
BP_AVX2_INLINE __m256i lane_sums(__m256i a) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), _mm256_set1_epi16(1));
}

/// 32 nibbles from 16 bytes: byte j's low nibble to byte j, its high nibble to byte 16 + j.
BP_AVX2_INLINE __m256i nibbles(const uint8_t *q) {
  const __m128i b = _mm_loadu_si128((const __m128i *)q), m = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

/// 32 bytes 0 or 16: byte j is 16 when bit j of the little-endian u32 at p is set.
BP_AVX2_INLINE __m256i bits_to_16(const uint8_t *p) {
  uint32_t h;
  memcpy(&h, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(
    _mm256_set1_epi32((int)h), _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
  const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

/// The 32 codes of one bit-stream chunk (4·bits bytes at q, code k at bits bits·k …) as bytes, for bits 2, 3, 5, 6,
/// 7. Codes 8i … 8i + 7 sit in bytes bits·i … bits·(i + 1) − 1, so each 128-bit half of two registers takes 16
/// bytes from bits·i (i = 0 … 3) and every code gets the 16-bit word at byte ⌊bits·j/8⌋ of its group of 8 (one
/// vpshufb, the same control for every half); that word shifted right by bits·j mod 8 (a vpmulhuw by 2^(15 − shift)
/// after a left shift by one, since AVX2 has no per-lane 16-bit shift) and masked is the code. `safe`: the 16-byte
/// loads may read past the chunk (up to 16 − bits bytes), so a chunk near the end of the caller's rows is copied
/// first.
BP_AVX2_INLINE __m256i stream_codes(const uint8_t *q, int bits, int safe) {
  _Alignas(16) uint8_t copy[64];
  if (!safe) {
    memset(copy, 0, sizeof copy);
    memcpy(copy, q, 4 * (size_t)bits);
    q = copy;
  }
  _Alignas(16) int8_t control[16];
  _Alignas(16) uint16_t multiplier[8];
  for (int j = 0; j < 8; j++) {
    control[2 * j] = (int8_t)(bits * j / 8);
    control[2 * j + 1] = (int8_t)(bits * j / 8 + 1);
    multiplier[j] = (uint16_t)(1u << (15 - bits * j % 8));
  }
  const __m128i c128 = _mm_load_si128((const __m128i *)control), m128 = _mm_load_si128((const __m128i *)multiplier);
  const __m256i ctrl = _mm256_set_m128i(c128, c128), mult = _mm256_set_m128i(m128, m128);
  const __m256i mask = _mm256_set1_epi16((short)((1 << bits) - 1));
  const __m256i w01 = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(q + bits)), _mm_loadu_si128((const __m128i *)q));
  const __m256i w23 =
    _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(q + 3 * bits)), _mm_loadu_si128((const __m128i *)(q + 2 * bits)));
  const __m256i c01 = _mm256_and_si256(_mm256_mulhi_epu16(_mm256_slli_epi16(_mm256_shuffle_epi8(w01, ctrl), 1), mult), mask);
  const __m256i c23 = _mm256_and_si256(_mm256_mulhi_epu16(_mm256_slli_epi16(_mm256_shuffle_epi8(w23, ctrl), 1), mult), mask);
  // packus interleaves the halves (codes 0–7, 16–23 | 8–15, 24–31); the 64-bit permute puts them in order.
  return _mm256_permute4x64_epi64(_mm256_packus_epi16(c01, c23), 0xD8);
}

/// Int32 lanes of Σ (u − z)·a over chunk c of a group's codes at q, `zb` = z in every byte, `a` the chunk's
/// activations, `end` the end of the caller's rows. `bits` is a constant after inlining.
BP_AVX2_INLINE __m256i chunk_dot(const uint8_t *q, size_t c, int bits, int signed_codes, int z, __m256i zb, __m256i a,
                                  const uint8_t *end) {
  if (bits == 8) {
    const __m256i raw = _mm256_loadu_si256((const __m256i *)(q + 32 * c));
    const __m256i v = signed_codes ? raw : _mm256_xor_si256(raw, _mm256_set1_epi8((char)0x80));  // u − 128
    const __m256i d = dot_signed(v, a);
    return z == 128 ? d : _mm256_add_epi32(d, _mm256_mullo_epi32(lane_sums(a), _mm256_set1_epi32(128 - z)));
  }
  const uint8_t *chunk = q + 4 * (size_t)bits * c;
  const __m256i u = bits == 4 ? nibbles(chunk) : stream_codes(chunk, bits, chunk + 3 * bits + 16 <= end);
  return dot_signed(_mm256_sub_epi8(u, zb), a);
}

/// One row of an integer layout, `bits` constant after inlining.
BP_AVX2_INLINE float int_row(const bp_int_layout *layout, int bits, const uint8_t *row, const int8_t *codes,
                             const float *scales, const uint8_t *end) {
  const size_t offset = layout->symmetric ? 2 : 3, group_bytes = offset + layout->chunks * 4 * (size_t)bits;
  __m256 acc = _mm256_setzero_ps();
  for (size_t g = 0; g < layout->groups; g++) {
    const uint8_t *p = row + g * group_bytes, *q = p + offset;
    const int z = layout->symmetric ? 1 << (bits - 1) : p[2];
    const __m256i zb = _mm256_set1_epi8((char)z);
    const int8_t *a = codes + 32 * layout->chunks * g;
    __m256i lanes = chunk_dot(q, 0, bits, layout->signed_codes, z, zb, _mm256_loadu_si256((const __m256i *)a), end);
    for (size_t c = 1; c < layout->chunks; c++) {
      const __m256i ac = _mm256_loadu_si256((const __m256i *)(a + 32 * c));
      lanes = _mm256_add_epi32(lanes, chunk_dot(q, c, bits, layout->signed_codes, z, zb, ac, end));
    }
    const float s = half_at(p) * (layout->group_scales ? scales[g] : 1.0f);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(s), acc);
  }
  const float y = sum8(acc);
  return layout->group_scales ? y : y * scales[0];
}

#define BP_INT_ROWS(B)                                                                                             \
  BP_AVX2 static void int_rows_##B(const bp_int_layout *layout, const uint8_t *weights, size_t rows,               \
                                   const int8_t *codes, const float *scales, float *y) {                           \
    const uint8_t *end = weights + rows * layout->row_bytes;                                                       \
    for (size_t r = 0; r < rows; r++) y[r] = int_row(layout, B, weights + r * layout->row_bytes, codes, scales, end); \
  }
BP_INT_ROWS(2)
BP_INT_ROWS(3)
BP_INT_ROWS(4)
BP_INT_ROWS(5)
BP_INT_ROWS(6)
BP_INT_ROWS(7)
BP_INT_ROWS(8)

static void avx2_gemv(bp_int_layout layout, const uint8_t *weights, size_t rows, const int8_t *codes,
                      const float *scales, float *y) {
  switch (layout.bits) {
  case 2: int_rows_2(&layout, weights, rows, codes, scales, y); break;
  case 3: int_rows_3(&layout, weights, rows, codes, scales, y); break;
  case 4: int_rows_4(&layout, weights, rows, codes, scales, y); break;
  case 5: int_rows_5(&layout, weights, rows, codes, scales, y); break;
  case 6: int_rows_6(&layout, weights, rows, codes, scales, y); break;
  case 7: int_rows_7(&layout, weights, rows, codes, scales, y); break;
  default: int_rows_8(&layout, weights, rows, codes, scales, y); break;
  }
}

/// q5_0 (kind 0), q4_1 (1), q5_1 (2); `kind` constant after inlining.
BP_AVX2_INLINE void legacy_rows(int kind, const uint8_t *weights, size_t row_bytes, size_t rows, size_t blocks,
                                const int8_t *codes, const float *scales, float *y) {
  const size_t size = kind == 1 ? 20 : kind == 0 ? 22 : 24, qs = kind == 1 ? 4 : kind == 0 ? 6 : 8;
  for (size_t r = 0; r < rows; r++) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
      const uint8_t *p = weights + r * row_bytes + size * b;
      const __m256i a = _mm256_loadu_si256((const __m256i *)(codes + 32 * b));
      __m256i q = nibbles(p + qs);
      if (kind != 1) q = _mm256_or_si256(q, bits_to_16(p + qs - 4));
      const float ds = half_at(p) * scales[b];
      if (kind == 0) {
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_signed(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), a)),
                              _mm256_set1_ps(ds), acc);
      } else {
        const __m256i main = _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1));  // q ≤ 31
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(main), _mm256_set1_ps(ds), acc);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lane_sums(a)), _mm256_set1_ps(half_at(p + 2) * scales[b]), acc);
      }
    }
    y[r] = sum8(acc);
  }
}

BP_AVX2 static void legacy_0(const uint8_t *w, size_t rb, size_t rows, size_t blocks, const int8_t *c, const float *s, float *y) {
  legacy_rows(0, w, rb, rows, blocks, c, s, y);
}
BP_AVX2 static void legacy_1(const uint8_t *w, size_t rb, size_t rows, size_t blocks, const int8_t *c, const float *s, float *y) {
  legacy_rows(1, w, rb, rows, blocks, c, s, y);
}
BP_AVX2 static void legacy_2(const uint8_t *w, size_t rb, size_t rows, size_t blocks, const int8_t *c, const float *s, float *y) {
  legacy_rows(2, w, rb, rows, blocks, c, s, y);
}

static void avx2_legacy(int kind, const uint8_t *weights, size_t row_bytes, size_t rows, size_t blocks,
                        const int8_t *codes, const float *scales, float *y) {
  switch (kind) {
  case 0: legacy_0(weights, row_bytes, rows, blocks, codes, scales, y); break;
  case 1: legacy_1(weights, row_bytes, rows, blocks, codes, scales, y); break;
  default: legacy_2(weights, row_bytes, rows, blocks, codes, scales, y); break;
  }
}

/// Scale and min of q4_K/q5_K sub-block j from the 12 packed bytes q (as the portable table reads them).
static inline void scale_min_k4(const uint8_t *q, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
    *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
  }
}

/// q4_K (`fifth` 0) or q5_K (1): per 32-value sub-block j, d·sc_j·d_b·Σ q·a − dmin·m_j·d_b·Σ a.
BP_AVX2_INLINE void q45_k_rows(int fifth, const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                               const int8_t *codes, const float *scales, float *y) {
  const __m128i m4 = _mm_set1_epi8(15);
  for (size_t r = 0; r < rows; r++) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t s = 0; s < super_blocks; s++) {
      const uint8_t *p = weights + r * row_bytes + (fifth ? 176 : 144) * s, *qs = p + (fifth ? 48 : 16);
      const float d = half_at(p), dmin = half_at(p + 2);
      for (int j = 0; j < 8; j++) {
        const size_t b = 8 * s + (size_t)j;
        const __m256i a = _mm256_loadu_si256((const __m256i *)(codes + 32 * b));
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
        __m256i q = j % 2 ? _mm256_srli_epi16(raw, 4) : raw;
        q = _mm256_and_si256(q, _mm256_set_m128i(m4, m4));
        if (fifth) {
          // bit j of qh[l] adds 16 to value l.
          const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 16));
          const __m256i bit = _mm256_set1_epi8((char)(1 << j));
          q = _mm256_or_si256(q, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(16)));
        }
        int sc, m;
        scale_min_k4(p + 4, j, &sc, &m);
        const __m256i main = _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1));  // q ≤ 31
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(main), _mm256_set1_ps(d * (float)sc * scales[b]), acc);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lane_sums(a)), _mm256_set1_ps(-dmin * (float)m * scales[b]), acc);
      }
    }
    y[r] = sum8(acc);
  }
}

BP_AVX2 static void avx2_q4_k(const uint8_t *w, size_t rb, size_t rows, size_t sb, const int8_t *c, const float *s, float *y) {
  q45_k_rows(0, w, rb, rows, sb, c, s, y);
}
BP_AVX2 static void avx2_q5_k(const uint8_t *w, size_t rb, size_t rows, size_t sb, const int8_t *c, const float *s, float *y) {
  q45_k_rows(1, w, rb, rows, sb, c, s, y);
}

/// Int16 scales of two 16-value sub-blocks, k0 for the pairs of values 0 … 15 and k1 for 16 … 31.
BP_AVX2_INLINE __m256i two_scales(int k0, int k1) {
  return _mm256_set_m128i(_mm_set1_epi16((short)k1), _mm_set1_epi16((short)k0));
}

BP_AVX2 static void avx2_q6_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                              const int8_t *codes, const float *scales, float *y) {
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), b32 = _mm256_set1_epi8(32);
  for (size_t r = 0; r < rows; r++) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t s = 0; s < super_blocks; s++) {
      const uint8_t *p = weights + r * row_bytes + 210 * s;
      const float d = half_at(p + 208);
      for (int h = 0; h < 2; h++) {
        const __m256i high = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
        for (int g = 0; g < 4; g++) {
          const size_t b = 8 * s + 4 * (size_t)h + (size_t)g;
          const __m256i a = _mm256_loadu_si256((const __m256i *)(codes + 32 * b));
          const __m256i low = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32 * (g % 2)));
          const __m256i l4 = _mm256_and_si256(g < 2 ? low : _mm256_srli_epi16(low, 4), m4);
          const __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(high, 2 * g), m2);
          const __m256i q = _mm256_sub_epi8(_mm256_or_si256(l4, _mm256_slli_epi16(h2, 4)), b32);  // −32 … 31
          const int8_t *sc = (const int8_t *)(p + 192 + 8 * h + 2 * g);
          const __m256i lanes = _mm256_madd_epi16(pairs_signed(q, a), two_scales(sc[0], sc[1]));
          acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(d * scales[b]), acc);
        }
      }
    }
    y[r] = sum8(acc);
  }
}

BP_AVX2 static void avx2_q2_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                              const int8_t *codes, const float *scales, float *y) {
  const __m256i m2 = _mm256_set1_epi8(3);
  for (size_t r = 0; r < rows; r++) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t s = 0; s < super_blocks; s++) {
      const uint8_t *p = weights + r * row_bytes + 84 * s;
      const float d = half_at(p + 80), dmin = half_at(p + 82);
      for (int m = 0; m < 8; m++) {  // values 32m …: bits 2g of qs[32h + l], h = m / 4, g = m % 4
        const size_t b = 8 * s + (size_t)m;
        const __m256i a = _mm256_loadu_si256((const __m256i *)(codes + 32 * b));
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * (m / 4)));
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * (m % 4)), m2);
        const int k = 2 * m;  // sub-blocks k, k + 1
        const __m256i main = _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), two_scales(p[k] & 15, p[k + 1] & 15));
        const __m256i mins =
          _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), two_scales(p[k] >> 4, p[k + 1] >> 4));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(main), _mm256_set1_ps(d * scales[b]), acc);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(-dmin * scales[b]), acc);
      }
    }
    y[r] = sum8(acc);
  }
}

BP_AVX2 static void avx2_q3_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                              const int8_t *codes, const float *scales, float *y) {
  const __m256i m2 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
  for (size_t r = 0; r < rows; r++) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t s = 0; s < super_blocks; s++) {
      const uint8_t *p = weights + r * row_bytes + 110 * s, *sc = p + 96;
      const float d = half_at(p + 108);
      const __m256i hmask = _mm256_loadu_si256((const __m256i *)p);
      int scale[16];
      for (int k = 0; k < 16; k++) {
        const int low = k < 8 ? sc[k] & 15 : sc[k - 8] >> 4, high = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
        scale[k] = (low | high << 4) - 32;
      }
      for (int m = 0; m < 8; m++) {
        const size_t b = 8 * s + (size_t)m;
        const __m256i a = _mm256_loadu_si256((const __m256i *)(codes + 32 * b));
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 32 + 32 * (m / 4)));
        const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * (m % 4)), m2);
        // −4 unless bit m of hmask[l] is set.
        const __m256i bit = _mm256_set1_epi8((char)(1 << m));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hmask, bit), bit);
        const __m256i q = _mm256_sub_epi8(q2, _mm256_andnot_si256(set, four));
        const __m256i lanes = _mm256_madd_epi16(pairs_signed(q, a), two_scales(scale[2 * m], scale[2 * m + 1]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(d * scales[b]), acc);
      }
    }
    y[r] = sum8(acc);
  }
}

static void avx2_gemm(const bp_gemm_format *format, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
                      float *y, size_t y_stride, int accumulate);

const bp_int_gemv_kernels bp_int_gemv_avx2_table = {
  "avx2", avx2_gemv, avx2_q4_k, avx2_q6_k, avx2_q5_k, avx2_legacy, avx2_q2_k, avx2_q3_k,
  bp_gemm_no_prepared_bytes, bp_gemm_no_prepare, avx2_gemm,
};

/// Tokens one pass of the integer GEMM runs against each row: the codes of a chunk are decoded once for all of
/// them (4 × (lane sums + Float accumulator) + codes + |codes| + activations fit AVX2's 16 registers).
enum { gemm_tokens = 4 };

/// Rows t … t + 3 of Y for one weight row of an integer layout, `bits` constant after inlining: per (row, token)
/// exactly the Int32 lanes and Float operations of `int_row`, so each output equals the GEMV's bit for bit.
BP_AVX2_INLINE void int_row_tokens(const bp_int_layout *layout, int bits, const uint8_t *row, const bp_gemm_activations *x,
                                   size_t t0, float *out[gemm_tokens], const uint8_t *end) {
  const size_t offset = layout->symmetric ? 2 : 3, group_bytes = offset + layout->chunks * 4 * (size_t)bits;
  const size_t values = 32 * layout->chunks;
  const int8_t *codes[gemm_tokens];
  const float *scales[gemm_tokens];
  for (int t = 0; t < gemm_tokens; t++) {
    codes[t] = x->codes + (t0 + (size_t)t) * x->code_stride;
    scales[t] = x->scales + (t0 + (size_t)t) * x->scale_stride;
  }
  __m256 acc[gemm_tokens];
  for (int t = 0; t < gemm_tokens; t++) acc[t] = _mm256_setzero_ps();
  for (size_t g = 0; g < layout->groups; g++) {
    const uint8_t *p = row + g * group_bytes, *q = p + offset;
    const int z = layout->symmetric ? 1 << (bits - 1) : p[2];
    const __m256i zb = _mm256_set1_epi8((char)z);
    __m256i lanes[gemm_tokens];
    for (int t = 0; t < gemm_tokens; t++) lanes[t] = _mm256_setzero_si256();
    for (size_t c = 0; c < layout->chunks; c++) {
      // The chunk's codes as signed bytes v (u − z, or u − 128 for int8), and |v|.
      __m256i v;
      const uint8_t *chunk = q + 4 * (size_t)bits * c;
      if (bits == 8) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)chunk);
        v = layout->signed_codes ? raw : _mm256_xor_si256(raw, _mm256_set1_epi8((char)0x80));
      } else {
        const __m256i u = bits == 4 ? nibbles(chunk) : stream_codes(chunk, bits, chunk + 3 * bits + 16 <= end);
        v = _mm256_sub_epi8(u, zb);
      }
      const __m256i magnitude = _mm256_sign_epi8(v, v);
      for (int t = 0; t < gemm_tokens; t++) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)(codes[t] + g * values + 32 * c));
        __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(a, v)), _mm256_set1_epi16(1));
        if (bits == 8 && z != 128) d = _mm256_add_epi32(d, _mm256_mullo_epi32(lane_sums(a), _mm256_set1_epi32(128 - z)));
        lanes[t] = _mm256_add_epi32(lanes[t], d);
      }
    }
    const float h = half_at(p);
    for (int t = 0; t < gemm_tokens; t++) {
      const float s = h * (layout->group_scales ? scales[t][g] : 1.0f);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes[t]), _mm256_set1_ps(s), acc[t]);
    }
  }
  for (int t = 0; t < gemm_tokens; t++) {
    const float v = sum8(acc[t]);
    *out[t] = layout->group_scales ? v : v * scales[t][0];
  }
}

/// The integer-layout GEMM: tiles of rows (about 16 KiB, kept in L1), and in each tile the tokens four at a time
/// (`int_row_tokens`), the rest one at a time through `int_row`.
#define BP_INT_GEMM(B)                                                                                             \
  BP_AVX2 static void int_gemm_##B(const bp_int_layout *layout, const uint8_t *weights, size_t rows,               \
                                   const bp_gemm_activations *x, float *y, size_t y_stride, int accumulate) {      \
    const uint8_t *end = weights + rows * layout->row_bytes;                                                       \
    size_t tile = (16 << 10) / layout->row_bytes;                                                                  \
    tile = tile < 1 ? 1 : tile > 64 ? 64 : tile;                                                                   \
    for (size_t r0 = 0; r0 < rows; r0 += tile) {                                                                   \
      const size_t r1 = rows - r0 < tile ? rows : r0 + tile;                                                       \
      size_t t = 0;                                                                                                \
      for (; t + gemm_tokens <= x->tokens; t += gemm_tokens) {                                                     \
        for (size_t r = r0; r < r1; r++) {                                                                         \
          float value[gemm_tokens];                                                                                \
          float *out[gemm_tokens] = {value, value + 1, value + 2, value + 3};                                      \
          int_row_tokens(layout, B, weights + r * layout->row_bytes, x, t, out, end);                              \
          for (int k = 0; k < gemm_tokens; k++) {                                                                  \
            float *dst = y + (t + (size_t)k) * y_stride + r;                                                       \
            *dst = accumulate ? *dst + value[k] : value[k];                                                        \
          }                                                                                                        \
        }                                                                                                          \
      }                                                                                                            \
      for (; t < x->tokens; t++) {                                                                                 \
        const int8_t *codes = x->codes + t * x->code_stride;                                                       \
        const float *scales = x->scales + t * x->scale_stride;                                                     \
        for (size_t r = r0; r < r1; r++) {                                                                         \
          const float value = int_row(layout, B, weights + r * layout->row_bytes, codes, scales, end);            \
          float *dst = y + t * y_stride + r;                                                                       \
          *dst = accumulate ? *dst + value : value;                                                                \
        }                                                                                                          \
      }                                                                                                            \
    }                                                                                                              \
  }
BP_INT_GEMM(2)
BP_INT_GEMM(3)
BP_INT_GEMM(4)
BP_INT_GEMM(5)
BP_INT_GEMM(6)
BP_INT_GEMM(7)
BP_INT_GEMM(8)

/// Tokens t … t + 3 of one q5_0 / q4_1 / q5_1 row (`kind` constant after inlining): per (row, token) exactly the
/// Int32 lanes and Float operations of `legacy_rows`.
BP_AVX2_INLINE void legacy_row_tokens(int kind, const uint8_t *row, size_t blocks, const bp_gemm_activations *x, size_t t0,
                                      float value[gemm_tokens]) {
  const size_t size = kind == 1 ? 20 : kind == 0 ? 22 : 24, qs = kind == 1 ? 4 : kind == 0 ? 6 : 8;
  __m256 acc[gemm_tokens];
  for (int t = 0; t < gemm_tokens; t++) acc[t] = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; b++) {
    const uint8_t *p = row + size * b;
    __m256i q = nibbles(p + qs);
    if (kind != 1) q = _mm256_or_si256(q, bits_to_16(p + qs - 4));
    const __m256i v = kind == 0 ? _mm256_sub_epi8(q, _mm256_set1_epi8(16)) : q;
    const __m256i magnitude = kind == 0 ? _mm256_sign_epi8(v, v) : q;
    const float d = half_at(p), m = kind == 1 || kind == 2 ? half_at(p + 2) : 0;
    for (int t = 0; t < gemm_tokens; t++) {
      const size_t token = t0 + (size_t)t;
      const __m256i a = _mm256_loadu_si256((const __m256i *)(x->codes + token * x->code_stride + 32 * b));
      const float db = x->scales[token * x->scale_stride + b];
      const __m256i main =
        _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, kind == 0 ? _mm256_sign_epi8(a, v) : a), _mm256_set1_epi16(1));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(main), _mm256_set1_ps(d * db), acc[t]);
      if (kind != 0) acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lane_sums(a)), _mm256_set1_ps(m * db), acc[t]);
    }
  }
  for (int t = 0; t < gemm_tokens; t++) value[t] = sum8(acc[t]);
}

/// A block-format GEMM (legacy types, K-quants): tiles of rows as `bp_gemm_tiled`, the tokens four at a time
/// (TOKENS_CALL fills value[4] for row r, tokens t …), the rest one at a time (ONE_CALL fills value for row r, token t).
#define BP_BLOCK_GEMM(NAME, TOKENS_CALL, ONE_CALL) \
  BP_AVX2 static void NAME(const bp_gemm_format *f, const uint8_t *weights, size_t rows,                          \
                           const bp_gemm_activations *x, float *y, size_t y_stride, int accumulate) {              \
    size_t tile = (16 << 10) / f->row_bytes;                                                                       \
    tile = tile < 1 ? 1 : tile > 64 ? 64 : tile;                                                                   \
    for (size_t r0 = 0; r0 < rows; r0 += tile) {                                                                   \
      const size_t r1 = rows - r0 < tile ? rows : r0 + tile;                                                       \
      size_t t = 0;                                                                                                \
      for (; t + gemm_tokens <= x->tokens; t += gemm_tokens) {                                                     \
        for (size_t r = r0; r < r1; r++) {                                                                         \
          float value[gemm_tokens];                                                                                \
          TOKENS_CALL;                                                                                             \
          for (int k = 0; k < gemm_tokens; k++) {                                                                  \
            float *dst = y + (t + (size_t)k) * y_stride + r;                                                       \
            *dst = accumulate ? *dst + value[k] : value[k];                                                        \
          }                                                                                                        \
        }                                                                                                          \
      }                                                                                                            \
      for (; t < x->tokens; t++) {                                                                                 \
        for (size_t r = r0; r < r1; r++) {                                                                         \
          float value;                                                                                             \
          ONE_CALL;                                                                                                \
          float *dst = y + t * y_stride + r;                                                                       \
          *dst = accumulate ? *dst + value : value;                                                                \
        }                                                                                                          \
      }                                                                                                            \
    }                                                                                                              \
  }
BP_BLOCK_GEMM(legacy_gemm_0, legacy_row_tokens(0, weights + r * f->row_bytes, f->blocks, x, t, value),
              legacy_rows(0, weights + r * f->row_bytes, f->row_bytes, 1, f->blocks, x->codes + t * x->code_stride,
                          x->scales + t * x->scale_stride, &value))
BP_BLOCK_GEMM(legacy_gemm_1, legacy_row_tokens(1, weights + r * f->row_bytes, f->blocks, x, t, value),
              legacy_rows(1, weights + r * f->row_bytes, f->row_bytes, 1, f->blocks, x->codes + t * x->code_stride,
                          x->scales + t * x->scale_stride, &value))
BP_BLOCK_GEMM(legacy_gemm_2, legacy_row_tokens(2, weights + r * f->row_bytes, f->blocks, x, t, value),
              legacy_rows(2, weights + r * f->row_bytes, f->row_bytes, 1, f->blocks, x->codes + t * x->code_stride,
                          x->scales + t * x->scale_stride, &value))

/// Tokens t … t + 3 of one q4_K (`fifth` 0) or q5_K (1) row: per (row, token) exactly the Int32 lanes and Float
/// operations of `q45_k_rows`.
BP_AVX2_INLINE void q45_k_row_tokens(int fifth, const uint8_t *row, size_t super_blocks, const bp_gemm_activations *x,
                                     size_t t0, float value[gemm_tokens]) {
  const __m128i m4 = _mm_set1_epi8(15);
  __m256 acc[gemm_tokens];
  for (int t = 0; t < gemm_tokens; t++) acc[t] = _mm256_setzero_ps();
  for (size_t s = 0; s < super_blocks; s++) {
    const uint8_t *p = row + (fifth ? 176 : 144) * s, *qs = p + (fifth ? 48 : 16);
    const float d = half_at(p), dmin = half_at(p + 2);
    for (int j = 0; j < 8; j++) {
      const size_t b = 8 * s + (size_t)j;
      const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
      __m256i q = j % 2 ? _mm256_srli_epi16(raw, 4) : raw;
      q = _mm256_and_si256(q, _mm256_set_m128i(m4, m4));
      if (fifth) {
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 16));
        const __m256i bit = _mm256_set1_epi8((char)(1 << j));
        q = _mm256_or_si256(q, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(16)));
      }
      int sc, m;
      scale_min_k4(p + 4, j, &sc, &m);
      for (int t = 0; t < gemm_tokens; t++) {
        const size_t token = t0 + (size_t)t;
        const __m256i a = _mm256_loadu_si256((const __m256i *)(x->codes + token * x->code_stride + 32 * b));
        const float db = x->scales[token * x->scale_stride + b];
        const __m256i main = _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(main), _mm256_set1_ps(d * (float)sc * db), acc[t]);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lane_sums(a)), _mm256_set1_ps(-dmin * (float)m * db), acc[t]);
      }
    }
  }
  for (int t = 0; t < gemm_tokens; t++) value[t] = sum8(acc[t]);
}

/// Tokens t … t + 3 of one q6_K row: per (row, token) exactly the Int32 lanes and Float operations of `avx2_q6_k`.
BP_AVX2_INLINE void q6_k_row_tokens(const uint8_t *row, size_t super_blocks, const bp_gemm_activations *x, size_t t0,
                                    float value[gemm_tokens]) {
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), b32 = _mm256_set1_epi8(32);
  __m256 acc[gemm_tokens];
  for (int t = 0; t < gemm_tokens; t++) acc[t] = _mm256_setzero_ps();
  for (size_t s = 0; s < super_blocks; s++) {
    const uint8_t *p = row + 210 * s;
    const float d = half_at(p + 208);
    for (int h = 0; h < 2; h++) {
      const __m256i high = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
      for (int g = 0; g < 4; g++) {
        const size_t b = 8 * s + 4 * (size_t)h + (size_t)g;
        const __m256i low = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32 * (g % 2)));
        const __m256i l4 = _mm256_and_si256(g < 2 ? low : _mm256_srli_epi16(low, 4), m4);
        const __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(high, 2 * g), m2);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(l4, _mm256_slli_epi16(h2, 4)), b32);
        const __m256i magnitude = _mm256_sign_epi8(q, q);
        const int8_t *sc = (const int8_t *)(p + 192 + 8 * h + 2 * g);
        const __m256i scale = two_scales(sc[0], sc[1]);
        for (int t = 0; t < gemm_tokens; t++) {
          const size_t token = t0 + (size_t)t;
          const __m256i a = _mm256_loadu_si256((const __m256i *)(x->codes + token * x->code_stride + 32 * b));
          const float db = x->scales[token * x->scale_stride + b];
          const __m256i lanes = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(a, q)), scale);
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(d * db), acc[t]);
        }
      }
    }
  }
  for (int t = 0; t < gemm_tokens; t++) value[t] = sum8(acc[t]);
}

BP_BLOCK_GEMM(q4_k_gemm, q45_k_row_tokens(0, weights + r * f->row_bytes, f->blocks, x, t, value),
              avx2_q4_k(weights + r * f->row_bytes, f->row_bytes, 1, f->blocks, x->codes + t * x->code_stride,
                   x->scales + t * x->scale_stride, &value))
BP_BLOCK_GEMM(q5_k_gemm, q45_k_row_tokens(1, weights + r * f->row_bytes, f->blocks, x, t, value),
              avx2_q5_k(weights + r * f->row_bytes, f->row_bytes, 1, f->blocks, x->codes + t * x->code_stride,
                   x->scales + t * x->scale_stride, &value))
BP_BLOCK_GEMM(q6_k_gemm, q6_k_row_tokens(weights + r * f->row_bytes, f->blocks, x, t, value),
              avx2_q6_k(weights + r * f->row_bytes, f->row_bytes, 1, f->blocks, x->codes + t * x->code_stride,
                   x->scales + t * x->scale_stride, &value))

/// The integer layouts, q5_0/q4_1/q5_1 and q4_K/q5_K/q6_K through their register-tiled GEMMs; q2_K and q3_K through `bp_gemm_tiled` over this
/// table's GEMV. Either way each output equals this table's GEMV bit for bit.
static void avx2_gemm(const bp_gemm_format *format, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
                      float *y, size_t y_stride, int accumulate) {
  if (format->family == BP_GEMM_LEGACY) {
    switch (format->legacy_kind) {
    case 0: legacy_gemm_0(format, weights, rows, x, y, y_stride, accumulate); break;
    case 1: legacy_gemm_1(format, weights, rows, x, y, y_stride, accumulate); break;
    default: legacy_gemm_2(format, weights, rows, x, y, y_stride, accumulate); break;
    }
    return;
  }
  if (format->family == BP_GEMM_Q4_K || format->family == BP_GEMM_Q5_K || format->family == BP_GEMM_Q6_K) {
    (format->family == BP_GEMM_Q4_K   ? q4_k_gemm
     : format->family == BP_GEMM_Q5_K ? q5_k_gemm
                                      : q6_k_gemm)(format, weights, rows, x, y, y_stride, accumulate);
    return;
  }
  if (format->family != BP_GEMM_INTEGER) {
    bp_gemm_tiled(&bp_int_gemv_avx2_table, format, weights, rows, x, y, y_stride, accumulate);
    return;
  }
  const bp_int_layout *layout = &format->layout;
  switch (layout->bits) {
  case 2: int_gemm_2(layout, weights, rows, x, y, y_stride, accumulate); break;
  case 3: int_gemm_3(layout, weights, rows, x, y, y_stride, accumulate); break;
  case 4: int_gemm_4(layout, weights, rows, x, y, y_stride, accumulate); break;
  case 5: int_gemm_5(layout, weights, rows, x, y, y_stride, accumulate); break;
  case 6: int_gemm_6(layout, weights, rows, x, y, y_stride, accumulate); break;
  case 7: int_gemm_7(layout, weights, rows, x, y, y_stride, accumulate); break;
  default: int_gemm_8(layout, weights, rows, x, y, y_stride, accumulate); break;
  }
}

#endif
