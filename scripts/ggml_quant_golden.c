// Quantizes seeded pseudo-random rows with ggml itself (ggml_quantize_chunk, no importance matrix, i.e. the
// quantize_row_*_ref algorithms) and writes a BPQG fixture (format in scripts/quant_golden.py): per case the input
// values and ggml's bytes. Built and run by scripts/ggml_quant_golden.sh.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "ggml.h"

static uint64_t state = 0x2026112408ull;
static double next_uniform(void) {  // SplitMix64 → [0, 1)
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static void put_u32(FILE * f, uint32_t v) { fwrite(&v, 4, 1, f); }

int main(int argc, char ** argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s OUT.bin\n", argv[0]); return 2; }
    const enum ggml_type types[] = { GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
    const int n = 512;  // 2 super-blocks per case
    const int cases_per_type = 3;
    FILE * f = fopen(argv[1], "wb");
    if (!f) { perror(argv[1]); return 1; }
    fwrite("BPQG", 1, 4, f);
    put_u32(f, 1);
    put_u32(f, (uint32_t)(sizeof(types) / sizeof(types[0]) * cases_per_type));
    float * x = malloc(sizeof(float) * n);
    uint8_t * q = malloc(4 * n);
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        for (int c = 0; c < cases_per_type; c++) {
            for (int i = 0; i < n; i++) {
                double u = 2 * next_uniform() - 1;
                // case 0: uniform; case 1: Gaussian-like (sum of 4 uniforms); case 2: small values with outliers
                if (c == 1) u = (u + 2 * next_uniform() - 1 + 2 * next_uniform() - 1 + 2 * next_uniform() - 1) / 2;
                if (c == 2) u = next_uniform() < 0.01 ? 8 * u : 0.05 * u;
                x[i] = (float)(0.05 * u);
            }
            size_t size = ggml_quantize_chunk(types[t], x, q, 0, 1, n, NULL);
            put_u32(f, (uint32_t)types[t]);
            put_u32(f, (uint32_t)n);
            put_u32(f, (uint32_t)size);
            fwrite(x, sizeof(float), n, f);
            fwrite(q, 1, size, f);
        }
    }
    fclose(f);
    free(x);
    free(q);
    return 0;
}
