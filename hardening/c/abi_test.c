/*
 * abi_test: checks the C ABI contract of include/sentiment.h against the built library.
 *
 *   abi_test MODEL_DIR
 *
 * Training runs a few steps on a small temporary TSV (nothing is kept).
 * Prints one line per check ("ok" or "FAIL") and finally "N passed, M failed";
 * exits with status 1 if any check failed. Everything it allocates is freed, so
 * `valgrind --leak-check=full ./abi_test MODEL_DIR` shows the library's own leaks.
 */
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <sentiment.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define THREADS 8
#define ROUNDS 3 /* classify calls per thread */

static int passed, failed;

static int check(int ok, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    printf("%s - ", ok ? "ok  " : "FAIL");
    vprintf(format, args);
    putchar('\n');
    va_end(args);
    if (ok)
        passed++;
    else
        failed++;
    return ok;
}

/* ---------------------------------------------------------------------------------------
 * JSON helpers */

static json_object *member(json_object *o, const char *key, json_type type)
{
    json_object *value;
    if (!o || !json_object_object_get_ex(o, key, &value) || !json_object_is_type(value, type))
        return NULL;
    return value;
}

static int is_number(json_object *o)
{
    return o && (json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int));
}

/* Whether out_json is {"error": {"status": status, "code": "...", "message": "...", ["field": ...]}},
 * with "field" equal to `field` when that is not NULL. */
static int is_error_document(const char *out_json, int32_t status, const char *field)
{
    if (!out_json)
        return 0;
    json_object *doc = json_tokener_parse(out_json);
    json_object *error = member(doc, "error", json_type_object);
    json_object *got_status = member(error, "status", json_type_int);
    json_object *code = member(error, "code", json_type_string);
    json_object *message = member(error, "message", json_type_string);
    json_object *got_field = member(error, "field", json_type_string);
    int ok = got_status && json_object_get_int64(got_status) == status && code &&
             json_object_get_string_len(code) > 0 && message && json_object_get_string_len(message) > 0 &&
             (!field || (got_field && strcmp(json_object_get_string(got_field), field) == 0));
    json_object_put(doc);
    return ok;
}

/* The helpers below take the call's status and the address of its out_json, read
 * *out_json only in their body (after the call has run), then free it and reset it to NULL:
 *     expect_error("what", sentiment_classify(model, request, &out), &out, ...);          */

/* Checks that a call failed with status `expected` (or `alternative`, if not -1) and
 * stored a matching error document naming `field` (when not NULL). */
static void expect_error(const char *what, int32_t status, char **out, int32_t expected, int32_t alternative,
                         const char *field)
{
    char *out_json = *out;
    int ok = (status == expected || status == alternative) && is_error_document(out_json, status, field);
    check(ok, "%s -> %d %s", what, status, sentiment_status_string(status));
    if (!ok)
        printf("       out_json: %s\n", out_json ? out_json : "NULL");
    sentiment_string_free(out_json);
    *out = NULL;
}

/* Checks that a call succeeded with a JSON object document; returns the parsed document
 * (to json_object_put) or NULL. */
static json_object *expect_ok(const char *what, int32_t status, char **out)
{
    char *out_json = *out;
    json_object *doc = out_json ? json_tokener_parse(out_json) : NULL;
    int ok = status == SENTIMENT_OK && doc && json_object_is_type(doc, json_type_object);
    check(ok, "%s -> %d %s", what, status, sentiment_status_string(status));
    if (!ok) {
        printf("       out_json: %s\n", out_json ? out_json : "NULL");
        json_object_put(doc);
        doc = NULL;
    }
    sentiment_string_free(out_json);
    *out = NULL;
    return doc;
}

static char *load_config(const char *model_dir, const char *extra_key, json_object *extra_value)
{
    json_object *config = json_object_new_object();
    json_object_object_add(config, "model_dir", json_object_new_string(model_dir));
    if (extra_key)
        json_object_object_add(config, extra_key, extra_value);
    char *text = strdup(json_object_to_json_string_ext(config, JSON_FLAGS));
    json_object_put(config);
    return text;
}

