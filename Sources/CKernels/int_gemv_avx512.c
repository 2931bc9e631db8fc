// The integer GEMV with AVX-512 VNNI: vpdpbusd multiplies 64 unsigned weight codes by 64 signed activation codes
// and adds each group of four products into one of 16 Int32 lanes, which is exactly the u8 × s8 shape of the
// IntegerCodec codes (u = q + z, unsigned) against Q8Activations (signed). Differs from the portable table only
// in the order the Float terms are added.
//
// The zero point comes off inside the lanes, exactly (lane l ends at Σ (u − z)·a over its values):
// - int8: one more vpdpbusd per 64 values, z (a byte) times the activations already in a register, into a second
//   accumulator that is subtracted at the end of the group. This replaced precomputed lane sums: no preparation
//   pass, 102 → 81 ns at the L1 size, int8-g128 at L2 +24% (C harness, same run); the loop waits on loads, not
//   on the extra instruction.
// - int4: each call first prepares the activations (`prepare_int4`), per weight group g, 64-byte aligned and
//   `group_stride` bytes apart: per 128-value block (4 chunks) two 64-byte planes (a 64-byte load of weights
//   holds chunk c's low nibbles, values 32c + j, in bytes 16c + j and its high nibbles, values 32c + 16 + j, in the
//   same bytes after a shift, so `lo` = [a 0..15, a 32..47, a 64..79, a 96..111] and `hi` = [a 16..31, a 48..63,
//   a 80..95, a 112..127]: two 128-bit-lane shuffles once per call instead of once per row), then 16 Int32 lane
//   sums, negated (lane l = −Σ of the activations that meet lane l, times z = 8 when symmetric; asymmetric groups
//   multiply by their z). A group's accumulator starts there: −z·Σa + Σ u·a, with no extra instruction per block.
//   Partial blocks are zero-filled, and masked loads zero the matching weight bytes.
// - Groups of 16 or 32 code bytes (int4-g32, int4-g64, int8-g32, and ggml's q4_0 and q8_0, which are symmetric
//   groups of 32 in this layout) go k = 4 or 2 at a time through one 64-byte step (`add_packed`; int4 prepared as
//   one group of k·chunks chunks): 3.5× the throughput of a masked step per group (int4-g32, L2, measured). The four
//   code areas of a k = 4 step come from two loads and one `vpermt2b` (AVX-512 VBMI), the scales of symmetric
//   groups from one load and one `vpermw`: q4_0 at the L3 size 189 → 226 float-GB/s over scalar loads and inserts.
// - Other widths (int2, int3, int5, int6, int7: bit streams of 4·N bytes per 32 codes) go through the int8 loop
//   with each 64 codes unpacked to bytes by one vpermb (lane k gets stream bytes N·k …) and one vpmultishiftqb
//   (code 8k + i from bit N·i of lane k), then masked: int3-g64 at the L3 size 1.0 → 131.9 float-GB/s against the
//   Swift path, which decoded each group.
// - q4_0 / q8_0 pair with ggml's q8_0 activations (blocks of 32): each group's scale is multiplied by its block's
//   activation scale before the Float multiply-add, and q8_0's signed codes get their top bit flipped (u = q + 128,
//   z = 128).
//
// Per group the 16 exact Int32 lanes are converted (exact below 2²⁴: |lane| ≤ 8·15·127 per int4 block and
// 4·255·127 per 64 int8 values, so up to 2²⁴ / 15,240 = 1,100 int4 blocks or 130 int8 steps, i.e. groups up to
// 140K int4 or 8K int8 values; longer per-channel rows round once per lane), multiplied by the group's f16 scale
// and added into 16 Float lanes (one fused multiply-add), reduced once per row. Every Float term is bounded by
// s·Σ|u − z|·|a| over its values, so the bound of Swift's `IntDot.int4Groups` applies. Intermediate Int32 sums
// may wrap (u·a and z·a are summed apart); the difference is exact mod 2³² and fits.
//
// Measured against Swift's `simd` kernels with `bitplan bench kernels` (rows gemv-q8act and gemv-q8act-swift,
// same run) and a C harness; the shape choices below say what they were measured against.

#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "avx512_common.h"
#include "gemm_internal.h"

/// 128-value blocks per int4 group.
static inline size_t blocks_per_group(const bp_int_layout *layout) { return (layout->chunks + 3) / 4; }

/// Bytes of prepared activations per int4 group: the planes, then 64 bytes of lane sums (int8 needs none).
static inline size_t group_stride(const bp_int_layout *layout) {
  return layout->bits == 4 ? blocks_per_group(layout) * 128 + 64 : 0;
}


/// Fills `scratch` (`groups · group_stride` bytes) for an int4 layout. Two lane-sum accumulators, so the
/// vpdpbusd chain is half as long (this runs once per call, the cost of about a third of a row).
BP_AVX512 static void prepare_int4(const bp_int_layout *layout, const int8_t *codes, int8_t *scratch) {
  const size_t blocks = blocks_per_group(layout), stride = group_stride(layout), values = 32 * layout->chunks;
  const __m512i ones = _mm512_set1_epi8(1);
  for (size_t g = 0; g < layout->groups; g++) {
    const int8_t *a = codes + g * values;
    int8_t *out = scratch + g * stride;
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (size_t b = 0; b < blocks; b++) {
      // Block b: values 128b ..< 128b + 128, of which `left` are real.
      const size_t left = values - 128 * b;
      const __m512i a0 = _mm512_maskz_loadu_epi8(first_bytes(left), a + 128 * b);
      const __m512i a1 = left > 64 ? _mm512_maskz_loadu_epi8(first_bytes(left - 64), a + 128 * b + 64) : _mm512_setzero_si512();
      const __m512i lo = _mm512_shuffle_i64x2(a0, a1, 0x88), hi = _mm512_shuffle_i64x2(a0, a1, 0xDD);
      _mm512_store_si512((void *)(out + 128 * b), lo);
      _mm512_store_si512((void *)(out + 128 * b + 64), hi);
      s0 = _mm512_dpbusd_epi32(s0, ones, lo);
      s1 = _mm512_dpbusd_epi32(s1, ones, hi);
    }
    // −Σa, or −8·Σa when symmetric (z = 8 for every group): the starting value of a group's accumulator.
    __m512i sums = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_add_epi32(s0, s1));
    if (layout->symmetric) sums = _mm512_slli_epi32(sums, 3);
    _mm512_store_si512((void *)(out + stride - 64), sums);
  }
}

/// Rows one pass computes at most (`gemv_rows` runs passes of 2, then 1 for an odd last row). Per-row arrays below
/// are sized by it and indexed by a constant after inlining, so they live in registers.
#define BP_MAX_ROWS 2

/// Runs `pass(n, row, out, ...)` (n rows starting at row[j], results to *out[j], then the pass's own arguments) over
/// rows i and ⌊rows/2⌋ + i for every i, then over an odd last row alone: the row order every kernel here uses
/// (`gemv_rows` says why).
#define BP_PAIRED_ROWS(weights, row_bytes, rows, y, pass, ...)                                                    \
  do {                                                                                                            \
    const size_t bp_half = (rows) / 2;                                                                            \
    for (size_t bp_i = 0; bp_i < bp_half; bp_i++) {                                                               \
      const uint8_t *bp_row[BP_MAX_ROWS] = {(weights) + bp_i * (row_bytes), (weights) + (bp_half + bp_i) * (row_bytes)}; \
      float *bp_out[BP_MAX_ROWS] = {(y) + bp_i, (y) + bp_half + bp_i};                                            \
      pass(2, bp_row, bp_out, __VA_ARGS__);                                                                       \
    }                                                                                                             \
    if ((rows) % 2) {                                                                                             \
      const uint8_t *bp_row[BP_MAX_ROWS] = {(weights) + ((rows) - 1) * (row_bytes), NULL};                        \
      float *bp_out[BP_MAX_ROWS] = {(y) + (rows) - 1, NULL};                                                      \
      pass(1, bp_row, bp_out, __VA_ARGS__);                                                                       \
    }                                                                                                             \
  } while (0)

/// Prepared activations live on the stack up to this size, else on the heap (a call that needs more costs far
/// more than the allocation).
enum { bp_stack_scratch = 32 << 10 };

/// `stack` (`bp_stack_scratch` bytes) when `bytes` fit in it, else 64-byte-aligned heap memory; out of memory stops
/// the process, as Swift does when an allocation fails. Give it back with `release_scratch`.
static int8_t *scratch_for(size_t bytes, int8_t *stack) {
  if (bytes <= bp_stack_scratch) return stack;
  int8_t *heap = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (heap == NULL) abort();
  return heap;
}

