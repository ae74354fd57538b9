/*
 * concurrency: threads against the C API.
 *
 *   concurrency MODEL_DIR TRAIN_TSV
 *
 *   1. 8 threads classify and tokenize on one handle, 25 rounds each; every result equals
 *      the serial one, byte for byte.
 *   2. 3 training runs on separate configs (seeds, output folders) run concurrently; each
 *      result's loss curve equals the same run done alone.
 *   3. Another thread sets a cancel flag while a run trains (logging_steps 1); the callback
 *      returns nonzero when it sees the flag. The run must end within one step of the flag,
 *      return SENTIMENT_CANCELLED, and the checkpoint it saved must load.
 * Prints one line per check; exits 1 if any failed.
 */
#include "testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 25
#define TRAINS 3

static int failed;

static void check(int ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok  " : "FAIL", what);
    failed += !ok;
}

/* ---- 1. classify/tokenize on one handle ---- */

static const char *classify_request = "{\"texts\": [\"a good movie\", \"dull and boring\", \"not very good\", "
                                      "\"great fun!\", \"the film was awful\", \"\", \"it is charming\"], "
                                      "\"batch_size\": 3}";
static const char *tokenize_request = "{\"texts\": [\"A Good Movie, not awful!\", \"charming\"]}";

struct reader {
    sentiment_model *model;
    const char *classified, *tokenized;
    int mismatches;
};

static void *reader_thread(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char *out = NULL;
        if (sentiment_classify(r->model, classify_request, &out) != SENTIMENT_OK || strcmp(out, r->classified))
            r->mismatches++;
        sentiment_string_free(out);
        out = NULL;
        if (sentiment_tokenize(r->model, tokenize_request, &out) != SENTIMENT_OK || strcmp(out, r->tokenized))
            r->mismatches++;
        sentiment_string_free(out);
    }
    return NULL;
}

static void test_readers(const char *model_dir)
{
    char config[4200];
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"max_length\": 64, \"threads\": 1}", model_dir);
    sentiment_model *m = NULL;
    char *classified = NULL, *tokenized = NULL;
    if (sentiment_model_load(config, &m, NULL) != SENTIMENT_OK ||
        sentiment_classify(m, classify_request, &classified) != SENTIMENT_OK ||
        sentiment_tokenize(m, tokenize_request, &tokenized) != SENTIMENT_OK) {
        check(0, "load and classify serially");
        return;
    }
    pthread_t threads[THREADS];
    struct reader readers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        readers[i] = (struct reader){m, classified, tokenized, 0};
        pthread_create(&threads[i], NULL, reader_thread, &readers[i]);
    }
    int mismatches = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        mismatches += readers[i].mismatches;
    }
    char what[160];
    snprintf(what, sizeof what, "%d threads x %d rounds of classify+tokenize on one handle equal the serial results "
             "(%d mismatches)", THREADS, ROUNDS, mismatches);
    check(mismatches == 0, what);
    sentiment_string_free(classified);
    sentiment_string_free(tokenized);
    sentiment_model_free(m);
}

/* ---- 2. concurrent training runs ---- */

struct trainer {
    char config[4600];
    int32_t status;
    char *curve; /* the result's "curve" member, serialized */
};

static char *curve_of(const char *result)
{
    json_object *doc = json_tokener_parse(result ? result : "");
    json_object *curve = member(doc, "curve", json_type_object);
    char *text = curve ? strdup(json_object_to_json_string_ext(curve, JSON_C_TO_STRING_PLAIN)) : NULL;
    json_object_put(doc);
    return text;
}

static void *train_thread(void *arg)
{
    struct trainer *t = arg;
    char *out = NULL;
    t->status = sentiment_train(t->config, NULL, NULL, &out);
    t->curve = curve_of(out);
    sentiment_string_free(out);
    return NULL;
}

