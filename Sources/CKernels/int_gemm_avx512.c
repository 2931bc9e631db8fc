// The int8-activation GEMM with AVX-512 VNNI for ggml's q4_0, q8_0 and q4_1: a tile of rows × a tile of tokens per
// weight load. Each row's 64-byte step is decoded once (codes to bytes, f16 scales to 16 Float lanes) and then
// multiplied with every token of the tile while it sits in registers. The other formats run `bp_gemm_tiled` over
// this table's GEMV (int_gemm.c).
//
// Bit identity with the GEMV (int_gemv_avx512.c), which the tests check: every Int32 lane holds the same sum as the
// GEMV's lane (same planes, same lane of every value), and every Float operation per output is the GEMV's in the
// same order. Where the GEMV multiplies 4 weight scales by 4 activation scales and spreads the products to 16
// lanes, this spreads both first and multiplies lane by lane: the same products. q4_0 and q8_0 keep the GEMV's two
// accumulators (even steps, odd steps; then the groups past the last whole step alternately) and its final
// reduction; q4_1 its single accumulator.
//
// Per token and step, the prepared activations (`gemm_prepare`, once per call for all rows and threads) hold what
// the GEMV computes per call: the planes and −z·Σa lanes of `prepare_int4` / `prepare_legacy`, and the step's
// activation scales spread to lanes.

#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <string.h>

#include "avx512_common.h"
#include "gemm_internal.h"

extern const bp_int_gemv_kernels bp_int_gemv_avx512_vnni;

/// Which register-tiled kernel runs `f`, or 0 for `bp_gemm_tiled`.
enum { tiled_none = 0, tiled_q4_0 = 1, tiled_q8_0 = 2, tiled_q4_1 = 3 };

static int tiled_kind(const bp_gemm_format *f) {
  if (f->family == BP_GEMM_INTEGER) {
    const bp_int_layout *l = &f->layout;
    if (l->symmetric && l->group_scales && l->chunks == 1 && l->row_bytes > 0) {
      if (l->bits == 4 && !l->signed_codes && l->row_bytes == 18 * l->groups) return tiled_q4_0;
      if (l->bits == 8 && l->signed_codes && l->row_bytes == 34 * l->groups) return tiled_q8_0;
    }
    return tiled_none;
  }
  if (f->family == BP_GEMM_LEGACY && f->legacy_kind == 1 && f->blocks > 0) return tiled_q4_1;
  return tiled_none;
}

/// 32-value groups (blocks) per row.
static size_t groups_of(const bp_gemm_format *f) { return f->family == BP_GEMM_INTEGER ? f->layout.groups : f->blocks; }

/// Prepared bytes per token. q4_0: per whole step of 4 groups 256 (low plane, high plane, −8·Σa lanes, scales),
/// per remaining group 192 (planes, lanes). q8_0: per step of 2 groups 128 (128·Σa lanes, scales). q4_1: per step
/// of up to 4 blocks 256 (planes, Σa as Float lanes, scales).
static size_t token_bytes(int kind, size_t groups) {
  switch (kind) {
  case tiled_q4_0: return groups / 4 * 256 + groups % 4 * 192;
  case tiled_q8_0: return groups / 2 * 128;
  case tiled_q4_1: return (groups + 3) / 4 * 256;
  default: return 0;
  }
}

size_t bp_avx512_gemm_prepared_bytes(const bp_gemm_format *f, size_t tokens) {
  return token_bytes(tiled_kind(f), groups_of(f)) * tokens;
}

/// The two planes of 128 activations a (`left` ≤ 128 of them real) as `prepare_int4` writes them: lo = values
/// 0–15, 32–47, 64–79, 96–111, hi = the 16 after each; returns Σ per Int32 lane of both.
BP_AVX512 BP_INLINE __m512i store_planes(const int8_t *a, size_t left, int8_t *o) {
  const __m512i a0 = _mm512_maskz_loadu_epi8(first_bytes(left), a);
  const __m512i a1 = left > 64 ? _mm512_maskz_loadu_epi8(first_bytes(left - 64), a + 64) : _mm512_setzero_si512();
  const __m512i lo = _mm512_shuffle_i64x2(a0, a1, 0x88), hi = _mm512_shuffle_i64x2(a0, a1, 0xDD);
  _mm512_store_si512((void *)o, lo);
  _mm512_store_si512((void *)(o + 64), hi);
  const __m512i ones = _mm512_set1_epi8(1);
  return _mm512_add_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, lo), _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, hi));
}

