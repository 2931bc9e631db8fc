// The integer GEMV and GEMM with AVX2 (+ FMA, F16C): the table CPUs without AVX-512 VNNI run (AMD Zen 1–3, Intel
// Haswell to Alder Lake), which would otherwise run the plain C table for every packed GEMM.
//
// Every format runs the octet path: eight rows at a time are decoded once per call into one byte per value,
// interleaved four bytes at a time, plus per-block Float factors (and, for the 16-value K-quants q2_K, q3_K and
// q6_K, per-half Int16 scales), and every token runs through them: each vpmaddubsw meets four values of all eight
// rows, so the eight rows' exact Int32 sums land in eight lanes, then one conversion and one FMA per 32-value block
// (see "Octets" below). With one token it is the GEMV, so GEMV and GEMM agree bit for bit. Signed codes (q8_0's
// int8, q3_K, q6_K) use the sign trick: vpmaddubsw on |v| and a·sign(v) (every pair ≤ 2·128·127 < 2¹⁵).
// Like the AVX-512 table, it differs from the portable table only in the order the Float terms are added (and,
// past 2²⁴, in converting an Int32 sum to Float); the Int32 sums are exact (`CKernelTests` checks integer-valued
// cases bit for bit against the reference, and random ones against the portable table to a Float tolerance;
// `PackedGEMMTests` checks GEMM = GEMV bit for bit).

#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_internal.h"

