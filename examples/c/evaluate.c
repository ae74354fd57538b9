/*
 * evaluate: accuracy and loss of a model on a labeled data file: TSV, CSV or JSON Lines
 * (sentiment.h), the text in a "sentence" or "text" column and the label in "label" unless
 * --text-column / --label-column name others; --text-pair-column names the second text of
 * sentence pairs.
 *
 *   evaluate [--precision fp32|int8|bf16] [--calibration-file FILE] [--format tsv|csv|jsonl]
 *            [--text-column NAME] [--text-pair-column NAME] [--label-column NAME]
 *            MODEL_DIR DATA_FILE [BATCH_SIZE]
 *
 * Prints examples, accuracy, loss, seconds and the model's load time on stdout and progress
 * on stderr. --precision int8 quantizes a float model at load (or loads an int8 checkpoint);
 * with --calibration-file it calibrates SmoothQuant on that file's first 512 sentences.
 * Ctrl-C cancels through the progress callback.
 */
#include <json-c/json.h>
#include <sentiment.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static volatile sig_atomic_t interrupted;

static void on_sigint(int signal_number)
{
    (void)signal_number;
    interrupted = 1;
}

static void print_error(const char *call, int32_t status, const char *out_json)
{
    json_object *doc = out_json ? json_tokener_parse(out_json) : NULL;
    json_object *error, *message;
    const char *text = "(no error document)";
    if (doc && json_object_object_get_ex(doc, "error", &error) &&
        json_object_object_get_ex(error, "message", &message) &&
        json_object_is_type(message, json_type_string))
        text = json_object_get_string(message);
    fprintf(stderr, "evaluate: %s failed (%s): %s\n", call, sentiment_status_string(status), text);
    json_object_put(doc);
}

struct progress {
    int on_terminal; /* redraw one line with \r; otherwise print a line per tenth done */
    int printed;
    long long tenths;
};

/* Progress callback: shows {"event":"progress","examples":N,"total":M}; other events are ignored. */
static int32_t on_progress(const char *event_json, void *user_data)
{
    struct progress *progress = user_data;
    json_object *event = json_tokener_parse(event_json);
    json_object *kind, *examples, *total;
    if (event && json_object_object_get_ex(event, "event", &kind) && json_object_is_type(kind, json_type_string) &&
        strcmp(json_object_get_string(kind), "progress") == 0 &&
        json_object_object_get_ex(event, "examples", &examples) && json_object_is_type(examples, json_type_int) &&
        json_object_object_get_ex(event, "total", &total) && json_object_is_type(total, json_type_int)) {
        long long done = json_object_get_int64(examples), all = json_object_get_int64(total);
        long long tenths = all > 0 ? done * 10 / all : 10;
        if (progress->on_terminal) {
            fprintf(stderr, "\revaluating: %lld/%lld", done, all);
            progress->printed = 1;
        } else if (tenths > progress->tenths) {
            fprintf(stderr, "evaluating: %lld/%lld\n", done, all);
            progress->tenths = tenths;
        }
    }
    json_object_put(event);
    return interrupted; /* nonzero cancels */
}

/* Looks up a numeric member of the result; prints an error and returns 0 if it is missing. */
static int get_number(json_object *doc, const char *key, double *value)
{
    json_object *o;
    if (!json_object_object_get_ex(doc, key, &o) ||
        !(json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int))) {
        fprintf(stderr, "evaluate: result has no number \"%s\"\n", key);
        return 0;
    }
    *value = json_object_get_double(o);
    return 1;
}