/// Lane l gets x[l / 4] (k = 4 groups per step) or x[l / 8] (k = 2).
BP_AVX512 BP_INLINE __m512 spread_lanes(int k, __m128 x) {
  const __m512i index = k == 4 ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
                               : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  return _mm512_permutexvar_ps(index, _mm512_castps128_ps512(x));
}

BP_AVX512 static void prepare_token(int kind, size_t groups, const int8_t *a, const float *d, int8_t *o) {
  const __m512i zero = _mm512_setzero_si512();
  if (kind == tiled_q4_0) {
    const size_t steps = groups / 4;
    for (size_t s = 0; s < steps; s++, o += 256) {
      const __m512i sums = store_planes(a + 128 * s, 128, o);
      _mm512_store_si512((void *)(o + 128), _mm512_slli_epi32(_mm512_sub_epi32(zero, sums), 3));  // −8·Σa
      _mm512_store_ps((void *)(o + 192), spread_lanes(4, _mm_loadu_ps(d + 4 * s)));
    }
    for (size_t g = 4 * steps; g < groups; g++, o += 192) {
      const __m512i sums = store_planes(a + 32 * g, 32, o);
      _mm512_store_si512((void *)(o + 128), _mm512_slli_epi32(_mm512_sub_epi32(zero, sums), 3));
    }
  } else if (kind == tiled_q8_0) {
    for (size_t s = 0; s < groups / 2; s++, o += 128) {
      const __m512i x = _mm512_loadu_si512((const void *)(a + 64 * s));
      _mm512_store_si512((void *)o, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8((char)128), x));  // Σ 128·a
      _mm512_store_ps((void *)(o + 64), spread_lanes(2, _mm_castpd_ps(_mm_load_sd((const double *)(d + 2 * s)))));
    }
  } else {
    for (size_t s = 0; 4 * s < groups; s++, o += 256) {
      const size_t nb = groups - 4 * s < 4 ? groups - 4 * s : 4;
      const __m512i sums = store_planes(a + 128 * s, 32 * nb, o);
      _mm512_store_ps((void *)(o + 128), _mm512_cvtepi32_ps(sums));  // the GEMV's cvt(−(−Σa))
      _mm512_store_ps((void *)(o + 192), spread_lanes(4, _mm_maskz_loadu_ps((__mmask8)((1u << nb) - 1), d + 4 * s)));
    }
  }
}

void bp_avx512_gemm_prepare(const bp_gemm_format *f, const bp_gemm_activations *x, void *prepared) {
  const int kind = tiled_kind(f);
  if (kind == tiled_none) return;
  const size_t groups = groups_of(f), bytes = token_bytes(kind, groups);
  for (size_t t = 0; t < x->tokens; t++) {
    prepare_token(kind, groups, x->codes + t * x->code_stride, x->scales + t * x->scale_stride, (int8_t *)prepared + t * bytes);
  }
}

/// Where a tile's results go: token t's outputs for the tile's rows start at y + t·y_stride.
typedef struct tile_out {
  float *y;
  size_t y_stride;
  int accumulate;
} tile_out;

BP_AVX512 BP_INLINE void put(const tile_out *out, int t, int j, float v) {
  float *p = out->y + (size_t)t * out->y_stride + (size_t)j;
  *p = out->accumulate ? *p + v : v;
}

// q4_0: R rows × TT tokens. Step s of 4 groups (72 bytes) is decoded per row as in `add_packed` (two loads, one
// vpermt2b, the high nibbles by one affine step, the 4 scales by one vpermw); each token adds its Σ u·a (from −8·Σa)
// times (weight scale · activation scale) to its accumulator for even or odd steps.
#define BP_MAX_R 4
#define BP_MAX_TT 8

