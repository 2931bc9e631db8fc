// CKernels: the int4 / int8 GEMV against int8 activations, in C with x86 intrinsics, the CPU feature bits
// (`bp_cpu_features`, cpu_features.c) that TensorCore uses to check which BLAS kernels are active, the float GEMM
// on packed weights of the engine's forward and its gradients (sgemm_packed.c), the engine's worker threads
// (thread_pool.c), the vector maths, SHA-256 blocks and the temporaries' signal handler.
//
// Swift 6.3 does not form vpdpbusd (AVX-512 VNNI) or vpmaddubsw from plain loops (IntDot+NibblePlanes.swift), so
// the integer GEMV of BitPlan's own `intN[-gG][-asym]` formats (N = 2 … 8) and of ggml's q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K,
// q4_K, q5_K and q6_K lives
// here. Each instruction set is one
// table of functions; `bp_int_gemv_best()` picks the table once, on the first call, from
// `__builtin_cpu_supports` (AVX-512 VNNI, else AVX2, int_gemv_avx2.c), and `bp_int_gemv_portable()` is the plain C
// fallback (also what non-x86 builds get).
// Functions carry their own `__attribute__((target(...)))`, so the package needs no compiler flags.
//
// Weight layout (IntegerCodec, byte-identical to what Quantization writes): a row is `groups` groups back to back;
// a group is [scale f16][zero u8, asymmetric only][chunks × 4·bits bytes of codes]. int8: one unsigned code u per
// byte. int4: a 16-byte chunk holds 32 codes, byte j has value j in its low nibble and value j + 16 in its high
// nibble (ggml's q4_0 order). bits 2, 3, 5, 6, 7: a chunk of 4·bits bytes is a little-endian bit stream, code j
// in bits [bits·j, bits·j + bits). The value is x̂ = s·(u − z), z = 2^(bits−1) when symmetric.
//
// ggml's q4_0 block ([d f16][16 bytes]) is exactly a symmetric int4 group of 32, and its q8_0 block
// ([d f16][32 signed bytes q]) a symmetric int8 group of 32 whose codes are stored signed: with `signed_codes` the
// kernels read u = q + 128 (the byte with its top bit flipped) against z = 128, the same Σ q·a.
//
// Activations: int8 codes a, zero-padded to whole chunks; group g reads codes[32·chunks·g ..< 32·chunks·(g + 1)].
// Either one scale d for the whole vector (Q8Activations with one block; `group_scales` 0), or, with
// `group_scales` 1, one scale d_g per weight group (Q8Activations in blocks of the group length: q4_0 and q8_0
// against ggml's q8_0 activations).
//
// Result: y[r] = d · Σ_g s_g · Σ_{i in g} (u_i − z_g)·a_i, or Σ_g (s_g·d_g) · Σ_{i in g} (u_i − z_g)·a_i. The inner
// sums are exact integers in every table; tables differ only in how the Float terms are added.

#ifndef BITPLAN_CKERNELS_H
#define BITPLAN_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Shape of one packed matrix in the IntegerCodec layout.
typedef struct bp_int_layout {
  /// Bytes of one stored row (groups · group bytes).
  size_t row_bytes;
  /// Groups per row (1 for per-channel).
  size_t groups;
  /// 32-value chunks per group, ⌈group length / 32⌉.
  size_t chunks;
  /// 2 … 8.
  int bits;
  /// 1: no zero-point byte, z = 2^(bits−1); 0: a u8 zero point follows the scale.
  int symmetric;
  /// 1: int8 codes stored as signed q (ggml's q8_0), read as u = q + 128; symmetric int8 only. 0: unsigned u.
  int signed_codes;
  /// 1: the activations carry one scale per weight group (`scales[g]`); 0: one scale for the vector (`scales[0]`).
  int group_scales;
} bp_int_layout;

