// Single-precision GEMM against weights packed once: C[m, n] (+)= A[m, k] · Wᵀ with W [n, k] (a linear layer's
// weight), the engine's forward products. One thread per call; the caller splits the columns of C. The same
// micro-kernel also computes weight gradients C (+)= Aᵀ · B (bp_sgemm_tn), with both operands packed per call.
//
// Why: OpenBLAS packs W into panels on every call, and on the engine's T = 128 forward that copying was 12% of the
// time on a Zen 3 (19% on an Ice Lake); W does not change between forward passes, so the engine packs it once
// (`PackedWeights` in TensorCore) and this kernel reads the panels as they are. The loops are BLIS's (Goto & van de
// Geijn 2008; Van Zee & van de Geijn 2015) without the B packing: per block of at most MC rows and per k block,
// pack that block of A into MR-row tiles, then for each NR-column panel of W sweep the row tiles with an MR × NR
// register tile.
//
// A weight gradient that is written once and not read soon (BP_GEMM_STREAM) goes to memory with non-temporal stores,
// which do not read each line of C into cache before writing it, in the instances whose vector is a cache line (the
// AVX-512 ones and their texts for AVX2); the values are the same.
//
// Numerics: each element of C is, per k block in order, one FMA chain over the block in order of k, added to C
// after the block (the first block overwrites C unless accumulating). So an element does not depend on how the
// caller splits C, and equals `bp_packed_sgemm_reference`'s bit for bit (tests check both). It differs from
// OpenBLAS's in the last bits (another order of the sum over k).
//
// Variants, picked by `bp_packed_sgemm_variant()` from cpuid (bp_cpu_features): AVX-512 (16 floats, 8 × 48 tile,
// 24 zmm accumulators) and AVX2 + FMA (8 floats, 4 × 24 tile, 12 ymm accumulators: all 16 ymm registers with the
// three B vectors and the broadcast). Both are one text, sgemm_packed_body.h, in the compiler's vector extension.
// `BP_PACKED_WIDE_ON_AVX2` is the AVX-512 variant's text and shapes compiled for AVX2: tests run it on CPUs without
// AVX-512 so that its indexing is checked everywhere (it is slow: 48 ymm accumulators do not fit 16 registers).
// A third instance, `BP_PACKED_AVX512_N64` (6 × 64 tile), is never picked for the linear layers: the engine runs
// attention's products on it (`BLAS.attentionProduct`), with `BP_PACKED_N64_ON_AVX2` its text for the tests.
#include "CKernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <pthread.h>

// The tile's flags (sgemm_packed_body.h): add the block's sums to C; write a whole tile with non-temporal stores.
enum { TILE_ADD = 1, TILE_STREAM = 2 };
// The index list b, b + 1, …, b + 15 for __builtin_shufflevector.
#define BP_SEQ4(b) (b), (b) + 1, (b) + 2, (b) + 3
#define BP_SEQ16(b) BP_SEQ4(b), BP_SEQ4((b) + 4), BP_SEQ4((b) + 8), BP_SEQ4((b) + 12)

// AVX2 + FMA: compiled for Haswell, whose scheduling model keeps the 12 accumulators in registers (with clang's
// generic tuning an earlier kernel of this shape spilled one and ran at 40% of its speed on a Zen 3).
#define NAME(x) x##_avx2
#define TARGET __attribute__((target("arch=haswell")))
#define VW 8
#define MR 4
#define NV 3
#define KC BP_PACKED_KC
#include "sgemm_packed_body.h"

// AVX-512 F/CD/BW/DQ/VL (Skylake server and later, Zen 4 and later).
#define NAME(x) x##_avx512
#define TARGET __attribute__((target("arch=skylake-avx512"), min_vector_width(512)))
#define VW 16
#define MR 8
#define NV 3
#define KC BP_PACKED_KC
#include "sgemm_packed_body.h"

