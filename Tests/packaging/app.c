/* Built by test_install_prefix.py with only `cc app.c $(pkg-config --cflags --libs sentiment)`:
 * loads the model in argv[1] and classifies one text through the installed library. */
#include <sentiment.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char request[4096];
    snprintf(request, sizeof request, "{\"model_dir\": \"%s\", \"threads\": 1}", argv[1]);
    sentiment_model *model = NULL;
    char *out = NULL;
    int32_t status = sentiment_model_load(request, &model, &out);
    if (status != SENTIMENT_OK) {
        fprintf(stderr, "%s\n", out ? out : "no document");
        sentiment_string_free(out);
        return status;
    }
    sentiment_string_free(out);
    status = sentiment_classify(model, "{\"texts\": [\"a charming journey\"]}", &out);
    puts(out ? out : "");
    sentiment_string_free(out);
    sentiment_model_free(model);
    printf("abi %d\n", sentiment_abi_version());
    return status;
}
