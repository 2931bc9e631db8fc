// Quantizes seeded pseudo-random rows with ggml itself, WITH an importance matrix (ggml_quantize_chunk(type, x, q,
// 0, nrows, n_per_row, imatrix), imatrix != NULL, i.e. ggml-quants.c's quantize_row_<type>_impl paths), and writes
// the BPQI fixture Tests/QuantizationTests/Fixtures/ggml_imatrix.bin. Built and run by
// scripts/ggml_quant_golden_imatrix.sh; read by QuantizationTests' GGMLImportanceGoldenTests.
//
// BPQI format, version 1, all integers u32 little-endian, floats IEEE binary32 little-endian:
//   "BPQI" | version | case_count
//   per case: ggml_type id | nrows | n_per_row | row_size (bytes of one quantized row) | distribution
//             | f32 values[nrows * n_per_row] (row-major) | f32 importance[n_per_row] (one per column, shared by
//             every row, as llama-quantize passes it) | u8 bytes[nrows * row_size] (ggml's output)
// distribution: 0 uniform, 1 Gaussian-like (sum of 4 uniforms), 2 small values with 1% outliers.
// Importance imitates activation mean squares: log-uniform over 3 decades, 1e-3 … 1. In the outlier cases 1 column
// in 8 has importance 0, and so do columns 64..<96 (a whole legacy block, q4_K sub-block, two 16-value sub-blocks).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "ggml.h"

static uint64_t state = 0x2026120501ull;
static double next_uniform(void) {  // SplitMix64 → [0, 1)
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static void put_u32(FILE * f, uint32_t v) {  // little-endian regardless of host
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    fwrite(b, 1, 4, f);
}

static void put_f32s(FILE * f, const float * v, size_t n) {
    for (size_t i = 0; i < n; i++) { uint32_t u; memcpy(&u, &v[i], 4); put_u32(f, u); }
}

struct spec { enum ggml_type type; int n_per_row; int nrows; int distribution; };

int main(int argc, char ** argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s OUT.bin\n", argv[0]); return 2; }
    const enum ggml_type legacy[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1 };
    const enum ggml_type kquants[] = { GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
    struct spec specs[32];
    int count = 0;
    // Legacy: 576 columns (18 blocks); the Gaussian case has 2 rows, so sigma2 (over the whole row) differs per row.
    for (int t = 0; t < 4; t++) {
        for (int c = 0; c < 3; c++) specs[count++] = (struct spec){ legacy[t], 576, c == 1 ? 2 : 1, c };
    }
    specs[count++] = (struct spec){ GGML_TYPE_Q8_0, 576, 2, 1 };  // ggml ignores the weights for q8_0
    // K-quants: 512 columns (2 super-blocks), one row.
    for (int t = 0; t < 5; t++) {
        for (int c = 0; c < 3; c++) specs[count++] = (struct spec){ kquants[t], 512, 1, c };
    }

    FILE * f = fopen(argv[1], "wb");
    if (!f) { perror(argv[1]); return 1; }
    fwrite("BPQI", 1, 4, f);
    put_u32(f, 1);
    put_u32(f, (uint32_t)count);
    for (int s = 0; s < count; s++) {
        const struct spec sp = specs[s];
        const int n = sp.n_per_row, rows = sp.nrows, c = sp.distribution;
        float * x = malloc(sizeof(float) * n * rows);
        float * imatrix = malloc(sizeof(float) * n);
        const size_t row_size = ggml_row_size(sp.type, n);
        uint8_t * q = malloc(row_size * rows);
        for (int i = 0; i < n * rows; i++) {
            double u = 2 * next_uniform() - 1;
            if (c == 1) u = (u + 2 * next_uniform() - 1 + 2 * next_uniform() - 1 + 2 * next_uniform() - 1) / 2;
            if (c == 2) u = next_uniform() < 0.01 ? 8 * u : 0.05 * u;
            x[i] = (float)(0.05 * u);
        }
        for (int j = 0; j < n; j++) {
            imatrix[j] = (float)(1e-3 * pow(10.0, 3 * next_uniform()));
            if (c == 2 && (next_uniform() < 0.125 || (j >= 64 && j < 96))) imatrix[j] = 0;
        }
        const size_t size = ggml_quantize_chunk(sp.type, x, q, 0, rows, n, imatrix);
        if (size != row_size * rows) { fprintf(stderr, "%s: size %zu != %zu\n", ggml_type_name(sp.type), size, row_size * rows); return 1; }
        put_u32(f, (uint32_t)sp.type);
        put_u32(f, (uint32_t)rows);
        put_u32(f, (uint32_t)n);
        put_u32(f, (uint32_t)row_size);
        put_u32(f, (uint32_t)c);
        put_f32s(f, x, (size_t)n * rows);
        put_f32s(f, imatrix, (size_t)n);
        fwrite(q, 1, size, f);
        free(x);
        free(imatrix);
        free(q);
    }
    fclose(f);
    printf("%d cases\n", count);
    return 0;
}
