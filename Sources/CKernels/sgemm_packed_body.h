// One instance of the packed-weight GEMM (sgemm_packed.c includes this once per variant). Private to CKernels.
//
// Before inclusion define (it undefines them at its end): NAME(x) (a suffixed function name), TARGET (the function attribute), VW (floats per
// vector), MR (rows of A per tile), NV (vectors per tile row; NR = NV · VW columns) and KC (the longest k block).
// The code is written with the compiler's vector extension, so one text serves every vector width: a 16-float
// vector in a function compiled for AVX2 becomes two ymm operations, which is how the AVX-512 variant's text is
// checked on a CPU without AVX-512 (`BP_PACKED_WIDE_ON_AVX2`).

#define NR (NV * VW)

typedef float NAME(vec) __attribute__((vector_size(VW * sizeof(float)), aligned(4)));

// The k blocks: k cut into equal blocks of at most KC (the last may be shorter by < number of blocks).
static inline size_t NAME(step)(size_t k) {
  if (k == 0) return 1;
  const size_t blocks = (k + KC - 1) / KC;
  return (k + blocks - 1) / blocks;
}

// Floats of W [n, k] packed: ⌈n / NR⌉ panels of NR columns for every k.
static size_t NAME(size)(size_t n, size_t k) { return ((n + NR - 1) / NR) * NR * k; }

// Panel q of k block [pc, pc + kc) of W [n, k] (row stride ldw) into `panel`: element (p, c), W[q · NR + c, pc + p],
// at panel[p · NR + c]; columns past n are 0. A full panel goes through 8 × 8 transposes (8 rows of W read 8 floats
// at a time, written as 8 rows of the panel): the LM head packs its 49152-row table this way on every pass, and the
// element-by-element copy took a third as long as the products (scripts/sgemm_probe/head.c).
TARGET static void NAME(pack_panel)(const float *w, size_t ldw, size_t n, size_t q, size_t pc, size_t kc, float *panel) {
  typedef float v8 __attribute__((vector_size(8 * sizeof(float)), aligned(4)));
  size_t p0 = 0;
  if ((q + 1) * NR <= n) {
    p0 = kc / 8 * 8;
    for (size_t c0 = 0; c0 < NR; c0 += 8) {
      const float *rows = w + (q * NR + c0) * ldw + pc;
      for (size_t p = 0; p < p0; p += 8) {
        const v8 r0 = *(const v8 *)(rows + p), r1 = *(const v8 *)(rows + ldw + p),
                 r2 = *(const v8 *)(rows + 2 * ldw + p), r3 = *(const v8 *)(rows + 3 * ldw + p),
                 r4 = *(const v8 *)(rows + 4 * ldw + p), r5 = *(const v8 *)(rows + 5 * ldw + p),
                 r6 = *(const v8 *)(rows + 6 * ldw + p), r7 = *(const v8 *)(rows + 7 * ldw + p);
        // pairs of rows interleaved, then pairs of pairs, then the 128-bit halves: out_j[i] = r_i[j]
        const v8 t0 = __builtin_shufflevector(r0, r1, 0, 8, 1, 9, 4, 12, 5, 13),
                 t1 = __builtin_shufflevector(r0, r1, 2, 10, 3, 11, 6, 14, 7, 15),
                 t2 = __builtin_shufflevector(r2, r3, 0, 8, 1, 9, 4, 12, 5, 13),
                 t3 = __builtin_shufflevector(r2, r3, 2, 10, 3, 11, 6, 14, 7, 15),
                 t4 = __builtin_shufflevector(r4, r5, 0, 8, 1, 9, 4, 12, 5, 13),
                 t5 = __builtin_shufflevector(r4, r5, 2, 10, 3, 11, 6, 14, 7, 15),
                 t6 = __builtin_shufflevector(r6, r7, 0, 8, 1, 9, 4, 12, 5, 13),
                 t7 = __builtin_shufflevector(r6, r7, 2, 10, 3, 11, 6, 14, 7, 15);
        const v8 u0 = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13),
                 u1 = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15),
                 u2 = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13),
                 u3 = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15),
                 u4 = __builtin_shufflevector(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13),
                 u5 = __builtin_shufflevector(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15),
                 u6 = __builtin_shufflevector(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13),
                 u7 = __builtin_shufflevector(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
        float *out = panel + p * NR + c0;
        *(v8 *)(out + 0 * NR) = __builtin_shufflevector(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11);
        *(v8 *)(out + 1 * NR) = __builtin_shufflevector(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11);
        *(v8 *)(out + 2 * NR) = __builtin_shufflevector(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11);
        *(v8 *)(out + 3 * NR) = __builtin_shufflevector(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11);
        *(v8 *)(out + 4 * NR) = __builtin_shufflevector(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15);
        *(v8 *)(out + 5 * NR) = __builtin_shufflevector(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15);
        *(v8 *)(out + 6 * NR) = __builtin_shufflevector(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15);
        *(v8 *)(out + 7 * NR) = __builtin_shufflevector(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15);
      }
    }
  }
  // the k steps past the last multiple of 8, or all of a panel that runs past n: 8 columns at a time, so that 8 rows
  // of W are read side by side and each read line is used 8 times while in L1
  for (size_t c0 = 0; c0 < NR; c0 += 8)
    for (size_t p = p0; p < kc; p++)
      for (size_t c = c0; c < c0 + 8; c++) {
        const size_t j = q * NR + c;
        panel[p * NR + c] = j < n ? w[j * ldw + pc + p] : 0;
      }
}

