/* One catalogue case through the C API (hardening/catalogue/catalogue.py's table), shared by
 * catalogue.c, which runs the table, and ladder.c, which runs each case under injected faults. */
#ifndef SENTIMENT_CASES_H
#define SENTIMENT_CASES_H

#include "testlib.h"
#include <pthread.h>
#include <unistd.h>

static const char *current_case = "";
/* Set by ladder.c: no FAIL lines, and hooks around the library call itself. */
static int cases_quiet;
static void (*before_call)(void), (*after_call)(void);

#define report(...) (cases_quiet ? 0 : printf(__VA_ARGS__))

/* What a case returned: its status, and whether that was clean: the expected status with every
 * check of the case passing, or another error status with a well-formed error document. */
struct outcome {
    int32_t status;
    int clean;
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = 0;
    fclose(f);
    return buf;
}

static const char *string_member(json_object *o, const char *key)
{
    json_object *v = member(o, key, json_type_string);
    return v ? json_object_get_string(v) : NULL;
}

/* Whether `doc` is an error document of `status` with a message. */
static int is_error_document(json_object *doc, int32_t status)
{
    json_object *error = member(doc, "error", json_type_object);
    json_object *st = member(error, "status", json_type_int);
    const char *message = string_member(error, "message");
    return st && json_object_get_int(st) == status && message && *message;
}

/* The number of results of an OK classify/tokenize document (-1 if absent); *longest gets
 * the longest input_ids row. */
static long count_results(json_object *doc, const char *call, long *longest)
{
    json_object *items = member(doc, strcmp(call, "classify") == 0 ? "results" : "input_ids", json_type_array);
    if (!items)
        return -1;
    *longest = 0;
    size_t n = json_object_array_length(items);
    for (size_t i = 0; i < n; i++) {
        json_object *row = json_object_array_get_idx(items, i);
        if (json_object_is_type(row, json_type_array) && (long)json_object_array_length(row) > *longest)
            *longest = (long)json_object_array_length(row);
    }
    return (long)n;
}