static void release_scratch(int8_t *scratch, const int8_t *stack) {
  if (scratch != stack) free(scratch);
}

/// Lane l of the register of values 64r … 64r + 63 covers 16-value sub-block 4r + l/4 (q2_K, q3_K, q6_K): the
/// permute that spreads per-sub-block scales to lanes.
BP_AVX512 BP_INLINE __m512i sub_block_lanes(int r) {
  return _mm512_add_epi32(_mm512_set1_epi32(4 * r), _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
}

/// One 128-value int4 block: its 64 code bytes `w` against planes `pl` (low nibbles) and `ph` (high), into `lo` and
/// `hi` (which may be the same accumulator). The high nibbles come down in one GF(2) affine step (bit i of each
/// byte ← bit i + 4), one instruction instead of a shift and a mask.
BP_AVX512 BP_INLINE void int4_block(__m512i w, __m512i pl, __m512i ph, __m512i *lo, __m512i *hi) {
  const __m512i high_nibble = _mm512_set1_epi64(0x1020408000000000);
  *lo = _mm512_dpbusd_epi32(*lo, _mm512_and_si512(w, _mm512_set1_epi8(0x0F)), pl);
  *hi = _mm512_dpbusd_epi32(*hi, _mm512_gf2p8affine_epi64_epi8(w, high_nibble, 0), ph);
}

/// acc[j] += Σ u·a lanes of one int4 group (`chunks` 16-byte chunks of codes at q[j]) for each of `n` rows, against
/// the group's planes `p`, each plane loaded once for all rows. One block (groups of up to 128) is one chain per
/// row; longer groups use four accumulators per row, two blocks per step, so the loop does not wait on vpdpbusd's
/// latency every block.
BP_AVX512 BP_INLINE void int4_groups(int n, const uint8_t *const *q, const int8_t *p, size_t chunks, __m512i *acc) {
  if (chunks == 4) {
    const __m512i pl = _mm512_load_si512((const void *)p), ph = _mm512_load_si512((const void *)(p + 64));
    for (int j = 0; j < n; j++) int4_block(_mm512_loadu_si512((const void *)q[j]), pl, ph, &acc[j], &acc[j]);
    return;
  }
  __m512i s[BP_MAX_ROWS][4];
  for (int j = 0; j < n; j++) {
    s[j][0] = acc[j];
    s[j][1] = s[j][2] = s[j][3] = _mm512_setzero_si512();
  }
  size_t b = 0;
  for (; 4 * b + 8 <= chunks; b += 2) {
    const __m512i pl0 = _mm512_load_si512((const void *)(p + 128 * b)), ph0 = _mm512_load_si512((const void *)(p + 128 * b + 64));
    const __m512i pl1 = _mm512_load_si512((const void *)(p + 128 * b + 128)), ph1 = _mm512_load_si512((const void *)(p + 128 * b + 192));
    for (int j = 0; j < n; j++) {
      int4_block(_mm512_loadu_si512((const void *)(q[j] + 64 * b)), pl0, ph0, &s[j][0], &s[j][1]);
      int4_block(_mm512_loadu_si512((const void *)(q[j] + 64 * b + 64)), pl1, ph1, &s[j][2], &s[j][3]);
    }
  }
  if (4 * b + 4 <= chunks) {
    const __m512i pl = _mm512_load_si512((const void *)(p + 128 * b)), ph = _mm512_load_si512((const void *)(p + 128 * b + 64));
    for (int j = 0; j < n; j++) int4_block(_mm512_loadu_si512((const void *)(q[j] + 64 * b)), pl, ph, &s[j][0], &s[j][1]);
    b++;
  }
  if (4 * b < chunks) {
    // A partial block: its planes are zero-filled past the end, and masked loads zero the matching code bytes.
    const __m512i pl = _mm512_load_si512((const void *)(p + 128 * b)), ph = _mm512_load_si512((const void *)(p + 128 * b + 64));
    const __mmask64 m = first_bytes(16 * (chunks - 4 * b));
    for (int j = 0; j < n; j++) int4_block(_mm512_maskz_loadu_epi8(m, q[j] + 64 * b), pl, ph, &s[j][2], &s[j][3]);
  }
  for (int j = 0; j < n; j++) acc[j] = _mm512_add_epi32(_mm512_add_epi32(s[j][0], s[j][1]), _mm512_add_epi32(s[j][2], s[j][3]));
}

/// 64 codes of an N-bit little-endian bit stream (N = 2, 3, 5, 6, 7; code j in bits N·j …) at `q` as 64 bytes:
/// byte lane k of the result takes the 8 stream bytes from N·k (vpermb), then code 8k + i is the 8 bits from bit
/// N·i of that qword (vpmultishiftqb), masked to N bits. `m`: which of the 8N stream bytes to load (the rest read
/// as zero).
BP_AVX512 BP_INLINE __m512i unpack_codes(int bits, const uint8_t *q, __mmask64 m) {
  const __m512i stream = _mm512_maskz_loadu_epi8(m, q);
  const long long n = bits, every = 0x0101010101010101LL;  // N·k + i ≤ 7·7 + 7 < 64
  const __m512i lanes = _mm512_add_epi8(_mm512_set1_epi64(0x0706050403020100),
                                        _mm512_set_epi64(7 * n * every, 6 * n * every, 5 * n * every, 4 * n * every,
                                                         3 * n * every, 2 * n * every, n * every, 0));
  const __m512i shifts = _mm512_set1_epi64(n * 7 << 56 | n * 6 << 48 | n * 5 << 40 | n * 4 << 32 | n * 3 << 24 | n * 2 << 16 | n << 8);
  const __m512i codes = _mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(lanes, stream));
  return _mm512_and_si512(codes, _mm512_set1_epi8((char)((1 << bits) - 1)));
}

/// 64 codes at `q` as bytes: a plain load for int8 (masked by `m`), `unpack_codes` for other widths.
BP_AVX512 BP_INLINE __m512i load_codes(int bits, const uint8_t *q, __mmask64 m) {
  return bits == 8 ? _mm512_maskz_loadu_epi8(m, q) : unpack_codes(bits, q, m);
}

/// out[j] = Σ (u − z_j)·a lanes of one int8 group (`chunks` 32-byte chunks of codes at q[j]) for each of `n` rows
/// against the activation codes `a` (each loaded once for all rows), with z[j] row j's zero point in every byte:
/// Σ u·a and Σ z·a in two accumulators each, subtracted at the end. `shared_z`: every z[j] is the same (symmetric),
/// so Σ z·a is computed once. `signed_codes`: the bytes are signed q, read as u = q + 128 (top bit flipped).
BP_AVX512 BP_INLINE void int8_groups(int n, int bits, int shared_z, int signed_codes, const uint8_t *const *q,
                                     const int8_t *a, size_t chunks, const __m512i *z, __m512i *out) {
  const size_t step = 8 * (size_t)bits;  // code bytes per 64 codes
  const __mmask64 all = first_bytes(step);
  const int nz = shared_z ? 1 : n;
  const __m512i flip = _mm512_set1_epi8(signed_codes ? (char)0x80 : 0);
#define BP_CODES(v) (signed_codes ? _mm512_xor_si512((v), flip) : (v))
  __m512i s[BP_MAX_ROWS][2], c[BP_MAX_ROWS][2];
  for (int j = 0; j < n; j++) s[j][0] = s[j][1] = c[j][0] = c[j][1] = _mm512_setzero_si512();
  const size_t steps = chunks / 2;
  size_t t = 0;
  for (; t + 2 <= steps; t += 2) {
    const __m512i a0 = _mm512_loadu_si512((const void *)(a + 64 * t)), a1 = _mm512_loadu_si512((const void *)(a + 64 * t + 64));
    for (int j = 0; j < n; j++) {
      s[j][0] = _mm512_dpbusd_epi32(s[j][0], BP_CODES(load_codes(bits, q[j] + step * t, all)), a0);
      s[j][1] = _mm512_dpbusd_epi32(s[j][1], BP_CODES(load_codes(bits, q[j] + step * t + step, all)), a1);
    }
    for (int j = 0; j < nz; j++) {
      c[j][0] = _mm512_dpbusd_epi32(c[j][0], z[j], a0);
      c[j][1] = _mm512_dpbusd_epi32(c[j][1], z[j], a1);
    }
  }
  if (t < steps) {
    const __m512i a0 = _mm512_loadu_si512((const void *)(a + 64 * t));
    for (int j = 0; j < n; j++) s[j][0] = _mm512_dpbusd_epi32(s[j][0], BP_CODES(load_codes(bits, q[j] + step * t, all)), a0);
    for (int j = 0; j < nz; j++) c[j][0] = _mm512_dpbusd_epi32(c[j][0], z[j], a0);
    t++;
  }
  if (chunks % 2) {
    // The last 32 codes; the activations end there too (padded to whole chunks only), so the bytes past them
    // (zero, or 0x80 once flipped) meet zero activations.
    const __mmask64 m = first_bytes(32);
    const __m512i a0 = _mm512_maskz_loadu_epi8(m, a + 64 * t);
    const __mmask64 half = first_bytes(step / 2);
    for (int j = 0; j < n; j++) s[j][1] = _mm512_dpbusd_epi32(s[j][1], BP_CODES(load_codes(bits, q[j] + step * t, half)), a0);
    for (int j = 0; j < nz; j++) c[j][1] = _mm512_dpbusd_epi32(c[j][1], z[j], a0);
  }
  for (int j = 0; j < n; j++) {
    const int k = shared_z ? 0 : j;
    out[j] = _mm512_sub_epi32(_mm512_add_epi32(s[j][0], s[j][1]), _mm512_add_epi32(c[k][0], c[k][1]));
  }
#undef BP_CODES
}


