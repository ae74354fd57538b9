// The int8 epilogue (see include/int8_dequant.h). One loop body, compiled for AVX-512, for
// AVX2 + FMA and for plain x86-64: every variant does the same IEEE operations in the same order
// (no fused multiply-add but the stated fmaf), so the result does not depend on which one runs.
#include "int8_dequant.h"
#include "int8_dequant_internal.h"

#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));

enum { ROWS = 6 };   // the VNNI kernel's tile height: one group per tile, one chain per row

#define AI static inline __attribute__((always_inline))

// An unaligned load of 16 lanes, and x in every lane (macros: vector arguments and results
// would change the ABI).
#define LOAD(type, p) ({ type v_; memcpy(&v_, (p), sizeof v_); v_; })
#define SPLAT(x) ((f32x16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x})

// nr (<= ROWS) rows times 16 columns from column c, kept in registers from the dequantization
// through every outlier product (nr independent chains) to one store.
AI void block16(const int32_t *acc, long ldacc, long r, const int nr, long c, const int8_dequant *d) {
    const u32x16 sum = LOAD(u32x16, d->col_sum + c);
    const f32x16 scale = LOAD(f32x16, d->col_scale + c);
    f32x16 v[ROWS];
    for (int i = 0; i < nr; i++) {
        const u32x16 a = LOAD(u32x16, acc + (r + i) * ldacc + c);
        const i32x16 t = (i32x16)(a - sum * (uint32_t)d->row_zero[r + i]);
        v[i] = __builtin_convertvector(t, f32x16) * (d->row_scale[r + i] * scale);
        if (d->bias) v[i] = v[i] + LOAD(f32x16, d->bias + c);
    }
    for (long j = 0; j < d->outlier_count; j++) {
        const f32x16 w = LOAD(f32x16, d->outlier_w + j * d->outlier_ld + c);
        for (int i = 0; i < nr; i++) {
            const float x = d->outlier_x[(r + i) * d->outlier_count + j];
            v[i] = __builtin_elementwise_fma(SPLAT(x), w, v[i]);
        }
    }
    for (int i = 0; i < nr; i++) memcpy(d->out + (r + i) * d->ldo + c, &v[i], sizeof v[i]);
}

// One element: the same operations as a lane of block16.
AI void one(const int32_t *acc, long ldacc, long r, long c, const int8_dequant *d) {
    const int32_t t = (int32_t)((uint32_t)acc[r * ldacc + c] - (uint32_t)d->col_sum[c] * (uint32_t)d->row_zero[r]);
    float v = (float)t * (d->row_scale[r] * d->col_scale[c]);
    if (d->bias) v = v + d->bias[c];
    for (long j = 0; j < d->outlier_count; j++)
        v = fmaf(d->outlier_x[r * d->outlier_count + j], d->outlier_w[j * d->outlier_ld + c], v);
    d->out[r * d->ldo + c] = v;
}

AI void body(const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1, const int8_dequant *d) {
    for (long r = r0; r < r1; r += ROWS) {
        const long nr = r1 - r < ROWS ? r1 - r : ROWS;
        long c = c0;
        for (; c + 16 <= c1; c += 16) {
            switch (nr) {
            case 6: block16(acc, ldacc, r, 6, c, d); break;
            case 5: block16(acc, ldacc, r, 5, c, d); break;
            case 4: block16(acc, ldacc, r, 4, c, d); break;
            case 3: block16(acc, ldacc, r, 3, c, d); break;
            case 2: block16(acc, ldacc, r, 2, c, d); break;
            default: block16(acc, ldacc, r, 1, c, d); break;
            }
        }
        for (long i = r; i < r + nr; i++)
            for (long cc = c; cc < c1; cc++) one(acc, ldacc, i, cc, d);
        if (d->activate) d->activate(d->out + r * d->ldo + c0, d->ldo, nr, c1 - c0);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void int8_dequantize_avx512(
    const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1, const int8_dequant *d) {
    body(acc, ldacc, r0, r1, c0, c1, d);
}

__attribute__((target("avx2,fma"))) static void dequantize_avx2(
    const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1, const int8_dequant *d) {
    body(acc, ldacc, r0, r1, c0, c1, d);
}

static void dequantize_plain(const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1, const int8_dequant *d) {
    body(acc, ldacc, r0, r1, c0, c1, d);
}

int int8_dequantize_best_variant(void) {
    static int cached = -1;   // every thread computes the same
    int best = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (best < 0) {
        __builtin_cpu_init();
        best = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            ? 2 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
        __atomic_store_n(&cached, best, __ATOMIC_RELAXED);
    }
    return best;
}

void int8_dequantize_variant(int variant, const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1,
                             const int8_dequant *d) {
    if (variant >= 2) int8_dequantize_avx512(acc, ldacc, r0, r1, c0, c1, d);
    else if (variant == 1) dequantize_avx2(acc, ldacc, r0, r1, c0, c1, d);
    else dequantize_plain(acc, ldacc, r0, r1, c0, c1, d);
}

void int8_dequantize(const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1, const int8_dequant *d) {
    int8_dequantize_variant(int8_dequantize_best_variant(), acc, ldacc, r0, r1, c0, c1, d);
}