/* ---------------------------------------------------------------------------------------
 * Checks without a model */

static void test_static_functions(void)
{
    check(sentiment_abi_version() == SENTIMENT_ABI_VERSION, "sentiment_abi_version() == %d (got %d)",
          SENTIMENT_ABI_VERSION, sentiment_abi_version());
    const char *version = sentiment_version();
    check(version && version[0], "sentiment_version() = \"%s\"", version ? version : "NULL");
    for (int32_t status = SENTIMENT_OK; status <= SENTIMENT_INTERNAL; status++) {
        const char *text = sentiment_status_string(status);
        check(text && text[0], "sentiment_status_string(%d) = \"%s\"", status, text ? text : "NULL");
    }
    const int32_t out_of_range[] = {-1, 10, 1000, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        const char *text = sentiment_status_string(out_of_range[i]);
        check(text != NULL, "sentiment_status_string(%d) = \"%s\"", out_of_range[i], text ? text : "NULL");
    }
    sentiment_string_free(NULL);
    check(1, "sentiment_string_free(NULL) returns");
    sentiment_model_free(NULL);
    check(1, "sentiment_model_free(NULL) returns");
}

static void test_load_errors(const char *model_dir)
{
    sentiment_model *model = (sentiment_model *)&model; /* not NULL: load must reset it */
    char *out = NULL;
    int32_t status = sentiment_model_load(NULL, &model, &out);
    check(model == NULL, "load(config_json NULL) sets *out_model to NULL");
    expect_error("load(config_json NULL)", status, &out, SENTIMENT_MISUSE, SENTIMENT_INVALID_ARGUMENT, NULL);

    char *config = load_config(model_dir, NULL, NULL);
    status = sentiment_model_load(config, NULL, &out);
    expect_error("load(out_model NULL)", status, &out, SENTIMENT_MISUSE, -1, NULL);

    status = sentiment_model_load("{", &model, NULL);
    check(status == SENTIMENT_INVALID_ARGUMENT && model == NULL, "load(malformed JSON, out_json NULL) -> %d %s",
          status, sentiment_status_string(status));

    status = sentiment_model_load(config, &model, NULL);
    check(status == SENTIMENT_OK && model != NULL, "load(valid config, out_json NULL) -> %d %s", status,
          sentiment_status_string(status));
    sentiment_model_free(model);
    free(config);

    static const char *malformed[] = {"", "{", "{\"model_dir\": }", "[]", "\"model_dir\"", "null", "{} {}",
                                      "{\"model_dir\": \"a\", \"model_dir\": \"b\"}"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "load(%s)", malformed[i]);
        status = sentiment_model_load(malformed[i], &model, &out);
        expect_error(what, status, &out, SENTIMENT_INVALID_ARGUMENT, -1, NULL);
    }

    config = load_config(model_dir, "bogus_key", json_object_new_int(1));
    status = sentiment_model_load(config, &model, &out);
    expect_error("load(unknown key \"bogus_key\")", status, &out, SENTIMENT_INVALID_ARGUMENT, -1, "bogus_key");
    free(config);

    config = load_config(model_dir, "max_length", json_object_new_string("128"));
    status = sentiment_model_load(config, &model, &out);
    expect_error("load(max_length as a string)", status, &out, SENTIMENT_INVALID_ARGUMENT, -1, "max_length");
    free(config);

    config = load_config("/nonexistent/sentiment-model", NULL, NULL);
    status = sentiment_model_load(config, &model, &out);
    expect_error("load(nonexistent model_dir)", status, &out, SENTIMENT_IO, -1, "model_dir");
    free(config);
}

/* ---------------------------------------------------------------------------------------
 * Checks on a loaded model */

