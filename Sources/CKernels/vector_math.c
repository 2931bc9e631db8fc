// Element-wise float maths of the engine's forward and backward passes, with AVX-512 F where the CPU has it, AVX2 +
// FMA where it has those, and a plain C twin (libm expf) elsewhere: the `_portable` functions, which tests compare
// with the fast ones.
//
// exp: x = n·ln2 + r with n = round(x·log2 e), |r| ≤ ln2/2 (ln2 split in two parts as in Cephes' expf, so r is
// exact to ~1 ulp), e^r by a degree-7 polynomial with Cephes' minimax coefficients, then 2^n applied by vscalefps
// (exact; it gives subnormals, 0 and +inf without bit tricks). Inputs are clamped to [-104, 89]. Measured max
// relative error against expf over [-104, 88.7] with normal results: 1.2e-7 (1 ulp); x ≥ 88.8 gives +inf
// (`VectorMathTests`).
#include "CKernels.h"

#include <math.h>

float bp_max_portable(const float *x, size_t n) {
  float m = x[0];
  for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

// e^(x[i] − shift) into out[i] when out is not NULL; returns their sum in double. The exp-sum entry points pass
// NULL: the same values summed in the same order, nothing written (a forward that needs only the NLL).
static double exp_shifted_portable(const float *x, size_t n, float shift, float *out) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    const float e = expf(x[i] - shift);
    if (out) out[i] = e;
    sum += e;
  }
  return sum;
}

double bp_exp_shifted_portable(float *x, size_t n, float shift) { return exp_shifted_portable(x, n, shift, x); }
double bp_exp_sum_portable(const float *x, size_t n, float shift) { return exp_shifted_portable(x, n, shift, NULL); }

void bp_swiglu_forward_portable(const float *g, const float *u, size_t n, float *h) {
  for (size_t i = 0; i < n; i++) h[i] = g[i] / (1 + expf(-g[i])) * u[i];
}

void bp_swiglu_backward_portable(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du) {
  for (size_t i = 0; i < n; i++) {
    const float s = 1 / (1 + expf(-g[i])), up = dh[i];
    du[i] = up * g[i] * s;
    dg[i] = up * u[i] * s * (1 + g[i] * (1 - s));
  }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define TARGET __attribute__((target("avx512f")))

// The exp's constants, one table for both vector widths: the clamp, log2 e, ln 2 in two parts (Cephes), and the
// polynomial's coefficients from the highest power down.
static const float exp_low = -104.0f, exp_high = 89.0f, exp_log2e = 1.44269504088896341f;
static const float exp_ln2_high = 0.693359375f, exp_ln2_low = -2.12194440e-4f;
static const float exp_poly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                  4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

TARGET static inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(exp_low)), _mm512_set1_ps(exp_high));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(exp_log2e)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_ln2_high), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_ln2_low), r);
  __m512 p = _mm512_set1_ps(exp_poly[0]);
  for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(exp_poly[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

static __mmask16 tail_mask(size_t left) { return left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1); }

TARGET static float max_avx512(const float *x, size_t n) {
  __m512 m = _mm512_set1_ps(x[0]);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
  }
  return _mm512_reduce_max_ps(m);
}

TARGET static double exp_shifted_avx512(const float *x, size_t n, float shift, float *out) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s)));
    if (out) _mm512_mask_storeu_ps(out + i, k, e);
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

TARGET static inline __m512 sigmoid512(__m512 g) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

TARGET static void swiglu_forward_avx512(const float *g, const float *u, size_t n, float *h) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 gi = _mm512_maskz_loadu_ps(k, g + i), ui = _mm512_maskz_loadu_ps(k, u + i);
    _mm512_mask_storeu_ps(h + i, k, _mm512_mul_ps(_mm512_mul_ps(gi, sigmoid512(gi)), ui));
  }
}

TARGET static void swiglu_backward_avx512(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 gi = _mm512_maskz_loadu_ps(k, g + i), ui = _mm512_maskz_loadu_ps(k, u + i);
    const __m512 up = _mm512_maskz_loadu_ps(k, dh + i), s = sigmoid512(gi);
    const __m512 dui = _mm512_mul_ps(_mm512_mul_ps(up, gi), s);
    const __m512 slope = _mm512_fmadd_ps(gi, _mm512_sub_ps(one, s), one);
    const __m512 dgi = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(up, ui), s), slope);
    _mm512_mask_storeu_ps(du + i, k, dui);
    _mm512_mask_storeu_ps(dg + i, k, dgi);
  }
}

