// The integer GEMV with AVX-512 VNNI: vpdpbusd multiplies 64 unsigned weight codes by 64 signed activation codes
// and adds each group of four products into one of 16 Int32 lanes, which is exactly the u8 × s8 shape of the
// IntegerCodec codes (u = q + z, unsigned) against Q8Activations (signed). Differs from the portable table only
// in the order the Float terms are added.
//
// Each call first prepares the activations (`avx512_prepare`), per weight group g, 64-byte aligned and
// `group_stride` bytes apart:
// - int4: per 128-value block (4 chunks) two 64-byte planes. A 64-byte load of weights holds chunk c's low nibbles
//   (values 32c + j) in bytes 16c + j and its high nibbles (values 32c + 16 + j) in the same bytes after a shift,
//   so `lo` = [a 0..15, a 32..47, a 64..79, a 96..111] and `hi` = [a 16..31, a 48..63, a 80..95, a 112..127]
//   (two 128-bit-lane shuffles of the codes, done once per call instead of once per row).
// - int8: nothing; the kernel reads the codes in place (the planes were a copy, and the copy cost as much as a row).
// - then 16 Int32 lane sums: lane l = Σ of the activations that meet lane l of the accumulator over the group
//   (times z = 2^(bits−1) for symmetric layouts), so the zero point comes off inside the lanes:
//   isum_l − z·lanesum_l = Σ (u − z)·a over lane l's values, exactly.
//   Partial blocks are zero-filled, and masked loads zero the matching weight bytes.
//
// Per group the 16 exact Int32 lanes are converted (exact below 2²⁴: |lane| ≤ 8·15·127 per int4 block and
// 4·255·127 per 64 int8 values, so up to 2²⁴ / 15,240 = 1,100 int4 blocks or 130 int8 steps, i.e. groups up to
// 140K int4 or 8K int8 values; longer per-channel rows round once per lane), multiplied by the group's f16 scale
// and added into 16 Float lanes (one fused multiply-add), reduced once per row. Every Float term is bounded by
// s·Σ|u − z|·|a| over its values, so the bound of Swift's `IntDot.int4Groups` applies.
//
// Measured against Swift's `simd` kernels (`bitplan bench kernels`, rows gemv-q8act and gemv-q8act-swift, same
// run): see the commit messages; the shape choices below each say what they were measured against.

#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <stdlib.h>

#define BP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")))
/// Helpers are inlined into the per-format loops, so `bits` and `symmetric` are constants there.
#define BP_INLINE static inline __attribute__((always_inline))

/// Whole 64-byte steps per group: 128 values (4 chunks) for int4, 64 values (2 chunks) for int8.
/// Whole 64-byte steps per group: 128 values (4 chunks) for int4, 64 values (2 chunks) for int8.
static inline size_t steps_per_group(const bp_int_layout *layout) {
  return layout->bits == 4 ? (layout->chunks + 3) / 4 : (layout->chunks + 1) / 2;
}

/// Bytes of prepared activations per group: int4 planes, then 64 bytes of lane sums (int8: the lane sums only,
/// the kernel reads the codes in place).
static inline size_t group_stride(const bp_int_layout *layout) {
  return layout->bits == 4 ? steps_per_group(layout) * 128 + 64 : 64;
}

/// Mask of the first n ≤ 64 bytes.
BP_AVX512 BP_INLINE __mmask64 first_bytes(size_t n) { return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1); }

/// Fills `scratch` (`groups · group_stride` bytes). Two lane-sum accumulators, so the vpdpbusd chain is half as
/// long (this runs once per call, the cost of about a third of a row).
BP_AVX512 static void avx512_prepare(const bp_int_layout *layout, const int8_t *codes, int8_t *scratch) {
  const size_t steps = steps_per_group(layout), stride = group_stride(layout), values = 32 * layout->chunks;
  const __m512i ones = _mm512_set1_epi8(1);
  for (size_t g = 0; g < layout->groups; g++) {
    const int8_t *a = codes + g * values;
    int8_t *out = scratch + g * stride;
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (size_t s = 0; s < steps; s++) {
      if (layout->bits == 4) {
        // Block s: values 128s ..< 128s + 128, of which `left` are real.
        const size_t left = values - 128 * s;
        const __m512i a0 = _mm512_maskz_loadu_epi8(first_bytes(left), a + 128 * s);
        const __m512i a1 = left > 64 ? _mm512_maskz_loadu_epi8(first_bytes(left - 64), a + 128 * s + 64) : _mm512_setzero_si512();
        const __m512i lo = _mm512_shuffle_i64x2(a0, a1, 0x88), hi = _mm512_shuffle_i64x2(a0, a1, 0xDD);
        _mm512_store_si512((void *)(out + 128 * s), lo);
        _mm512_store_si512((void *)(out + 128 * s + 64), hi);
        s0 = _mm512_dpbusd_epi32(s0, ones, lo);
        s1 = _mm512_dpbusd_epi32(s1, ones, hi);
      } else if (s % 2 == 0) {
        s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_maskz_loadu_epi8(first_bytes(values - 64 * s), a + 64 * s));
      } else {
        s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_maskz_loadu_epi8(first_bytes(values - 64 * s), a + 64 * s));
      }
    }
    __m512i sums = _mm512_add_epi32(s0, s1);
    if (layout->symmetric) sums = _mm512_slli_epi32(sums, layout->bits - 1);  // z·Σa, z = 2^(bits−1)
    _mm512_store_si512((void *)(out + stride - 64), sums);
  }
}

