// The AVX-512 variant of int8_dequantize, which the VNNI kernel calls directly (it only runs
// where the CPU has AVX-512).
#ifndef SENTIMENT_INT8_DEQUANT_INTERNAL_H
#define SENTIMENT_INT8_DEQUANT_INTERNAL_H

#include "int8_dequant.h"

void int8_dequantize_avx512(const int32_t *acc, long ldacc, long r0, long r1, long c0, long c1, const int8_dequant *d);

#endif