/// acc[j] += s·(Σ (u − z)·a) lanes of the group at p[j] (header and codes) for each of `n` rows. `a`: the group's
/// int4 planes or int8 activation codes; `sums` (int4): its prepared lane sums, −8·Σa (symmetric) or −Σa;
/// `ascale`: the group's activation scale (s becomes s·d_g), or NULL for a per-vector one.
BP_AVX512 BP_INLINE void add_groups(int n, __m512 *acc, int bits, int symmetric, int signed_codes, size_t chunks,
                                    const uint8_t *const *p, const int8_t *a, const int8_t *sums, const float *ascale) {
  const uint8_t *q[BP_MAX_ROWS];
  __m512i isum[BP_MAX_ROWS];
  for (int j = 0; j < n; j++) q[j] = p[j] + (symmetric ? 2 : 3);
  if (bits == 4) {
    const __m512i lanes = _mm512_load_si512((const void *)sums);
    for (int j = 0; j < n; j++) isum[j] = symmetric ? lanes : _mm512_mullo_epi32(lanes, _mm512_set1_epi32(p[j][2]));
    int4_groups(n, q, a, chunks, isum);
  } else {
    __m512i z[BP_MAX_ROWS];
    for (int j = 0; j < n; j++) z[j] = _mm512_set1_epi8((char)(symmetric ? 1 << (bits - 1) : p[j][2]));
    int8_groups(n, bits, symmetric, signed_codes, q, a, chunks, z, isum);
  }
  for (int j = 0; j < n; j++) {
    const float s = ascale ? _cvtsh_ss(f16_at(p[j])) * *ascale : _cvtsh_ss(f16_at(p[j]));
    acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[j]), _mm512_set1_ps(s), acc[j]);
  }
}

/// Groups that share one 64-byte step when a group's codes are 16 or 32 bytes (int4-g32: 4; int4-g64 and int8-g32:
/// 2), else 1. Such groups would otherwise take a whole step each, mostly masked off.
static inline size_t groups_per_step(const bp_int_layout *layout) {
  if (layout->bits != 4 && layout->bits != 8) return 1;
  const size_t code_bytes = layout->chunks * 4 * (size_t)layout->bits;
  return code_bytes == 16 ? 4 : code_bytes == 32 ? 2 : 1;
}

/// How `prepare_int4` sees the first k·⌊groups / k⌋ groups when k > 1: k consecutive groups as one group of k·chunks
/// chunks (their activations are consecutive too), so the lanes of one step hold the k groups side by side.
static inline bp_int_layout packed_layout(const bp_int_layout *layout, size_t k) {
  bp_int_layout packed = *layout;
  packed.groups = layout->groups / k;
  packed.chunks = layout->chunks * k;
  return packed;
}

/// For each of `n` rows, k small groups at p[j] (`group_bytes` apart) in one 64-byte step against their activations
/// `a` (int4: packed planes, with lane sums `sums`; both loaded once for all rows): lane l belongs to group l·k / 16,
/// so the zero points and scales are spread to lanes by one permute each, and each lane gets its own group's
/// s·Σ (u − z)·a, added to acc[j]. `ascale`: the k groups' activation scales (each s becomes s·d_g), or NULL.
/// `code_index` (k = 4): `k4_code_index`.
BP_AVX512 BP_INLINE void add_packed(int n, __m512 *acc, int bits, int symmetric, int signed_codes, size_t k,
                                    size_t group_bytes, const uint8_t *const *p, const int8_t *a, const int8_t *sums,
                                    const float *ascale, __m512i code_index) {
  const size_t at = symmetric ? 2 : 3;
  const __m512i spread = k == 4 ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
                                : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i lanes = bits == 4 ? _mm512_load_si512((const void *)sums) : _mm512_setzero_si512();  // −8·Σa or −Σa
  const __m512i pl = bits == 4 ? _mm512_load_si512((const void *)a) : _mm512_loadu_si512((const void *)a);
  const __m512i ph = bits == 4 ? _mm512_load_si512((const void *)(a + 64)) : _mm512_setzero_si512();
  // int8, symmetric: Σ z·a is the same for every row (z = 128 in every byte).
  const __m512i shared_za = bits == 8 && symmetric ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)128), pl)
                                                   : _mm512_setzero_si512();
  // The k activation scales, lanes 0 … k − 1 (k = 2: 8 bytes loaded, no more).
  const __m128 dk = ascale == NULL ? _mm_set1_ps(1)
                    : k == 4       ? _mm_loadu_ps(ascale)
                                   : _mm_castpd_ps(_mm_load_sd((const double *)ascale));
  for (int j = 0; j < n; j++) {
    const uint8_t *p0 = p[j], *p1 = p0 + group_bytes, *p2 = p1 + group_bytes, *p3 = p2 + group_bytes;  // p2, p3 read only when k = 4
    __m512i w;
    if (k == 4) {
      // The four 16-byte code areas lie within the step's first and last 64 bytes: two loads, one byte permute.
      const size_t last = at + 3 * group_bytes + 16 - 64;
      w = _mm512_permutex2var_epi8(_mm512_loadu_si512((const void *)p0), code_index, _mm512_loadu_si512((const void *)(p0 + last)));
    } else {
      w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const void *)(p0 + at))),
                             _mm256_loadu_si256((const void *)(p1 + at)), 1);
    }
    if (signed_codes) w = _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));  // u = q + 128
    __m512i isum;
    if (bits == 4) {
      isum = lanes;
      if (!symmetric) {
        const __m128i z = _mm_setr_epi32(p0[2], p1[2], k == 4 ? p2[2] : 0, k == 4 ? p3[2] : 0);
        isum = _mm512_mullo_epi32(isum, _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(z)));
      }
      int4_block(w, pl, ph, &isum, &isum);
    } else {
      // int8, k = 2: bytes 0–31 belong to the first group, 32–63 to the second.
      const __m512i za = symmetric ? shared_za
                                   : _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                                         _mm512_mask_blend_epi8(~(__mmask64)0 << 32, _mm512_set1_epi8((char)p0[2]),
                                                                                _mm512_set1_epi8((char)p1[2])), pl);
      isum = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w, pl), za);
    }
    // The k f16 scales. Symmetric groups are an even number of bytes long, so the scales are 16-bit words
    // 0, g/2, g, 3g/2 of the step (g = group_bytes), which spans at least 64 bytes: one load and one vpermw instead
    // of k scalar loads and inserts (q8_0 at the L3 size 106 → 137 float-GB/s). Asymmetric groups are odd-sized.
    __m128i h;
    if (symmetric) {
      const short g = (short)(group_bytes / 2);
      const __m512i words = _mm512_castsi128_si512(_mm_setr_epi16(0, g, (short)(2 * g), (short)(3 * g), 0, 0, 0, 0));
      h = _mm512_castsi512_si128(_mm512_permutexvar_epi16(words, _mm512_loadu_si512((const void *)p0)));
    } else {
      h = _mm_setr_epi16((short)f16_at(p0), (short)f16_at(p1), k == 4 ? (short)f16_at(p2) : 0, k == 4 ? (short)f16_at(p3) : 0,
                         0, 0, 0, 0);
    }
    const __m128 sk = ascale ? _mm_mul_ps(_mm_cvtph_ps(h), dk) : _mm_cvtph_ps(h);
    const __m512 scales = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(sk));
    acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scales, acc[j]);
  }
}