/// One 128-value int4 block: its 64 code bytes `q` against planes `p`, low nibbles into `lo`, high into `hi`.
BP_AVX512 BP_INLINE void int4_block(__m512i w, const int8_t *p, __m512i *lo, __m512i *hi) {
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  *lo = _mm512_dpbusd_epi32(*lo, _mm512_and_si512(w, nibble), _mm512_load_si512((const void *)p));
  *hi = _mm512_dpbusd_epi32(*hi, _mm512_and_si512(_mm512_srli_epi16(w, 4), nibble), _mm512_load_si512((const void *)(p + 64)));
}

/// Σ u·a lanes of one int4 group (`chunks` 16-byte chunks of codes at `q`) against its planes `p`. Four
/// accumulators, two blocks per step: one accumulator chain would wait on vpdpbusd's latency every block.
BP_AVX512 BP_INLINE __m512i int4_group(const uint8_t *q, const int8_t *p, size_t chunks) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512(), s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
  size_t b = 0;
  for (; 4 * b + 8 <= chunks; b += 2) {
    int4_block(_mm512_loadu_si512((const void *)(q + 64 * b)), p + 128 * b, &s0, &s1);
    int4_block(_mm512_loadu_si512((const void *)(q + 64 * b + 64)), p + 128 * b + 128, &s2, &s3);
  }
  if (4 * b + 4 <= chunks) {
    int4_block(_mm512_loadu_si512((const void *)(q + 64 * b)), p + 128 * b, &s0, &s1);
    b++;
  }
  if (4 * b < chunks) int4_block(_mm512_maskz_loadu_epi8(first_bytes(16 * (chunks - 4 * b)), q + 64 * b), p + 128 * b, &s2, &s3);
  return _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));
}

/// Σ u·a lanes of one int8 group (`chunks` 32-byte chunks of codes at `q`) against the activation codes `a`, four
/// accumulators.
BP_AVX512 BP_INLINE __m512i int8_group(const uint8_t *q, const int8_t *a, size_t chunks) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512(), s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
  const size_t steps = chunks / 2;
  size_t s = 0;
  for (; s + 4 <= steps; s += 4) {
    s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512((const void *)(q + 64 * s)), _mm512_loadu_si512((const void *)(a + 64 * s)));
    s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512((const void *)(q + 64 * s + 64)), _mm512_loadu_si512((const void *)(a + 64 * s + 64)));
    s2 = _mm512_dpbusd_epi32(s2, _mm512_loadu_si512((const void *)(q + 64 * s + 128)), _mm512_loadu_si512((const void *)(a + 64 * s + 128)));
    s3 = _mm512_dpbusd_epi32(s3, _mm512_loadu_si512((const void *)(q + 64 * s + 192)), _mm512_loadu_si512((const void *)(a + 64 * s + 192)));
  }
  for (; s < steps; s++) {
    s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512((const void *)(q + 64 * s)), _mm512_loadu_si512((const void *)(a + 64 * s)));
  }
  if (chunks % 2) {
    // The last 32 codes; the activations end there too (padded to whole chunks only).
    const __mmask64 m = first_bytes(32);
    s1 = _mm512_dpbusd_epi32(s1, _mm512_maskz_loadu_epi8(m, q + 64 * s), _mm512_maskz_loadu_epi8(m, a + 64 * s));
  }
  return _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));
}