BP_AVX512 BP_INLINE void q4_0_step(const int R, const int TT, const uint8_t *const *row, size_t s,
                                   const int8_t *const *prep, __m512i code_index, __m512 acc[BP_MAX_R][BP_MAX_TT]) {
  const __m512i nibble = _mm512_set1_epi8(0x0F), high_nibble = _mm512_set1_epi64(0x1020408000000000);
  const __m512i words = _mm512_castsi128_si512(_mm_setr_epi16(0, 9, 18, 27, 0, 0, 0, 0));
  __m512i lo[BP_MAX_R], hi[BP_MAX_R];
  __m512 ws[BP_MAX_R];
  for (int j = 0; j < R; j++) {
    const uint8_t *p = row[j] + 72 * s;
    const __m512i head = _mm512_loadu_si512((const void *)p);
    const __m512i w = _mm512_permutex2var_epi8(head, code_index, _mm512_loadu_si512((const void *)(p + 8)));
    lo[j] = _mm512_and_si512(w, nibble);
    hi[j] = _mm512_gf2p8affine_epi64_epi8(w, high_nibble, 0);
    ws[j] = spread_lanes(4, _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(words, head))));
  }
  for (int t = 0; t < TT; t++) {
    const int8_t *o = prep[t] + 256 * s;
    const __m512i pl = _mm512_load_si512((const void *)o), ph = _mm512_load_si512((const void *)(o + 64));
    const __m512i lanes = _mm512_load_si512((const void *)(o + 128));
    const __m512 dk = _mm512_load_ps((const void *)(o + 192));
    for (int j = 0; j < R; j++) {
      const __m512i isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(lanes, lo[j], pl), hi[j], ph);
      acc[j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(ws[j], dk), acc[j][t]);
    }
  }
}

/// Group `first + g` past the whole steps (one masked 16-byte code load per row, as `add_groups`).
BP_AVX512 BP_INLINE void q4_0_group(const int R, const int TT, const uint8_t *const *row, size_t steps, size_t g,
                                    const int8_t *const *prep, const float *const *ascale, __m512 acc[BP_MAX_R][BP_MAX_TT]) {
  const size_t first = 4 * steps;
  __m512i lo[BP_MAX_R], hi[BP_MAX_R];
  float ws[BP_MAX_R];
  for (int j = 0; j < R; j++) {
    const uint8_t *p = row[j] + 18 * (first + g);
    const __m512i w = _mm512_maskz_loadu_epi8(first_bytes(16), p + 2);
    lo[j] = _mm512_and_si512(w, _mm512_set1_epi8(0x0F));
    hi[j] = _mm512_gf2p8affine_epi64_epi8(w, _mm512_set1_epi64(0x1020408000000000), 0);
    ws[j] = _cvtsh_ss(f16_at(p));
  }
  for (int t = 0; t < TT; t++) {
    const int8_t *o = prep[t] + 256 * steps + 192 * g;
    const __m512i pl = _mm512_load_si512((const void *)o), ph = _mm512_load_si512((const void *)(o + 64));
    const __m512i lanes = _mm512_load_si512((const void *)(o + 128));
    for (int j = 0; j < R; j++) {
      const __m512i isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(lanes, lo[j], pl), hi[j], ph);
      acc[j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(ws[j] * ascale[t][first + g]), acc[j][t]);
    }
  }
}

BP_AVX512 BP_INLINE void q4_0_tile(const int R, const int TT, const uint8_t *const *row, size_t groups,
                                   const int8_t *const *prep, const float *const *ascale, __m512i code_index,
                                   const tile_out *out) {
  __m512 f0[BP_MAX_R][BP_MAX_TT], f1[BP_MAX_R][BP_MAX_TT];
  for (int j = 0; j < R; j++) {
    for (int t = 0; t < TT; t++) f0[j][t] = f1[j][t] = _mm512_setzero_ps();
  }
  const size_t steps = groups / 4, rest = groups % 4;
  size_t s = 0;
  for (; s + 2 <= steps; s += 2) {
    q4_0_step(R, TT, row, s, prep, code_index, f0);
    q4_0_step(R, TT, row, s + 1, prep, code_index, f1);
  }
  if (s < steps) q4_0_step(R, TT, row, s, prep, code_index, f0);
  for (size_t g = 0; g < rest; g++) q4_0_group(R, TT, row, steps, g, prep, ascale, g % 2 ? f1 : f0);
  for (int j = 0; j < R; j++) {
    for (int t = 0; t < TT; t++) put(out, t, j, _mm512_reduce_add_ps(_mm512_add_ps(f0[j][t], f1[j][t])));
  }
}