// Panels [q0, q1) of W [n, k] (row stride ldw) into `out`. Block b of k (rows pc ..< pc + kc of op(B) = Wᵀ) starts
// at out + pc · panels · NR; panel q of it at + q · kc · NR, laid out as NAME(pack_panel) writes it.
TARGET static void NAME(pack)(const float *w, size_t ldw, size_t n, size_t k, float *out, size_t q0, size_t q1) {
  const size_t step = NAME(step)(k), panels = (n + NR - 1) / NR;
  for (size_t pc = 0; pc < k; pc += step) {
    const size_t kc = k - pc < step ? k - pc : step;
    for (size_t q = q0; q < q1; q++) NAME(pack_panel)(w, ldw, n, q, pc, kc, out + pc * panels * NR + q * kc * NR);
  }
}

// A[i0 ..< i0 + MR·tiles, pc ..< pc + kc] into tiles of MR rows: element (r, p) of tile t at ap[t·kc·MR + p·MR + r];
// rows past m are 0.
TARGET static void NAME(pack_a)(const float *a, size_t lda, size_t m, size_t pc, size_t kc, float *ap) {
  for (size_t i = 0; i < m; i += MR, ap += kc * MR) {
    const size_t rows = m - i < MR ? m - i : MR;
    for (size_t r = 0; r < MR; r++) {
      const float *row = a + (i + r) * lda + pc;
      if (r < rows)
        for (size_t p = 0; p < kc; p++) ap[p * MR + r] = row[p];
      else
        for (size_t p = 0; p < kc; p++) ap[p * MR + r] = 0;
    }
  }
}

#if VW == 16
// Row r of a whole tile, acc[r][0 ..< NV], to dst with non-temporal stores (TILE_STREAM), which write a line without
// first reading it into cache, as an ordinary store that misses does. Only where a vector is a cache line (VW = 16):
// a non-temporal store that leaves part of its line to a later store is slow (the AVX2 tile's 24-float rows, a line
// and a half, took 1.5 times as long streamed when on a line and 3.3 times when 48 bytes past one, against ordinary
// stores; scripts/sgemm_probe/weight_gradient_stream.c, Xeon family 6 model 207), so the AVX2 instances keep
// ordinary stores. A row that starts s floats past a line (s a multiple of 4) is written as the NV − 1 whole lines
// inside it, each the last 16 − s floats of one accumulator and the first s of the next, with ordinary stores for
// its first 16 − s and last s floats (lines it shares with the tiles beside it); rows at any other offset get
// ordinary stores. Macros, not a function: a pointer to the accumulators would keep them in memory, not registers.
#define STREAM_PIECE(dst, x, f, q) \
  *(v4 *)((dst) + (q)) = __builtin_shufflevector(x, x, ((f) + (q)) % VW, ((f) + (q) + 1) % VW, ((f) + (q) + 2) % VW, \
                                                 ((f) + (q) + 3) % VW)