static int32_t status_value(const char *name)
{
    static const char *names[] = {"OK", "ERROR", "INVALID_ARGUMENT", "IO", "FORMAT", "CANCELLED",
                                  "BUSY", "NOMEM", "MISUSE", "INTERNAL"};
    for (int32_t i = 0; i < (int32_t)(sizeof names / sizeof names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* One call of the API; status -1 for an unknown call. */
struct call {
    const char *call, *request;
    sentiment_model *model;
    char **out_ref;
    int no_model;
    sentiment_model *loaded;
    int32_t status;
};

static void call_case(struct call *k)
{
    const char *call = k->call;
    if (before_call)
        before_call();
    if (strcmp(call, "load") == 0)
        k->status = sentiment_model_load(k->request, k->no_model ? NULL : &k->loaded, k->out_ref);
    else if (strcmp(call, "info") == 0)
        k->status = sentiment_model_info(k->model, k->out_ref);
    else if (strcmp(call, "tokenize") == 0)
        k->status = sentiment_tokenize(k->model, k->request, k->out_ref);
    else if (strcmp(call, "classify") == 0)
        k->status = sentiment_classify(k->model, k->request, k->out_ref);
    else if (strcmp(call, "evaluate") == 0)
        k->status = sentiment_evaluate(k->model, k->request, NULL, NULL, k->out_ref);
    else if (strcmp(call, "save") == 0)
        k->status = sentiment_model_save(k->model, k->request, k->out_ref);
    else if (strcmp(call, "train") == 0)
        k->status = sentiment_train(k->request, NULL, NULL, k->out_ref);
    if (after_call)
        after_call();
}

static void *call_thread(void *k)
{
    call_case(k);
    return NULL;
}

/* The handles the cases use: `valid`, the model of the table, and `stale`, one freed, so that
 * every use must be MISUSE. Returns 0 (having said why) if the model does not load. */
static int load_models(const char *model_dir, sentiment_model **valid, sentiment_model **stale)
{
    char config[4096];
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"max_length\": 64, \"threads\": 1}", model_dir);
    char *out = NULL;
    if (sentiment_model_load(config, valid, &out) != SENTIMENT_OK || sentiment_model_load(config, stale, NULL) != SENTIMENT_OK) {
        fprintf(stderr, "cannot load %s: %s\n", model_dir, out ? out : "");
        sentiment_string_free(out);
        return 0;
    }
    sentiment_string_free(out);
    sentiment_model_free(*stale);
    return 1;
}

/* Reads the catalogue table at `path` (catalogue.py's cases.json): *table (to json_object_put)
 * and its *cases, with `valid` and `stale` loaded from its model_dir (load_models). Returns 0
 * (having said why) if it is not a table or the model does not load. */
static int open_table(const char *path, json_object **table, json_object **cases, sentiment_model **valid,
                      sentiment_model **stale)
{
    *table = json_object_from_file(path);
    *cases = member(*table, "cases", json_type_array);
    const char *model_dir = string_member(*table, "model_dir");
    if (!*cases || !model_dir) {
        fprintf(stderr, "%s: not a catalogue table\n", path);
        return 0;
    }
    return load_models(model_dir, valid, stale);
}

/* Runs one case; returns 1 if it behaved as expected (printing why not otherwise). */
static int run_case(json_object *c, sentiment_model *valid, sentiment_model *stale, struct outcome *o)
{
    *o = (struct outcome){-1, 0};
    const char *id = string_member(c, "id"), *call = string_member(c, "call");
    const char *expect = string_member(c, "expect"), *names = string_member(c, "names");
    const char *model_kind = string_member(c, "model"), *null_out = string_member(c, "null_out");
    const char *request_file = string_member(c, "request_file"), *absent = string_member(c, "absent");
    char *request = request_file ? read_file(request_file) : NULL;
    if (!request && !request_file && member(c, "request", json_type_string))
        request = strdup(string_member(c, "request"));
    if (request_file && !request) {
        report("FAIL %s: cannot read %s\n", id, request_file);
        return 0;
    }
    sentiment_model *model = valid;
    if (model_kind && strcmp(model_kind, "null") == 0)
        model = NULL;
    else if (model_kind && strcmp(model_kind, "stale") == 0)
        model = stale;
    int no_out = null_out && strcmp(null_out, "out_json") == 0;
    char *out = NULL;
    char **out_ref = no_out ? NULL : &out;
    struct call k = {call, request, model, out_ref, null_out && strcmp(null_out, "out_model") == 0, NULL, -1};
    json_object *stack_kb = member(c, "stack_kb", json_type_int), *timeout = member(c, "timeout", json_type_int);
    current_case = id;
    if (timeout)
        alarm((unsigned)json_object_get_int(timeout));
    if (stack_kb) {
        pthread_attr_t attr;
        pthread_t thread;
        pthread_attr_init(&attr);
        if (pthread_attr_setstacksize(&attr, (size_t)json_object_get_int(stack_kb) * 1024) != 0 ||
            pthread_create(&thread, &attr, call_thread, &k) != 0) {
            report("FAIL %s: cannot start a thread with a %d KB stack\n", id, json_object_get_int(stack_kb));
            pthread_attr_destroy(&attr);
            free(request);
            return 0;
        }
        pthread_join(thread, NULL);
        pthread_attr_destroy(&attr);
    } else {
        call_case(&k);
    }
    alarm(0);
    sentiment_model *loaded = k.loaded;
    int32_t status = k.status;
    *o = (struct outcome){status, 0};
    if (status < 0) {
        report("FAIL %s: unknown call %s\n", id, call);
        free(request);
        return 0;
    }
    free(request);
    sentiment_model_free(loaded);

    int32_t expected = status_value(expect);
    int ok = status == expected;
    if (!ok)
        report("FAIL %s: status %d (%s), expected %s: %s\n", id, status, sentiment_status_string(status), expect,
               out ? out : "(no document)");
    if (ok && no_out && out != NULL) {
        report("FAIL %s: out_json was NULL but a document was written\n", id);
        ok = 0;
    }
    json_object *doc = out ? json_tokener_parse(out) : NULL;
    if (ok && !no_out && !doc) {
        report("FAIL %s: out_json is not a JSON document: %s\n", id, out ? out : "NULL");
        ok = 0;
    }
    if (ok && doc && expected != SENTIMENT_OK) {
        json_object *error = member(doc, "error", json_type_object);
        json_object *st = member(error, "status", json_type_int);
        const char *message = string_member(error, "message"), *field = string_member(error, "field");
        if (!st || json_object_get_int(st) != expected || !message || !*message) {
            report("FAIL %s: malformed error document %s\n", id, out);
            ok = 0;
        } else if (names && !strstr(message, names) && !(field && strstr(field, names))) {
            report("FAIL %s: neither field nor message names \"%s\": %s\n", id, names, out);
            ok = 0;
        }
    }
    if (ok && absent && out && strstr(out, absent)) {
        report("FAIL %s: the document echoes \"%s\": %s\n", id, absent, out);
        ok = 0;
    }
    json_object *results = member(c, "results", json_type_int);
    if (ok && doc && expected == SENTIMENT_OK && results) {
        long longest = 0;
        long n = count_results(doc, call, &longest);
        json_object *max_tokens = member(c, "max_tokens", json_type_int);
        if (n != json_object_get_int64(results) || (max_tokens && longest > json_object_get_int64(max_tokens))) {
            report("FAIL %s: %ld results (longest %ld), expected %" PRId64 "\n", id, n, longest,
                   json_object_get_int64(results));
            ok = 0;
        }
    }
    o->clean = ok || (status != SENTIMENT_OK && (no_out || is_error_document(doc, status)));
    json_object_put(doc);
    sentiment_string_free(out);
    return ok;
}

#endif

