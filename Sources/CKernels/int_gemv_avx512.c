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
// - then 16 Int32 lane sums, negated: lane l = −Σ of the activations that meet lane l of the accumulator over the
//   group (times z = 2^(bits−1) for symmetric layouts; asymmetric groups multiply by their z). A group's
//   accumulator starts there, so the zero point comes off inside the lanes, with no extra instruction:
//   −z·Σa + Σ u·a = Σ (u − z)·a over lane l's values, exactly.
//   Partial blocks are zero-filled, and masked loads zero the matching weight bytes.
// - Groups of 16 or 32 code bytes (int4-g32, int4-g64, int8-g32) are prepared k = 4 or 2 at a time as one group,
//   and the kernel loads k groups' codes into one 64-byte step (`add_packed`): 3.5× the throughput of a masked
//   step per group (int4-g32, L2, measured).
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

#define BP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,gfni,f16c,fma")))
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
    // −Σa, or −z·Σa when z = 2^(bits−1) for every group: the starting value of a group's accumulator.
    __m512i sums = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_add_epi32(s0, s1));
    if (layout->symmetric) sums = _mm512_slli_epi32(sums, layout->bits - 1);
    _mm512_store_si512((void *)(out + stride - 64), sums);
  }
}

/// One 128-value int4 block: its 64 code bytes `w` against planes `p`, low nibbles into `lo`, high into `hi` (which
/// may be the same accumulator). The high nibbles come down in one GF(2) affine step (bit i of each byte ← bit
/// i + 4), one instruction instead of a shift and a mask.
BP_AVX512 BP_INLINE void int4_block(__m512i w, const int8_t *p, __m512i *lo, __m512i *hi) {
  const __m512i high_nibble = _mm512_set1_epi64(0x1020408000000000);
  *lo = _mm512_dpbusd_epi32(*lo, _mm512_and_si512(w, _mm512_set1_epi8(0x0F)), _mm512_load_si512((const void *)p));
  *hi = _mm512_dpbusd_epi32(*hi, _mm512_gf2p8affine_epi64_epi8(w, high_nibble, 0), _mm512_load_si512((const void *)(p + 64)));
}