/// y[j] for the `n` rows starting at row[j]: the row pass of `gemv_rows`. Two Float accumulators per row, even
/// and odd steps or groups, so small ones do not wait on one add chain.
BP_AVX512 BP_INLINE void row_pass(int n, const uint8_t *const *row, float *const *y, int bits, int symmetric,
                                  int signed_codes, int group_scales, const bp_int_layout *layout, const int8_t *codes,
                                  const int8_t *scratch, const float *scales, __m512i code_index) {
  const size_t groups = layout->groups, chunks = layout->chunks;
  const size_t group_bytes = (symmetric ? 2 : 3) + chunks * 4 * (size_t)bits;
  const size_t k = groups_per_step(layout), steps = k > 1 ? groups / k : 0, first = steps * k;
  const bp_int_layout packed = packed_layout(layout, k);
  const size_t packed_stride = group_stride(&packed), stride = group_stride(layout);
  // Groups g ≥ first: int4 planes at the start of each one's scratch (lane sums at its end), int8 codes in place.
  const int8_t *rest = scratch + steps * packed_stride;
  const int8_t *acts = bits == 4 ? rest : codes + first * 32 * chunks;
  const size_t act_stride = bits == 4 ? stride : 32 * chunks;
  __m512 f0[BP_MAX_ROWS], f1[BP_MAX_ROWS];
  const uint8_t *p[BP_MAX_ROWS];
  for (int j = 0; j < n; j++) f0[j] = f1[j] = _mm512_setzero_ps();
#define PACKED(f, s)                                                                                               \
  for (int j = 0; j < n; j++) p[j] = row[j] + (s) * k * group_bytes;                                              \
  add_packed(n, f, bits, symmetric, signed_codes, k, group_bytes, p,                                              \
             bits == 4 ? scratch + (s) * packed_stride : codes + (s) * 64,                                         \
             bits == 4 ? scratch + ((s) + 1) * packed_stride - 64 : NULL, group_scales ? scales + (s) * k : NULL,     \
             code_index)
#define GROUP(f, g)                                                                                                \
  for (int j = 0; j < n; j++) p[j] = row[j] + (first + (g)) * group_bytes;                                        \
  add_groups(n, f, bits, symmetric, signed_codes, chunks, p, acts + (g) * act_stride,                             \
             bits == 4 ? rest + ((g) + 1) * stride - 64 : NULL, group_scales ? scales + first + (g) : NULL)
  size_t s = 0;
  for (; s + 2 <= steps; s += 2) { PACKED(f0, s); PACKED(f1, s + 1); }
  if (s < steps) { PACKED(f0, s); }
  size_t g = 0;
  for (; first + g + 2 <= groups; g += 2) { GROUP(f0, g); GROUP(f1, g + 1); }
  if (first + g < groups) { GROUP(f0, g); }
#undef PACKED
#undef GROUP
  for (int j = 0; j < n; j++) {
    const float sum = _mm512_reduce_add_ps(_mm512_add_ps(f0[j], f1[j]));
    *y[j] = group_scales ? sum : sum * scales[0];
  }
}

/// `step_code_index` (avx512_common.h) for a layout whose steps are of four groups; zero otherwise.
BP_AVX512 static __m512i k4_code_index(const bp_int_layout *layout, int symmetric, int bits) {
  if (groups_per_step(layout) != 4) return _mm512_setzero_si512();
  const size_t h = symmetric ? 2 : 3;
  return step_code_index(h, h + layout->chunks * 4 * (size_t)bits);
}

/// The row loop for one (bits, symmetric) pair, called with constants by the `BP_ROWS` functions below. int4
/// `scratch` holds the prepared packed steps (k > 1), then the remaining groups one by one.
///
/// Rows i and half + i (half = ⌊rows / 2⌋) go through one pass, so each activation load (int4: two planes per 64
/// code bytes, otherwise the pass's largest cost besides the codes) serves two rows, and the weights are two
/// sequential streams half a matrix apart; an odd last row gets a pass of its own. Measured on the 2-core EPYC with a C
/// harness, int4 per-channel, 16,000 × 4096 (32.8 MB), best of 15 alternating samples after a 128 MiB flush:
/// one row per pass 26.4 / 25.7 GB/s, rows half apart 31.0 / 31.9, a plain read of the same bytes 32.1 / 32.9; warm
/// (L2) 51.0 against 72.7 GB/s. Adjacent rows as the pair ran at 12.0 / 12.7 GB/s cold (interleaved loads 2 KB
/// apart defeat the hardware prefetcher), and software prefetch (256 … 2048 bytes ahead) was slower at every distance.
BP_AVX512 BP_INLINE void gemv_rows(int bits, int symmetric, int signed_codes, int group_scales, const bp_int_layout *layout,
                                   const uint8_t *weights, size_t rows, const int8_t *codes, const int8_t *scratch,
                                   const float *scales, float *y) {
  const __m512i code_index = k4_code_index(layout, symmetric, bits);
  BP_PAIRED_ROWS(weights, layout->row_bytes, rows, y, row_pass, bits, symmetric, signed_codes, group_scales, layout, codes,
                 scratch, scales, code_index);
}
/// The specializations, each its own function: inlined into one, the row loops shared a register allocation
/// and reloaded strides from the stack inside the hot loop (int4-g128 10% slower, measured). BitPlan's int4 and
/// int8 with one activation scale, and ggml's q4_0 and q8_0 against 32-value activation blocks.
#define BP_ROWS(name, bits, symmetric, signed_codes, group_scales)                                                  \
  BP_AVX512 __attribute__((noinline)) static void name(const bp_int_layout *layout, const uint8_t *weights,       \
                                                       size_t rows, const int8_t *codes, const int8_t *scratch,     \
                                                       const float *scales, float *y) {                             \
    gemv_rows(bits, symmetric, signed_codes, group_scales, layout, weights, rows, codes, scratch, scales, y);       \
  }
BP_ROWS(int4_symmetric_rows, 4, 1, 0, 0)
BP_ROWS(int4_asymmetric_rows, 4, 0, 0, 0)
BP_ROWS(int8_symmetric_rows, 8, 1, 0, 0)
BP_ROWS(int8_asymmetric_rows, 8, 0, 0, 0)
BP_ROWS(q4_0_rows, 4, 1, 0, 1)
BP_ROWS(int2_symmetric_rows, 2, 1, 0, 0)
BP_ROWS(int2_asymmetric_rows, 2, 0, 0, 0)
BP_ROWS(int3_symmetric_rows, 3, 1, 0, 0)
BP_ROWS(int3_asymmetric_rows, 3, 0, 0, 0)
BP_ROWS(int5_symmetric_rows, 5, 1, 0, 0)
BP_ROWS(int5_asymmetric_rows, 5, 0, 0, 0)
BP_ROWS(int6_symmetric_rows, 6, 1, 0, 0)
BP_ROWS(int6_asymmetric_rows, 6, 0, 0, 0)
BP_ROWS(int7_symmetric_rows, 7, 1, 0, 0)
BP_ROWS(int7_asymmetric_rows, 7, 0, 0, 0)
BP_ROWS(q8_0_rows, 8, 1, 1, 1)
#undef BP_ROWS

typedef void (*bp_rows_fn)(const bp_int_layout *, const uint8_t *, size_t, const int8_t *, const int8_t *, const float *,
                           float *);

/// The specialization for `layout`, or NULL for a combination without one.
static bp_rows_fn rows_function(const bp_int_layout *layout) {
  if (!layout->signed_codes && !layout->group_scales) {
    const int sym = layout->symmetric;
    switch (layout->bits) {
    case 2: return sym ? int2_symmetric_rows : int2_asymmetric_rows;
    case 3: return sym ? int3_symmetric_rows : int3_asymmetric_rows;
    case 4: return sym ? int4_symmetric_rows : int4_asymmetric_rows;
    case 5: return sym ? int5_symmetric_rows : int5_asymmetric_rows;
    case 6: return sym ? int6_symmetric_rows : int6_asymmetric_rows;
    case 7: return sym ? int7_symmetric_rows : int7_asymmetric_rows;
    case 8: return sym ? int8_symmetric_rows : int8_asymmetric_rows;
    default: return NULL;
    }
  }
  if (layout->symmetric && layout->group_scales && layout->chunks == 1) {
    if (layout->bits == 4 && !layout->signed_codes) return q4_0_rows;
    if (layout->bits == 8 && layout->signed_codes) return q8_0_rows;
  }
  return NULL;
}