// q8_0: step s of 2 groups (68 bytes) per row as in `add_packed`: the two 32-byte code areas in one register with
// their top bits flipped (u = q + 128), the 2 scales by one vpermw; per token Σ u·a − 128·Σa.
BP_AVX512 BP_INLINE void q8_0_step(const int R, const int TT, const uint8_t *const *row, size_t s,
                                   const int8_t *const *codes, const int8_t *const *prep, __m512 acc[BP_MAX_R][BP_MAX_TT]) {
  const __m512i words = _mm512_castsi128_si512(_mm_setr_epi16(0, 17, 34, 51, 0, 0, 0, 0));
  __m512i w[BP_MAX_R];
  __m512 ws[BP_MAX_R];
  for (int j = 0; j < R; j++) {
    const uint8_t *p = row[j] + 68 * s;
    const __m512i codes2 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const void *)(p + 2))),
                                              _mm256_loadu_si256((const void *)(p + 36)), 1);
    w[j] = _mm512_xor_si512(codes2, _mm512_set1_epi8((char)0x80));
    ws[j] = spread_lanes(2, _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(words, _mm512_loadu_si512((const void *)p)))));
  }
  for (int t = 0; t < TT; t++) {
    const int8_t *o = prep[t] + 128 * s;
    const __m512i a = _mm512_loadu_si512((const void *)(codes[t] + 64 * s)), za = _mm512_load_si512((const void *)o);
    const __m512 dk = _mm512_load_ps((const void *)(o + 64));
    for (int j = 0; j < R; j++) {
      const __m512i isum = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w[j], a), za);
      acc[j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(ws[j], dk), acc[j][t]);
    }
  }
}

BP_AVX512 BP_INLINE void q8_0_tile(const int R, const int TT, const uint8_t *const *row, size_t groups,
                                   const int8_t *const *codes, const int8_t *const *prep, const float *const *ascale,
                                   const tile_out *out) {
  __m512 f0[BP_MAX_R][BP_MAX_TT], f1[BP_MAX_R][BP_MAX_TT];
  for (int j = 0; j < R; j++) {
    for (int t = 0; t < TT; t++) f0[j][t] = f1[j][t] = _mm512_setzero_ps();
  }
  const size_t steps = groups / 2;
  size_t s = 0;
  for (; s + 2 <= steps; s += 2) {
    q8_0_step(R, TT, row, s, codes, prep, f0);
    q8_0_step(R, TT, row, s + 1, codes, prep, f1);
  }
  if (s < steps) q8_0_step(R, TT, row, s, codes, prep, f0);
  if (groups % 2) {
    // The last group alone, as `int8_groups` with one chunk: its 32 codes against 32 activations (the rest zero).
    const size_t g = groups - 1;
    for (int j = 0; j < R; j++) {
      const uint8_t *p = row[j] + 34 * g;
      const __m512i u = _mm512_xor_si512(_mm512_maskz_loadu_epi8(first_bytes(32), p + 2), _mm512_set1_epi8((char)0x80));
      const float ws = _cvtsh_ss(f16_at(p));
      for (int t = 0; t < TT; t++) {
        const __m512i a = _mm512_maskz_loadu_epi8(first_bytes(32), codes[t] + 32 * g);
        const __m512i isum = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, a),
                                              _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)128), a));
        f0[j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(ws * ascale[t][g]), f0[j][t]);
      }
    }
  }
  for (int j = 0; j < R; j++) {
    for (int t = 0; t < TT; t++) put(out, t, j, _mm512_reduce_add_ps(_mm512_add_ps(f0[j][t], f1[j][t])));
  }
}

