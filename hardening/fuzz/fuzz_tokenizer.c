/* libFuzzer target: the input is one text (any bytes, invalid UTF-8 included) placed in a
 * JSON string as is (only '"', '\\' and control bytes escaped); tokenize and classify it. */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *request = malloc(6 * size + 64);
    if (!request)
        return 0;
    size_t n = (size_t)sprintf(request, "{\"texts\": [\"");
    for (size_t i = 0; i < size; i++) {
        uint8_t b = data[i];
        if (b == '"' || b == '\\')
            n += (size_t)sprintf(request + n, "\\%c", b);
        else if (b < 0x20)
            n += (size_t)sprintf(request + n, "\\u%04x", b);
        else
            request[n++] = (char)b;
    }
    strcpy(request + n, "\"]}");
    char *out = NULL;
    drop(sentiment_tokenize(fuzz_model, request, &out), out);
    out = NULL;
    drop(sentiment_classify(fuzz_model, request, &out), out);
    free(request);
    return 0;
}
