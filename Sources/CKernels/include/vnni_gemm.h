// u8 x s8 -> s32 GEMM for int8 inference on AVX-512 VNNI (vpdpbusd), for the small-M shapes of
// batch-1 and short batched calls, where oneDNN's dnnl_gemm_u8s8s32 loses most of its speed.
//
// Weights are packed once ("VNNI layout"): W[N, K] (int8, row-major, Hugging Face [out, in]) is
// cut into blocks of 16 rows; block b holds, for every group of 4 inputs g, the 64 bytes
//   packed[b * 16 * K + g * 64 + c * 4 + j] = W[b * 16 + c, g * 4 + j]    (c < 16, j < 4).
// Rows r..<r+16t of the packed matrix therefore start at packed + r * K, as in row-major order, so
// row ranges that start at a multiple of 16 (Q, K, V of a fused matrix) are plain pointer offsets.
// Requires N % 16 == 0 and K % 4 == 0.
#ifndef SENTIMENT_VNNI_GEMM_H
#define SENTIMENT_VNNI_GEMM_H

#include <stdint.h>

#include "int8_dequant.h"

#ifdef __cplusplus
extern "C" {
#endif

/// 1 if this CPU runs the kernel (AVX-512 F/BW and VNNI), else 0.
int int8_vnni_available(void);

/// packed (n * k bytes) = the VNNI layout of w[n, k]; n % 16 == 0, k % 4 == 0.
void int8_vnni_pack(const int8_t *w, long n, long k, int8_t *packed);

/// w[n, k] = the row-major matrix of packed (the inverse of int8_vnni_pack).
void int8_vnni_unpack(const int8_t *packed, long n, long k, int8_t *w);

/// c[i, j] = sum_k a[i, k] * W[j, k] (exact, no saturation) for i < m and n0 <= j < n1, where
/// a is u8 [m, k] with row stride lda, W is `packed` (all of its rows), c is s32 with row stride
/// ldc. n0 and n1 are multiples of 16; k % 4 == 0 and k * 255 * 127 < 2^31; empty ranges do
/// nothing. With `d`, each tile of c is dequantized (int8_dequantize) into d->out as soon as it
/// is final, while it is in cache; c is then scratch. Single-threaded: callers split [0, n) or
/// [0, m) over threads. Only call when int8_vnni_available() is 1.
void int8_vnni_gemm_u8s8s32(const uint8_t *a, long lda, long m, const int8_t *packed, long k,
                            long n0, long n1, int32_t *c, long ldc, const int8_dequant *d);

#ifdef __cplusplus
}
#endif

#endif