// AVX-512 with a 6 × 64 tile (24 zmm accumulators, 4 B vectors, one broadcast: 29 of 32 registers), for attention:
// its products are 64 columns wide (the head dimension) or a multiple of 64 (keys in 64-row blocks), which 48-column
// panels cover with a third of the last panel wasted (scripts/sgemm_probe/attention.c; BLAS.attentionProduct).
#define NAME(x) x##_n64
#define TARGET __attribute__((target("arch=skylake-avx512"), min_vector_width(512)))
#define VW 16
#define MR 6
#define NV 4
#define KC BP_PACKED_KC
#include "sgemm_packed_body.h"

// The 6 × 64 variant's text for AVX2 (tests only).
#define NAME(x) x##_n64wide
#define TARGET __attribute__((target("arch=haswell")))
#define VW 16
#define MR 6
#define NV 4
#define KC BP_PACKED_KC
#include "sgemm_packed_body.h"

// The AVX-512 variant's text for AVX2 (tests only).
#define NAME(x) x##_wide
#define TARGET __attribute__((target("arch=haswell")))
#define VW 16
#define MR 8
#define NV 3
#define KC BP_PACKED_KC
#include "sgemm_packed_body.h"

static const uint64_t avx512_bits =
    BP_CPU_AVX512F | BP_CPU_AVX512CD | BP_CPU_AVX512BW | BP_CPU_AVX512DQ | BP_CPU_AVX512VL | BP_CPU_FMA | BP_CPU_AVX2;
static const uint64_t avx2_bits = BP_CPU_AVX2 | BP_CPU_FMA | BP_CPU_AVX;

// cpuid exits to the hypervisor in a VM (microseconds), so the features are read once.
static uint64_t features(void) {
  static uint64_t cached = 0;
  static int known = 0;
  if (!__atomic_load_n(&known, __ATOMIC_ACQUIRE)) {
    __atomic_store_n(&cached, bp_cpu_features(), __ATOMIC_RELAXED);
    __atomic_store_n(&known, 1, __ATOMIC_RELEASE);
  }
  return __atomic_load_n(&cached, __ATOMIC_RELAXED);
}

int bp_packed_sgemm_variant(void) {
  const uint64_t f = features();
  if ((f & avx512_bits) == avx512_bits) return BP_PACKED_AVX512;
  if ((f & avx2_bits) == avx2_bits) return BP_PACKED_AVX2;
  return BP_PACKED_NONE;
}

static int runnable(int variant) {
  const uint64_t f = features();
  switch (variant) {
    case BP_PACKED_AVX512:
    case BP_PACKED_AVX512_N64: return (f & avx512_bits) == avx512_bits;
    case BP_PACKED_AVX2:
    case BP_PACKED_WIDE_ON_AVX2:
    case BP_PACKED_N64_ON_AVX2: return (f & avx2_bits) == avx2_bits;
    default: return 0;
  }
}

int bp_packed_sgemm_runnable(int variant) { return runnable(variant); }

int bp_packed_sgemm_panel(int variant) {
  switch (variant) {
    case BP_PACKED_AVX512:
    case BP_PACKED_WIDE_ON_AVX2: return 48;
    case BP_PACKED_AVX512_N64:
    case BP_PACKED_N64_ON_AVX2: return 64;
    case BP_PACKED_AVX2: return 24;
    default: return 0;
  }
}

size_t bp_packed_sgemm_size(int variant, size_t n, size_t k) {
  switch (variant) {
    case BP_PACKED_AVX512: return size_avx512(n, k);
    case BP_PACKED_WIDE_ON_AVX2: return size_wide(n, k);
    case BP_PACKED_AVX512_N64: return size_n64(n, k);
    case BP_PACKED_N64_ON_AVX2: return size_n64wide(n, k);
    case BP_PACKED_AVX2: return size_avx2(n, k);
    default: return 0;
  }
}

