// float32 -> bf16 rounding (nearest, ties to even; NaN stays NaN) for the bf16 matmul operands.
#ifndef SENTIMENT_BF16_CONVERT_H
#define SENTIMENT_BF16_CONVERT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// dst[i] = bf16(src[i]) for i < n. Uses AVX512-BF16's vcvtne2ps2bf16 where the CPU has it (which
/// treats denormal inputs as zero), else the same rounding in plain C (which keeps them).
void bf16_from_f32(const float *src, long n, uint16_t *dst);

#ifdef __cplusplus
}
#endif

#endif