/// Which GEMV of a table (`bp_int_gemv_kernels`) a GEMM repeats per token, and the arguments it gets.
typedef enum bp_gemm_family {
  /// `gemv` with `layout` (int2 … int8, q4_0, q8_0).
  BP_GEMM_INTEGER = 0,
  /// `legacy_gemv` with `legacy_kind` (q5_0 0, q4_1 1, q5_1 2) and `blocks` = columns / 32.
  BP_GEMM_LEGACY = 1,
  /// `q2_k_gemv` … `q6_k_gemv` with `blocks` = columns / 256 super-blocks.
  BP_GEMM_Q2_K = 2, BP_GEMM_Q3_K = 3, BP_GEMM_Q4_K = 4, BP_GEMM_Q5_K = 5, BP_GEMM_Q6_K = 6,
} bp_gemm_family;

/// The packed weight format of a GEMM: the GEMV it must match bit for bit, with that GEMV's arguments.
typedef struct bp_gemm_format {
  bp_gemm_family family;
  /// BP_GEMM_INTEGER only.
  bp_int_layout layout;
  /// BP_GEMM_LEGACY only.
  int legacy_kind;
  /// Bytes of one stored row.
  size_t row_bytes;
  /// BP_GEMM_LEGACY: 32-value blocks per row; K-quants: 256-value super-blocks per row; else unused.
  size_t blocks;
} bp_gemm_format;

/// T tokens of int8 activations, each laid out as one GEMV's `codes` and `scales`.
typedef struct bp_gemm_activations {
  /// Token t's codes at codes + t·code_stride (zero-padded as the GEMV wants them).
  const int8_t *codes;
  size_t code_stride;
  /// Token t's scales at scales + t·scale_stride.
  const float *scales;
  size_t scale_stride;
  /// T.
  size_t tokens;
  /// What `gemm_prepare` wrote (64-byte aligned, `gemm_prepared_bytes` long), or NULL when that is 0.
  const void *prepared;
} bp_gemm_activations;