int bp_packed_sgemm_pack(int variant, const float *w, size_t ldw, size_t n, size_t k, float *out, size_t panel0,
                         size_t panel1) {
  if (!runnable(variant)) return -1;
  switch (variant) {
    case BP_PACKED_AVX512: pack_avx512(w, ldw, n, k, out, panel0, panel1); break;
    case BP_PACKED_WIDE_ON_AVX2: pack_wide(w, ldw, n, k, out, panel0, panel1); break;
    case BP_PACKED_AVX512_N64: pack_n64(w, ldw, n, k, out, panel0, panel1); break;
    case BP_PACKED_N64_ON_AVX2: pack_n64wide(w, ldw, n, k, out, panel0, panel1); break;
    default: pack_avx2(w, ldw, n, k, out, panel0, panel1);
  }
  return 0;
}

// The packing buffers of one thread, in one allocation freed when the thread ends: A's tiles ((MC + 16) rows × KC
// floats, 272 KiB), then bp_sgemm_tn's block of B (NC × KC floats, 768 KiB), then one panel of W for
// bp_packed_sgemm_rows (KC × the widest NR floats, 64 KiB).
// Each thread's buffer: [A's tiles][B's NC columns (bp_sgemm_tn)][one panel (bp_packed_sgemm_rows)]. The rows
// variant, which does not use the NC block, packs A's k blocks into it and the A block together.
enum {
  BP_ABUF_FLOATS = (BP_PACKED_MC + 16) * BP_PACKED_KC,
  BP_BBUF_FLOATS = BP_PACKED_KC * 64,  // one panel of the widest variant
  BP_NCBUF_FLOATS = BP_GEMM_NC * BP_PACKED_KC
};
static pthread_key_t buffers_key;
static pthread_once_t buffers_once = PTHREAD_ONCE_INIT;
static void make_key(void) { pthread_key_create(&buffers_key, free); }