/// `init` + Σ u·a lanes of one int4 group (`chunks` 16-byte chunks of codes at `q`) against its planes `p`. One
/// block (groups of up to 128) is one chain; longer groups use four accumulators, two blocks per step, so the
/// loop does not wait on vpdpbusd's latency every block.
BP_AVX512 BP_INLINE __m512i int4_group(const uint8_t *q, const int8_t *p, size_t chunks, __m512i init) {
  if (chunks == 4) {
    int4_block(_mm512_loadu_si512((const void *)q), p, &init, &init);
    return init;
  }
  __m512i s0 = init, s1 = _mm512_setzero_si512(), s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
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

/// `init` + Σ u·a lanes of one int8 group (`chunks` 32-byte chunks of codes at `q`) against the activation codes
/// `a`, four accumulators.
BP_AVX512 BP_INLINE __m512i int8_group(const uint8_t *q, const int8_t *a, size_t chunks, __m512i init) {
  __m512i s0 = init, s1 = _mm512_setzero_si512(), s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
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

/// s·(Σ (u − z)·a) lanes of the group at `p` (header and codes), added to `acc`. `a`: the group's int4 planes or
/// int8 activation codes; `sums`: its prepared lane sums, −z·Σa (symmetric) or −Σa, so the accumulator starts at
/// −z·Σa and ends at Σ (u − z)·a exactly.
BP_AVX512 BP_INLINE __m512 add_group(__m512 acc, int bits, int symmetric, size_t chunks, const uint8_t *p, const int8_t *a,
                                     const int8_t *sums) {
  const uint8_t *q = p + (symmetric ? 2 : 3);
  const __m512i lanes = _mm512_load_si512((const void *)sums);
  const __m512i init = symmetric ? lanes : _mm512_mullo_epi32(lanes, _mm512_set1_epi32(p[2]));
  const __m512i isum = bits == 4 ? int4_group(q, a, chunks, init) : int8_group(q, a, chunks, init);
  const __m512 scale = _mm512_set1_ps(_cvtsh_ss((unsigned short)(p[0] | p[1] << 8)));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc);
}

/// Groups that share one 64-byte step when a group's codes are 16 or 32 bytes (int4-g32: 4; int4-g64 and int8-g32:
/// 2), else 1. Such groups would otherwise take a whole step each, mostly masked off.
static inline size_t groups_per_step(const bp_int_layout *layout) {
  const size_t code_bytes = layout->chunks * 4 * (size_t)layout->bits;
  return code_bytes == 16 ? 4 : code_bytes == 32 ? 2 : 1;
}

/// How `prepare` sees the first k·⌊groups / k⌋ groups when k > 1: k consecutive groups as one group of k·chunks
/// chunks (their activations are consecutive too), so the lanes of one step hold the k groups side by side.
static inline bp_int_layout packed_layout(const bp_int_layout *layout, size_t k) {
  bp_int_layout packed = *layout;
  packed.groups = layout->groups / k;
  packed.chunks = layout->chunks * k;
  return packed;
}

/// f16 bits at p.
static inline unsigned short f16_at(const uint8_t *p) { return (unsigned short)(p[0] | p[1] << 8); }

/// k small groups at `p` (`group_bytes` apart) in one 64-byte step against their packed activations `a` and lane
/// sums `sums`: lane l belongs to group l·k / 16, so the zero points and scales are spread to lanes by one permute
/// each, and each lane gets its own group's s·Σ (u − z)·a.
BP_AVX512 BP_INLINE __m512 add_packed(__m512 acc, int bits, int symmetric, size_t k, size_t group_bytes, const uint8_t *p,
                                      const int8_t *a, const int8_t *sums) {
  const size_t at = symmetric ? 2 : 3;
  const uint8_t *p1 = p + group_bytes, *p2 = p1 + group_bytes, *p3 = p2 + group_bytes;  // p2, p3 read only when k = 4
  __m512i w;
  if (k == 4) {
    w = _mm512_castsi128_si512(_mm_loadu_si128((const void *)(p + at)));
    w = _mm512_inserti32x4(w, _mm_loadu_si128((const void *)(p1 + at)), 1);
    w = _mm512_inserti32x4(w, _mm_loadu_si128((const void *)(p2 + at)), 2);
    w = _mm512_inserti32x4(w, _mm_loadu_si128((const void *)(p3 + at)), 3);
  } else {
    w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const void *)(p + at))),
                           _mm256_loadu_si256((const void *)(p1 + at)), 1);
  }
  const __m512i spread = k == 4 ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
                                : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  __m512i isum = _mm512_load_si512((const void *)sums);  // −z·Σa or −Σa, as in `add_group`
  if (!symmetric) {
    const __m128i z = _mm_setr_epi32(p[2], p1[2], k == 4 ? p2[2] : 0, k == 4 ? p3[2] : 0);
    isum = _mm512_mullo_epi32(isum, _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(z)));
  }
  if (bits == 4) {
    int4_block(w, a, &isum, &isum);
  } else {
    isum = _mm512_dpbusd_epi32(isum, w, _mm512_loadu_si512((const void *)a));
  }
  const __m128i h = _mm_setr_epi16((short)f16_at(p), (short)f16_at(p1), k == 4 ? (short)f16_at(p2) : 0,
                                   k == 4 ? (short)f16_at(p3) : 0, 0, 0, 0, 0);
  const __m512 scales = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_cvtph_ps(h)));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scales, acc);
}

