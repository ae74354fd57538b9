/*
 * cycles: N load/info/tokenize/classify/evaluate/free cycles (each with a few error paths),
 * a save, and a short train, for valgrind's leak check (scripts/leaks.sh).
 *
 *   cycles MODEL_DIR TRAIN_TSV N
 *
 * Everything it allocates is freed, so what valgrind reports as lost belongs to the library.
 * Exits 1 if any call does not return the expected status.
 */
#include "testlib.h"

#include <unistd.h>

static int failures;

static void check(const char *what, int32_t status, int32_t expected, char *out)
{
    if (status != expected) {
        fprintf(stderr, "%s: status %d, expected %d: %s\n", what, status, expected, out ? out : "");
        failures++;
    }
    sentiment_string_free(out);
}

/* Calls `call` (which stores into `out`), then checks its status and frees `out`. */
#define EXPECT(what, expected, call)                                                                                   \
    do {                                                                                                               \
        out = NULL;                                                                                                    \
        int32_t status_ = (call);                                                                                      \
        check(what, status_, expected, out);                                                                           \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL_DIR TRAIN_TSV N\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[3]);
    char config[4200];
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"max_length\": 64, \"threads\": 1}", argv[1]);
    for (int i = 0; i < n; i++) {
        sentiment_model *m = NULL;
        char *out;
        EXPECT("load", SENTIMENT_OK, sentiment_model_load(config, &m, &out));
        EXPECT("info", SENTIMENT_OK, sentiment_model_info(m, &out));
        EXPECT("tokenize", SENTIMENT_OK, sentiment_tokenize(m, "{\"texts\": [\"a good movie\", \"\"]}", &out));
        EXPECT("classify", SENTIMENT_OK,
               sentiment_classify(m, "{\"texts\": [\"a good movie\", \"dull and boring\"]}", &out));
        EXPECT("evaluate", SENTIMENT_OK,
               sentiment_evaluate(m, "{\"texts\": [\"fun\", \"awful\"], \"labels\": [2, 0]}", NULL, NULL, &out));
        EXPECT("classify(bad JSON)", SENTIMENT_INVALID_ARGUMENT, sentiment_classify(m, "{\"texts\": [", &out));
        EXPECT("classify(unknown key)", SENTIMENT_INVALID_ARGUMENT,
               sentiment_classify(m, "{\"texts\": [], \"x\": 1}", &out));
        EXPECT("load(out_model NULL)", SENTIMENT_MISUSE,
               sentiment_model_load("{\"model_dir\": \"/nonexistent\"}", NULL, &out));
        sentiment_model_free(m);
        EXPECT("info(stale)", SENTIMENT_MISUSE, sentiment_model_info(m, &out));
    }

    char dir[] = "/tmp/sentiment-cycles-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    sentiment_model *m = NULL;
    char *out, request[4200];
    EXPECT("load", SENTIMENT_OK, sentiment_model_load(config, &m, &out));
    snprintf(request, sizeof request, "{\"output_dir\": \"%s/saved\"}", dir);
    EXPECT("save", SENTIMENT_OK, sentiment_model_save(m, request, &out));
    sentiment_model_free(m);
    snprintf(request, sizeof request,
             "{\"model_dir\": \"%s\", \"train_file\": \"%s\", \"eval_file\": \"%s\", \"output_dir\": \"%s/trained\", "
             "\"max_steps\": 3, \"train_batch_size\": 4, \"max_length\": 64, \"threads\": 1, \"logging_steps\": 1}",
             argv[1], argv[2], argv[2], dir);
    EXPECT("train", SENTIMENT_OK, sentiment_train(request, NULL, NULL, &out));
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0)
        failures++;
    printf("cycles: %d load/classify/free cycles, a save and a 3-step train, %d failures\n", n, failures);
    return failures > 0;
}