#define BP_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BP_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/// The f16 at p as Float (exact).
BP_AVX2_INLINE float half_at(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

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


// ---- Octets: every format of this table ----------------------------------------------------------------------
//
// Every one of these formats is, per row r and activation block b (a weight group of 32·chunks values for the
// integer layouts, 32 values for the others), y_r = Σ_b s_b·(D_rb·Σ u·a + C_rb·Σ a) with codes u that vpmaddubsw
// takes as unsigned bytes (u ≤ 127, so no Int16 pair saturates against |a| ≤ 127): the integer layouts up to 7
// bits (D = d, C = −z·d), q5_0 (C = −16·d), q4_1 and q5_1 (C = m), q4_K and q5_K (D = d·sc_j, C = −dmin·m_j).
// Int8 (8 bits; q8_0) keeps signed codes v = u − 128 and |v| for the sign trick, and C = (128 − z)·d. The 16-value
// K-quants have two sub-blocks per 32-value block: their Int16 scales (q2_K's 4-bit sc, q3_K's and q6_K's signed
// ones) are applied by the vpmaddwd of each half, D = d; q3_K and q6_K keep signed codes (−4 … 3, −32 … 31) with
// the sign trick, q2_K unsigned codes 0 … 3 with C = −dmin·m per half against that half's Σa.
//
// Eight rows (an octet) are decoded once per call into bytes, D and C, so the codes are unpacked once for all
// tokens, and interleaved by four bytes: a 32-byte vector holds values 4g … 4g + 3 of all eight rows, so one
// vpmaddubsw against the token's four codes broadcast to every lane gives each row's pairs in its own two Int16
// lanes, and one vpmaddwd the eight rows' Int32 sums in eight lanes, with no horizontal step. The Int16 pairs of
// several 4-value groups are added before the vpmaddwd while they cannot overflow (`octet_depth`: eight groups for
// codes up to 15, whose pairs stay ≤ 2·15·127 = 3810), which halves the multiplies of 4-bit formats. Per block,
// the eight Int32 sums (exact) take one conversion and one FMA against D·s_b, and C one FMA against s_b·Σa, in
// separate chains added at the end: a row's Float operations are the same whatever octet or token it is computed
// in, so the GEMV (one token) and the GEMM agree bit for bit by construction. Formats without group scales
// multiply the row by the vector's scale at the end.

/// How a decoded octet is laid out: blocks of `chunks`·32 values; per block and chunk, 8 groups of 32 bytes (row
/// i's values 4g … 4g + 3 at bytes 4i … 4i + 3), then the same for |v| when `wide`; and per block 16 Floats: D of
/// rows 0–7, then C of rows 0–7.
typedef struct octet_shape {
  size_t blocks, chunks;
  /// 8-bit signed codes v with |v| (the sign trick), else unsigned codes u ≤ 127.
  int wide;
  /// Some C ≠ 0: Σa is needed.
  int offsets;
  /// One activation scale per block; else one for the vector, applied at the end.
  int block_scales;
  /// Bits of the largest unsigned code (narrow codes only): how many groups' Int16 pairs may be added.
  int code_bits;
  /// The 16-value K-quants (q2_K, q3_K, q6_K): each 32-value block has two sub-blocks with Int16 scales that the
  /// vpmaddwd applies (one per half), D = d per row, and for q2_K a C per half (−dmin·m) against that half's Σa.
  int k16;
} octet_shape;

static inline size_t octet_code_bytes(const octet_shape *o) { return o->blocks * 8 * 32 * o->chunks * (o->wide ? 2 : 1); }
static inline size_t octet_float_count(const octet_shape *o) { return o->blocks * (o->k16 ? 40 : 16); }

/// Writes row i's D and C of block b into the octet's Float table.
static inline void octet_put(float *dc, size_t b, int i, float d, float c) {
  dc[16 * b + (size_t)i] = d;
  dc[16 * b + 8 + (size_t)i] = c;
}

/// Writes row i's factors of block b of a 16-value K-quant: D, the two halves' C and Int16 scales (per block: D
/// of rows 0–7, C₀, C₁, then 16 Int16 lanes of scales for each half, row r in lanes 2r and 2r + 1).
static inline void octet_put_k16(float *dc, size_t b, int i, float d, float c0, float c1, int s0, int s1) {
  float *w = dc + 40 * b;
  w[i] = d;
  w[8 + i] = c0;
  w[16 + i] = c1;
  int16_t *scales = (int16_t *)(w + 24);
  scales[2 * i] = scales[2 * i + 1] = (int16_t)s0;
  scales[16 + 2 * i] = scales[17 + 2 * i] = (int16_t)s1;
}

/// Where a decoder writes the codes of block b, row i, chunk c (32 bytes, in value order; the |v| bytes follow at
/// + 8·values when wide). `octet_interleave` then puts them in the interleaved order.
BP_AVX2_INLINE uint8_t *octet_chunk(uint8_t *codes, const octet_shape *o, size_t b, int i, size_t c) {
  const size_t values = 32 * o->chunks;
  return codes + b * 8 * values * (o->wide ? 2 : 1) + (size_t)i * values + 32 * c;
}

/// Groups of four values whose Int16 pairs one vpmaddwd sums (1, 2, 4 or 8): as many as stay below 2¹⁵ with codes
/// below 2^bits against |a| ≤ 127; the sign trick's pairs (up to 2·128·127) take one each.
static inline int octet_depth(const octet_shape *o) {
  if (o->wide) return 1;
  const int pair = 2 * ((1 << o->code_bits) - 1) * 127;
  const int depth = 32767 / pair;
  return depth >= 8 ? 8 : depth >= 4 ? 4 : depth >= 2 ? 2 : 1;
}

/// Rows i's dwords j → dword i of vector j, for 8×8 dwords (one chunk of an octet), from `src` (rows 32 bytes
/// apart, `stride` bytes between rows) to `dst` (8 vectors of 32 bytes).
BP_AVX2_INLINE void transpose_8x8_dwords(const uint8_t *src, size_t stride, uint8_t *dst) {
  __m256i r[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_si256((const __m256i *)(src + (size_t)i * stride));
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  __m256i *out = (__m256i *)dst;
  _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(u0, u4, 0x20));
  _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(u1, u5, 0x20));
  _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(u2, u6, 0x20));
  _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(u3, u7, 0x20));
  _mm256_storeu_si256(out + 4, _mm256_permute2x128_si256(u0, u4, 0x31));
  _mm256_storeu_si256(out + 5, _mm256_permute2x128_si256(u1, u5, 0x31));
  _mm256_storeu_si256(out + 6, _mm256_permute2x128_si256(u2, u6, 0x31));
  _mm256_storeu_si256(out + 7, _mm256_permute2x128_si256(u3, u7, 0x31));
}

/// Puts a decoded octet's codes (row by row, as `octet_chunk` places them) in the interleaved order, in place;
/// `staging` holds one block (8·32·chunks bytes).
BP_AVX2 static void octet_interleave(const octet_shape *o, uint8_t *codes, uint8_t *staging) {
  const size_t values = 32 * o->chunks, section = 8 * values;
  for (size_t b = 0; b < o->blocks * (o->wide ? 2 : 1); b++) {
    uint8_t *block = codes + b * section;
    memcpy(staging, block, section);
    for (size_t c = 0; c < o->chunks; c++) transpose_8x8_dwords(staging + 32 * c, values, block + 256 * c);
  }
}