#define STREAM_PIECES(dst, x, f, count) \
  do { \
    if ((count) > 0) STREAM_PIECE(dst, x, f, 0); \
    if ((count) > 4) STREAM_PIECE(dst, x, f, 4); \
    if ((count) > 8) STREAM_PIECE(dst, x, f, 8); \
  } while (0)
#define STREAM_SHIFTED(r, dst, S) \
  do { \
    STREAM_PIECES(dst, acc[r][0], 0, VW - (S)); \
    for (int v = 1; v < NV; v++) \
      __builtin_nontemporal_store((avec)__builtin_shufflevector(acc[r][v - 1], acc[r][v], BP_SEQ16(VW - (S))), \
                                  (avec *)((dst) + v * VW - (S))); \
    STREAM_PIECES((dst) + NV * VW - (S), acc[r][NV - 1], VW - (S), S); \
  } while (0)
#define STREAM_ROW(r, dst) \
  switch ((uintptr_t)(dst) % 64) { \
    case 0: \
      for (int v = 0; v < NV; v++) __builtin_nontemporal_store((avec)acc[r][v], (avec *)((dst) + v * VW)); \
      break; \
    case 16: STREAM_SHIFTED(r, dst, 4); break; \
    case 32: STREAM_SHIFTED(r, dst, 8); break; \
    case 48: STREAM_SHIFTED(r, dst, 12); break; \
    default: \
      for (int v = 0; v < NV; v++) *(vec *)((dst) + v * VW) = acc[r][v]; \
  }
#endif

// The MR × NR tile at c (its first `rows` × `cols` inside C): c ← Σ_p A(·, p) ⊗ bp[p] (+ c when flags has
// TILE_ADD), A(r, p) at a[r · rs + p · ps]. The sum over this k block is one FMA chain per element, in order of p; it
// is added to c after the block. A whole tile is written with non-temporal stores when flags is TILE_STREAM (without
// TILE_ADD) and a vector is a cache line (STREAM_ROW). Two instances: A packed into tiles (rs = 1, ps = MR) and A
// read where it lies (rs = its row stride, ps = 1), for whole tiles of a row-major A, which then needs no packing:
// the same FMAs in the same order.
TARGET __attribute__((always_inline)) static inline void NAME(tile)(size_t kc, const float *a, size_t rs, size_t ps,
                                                                   const float *bp, size_t bs, float *c, size_t ldc,
                                                                   size_t rows, size_t cols, int flags) {
  typedef NAME(vec) vec;
  const int add = flags & TILE_ADD;
  vec acc[MR][NV];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = (vec){0};
  // a[r] · ones is the broadcast of a[r] (x · 1 folds to x); 0 + a[r] would not fold (−0 + 0 is +0) and kept
  // a zero register live, which made the 12 accumulators spill on AVX2
  const vec ones = (vec){0} + 1.0f;
#pragma clang loop unroll(disable)
  for (size_t p = 0; p < kc; p++, a += ps, bp += bs) {
    vec b[NV];
    for (int v = 0; v < NV; v++) b[v] = *(const vec *)(bp + v * VW);
    for (int r = 0; r < MR; r++) {
      const vec x = a[r * rs] * ones;
      for (int v = 0; v < NV; v++) acc[r][v] = __builtin_elementwise_fma(x, b[v], acc[r][v]);
    }
  }
  if (rows == MR && cols == NR) {
#if VW == 16
    if (flags == TILE_STREAM) {
      typedef float avec __attribute__((vector_size(VW * sizeof(float))));  // aligned to its size, as the store needs
      typedef float v4 __attribute__((vector_size(4 * sizeof(float)), aligned(4)));
      // unrolled, so that every accumulator is indexed by constants and stays in its register
#pragma clang loop unroll(full)
      for (int r = 0; r < MR; r++) {
        float *dst = c + r * ldc;
        STREAM_ROW(r, dst)
      }
      return;
    }
#endif
    for (int r = 0; r < MR; r++)
      for (int v = 0; v < NV; v++) {
        vec *out = (vec *)(c + r * ldc + v * VW);
        *out = add ? *out + acc[r][v] : acc[r][v];
      }
    return;
  }
  float tile[MR][NR];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) *(vec *)&tile[r][v * VW] = acc[r][v];
  for (size_t r = 0; r < rows; r++)
    for (size_t j = 0; j < cols; j++) c[r * ldc + j] = add ? c[r * ldc + j] + tile[r][j] : tile[r][j];
}