BP_AVX512 static void avx512_gemv(bp_int_layout layout, const uint8_t *weights, size_t rows, const int8_t *codes,
                                  const float *scales, float *y) {
  if (rows == 0) return;
  const bp_rows_fn run = rows_function(&layout);
  if (run == NULL) {
    bp_int_gemv_portable()->gemv(layout, weights, rows, codes, scales, y);  // no specialization: the plain loop
    return;
  }
  const size_t k = groups_per_step(&layout), first = k > 1 ? layout.groups / k * k : 0;
  bp_int_layout packed = packed_layout(&layout, k), rest = layout;
  if (k == 1) packed.groups = 0;
  rest.groups = layout.groups - first;
  // The prepared int4 activations (int8 and the bit streams need none).
  _Alignas(64) int8_t stack[bp_stack_scratch];
  const size_t packed_bytes = packed.groups * group_stride(&packed), bytes = packed_bytes + rest.groups * group_stride(&rest);
  int8_t *planes = scratch_for(bytes, stack);
  if (layout.bits == 4) {
    prepare_int4(&packed, codes, planes);
    prepare_int4(&rest, codes + first * 32 * layout.chunks, planes + packed_bytes);
  }
  run(&layout, weights, rows, codes, planes, scales, y);
  release_scratch(planes, stack);
}

// ggml's q4_K and q5_K against 32-value activation blocks. Per call, each super-block s gets 576 prepared bytes: four
// 64-byte planes (for 64 code bytes h = 0, 1: the activations that meet its low nibbles, values 128h + 0…31 and
// 128h + 64…95, and its high nibbles, 128h + 32…63 and 128h + 96…127), the matching activation scales per Int32
// lane (4 × 16 floats), and d_b·Σa over each of its 8 blocks (the min term). Per row and super-block: four
// vpdpbusd give the 8 sub-block sums Σ q·a, 8 lanes each; the lanes are multiplied by their 6-bit scale as
// integers (exact: |Σ q·a|·63 < 2²²), converted, multiplied by d_b, and added under d; the mins take one 8-lane
// multiply-add under dmin. Rows are paired as in `gemv_rows`.
enum { q4_k_prepared = 576 };

BP_AVX512 static void prepare_q4_k(size_t super_blocks, const int8_t *codes, const float *scales, int8_t *out) {
  for (size_t s = 0; s < super_blocks; s++) {
    const int8_t *a = codes + 256 * s;
    const float *d = scales + 8 * s;
    int8_t *o = out + q4_k_prepared * s;
    for (int h = 0; h < 2; h++) {
      const __m256i a0 = _mm256_loadu_si256((const void *)(a + 128 * h)), a1 = _mm256_loadu_si256((const void *)(a + 128 * h + 32));
      const __m256i a2 = _mm256_loadu_si256((const void *)(a + 128 * h + 64)), a3 = _mm256_loadu_si256((const void *)(a + 128 * h + 96));
      _mm512_store_si512((void *)(o + 128 * h), _mm512_inserti64x4(_mm512_castsi256_si512(a0), a2, 1));
      _mm512_store_si512((void *)(o + 128 * h + 64), _mm512_inserti64x4(_mm512_castsi256_si512(a1), a3, 1));
      const int b = 4 * h;  // blocks b … b + 3 of this super-block
      _mm256_store_ps((void *)(o + 256 + 128 * h), _mm256_set1_ps(d[b]));
      _mm256_store_ps((void *)(o + 256 + 128 * h + 32), _mm256_set1_ps(d[b + 2]));
      _mm256_store_ps((void *)(o + 256 + 128 * h + 64), _mm256_set1_ps(d[b + 1]));
      _mm256_store_ps((void *)(o + 256 + 128 * h + 96), _mm256_set1_ps(d[b + 3]));
    }
    // Σa per block: vpdpbusd with ones gives 16 lanes of 4-value sums; lanes 8k … 8k + 7 are block k's two halves.
    float sums[8];
    for (int b = 0; b < 8; b++) {
      const __m256i x = _mm256_loadu_si256((const void *)(a + 32 * b));
      const __m256i lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), x);
      const __m128i q = _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
      const __m128i p2 = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4E));
      sums[b] = d[b] * (float)_mm_cvtsi128_si32(_mm_add_epi32(p2, _mm_shuffle_epi32(p2, 0xB1)));
    }
    _mm512_store_ps((void *)(o + 512), _mm512_castps256_ps512(_mm256_loadu_ps(sums)));
  }
}

/// The 8 scales (low 32 bits: 0–3, high: 4–7) and 8 mins of a q4_K super-block's 12 packed bytes, one byte each:
/// j < 4 from the low six bits of bytes j and j + 4; j ≥ 4 from a nibble of byte j + 4 (scale low, min high) with
/// the top two bits of byte j − 4 (scale) or j (min) above it.
static inline void q4_k_scales(const uint8_t *q, uint64_t *sc, uint64_t *m) {
  uint32_t a, b, c;
  memcpy(&a, q, 4);
  memcpy(&b, q + 4, 4);
  memcpy(&c, q + 8, 4);
  const uint32_t sc_hi = (c & 0x0F0F0F0Fu) | ((a >> 2) & 0x30303030u), m_hi = ((c >> 4) & 0x0F0F0F0Fu) | ((b >> 2) & 0x30303030u);
  *sc = (uint64_t)(a & 0x3F3F3F3Fu) | (uint64_t)sc_hi << 32;
  *m = (uint64_t)(b & 0x3F3F3F3Fu) | (uint64_t)m_hi << 32;
}

/// y[j] for the `n` rows at row[j] (as `row_pass`). `fifth`: q5_K (176-byte super-blocks, qh[32] at 16, qs at 48;
/// the fifth bit of value 64c + 32t + l is bit 2c + t of qh[l]) instead of q4_K (144 bytes, qs at 16).
BP_AVX512 BP_INLINE void q4_k_pass(int n, const uint8_t *const *row, float *const *y, int fifth, size_t super_blocks,
                                   const int8_t *prep) {
  const size_t block = fifth ? 176 : 144, qs = fifth ? 48 : 16;
  const __m512i low = _mm512_set1_epi8(0x0F), high_nibble = _mm512_set1_epi64(0x1020408000000000);
  // q5_K: the fifth bits of the four registers (h = 0, 1; low, high nibbles) are bits 4h + 2·half + high of qh,
  // moved to bit 4 by 16-bit shifts per 256-bit half (left for h = 0, right for h = 1) and masked; bits crossing
  // bytes land outside bit 4.
  const __m512i shift[4] = {_mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1),
                            _mm512_inserti64x4(_mm512_set1_epi16(3), _mm256_set1_epi16(1), 1),
                            _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1),
                            _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1)};
  const __m512i bit4 = _mm512_set1_epi8(0x10);
  const __m512i pick[4] = {_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2),
                           _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3),
                           _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6),
                           _mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7)};
  __m512 acc[BP_MAX_ROWS];
  __m256 mins[BP_MAX_ROWS];
  for (int j = 0; j < n; j++) {
    acc[j] = _mm512_setzero_ps();
    mins[j] = _mm256_setzero_ps();
  }
  for (size_t s = 0; s < super_blocks; s++) {
    const int8_t *o = prep + q4_k_prepared * s;
    const __m512i planes[4] = {_mm512_load_si512((const void *)o), _mm512_load_si512((const void *)(o + 64)),
                               _mm512_load_si512((const void *)(o + 128)), _mm512_load_si512((const void *)(o + 192))};
    const __m512 da[4] = {_mm512_load_ps((const void *)(o + 256)), _mm512_load_ps((const void *)(o + 320)),
                          _mm512_load_ps((const void *)(o + 384)), _mm512_load_ps((const void *)(o + 448))};
    const __m256 dsum = _mm256_load_ps((const void *)(o + 512));
    for (int j = 0; j < n; j++) {
      const uint8_t *p = row[j] + block * s;
      uint64_t sc, m;
      q4_k_scales(p + 4, &sc, &m);
      const __m512i sc32 = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc));
      const __m512i q0 = _mm512_loadu_si512((const void *)(p + qs)), q1 = _mm512_loadu_si512((const void *)(p + qs + 64));
      __m512i u[4] = {_mm512_and_si512(q0, low), _mm512_gf2p8affine_epi64_epi8(q0, high_nibble, 0), _mm512_and_si512(q1, low),
                      _mm512_gf2p8affine_epi64_epi8(q1, high_nibble, 0)};
      if (fifth) {
        const __m256i h256 = _mm256_loadu_si256((const void *)(p + 16));
        const __m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(h256), h256, 1);
        u[0] = _mm512_or_si512(u[0], _mm512_and_si512(_mm512_sllv_epi16(qh, shift[0]), bit4));
        u[1] = _mm512_or_si512(u[1], _mm512_and_si512(_mm512_sllv_epi16(qh, shift[1]), bit4));
        u[2] = _mm512_or_si512(u[2], _mm512_and_si512(_mm512_srlv_epi16(qh, shift[2]), bit4));
        u[3] = _mm512_or_si512(u[3], _mm512_and_si512(_mm512_srlv_epi16(qh, shift[3]), bit4));
      }
      __m512i sums[4];
      for (int k = 0; k < 4; k++) sums[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[k], planes[k]);
      __m512 f = _mm512_setzero_ps();
      for (int k = 0; k < 4; k++) {
        const __m512i scaled = _mm512_mullo_epi32(sums[k], _mm512_permutexvar_epi32(pick[k], sc32));
        f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(scaled), da[k], f);
      }
      const float d = _cvtsh_ss(f16_at(p)), dmin = _cvtsh_ss(f16_at(p + 2));
      acc[j] = _mm512_fmadd_ps(f, _mm512_set1_ps(d), acc[j]);
      const __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)m)));
      mins[j] = _mm256_fmadd_ps(_mm256_mul_ps(mf, dsum), _mm256_set1_ps(dmin), mins[j]);
    }
  }
  for (int j = 0; j < n; j++) {
    const __m128 m4 = _mm_add_ps(_mm256_castps256_ps128(mins[j]), _mm256_extractf128_ps(mins[j], 1));
    const __m128 m2 = _mm_add_ps(m4, _mm_movehl_ps(m4, m4));
    *y[j] = _mm512_reduce_add_ps(acc[j]) - _mm_cvtss_f32(_mm_add_ss(m2, _mm_movehdup_ps(m2)));
  }
}