static float *thread_buffers(void) {
  pthread_once(&buffers_once, make_key);
  float *buf = pthread_getspecific(buffers_key);
  if (buf) return buf;
  buf = aligned_alloc(64, sizeof(float) * (BP_ABUF_FLOATS + BP_BBUF_FLOATS + BP_NCBUF_FLOATS));
  if (buf && pthread_setspecific(buffers_key, buf) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

// What both entry points check and do first: -1 for a variant this CPU cannot run or columns out of range; 0 when
// nothing is left to multiply (no rows, no columns, or k = 0: C zeroed unless accumulating); 1 with this thread's
// buffers in *abuf.
static int begin(int variant, size_t m, size_t n, size_t k, int flags, float *c, size_t ldc, size_t j0, size_t j1,
                 float **abuf) {
  const int nr = bp_packed_sgemm_panel(variant);
  if (!runnable(variant) || j0 % nr != 0 || j1 > n || j0 > j1) return -1;
  if (m == 0 || j0 == j1) return 0;
  if (k == 0) {
    if (!(flags & BP_GEMM_ACCUMULATE))
      for (size_t i = 0; i < m; i++) memset(c + i * ldc + j0, 0, sizeof(float) * (j1 - j0));
    return 0;
  }
  *abuf = thread_buffers();
  return *abuf ? 1 : -1;
}

int bp_packed_sgemm_rows(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *w,
                         size_t ldw, int accumulate, float *c, size_t ldc, size_t j0, size_t j1) {
  float *abuf = NULL;
  const int go = begin(variant, m, n, k, accumulate, c, ldc, j0, j1, &abuf);
  if (go <= 0) return go;
  float *bbuf = abuf + BP_ABUF_FLOATS + BP_NCBUF_FLOATS;
  const size_t room = BP_ABUF_FLOATS + BP_NCBUF_FLOATS;
  switch (variant) {
    case BP_PACKED_AVX512: gemm_rows_avx512(m, n, k, a, lda, w, ldw, accumulate, c, ldc, j0, j1, abuf, room, bbuf); break;
    case BP_PACKED_WIDE_ON_AVX2: gemm_rows_wide(m, n, k, a, lda, w, ldw, accumulate, c, ldc, j0, j1, abuf, room, bbuf); break;
    case BP_PACKED_AVX512_N64: gemm_rows_n64(m, n, k, a, lda, w, ldw, accumulate, c, ldc, j0, j1, abuf, room, bbuf); break;
    case BP_PACKED_N64_ON_AVX2: gemm_rows_n64wide(m, n, k, a, lda, w, ldw, accumulate, c, ldc, j0, j1, abuf, room, bbuf); break;
    default: gemm_rows_avx2(m, n, k, a, lda, w, ldw, accumulate, c, ldc, j0, j1, abuf, room, bbuf);
  }
  return 0;
}

static int gemm_kn(int variant, int a_transposed, size_t m, size_t n, size_t k, const float *a, size_t lda,
                   const float *b, size_t ldb, int flags, float *c, size_t ldc, size_t j0, size_t j1) {
  float *abuf = NULL;
  const int go = begin(variant, m, n, k, flags, c, ldc, j0, j1, &abuf);
  if (go <= 0) return go;
  float *bbuf = abuf + BP_ABUF_FLOATS;
  switch (variant) {
    case BP_PACKED_AVX512: gemm_kn_avx512(a_transposed, m, n, k, a, lda, b, ldb, flags,
                                          c, ldc, j0, j1, abuf, bbuf); break;
    case BP_PACKED_WIDE_ON_AVX2: gemm_kn_wide(a_transposed, m, n, k, a, lda, b, ldb, flags,
                                              c, ldc, j0, j1, abuf, bbuf); break;
    case BP_PACKED_AVX512_N64: gemm_kn_n64(a_transposed, m, n, k, a, lda, b, ldb, flags,
                                           c, ldc, j0, j1, abuf, bbuf); break;
    case BP_PACKED_N64_ON_AVX2: gemm_kn_n64wide(a_transposed, m, n, k, a, lda, b, ldb, flags,
                                                c, ldc, j0, j1, abuf, bbuf); break;
    default: gemm_kn_avx2(a_transposed, m, n, k, a, lda, b, ldb, flags, c, ldc, j0, j1, abuf, bbuf);
  }
  return 0;
}

int bp_sgemm_tn(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                int flags, float *c, size_t ldc, size_t j0, size_t j1) {
  return gemm_kn(variant, 1, m, n, k, a, lda, b, ldb, flags, c, ldc, j0, j1);
}

int bp_sgemm_nn(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                int flags, float *c, size_t ldc, size_t j0, size_t j1) {
  return gemm_kn(variant, 0, m, n, k, a, lda, b, ldb, flags, c, ldc, j0, j1);
}

int bp_packed_sgemm(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed,
                    int accumulate, float *c, size_t ldc, size_t j0, size_t j1) {
  float *abuf = NULL;
  const int go = begin(variant, m, n, k, accumulate, c, ldc, j0, j1, &abuf);
  if (go <= 0) return go;
  switch (variant) {
    case BP_PACKED_AVX512: gemm_avx512(m, n, k, a, lda, packed, accumulate, c, ldc, j0, j1, abuf); break;
    case BP_PACKED_WIDE_ON_AVX2: gemm_wide(m, n, k, a, lda, packed, accumulate, c, ldc, j0, j1, abuf); break;
    case BP_PACKED_AVX512_N64: gemm_n64(m, n, k, a, lda, packed, accumulate, c, ldc, j0, j1, abuf); break;
    case BP_PACKED_N64_ON_AVX2: gemm_n64wide(m, n, k, a, lda, packed, accumulate, c, ldc, j0, j1, abuf); break;
    default: gemm_avx2(m, n, k, a, lda, packed, accumulate, c, ldc, j0, j1, abuf);
  }
  return 0;
}
#else
int bp_packed_sgemm_variant(void) { return BP_PACKED_NONE; }
int bp_packed_sgemm_runnable(int variant) { (void)variant; return 0; }
int bp_packed_sgemm_panel(int variant) { (void)variant; return 0; }
size_t bp_packed_sgemm_size(int variant, size_t n, size_t k) { (void)variant, (void)n, (void)k; return 0; }
int bp_packed_sgemm_pack(int variant, const float *w, size_t ldw, size_t n, size_t k, float *out, size_t panel0,
                         size_t panel1) {
  (void)variant, (void)w, (void)ldw, (void)n, (void)k, (void)out, (void)panel0, (void)panel1;
  return -1;
}
int bp_packed_sgemm_rows(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *w,
                         size_t ldw, int accumulate, float *c, size_t ldc, size_t j0, size_t j1) {
  (void)variant, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)w, (void)ldw, (void)accumulate, (void)c,
      (void)ldc, (void)j0, (void)j1;
  return -1;
}
int bp_sgemm_tn(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                int accumulate, float *c, size_t ldc, size_t j0, size_t j1) {
  (void)variant, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)accumulate, (void)c,
      (void)ldc, (void)j0, (void)j1;
  return -1;
}
int bp_sgemm_nn(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                int accumulate, float *c, size_t ldc, size_t j0, size_t j1) {
  (void)variant, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)accumulate, (void)c,
      (void)ldc, (void)j0, (void)j1;
  return -1;
}
int bp_packed_sgemm(int variant, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed,
                    int accumulate, float *c, size_t ldc, size_t j0, size_t j1) {
  (void)variant, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)packed, (void)accumulate, (void)c, (void)ldc,
      (void)j0, (void)j1;
  return -1;
}
#endif