TARGET __attribute__((noinline)) static void NAME(kernel)(size_t kc, const float *ap, const float *bp, float *c,
                                                          size_t ldc, size_t rows, size_t cols, int flags) {
  NAME(tile)(kc, ap, 1, MR, bp, NR, c, ldc, rows, cols, flags);
}

TARGET __attribute__((noinline)) static void NAME(kernel_direct)(size_t kc, const float *a, size_t lda, const float *bp,
                                                                 float *c, size_t ldc, size_t cols, int flags) {
  NAME(tile)(kc, a, lda, 1, bp, NR, c, ldc, MR, cols, flags);
}

// A's partial last tile packed, B where it lies (a whole panel, row stride ldb).
TARGET __attribute__((noinline)) static void NAME(kernel_packed_a)(size_t kc, const float *ap, const float *b, size_t ldb,
                                                                   float *c, size_t ldc, size_t rows, int flags) {
  NAME(tile)(kc, ap, 1, MR, b, ldb, c, ldc, rows, NR, flags);
}

// Both operands where they lie: A row-major (whole tile), B row-major [k, n] with row stride ldb (a whole panel of
// NR columns inside n), for dX = dY · W with W as it lies: neither is copied.
TARGET __attribute__((noinline)) static void NAME(kernel_direct_b)(size_t kc, const float *a, size_t lda, const float *b,
                                                                   size_t ldb, float *c, size_t ldc, int flags) {
  NAME(tile)(kc, a, lda, 1, b, ldb, c, ldc, MR, NR, flags);
}

// Columns [j0, j1) of C[m, n] (row stride ldc) ← A[m, k] · Wᵀ (+ C when accumulate), W packed by NAME(pack);
// j0 a multiple of NR. `abuf` holds min(m, MC) rows × KC, MR-aligned.
TARGET static void NAME(gemm)(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed,
                              int accumulate, float *c, size_t ldc, size_t j0, size_t j1, float *abuf) {
  const size_t step = NAME(step)(k), panels = (n + NR - 1) / NR;
  for (size_t ic = 0; ic < m; ic += BP_PACKED_MC) {
    const size_t mc = m - ic < BP_PACKED_MC ? m - ic : BP_PACKED_MC;
    for (size_t pc = 0; pc < k; pc += step) {
      const size_t kc = k - pc < step ? k - pc : step;
      const float *block = packed + pc * panels * NR;
      // whole tiles read A where it lies; only a last, partial tile is packed (zero rows past m)
      const size_t whole = mc / MR * MR;
      if (whole < mc) NAME(pack_a)(a + (ic + whole) * lda, lda, mc - whole, pc, kc, abuf);
      const size_t tiles = (mc + MR - 1) / MR, lines = (kc * NR * sizeof(float) + 63) / 64;
      const size_t per_tile = (lines + tiles - 1) / tiles;
      for (size_t jr = j0; jr < j1; jr += NR) {
        const float *panel = block + (jr / NR) * kc * NR;
        // the panel after this one comes from memory: fetch a share of it into L2 before each tile of this one,
        // so that the first sweep of the next panel does not wait on memory (prefetches never fault, so the one
        // past the end is harmless)
        const char *next = (const char *)(panel + kc * NR);
        for (size_t ir = 0, t = 0; ir < mc; ir += MR, t++) {
          for (size_t l = t * per_tile; l < (t + 1) * per_tile && l < lines; l++) __builtin_prefetch(next + 64 * l, 0, 2);
          if (ir < whole)
            NAME(kernel_direct)(kc, a + (ic + ir) * lda + pc, lda, panel, c + (ic + ir) * ldc + jr, ldc,
                                j1 - jr < NR ? j1 - jr : NR, accumulate || pc > 0);
          else
            NAME(kernel)(kc, abuf, panel, c + (ic + ir) * ldc + jr, ldc, mc - ir, j1 - jr < NR ? j1 - jr : NR,
                         accumulate || pc > 0);
        }
      }
    }
  }
}

