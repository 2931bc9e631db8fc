// The reference GEMM: the table's own GEMV per token over tiles of rows. It defines the answer of every GEMM
// (Y[t, ·] = GEMV(token t)); the portable table runs it as its GEMM, and the AVX-512 table runs it for the formats
// without a register-tiled kernel (int_gemm_avx512.c).

#include "gemm_internal.h"

/// One GEMV of `table` for `format`: `rows` rows at `w` against one token's codes and scales, into y.
static void gemv_once(const bp_int_gemv_kernels *table, const bp_gemm_format *f, const uint8_t *w, size_t rows,
                      const int8_t *codes, const float *scales, float *y) {
  switch (f->family) {
  case BP_GEMM_INTEGER: table->gemv(f->layout, w, rows, codes, scales, y); break;
  case BP_GEMM_LEGACY: table->legacy_gemv(f->legacy_kind, w, f->row_bytes, rows, f->blocks, codes, scales, y); break;
  case BP_GEMM_Q2_K: table->q2_k_gemv(w, f->row_bytes, rows, f->blocks, codes, scales, y); break;
  case BP_GEMM_Q3_K: table->q3_k_gemv(w, f->row_bytes, rows, f->blocks, codes, scales, y); break;
  case BP_GEMM_Q4_K: table->q4_k_gemv(w, f->row_bytes, rows, f->blocks, codes, scales, y); break;
  case BP_GEMM_Q5_K: table->q5_k_gemv(w, f->row_bytes, rows, f->blocks, codes, scales, y); break;
  case BP_GEMM_Q6_K: table->q6_k_gemv(w, f->row_bytes, rows, f->blocks, codes, scales, y); break;
  }
}

enum { tile_bytes = 16 << 10, max_tile_rows = 64 };

void bp_gemm_tiled(const bp_int_gemv_kernels *table, const bp_gemm_format *f, const uint8_t *weights, size_t rows,
                   const bp_gemm_activations *x, float *y, size_t y_stride, int accumulate) {
  size_t tile = f->row_bytes ? tile_bytes / f->row_bytes : max_tile_rows;
  tile = tile < 2 ? 2 : tile > max_tile_rows ? max_tile_rows : tile & ~(size_t)1;
  float sum[max_tile_rows];
  for (size_t r0 = 0; r0 < rows; r0 += tile) {
    const size_t n = rows - r0 < tile ? rows - r0 : tile;
    for (size_t t = 0; t < x->tokens; t++) {
      float *out = y + t * y_stride + r0;
      gemv_once(table, f, weights + r0 * f->row_bytes, n, x->codes + t * x->code_stride, x->scales + t * x->scale_stride,
                accumulate ? sum : out);
      if (accumulate) {
        for (size_t i = 0; i < n; i++) out[i] += sum[i];
      }
    }
  }
}

size_t bp_gemm_no_prepared_bytes(const bp_gemm_format *format, size_t tokens) {
  (void)format;
  (void)tokens;
  return 0;
}

void bp_gemm_no_prepare(const bp_gemm_format *format, const bp_gemm_activations *x, void *prepared) {
  (void)format;
  (void)x;
  (void)prepared;
}