// AVX2 + FMA twins of the functions above, for x86 CPUs without AVX-512 F (Zen 1–3, Haswell…Alder Lake). Same
// polynomial, same operation order; 2^n is applied as 2^a·2^b with a = ⌊n/2⌋, b = n − a, both normal exponents for
// n ∈ [−150, 128], so the product rounds once, as vscalefps does, and the results equal the AVX-512 ones. Tails
// (n mod 8) go through an 8-float buffer.
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(exp_low)), _mm256_set1_ps(exp_high));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(exp_log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(exp_ln2_high), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(exp_ln2_low), r);
  __m256 p = _mm256_set1_ps(exp_poly[0]);
  for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(exp_poly[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i ni = _mm256_cvtps_epi32(n), a = _mm256_srai_epi32(ni, 1), b = _mm256_sub_epi32(ni, a);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 pa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
  const __m256 pb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, pa), pb);
}

AVX2 static float max_avx2(const float *x, size_t n) {
  __m256 m = _mm256_set1_ps(x[0]);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  float lanes[8], best;
  _mm256_storeu_ps(lanes, m);
  best = lanes[0];
  for (int j = 1; j < 8; j++) best = lanes[j] > best ? lanes[j] : best;
  for (; i < n; i++) best = x[i] > best ? x[i] : best;
  return best;
}

AVX2 static inline __m256d sum_halves(__m256d acc, __m256 e) {
  acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
  return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

AVX2 static double exp_shifted_avx2(const float *x, size_t n, float shift, float *out) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256d acc = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    if (out) _mm256_storeu_ps(out + i, e);
    acc = sum_halves(acc, e);
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, acc);
  double sum = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
  if (i < n) {
    float tail[8] = {0};
    for (size_t j = i; j < n; j++) tail[j - i] = x[j];
    _mm256_storeu_ps(tail, exp256(_mm256_sub_ps(_mm256_loadu_ps(tail), s)));
    for (size_t j = i; j < n; j++) {
      if (out) out[j] = tail[j - i];
      sum += tail[j - i];
    }
  }
  return sum;
}

AVX2 static inline __m256 sigmoid256(__m256 g) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

AVX2 static inline __m256 swiglu256(__m256 g, __m256 u) { return _mm256_mul_ps(_mm256_mul_ps(g, sigmoid256(g)), u); }

AVX2 static void swiglu_forward_avx2(const float *g, const float *u, size_t n, float *h) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(h + i, swiglu256(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
  if (i < n) {
    float tg[8] = {0}, tu[8] = {0}, th[8];
    for (size_t j = i; j < n; j++) tg[j - i] = g[j], tu[j - i] = u[j];
    _mm256_storeu_ps(th, swiglu256(_mm256_loadu_ps(tg), _mm256_loadu_ps(tu)));
    for (size_t j = i; j < n; j++) h[j] = th[j - i];
  }
}

AVX2 static inline void swiglu_backward256(__m256 gi, __m256 ui, __m256 up, __m256 *dgi, __m256 *dui) {
  const __m256 one = _mm256_set1_ps(1.0f), s = sigmoid256(gi);
  *dui = _mm256_mul_ps(_mm256_mul_ps(up, gi), s);
  const __m256 slope = _mm256_fmadd_ps(gi, _mm256_sub_ps(one, s), one);
  *dgi = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(up, ui), s), slope);
}

