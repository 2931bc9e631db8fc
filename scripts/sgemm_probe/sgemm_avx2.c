// Single-precision GEMM with an AVX2 + FMA micro-kernel, row-major, one thread per call (the caller splits C).
//
// C[m,n] = alpha·op(A)[m,k]·op(B)[k,n] + beta·C, A stored [m,k] (or [k,m] when ta), B [k,n] (or [n,k] when tb), with
// leading dimensions. The structure is BLIS's (Van Zee & van de Geijn 2015; Goto & van de Geijn 2008):
//
//   for jc in n by NC:  for pc in k by kc:  pack B[pc.., jc..] into NR-column panels      (b_buf, L3)
//     for ic in m by MC:  pack A[ic.., pc..] into MR-row panels                          (a_buf, L2)
//       for jr in nc by NR:  for ir in mc by MR:  micro-kernel: a 4×24 tile of C         (B panel in L1)
//
// The micro-kernel keeps the 4×24 tile in 12 ymm registers: per k, three loads of B, four broadcasts of A, twelve
// FMAs. The first k block applies beta (beta = 0 writes C without reading it, so NaNs in C do not propagate, as
// BLAS requires), later blocks add to C. k is cut into blocks of equal size ≤ KC. Packing transposes where the
// stored layout needs it (8×8 blocks for B stored [n,k], 4×4 for A stored [m,k]) and pads edge panels with zeros;
// edge tiles of C go through a small buffer.
//
// Why our own: OpenBLAS's sgemm zeroes C in a separate pass for beta = 0 and packs both operands with generic
// copy loops; on AVX2 CPUs this kernel is 5–15% faster per call on the engine's shapes (`bitplan bench kernels`).
// Which GEMM runs is decided in TensorCore (`SGEMMKernel`); the OpenBLAS call is its reference twin, and
// `BLAS.gemmReference` the plain one. The packing buffers are per thread, allocated on first use and freed when
// the thread ends.
#include "CKernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <pthread.h>

#define AVX2 __attribute__((target("avx2,fma")))
// The micro-kernel is compiled for Haswell (the first AVX2 + FMA CPU: the same instructions, and its scheduling
// model). Its loop needs all 16 ymm registers; with clang's generic tuning the register allocator rotated the
// accumulators through copies and spilled one, and the kernel ran at 40% of its speed (measured on a Zen 3:
// 40 against 95 GFLOP/s per core).
#define AVX2_KERNEL __attribute__((target("arch=haswell")))
enum { MR = 4, NR = 24, KC = 256, MC = 512, NC = 3072 };

typedef struct { float *a, *b; } buffers;
static pthread_key_t buffers_key;
static pthread_once_t buffers_once = PTHREAD_ONCE_INIT;

static void free_buffers(void *p) {
  buffers *bufs = p;
  free(bufs->a);
  free(bufs->b);
  free(bufs);
}

static void make_key(void) { pthread_key_create(&buffers_key, free_buffers); }

static buffers *thread_buffers(void) {
  pthread_once(&buffers_once, make_key);
  buffers *bufs = pthread_getspecific(buffers_key);
  if (bufs) return bufs;
  bufs = malloc(sizeof *bufs);
  if (!bufs) return NULL;
  bufs->a = aligned_alloc(64, sizeof(float) * MC * KC);
  bufs->b = aligned_alloc(64, sizeof(float) * NC * KC);
  if (!bufs->a || !bufs->b) {
    free_buffers(bufs);
    return NULL;
  }
  pthread_setspecific(buffers_key, bufs);
  return bufs;
}