// One panel (first column jr) and k block (from pc) of NAME(gemm_rows): the panel packed into bbuf, then swept by
// every tile of the row block [ic, ic + mc); `partial` holds the block's packed last tile when mc is not whole tiles.
TARGET __attribute__((always_inline)) static inline void NAME(rows_step)(
    size_t mc, size_t n, size_t kc, size_t jr, size_t j1, size_t pc, const float *a, size_t lda, const float *w,
    size_t ldw, int add, float *c, size_t ldc, const float *partial, float *bbuf) {
  const size_t whole = mc / MR * MR, cols = j1 - jr < NR ? j1 - jr : NR;
  NAME(pack_panel)(w, ldw, n, jr / NR, pc, kc, bbuf);
  for (size_t ir = 0; ir < whole; ir += MR)
    NAME(kernel_direct)(kc, a + ir * lda + pc, lda, bbuf, c + ir * ldc + jr, ldc, cols, add);
  if (whole < mc) NAME(kernel)(kc, partial, bbuf, c + whole * ldc + jr, ldc, mc - whole, cols, add);
}

// NAME(gemm) on W as stored (row stride ldw): each panel is packed into `bbuf` (KC × NR floats) just before its
// sweep, so nothing of W's size is allocated (a streamed weight, a table). The same sums in the same order.
// Whole tiles read A where it lies (NAME(kernel_direct)); a last, partial tile is packed. When that tile's every k
// block fits `abuf` (`abuf_floats`), they are packed first and each panel then runs all its k blocks in turn, so the
// panel's columns of C stay in cache between blocks: the LM head's C is [T, 49152] (100 MB at 512 tokens), and
// sweeping all of it once per k block went to memory each time. Each element still gets the same FMA chains,
// blocks added in the same order: the same bits either way.
TARGET static void NAME(gemm_rows)(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *w,
                                   size_t ldw, int accumulate, float *c, size_t ldc, size_t j0, size_t j1, float *abuf,
                                   size_t abuf_floats, float *bbuf) {
  const size_t step = NAME(step)(k);
  for (size_t ic = 0; ic < m; ic += BP_PACKED_MC) {
    const size_t mc = m - ic < BP_PACKED_MC ? m - ic : BP_PACKED_MC, whole = mc / MR * MR;
    const float *ai = a + ic * lda, *last = a + (ic + whole) * lda;
    float *ci = c + ic * ldc;
    if (MR * k <= abuf_floats) {
      // the last tile's k blocks packed first (block from pc at abuf + pc · MR), then panel by panel, all k blocks
      if (whole < mc)
        for (size_t pc = 0; pc < k; pc += step) NAME(pack_a)(last, lda, mc - whole, pc, k - pc < step ? k - pc : step, abuf + pc * MR);
      for (size_t jr = j0; jr < j1; jr += NR)
        for (size_t pc = 0; pc < k; pc += step)
          NAME(rows_step)(mc, n, k - pc < step ? k - pc : step, jr, j1, pc, ai, lda, w, ldw, accumulate || pc > 0, ci,
                          ldc, abuf + pc * MR, bbuf);
    } else {
      // k block by k block, each sweeping every panel
      for (size_t pc = 0; pc < k; pc += step) {
        const size_t kc = k - pc < step ? k - pc : step;
        if (whole < mc) NAME(pack_a)(last, lda, mc - whole, pc, kc, abuf);
        for (size_t jr = j0; jr < j1; jr += NR)
          NAME(rows_step)(mc, n, kc, jr, j1, pc, ai, lda, w, ldw, accumulate || pc > 0, ci, ldc, abuf, bbuf);
      }
    }
  }
}