static void test_null_arguments(sentiment_model *model)
{
    const char *texts = "{\"texts\": [\"a charming journey\"]}";
    const char *bad_key = "{\"texts\": [\"a\"], \"bogus_key\": 1}";
    char *out = NULL;

    expect_error("info(model NULL)", sentiment_model_info(NULL, &out), &out, SENTIMENT_MISUSE, -1, NULL);
    check(sentiment_model_info(model, NULL) == SENTIMENT_OK, "info(out_json NULL) -> OK");

    expect_error("tokenize(model NULL)", sentiment_tokenize(NULL, texts, &out), &out, SENTIMENT_MISUSE, -1, NULL);
    expect_error("tokenize(request_json NULL)", sentiment_tokenize(model, NULL, &out), &out, SENTIMENT_MISUSE,
                 SENTIMENT_INVALID_ARGUMENT, NULL);
    check(sentiment_tokenize(model, texts, NULL) == SENTIMENT_OK, "tokenize(out_json NULL) -> OK");
    check(sentiment_tokenize(model, bad_key, NULL) == SENTIMENT_INVALID_ARGUMENT,
          "tokenize(unknown key, out_json NULL) -> INVALID_ARGUMENT");

    expect_error("classify(model NULL)", sentiment_classify(NULL, texts, &out), &out, SENTIMENT_MISUSE, -1, NULL);
    expect_error("classify(request_json NULL)", sentiment_classify(model, NULL, &out), &out, SENTIMENT_MISUSE,
                 SENTIMENT_INVALID_ARGUMENT, NULL);
    check(sentiment_classify(model, texts, NULL) == SENTIMENT_OK, "classify(out_json NULL) -> OK");
    check(sentiment_classify(model, bad_key, NULL) == SENTIMENT_INVALID_ARGUMENT,
          "classify(unknown key, out_json NULL) -> INVALID_ARGUMENT");

    const char *labeled = "{\"texts\": [\"a charming journey\"], \"labels\": [1]}";
    expect_error("evaluate(model NULL)", sentiment_evaluate(NULL, labeled, NULL, NULL, &out), &out, SENTIMENT_MISUSE,
                 -1, NULL);
    expect_error("evaluate(request_json NULL)", sentiment_evaluate(model, NULL, NULL, NULL, &out), &out,
                 SENTIMENT_MISUSE, SENTIMENT_INVALID_ARGUMENT, NULL);
    check(sentiment_evaluate(model, labeled, NULL, NULL, NULL) == SENTIMENT_OK,
          "evaluate(callback, user_data and out_json NULL) -> OK");
    check(sentiment_evaluate(model, bad_key, NULL, NULL, NULL) == SENTIMENT_INVALID_ARGUMENT,
          "evaluate(unknown key, out_json NULL) -> INVALID_ARGUMENT");

    const char *save = "{\"output_dir\": \"/nonexistent/sentiment-out\", \"bogus_key\": 1}";
    expect_error("save(model NULL)", sentiment_model_save(NULL, save, &out), &out, SENTIMENT_MISUSE, -1, NULL);
    expect_error("save(config_json NULL)", sentiment_model_save(model, NULL, &out), &out, SENTIMENT_MISUSE,
                 SENTIMENT_INVALID_ARGUMENT, NULL);
    check(sentiment_model_save(model, save, NULL) == SENTIMENT_INVALID_ARGUMENT,
          "save(unknown key, out_json NULL) -> INVALID_ARGUMENT");
}

