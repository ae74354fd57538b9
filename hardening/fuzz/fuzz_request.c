/* libFuzzer target: the input is a JSON request, given to every function that takes one
 * (load, tokenize, classify, evaluate, train). Only reads files: save is left out. */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *request = fuzz_cstring(data, size);
    if (!request)
        return 0;
    char *out = NULL;
    sentiment_model *m = NULL;
    drop(sentiment_model_load(request, &m, &out), out);
    sentiment_model_free(m);
    out = NULL;
    drop(sentiment_tokenize(fuzz_model, request, &out), out);
    out = NULL;
    drop(sentiment_classify(fuzz_model, request, &out), out);
    out = NULL;
    drop(sentiment_evaluate(fuzz_model, request, NULL, NULL, &out), out);
    out = NULL;
    drop(sentiment_train(request, NULL, NULL, &out), out);
    free(request);
    return 0;
}
