// Private to CKernels: the GEMM every table falls back to (int_gemm.c).

#ifndef BITPLAN_GEMM_INTERNAL_H
#define BITPLAN_GEMM_INTERNAL_H

#include "CKernels.h"

/// The GEMM as `table`'s GEMV over tiles of rows: for each tile (about 16 KiB of weights, at most 64 rows), the
/// GEMV of every token, so the tile is read from memory once and from L1 for the other tokens. Bit for bit the
/// per-token GEMV when that GEMV computes a row the same whichever rows it is called with (every table here).
void bp_gemm_tiled(const bp_int_gemv_kernels *table, const bp_gemm_format *format, const uint8_t *weights, size_t rows,
                   const bp_gemm_activations *x, float *y, size_t y_stride, int accumulate);

/// `gemm_prepared_bytes` and `gemm_prepare` of formats that need no preparation.
size_t bp_gemm_no_prepared_bytes(const bp_gemm_format *format, size_t tokens);
void bp_gemm_no_prepare(const bp_gemm_format *format, const bp_gemm_activations *x, void *prepared);

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
/// The AVX-512 VNNI table's GEMM entries (int_gemm_avx512.c): register-tiled for q4_0, q8_0 and q4_1, else
/// `bp_gemm_tiled` over that table's GEMV.
size_t bp_avx512_gemm_prepared_bytes(const bp_gemm_format *format, size_t tokens);
void bp_avx512_gemm_prepare(const bp_gemm_format *format, const bp_gemm_activations *x, void *prepared);
void bp_avx512_gemm(const bp_gemm_format *format, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
                    float *y, size_t y_stride, int accumulate);
#endif

#endif