AVX2 static void swiglu_backward_avx2(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du) {
  size_t i = 0;
  __m256 dgi, dui;
  for (; i + 8 <= n; i += 8) {
    swiglu_backward256(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i), _mm256_loadu_ps(dh + i), &dgi, &dui);
    _mm256_storeu_ps(du + i, dui);
    _mm256_storeu_ps(dg + i, dgi);
  }
  if (i < n) {
    float tg[8] = {0}, tu[8] = {0}, td[8] = {0}, og[8], ou[8];
    for (size_t j = i; j < n; j++) tg[j - i] = g[j], tu[j - i] = u[j], td[j - i] = dh[j];
    swiglu_backward256(_mm256_loadu_ps(tg), _mm256_loadu_ps(tu), _mm256_loadu_ps(td), &dgi, &dui);
    _mm256_storeu_ps(og, dgi);
    _mm256_storeu_ps(ou, dui);
    for (size_t j = i; j < n; j++) dg[j] = og[j - i], du[j] = ou[j - i];
  }
}

/// 2: AVX-512 F, 1: AVX2 + FMA, 0: neither (the portable twins), from the project's cpuid reader (which also checks
/// that the operating system saves the vector registers), read once.
static int level(void) {
  static int has = -1;
  if (has < 0) {
    const uint64_t f = bp_cpu_features();
    has = (f & BP_CPU_AVX512F) ? 2 : ((f & BP_CPU_AVX2) && (f & BP_CPU_FMA)) ? 1 : 0;
  }
  return has;
}

int bp_vector_math_has_avx2(void) { return level() >= 1; }
float bp_max_avx2(const float *x, size_t n) { return level() >= 1 ? max_avx2(x, n) : bp_max_portable(x, n); }
double bp_exp_shifted_avx2(float *x, size_t n, float shift) {
  return level() >= 1 ? exp_shifted_avx2(x, n, shift, x) : bp_exp_shifted_portable(x, n, shift);
}
double bp_exp_sum_avx2(const float *x, size_t n, float shift) {
  return level() >= 1 ? exp_shifted_avx2(x, n, shift, NULL) : bp_exp_sum_portable(x, n, shift);
}
void bp_swiglu_forward_avx2(const float *g, const float *u, size_t n, float *h) {
  if (level() >= 1) swiglu_forward_avx2(g, u, n, h); else bp_swiglu_forward_portable(g, u, n, h);
}
void bp_swiglu_backward_avx2(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du) {
  if (level() >= 1) swiglu_backward_avx2(g, u, dh, n, dg, du); else bp_swiglu_backward_portable(g, u, dh, n, dg, du);
}
#else
static int level(void) { return 0; }
int bp_vector_math_has_avx2(void) { return 0; }
float bp_max_avx2(const float *x, size_t n) { return bp_max_portable(x, n); }
double bp_exp_shifted_avx2(float *x, size_t n, float shift) { return bp_exp_shifted_portable(x, n, shift); }
double bp_exp_sum_avx2(const float *x, size_t n, float shift) { return bp_exp_sum_portable(x, n, shift); }
void bp_swiglu_forward_avx2(const float *g, const float *u, size_t n, float *h) { bp_swiglu_forward_portable(g, u, n, h); }
void bp_swiglu_backward_avx2(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du) {
  bp_swiglu_backward_portable(g, u, dh, n, dg, du);
}
#define max_avx512 bp_max_portable
#define exp_shifted_avx512 exp_shifted_portable
#define swiglu_forward_avx512 bp_swiglu_forward_portable
#define swiglu_backward_avx512 bp_swiglu_backward_portable
#endif

// The best version for this CPU: AVX-512, else the AVX2 entry points (which fall back to the portable twins).
float bp_max(const float *x, size_t n) { return level() == 2 ? max_avx512(x, n) : bp_max_avx2(x, n); }

double bp_exp_shifted(float *x, size_t n, float shift) {
  return level() == 2 ? exp_shifted_avx512(x, n, shift, x) : bp_exp_shifted_avx2(x, n, shift);
}

double bp_exp_sum(const float *x, size_t n, float shift) {
  return level() == 2 ? exp_shifted_avx512(x, n, shift, NULL) : bp_exp_sum_avx2(x, n, shift);
}

void bp_swiglu_forward(const float *g, const float *u, size_t n, float *h) {
  if (level() == 2) swiglu_forward_avx512(g, u, n, h); else bp_swiglu_forward_avx2(g, u, n, h);
}

void bp_swiglu_backward(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du) {
  if (level() == 2) swiglu_backward_avx512(g, u, dh, n, dg, du); else bp_swiglu_backward_avx2(g, u, dh, n, dg, du);
}