/// Decodes row i (at `row`) of an integer layout into an octet; `bits` constant after inlining.
BP_AVX2_INLINE void octet_int_row(const bp_int_layout *layout, int bits, const uint8_t *row, const uint8_t *end,
                                  const octet_shape *o, uint8_t *codes, float *dc, int i) {
  const size_t offset = layout->symmetric ? 2 : 3, group_bytes = offset + layout->chunks * 4 * (size_t)bits;
  for (size_t g = 0; g < layout->groups; g++) {
    const uint8_t *p = row + g * group_bytes, *q = p + offset;
    const int z = layout->symmetric ? 1 << (bits - 1) : p[2];
    const float d = half_at(p);
    for (size_t c = 0; c < layout->chunks; c++) {
      uint8_t *dst = octet_chunk(codes, o, g, i, c);
      if (bits == 8) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(q + 32 * c));
        const __m256i v = layout->signed_codes ? raw : _mm256_xor_si256(raw, _mm256_set1_epi8((char)0x80));
        _mm256_storeu_si256((__m256i *)dst, v);
        _mm256_storeu_si256((__m256i *)(dst + 8 * 32 * o->chunks), _mm256_sign_epi8(v, v));
      } else {
        const uint8_t *chunk = q + 4 * (size_t)bits * c;
        _mm256_storeu_si256((__m256i *)dst, bits == 4 ? nibbles(chunk) : stream_codes(chunk, bits, chunk + 3 * bits + 16 <= end));
      }
    }
    octet_put(dc, g, i, d, bits == 8 ? (float)(128 - z) * d : (float)(-z) * d);
  }
}

#define BP_OCTET_INT(B)                                                                                            \
  BP_AVX2 static void octet_int_##B(const bp_int_layout *layout, const uint8_t *row, const uint8_t *end,          \
                                    const octet_shape *o, uint8_t *codes, float *dc, int i) {                     \
    octet_int_row(layout, B, row, end, o, codes, dc, i);                                                           \
  }
BP_OCTET_INT(2)
BP_OCTET_INT(3)
BP_OCTET_INT(4)
BP_OCTET_INT(5)
BP_OCTET_INT(6)
BP_OCTET_INT(7)
BP_OCTET_INT(8)

/// Decodes row i of q5_0 (kind 0), q4_1 (1) or q5_1 (2) into an octet.
BP_AVX2 static void octet_legacy(int kind, const uint8_t *row, size_t blocks, const octet_shape *o, uint8_t *codes,
                                 float *dc, int i) {
  const size_t size = kind == 1 ? 20 : kind == 0 ? 22 : 24, qs = kind == 1 ? 4 : kind == 0 ? 6 : 8;
  for (size_t b = 0; b < blocks; b++) {
    const uint8_t *p = row + size * b;
    __m256i q = nibbles(p + qs);
    if (kind != 1) q = _mm256_or_si256(q, bits_to_16(p + qs - 4));
    _mm256_storeu_si256((__m256i *)octet_chunk(codes, o, b, i, 0), q);
    const float d = half_at(p);
    octet_put(dc, b, i, d, kind == 0 ? -16.0f * d : half_at(p + 2));
  }
}

/// Decodes row i of q4_K (`fifth` 0) or q5_K (1) into an octet: sub-block j of super-block s is block 8s + j.
BP_AVX2 static void octet_q45_k(int fifth, const uint8_t *row, size_t super_blocks, const octet_shape *o,
                                uint8_t *codes, float *dc, int i) {
  const __m256i m4 = _mm256_set1_epi8(15);
  for (size_t s = 0; s < super_blocks; s++) {
    const uint8_t *p = row + (fifth ? 176 : 144) * s, *qs = p + (fifth ? 48 : 16);
    const float d = half_at(p), dmin = half_at(p + 2);
    for (int j = 0; j < 8; j++) {
      const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
      __m256i q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(raw, 4) : raw, m4);
      if (fifth) {  // bit j of qh[l] adds 16 to value l
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 16));
        const __m256i bit = _mm256_set1_epi8((char)(1 << j));
        q = _mm256_or_si256(q, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(16)));
      }
      int sc, m;
      scale_min_k4(p + 4, j, &sc, &m);
      const size_t b = 8 * s + (size_t)j;
      _mm256_storeu_si256((__m256i *)octet_chunk(codes, o, b, i, 0), q);
      octet_put(dc, b, i, d * (float)sc, -dmin * (float)m);
    }
  }
}

