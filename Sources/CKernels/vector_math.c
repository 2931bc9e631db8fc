// Element-wise float maths of the engine's forward and backward passes, with AVX-512 F where the CPU has it and a
// plain C twin (libm expf) elsewhere: the `_portable` functions, which tests compare with the fast ones.
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

double bp_exp_shifted_portable(float *x, size_t n, float shift) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    x[i] = expf(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

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

TARGET static inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
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

TARGET static double exp_shifted_avx512(float *x, size_t n, float shift) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s)));
    _mm512_mask_storeu_ps(x + i, k, e);
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

static int fast(void) {
  static int has = -1;
  if (has < 0) {
    __builtin_cpu_init();
    has = __builtin_cpu_supports("avx512f") ? 1 : 0;
  }
  return has;
}
#else
static int fast(void) { return 0; }
#define max_avx512 bp_max_portable
#define exp_shifted_avx512 bp_exp_shifted_portable
#define swiglu_forward_avx512 bp_swiglu_forward_portable
#define swiglu_backward_avx512 bp_swiglu_backward_portable
#endif

float bp_max(const float *x, size_t n) { return fast() ? max_avx512(x, n) : bp_max_portable(x, n); }

double bp_exp_shifted(float *x, size_t n, float shift) {
  return fast() ? exp_shifted_avx512(x, n, shift) : bp_exp_shifted_portable(x, n, shift);
}

void bp_swiglu_forward(const float *g, const float *u, size_t n, float *h) {
  if (fast()) swiglu_forward_avx512(g, u, n, h); else bp_swiglu_forward_portable(g, u, n, h);
}

void bp_swiglu_backward(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du) {
  if (fast()) swiglu_backward_avx512(g, u, dh, n, dg, du); else bp_swiglu_backward_portable(g, u, dh, n, dg, du);
}