// q4_1: step s of nb ≤ 4 blocks (20 bytes each) per row as in `legacy_step`: codes by two (masked) loads and one
// vpermt2b, the d and m words by one vpermt2w each; per token the d term, then the m·Σa term, into one accumulator.
BP_AVX512 BP_INLINE void q4_1_tile(const int R, const int TT, const uint8_t *const *row, size_t blocks,
                                   const int8_t *const *prep, __m512i code_index, const tile_out *out) {
  const size_t last = 16;  // h + 3g + 16 − 64 with h = 4, g = 20
  const __m512i d_words = _mm512_castsi128_si512(_mm_setr_epi16(0, 10, 20, 30, 0, 0, 0, 0));
  const __m512i m_words = _mm512_castsi128_si512(_mm_setr_epi16(1, 11, 21, 31, 0, 0, 0, 0));
  __m512 acc[BP_MAX_R][BP_MAX_TT];
  for (int j = 0; j < R; j++) {
    for (int t = 0; t < TT; t++) acc[j][t] = _mm512_setzero_ps();
  }
  for (size_t s = 0; 4 * s < blocks; s++) {
    const size_t nb = blocks - 4 * s < 4 ? blocks - 4 * s : 4, bytes = 20 * nb;
    const __mmask64 first = first_bytes(bytes), second = bytes > last ? first_bytes(bytes - last) : 0;
    __m512i lo[BP_MAX_R], hi[BP_MAX_R];
    __m512 wd[BP_MAX_R], wm[BP_MAX_R];
    for (int j = 0; j < R; j++) {
      const uint8_t *p = row[j] + 80 * s;
      const __m512i head = _mm512_maskz_loadu_epi8(first, p), tail = _mm512_maskz_loadu_epi8(second, p + last);
      const __m512i w16 = _mm512_permutex2var_epi8(head, code_index, tail);
      lo[j] = _mm512_and_si512(w16, _mm512_set1_epi8(0x0F));
      hi[j] = _mm512_gf2p8affine_epi64_epi8(w16, _mm512_set1_epi64(0x1020408000000000), 0);
      wd[j] = spread_lanes(4, _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(head, d_words, tail))));
      wm[j] = spread_lanes(4, _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(head, m_words, tail))));
    }
    for (int t = 0; t < TT; t++) {
      const int8_t *o = prep[t] + 256 * s;
      const __m512i pl = _mm512_load_si512((const void *)o), ph = _mm512_load_si512((const void *)(o + 64));
      const __m512 asum = _mm512_load_ps((const void *)(o + 128)), dk = _mm512_load_ps((const void *)(o + 192));
      for (int j = 0; j < R; j++) {
        const __m512i isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[j], pl), hi[j], ph);
        acc[j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(wd[j], dk), acc[j][t]);
        acc[j][t] = _mm512_fmadd_ps(asum, _mm512_mul_ps(wm[j], dk), acc[j][t]);
      }
    }
  }
  for (int j = 0; j < R; j++) {
    for (int t = 0; t < TT; t++) put(out, t, j, _mm512_reduce_add_ps(acc[j][t]));
  }
}

/// One tile of `kind`, rows at row[j], tokens' codes / prepared data / scales at codes[t], prep[t], ascale[t].
typedef void (*tile_fn)(const uint8_t *const *row, size_t groups, const int8_t *const *codes, const int8_t *const *prep,
                        const float *const *ascale, __m512i code_index, const tile_out *out);

#define BP_TILE(name, kind, R, TT)                                                                                  \
  BP_AVX512 __attribute__((noinline)) static void name(const uint8_t *const *row, size_t groups,                   \
                                                       const int8_t *const *codes, const int8_t *const *prep,        \
                                                       const float *const *ascale, __m512i code_index,               \
                                                       const tile_out *out) {                                        \
    (void)codes;                                                                                                     \
    (void)ascale;                                                                                                    \
    (void)code_index;                                                                                                \
    if (kind == tiled_q4_0) q4_0_tile(R, TT, row, groups, prep, ascale, code_index, out);                           \
    if (kind == tiled_q8_0) q8_0_tile(R, TT, row, groups, codes, prep, ascale, out);                                \
    if (kind == tiled_q4_1) q4_1_tile(R, TT, row, groups, prep, code_index, out);                                   \
  }

// Tile shapes (rows × tokens): the big one, and the row and token tails. Timed on the 2-core Ice Lake Xeon with a C
// harness (T = 512, [576 → 1536] and [1536 → 576], thread CPU time on a loaded host): q4_0 and q4_1 ran fastest as
// 1 × 8 (2 × 4, 2 × 8, 4 × 4 and 4 × 2 were 10–35% slower), q8_0 as 2 × 4.
#ifndef BP_Q4_0_R
#define BP_Q4_0_R 1
#endif
#ifndef BP_Q4_0_TT
#define BP_Q4_0_TT 8
#endif
#ifndef BP_Q8_0_R
#define BP_Q8_0_R 2
#endif
#ifndef BP_Q8_0_TT
#define BP_Q8_0_TT 4
#endif
#ifndef BP_Q4_1_R
#define BP_Q4_1_R 1
#endif
#ifndef BP_Q4_1_TT
#define BP_Q4_1_TT 8
#endif
BP_TILE(q4_0_big, tiled_q4_0, BP_Q4_0_R, BP_Q4_0_TT)
BP_TILE(q4_0_rows1, tiled_q4_0, 1, BP_Q4_0_TT)
BP_TILE(q4_0_tokens1, tiled_q4_0, BP_Q4_0_R, 1)
BP_TILE(q4_0_single, tiled_q4_0, 1, 1)
BP_TILE(q8_0_big, tiled_q8_0, BP_Q8_0_R, BP_Q8_0_TT)
BP_TILE(q8_0_rows1, tiled_q8_0, 1, BP_Q8_0_TT)
BP_TILE(q8_0_tokens1, tiled_q8_0, BP_Q8_0_R, 1)
BP_TILE(q8_0_single, tiled_q8_0, 1, 1)
BP_TILE(q4_1_big, tiled_q4_1, BP_Q4_1_R, BP_Q4_1_TT)
BP_TILE(q4_1_rows1, tiled_q4_1, 1, BP_Q4_1_TT)
BP_TILE(q4_1_tokens1, tiled_q4_1, BP_Q4_1_R, 1)
BP_TILE(q4_1_single, tiled_q4_1, 1, 1)
#undef BP_TILE