/// Decodes row i of q2_K (`kind` 2: unsigned codes 0 … 3, mins as C), q3_K (3) or q6_K (6: signed codes v and
/// |v|) into an octet; block b = 8s + m of super-block s holds sub-blocks 2m and 2m + 1.
BP_AVX2 static void octet_k16(int kind, const uint8_t *row, size_t super_blocks, const octet_shape *o, uint8_t *codes,
                              float *dc, int i) {
  const __m256i m2 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(15), four = _mm256_set1_epi8(4), b32 = _mm256_set1_epi8(32);
  for (size_t s = 0; s < super_blocks; s++) {
    if (kind == 2) {
      const uint8_t *p = row + 84 * s;
      const float d = half_at(p + 80), dmin = half_at(p + 82);
      for (int m = 0; m < 8; m++) {
        const size_t b = 8 * s + (size_t)m;
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * (m / 4)));
        _mm256_storeu_si256((__m256i *)octet_chunk(codes, o, b, i, 0), _mm256_and_si256(_mm256_srli_epi16(raw, 2 * (m % 4)), m2));
        const int k = 2 * m;
        octet_put_k16(dc, b, i, d, -dmin * (float)(p[k] >> 4), -dmin * (float)(p[k + 1] >> 4), p[k] & 15, p[k + 1] & 15);
      }
    } else if (kind == 3) {
      const uint8_t *p = row + 110 * s, *sc = p + 96;
      const float d = half_at(p + 108);
      const __m256i hmask = _mm256_loadu_si256((const __m256i *)p);
      int scale[16];
      for (int k = 0; k < 16; k++) {
        const int low = k < 8 ? sc[k] & 15 : sc[k - 8] >> 4, high = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
        scale[k] = (low | high << 4) - 32;
      }
      for (int m = 0; m < 8; m++) {
        const size_t b = 8 * s + (size_t)m;
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 32 + 32 * (m / 4)));
        const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * (m % 4)), m2);
        const __m256i bit = _mm256_set1_epi8((char)(1 << m));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hmask, bit), bit);
        const __m256i q = _mm256_sub_epi8(q2, _mm256_andnot_si256(set, four));  // −4 … 3
        uint8_t *dst = octet_chunk(codes, o, b, i, 0);
        _mm256_storeu_si256((__m256i *)dst, q);
        _mm256_storeu_si256((__m256i *)(dst + 8 * 32), _mm256_sign_epi8(q, q));
        octet_put_k16(dc, b, i, d, 0, 0, scale[2 * m], scale[2 * m + 1]);
      }
    } else {
      const uint8_t *p = row + 210 * s;
      const float d = half_at(p + 208);
      for (int h = 0; h < 2; h++) {
        const __m256i high = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
        for (int g = 0; g < 4; g++) {
          const size_t b = 8 * s + 4 * (size_t)h + (size_t)g;
          const __m256i low = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32 * (g % 2)));
          const __m256i l4 = _mm256_and_si256(g < 2 ? low : _mm256_srli_epi16(low, 4), m4);
          const __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(high, 2 * g), m2);
          const __m256i q = _mm256_sub_epi8(_mm256_or_si256(l4, _mm256_slli_epi16(h2, 4)), b32);  // −32 … 31
          uint8_t *dst = octet_chunk(codes, o, b, i, 0);
          _mm256_storeu_si256((__m256i *)dst, q);
          _mm256_storeu_si256((__m256i *)(dst + 8 * 32), _mm256_sign_epi8(q, q));
          const int8_t *sc = (const int8_t *)(p + 192 + 8 * h + 2 * g);
          octet_put_k16(dc, b, i, d, 0, 0, sc[0], sc[1]);
        }
      }
    }
  }
}

/// The octet's shape for a format this path runs, else 0.
static int octet_shape_of(const bp_gemm_format *f, octet_shape *o) {
  switch (f->family) {
  case BP_GEMM_INTEGER:
    *o = (octet_shape){f->layout.groups, f->layout.chunks, f->layout.bits == 8,
                       !(f->layout.bits == 8 && f->layout.symmetric), f->layout.group_scales, f->layout.bits, 0};
    return 1;
  case BP_GEMM_LEGACY: *o = (octet_shape){f->blocks, 1, 0, 1, 1, f->legacy_kind == 1 ? 4 : 5, 0}; return 1;
  case BP_GEMM_Q2_K: *o = (octet_shape){8 * f->blocks, 1, 0, 1, 1, 2, 1}; return 1;
  case BP_GEMM_Q3_K:
  case BP_GEMM_Q6_K: *o = (octet_shape){8 * f->blocks, 1, 1, 0, 1, 8, 1}; return 1;
  case BP_GEMM_Q4_K:
  case BP_GEMM_Q5_K: *o = (octet_shape){8 * f->blocks, 1, 0, 1, 1, f->family == BP_GEMM_Q5_K ? 5 : 4, 0}; return 1;
  default: return 0;
  }
}