static void test_concurrent_trains(const char *model_dir, const char *train_tsv, const char *dir)
{
    struct trainer alone[TRAINS], together[TRAINS];
    for (int i = 0; i < TRAINS; i++) {
        for (int pass = 0; pass < 2; pass++) {
            struct trainer *t = pass ? &together[i] : &alone[i];
            snprintf(t->config, sizeof t->config,
                     "{\"model_dir\": \"%s\", \"train_file\": \"%s\", \"output_dir\": \"%s/run-%d-%d\", "
                     "\"seed\": %d, \"max_steps\": 6, \"train_batch_size\": 4, \"max_length\": 64, \"threads\": 1, "
                     "\"save_strategy\": \"last\", \"learning_rate\": 0.001}",
                     model_dir, train_tsv, dir, pass, i, 7 + i);
            t->curve = NULL;
        }
        train_thread(&alone[i]);
    }
    pthread_t threads[TRAINS];
    for (int i = 0; i < TRAINS; i++)
        pthread_create(&threads[i], NULL, train_thread, &together[i]);
    int same = 1;
    for (int i = 0; i < TRAINS; i++) {
        pthread_join(threads[i], NULL);
        same = same && alone[i].status == SENTIMENT_OK && together[i].status == SENTIMENT_OK && alone[i].curve &&
               together[i].curve && strcmp(alone[i].curve, together[i].curve) == 0;
    }
    same = same && strcmp(alone[0].curve, alone[1].curve) != 0; /* the seeds differ, so must the runs */
    check(same, "3 concurrent training runs on separate configs give the loss curves of the same runs done alone");
    for (int i = 0; i < TRAINS; i++) {
        free(alone[i].curve);
        free(together[i].curve);
    }
}

/* ---- 3. cancel from another thread ---- */

struct cancel {
    atomic_int step;          /* last step event seen */
    atomic_int cancel;        /* set by the controller thread */
    atomic_int step_at_cancel; /* the step the callback had seen when it first saw the flag */
};

static int32_t on_event(const char *event_json, void *user_data)
{
    struct cancel *c = user_data;
    json_object *event = json_tokener_parse(event_json);
    json_object *kind = member(event, "event", json_type_string);
    json_object *step = member(event, "step", json_type_int);
    if (kind && strcmp(json_object_get_string(kind), "step") == 0 && step)
        atomic_store(&c->step, json_object_get_int(step));
    json_object_put(event);
    if (atomic_load(&c->cancel)) {
        int expected = -1;
        atomic_compare_exchange_strong(&c->step_at_cancel, &expected, atomic_load(&c->step));
        return 1;
    }
    return 0;
}

static void *controller(void *arg)
{
    struct cancel *c = arg;
    while (atomic_load(&c->step) < 5)
        usleep(1000);
    atomic_store(&c->cancel, 1);
    return NULL;
}

static void test_cancel(const char *model_dir, const char *train_tsv, const char *dir)
{
    char config[4600], load[4400];
    /* 8 rows in batches of 4: 2 steps per epoch, the checkpoint saved after each. */
    snprintf(config, sizeof config,
             "{\"model_dir\": \"%s\", \"train_file\": \"%s\", \"output_dir\": \"%s/cancelled\", "
             "\"num_train_epochs\": 1000, \"train_batch_size\": 4, \"max_length\": 64, \"threads\": 1, "
             "\"logging_steps\": 1, \"save_strategy\": \"best\"}",
             model_dir, train_tsv, dir);
    struct cancel c;
    atomic_init(&c.step, 0);
    atomic_init(&c.cancel, 0);
    atomic_init(&c.step_at_cancel, -1);
    pthread_t thread;
    pthread_create(&thread, NULL, controller, &c);
    char *out = NULL;
    int32_t status = sentiment_train(config, on_event, &c, &out);
    pthread_join(thread, NULL);
    json_object *doc = json_tokener_parse(out ? out : "");
    json_object *result = member(doc, "result", json_type_object);
    json_object *steps = member(result, "steps", json_type_int);
    int final_steps = steps ? json_object_get_int(steps) : -1;
    int seen = atomic_load(&c.step_at_cancel);
    char what[200];
    snprintf(what, sizeof what, "a cancel flag set by another thread at step %d ends the run at step %d "
             "(status %d %s)", seen, final_steps, status, sentiment_status_string(status));
    check(status == SENTIMENT_CANCELLED && seen >= 5 && final_steps >= seen && final_steps <= seen + 1, what);
    json_object_put(doc);
    sentiment_string_free(out);

    snprintf(load, sizeof load, "{\"model_dir\": \"%s/cancelled\", \"max_length\": 64}", dir);
    sentiment_model *m = NULL;
    out = NULL;
    status = sentiment_model_load(load, &m, &out);
    check(status == SENTIMENT_OK, "the checkpoint saved before the cancel loads");
    sentiment_string_free(out);
    sentiment_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR TRAIN_TSV\n", argv[0]);
        return 2;
    }
    char dir[] = "/tmp/sentiment-concurrency-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    test_readers(argv[1]);
    test_concurrent_trains(argv[1], argv[2], dir);
    test_cancel(argv[1], argv[2], dir);
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    check(system(command) == 0, "remove the temporary folder");
    printf("concurrency: %d failed\n", failed);
    return failed > 0;
}