/// The row loop for one (bits, symmetric) pair; `avx512_gemv` calls it with constants. `scratch` holds the
/// prepared packed steps (k > 1), then the remaining groups one by one.
BP_AVX512 BP_INLINE void gemv_rows(int bits, int symmetric, const bp_int_layout *layout, const uint8_t *weights,
                                   size_t rows, const int8_t *codes, const int8_t *scratch, float scale, float *y) {
  const size_t groups = layout->groups, chunks = layout->chunks;
  const size_t group_bytes = (symmetric ? 2 : 3) + chunks * 4 * (size_t)bits;
  const size_t k = groups_per_step(layout), steps = k > 1 ? groups / k : 0, first = steps * k;
  const bp_int_layout packed = packed_layout(layout, k);
  const size_t packed_stride = group_stride(&packed), stride = group_stride(layout);
  // Group g ≥ first: activations (int4 planes at the start of its scratch, int8 codes in place) and lane sums.
  const int8_t *rest = scratch + steps * packed_stride;
  const int8_t *acts = bits == 4 ? rest : codes + first * 32 * chunks;
  const size_t act_stride = bits == 4 ? stride : 32 * chunks;
  // One row at a time, so the weights are one sequential stream. Two rows per pass (each activation load serving
  // both) ran 25% faster on warm L1/L2 data but 2–5× slower on cold data, adjacent rows or the two halves of the
  // matrix alike (the hardware prefetcher falls behind; measured 10–23 against 25–50 GB/s), and weights in a
  // forward pass are cold. Software prefetch (256 … 2048 bytes ahead) was slower at every distance.
  for (size_t r = 0; r < rows; r++) {
    const uint8_t *row = weights + r * layout->row_bytes;
    // Two Float accumulators, even and odd steps or groups, so small ones do not wait on one add chain.
    __m512 f0 = _mm512_setzero_ps(), f1 = _mm512_setzero_ps();
    for (size_t s = 0; s < steps; s++) {
      const int8_t *a = bits == 4 ? scratch + s * packed_stride : codes + s * 64;
      const __m512 sum = add_packed(s % 2 ? f1 : f0, bits, symmetric, k, group_bytes, row + s * k * group_bytes, a,
                                    scratch + s * packed_stride + packed_stride - 64);
      if (s % 2) f1 = sum; else f0 = sum;
    }
    const uint8_t *tail = row + first * group_bytes;
    size_t g = 0;
    for (; first + g + 2 <= groups; g += 2) {
      f0 = add_group(f0, bits, symmetric, chunks, tail + g * group_bytes, acts + g * act_stride, rest + g * stride + stride - 64);
      f1 = add_group(f1, bits, symmetric, chunks, tail + (g + 1) * group_bytes, acts + (g + 1) * act_stride,
                     rest + (g + 1) * stride + stride - 64);
    }
    if (first + g < groups) {
      f0 = add_group(f0, bits, symmetric, chunks, tail + g * group_bytes, acts + g * act_stride, rest + g * stride + stride - 64);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(f0, f1)) * scale;
  }
}

BP_AVX512 static void avx512_gemv(bp_int_layout layout, const uint8_t *weights, size_t rows, const int8_t *codes,
                                  float scale, float *y) {
  if (rows == 0) return;
  const size_t k = groups_per_step(&layout), first = k > 1 ? layout.groups / k * k : 0;
  bp_int_layout packed = packed_layout(&layout, k), rest = layout;
  if (k == 1) packed.groups = 0;
  rest.groups = layout.groups - first;
  // The prepared activations: on the stack up to 32 KiB, else on the heap (a row that long costs far more than
  // the allocation).
  enum { stack_bytes = 32 << 10 };
  _Alignas(64) int8_t stack[stack_bytes];
  const size_t packed_bytes = packed.groups * group_stride(&packed), bytes = packed_bytes + rest.groups * group_stride(&rest);
  int8_t *planes = bytes <= stack_bytes ? stack : aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (planes == NULL) abort();  // out of memory: stop, as Swift does when an allocation fails
  avx512_prepare(&packed, codes, planes);
  avx512_prepare(&rest, codes + first * 32 * layout.chunks, planes + packed_bytes);
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