/// Decodes rows r0 … r0 + n − 1 (n ≤ 8) into an octet; the missing rows get zero codes, D and C.
static void octet_decode(const bp_gemm_format *f, const octet_shape *o, const uint8_t *weights, size_t rows, size_t r0,
                         size_t n, uint8_t *codes, float *dc) {
  if (n < 8) {
    memset(codes, 0, octet_code_bytes(o));
    memset(dc, 0, octet_float_count(o) * sizeof(float));
  }
  const uint8_t *end = weights + rows * f->row_bytes;
  for (int i = 0; i < (int)n; i++) {
    const uint8_t *row = weights + (r0 + (size_t)i) * f->row_bytes;
    switch (f->family) {
    case BP_GEMM_INTEGER:
      switch (f->layout.bits) {
      case 2: octet_int_2(&f->layout, row, end, o, codes, dc, i); break;
      case 3: octet_int_3(&f->layout, row, end, o, codes, dc, i); break;
      case 4: octet_int_4(&f->layout, row, end, o, codes, dc, i); break;
      case 5: octet_int_5(&f->layout, row, end, o, codes, dc, i); break;
      case 6: octet_int_6(&f->layout, row, end, o, codes, dc, i); break;
      case 7: octet_int_7(&f->layout, row, end, o, codes, dc, i); break;
      default: octet_int_8(&f->layout, row, end, o, codes, dc, i); break;
      }
      break;
    case BP_GEMM_LEGACY: octet_legacy(f->legacy_kind, row, f->blocks, o, codes, dc, i); break;
    case BP_GEMM_Q2_K: octet_k16(2, row, f->blocks, o, codes, dc, i); break;
    case BP_GEMM_Q3_K: octet_k16(3, row, f->blocks, o, codes, dc, i); break;
    case BP_GEMM_Q6_K: octet_k16(6, row, f->blocks, o, codes, dc, i); break;
    default: octet_q45_k(f->family == BP_GEMM_Q5_K, row, f->blocks, o, codes, dc, i); break;
    }
  }
}

/// Σ of the 8 Int32 lanes.
BP_AVX2_INLINE int32_t isum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

/// s_b·Σa over each block of one token's codes a (s_b = 1 without block scales): what the C terms multiply.
BP_AVX2 static void octet_sums(const octet_shape *o, const int8_t *a, const float *s, float *as) {
  const size_t values = 32 * o->chunks;
  if (o->k16) {  // one sum per 16-value half
    for (size_t b = 0; b < o->blocks; b++) {
      const __m256i sa = lane_sums(_mm256_loadu_si256((const __m256i *)(a + 32 * b)));  // lanes 0–3: values 0–15
      const __m128i lo = _mm256_castsi256_si128(sa), hi = _mm256_extracti128_si256(sa, 1);
      const __m128i l2 = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0x4E)), h2 = _mm_add_epi32(hi, _mm_shuffle_epi32(hi, 0x4E));
      as[2 * b] = s[b] * (float)_mm_cvtsi128_si32(_mm_add_epi32(l2, _mm_shuffle_epi32(l2, 0xB1)));
      as[2 * b + 1] = s[b] * (float)_mm_cvtsi128_si32(_mm_add_epi32(h2, _mm_shuffle_epi32(h2, 0xB1)));
    }
    return;
  }
  for (size_t b = 0; b < o->blocks; b++) {
    __m256i sa = _mm256_setzero_si256();
    for (size_t c = 0; c < o->chunks; c++) sa = _mm256_add_epi32(sa, lane_sums(_mm256_loadu_si256((const __m256i *)(a + b * values + 32 * c))));
    as[b] = (o->block_scales ? s[b] : 1.0f) * (float)isum8(sa);
  }
}

/// The four codes a[0 … 3] in every Int32 lane.
BP_AVX2_INLINE __m256i four_codes(const int8_t *a) {
  int32_t v;
  memcpy(&v, a, 4);
  return _mm256_set1_epi32(v);
}