static void test_bad_requests(sentiment_model *model)
{
    static const struct {
        const char *request;
        const char *field; /* expected "field", or NULL for any */
    } cases[] = {
        {"{\"texts\": [\"a\"]", NULL},
        {"not json", NULL},
        {"{\"texts\": [\"a\"], \"bogus_key\": 1}", "bogus_key"},
        {"{\"texts\": \"a single string\"}", "texts"},
        {"{\"texts\": [1, 2]}", "texts"},
        {"{\"texts\": [\"a\"], \"batch_size\": 0}", "batch_size"},
        {"{\"texts\": [\"a\"], \"batch_size\": \"8\"}", "batch_size"},
        {"{\"texts\": [\"a\"], \"batch_size\": 1.5}", "batch_size"},
        {"{}", "texts"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "classify(%s)", cases[i].request);
        char *out = NULL;
        int32_t status = sentiment_classify(model, cases[i].request, &out);
        expect_error(what, status, &out, SENTIMENT_INVALID_ARGUMENT, -1, cases[i].field);
    }

    /* Invalid UTF-8 inside a JSON string: rejected or replaced, never a crash. */
    char *out = NULL;
    int32_t status = sentiment_classify(model, "{\"texts\": [\"bad \xff\xfe bytes \xc3\"]}", &out);
    int ok = status == SENTIMENT_OK ? out != NULL : is_error_document(out, status, NULL);
    check(ok && (status == SENTIMENT_OK || status == SENTIMENT_INVALID_ARGUMENT),
          "classify(invalid UTF-8) -> %d %s", status, sentiment_status_string(status));
    sentiment_string_free(out);
    out = NULL;

    status = sentiment_evaluate(model, "{\"texts\": [\"a\", \"b\"], \"labels\": [1]}", NULL, NULL, &out);
    expect_error("evaluate(2 texts, 1 label)", status, &out, SENTIMENT_INVALID_ARGUMENT, -1, NULL);
    status = sentiment_evaluate(model, "{\"data_file\": \"/nonexistent/dev.tsv\"}", NULL, NULL, &out);
    expect_error("evaluate(nonexistent data_file)", status, &out, SENTIMENT_IO, -1, NULL);
}

/* Checks a classify result document for n texts; returns 1 if well-formed. */
static int check_results(json_object *doc, size_t n)
{
    json_object *results = member(doc, "results", json_type_array);
    if (!check(results && json_object_array_length(results) == n, "classify returns %zu results", n))
        return 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(results, i);
        json_object *label = member(r, "label", json_type_string);
        json_object *label_id = member(r, "label_id", json_type_int);
        json_object *score = NULL;
        json_object_object_get_ex(r, "score", &score);
        json_object *probabilities = member(r, "probabilities", json_type_array);
        json_object *logits = member(r, "logits", json_type_array);
        if (!label || !label_id || !is_number(score) || !probabilities || !logits ||
            json_object_array_length(probabilities) != json_object_array_length(logits) ||
            json_object_array_length(logits) < 2) {
            ok = 0;
            continue;
        }
        size_t labels = json_object_array_length(logits);
        size_t best = 0;
        double sum = 0, max = -INFINITY, best_logit = -INFINITY;
        for (size_t k = 0; k < labels; k++) {
            json_object *p = json_object_array_get_idx(probabilities, k);
            json_object *z = json_object_array_get_idx(logits, k);
            if (!is_number(p) || !is_number(z)) {
                ok = 0;
                break;
            }
            sum += json_object_get_double(p);
            if (json_object_get_double(p) > max)
                max = json_object_get_double(p);
            if (json_object_get_double(z) > best_logit) {
                best_logit = json_object_get_double(z);
                best = k;
            }
        }
        ok = ok && fabs(sum - 1) < 1e-4 && fabs(json_object_get_double(score) - max) < 1e-6 &&
             (size_t)json_object_get_int64(label_id) == best;
    }
    check(ok, "each result has label, label_id = argmax(logits), score = max(probabilities), sum(probabilities) = 1");
    return ok;
}

static void test_round_trip(sentiment_model *model)
{
    char *out = NULL;
    json_object *info = expect_ok("info", sentiment_model_info(model, &out), &out);
    json_object *labels = member(info, "labels", json_type_array);
    check(labels && json_object_array_length(labels) >= 2, "info has labels");
    json_object_put(info);

    json_object *tokens = expect_ok("tokenize", sentiment_tokenize(model, "{\"texts\": [\"Hello, world!\"]}", &out),
                                    &out);
    json_object *ids = member(tokens, "input_ids", json_type_array);
    json_object *first = ids ? json_object_array_get_idx(ids, 0) : NULL;
    size_t n = first && json_object_is_type(first, json_type_array) ? json_object_array_length(first) : 0;
    check(n >= 2 && json_object_get_int(json_object_array_get_idx(first, 0)) == 101 &&
              json_object_get_int(json_object_array_get_idx(first, n - 1)) == 102,
          "tokenize gives [CLS]=101 first and [SEP]=102 last");
    json_object_put(tokens);

    const char *request = "{\"texts\": [\"it's a charming and often affecting journey.\", "
                          "\"unflinchingly bleak and desperate\", \"\"], \"batch_size\": 2}";
    json_object *doc = expect_ok("classify 3 texts (one empty), batch_size 2", sentiment_classify(model, request, &out),
                                 &out);
    if (doc)
        check_results(doc, 3);
    json_object_put(doc);
}