// A[i0 .. i0+mc, p0 .. p0+kc] into panels of MR rows: panel q holds element (i0 + MR·q + r, p0 + p) at
// ap[q·kc·MR + p·MR + r]; rows past mc are 0.
AVX2 static void pack_a(int ta, const float *a, size_t lda, size_t i0, size_t mc, size_t p0, size_t kc, float *ap) {
  for (size_t i = 0; i < mc; i += MR, ap += kc * MR) {
    const size_t rows = mc - i < MR ? mc - i : MR;
    size_t p = 0;
    if (ta) {
      // stored [k, m]: the MR values of one k are adjacent
      if (rows == MR)
        for (; p < kc; p++) _mm_storeu_ps(ap + p * MR, _mm_loadu_ps(a + (p0 + p) * lda + i0 + i));
    } else if (rows == MR) {
      // stored [m, k]: 4×4 transposes
      const float *r0 = a + (i0 + i) * lda + p0, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
      for (; p + 4 <= kc; p += 4) {
        __m128 x0 = _mm_loadu_ps(r0 + p), x1 = _mm_loadu_ps(r1 + p), x2 = _mm_loadu_ps(r2 + p), x3 = _mm_loadu_ps(r3 + p);
        _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
        _mm_storeu_ps(ap + p * MR, x0);
        _mm_storeu_ps(ap + p * MR + 4, x1);
        _mm_storeu_ps(ap + p * MR + 8, x2);
        _mm_storeu_ps(ap + p * MR + 12, x3);
      }
    }
    for (; p < kc; p++)
      for (size_t r = 0; r < MR; r++)
        ap[p * MR + r] = r < rows ? (ta ? a[(p0 + p) * lda + i0 + i + r] : a[(i0 + i + r) * lda + p0 + p]) : 0;
  }
}

// 8×8 transpose of r[0..8) (rows in, columns out).
AVX2 static inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// B[p0 .. p0+kc, j0 .. j0+nc] into panels of NR columns: panel q holds element (p0 + p, j0 + NR·q + c) at
// bp[q·kc·NR + p·NR + c]; columns past nc are 0.
AVX2 static void pack_b(int tb, const float *b, size_t ldb, size_t p0, size_t kc, size_t j0, size_t nc, float *bp) {
  for (size_t j = 0; j < nc; j += NR, bp += kc * NR) {
    const size_t cols = nc - j < NR ? nc - j : NR;
    size_t p = 0;
    if (cols == NR && !tb) {
      for (; p < kc; p++) {
        const float *row = b + (p0 + p) * ldb + j0 + j;
        _mm_prefetch((const char *)(row + 4 * ldb), _MM_HINT_T0);
        _mm256_storeu_ps(bp + p * NR, _mm256_loadu_ps(row));
        _mm256_storeu_ps(bp + p * NR + 8, _mm256_loadu_ps(row + 8));
        _mm256_storeu_ps(bp + p * NR + 16, _mm256_loadu_ps(row + 16));
      }
    } else if (cols == NR) {
      // stored [n, k]: column j of op(B) is row j of storage; 8×8 transposes
      for (; p + 8 <= kc; p += 8)
        for (size_t g = 0; g < NR; g += 8) {
          __m256 r[8];
          for (int q = 0; q < 8; q++) {
            const float *row = b + (j0 + j + g + q) * ldb + p0 + p;
            // weights come from memory, 24 rows side by side: fetch each row 256 bytes ahead
            _mm_prefetch((const char *)(row + 64), _MM_HINT_T0);
            r[q] = _mm256_loadu_ps(row);
          }
          transpose8(r);
          for (int q = 0; q < 8; q++) _mm256_storeu_ps(bp + (p + q) * NR + g, r[q]);
        }
    }
    for (; p < kc; p++)
      for (size_t c = 0; c < NR; c++)
        bp[p * NR + c] = c < cols ? (tb ? b[(j0 + j + c) * ldb + p0 + p] : b[(p0 + p) * ldb + j0 + j + c]) : 0;
  }
}