/// The eight rows of a decoded octet against one token (codes a, scales s, block sums `as` from `octet_sums` when
/// the format has offsets): out[0 … 7]. `wide`, `depth` (groups per vpmaddwd) and `one` (one chunk per block)
/// constant after inlining.
BP_AVX2_INLINE void octet_token(int wide, int depth, int one, const octet_shape *o, const uint8_t *codes,
                                const float *dc, const int8_t *a, const float *s, const float *as, float out[8]) {
  const size_t chunks = one ? 1 : o->chunks, values = 32 * chunks, section = 8 * values;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps(), off = acc;
  for (size_t b = 0; b < o->blocks; b++) {
    const uint8_t *u = codes + b * section * (wide ? 2 : 1);
    const int8_t *ab = a + b * values;
    __m256i sum = _mm256_setzero_si256();
    for (size_t c = 0; c < chunks; c++) {
      const uint8_t *w = u + 256 * c;
      __m256i pairs = _mm256_setzero_si256();
      for (int g = 0; g < 8; g++) {
        const __m256i a4 = four_codes(ab + 32 * c + 4 * g);
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + 32 * g));
        const __m256i p = wide ? _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(w + section + 32 * g)),
                                                      _mm256_sign_epi8(a4, v))
                               : _mm256_maddubs_epi16(v, a4);
        pairs = g % depth == 0 ? p : _mm256_add_epi16(pairs, p);
        if (g % depth == depth - 1) sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones));
      }
    }
    const float *w = dc + 16 * b;
    const __m256 d = o->block_scales ? _mm256_mul_ps(_mm256_loadu_ps(w), _mm256_set1_ps(s[b])) : _mm256_loadu_ps(w);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), d, acc);
    if (as) off = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), _mm256_broadcast_ss(as + b), off);
  }
  __m256 y = _mm256_add_ps(acc, off);
  if (!o->block_scales) y = _mm256_mul_ps(y, _mm256_set1_ps(s[0]));
  _mm256_storeu_ps(out, y);
}

/// `octet_token` for the 16-value K-quants: per 32-value block, each half's four groups of Int16 pairs are added
/// (at most 4·2·32·127 < 2¹⁵ with the sign trick, 4·2·3·127 for q2_K's codes) and meet that half's Int16 scales in
/// one vpmaddwd, so the block's Int32 sums are Σ_half sc·Σ v·a, exactly as the row-at-a-time kernels had them.
BP_AVX2_INLINE void octet_token_k16(int wide, const octet_shape *o, const uint8_t *codes, const float *dc,
                                    const int8_t *a, const float *s, const float *as, float out[8]) {
  __m256 acc = _mm256_setzero_ps(), off = acc;
  for (size_t b = 0; b < o->blocks; b++) {
    const uint8_t *u = codes + b * 256 * (wide ? 2 : 1);
    const int8_t *ab = a + 32 * b;
    const float *w = dc + 40 * b;
    __m256i sum = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      __m256i pairs = _mm256_setzero_si256();
      for (int g = 4 * h; g < 4 * h + 4; g++) {
        const __m256i a4 = four_codes(ab + 4 * g);
        const __m256i v = _mm256_loadu_si256((const __m256i *)(u + 32 * g));
        const __m256i p = wide ? _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(u + 256 + 32 * g)), _mm256_sign_epi8(a4, v))
                               : _mm256_maddubs_epi16(v, a4);
        pairs = g == 4 * h ? p : _mm256_add_epi16(pairs, p);
      }
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, _mm256_loadu_si256((const __m256i *)(w + 24 + 8 * h))));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(_mm256_loadu_ps(w), _mm256_set1_ps(s[b])), acc);
    if (!wide) {
      off = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), _mm256_broadcast_ss(as + 2 * b), off);
      off = _mm256_fmadd_ps(_mm256_loadu_ps(w + 16), _mm256_broadcast_ss(as + 2 * b + 1), off);
    }
  }
  _mm256_storeu_ps(out, _mm256_add_ps(acc, off));
}

typedef void (*octet_token_fn)(const octet_shape *, const uint8_t *, const float *, const int8_t *, const float *,
                               const float *, float[8]);
#define BP_OCTET_TOKEN(NAME, WIDE, DEPTH, ONE)                                                                     \
  BP_AVX2 static void NAME(const octet_shape *o, const uint8_t *codes, const float *dc, const int8_t *a,          \
                           const float *s, const float *as, float out[8]) {                                       \
    octet_token(WIDE, DEPTH, ONE, o, codes, dc, a, s, as, out);                                                    \
  }