/// One instruction set's integer GEMV.
typedef struct bp_int_gemv_kernels {
  /// "avx512-vnni", "avx2" or "portable".
  const char *name;
  /// y[r] for rows r in 0 ..< rows, the first row at `weights`; `codes` as above, `scales` the activation scale d
  /// (one Float) or, with `group_scales`, the `groups` scales d_g. Any rearranging of the activations happens
  /// inside, once per call, in a stack buffer when it is at most 32 KiB (avx512-vnni: int4 1 byte per value plus
  /// 64 per group; int8 none), else on the heap.
  void (*gemv)(bp_int_layout layout, const uint8_t *weights, size_t rows, const int8_t *codes, const float *scales,
               float *y);
  /// ggml's q4_K against activations in blocks of 32: y[r] for rows of `super_blocks` 144-byte super-blocks,
  /// `row_bytes` apart. A super-block is [d f16][dmin f16][12 bytes: eight 6-bit scales sc_j and mins m_j][128
  /// bytes qs]; value 64c + l (c < 4, l < 32) is the low nibble of qs[32c + l] and value 64c + 32 + l its high
  /// nibble; sub-block j (32 values) is x̂ = d·sc_j·q − dmin·m_j, so against activation block b = 8s + j (codes a,
  /// scale d_b): y = Σ_s (d·Σ_j d_b·sc_j·Σ q·a − dmin·Σ_j d_b·m_j·Σ a).
  void (*q4_k_gemv)(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks, const int8_t *codes,
                    const float *scales, float *y);
  /// ggml's q6_K against activations in blocks of 32, as `q4_k_gemv` with 210-byte super-blocks: [ql 128][qh 64]
  /// [16 int8 scales][d f16]; in half h (128 values), value 128h + 32g + l (g < 4, l < 32) has its low four bits in
  /// ql[64h + 32·(g mod 2) + l] (low nibble for g < 2, high for g ≥ 2) and its top two in bits 2g, 2g + 1 of
  /// qh[32h + l]; it is x̂ = d·sc_k·(q − 32) with k = 8h + 2g + l/16 (sub-blocks of 16).
  void (*q6_k_gemv)(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks, const int8_t *codes,
                    const float *scales, float *y);
  /// ggml's q5_K, as `q4_k_gemv` with 176-byte super-blocks [d][dmin][12 bytes scales and mins][qh 32][qs 128]: q
  /// gains 16 from bit 2c + t of qh[l] for value 64c + 32t + l.
  void (*q5_k_gemv)(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks, const int8_t *codes,
                    const float *scales, float *y);
  /// ggml's q4_1 (`kind` 1: [d f16][m f16][qs 16], 20 bytes, x̂ = d·q + m), q5_0 (0: [d][qh u32][qs 16], 22 bytes,
  /// x̂ = d·(q − 16)) or q5_1 (2: [d][m][qh u32][qs 16], 24 bytes, x̂ = d·q + m) against activations in blocks of
  /// 32: rows of `blocks` blocks, `row_bytes` apart. Value j < 16 of a block is the low nibble of qs[j], value 16 + j
  /// its high nibble; q5 adds 16·bit j of qh for value j.
  void (*legacy_gemv)(int kind, const uint8_t *weights, size_t row_bytes, size_t rows, size_t blocks,
                      const int8_t *codes, const float *scales, float *y);
  /// ggml's q2_K, as `q4_k_gemv` with 84-byte super-blocks [16 bytes: scale sc_k (low nibble) and min m_k (high)
  /// per 16 values][qs 64][d f16][dmin f16]: value 128h + 32g + l is bits 2g, 2g + 1 of qs[32h + l], in sub-block
  /// k = (128h + 32g + l)/16, x̂ = d·sc_k·q − dmin·m_k.
  void (*q2_k_gemv)(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks, const int8_t *codes,
                    const float *scales, float *y);
  /// ggml's q3_K, as `q4_k_gemv` with 110-byte super-blocks [hmask 32][qs 64][12 bytes: sixteen 6-bit scales][d
  /// f16]: value 128h + 32g + l is bits 2g, 2g + 1 of qs[32h + l], minus 4 unless bit 4h + g of hmask[l] is set, in
  /// sub-block k = (128h + 32g + l)/16 with scale sc_k − 32 (low 4 bits: byte k, or the high nibble of byte k − 8
  /// for k ≥ 8; high 2 bits: bits 2·(k/4) of byte 8 + k mod 4); x̂ = d·(sc_k − 32)·q.
  void (*q3_k_gemv)(const uint8_t *weights, size_t row_bytes, size_t rows, size_t super_blocks, const int8_t *codes,
                    const float *scales, float *y);
  /// Bytes `gemm_prepare` writes for `tokens` tokens of `format` (0: the format needs no preparation).
  size_t (*gemm_prepared_bytes)(const bp_gemm_format *format, size_t tokens);
  /// Rearranges the activations once for every row (`x->prepared` is ignored; `prepared` is 64-byte aligned), so
  /// threads that split the rows of one GEMM share it.
  void (*gemm_prepare)(const bp_gemm_format *format, const bp_gemm_activations *x, void *prepared);
  /// The int8-activation GEMM: Y[t, r] = (Y[t, r] +) this table's GEMV of row r against token t, for r < rows
  /// (first row at `weights`) and t < x->tokens, Y[t, r] at y[t·y_stride + r]. Bit for bit the GEMV of every
  /// token (the same Int32 block sums, the same Float operations per output), then one Float add when
  /// `accumulate`; weights are read once per tile of rows for several tokens.
  void (*gemm)(const bp_gemm_format *format, const uint8_t *weights, size_t rows, const bp_gemm_activations *x,
               float *y, size_t y_stride, int accumulate);
} bp_int_gemv_kernels;