static int32_t count_events(const char *event_json, void *user_data)
{
    json_object *event = json_tokener_parse(event_json);
    if (member(event, "event", json_type_string))
        ++*(int *)user_data;
    json_object_put(event);
    return 0;
}

static int32_t cancel_at_once(const char *event_json, void *user_data)
{
    (void)event_json;
    ++*(int *)user_data;
    return 1;
}

static void test_evaluate(sentiment_model *model)
{
    const char *request = "{\"texts\": [\"good\", \"bad\", \"fine\", \"awful\", \"great\"], "
                          "\"labels\": [1, 0, 1, 0, 1], \"batch_size\": 2}";
    int events = 0;
    char *out = NULL;
    json_object *doc = expect_ok("evaluate texts+labels with a callback",
                                 sentiment_evaluate(model, request, count_events, &events, &out), &out);
    json_object *examples = member(doc, "examples", json_type_int);
    check(examples && json_object_get_int(examples) == 5 && is_number(member(doc, "accuracy", json_type_double)),
          "evaluate reports 5 examples and an accuracy");
    check(events > 0, "the progress callback received events (%d)", events);
    json_object_put(doc);

    events = 0;
    int32_t status = sentiment_evaluate(model, request, cancel_at_once, &events, &out);
    expect_error("evaluate cancelled by the callback", status, &out, SENTIMENT_CANCELLED, -1, NULL);
    check(events == 1, "no callback after a cancel (%d calls)", events);
}

/* ---------------------------------------------------------------------------------------
 * Concurrency: THREADS threads classify on one handle; results equal the serial ones. */

static const char *concurrent_request =
    "{\"texts\": [\"a gorgeous, witty, seductive movie.\", \"the acting is terrible\", "
    "\"it is not a bad film\", \"an utterly charming and hilarious film that reminded me of why i love movies\", "
    "\"too long\", \"a masterpiece four years in the making\", \"the plot is nothing but boilerplate clichés\", "
    "\"whatever\"], \"batch_size\": 3}";

struct worker {
    sentiment_model *model;
    const char *expected;
    int mismatches;
    int errors;
};

static void *classify_worker(void *arg)
{
    struct worker *w = arg;
    for (int round = 0; round < ROUNDS; round++) {
        char *out = NULL;
        if (sentiment_classify(w->model, concurrent_request, &out) != SENTIMENT_OK)
            w->errors++;
        else if (strcmp(out, w->expected) != 0)
            w->mismatches++;
        sentiment_string_free(out);
    }
    return NULL;
}

static void test_concurrency(sentiment_model *model)
{
    char *serial = NULL;
    if (sentiment_classify(model, concurrent_request, &serial) != SENTIMENT_OK) {
        check(0, "serial classify for the concurrency test: %s", serial ? serial : "NULL");
        sentiment_string_free(serial);
        return;
    }
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    int started = 0;
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.model = model, .expected = serial};
        if (pthread_create(&threads[i], NULL, classify_worker, &workers[i]) == 0)
            started++;
        else
            break;
    }
    int errors = 0, mismatches = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        errors += workers[i].errors;
        mismatches += workers[i].mismatches;
    }
    check(started == THREADS && errors == 0 && mismatches == 0,
          "%d threads x %d classify calls on one handle equal the serial result (%d errors, %d mismatches)",
          started, ROUNDS, errors, mismatches);
    sentiment_string_free(serial);
}

/* ---------------------------------------------------------------------------------------
 * Training: config errors, a tiny run, cancel, and BUSY for an output_dir in use. */