BP_AVX512 BP_INLINE void q45_k_rows(int fifth, const uint8_t *weights, size_t row_bytes, size_t rows,
                                    size_t super_blocks, const int8_t *prep, float *y) {
  BP_PAIRED_ROWS(weights, row_bytes, rows, y, q4_k_pass, fifth, super_blocks, prep);
}

BP_AVX512 __attribute__((noinline)) static void q4_k_rows(const uint8_t *weights, size_t row_bytes, size_t rows,
                                                          size_t super_blocks, const int8_t *prep, float *y) {
  q45_k_rows(0, weights, row_bytes, rows, super_blocks, prep, y);
}

BP_AVX512 __attribute__((noinline)) static void q5_k_rows(const uint8_t *weights, size_t row_bytes, size_t rows,
                                                          size_t super_blocks, const int8_t *prep, float *y) {
  q45_k_rows(1, weights, row_bytes, rows, super_blocks, prep, y);
}

/// q4_K (`fifth` 0) or q5_K: both prepare the same activations (their nibbles lie alike).
BP_AVX512 static void q45_k(int fifth, const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                            const int8_t *codes, const float *scales, float *y) {
  if (rows == 0) return;
  _Alignas(64) int8_t stack[bp_stack_scratch];
  int8_t *prep = scratch_for(q4_k_prepared * super_blocks, stack);
  prepare_q4_k(super_blocks, codes, scales, prep);
  (fifth ? q5_k_rows : q4_k_rows)(weights, row_bytes, rows, super_blocks, prep, y);
  release_scratch(prep, stack);
}

BP_AVX512 static void avx512_q4_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                                  const int8_t *codes, const float *scales, float *y) {
  q45_k(0, weights, row_bytes, rows, super_blocks, codes, scales, y);
}

BP_AVX512 static void avx512_q5_k(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks,
                                  const int8_t *codes, const float *scales, float *y) {
  q45_k(1, weights, row_bytes, rows, super_blocks, codes, scales, y);
}

// ggml's q6_K against 32-value activation blocks. A half super-block's 64 ql bytes hold, in their low nibbles, the
// low bits of values 128h + 0…63 and, in their high nibbles, of 128h + 64…127, so each register of codes meets 64
// consecutive activations (no planes); the two top bits come from the 32 qh bytes, copied to both 256-bit halves
// and moved to bits 4–5 by one variable 16-bit shift and a mask. Lane l of a register covers 4 values of sub-block
// 8h + 4·(high) + l/4. Per call and super-block, 512 prepared bytes: −32·Σa per lane (the zero point) and the
// block scale per lane for each of the four registers.
enum { q6_k_prepared = 512 };

BP_AVX512 static void prepare_q6_k(size_t super_blocks, const int8_t *codes, const float *scales, int8_t *out) {
  for (size_t s = 0; s < super_blocks; s++) {
    int8_t *o = out + q6_k_prepared * s;
    for (int k = 0; k < 4; k++) {  // register k: values 64k … 64k + 63 of the super-block, blocks 2k and 2k + 1
      const __m512i a = _mm512_loadu_si512((const void *)(codes + 256 * s + 64 * k));
      const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), a);
      _mm512_store_si512((void *)(o + 64 * k), _mm512_mullo_epi32(sums, _mm512_set1_epi32(-32)));
      const float *d = scales + 8 * s + 2 * k;
      _mm256_store_ps((void *)(o + 256 + 64 * k), _mm256_set1_ps(d[0]));
      _mm256_store_ps((void *)(o + 256 + 64 * k + 32), _mm256_set1_ps(d[1]));
    }
  }
}

/// y[j] for the `n` rows at row[j] (as `row_pass`).
BP_AVX512 BP_INLINE void q6_k_pass(int n, const uint8_t *const *row, float *const *y, size_t super_blocks,
                                   const int8_t *codes, const int8_t *prep) {
  const __m512i low = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30), high_nibble = _mm512_set1_epi64(0x1020408000000000);
  // Bits 2g, 2g + 1 of qh to bits 4, 5: g = 0 | 1 in the low register (shift left 4 | 2), g = 2 | 3 in the high
  // one (0 | right 2); 16-bit shifts, the bits crossing bytes are masked off.
  const __m512i left = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i right = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  const __m512i pick[4] = {sub_block_lanes(0), sub_block_lanes(1), sub_block_lanes(2), sub_block_lanes(3)};
  __m512 acc[BP_MAX_ROWS];
  for (int j = 0; j < n; j++) acc[j] = _mm512_setzero_ps();
  for (size_t s = 0; s < super_blocks; s++) {
    const int8_t *o = prep + q6_k_prepared * s, *a = codes + 256 * s;
    const __m512i x[4] = {_mm512_loadu_si512((const void *)a), _mm512_loadu_si512((const void *)(a + 64)),
                          _mm512_loadu_si512((const void *)(a + 128)), _mm512_loadu_si512((const void *)(a + 192))};
    for (int j = 0; j < n; j++) {
      const uint8_t *p = row[j] + 210 * s;
      const __m512i sc32 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(p + 192)));
      __m512 f = _mm512_setzero_ps();
      for (int h = 0; h < 2; h++) {
        const __m512i ql = _mm512_loadu_si512((const void *)(p + 64 * h));
        const __m256i qh256 = _mm256_loadu_si256((const void *)(p + 128 + 32 * h));
        const __m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(qh256), qh256, 1);
        const __m512i u[2] = {
          _mm512_or_si512(_mm512_and_si512(ql, low), _mm512_and_si512(_mm512_sllv_epi16(qh, left), top)),
          _mm512_or_si512(_mm512_gf2p8affine_epi64_epi8(ql, high_nibble, 0), _mm512_and_si512(_mm512_srlv_epi16(qh, right), top))};
        for (int k = 0; k < 2; k++) {
          const int r = 2 * h + k;  // register: values 64r … 64r + 63
          const __m512i isum = _mm512_dpbusd_epi32(_mm512_load_si512((const void *)(o + 64 * r)), u[k], x[r]);
          const __m512i scaled = _mm512_mullo_epi32(isum, _mm512_permutexvar_epi32(pick[r], sc32));
          f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(scaled), _mm512_load_ps((const void *)(o + 256 + 64 * r)), f);
        }
      }
      acc[j] = _mm512_fmadd_ps(f, _mm512_set1_ps(_cvtsh_ss(f16_at(p + 208))), acc[j]);
    }
  }
  for (int j = 0; j < n; j++) *y[j] = _mm512_reduce_add_ps(acc[j]);
}

