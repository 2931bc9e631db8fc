// SHA-256 block compression with the x86 SHA extensions (sha256rnds2, sha256msg1, sha256msg2), chosen at run time:
// `bp_sha256_blocks` returns 0 without touching the state when the CPU lacks them (TensorCore's Swift `SHA256`
// then compresses the blocks itself; that Swift code is this kernel's reference twin, and the tests compare the
// two on random inputs). Written from the instructions' definitions in Intel's SDM: the eight state words live in
// two registers as ABEF and CDGH, each sha256rnds2 does two rounds with the low two words of its message operand.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

static const uint32_t round_constants[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

__attribute__((target("sha,sse4.1,ssse3")))
static void compress_sha_ni(uint32_t state[8], const uint8_t *data, size_t blocks) {
  // big-endian words: reverse the bytes of each 32-bit lane
  const __m128i byteswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
  // state[0..3] = a b c d, state[4..7] = e f g h (lane 0 first) → ABEF = (f e b a) and CDGH = (h g d c) lane 0 first
  __m128i dcba = _mm_loadu_si128((const __m128i *)&state[0]);
  __m128i hgfe = _mm_loadu_si128((const __m128i *)&state[4]);
  __m128i badc = _mm_shuffle_epi32(dcba, 0xB1);  // lanes b a d c
  __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);  // lanes h g f e
  __m128i abef = _mm_alignr_epi8(badc, efgh, 8); // lanes f e b a
  __m128i cdgh = _mm_blend_epi16(efgh, badc, 0xF0);  // lanes h g d c
  for (; blocks > 0; blocks--, data += 64) {
    const __m128i abef0 = abef, cdgh0 = cdgh;
    __m128i m[4];
    for (int i = 0; i < 4; i++) m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), byteswap);
    for (int r = 0; r < 16; r++) {  // rounds 4r ..< 4r + 4
      const __m128i cur = m[r & 3];
      __m128i msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&round_constants[4 * r]));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
      if (r >= 3 && r <= 14) {
        // words 4(r+1) ..< 4(r+1) + 4: finish σ₀ (msg1, applied three groups ago) with W[t−7] and σ₁
        __m128i *next = &m[(r + 1) & 3];
        *next = _mm_add_epi32(*next, _mm_alignr_epi8(cur, m[(r + 3) & 3], 4));
        *next = _mm_sha256msg2_epu32(*next, cur);
      }
      msg = _mm_shuffle_epi32(msg, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, msg);
      if (r >= 1 && r <= 12) m[(r - 1) & 3] = _mm_sha256msg1_epu32(m[(r - 1) & 3], cur);
    }
    abef = _mm_add_epi32(abef, abef0);
    cdgh = _mm_add_epi32(cdgh, cdgh0);
  }
  // back to a b c d / e f g h
  __m128i feba = _mm_shuffle_epi32(abef, 0x1B);  // lanes a b e f
  __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);  // lanes g h c d
  dcba = _mm_blend_epi16(feba, dchg, 0xF0);      // lanes a b c d
  hgfe = _mm_alignr_epi8(dchg, feba, 8);         // lanes e f g h
  _mm_storeu_si128((__m128i *)&state[0], dcba);
  _mm_storeu_si128((__m128i *)&state[4], hgfe);
}

int bp_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
  static int available = -1;
  if (available < 0) available = (bp_cpu_features() & BP_CPU_SHA) != 0;
  if (!available) return 0;
  compress_sha_ni(state, data, blocks);
  return 1;
}
#else
int bp_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
  (void)state; (void)data; (void)blocks;
  return 0;
}
#endif