/* Writes a small SST-2-style TSV (header + rows) to a new temporary file; returns its path. */
static char *write_small_tsv(int rows)
{
    char *path = strdup("/tmp/sentiment-abi-test-XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        free(path);
        return NULL;
    }
    fputs("sentence\tlabel\n", f);
    for (int i = 0; i < rows; i++)
        fputs(i % 2 ? "a charming and often affecting journey .\t1\n" : "bleak , tedious and desperate\t0\n", f);
    fclose(f);
    return path;
}

static char *train_config(const char *model_dir, const char *train_file, const char *output_dir, int max_steps)
{
    json_object *config = json_object_new_object();
    json_object_object_add(config, "model_dir", json_object_new_string(model_dir));
    json_object_object_add(config, "train_file", json_object_new_string(train_file));
    json_object_object_add(config, "max_steps", json_object_new_int(max_steps));
    json_object_object_add(config, "train_batch_size", json_object_new_int(4));
    json_object_object_add(config, "logging_steps", json_object_new_int(1));
    if (output_dir) {
        json_object_object_add(config, "output_dir", json_object_new_string(output_dir));
        json_object_object_add(config, "save_strategy", json_object_new_string("last"));
    } else {
        json_object_object_add(config, "save_strategy", json_object_new_string("no"));
    }
    char *text = strdup(json_object_to_json_string_ext(config, JSON_FLAGS));
    json_object_put(config);
    return text;
}

/* A run that waits in its first step event until the main thread has tried the same output_dir. */
struct holder {
    const char *config;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int in_step, released;
    int32_t status;
};

static int32_t hold_first_step(const char *event_json, void *user_data)
{
    (void)event_json;
    struct holder *h = user_data;
    pthread_mutex_lock(&h->mutex);
    h->in_step = 1;
    pthread_cond_broadcast(&h->cond);
    while (!h->released)
        pthread_cond_wait(&h->cond, &h->mutex);
    pthread_mutex_unlock(&h->mutex);
    return 0;
}

static void *train_worker(void *arg)
{
    struct holder *h = arg;
    char *out = NULL;
    h->status = sentiment_train(h->config, hold_first_step, h, &out);
    sentiment_string_free(out);
    /* A run that failed before its first step must not leave the main thread waiting. */
    pthread_mutex_lock(&h->mutex);
    h->in_step = 1;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mutex);
    return NULL;
}