/// The rows of `pass` (q2_K, q3_K, q6_K: `pass(n, row, out, super_blocks, codes, prep)`) and its table entry
/// `avx512_<type>`, which prepares the activations as `prepare_q6_k` does.
#define BP_ON_Q6_K_PREP(type)                                                                                     \
  BP_AVX512 __attribute__((noinline)) static void type##_rows(const uint8_t *weights, size_t row_bytes, size_t rows, \
                                                              size_t super_blocks, const int8_t *codes,            \
                                                              const int8_t *prep, float *y) {                      \
    BP_PAIRED_ROWS(weights, row_bytes, rows, y, type##_pass, super_blocks, codes, prep);                          \
  }                                                                                                               \
  BP_AVX512 static void avx512_##type(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks, \
                                      const int8_t *codes, const float *scales, float *y) {                       \
    if (rows == 0) return;                                                                                        \
    _Alignas(64) int8_t stack[bp_stack_scratch];                                                                  \
    int8_t *prep = scratch_for(q6_k_prepared * super_blocks, stack);                                              \
    prepare_q6_k(super_blocks, codes, scales, prep);                                                              \
    type##_rows(weights, row_bytes, rows, super_blocks, codes, prep, y);                                          \
    release_scratch(prep, stack);                                                                                 \
  }
BP_ON_Q6_K_PREP(q6_k)

// ggml's q4_1, q5_0 and q5_1 against 32-value activation blocks, in steps of four blocks as int4-g32: per call
// each step's activations become the two planes of `prepare_int4` (the first and last 16 values of each block)
// and −Σa per lane (4 lanes per block); per step and row, the four 16-byte code areas come from two loads and one
// vpermt2b, q5's fifth bits from the four qh words as two 64-bit byte masks, and the scales d (and mins m) from one
// vpermw each. A last partial step reads only its blocks (masked loads).
enum { legacy_prepared = 192 };

BP_AVX512 static void prepare_legacy(size_t blocks, const int8_t *codes, int8_t *out) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (size_t s = 0; 4 * s < blocks; s++) {
    const size_t v = 32 * (blocks - 4 * s < 4 ? blocks - 4 * s : 4);  // real values in this step
    const int8_t *a = codes + 128 * s;
    const __m512i a0 = _mm512_maskz_loadu_epi8(first_bytes(v), a);
    const __m512i a1 = v > 64 ? _mm512_maskz_loadu_epi8(first_bytes(v - 64), a + 64) : _mm512_setzero_si512();
    const __m512i lo = _mm512_shuffle_i64x2(a0, a1, 0x88), hi = _mm512_shuffle_i64x2(a0, a1, 0xDD);
    int8_t *o = out + legacy_prepared * s;
    _mm512_store_si512((void *)o, lo);
    _mm512_store_si512((void *)(o + 64), hi);
    const __m512i sums = _mm512_add_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, lo),
                                          _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, hi));
    _mm512_store_si512((void *)(o + 128), _mm512_sub_epi32(_mm512_setzero_si512(), sums));
  }
}

/// One step of `nb` ≤ 4 blocks at p[j] for each of `n` rows, added to acc[j] (`kind` as `legacy_gemv`; `o` the
/// step's prepared activations, `dk` its activation scales, lanes 0 … nb − 1).
BP_AVX512 BP_INLINE void legacy_step(int n, int kind, size_t nb, const uint8_t *const *p, const int8_t *o, __m128 dk,
                                     __m512i code_index, __m512 *acc) {
  const size_t g = kind == 1 ? 20 : kind == 0 ? 22 : 24, h = kind == 1 ? 4 : kind == 0 ? 6 : 8, last = h + 3 * g + 16 - 64;
  // Word indices of the scales (byte i·g) and mins (i·g + 2) in [first 64 bytes | 64 bytes from `last`].
#define BP_WORD(o) ((short)((o) < 64 ? (o) / 2 : 32 + ((o) - last) / 2))
  const __m512i d_words = _mm512_castsi128_si512(_mm_setr_epi16(BP_WORD(0), BP_WORD(g), BP_WORD(2 * g), BP_WORD(3 * g), 0, 0, 0, 0));
  const __m512i m_words = _mm512_castsi128_si512(
    _mm_setr_epi16(BP_WORD(2), BP_WORD(g + 2), BP_WORD(2 * g + 2), BP_WORD(3 * g + 2), 0, 0, 0, 0));
#undef BP_WORD
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const size_t bytes = nb * g;
  const __mmask64 first = first_bytes(bytes), second = bytes > last ? first_bytes(bytes - last) : 0;
  const __m512i pl = _mm512_load_si512((const void *)o), ph = _mm512_load_si512((const void *)(o + 64));
  const __m512i lanes = _mm512_load_si512((const void *)(o + 128));  // −Σa
  const __m512 asum = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_setzero_si512(), lanes));
  for (int j = 0; j < n; j++) {
    const __m512i head = _mm512_maskz_loadu_epi8(first, p[j]), tail = _mm512_maskz_loadu_epi8(second, p[j] + last);
    const __m512i w16 = _mm512_permutex2var_epi8(head, code_index, tail);
    __m512i lo = _mm512_and_si512(w16, _mm512_set1_epi8(0x0F));
    __m512i hi = _mm512_gf2p8affine_epi64_epi8(w16, _mm512_set1_epi64(0x1020408000000000), 0);
    if (kind != 1) {
      uint64_t low_bits = 0, high_bits = 0;
      for (size_t i = 0; i < nb; i++) {
        uint32_t qh;
        memcpy(&qh, p[j] + i * g + h - 4, 4);
        low_bits |= (uint64_t)(qh & 0xFFFF) << (16 * i);
        high_bits |= (uint64_t)(qh >> 16) << (16 * i);
      }
      lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi8(low_bits, _mm512_set1_epi8(0x10)));
      hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi8(high_bits, _mm512_set1_epi8(0x10)));
    }
    __m512i isum = kind == 0 ? _mm512_slli_epi32(lanes, 4) : _mm512_setzero_si512();  // q5_0: −16·Σa
    isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(isum, lo, pl), hi, ph);
    const __m128 d4 = _mm_mul_ps(_mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(head, d_words, tail))), dk);
    acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(d4)), acc[j]);
    if (kind != 0) {
      const __m128 m4 = _mm_mul_ps(_mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(head, m_words, tail))), dk);
      acc[j] = _mm512_fmadd_ps(asum, _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(m4)), acc[j]);
    }
  }
}

BP_AVX512 BP_INLINE void legacy_pass(int n, const uint8_t *const *row, float *const *y, int kind, size_t blocks,
                                     const int8_t *prep, const float *scales, __m512i code_index) {
  const size_t g = kind == 1 ? 20 : kind == 0 ? 22 : 24;
  __m512 acc[BP_MAX_ROWS];
  const uint8_t *p[BP_MAX_ROWS];
  for (int j = 0; j < n; j++) acc[j] = _mm512_setzero_ps();
  size_t s = 0;
  for (; 4 * s + 4 <= blocks; s++) {
    for (int j = 0; j < n; j++) p[j] = row[j] + 4 * g * s;
    legacy_step(n, kind, 4, p, prep + legacy_prepared * s, _mm_loadu_ps(scales + 4 * s), code_index, acc);
  }
  if (4 * s < blocks) {
    const size_t nb = blocks - 4 * s;
    for (int j = 0; j < n; j++) p[j] = row[j] + 4 * g * s;
    legacy_step(n, kind, nb, p, prep + legacy_prepared * s, _mm_maskz_loadu_ps((__mmask8)((1u << nb) - 1), scales + 4 * s),
                code_index, acc);
  }
  for (int j = 0; j < n; j++) *y[j] = _mm512_reduce_add_ps(acc[j]);
}

#define BP_LEGACY_ROWS(name, kind)                                                                                 \
  BP_AVX512 __attribute__((noinline)) static void name(const uint8_t *weights, size_t row_bytes, size_t rows,     \
                                                       size_t blocks, const int8_t *prep, const float *scales,      \
                                                       float *y) {                                                  \
    const __m512i code_index = step_code_index(kind == 1 ? 4 : kind == 0 ? 6 : 8, kind == 1 ? 20 : kind == 0 ? 22 : 24); \
    BP_PAIRED_ROWS(weights, row_bytes, rows, y, legacy_pass, kind, blocks, prep, scales, code_index);            \
  }
BP_LEGACY_ROWS(q5_0_rows, 0)
BP_LEGACY_ROWS(q4_1_rows, 1)
BP_LEGACY_ROWS(q5_1_rows, 2)
#undef BP_LEGACY_ROWS

