// The int8 VNNI kernel alone on the batch-1 shapes of the 6 x 384 model, weights hot in cache:
// how close it runs to the CPU's vpdpbusd rate (each one: 16 lanes x 4 u8 x s8 products).
//
//   clang -O2 -I Sources/CKernels/include bench/vnni_peak.c Sources/CKernels/vnni_gemm.c \
//      Sources/CKernels/int8_dequant.c -lm -o /tmp/vnni_peak && /tmp/vnni_peak
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vnni_gemm.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    if (!int8_vnni_available()) {
        printf("skipped: this CPU has no AVX-512 VNNI\n");
        return 0;
    }
    // m x n x k: Q|K|V, attention output, FFN in, FFN out for a 25-token sentence; one [CLS] row.
    const long shapes[][3] = {{25, 1152, 384}, {25, 384, 384}, {25, 1536, 384}, {25, 384, 1536}, {1, 1536, 384}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const long m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        uint8_t *a = malloc(m * k);
        int8_t *w = malloc(n * k), *packed = malloc(n * k);
        int32_t *c = malloc(m * n * sizeof *c);
        for (long i = 0; i < m * k; i++) a[i] = (uint8_t)rand();
        for (long i = 0; i < n * k; i++) w[i] = (int8_t)rand();
        int8_vnni_pack(w, n, k, packed);
        double best = 1e9;
        for (int rep = 0; rep < 30; rep++) {
            const double t = now();
            for (int i = 0; i < 100; i++) int8_vnni_gemm_u8s8s32(a, k, m, packed, k, 0, n, c, n, NULL);
            const double each = (now() - t) / 100;
            if (each < best) best = each;
        }
        printf("%4ld x %4ld x %4ld: %7.2f us, %.2f vpdpbusd per ns\n", m, n, k, best * 1e6, m * n * k / 64.0 / best / 1e9);
        free(a); free(w); free(packed); free(c);
    }
    return 0;
}
