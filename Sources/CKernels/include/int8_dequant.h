// The int8 epilogue: s32 products to floats (see Sources/SentimentCore/Kernels/QuantizedLinear.swift
// for the scheme). One implementation, used by the VNNI kernel on each register tile as it
// finishes and on whole products from oneDNN's matmul, so the two give bit-identical floats.
#ifndef SENTIMENT_INT8_DEQUANT_H
#define SENTIMENT_INT8_DEQUANT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What turns row r, column c of an int8 layer's s32 products into its float output:
///   out[r, c] = (float)(acc[r, c] - row_zero[r] * col_sum[c]) * (row_scale[r] * col_scale[c]) + bias[c]
/// (no bias term when `bias` is NULL; the integer part wraps in 32 bits, no multiply-add is
/// fused), then, for j = 0, 1, ..., outlier_count - 1 in order,
///   out[r, c] = fmaf(outlier_x[r * outlier_count + j], outlier_w[j * outlier_ld + c], out[r, c])
/// (the fp32 input channels of a calibrated layer), then `activate` (if not NULL) on each block
/// of out just written, while it is in cache: `rows` rows of `cols` floats from `out`, row
/// stride `ldo`. Row pointers start at row 0 of the call's rows, column pointers at column 0 of
/// the layer.
typedef struct int8_dequant {
    const float *row_scale;
    const int32_t *row_zero;
    const float *col_scale;
    const int32_t *col_sum;
    const float *bias;
    const float *outlier_x;
    const float *outlier_w;
    long outlier_count, outlier_ld;
    float *out;
    long ldo;
    void (*activate)(float *out, long ldo, long rows, long cols);
} int8_dequant;

/// Applies `d` to rows r0..<r1 and columns c0..<c1 of `acc` (row stride ldacc), on the best
/// variant this CPU runs.
void int8_dequantize(const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1, const int8_dequant *d);

/// The variants, which give the same bits: 2 AVX-512, 1 AVX2 + FMA, 0 plain x86-64. The best
/// one this CPU runs, and int8_dequantize on a given one (for tests: the CPU must run it).
int int8_dequantize_best_variant(void);
void int8_dequantize_variant(int variant, const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1,
                             const int8_dequant *d);

#ifdef __cplusplus
}
#endif

#endif