/* The per-label figures and the confusion matrix (rows: true label, columns: predicted). */
static void print_confusion(json_object *per_label, json_object *confusion)
{
    size_t n = json_object_array_length(per_label);
    printf("\n%-16s %9s %9s %9s %8s  |", "true label", "precision", "recall", "f1", "support");
    for (size_t j = 0; j < n; j++)
        printf(" %7zu", j);
    printf("  <- predicted\n");
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(per_label, i), *v;
        const char *name = json_object_object_get_ex(l, "label", &v) ? json_object_get_string(v) : "?";
        double p = 0, r = 0, f = 0, support = 0;
        get_number(l, "precision", &p);
        get_number(l, "recall", &r);
        get_number(l, "f1", &f);
        get_number(l, "support", &support);
        printf("%zu %-14.14s %9.4f %9.4f %9.4f %8.0f  |", i, name, p, r, f, support);
        json_object *row = json_object_array_get_idx(confusion, i);
        for (size_t j = 0; j < n; j++)
            printf(" %7d", json_object_get_int(json_object_array_get_idx(row, j)));
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    const char *precision = "fp32"; /* the library rejects bad values */
    const char *data_keys[][2] = {{"--format", "format"}, {"--text-column", "text_column"},
                                  {"--text-pair-column", "text_pair_column"}, {"--label-column", "label_column"}};
    enum { DATA_KEYS = sizeof data_keys / sizeof data_keys[0] };
    const char *data_values[DATA_KEYS] = {NULL};
    const char *calibration_file = NULL; /* int8: SmoothQuant calibrated on these sentences */
    while (argc >= 3 && strncmp(argv[1], "--", 2) == 0) {
        int known = strcmp(argv[1], "--precision") == 0;
        if (known)
            precision = argv[2];
        if (strcmp(argv[1], "--calibration-file") == 0) {
            calibration_file = argv[2];
            known = 1;
        }
        for (int k = 0; k < DATA_KEYS; k++) {
            if (strcmp(argv[1], data_keys[k][0]) == 0) {
                data_values[k] = argv[2];
                known = 1;
            }
        }
        if (!known)
            break;
        argv += 2;
        argc -= 2;
    }
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: evaluate [--precision fp32|int8|bf16] [--calibration-file FILE] [--format tsv|csv|jsonl] [--text-column NAME]\n"
                        "                [--text-pair-column NAME] [--label-column NAME] MODEL_DIR DATA_FILE [BATCH_SIZE]\n");
        return 2;
    }
    int batch_size = argc == 4 ? atoi(argv[3]) : 32; /* the library rejects a bad value */
    signal(SIGINT, on_sigint);

    json_object *config = json_object_new_object();
    json_object_object_add(config, "model_dir", json_object_new_string(argv[1]));
    json_object_object_add(config, "precision", json_object_new_string(precision));
    if (calibration_file)
        json_object_object_add(config, "calibration_file", json_object_new_string(calibration_file));
    sentiment_model *model = NULL;
    char *out = NULL;
    int32_t status = sentiment_model_load(json_object_to_json_string_ext(config, JSON_FLAGS), &model, &out);
    json_object_put(config);
    if (status != SENTIMENT_OK) {
        print_error("sentiment_model_load", status, out);
        sentiment_string_free(out);
        return 1;
    }
    json_object *info = json_tokener_parse(out);
    double load_seconds = 0;
    json_object *o;
    if (info && json_object_object_get_ex(info, "load_seconds", &o))
        load_seconds = json_object_get_double(o);
    json_object_put(info);
    sentiment_string_free(out);

    json_object *request = json_object_new_object();
    json_object_object_add(request, "data_file", json_object_new_string(argv[2]));
    for (int k = 0; k < DATA_KEYS; k++) {
        if (data_values[k])
            json_object_object_add(request, data_keys[k][1], json_object_new_string(data_values[k]));
    }
    json_object_object_add(request, "batch_size", json_object_new_int(batch_size));
    struct progress progress = {.on_terminal = isatty(STDERR_FILENO)};
    out = NULL;
    status = sentiment_evaluate(model, json_object_to_json_string_ext(request, JSON_FLAGS), on_progress,
                                &progress, &out);
    json_object_put(request);
    if (progress.printed && progress.on_terminal)
        fputc('\n', stderr);

    int rc = 1;
    if (status != SENTIMENT_OK) {
        print_error("sentiment_evaluate", status, out);
    } else {
        json_object *result = json_tokener_parse(out);
        double examples, accuracy, loss, seconds, macro_f1, mcc;
        json_object *per_label, *confusion;
        if (!result || !json_object_is_type(result, json_type_object)) {
            fprintf(stderr, "evaluate: unexpected result document: %s\n", out);
        } else if (get_number(result, "examples", &examples) && get_number(result, "accuracy", &accuracy) &&
                   get_number(result, "loss", &loss) && get_number(result, "seconds", &seconds) &&
                   get_number(result, "macro_f1", &macro_f1) && get_number(result, "mcc", &mcc) &&
                   json_object_object_get_ex(result, "per_label", &per_label) &&
                   json_object_object_get_ex(result, "confusion_matrix", &confusion)) {
            printf("precision %s\nexamples  %.0f\naccuracy  %.4f\nmacro_f1  %.4f\nmcc       %.4f\nloss      %.4f\n"
                   "seconds   %.2f\nload      %.2f\n",
                   precision, examples, accuracy, macro_f1, mcc, loss, seconds, load_seconds);
            print_confusion(per_label, confusion);
            rc = 0;
        }
        json_object_put(result);
    }
    sentiment_string_free(out);
    sentiment_model_free(model);
    return rc;
}