/// The fastest table this CPU runs (AVX-512 F/BW/VL/VBMI + VNNI + GFNI + F16C + FMA, else AVX2 + FMA + F16C, else
/// portable), chosen once.
const bp_int_gemv_kernels *bp_int_gemv_best(void);

/// The AVX2 table (int_gemv_avx2.c) when this CPU has AVX2, FMA and F16C, else NULL: what `bp_int_gemv_best` picks
/// on CPUs without AVX-512 VNNI, reachable on the others so tests can compare it with the portable table.
const bp_int_gemv_kernels *bp_int_gemv_avx2(void);

/// The plain C table: one group at a time, Int64 group sums, Float accumulation in row order.
const bp_int_gemv_kernels *bp_int_gemv_portable(void);

/// SHA-256 compression of `blocks` 64-byte blocks at `data` into `state` (a..h, host order) with the x86 SHA
/// extensions (sha256_ni.c). Returns 1 when done, 0 when the CPU lacks them (the state is then untouched).
int bp_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

/// Instruction-set features of this CPU that the OS also enables (cpuid + xgetbv), one bit each; 0 off x86-64.
/// TensorCore's `CPUFeatures` mirrors these bits.
enum {
  BP_CPU_X86_64 = 1 << 0, BP_CPU_SSE2 = 1 << 1, BP_CPU_SSE3 = 1 << 2, BP_CPU_SSSE3 = 1 << 3, BP_CPU_SSE41 = 1 << 4,
  BP_CPU_SSE42 = 1 << 5, BP_CPU_AVX = 1 << 6, BP_CPU_FMA = 1 << 7, BP_CPU_F16C = 1 << 8, BP_CPU_AVX2 = 1 << 9,
  BP_CPU_AVX512F = 1 << 10, BP_CPU_AVX512DQ = 1 << 11, BP_CPU_AVX512CD = 1 << 12, BP_CPU_AVX512BW = 1 << 13,
  BP_CPU_AVX512VL = 1 << 14, BP_CPU_AVX512VBMI = 1 << 15, BP_CPU_AVX512VNNI = 1 << 16, BP_CPU_AVX512BF16 = 1 << 17,
  BP_CPU_AVX512FP16 = 1 << 18, BP_CPU_AMX_TILE = 1 << 19, BP_CPU_SHA = 1 << 20,
};
uint64_t bp_cpu_features(void);

/// GEMM against weights packed once (sgemm_packed.c): C[m, j0..<j1] (+)= A[m, k] · W[j0..<j1, k]ᵀ, W [n, k] a linear
/// layer's weight. Variants by instruction set; every function returns -1 (and does nothing) for a variant this CPU
/// cannot run, or arguments out of range.
enum {
  BP_PACKED_NONE = 0,
  BP_PACKED_AVX2 = 1,
  BP_PACKED_AVX512 = 2,
  BP_PACKED_WIDE_ON_AVX2 = 3,
  /// AVX-512 with a 6 × 64 tile: attention's products, whose widths are the head dimension (64) and multiples of
  /// the 64-row block, which a 48-column panel covers in 96 (never `bp_packed_sgemm_variant`'s answer).
  BP_PACKED_AVX512_N64 = 4,
  /// BP_PACKED_AVX512_N64's text compiled for AVX2 (tests only).
  BP_PACKED_N64_ON_AVX2 = 5
};
/// Rows of A packed at a time (MC): a product of more rows sweeps W once per such block.
enum { BP_PACKED_MC = 256 };
/// The longest k block (KC) of every variant: a product's k is cut into equal blocks of at most this many steps.
enum { BP_PACKED_KC = 256 };
/// Columns of B packed at a time by bp_sgemm_tn (NC, a multiple of every panel width): its panels of one k block
/// (NC × KC floats, 768 KiB) are packed once and reused by every block of MC rows.
enum { BP_GEMM_NC = 768 };
/// The variant this CPU runs best (AVX-512 F/CD/BW/DQ/VL, else AVX2 + FMA, else none: use OpenBLAS).
int bp_packed_sgemm_variant(void);
/// 1 when this CPU can run `variant` (BP_PACKED_NONE never), else 0.
int bp_packed_sgemm_runnable(int variant);
/// Columns per panel (NR): 24 (AVX2), 48 (AVX-512 and its text on AVX2) or 64 (the 6 × 64 instances); 0 for none.
int bp_packed_sgemm_panel(int variant);
/// Floats of W [n, k] packed for `variant` (⌈n / NR⌉ · NR · k).
size_t bp_packed_sgemm_size(int variant, size_t n, size_t k);
/// Packs panels [panel0, panel1) of W [n, k] (row stride ldw) into `out` (bp_packed_sgemm_size floats, 64-byte
/// aligned); panels are independent, so threads may pack disjoint ranges.
int bp_packed_sgemm_pack(int variant, const float *w, size_t ldw, size_t n, size_t k, float *out, size_t panel0,
                         size_t panel1);