// A stored transposed, [k, m] with row stride lda (dY in a weight gradient dYᵀ · X), into tiles as
// NAME(pack_a) lays them out: element (r, p) of tile t, A[i + r, pc + p] = a[(pc + p) · lda + i + r], at
// ap[t·kc·MR + p·MR + r]; rows past m are 0. Stored row by row, each read front to back once (a tile at a time would
// touch kc rows side by side; the tied table's rows of dz lie 196 KB apart).
TARGET static void NAME(pack_at)(const float *a, size_t lda, size_t m, size_t pc, size_t kc, float *ap) {
  const size_t full = m / MR * MR;
  for (size_t p = 0; p < kc; p++) {
    const float *src = a + (pc + p) * lda;
    float *dst = ap + p * MR;
    for (size_t i = 0; i < full; i += MR, dst += kc * MR)
      __builtin_memcpy(dst, src + i, MR * sizeof(float));  // a constant size: vector moves (a loop stayed scalar)
    if (full < m)
      for (size_t r = 0; r < MR; r++) dst[r] = full + r < m ? src[full + r] : 0;
  }
}

// Columns [jc, jend) of k block [pc, pc + kc) of B stored [k, n] (row stride ldb; B as it is, not a weight to
// transpose) into panels at bbuf + (j − jc) · kc for each panel's first column j: element (p, c) of a panel,
// B[pc + p, j + c], at [p · NR + c]; columns past n are 0. Row by row, each read front to back once.
TARGET static void NAME(pack_block)(const float *b, size_t ldb, size_t n, size_t jc, size_t jend, size_t pc,
                                    size_t kc, float *bbuf) {
  for (size_t p = 0; p < kc; p++) {
    const float *src = b + (pc + p) * ldb;
    for (size_t j = jc; j < jend; j += NR) {
      float *dst = bbuf + (j - jc) * kc + p * NR;
      if (n - j >= NR)
        __builtin_memcpy(dst, src + j, NR * sizeof(float));
      else
        for (size_t c = 0; c < NR; c++) dst[c] = j + c < n ? src[j + c] : 0;
    }
  }
}