BP_OCTET_TOKEN(octet_token_d8_1, 0, 8, 1)
BP_OCTET_TOKEN(octet_token_d8, 0, 8, 0)
BP_OCTET_TOKEN(octet_token_d4_1, 0, 4, 1)
BP_OCTET_TOKEN(octet_token_d4, 0, 4, 0)
BP_OCTET_TOKEN(octet_token_d2_1, 0, 2, 1)
BP_OCTET_TOKEN(octet_token_d2, 0, 2, 0)
BP_OCTET_TOKEN(octet_token_d1_1, 0, 1, 1)
BP_OCTET_TOKEN(octet_token_d1, 0, 1, 0)
BP_OCTET_TOKEN(octet_token_wide1, 1, 1, 1)
BP_OCTET_TOKEN(octet_token_wide, 1, 1, 0)
BP_AVX2 static void octet_token_k16_narrow(const octet_shape *o, const uint8_t *codes, const float *dc, const int8_t *a,
                                           const float *s, const float *as, float out[8]) {
  octet_token_k16(0, o, codes, dc, a, s, as, out);
}
BP_AVX2 static void octet_token_k16_wide(const octet_shape *o, const uint8_t *codes, const float *dc, const int8_t *a,
                                         const float *s, const float *as, float out[8]) {
  octet_token_k16(1, o, codes, dc, a, s, as, out);
}

/// The token kernel for an octet's shape.
static octet_token_fn octet_token_for(const octet_shape *o) {
  const int one = o->chunks == 1;
  if (o->k16) return o->wide ? octet_token_k16_wide : octet_token_k16_narrow;
  if (o->wide) return one ? octet_token_wide1 : octet_token_wide;
  switch (octet_depth(o)) {
  case 8: return one ? octet_token_d8_1 : octet_token_d8;
  case 4: return one ? octet_token_d4_1 : octet_token_d4;
  case 2: return one ? octet_token_d2_1 : octet_token_d2;
  default: return one ? octet_token_d1_1 : octet_token_d1;
  }
}

/// Decoded octets a tile holds: about 24 KiB of codes and Floats (so a tile stays in L1/L2 while every token passes), 1 … 8.
static size_t octets_per_tile(const octet_shape *o) {
  const size_t per = octet_code_bytes(o) + octet_float_count(o) * sizeof(float);
  const size_t n = (24u << 10) / per;
  return n < 1 ? 1 : n > 8 ? 8 : n;
}

/// The octet GEMM (and, with one token, the GEMV) of a format `octet_shape_of` accepts: rows in tiles of decoded
/// octets, every token through each tile; the tokens' block sums (formats with offsets) are computed once per
/// call. Returns 0 when the scratch cannot be allocated (the caller then runs `bp_gemm_tiled` on the portable
/// table, which fails no allocation).
static int octet_gemm(const bp_gemm_format *f, const octet_shape *o, const uint8_t *weights, size_t rows,
                      const bp_gemm_activations *x, float *y, size_t y_stride, int accumulate) {
  const size_t code_bytes = octet_code_bytes(o), floats = octet_float_count(o), per_tile = octets_per_tile(o);
  const size_t octet_bytes = (code_bytes + floats * sizeof(float) + 31) & ~(size_t)31;
  const size_t staging_bytes = (8 * 32 * o->chunks + 31) & ~(size_t)31;
  const size_t per_token = o->blocks * (o->k16 ? 2 : 1);
  const size_t sums_bytes = o->offsets ? (x->tokens * per_token * sizeof(float) + 31) & ~(size_t)31 : 0;
  uint8_t *scratch = aligned_alloc(32, octet_bytes * per_tile + staging_bytes + sums_bytes);
  if (scratch == NULL) return 0;
  uint8_t *staging = scratch + octet_bytes * per_tile;
  float *sums = o->offsets ? (float *)(staging + staging_bytes) : NULL;
  for (size_t t = 0; sums && t < x->tokens; t++) {
    octet_sums(o, x->codes + t * x->code_stride, x->scales + t * x->scale_stride, sums + t * per_token);
  }
  const octet_token_fn token = octet_token_for(o);
  const size_t octets = (rows + 7) / 8;
  for (size_t o0 = 0; o0 < octets; o0 += per_tile) {
    const size_t o1 = octets - o0 < per_tile ? octets : o0 + per_tile;
    for (size_t k = o0; k < o1; k++) {
      uint8_t *codes = scratch + (k - o0) * octet_bytes;
      const size_t n = rows - 8 * k < 8 ? rows - 8 * k : 8;
      octet_decode(f, o, weights, rows, 8 * k, n, codes, (float *)(codes + code_bytes));
      octet_interleave(o, codes, staging);
    }
    for (size_t t = 0; t < x->tokens; t++) {
      const int8_t *a = x->codes + t * x->code_stride;
      const float *s = x->scales + t * x->scale_stride;
      const float *as = sums ? sums + t * per_token : NULL;
      for (size_t k = o0; k < o1; k++) {
        const uint8_t *codes = scratch + (k - o0) * octet_bytes;
        float out[8];
        token(o, codes, (const float *)(codes + code_bytes), a, s, as, out);
        const size_t n = rows - 8 * k < 8 ? rows - 8 * k : 8;
        float *dst = y + t * y_stride + 8 * k;
        for (size_t i = 0; i < n; i++) dst[i] = accumulate ? dst[i] + out[i] : out[i];
      }
    }
  }
  free(scratch);
  return 1;
}

