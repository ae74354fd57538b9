// AVX-512 VNNI u8 x s8 -> s32 GEMM (see include/vnni_gemm.h for the packed layout).
//
// Register tile: MR (<= 6) rows of a times NR (<= 4) blocks of 16 output columns, 24 zmm
// accumulators. Per group of 4 inputs: NR 64-byte weight loads, MR 4-byte broadcasts of a, and
// MR * NR vpdpbusd (each 16 columns x 4 products, u8 * s8 summed into s32 without saturation).
// Compiled for VNNI through function attributes, so the rest of the library keeps its -march.
#include "vnni_gemm.h"
#include "int8_dequant_internal.h"

#include <immintrin.h>
#include <string.h>

#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

enum { MR = 6, NR = 4, BLOCK = 16, KC_GROUPS = 64 };

int int8_vnni_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vnni");
}

void int8_vnni_pack(const int8_t *w, long n, long k, int8_t *packed) {
    for (long b = 0; b < n / BLOCK; b++)
        for (long g = 0; g < k / 4; g++)
            for (long c = 0; c < BLOCK; c++)
                memcpy(packed + b * BLOCK * k + g * 64 + c * 4, w + (b * BLOCK + c) * k + g * 4, 4);
}

void int8_vnni_unpack(const int8_t *packed, long n, long k, int8_t *w) {
    for (long b = 0; b < n / BLOCK; b++)
        for (long g = 0; g < k / 4; g++)
            for (long c = 0; c < BLOCK; c++)
                memcpy(w + (b * BLOCK + c) * k + g * 4, packed + b * BLOCK * k + g * 64 + c * 4, 4);
}

// One mr x (nr * 16) tile of c over all of k. mr and nr are constants at every call site, so the
// loops unroll and the accumulators stay in registers.
static inline __attribute__((always_inline)) VNNI_TARGET void tile(
    const uint8_t *a, long lda, const int8_t *w, long k, long g0, long g1, int32_t *c, long ldc, const int mr, const int nr) {
    __m512i acc[MR][NR];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            acc[i][j] = g0 == 0 ? _mm512_setzero_si512() : _mm512_loadu_si512((const void *)(c + i * ldc + j * BLOCK));
    const long blockStride = BLOCK * k;
    for (long g = g0; g < g1; g++) {
        __m512i wv[NR];
        for (int j = 0; j < nr; j++) wv[j] = _mm512_loadu_si512((const void *)(w + j * blockStride + g * 64));
        for (int i = 0; i < mr; i++) {
            int32_t four;
            memcpy(&four, a + i * lda + g * 4, 4);
            const __m512i x = _mm512_set1_epi32(four);
            for (int j = 0; j < nr; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x, wv[j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) _mm512_storeu_si512((void *)(c + i * ldc + j * BLOCK), acc[i][j]);
}

#define TILE_ROWS(MRV)                                               \
    switch (nr) {                                                    \
    case 4: tile(a, lda, w, k, g0, g1, c, ldc, MRV, 4); break;       \
    case 3: tile(a, lda, w, k, g0, g1, c, ldc, MRV, 3); break;       \
    case 2: tile(a, lda, w, k, g0, g1, c, ldc, MRV, 2); break;       \
    default: tile(a, lda, w, k, g0, g1, c, ldc, MRV, 1); break;      \
    }

static VNNI_TARGET void tileDispatch(
    const uint8_t *a, long lda, const int8_t *w, long k, long g0, long g1, int32_t *c, long ldc, int mr, int nr) {
    switch (mr) {
    case 6: TILE_ROWS(6) break;
    case 5: TILE_ROWS(5) break;
    case 4: TILE_ROWS(4) break;
    case 3: TILE_ROWS(3) break;
    case 2: TILE_ROWS(2) break;
    default: TILE_ROWS(1) break;
    }
}

VNNI_TARGET void int8_vnni_gemm_u8s8s32(const uint8_t *a, long lda, long m, const int8_t *packed, long k,
                                        long n0, long n1, int32_t *c, long ldc, const int8_dequant *d) {
    if (m <= 0 || k <= 0 || n1 <= n0) return;
    const long groups = k / 4;
    // Many rows: blocks of 256 inputs, so a 64-column weight panel (16 KB) stays in L1 across the
    // row tiles. Few rows: the panel is used by few tiles anyway; one pass over k saves reloading c.
    const long step = m >= 4 * MR ? KC_GROUPS : groups;
    for (long g0 = 0; g0 < groups; g0 += step) {
        const long g1 = g0 + step < groups ? g0 + step : groups;
        for (long n = n0; n < n1; n += NR * BLOCK) {
            const long left = (n1 - n) / BLOCK;
            const int nr = left < NR ? (int)left : NR;
            const int8_t *w = packed + n * k;
            // The next panel's fp32 outlier weights (a few rows of a wide matrix, which the
            // hardware prefetchers do not follow) start to load while this panel computes.
            if (d && g1 == groups && n + NR * BLOCK < n1)
                for (long j = 0; j < d->outlier_count; j++)
                    for (long l = 0; l < NR * BLOCK; l += 16)
                        _mm_prefetch((const char *)(d->outlier_w + j * d->outlier_ld + n + NR * BLOCK + l), _MM_HINT_T0);
            // ceil(m / MR) row tiles of balanced heights (25 rows: 5 x 5, not 4 x 6 + 1).
            const long tiles = (m + MR - 1) / MR, base = m / tiles, taller = m % tiles;
            for (long t = 0, i = 0; t < tiles; t++) {
                const int mr = (int)(base + (t < taller ? 1 : 0));
                tileDispatch(a + i * lda, lda, w, k, g0, g1, c + i * ldc + n, ldc, mr, nr);
                // The tile's products are final and in L1: turn them into floats now.
                if (d && g1 == groups) int8_dequantize_avx512(c, ldc, i, i + mr, n, n + nr * BLOCK, d);
                i += mr;
            }
        }
    }
}