// The MR×NR tile at c (rows × cols of it inside C) ← alpha·(ap · bp) + beta·tile, over kc steps, with
// (alpha, beta) = scale[0], scale[1]: read from memory after the loop, so that the 12 accumulators, 3 B vectors
// and the broadcast A value have all 16 ymm registers (float arguments would pin two and spill an accumulator).
AVX2_KERNEL static void kernel(size_t kc, const float *ap, const float *bp, float *c, size_t ldc, size_t rows, size_t cols,
                        const float *scale) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  for (size_t p = 0; p < kc; p++, ap += MR, bp += NR) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8), b2 = _mm256_loadu_ps(bp + 16);
    __m256 a = _mm256_broadcast_ss(ap);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    c02 = _mm256_fmadd_ps(a, b2, c02);
    a = _mm256_broadcast_ss(ap + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    c12 = _mm256_fmadd_ps(a, b2, c12);
    a = _mm256_broadcast_ss(ap + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    c22 = _mm256_fmadd_ps(a, b2, c22);
    a = _mm256_broadcast_ss(ap + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    c32 = _mm256_fmadd_ps(a, b2, c32);
  }
  const __m256 acc[MR][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
  const float alpha = scale[0], beta = scale[1];
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (rows == MR && cols == NR) {
    for (size_t r = 0; r < MR; r++)
      for (size_t q = 0; q < 3; q++) {
        float *cp = c + r * ldc + 8 * q;
        const __m256 v = _mm256_mul_ps(va, acc[r][q]);
        _mm256_storeu_ps(cp, beta == 0 ? v : beta == 1 ? _mm256_add_ps(v, _mm256_loadu_ps(cp))
                                                        : _mm256_fmadd_ps(vb, _mm256_loadu_ps(cp), v));
      }
    return;
  }
  float tile[MR][NR];
  for (size_t r = 0; r < MR; r++)
    for (size_t q = 0; q < 3; q++) _mm256_storeu_ps(&tile[r][8 * q], _mm256_mul_ps(va, acc[r][q]));
  for (size_t r = 0; r < rows; r++)
    for (size_t j = 0; j < cols; j++) {
      float *cp = c + r * ldc + j;
      *cp = beta == 0 ? tile[r][j] : beta == 1 ? tile[r][j] + *cp : __builtin_fmaf(beta, *cp, tile[r][j]);
    }
}

int bp_sgemm_avx2(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                  const float *b, size_t ldb, float beta, float *c, size_t ldc) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return -1;
  if (m == 0 || n == 0) return 0;
  if (k == 0 || alpha == 0) {
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
    return 0;
  }
  buffers *bufs = thread_buffers();
  if (!bufs) return -1;
  const size_t blocks = (k + KC - 1) / KC, step = (k + blocks - 1) / blocks;
  if (m <= MC) {
    // all of A's rows fit one packed block (in L2): pack A once per k block, then each NR-column panel of B into a
    // buffer that stays in L1 while the kernel sweeps the rows, so B goes from memory to L1 once
    for (size_t pc = 0; pc < k; pc += step) {
      const size_t kc = k - pc < step ? k - pc : step;
      const float scale[2] = {alpha, pc == 0 ? beta : 1};
      pack_a(ta, a, lda, 0, m, pc, kc, bufs->a);
      for (size_t jr = 0; jr < n; jr += NR) {
        const size_t cols = n - jr < NR ? n - jr : NR;
        pack_b(tb, b, ldb, pc, kc, jr, cols, bufs->b);
        for (size_t ir = 0; ir < m; ir += MR)
          kernel(kc, bufs->a + ir * kc, bufs->b, c + ir * ldc + jr, ldc, m - ir < MR ? m - ir : MR, cols, scale);
      }
    }
    return 0;
  }
  for (size_t jc = 0; jc < n; jc += NC) {
    const size_t nc = n - jc < NC ? n - jc : NC;
    for (size_t pc = 0; pc < k; pc += step) {
      const size_t kc = k - pc < step ? k - pc : step;
      const float scale[2] = {alpha, pc == 0 ? beta : 1};
      pack_b(tb, b, ldb, pc, kc, jc, nc, bufs->b);
      for (size_t ic = 0; ic < m; ic += MC) {
        const size_t mc = m - ic < MC ? m - ic : MC;
        pack_a(ta, a, lda, ic, mc, pc, kc, bufs->a);
        for (size_t jr = 0; jr < nc; jr += NR)
          for (size_t ir = 0; ir < mc; ir += MR)
            kernel(kc, bufs->a + ir * kc, bufs->b + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc,
                   mc - ir < MR ? mc - ir : MR, nc - jr < NR ? nc - jr : NR, scale);
      }
    }
  }
  return 0;
}
#else
int bp_sgemm_avx2(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                  const float *b, size_t ldb, float beta, float *c, size_t ldc) {
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta,
      (void)c, (void)ldc;
  return -1;
}
#endif