/// C[m, j0..<j1] ← A · Wᵀ (accumulate 0) or += (1); A [m, k] row stride lda; C row stride ldc; j0 a multiple of
/// the panel width, j1 ≤ n. One thread.
int bp_packed_sgemm(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed,
                    int accumulate, float *c, size_t ldc, size_t j0, size_t j1);
/// bp_packed_sgemm on W [n, k] as stored (row stride ldw), each panel packed into a per-thread buffer just before
/// its sweep: no copy of W's size (streamed weights, tables). The same bits as packing W first.
int bp_packed_sgemm_rows(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *w,
                         size_t ldw, int accumulate, float *c, size_t ldc, size_t j0, size_t j1);
/// The plain twin: W as stored, k cut into equal blocks of at most kc_max (BP_PACKED_KC for every variant), one fmaf chain
/// per block and element, blocks added to C in order. Equals bp_packed_sgemm bit for bit.
void bp_packed_sgemm_reference(size_t m, size_t n, size_t k, size_t kc_max, const float *a, size_t lda,
                               const float *w, size_t ldw, int accumulate, float *c, size_t ldc);
/// The `flags` of bp_sgemm_tn and bp_sgemm_nn: BP_GEMM_ACCUMULATE adds to C (else C is overwritten);
/// BP_GEMM_STREAM, for a C that is written once and not read soon (a fresh gradient array), writes C with
/// non-temporal stores, which do not first read each line of C into cache, where k is one block (≤ BP_PACKED_KC), C
/// is overwritten and the variant's vector is a cache line (AVX-512 and its texts for AVX2; the AVX2 variant ignores
/// it); it changes no value.
enum { BP_GEMM_ACCUMULATE = 1, BP_GEMM_STREAM = 2 };
/// The same kernel for a weight gradient: C[m, j0..<j1] ← Aᵀ · B, or += with BP_GEMM_ACCUMULATE in `flags`, A [k, m]
/// row stride lda (dY), B [k, n] row stride ldb (X), for dW = dYᵀ · X. It writes C once per k block, without
/// OpenBLAS's β pass over C or its copies of A and B; each k block of B is packed once per call (NC columns at a time)
/// into a per-thread buffer. j0 a multiple of the panel width, j1 ≤ n. One thread.
int bp_sgemm_tn(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                int flags, float *c, size_t ldc, size_t j0, size_t j1);
/// bp_sgemm_tn's plain twin (bp_packed_sgemm_reference's sums on Aᵀ and B): equal to it bit for bit.
void bp_sgemm_tn_reference(size_t m, size_t n, size_t k, size_t kc_max, const float *a, size_t lda, const float *b,
                           size_t ldb, int accumulate, float *c, size_t ldc);
