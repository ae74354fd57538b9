/*
 * classify: classifies sentences with libsentiment.
 *
 *   classify [--json] [--precision fp32|int8|bf16] [--top-k N|all] [--window [--stride N]]
 *            [--pairs] MODEL_DIR [TEXT...]
 *
 * With no TEXT, classifies each non-empty line of stdin. Prints "LABEL score  text" per
 * sentence, or with --json the library's result document as is.
 *   --top-k N|all   also list the N best labels (all: every label) with their scores [top_k]
 *   --window        read a long text whole, in overlapping windows [long_text "window"]
 *   --stride N      tokens that neighbouring windows share [stride]
 *   --pairs         each TEXT (or line) is a sentence pair: FIRST<TAB>SECOND [text_pairs]
 */
#include <json-c/json.h>
#include <sentiment.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STDIN_BATCH 256 /* stdin lines per sentiment_classify call */
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* The request options of the command line. */
struct options {
    int raw_json;
    const char *top_k; /* NULL, a number, or "all" */
    int window;
    const char *stride;
    int pairs;
};

/* Prints a failed call's status and the message from its error document to stderr. */
static void print_error(const char *call, int32_t status, const char *out_json)
{
    json_object *doc = out_json ? json_tokener_parse(out_json) : NULL;
    json_object *error, *message;
    const char *text = "(no error document)";
    if (doc && json_object_object_get_ex(doc, "error", &error) &&
        json_object_object_get_ex(error, "message", &message) &&
        json_object_is_type(message, json_type_string))
        text = json_object_get_string(message);
    fprintf(stderr, "classify: %s failed (%s): %s\n", call, sentiment_status_string(status), text);
    json_object_put(doc);
}

static int is_number(json_object *o)
{
    return json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int);
}

/* Prints "LABEL score  text" for each result; returns 0, or 1 if the document is not as expected. */
static int print_results(const char *result_json, char **texts, size_t n)
{
    json_object *doc = json_tokener_parse(result_json);
    json_object *results;
    int rc = 0;
    if (!doc || !json_object_object_get_ex(doc, "results", &results) ||
        !json_object_is_type(results, json_type_array) || json_object_array_length(results) != n) {
        fprintf(stderr, "classify: unexpected result document: %s\n", result_json);
        json_object_put(doc);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *result = json_object_array_get_idx(results, i);
        json_object *label, *score;
        if (!json_object_object_get_ex(result, "label", &label) || !json_object_is_type(label, json_type_string) ||
            !json_object_object_get_ex(result, "score", &score) || !is_number(score)) {
            fprintf(stderr, "classify: result %zu lacks a label or a score\n", i);
            rc = 1;
            break;
        }
        printf("%s %.4f", json_object_get_string(label), json_object_get_double(score));
        json_object *top, *windows;
        if (json_object_object_get_ex(result, "labels", &top) && json_object_is_type(top, json_type_array)) {
            printf("  [");
            for (size_t k = 0; k < json_object_array_length(top); k++) {
                json_object *entry = json_object_array_get_idx(top, k), *name, *value;
                if (json_object_object_get_ex(entry, "label", &name) && json_object_object_get_ex(entry, "score", &value))
                    printf("%s%s %.4f", k ? ", " : "", json_object_get_string(name), json_object_get_double(value));
            }
            printf("]");
        }
        if (json_object_object_get_ex(result, "windows", &windows))
            printf("  (%d windows)", json_object_get_int(windows));
        printf("  %s\n", texts[i]);
    }
    json_object_put(doc);
    return rc;
}