static void test_busy_output_dir(const char *model_dir, const char *train_file)
{
    char dir[] = "/tmp/sentiment-abi-train-XXXXXX";
    if (!check(mkdtemp(dir) != NULL, "create a temporary output folder"))
        return;
    char *config = train_config(model_dir, train_file, dir, 1);
    struct holder h = {.config = config, .mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pthread_t thread;
    if (check(pthread_create(&thread, NULL, train_worker, &h) == 0, "start a training thread")) {
        pthread_mutex_lock(&h.mutex);
        while (!h.in_step)
            pthread_cond_wait(&h.cond, &h.mutex);
        pthread_mutex_unlock(&h.mutex);
        char *out = NULL;
        expect_error("train into the output_dir of a run in progress", sentiment_train(config, NULL, NULL, &out), &out,
                     SENTIMENT_BUSY, -1, "output_dir");
        pthread_mutex_lock(&h.mutex);
        h.released = 1;
        pthread_cond_broadcast(&h.cond);
        pthread_mutex_unlock(&h.mutex);
        pthread_join(thread, NULL);
        check(h.status == SENTIMENT_OK, "the first run finishes -> %d %s", h.status, sentiment_status_string(h.status));
    }
    free(config);
    /* Remove what the run saved (a flat folder of files). */
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    check(system(command) == 0, "remove the temporary output folder");
}

static void test_train_distributed(const char *model_dir, const char *tsv);

static void test_train(const char *model_dir)
{
    char *out = NULL;
    expect_error("train(config_json NULL)", sentiment_train(NULL, NULL, NULL, &out), &out, SENTIMENT_MISUSE, -1,
                 "config_json");
    expect_error("train with an unknown key",
                 sentiment_train("{\"model_dir\": \"m\", \"train_file\": \"t\", \"epochs\": 3}", NULL, NULL, &out),
                 &out, SENTIMENT_INVALID_ARGUMENT, -1, "epochs");
    expect_error("train saving without output_dir",
                 sentiment_train("{\"model_dir\": \"m\", \"train_file\": \"t\"}", NULL, NULL, &out), &out,
                 SENTIMENT_INVALID_ARGUMENT, -1, "output_dir");
    check(sentiment_train("{\"model_dir\": 1}", NULL, NULL, NULL) == SENTIMENT_INVALID_ARGUMENT,
          "train(bad config, out_json NULL) -> INVALID_ARGUMENT");

    char *tsv = write_small_tsv(8);
    if (!check(tsv != NULL, "write a small training TSV"))
        return;
    char *config = train_config(model_dir, "/nonexistent/train.tsv", NULL, 2);
    expect_error("train on a missing train_file", sentiment_train(config, NULL, NULL, &out), &out, SENTIMENT_IO, -1,
                 "train_file");
    free(config);

    config = train_config(model_dir, tsv, NULL, 2);
    int events = 0;
    json_object *doc = expect_ok("train 2 steps with a callback", sentiment_train(config, count_events, &events, &out),
                                 &out);
    json_object *steps = member(doc, "steps", json_type_int);
    json_object *curve = member(member(doc, "curve", json_type_object), "loss", json_type_array);
    check(steps && json_object_get_int(steps) == 2 && curve && json_object_array_length(curve) == 2 &&
              member(doc, "epochs", json_type_array),
          "the result has 2 steps, a 2-point loss curve and epochs");
    check(events >= 2, "the progress callback received the step events (%d)", events);
    json_object_put(doc);

    events = 0;
    int32_t status = sentiment_train(config, cancel_at_once, &events, &out);
    json_object *cancelled = out ? json_tokener_parse(out) : NULL;
    json_object *result = member(cancelled, "result", json_type_object);
    json_object *flag = member(result, "cancelled", json_type_boolean);
    check(flag && json_object_get_boolean(flag), "a cancelled run's error document holds the partial result");
    json_object_put(cancelled);
    expect_error("train cancelled by the callback", status, &out, SENTIMENT_CANCELLED, -1, NULL);
    check(events == 1, "no callback after a cancel (%d calls)", events);
    free(config);

    test_busy_output_dir(model_dir, tsv);
    test_train_distributed(model_dir, tsv);
    unlink(tsv);
    free(tsv);
}

/* ---------------------------------------------------------------------------------------
 * Data-parallel training: two ranks on two threads, over an allreduce made of a barrier */

struct world {
    pthread_barrier_t barrier;
    float *buffers[2];
    size_t counts[2];
    int mismatches;
};

struct rank {
    struct world *world;
    int32_t rank;
    const char *config;
    int32_t status;
    char *out;
};

/* Both ranks sum buffer 0 + buffer 1 in that order, so they get the same bits. */
static int32_t barrier_allreduce(float *buffer, size_t count, void *user_data)
{
    struct rank *r = user_data;
    struct world *w = r->world;
    w->buffers[r->rank] = buffer;
    w->counts[r->rank] = count;
    pthread_barrier_wait(&w->barrier);
    float *sum = malloc(count * sizeof *sum + 1);
    int same = w->counts[0] == w->counts[1];
    for (size_t i = 0; sum && same && i < count; i++)
        sum[i] = w->buffers[0][i] + w->buffers[1][i];
    pthread_barrier_wait(&w->barrier);
    if (!same && r->rank == 0)
        w->mismatches++;
    if (sum && same)
        memcpy(buffer, sum, count * sizeof *sum);
    free(sum);
    return sum && same ? 0 : 1;
}

static void *rank_worker(void *arg)
{
    struct rank *r = arg;
    r->status = sentiment_train_distributed(r->config, r->rank, 2, barrier_allreduce, r, NULL, NULL, &r->out);
    return NULL;
}

/* The loss curve of a result document, or 0 values when it has none. */
static size_t curve(json_object *doc, double *losses, size_t capacity)
{
    json_object *loss = member(member(doc, "curve", json_type_object), "loss", json_type_array);
    size_t n = loss ? json_object_array_length(loss) : 0;
    for (size_t i = 0; i < n && i < capacity; i++)
        losses[i] = json_object_get_double(json_object_array_get_idx(loss, i));
    return n < capacity ? n : capacity;
}

static void test_train_distributed(const char *model_dir, const char *tsv)
{
    char *out = NULL;
    char *config = train_config(model_dir, tsv, NULL, 4);
    expect_error("train_distributed(world_size 0)",
                 sentiment_train_distributed(config, 0, 0, barrier_allreduce, NULL, NULL, NULL, &out), &out,
                 SENTIMENT_INVALID_ARGUMENT, -1, "world_size");
    expect_error("train_distributed(rank 2 of 2)",
                 sentiment_train_distributed(config, 2, 2, barrier_allreduce, NULL, NULL, NULL, &out), &out,
                 SENTIMENT_INVALID_ARGUMENT, -1, "rank");
    expect_error("train_distributed(allreduce NULL, world_size 2)",
                 sentiment_train_distributed(config, 0, 2, NULL, NULL, NULL, NULL, &out), &out,
                 SENTIMENT_INVALID_ARGUMENT, -1, "allreduce");
    json_object_put(expect_ok("train_distributed(world_size 1, allreduce NULL)",
                              sentiment_train_distributed(config, 0, 1, NULL, NULL, NULL, NULL, &out), &out));

    /* The reference: one process running the two shards as micro-batches. */
    json_object *accumulated = json_tokener_parse(config);
    json_object_object_add(accumulated, "gradient_accumulation_steps", json_object_new_int(2));
    char *reference_config = strdup(json_object_to_json_string_ext(accumulated, JSON_FLAGS));
    json_object_put(accumulated);
    json_object *reference = expect_ok("train with gradient_accumulation_steps 2",
                                       sentiment_train(reference_config, NULL, NULL, &out), &out);
    free(reference_config);

    struct world world = {0};
    pthread_barrier_init(&world.barrier, NULL, 2);
    struct rank ranks[2] = {{&world, 0, config, -1, NULL}, {&world, 1, config, -1, NULL}};
    pthread_t threads[2];
    for (int r = 0; r < 2; r++)
        pthread_create(&threads[r], NULL, rank_worker, &ranks[r]);
    for (int r = 0; r < 2; r++)
        pthread_join(threads[r], NULL);
    pthread_barrier_destroy(&world.barrier);
    check(world.mismatches == 0, "both ranks made the same allreduce calls");

    double want[8], got[2][8];
    size_t n = curve(reference, want, 8), m[2];
    for (int r = 0; r < 2; r++) {
        json_object *doc = expect_ok(r == 0 ? "rank 0 of 2 trains" : "rank 1 of 2 trains", ranks[r].status,
                                     &ranks[r].out);
        m[r] = curve(doc, got[r], 8);
        json_object_put(doc);
    }
    int close = n == 4 && m[0] == n && m[1] == n;
    for (size_t i = 0; close && i < n; i++)
        close = fabs(got[0][i] - want[i]) <= 1e-5 * fabs(want[i]) && got[0][i] == got[1][i];
    check(close, "2 ranks' per-step losses equal each other and one process's within 1e-5 (%zu steps)", n);
    json_object_put(reference);
    free(config);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    test_static_functions();
    test_load_errors(argv[1]);

    char *config = load_config(argv[1], NULL, NULL);
    sentiment_model *model = NULL;
    char *out = NULL;
    int32_t status = sentiment_model_load(config, &model, &out);
    free(config);
    json_object_put(expect_ok("load the model", status, &out));
    if (model) {
        test_null_arguments(model);
        test_bad_requests(model);
        test_round_trip(model);
        test_evaluate(model);
        test_concurrency(model);
        sentiment_model_free(model);
    }
    test_train(argv[1]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed > 0;
}