// The twins: the same sums in the same order, one element at a time, in plain C (fmaf per step), with the operands
// as stored, not packed, so they check the packing too. One loop for both, reading A(i, p) at a[i·ai + p·ap] and
// B(p, j) at b[p·bp + j·bj].
static void reference(size_t m, size_t n, size_t k, size_t kc_max, const float *a, size_t ai, size_t ap, const float *b,
                      size_t bp, size_t bj, int accumulate, float *c, size_t ldc) {
  const size_t blocks = k == 0 ? 0 : (k + kc_max - 1) / kc_max, step = blocks == 0 ? 0 : (k + blocks - 1) / blocks;
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      float out = accumulate ? c[i * ldc + j] : 0;
      for (size_t pc = 0; pc < k; pc += step) {
        const size_t kc = k - pc < step ? k - pc : step;
        float sum = 0;
        for (size_t p = pc; p < pc + kc; p++) sum = fmaf(a[i * ai + p * ap], b[p * bp + j * bj], sum);
        out = (pc == 0 && !accumulate) ? sum : out + sum;
      }
      c[i * ldc + j] = out;
    }
}

// C (+)= A · Wᵀ: A(i, p) = a[i·lda + p], W [n, k] so B(p, j) = w[j·ldw + p].
void bp_packed_sgemm_reference(size_t m, size_t n, size_t k, size_t kc_max, const float *a, size_t lda,
                               const float *w, size_t ldw, int accumulate, float *c, size_t ldc) {
  reference(m, n, k, kc_max, a, lda, 1, w, 1, ldw, accumulate, c, ldc);
}

// C (+)= Aᵀ · B: A stored [k, m], so A(i, p) = a[p·lda + i]; B(p, j) = b[p·ldb + j].
void bp_sgemm_tn_reference(size_t m, size_t n, size_t k, size_t kc_max, const float *a, size_t lda, const float *b,
                           size_t ldb, int accumulate, float *c, size_t ldc) {
  reference(m, n, k, kc_max, a, 1, lda, b, ldb, 1, accumulate, c, ldc);
}

// C (+)= A · B: A(i, p) = a[i·lda + p]; B(p, j) = b[p·ldb + j].
void bp_sgemm_nn_reference(size_t m, size_t n, size_t k, size_t kc_max, const float *a, size_t lda, const float *b,
                           size_t ldb, int accumulate, float *c, size_t ldc) {
  reference(m, n, k, kc_max, a, lda, 1, b, ldb, 1, accumulate, c, ldc);
}