/* Classifies n texts (with --pairs, "FIRST<TAB>SECOND" each) in one call; returns 0 on success. */
static int classify(sentiment_model *model, char **texts, size_t n, const struct options *o)
{
    json_object *request = json_object_new_object();
    json_object *array = json_object_new_array(), *pairs = o->pairs ? json_object_new_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        const char *tab = o->pairs ? strchr(texts[i], '\t') : NULL;
        if (o->pairs && !tab) {
            fprintf(stderr, "classify: --pairs: \"%s\" has no tab between its two texts\n", texts[i]);
            json_object_put(array);
            json_object_put(pairs);
            json_object_put(request);
            return 1;
        }
        json_object_array_add(array, tab ? json_object_new_string_len(texts[i], (int)(tab - texts[i]))
                                         : json_object_new_string(texts[i]));
        if (tab)
            json_object_array_add(pairs, json_object_new_string(tab + 1));
    }
    json_object_object_add(request, "texts", array);
    if (pairs)
        json_object_object_add(request, "text_pairs", pairs);
    if (o->top_k)
        json_object_object_add(request, "top_k",
                               strcmp(o->top_k, "all") == 0 ? NULL : json_object_new_int(atoi(o->top_k)));
    if (o->window)
        json_object_object_add(request, "long_text", json_object_new_string("window"));
    if (o->stride)
        json_object_object_add(request, "stride", json_object_new_int(atoi(o->stride)));

    char *out = NULL;
    int32_t status = sentiment_classify(model, json_object_to_json_string_ext(request, JSON_FLAGS), &out);
    json_object_put(request);
    int rc;
    if (status != SENTIMENT_OK) {
        print_error("sentiment_classify", status, out);
        rc = 1;
    } else if (o->raw_json) {
        rc = puts(out) < 0;
    } else {
        rc = print_results(out, texts, n);
    }
    sentiment_string_free(out);
    return rc;
}

/* Classifies stdin, STDIN_BATCH lines at a time; returns 0 on success. */
static int classify_stdin(sentiment_model *model, const struct options *o)
{
    char *lines[STDIN_BATCH];
    size_t n = 0;
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    int rc = 0;
    while (rc == 0 && (length = getline(&line, &capacity, stdin)) >= 0) {
        while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r'))
            line[--length] = '\0';
        if (length == 0)
            continue;
        if (!(lines[n++] = strdup(line))) {
            fprintf(stderr, "classify: out of memory\n");
            n--;
            rc = 1;
        }
        if (n == STDIN_BATCH) {
            rc = classify(model, lines, n, o);
            while (n > 0)
                free(lines[--n]);
        }
    }
    if (rc == 0 && n > 0)
        rc = classify(model, lines, n, o);
    while (n > 0)
        free(lines[--n]);
    free(line);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int arg = 1;
    const char *precision = "fp32"; /* the library rejects bad values */
    for (;;) {
        if (arg < argc && strcmp(argv[arg], "--json") == 0) {
            o.raw_json = 1;
            arg++;
        } else if (arg < argc && strcmp(argv[arg], "--window") == 0) {
            o.window = 1;
            arg++;
        } else if (arg < argc && strcmp(argv[arg], "--pairs") == 0) {
            o.pairs = 1;
            arg++;
        } else if (arg + 1 < argc && strcmp(argv[arg], "--precision") == 0) {
            precision = argv[arg + 1];
            arg += 2;
        } else if (arg + 1 < argc && strcmp(argv[arg], "--top-k") == 0) {
            o.top_k = argv[arg + 1];
            arg += 2;
        } else if (arg + 1 < argc && strcmp(argv[arg], "--stride") == 0) {
            o.stride = argv[arg + 1];
            arg += 2;
        } else {
            break;
        }
    }
    if (arg >= argc || argv[arg][0] == '-') {
        fprintf(stderr, "usage: %s [--json] [--precision fp32|int8|bf16] [--top-k N|all] [--window [--stride N]]\n"
                        "       [--pairs] MODEL_DIR [TEXT...]\n"
                        "  with no TEXT, classifies each line of stdin\n", argv[0]);
        return 2;
    }

    json_object *config = json_object_new_object();
    json_object_object_add(config, "model_dir", json_object_new_string(argv[arg++]));
    json_object_object_add(config, "precision", json_object_new_string(precision));
    sentiment_model *model = NULL;
    char *out = NULL;
    int32_t status = sentiment_model_load(json_object_to_json_string_ext(config, JSON_FLAGS), &model, &out);
    json_object_put(config);
    if (status != SENTIMENT_OK) {
        print_error("sentiment_model_load", status, out);
        sentiment_string_free(out);
        return 1;
    }
    sentiment_string_free(out);

    int rc = arg < argc ? classify(model, argv + arg, (size_t)(argc - arg), &o)
                        : classify_stdin(model, &o);
    sentiment_model_free(model);
    return rc;
}
