// Attention's products at T tokens as CausalAttention runs them (SmolLM2: 9 query heads, 3 kv heads, head dimension
// 64, 64-row blocks, 10 layers' worth), one thread: OpenBLAS against the packed kernel's 8 × 48 (variant 2) and
// 6 × 64 (variant 4) instances. Forward: S = q_h kᵀ (m 64, n = end of block, k 64) and O = P v (m 64, n 64, k = end
// of block); backward's second pass: dv_g (+)= Pᵀ dO (m 64 keys, n 64, k = rows below the block).
// Not part of the build. From the repository root:
//   clang -O2 -march=native -w -I Sources/CKernels/include -I Sources/CKernels scripts/sgemm_probe/attention.c \
//     Sources/CKernels/sgemm_packed.c Sources/CKernels/cpu_features.c -o /tmp/attention -lopenblas -lm -lpthread
//   /tmp/attention 512; /tmp/attention 128
#include "../../Sources/CKernels/include/CKernels.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/2147483648.0f-0.5f;return p;}
enum { H = 9, G = 3, D = 64, B = 64, L = 10 };
static int T;
static float *q, *k, *v, *p, *o, *dO, *dv;
// 0: OpenBLAS; else the packed kernel's variant
static void forward(int variant, double *qk, double *pv) {
  for (int l = 0; l < L; l++)
    for (int h = 0; h < H; h++)
      for (int b = 0; b < T / B; b++) {
        const int g = h / 3, r0 = b * B, r1 = r0 + B;
        float *ph = p + (size_t)h * T * T;
        double s0 = now();
        if (variant == 0)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, r1, D, 1, q + h * D + r0 * H * D, H * D, k + g * D, G * D, 0, ph + r0 * T, T);
        else
          bp_packed_sgemm_rows(variant, B, r1, D, q + h * D + r0 * H * D, H * D, k + g * D, G * D, 0, ph + r0 * T, T, 0, r1);
        double s1 = now();
        if (variant == 0)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, D, r1, 1, ph + r0 * T, T, v + g * D, G * D, 0, o + h * D + r0 * H * D, H * D);
        else
          bp_sgemm_nn(variant, B, D, r1, ph + r0 * T, T, v + g * D, G * D, 0, o + h * D + r0 * H * D, H * D, 0, D);
        *qk += s1 - s0, *pv += now() - s1;
      }
}
static void backward(int variant, double *tn) {
  for (int l = 0; l < L; l++)
    for (int h = 0; h < H; h++)
      for (int b = 0; b < T / B; b++) {
        const int g = h / 3, c0 = b * B, rows = T - c0;
        const float *a = p + (size_t)h * T * T + (size_t)c0 * T + c0;
        double s0 = now();
        if (variant == 0)
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, B, D, rows, 1, a, T, dO + h * D + c0 * H * D, H * D, h % 3 ? 1 : 0, dv + g * D + c0 * G * D, G * D);
        else
          bp_sgemm_tn(variant, B, D, rows, a, T, dO + h * D + c0 * H * D, H * D, h % 3 ? 1 : 0, dv + g * D + c0 * G * D, G * D, 0, D);
        *tn += now() - s0;
      }
}
int main(int argc, char **argv) {
  openblas_set_num_threads(1);
  T = argc > 1 ? atoi(argv[1]) : 512;
  q = rnd(T * H * D), k = rnd(T * G * D), v = rnd(T * G * D), p = rnd((size_t)H * T * T), o = rnd(T * H * D);
  dO = rnd(T * H * D), dv = rnd(T * G * D);
  double half = 0, back = 0;  // flops of one forward product kind, and of the backward's
  for (int b = 0; b < T / B; b++) half += 2.0 * B * (b + 1) * B * D * H * L, back += 2.0 * B * (T - b * B) * D * H * L;
  const int variants[3] = {0, 2, 4};
  const char *names[3] = {"OpenBLAS", "8x48", "6x64"};
  for (int rep = 0; rep < 4; rep++) {
    printf("T=%d:", T);
    for (int i = 0; i < 3; i++) {
      if (variants[i] && !bp_packed_sgemm_runnable(variants[i])) continue;
      double qk = 0, pv = 0, tn = 0;
      forward(variants[i], &qk, &pv);
      backward(variants[i], &tn);
      printf("  %s q·kT %.1f ms (%.0f GF/s) P·v %.1f (%.0f) PT·dO %.1f (%.0f)", names[i], qk * 1e3, half / qk / 1e9,
             pv * 1e3, half / pv / 1e9, tn * 1e3, back / tn / 1e9);
    }
    printf("\n");
  }
}