/// A GEMV through `octet_gemm` (one token, outputs contiguous).
static void octet_gemv(const bp_gemm_format *f, const uint8_t *weights, size_t rows, const int8_t *codes,
                       const float *scales, float *y) {
  octet_shape o;
  octet_shape_of(f, &o);
  const bp_gemm_activations x = {codes, 0, scales, 0, 1, NULL};
  if (!octet_gemm(f, &o, weights, rows, &x, y, 0, 0)) {
    bp_gemm_tiled(bp_int_gemv_portable(), f, weights, rows, &x, y, 0, 0);
  }
}

static void avx2_gemv(bp_int_layout layout, const uint8_t *weights, size_t rows, const int8_t *codes,
                      const float *scales, float *y) {
  const bp_gemm_format f = {BP_GEMM_INTEGER, layout, 0, layout.row_bytes, 0};
  octet_gemv(&f, weights, rows, codes, scales, y);
}

static void avx2_legacy(int kind, const uint8_t *weights, size_t row_bytes, size_t rows, size_t blocks,
                        const int8_t *codes, const float *scales, float *y) {
  const bp_gemm_format f = {BP_GEMM_LEGACY, {0}, kind, row_bytes, blocks};
  octet_gemv(&f, weights, rows, codes, scales, y);
}

/// The K-quant GEMVs of the table: a one-token octet GEMM of `FAMILY`.
#define BP_K_GEMV(NAME, FAMILY)                                                                                    \
  static void NAME(const uint8_t *w, size_t rb, size_t rows, size_t sb, const int8_t *c, const float *s, float *y) { \
    const bp_gemm_format f = {FAMILY, {0}, 0, rb, sb};                                                             \
    octet_gemv(&f, w, rows, c, s, y);                                                                              \
  }
BP_K_GEMV(avx2_q2_k, BP_GEMM_Q2_K)
BP_K_GEMV(avx2_q3_k, BP_GEMM_Q3_K)
BP_K_GEMV(avx2_q4_k, BP_GEMM_Q4_K)
BP_K_GEMV(avx2_q5_k, BP_GEMM_Q5_K)
BP_K_GEMV(avx2_q6_k, BP_GEMM_Q6_K)
#undef BP_K_GEMV

static void avx2_gemm(const bp_gemm_format *format, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
                      float *y, size_t y_stride, int accumulate);

const bp_int_gemv_kernels bp_int_gemv_avx2_table = {
  "avx2", avx2_gemv, avx2_q4_k, avx2_q6_k, avx2_q5_k, avx2_legacy, avx2_q2_k, avx2_q3_k,
  bp_gemm_no_prepared_bytes, bp_gemm_no_prepare, avx2_gemm,
};

/// Every format of this table through the octet GEMM (each output equals this table's GEMV, itself a one-token
/// octet GEMM, bit for bit); `bp_gemm_tiled` over the portable table only if its scratch cannot be allocated.
static void avx2_gemm(const bp_gemm_format *format, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
                      float *y, size_t y_stride, int accumulate) {
  octet_shape o;
  if (octet_shape_of(format, &o) && octet_gemm(format, &o, weights, rows, x, y, y_stride, accumulate)) return;
  bp_gemm_tiled(bp_int_gemv_portable(), format, weights, rows, x, y, y_stride, accumulate);
}

#endif
