/* libFuzzer target: the input is config.json of a checkpoint folder; load it (then tokenize and classify). */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_file("config.json", data, size);
}
