// Would pre-packed weights make the engine's GEMMs faster? A probe, not part of the build.
//
// The kernel beside it is a copy of branch wip-sgemm-avx2's Sources/CKernels/sgemm_avx2.c (not part of the package).
//
// Compares, on the engine's product shapes with weights that come from memory (cycling through `count` different
// weight matrices, more than the caches hold):
//   forward  Y[T, out] = X[T, in] · W[out, in]ᵀ (β = 0):
//            OpenBLAS cblas_sgemm; bp_sgemm_avx2 (packs W per call); the same micro-kernel on W packed beforehand,
//            on 1 thread and on 2 (columns split as the engine splits them);
//   weight gradient dW[out, in] = dYᵀ[out, T] · X[T, in] (β = 0): OpenBLAS (zeroes C in a pass of its own, then
//            adds) against bp_sgemm_avx2 (stores C once), and how many values differ in their bits.
// Medians of 7 repetitions, GFLOP/s.
//
//   clang -O2 -march=native -I scripts/sgemm_probe -o /tmp/probe scripts/sgemm_probe/probe.c -lopenblas -lpthread -lm
//   /tmp/probe
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>

#include "sgemm_avx2.c"

enum { REPS = 7 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *x, const void *y) { double a = *(const double *)x, b = *(const double *)y; return (a > b) - (a < b); }
static double median(double *v) { qsort(v, REPS, sizeof *v, cmp); return v[REPS / 2]; }

static float *random_floats(size_t n) {
  float *p = aligned_alloc(64, sizeof(float) * n + 64);
  for (size_t i = 0; i < n; i++) p[i] = rand() / (float)RAND_MAX - 0.5f;
  return p;
}

// W stored [n, k] packed as bp_sgemm_avx2 would pack it: per k block, panels of NR columns of op(B) = Wᵀ.
static float *prepack(const float *w, size_t n, size_t k, size_t *step) {
  const size_t blocks = (k + KC - 1) / KC;
  *step = (k + blocks - 1) / blocks;
  float *out = aligned_alloc(64, sizeof(float) * ((n + NR - 1) / NR) * NR * k + 64), *o = out;
  for (size_t pc = 0; pc < k; pc += *step) {
    const size_t kc = k - pc < *step ? k - pc : *step;
    for (size_t j = 0; j < n; j += NR, o += kc * NR) pack_b(1, w, k, pc, kc, j, n - j < NR ? n - j : NR, o);
  }
  return out;
}

// Columns [j0, j1) of C[m, n] = A[m, k] · Wᵀ from pre-packed W; j0 a multiple of NR.
static void gemm_prepacked(size_t m, size_t n, size_t k, const float *a, const float *pw, size_t step, float *c,
                           size_t j0, size_t j1) {
  buffers *bufs = thread_buffers();
  const size_t panels = (n + NR - 1) / NR;
  for (size_t pc = 0; pc < k; pc += step, pw += panels * (k - pc < step ? k - pc : step) * NR) {
    const size_t kc = k - pc < step ? k - pc : step;
    const float scale[2] = {1, pc == 0 ? 0 : 1};
    pack_a(0, a, k, 0, m, pc, kc, bufs->a);
    for (size_t jr = j0; jr < j1; jr += NR)
      for (size_t ir = 0; ir < m; ir += MR)
        kernel(kc, bufs->a + ir * kc, pw + (jr / NR) * kc * NR, c + ir * n + jr, n, m - ir < MR ? m - ir : MR,
               n - jr < NR ? n - jr : NR, scale);
  }
}

typedef struct {
  int mode, count;
  size_t m, n, k, j0, j1, step;
  const float *a;
  float **w, **pw, *c;
} part;

static void *run_part(void *p) {
  const part *q = p;
  for (int i = 0; i < q->count; i++) switch (q->mode) {
    case 0:
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q->m, q->j1 - q->j0, q->k, 1, q->a, q->k,
                  q->w[i] + q->j0 * q->k, q->k, 0, q->c + q->j0, q->n);
      break;
    case 1:
      bp_sgemm_avx2(0, 1, q->m, q->j1 - q->j0, q->k, 1, q->a, q->k, q->w[i] + q->j0 * q->k, q->k, 0, q->c + q->j0, q->n);
      break;
    default: gemm_prepacked(q->m, q->n, q->k, q->a, q->pw[i], q->step, q->c, q->j0, q->j1);
  }
  return NULL;
}

static void forward(size_t m, size_t n, size_t k, int count) {
  float *a = random_floats(m * k), *c = random_floats(m * n);
  float **w = malloc(count * sizeof *w), **pw = malloc(count * sizeof *pw);
  size_t step = 0;
  for (int i = 0; i < count; i++) w[i] = random_floats(n * k), pw[i] = prepack(w[i], n, k, &step);
  const double flop = 2.0 * m * n * k * count;
  static const char *names[] = {"OpenBLAS", "own, packs W per call", "own, W pre-packed"};
  for (int threads = 1; threads <= 2; threads++) {
    double rate[3][REPS];
    for (int r = 0; r < REPS; r++)
      for (int mode = 0; mode < 3; mode++) {
        const size_t half = threads == 1 ? n : (n / 2 / NR) * NR;
        part parts[2] = {{mode, count, m, n, k, 0, half, step, a, w, pw, c}, {mode, count, m, n, k, half, n, step, a, w, pw, c}};
        pthread_t th[2];
        const double t0 = now();
        for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, run_part, &parts[t]);
        for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
        rate[mode][r] = flop / (now() - t0) / 1e9;
      }
    printf("forward  T=%zu out=%zu in=%zu, %d weights, %d thread%s:", m, n, k, count, threads, threads > 1 ? "s" : "");
    for (int mode = 0; mode < 3; mode++) printf("  %s %.1f", names[mode], median(rate[mode]));
    printf("\n");
  }
}

static void weight_gradient(size_t m, size_t n, size_t k, int count) {
  float *dy = random_floats(k * m), *x = random_floats(k * n);
  float **c = malloc(count * sizeof *c), **c2 = malloc(count * sizeof *c2);
  for (int i = 0; i < count; i++) c[i] = random_floats(m * n), c2[i] = random_floats(m * n);
  const double flop = 2.0 * m * n * k * count;
  double rate[2][REPS];
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    for (int i = 0; i < count; i++) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1, dy, m, x, n, 0, c[i], n);
    double t1 = now();
    for (int i = 0; i < count; i++) bp_sgemm_avx2(1, 0, m, n, k, 1, dy, m, x, n, 0, c2[i], n);
    double t2 = now();
    rate[0][r] = flop / (t1 - t0) / 1e9, rate[1][r] = flop / (t2 - t1) / 1e9;
  }
  size_t differ = 0;
  for (size_t i = 0; i < m * n; i++) differ += memcmp(&c[0][i], &c2[0][i], sizeof(float)) != 0;
  printf("gradient out=%zu in=%zu T=%zu, %d weights, 1 thread:  OpenBLAS %.1f  own %.1f  (%zu of %zu values differ)\n",
         m, n, k, count, median(rate[0]), median(rate[1]), differ, m * n);
}

int main(void) {
  srand(1);
  openblas_set_num_threads(1);
  printf("OpenBLAS %s, kernels %s\n", openblas_get_config(), openblas_get_corename());
  forward(128, 1536, 576, 40);
  forward(128, 576, 1536, 40);
  forward(128, 49152, 576, 2);
  forward(512, 1536, 576, 40);
  weight_gradient(576, 1536, 128, 30);
  weight_gradient(1536, 576, 128, 30);
  return 0;
}