/// The same with A stored [m, k] (row stride lda): C[m, j0..<j1] ← A · B, or += with BP_GEMM_ACCUMULATE in `flags`,
/// for an input gradient dX = dY · W with W [out, in] as it lies. One thread.
int bp_sgemm_nn(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                int flags, float *c, size_t ldc, size_t j0, size_t j1);
/// bp_sgemm_nn's plain twin: equal to it bit for bit.
void bp_sgemm_nn_reference(size_t m, size_t n, size_t k, size_t kc_max, const float *a, size_t lda, const float *b,
                           size_t ldb, int accumulate, float *c, size_t ldc);

/// A task of a bp_pool_run job: `task` in [0, tasks).
typedef void (*bp_pool_task)(void *ctx, size_t task);
/// Runs fn(ctx, 0 ..< tasks) on the calling thread and on up to workers − 1 pool threads (thread_pool.c; created on
/// first use, kept for the process), each task once, tasks claimed dynamically; returns when all have returned.
/// Idle pool threads spin about a millisecond for the next job, then sleep. Returns -1, running nothing, when
/// workers < 2, no thread could be started, or another thread's job is running (the caller then splits the work
/// itself); else 0. Not for calls from inside a task.
int bp_pool_run(size_t workers, size_t tasks, bp_pool_task fn, void *ctx);

/// Element-wise float maths (vector_math.c): AVX-512 F where available, else AVX2 + FMA, else libm. n ≥ 1 for bp_max.
/// Largest element of x[0..<n].
float bp_max(const float *x, size_t n);
/// x[i] ← e^(x[i] − shift) in place; returns Σ x[i] (new values) accumulated in double.
double bp_exp_shifted(float *x, size_t n, float shift);
/// Σ e^(x[i] − shift) in double, x unchanged: bp_exp_shifted's return value bit for bit, nothing written.
double bp_exp_sum(const float *x, size_t n, float shift);
/// h = silu(g) ⊙ u.
void bp_swiglu_forward(const float *g, const float *u, size_t n, float *h);
/// du = dh ⊙ silu(g), dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))); dg may alias dh.
void bp_swiglu_backward(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du);
/// The AVX2 + FMA versions, callable directly when bp_vector_math_has_avx2() (else they are the portable twins), so
/// that tests on an AVX-512 machine check them too; their results equal the AVX-512 ones.
int bp_vector_math_has_avx2(void);
float bp_max_avx2(const float *x, size_t n);
double bp_exp_shifted_avx2(float *x, size_t n, float shift);
double bp_exp_sum_avx2(const float *x, size_t n, float shift);
void bp_swiglu_forward_avx2(const float *g, const float *u, size_t n, float *h);
void bp_swiglu_backward_avx2(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du);
/// The plain C twins (libm expf), what CPUs without AVX2 run; tests compare the fast functions with them.
float bp_max_portable(const float *x, size_t n);
double bp_exp_shifted_portable(float *x, size_t n, float shift);
double bp_exp_sum_portable(const float *x, size_t n, float shift);
void bp_swiglu_forward_portable(const float *g, const float *u, size_t n, float *h);
void bp_swiglu_backward_portable(const float *g, const float *u, const float *dh, size_t n, float *dg, float *du);

// ---------------------------------------------------------------------------------------------------------------
// Temporary output files removed when the process is interrupted (temporaries.c). FileChecks registers each
// temporary it creates and forgets it once renamed into place; `bp_temporaries_install_handlers` makes SIGINT,
// SIGTERM and SIGHUP (where not ignored) remove every registered one, then end the process by the same signal.
// At most 64 at a time (more go unregistered and are removed by the next write of the same target instead).
void bp_temporaries_install_handlers(void);
void bp_temporary_register(const char *path);
void bp_temporary_forget(const char *path);
// Between `bp_interrupts_defer()` and `bp_interrupts_resume()` (nestable) such a signal is held and acted on at the
// resume: for steps that must happen together, such as renaming report.md and report.html into place.
void bp_interrupts_defer(void);
void bp_interrupts_resume(void);

#ifdef __cplusplus
}
#endif

#endif