/// s·(Σ (u − z)·a) lanes from the Σ u·a lanes `isum` of the group at `p`, added to `acc`.
BP_AVX512 BP_INLINE __m512 add_terms(__m512 acc, __m512i isum, int symmetric, const uint8_t *p, const int8_t *sums) {
  const __m512i lanes = _mm512_load_si512((const void *)sums);
  // `prepare` stored z·Σa for symmetric layouts (z = 2^(bits−1) is the same for every group).
  isum = _mm512_sub_epi32(isum, symmetric ? lanes : _mm512_mullo_epi32(lanes, _mm512_set1_epi32(p[2])));
  const __m512 scale = _mm512_set1_ps(_cvtsh_ss((unsigned short)(p[0] | p[1] << 8)));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc);
}

/// s·(Σ (u − z)·a) lanes of the group at `p` (header and codes), added to `acc`. `a`: the group's int4 planes or
/// int8 activation codes; `sums`: its prepared lane sums.
BP_AVX512 BP_INLINE __m512 add_group(__m512 acc, int bits, int symmetric, size_t chunks, const uint8_t *p, const int8_t *a,
                                     const int8_t *sums) {
  const uint8_t *q = p + (symmetric ? 2 : 3);
  return add_terms(acc, bits == 4 ? int4_group(q, a, chunks) : int8_group(q, a, chunks), symmetric, p, sums);
}

/// The row loop for one (bits, symmetric) pair; `avx512_gemv` calls it with constants.
BP_AVX512 BP_INLINE void gemv_rows(int bits, int symmetric, const bp_int_layout *layout, const uint8_t *weights,
                                   size_t rows, const int8_t *codes, const int8_t *scratch, float scale, float *y) {
  const size_t stride = group_stride(layout), groups = layout->groups, chunks = layout->chunks;
  const size_t group_bytes = (symmetric ? 2 : 3) + chunks * 4 * (size_t)bits;
  // Group g's activations: int4 planes at the start of its scratch, int8 codes in place.
  const int8_t *acts = bits == 4 ? scratch : codes;
  const size_t act_stride = bits == 4 ? stride : 32 * chunks;
  // One row at a time, so the weights are one sequential stream. Two rows per pass (each activation load serving
  // both) ran 25% faster on warm L1/L2 data but 2–5× slower on cold data, adjacent rows or the two halves of the
  // matrix alike (the hardware prefetcher falls behind; measured 10–23 against 25–50 GB/s), and weights in a
  // forward pass are cold. Software prefetch (256 … 2048 bytes ahead) was slower at every distance.
  for (size_t r = 0; r < rows; r++) {
    const uint8_t *row = weights + r * layout->row_bytes;
    // Two Float accumulators, even and odd groups, so small groups do not wait on one add chain.
    __m512 f0 = _mm512_setzero_ps(), f1 = _mm512_setzero_ps();
    size_t g = 0;
    for (; g + 2 <= groups; g += 2) {
      f0 = add_group(f0, bits, symmetric, chunks, row + g * group_bytes, acts + g * act_stride, scratch + g * stride + stride - 64);
      f1 = add_group(f1, bits, symmetric, chunks, row + (g + 1) * group_bytes, acts + (g + 1) * act_stride,
                     scratch + (g + 1) * stride + stride - 64);
    }
    if (g < groups) f0 = add_group(f0, bits, symmetric, chunks, row + g * group_bytes, acts + g * act_stride, scratch + g * stride + stride - 64);
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(f0, f1)) * scale;
  }
}

BP_AVX512 static void avx512_gemv(bp_int_layout layout, const uint8_t *weights, size_t rows, const int8_t *codes,
                                  float scale, float *y) {
  if (rows == 0) return;
  // The prepared activations: on the stack up to 64 KiB, else on the heap (a row that long costs far more than
  // the allocation).
  enum { stack_bytes = 64 << 10 };
  _Alignas(64) int8_t stack[stack_bytes];
  const size_t bytes = layout.groups * group_stride(&layout);
  int8_t *planes = bytes <= stack_bytes ? stack : aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (planes == NULL) abort();  // out of memory: stop, as Swift does when an allocation fails
  avx512_prepare(&layout, codes, planes);
  if (layout.bits == 4) {
    if (layout.symmetric) gemv_rows(4, 1, &layout, weights, rows, codes, planes, scale, y);
    else gemv_rows(4, 0, &layout, weights, rows, codes, planes, scale, y);
  } else {
    if (layout.symmetric) gemv_rows(8, 1, &layout, weights, rows, codes, planes, scale, y);
    else gemv_rows(8, 0, &layout, weights, rows, codes, planes, scale, y);
  }
  if (planes != stack) free(planes);
}

const bp_int_gemv_kernels bp_int_gemv_avx512_vnni = {
  "avx512-vnni", avx512_gemv,
};

#endif