// Columns [j0, j1) of C[m, n] (row stride ldc) ← op(A) · B (+ C when accumulate), B stored [k, n] (row stride ldb);
// A stored [k, m] (row stride lda) when `a_transposed`: a weight gradient dW = dYᵀ · X; else [m, k]: an input
// gradient dX = dY · W, W [out, in] as it lies. Per NC columns, per block of MC rows of C and per k block: with Aᵀ,
// that k block of B's NC columns is packed into `bbuf` (NC × KC floats; once for all row blocks when k is one
// block) and the block of A into `abuf`; with a row-major A, whole tiles of A and whole panels of B are read where
// they lie (only a last partial tile, or a panel running past n, is packed). The tiles are swept panel by panel.
// Row blocks outside k blocks, as in NAME(gemm), so a block of C is finished while it is still in cache. The sums
// are those of NAME(gemm): one FMA chain per k block and element, blocks added to C in order; j0 a multiple of NR.
TARGET static void NAME(gemm_kn)(int a_transposed, size_t m, size_t n, size_t k, const float *a, size_t lda,
                                 const float *b, size_t ldb, int flags, float *c, size_t ldc, size_t j0, size_t j1,
                                 float *abuf, float *bbuf) {
  const size_t step = NAME(step)(k);
  const int accumulate = flags & BP_GEMM_ACCUMULATE;
  // streamed only when every element is written once: one k block, C overwritten
  const int stream = (flags & BP_GEMM_STREAM) && !accumulate && step >= k;
  for (size_t jc = j0; jc < j1; jc += BP_GEMM_NC) {
    const size_t jend = j1 - jc < BP_GEMM_NC ? j1 : jc + BP_GEMM_NC;
    for (size_t ic = 0; ic < m; ic += BP_PACKED_MC) {
      const size_t mc = m - ic < BP_PACKED_MC ? m - ic : BP_PACKED_MC;
      for (size_t pc = 0; pc < k; pc += step) {
        const size_t kc = k - pc < step ? k - pc : step;
        // Aᵀ (weight gradients): B's columns packed once per k block; A row-major (input gradients): whole panels
        // of B are read where they lie, only a panel running past n is packed
        if (a_transposed && (ic == 0 || kc < k)) NAME(pack_block)(b, ldb, n, jc, jend, pc, kc, bbuf);
        const size_t direct_end = a_transposed ? jc : (n / NR * NR < jend ? n / NR * NR : jend);
        if (!a_transposed && direct_end < jend) NAME(pack_block)(b, ldb, n, direct_end, jend, pc, kc, bbuf + (direct_end - jc) * kc);
        // a row-major A's whole tiles are read where they lie, its partial last tile packed; Aᵀ is packed
        const size_t whole = a_transposed ? 0 : mc / MR * MR;
        if (a_transposed)
          NAME(pack_at)(a + ic, lda, mc, pc, kc, abuf);
        else if (whole < mc)
          NAME(pack_a)(a + (ic + whole) * lda, lda, mc - whole, pc, kc, abuf);
        const int tile_flags = accumulate || pc > 0 ? TILE_ADD : stream ? TILE_STREAM : 0;
        // B read where it lies (an input gradient's W): before each tile of a panel, fetch a share of the next panel's
        // k block (kc rows of NR floats, each on at most NR / 16 + 1 lines) into L2, as NAME(gemm) does for packed
        // panels, so that the next panel's first tile does not wait on memory row by row
        const size_t row_lines = NR * sizeof(float) / 64 + 1, lines = kc * row_lines;
        const size_t per_tile = (lines + (mc + MR - 1) / MR - 1) / ((mc + MR - 1) / MR);
        for (size_t jr = jc; jr < jend; jr += NR)
          for (size_t ir = 0, t = 0; ir < mc; ir += MR, t++) {
            const size_t cols = jend - jr < NR ? jend - jr : NR;
            if (jr + 2 * NR <= direct_end)
              for (size_t l = t * per_tile; l < (t + 1) * per_tile && l < lines; l++) {
                const float *row = b + (pc + l / row_lines) * ldb + jr + NR;
                __builtin_prefetch((const char *)row + 64 * (l % row_lines), 0, 2);
              }
            if (jr < direct_end && ir < whole)
              NAME(kernel_direct_b)(kc, a + (ic + ir) * lda + pc, lda, b + pc * ldb + jr, ldb, c + (ic + ir) * ldc + jr,
                                    ldc, tile_flags);
            else if (jr < direct_end)
              NAME(kernel_packed_a)(kc, abuf + (ir - whole) * kc, b + pc * ldb + jr, ldb, c + (ic + ir) * ldc + jr, ldc,
                                    mc - ir, tile_flags);
            else if (ir < whole)
              NAME(kernel_direct)(kc, a + (ic + ir) * lda + pc, lda, bbuf + (jr - jc) * kc, c + (ic + ir) * ldc + jr,
                                  ldc, cols, tile_flags);
            else
              NAME(kernel)(kc, abuf + (ir - whole) * kc, bbuf + (jr - jc) * kc, c + (ic + ir) * ldc + jr, ldc,
                           mc - ir < MR ? mc - ir : MR, cols, tile_flags);
          }
      }
    }
  }
  // non-temporal stores are weakly ordered: complete them before the caller hands C to another thread
  if (stream) __builtin_ia32_sfence();
}

#undef NR
#undef STREAM_PIECE
#undef STREAM_PIECES
#undef STREAM_SHIFTED
#undef STREAM_ROW
#undef NAME
#undef TARGET
#undef VW
#undef MR
#undef NV
#undef KC
