/* libFuzzer target: the input is vocab.txt of a checkpoint folder; load it (then tokenize and classify). */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_file("vocab.txt", data, size);
}