/// Rows per block: the weights of a block (about 128 KiB) stay in L2 while every token tile passes over them.
enum { block_bytes = 128 << 10 };

BP_AVX512 void bp_avx512_gemm(const bp_gemm_format *f, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
                                  float *y, size_t y_stride, int accumulate) {
  const int kind = tiled_kind(f);
  if (kind == tiled_none || x->prepared == NULL) {
    bp_gemm_tiled(&bp_int_gemv_avx512_vnni, f, weights, rows, x, y, y_stride, accumulate);
    return;
  }
  const size_t groups = groups_of(f), bytes = token_bytes(kind, groups), row_bytes = f->row_bytes;
  tile_fn big, rows1, tokens1, single;
  int R, TT;
  __m512i code_index = _mm512_setzero_si512();
  switch (kind) {
  case tiled_q4_0:
    big = q4_0_big, rows1 = q4_0_rows1, tokens1 = q4_0_tokens1, single = q4_0_single, R = BP_Q4_0_R, TT = BP_Q4_0_TT;
    code_index = step_code_index(2, 18);
    break;
  case tiled_q8_0:
    big = q8_0_big, rows1 = q8_0_rows1, tokens1 = q8_0_tokens1, single = q8_0_single, R = BP_Q8_0_R, TT = BP_Q8_0_TT;
    break;
  default:
    big = q4_1_big, rows1 = q4_1_rows1, tokens1 = q4_1_tokens1, single = q4_1_single, R = BP_Q4_1_R, TT = BP_Q4_1_TT;
    code_index = step_code_index(4, 20);
    break;
  }
  size_t block = row_bytes ? block_bytes / row_bytes : rows;
  block = block < (size_t)R ? (size_t)R : block / (size_t)R * (size_t)R;
  for (size_t b0 = 0; b0 < rows; b0 += block) {
    const size_t b1 = rows - b0 < block ? rows : b0 + block;
    for (size_t t0 = 0; t0 < x->tokens; t0 += (size_t)TT) {
      const size_t tt = x->tokens - t0 < (size_t)TT ? x->tokens - t0 : (size_t)TT;
      const int8_t *codes[BP_MAX_TT], *prep[BP_MAX_TT];
      const float *ascale[BP_MAX_TT];
      for (size_t t = 0; t < tt; t++) {
        codes[t] = x->codes + (t0 + t) * x->code_stride;
        prep[t] = (const int8_t *)x->prepared + (t0 + t) * bytes;
        ascale[t] = x->scales + (t0 + t) * x->scale_stride;
      }
      for (size_t r = b0; r < b1;) {
        const size_t n = b1 - r >= (size_t)R ? (size_t)R : 1;
        const uint8_t *row[BP_MAX_R];
        for (size_t j = 0; j < n; j++) row[j] = weights + (r + j) * row_bytes;
        if (tt == (size_t)TT) {
          const tile_out out = {y + t0 * y_stride + r, y_stride, accumulate};
          (n == (size_t)R ? big : rows1)(row, groups, codes, prep, ascale, code_index, &out);
        } else {
          for (size_t t = 0; t < tt; t++) {
            const tile_out out = {y + (t0 + t) * y_stride + r, y_stride, accumulate};
            (n == (size_t)R ? tokens1 : single)(row, groups, codes + t, prep + t, ascale + t, code_index, &out);
          }
        }
        r += n;
      }
    }
  }
}

#endif