BP_AVX512 static void avx512_legacy(int kind, const uint8_t *weights, size_t row_bytes, size_t rows, size_t blocks,
                                    const int8_t *codes, const float *scales, float *y) {
  if (rows == 0 || blocks == 0) {
    for (size_t r = 0; r < rows; r++) y[r] = 0;
    return;
  }
  _Alignas(64) int8_t stack[bp_stack_scratch];
  int8_t *prep = scratch_for(legacy_prepared * ((blocks + 3) / 4), stack);
  prepare_legacy(blocks, codes, prep);
  (kind == 0 ? q5_0_rows : kind == 1 ? q4_1_rows : q5_1_rows)(weights, row_bytes, rows, blocks, prep, scales, y);
  release_scratch(prep, stack);
}

// ggml's q2_K against 32-value activation blocks, with q6_K's prepared activations: its codes lie like q6_K's
// (the 32 qs bytes of a half hold values 128h + 0…127 at bit pairs 0, 2, 4, 6), so each register of 64 codes meets 64
// consecutive activations and lane l covers 4 values of sub-block 8h + 4·(high) + l/4. The min term is the same
// sum with Σa per lane (−(−32·Σa)/32, exact) in place of Σ q·a and the 4-bit mins in place of the scales.
BP_AVX512 BP_INLINE void q2_k_pass(int n, const uint8_t *const *row, float *const *y, size_t super_blocks,
                                   const int8_t *codes, const int8_t *prep) {
  const __m512i three = _mm512_set1_epi8(3), nibble = _mm512_set1_epi8(0x0F);
  // Bit pairs 2g: g = 0 | 1 in the first register (shift 0 | 2), g = 2 | 3 in the second (4 | 6).
  const __m512i shift[2] = {_mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1),
                            _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1)};
  const __m512i pick[4] = {sub_block_lanes(0), sub_block_lanes(1), sub_block_lanes(2), sub_block_lanes(3)};
  __m512 acc[BP_MAX_ROWS];
  for (int j = 0; j < n; j++) acc[j] = _mm512_setzero_ps();
  for (size_t s = 0; s < super_blocks; s++) {
    const int8_t *o = prep + q6_k_prepared * s, *a = codes + 256 * s;
    __m512i x[4], asum[4];
    __m512 da[4];
    for (int r = 0; r < 4; r++) {
      x[r] = _mm512_loadu_si512((const void *)(a + 64 * r));
      asum[r] = _mm512_srai_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), _mm512_load_si512((const void *)(o + 64 * r))), 5);
      da[r] = _mm512_load_ps((const void *)(o + 256 + 64 * r));
    }
    for (int j = 0; j < n; j++) {
      const uint8_t *p = row[j] + 84 * s;
      const __m128i packed = _mm_loadu_si128((const void *)p);
      const __m512i sc32 = _mm512_cvtepu8_epi32(_mm_and_si128(packed, _mm512_castsi512_si128(nibble)));
      const __m512i m32 = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm512_castsi512_si128(nibble)));
      __m512 f = _mm512_setzero_ps(), fm = _mm512_setzero_ps();
      for (int h = 0; h < 2; h++) {
        const __m256i q256 = _mm256_loadu_si256((const void *)(p + 16 + 32 * h));
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q256), q256, 1);
        for (int k = 0; k < 2; k++) {
          const int r = 2 * h + k;  // register: values 64r … 64r + 63
          const __m512i u = _mm512_and_si512(_mm512_srlv_epi16(q, shift[k]), three);
          const __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, x[r]);
          f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(isum, _mm512_permutexvar_epi32(pick[r], sc32))), da[r], f);
          fm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(asum[r], _mm512_permutexvar_epi32(pick[r], m32))), da[r], fm);
        }
      }
      acc[j] = _mm512_fmadd_ps(f, _mm512_set1_ps(_cvtsh_ss(f16_at(p + 80))), acc[j]);
      acc[j] = _mm512_fnmadd_ps(fm, _mm512_set1_ps(_cvtsh_ss(f16_at(p + 82))), acc[j]);
    }
  }
  for (int j = 0; j < n; j++) *y[j] = _mm512_reduce_add_ps(acc[j]);
}

BP_ON_Q6_K_PREP(q2_k)

// ggml's q3_K, also on q6_K's prepared activations: the low two bits lie like q2_K's, the third bit (set: +4) comes
// from hmask[l] bit 4h + g by one variable 16-bit shift per register, and z = 4 takes −4·Σa per lane from the
// prepared −32·Σa (one arithmetic shift, exact). The sixteen 6-bit scales are unpacked with 32-bit word operations.
BP_AVX512 BP_INLINE void q3_k_pass(int n, const uint8_t *const *row, float *const *y, size_t super_blocks,
                                   const int8_t *codes, const int8_t *prep) {
  const __m512i three = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
  const __m512i shift[2] = {_mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1),
                            _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1)};
  // hmask bit of register r = 2h + k: 2r in its first 256 bits, 2r + 1 in its second.
  const __m512i hbit[4] = {_mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(1), 1),
                           _mm512_inserti64x4(_mm512_set1_epi16(2), _mm256_set1_epi16(3), 1),
                           _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(5), 1),
                           _mm512_inserti64x4(_mm512_set1_epi16(6), _mm256_set1_epi16(7), 1)};
  const __m512i pick[4] = {sub_block_lanes(0), sub_block_lanes(1), sub_block_lanes(2), sub_block_lanes(3)};
  __m512 acc[BP_MAX_ROWS];
  for (int j = 0; j < n; j++) acc[j] = _mm512_setzero_ps();
  for (size_t s = 0; s < super_blocks; s++) {
    const int8_t *o = prep + q6_k_prepared * s, *a = codes + 256 * s;
    __m512i x[4], zsum[4];
    __m512 da[4];
    for (int r = 0; r < 4; r++) {
      x[r] = _mm512_loadu_si512((const void *)(a + 64 * r));
      zsum[r] = _mm512_srai_epi32(_mm512_load_si512((const void *)(o + 64 * r)), 3);  // −4·Σa
      da[r] = _mm512_load_ps((const void *)(o + 256 + 64 * r));
    }
    for (int j = 0; j < n; j++) {
      const uint8_t *p = row[j] + 110 * s;
      uint32_t w[3];
      memcpy(w, p + 96, 12);
      const uint32_t nib = 0x0F0F0F0Fu, two = 0x03030303u;
      const __m128i sc8 = _mm_setr_epi32((int)((w[0] & nib) | (w[2] & two) << 4), (int)((w[1] & nib) | ((w[2] >> 2) & two) << 4),
                                         (int)(((w[0] >> 4) & nib) | ((w[2] >> 4) & two) << 4),
                                         (int)(((w[1] >> 4) & nib) | ((w[2] >> 6) & two) << 4));
      const __m512i sc32 = _mm512_sub_epi32(_mm512_cvtepu8_epi32(sc8), _mm512_set1_epi32(32));
      const __m256i hm256 = _mm256_loadu_si256((const void *)p);
      const __m512i hm = _mm512_inserti64x4(_mm512_castsi256_si512(hm256), hm256, 1);
      __m512 f = _mm512_setzero_ps();
      for (int h = 0; h < 2; h++) {
        const __m256i q256 = _mm256_loadu_si256((const void *)(p + 32 + 32 * h));
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q256), q256, 1);
        for (int k = 0; k < 2; k++) {
          const int r = 2 * h + k;  // register: values 64r … 64r + 63
          const __m512i third = _mm512_and_si512(_mm512_srlv_epi16(hm, hbit[r]), one);
          const __m512i u = _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi16(q, shift[k]), three), _mm512_slli_epi16(third, 2));
          const __m512i isum = _mm512_dpbusd_epi32(zsum[r], u, x[r]);  // Σ (u − 4)·a, u = q + 4
          f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(isum, _mm512_permutexvar_epi32(pick[r], sc32))), da[r], f);
        }
      }
      acc[j] = _mm512_fmadd_ps(f, _mm512_set1_ps(_cvtsh_ss(f16_at(p + 108))), acc[j]);
    }
  }
  for (int j = 0; j < n; j++) *y[j] = _mm512_reduce_add_ps(acc[j]);
}

BP_ON_Q6_K_PREP(q3_k)

const bp_int_gemv_kernels bp_int_gemv_avx512_vnni = {
  "avx512-vnni", avx512_gemv, avx512_q4_k, avx512_q6_k, avx512_q5_k, avx512_legacy, avx512_q2_k, avx512_q3_k,
  bp_avx512_gemm_prepared_bytes, bp_avx512_gemm_prepare, bp_avx512_gemm,
};

#endif
