/*
 * train: fine-tunes a model on a labeled data file with sentiment_train (json-c for JSON).
 *
 *   train MODEL_DIR TRAIN_FILE EVAL_FILE OUTPUT_DIR [options]
 *     TSV, CSV or JSON Lines files (see sentiment.h). EVAL_FILE "-" skips evaluation;
 *     OUTPUT_DIR "-" saves nothing (save_strategy "no").
 *   options (each sets the train config key named in brackets):
 *     --config FILE.json   start from this config object (the other arguments override it)
 *     --epochs N           [num_train_epochs]      --max-steps N   [max_steps]
 *     --lr X               [learning_rate]         --batch N       [train_batch_size]
 *     --save STRATEGY      [save_strategy]         --threads N     [threads]
 *     --max-examples N     [max_train_examples]    --logging-steps N [logging_steps]
 *     --bf16               [bf16] mixed precision (needs AVX512-BF16 or AMX)
 *     --format F           [format]  tsv | csv | jsonl (default: the extension)
 *     --text-column NAME   [text_column]           --label-column NAME [label_column]
 *     --text-pair-column NAME [text_pair_column] the second text of sentence pairs
 *     --labels A,B,...     [labels] the label names in id order (default: the train file's)
 *     --metric NAME        [metric_for_best_model] accuracy | loss | macro_f1 | mcc | f1
 *     --result FILE.json   also write the result document to FILE.json
 *
 * stderr: a progress line (step/total, epoch, loss, lr, examples/s, ETA) redrawn in place
 * on a terminal, or printed every 30 s otherwise; a line per epoch's evaluation.
 * stdout: the epochs table, the labels trained, notes (e.g. a fresh classifier for new labels),
 * the best epoch and the training speed.
 * Ctrl-C stops after the current step and prints what was done (exit status 130).
 */
#include <errno.h>
#include <json-c/json.h>
#include <sentiment.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static volatile sig_atomic_t interrupted;

static void on_sigint(int signal_number)
{
    (void)signal_number;
    interrupted = 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "1:02:03", "4:05" or "12s". */
static void format_duration(double seconds, char *buffer, size_t size)
{
    long s = seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(buffer, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else if (s >= 60)
        snprintf(buffer, size, "%ld:%02ld", s / 60, s % 60);
    else
        snprintf(buffer, size, "%lds", s);
}

/* A number member, or 0 when it is missing, null or not a number. */
static int get_number(json_object *object, const char *key, double *value)
{
    json_object *o;
    if (!object || !json_object_object_get_ex(object, key, &o) ||
        !(json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int)))
        return 0;
    *value = json_object_get_double(o);
    return 1;
}

static const char *get_string(json_object *object, const char *key)
{
    json_object *o;
    if (!object || !json_object_object_get_ex(object, key, &o) || !json_object_is_type(o, json_type_string))
        return NULL;
    return json_object_get_string(o);
}

static void print_error(const char *call, int32_t status, json_object *doc)
{
    json_object *error = NULL;
    const char *message = NULL, *field = NULL;
    if (doc && json_object_object_get_ex(doc, "error", &error)) {
        message = get_string(error, "message");
        field = get_string(error, "field");
    }
    fprintf(stderr, "train: %s failed (%s): %s", call, sentiment_status_string(status),
            message ? message : "(no error document)");
    if (field)
        fprintf(stderr, " [field: %s]", field);
    fputc('\n', stderr);
}

/* ---------------------------------------------------------------------------------------------
 * Progress display */

struct progress {
    int on_terminal;     /* redraw one line with \r; otherwise print a line every 30 s */
    int line_open;       /* a \r line is on screen and needs a newline before other output */
    int line_length;     /* its length, to blank what a shorter line would leave behind */
    double start_time;   /* first step event: time and step, for the ETA */
    double start_step;
    double last_plain;   /* when the last plain step line was printed */
};

static void end_line(struct progress *p)
{
    if (p->line_open) {
        fputc('\n', stderr);
        p->line_open = 0;
        p->line_length = 0;
    }
}

static void show_step(struct progress *p, json_object *event)
{
    double step = 0, total = 0, epoch = 0, loss = 0, lr = 0, speed = 0;
    get_number(event, "step", &step);
    get_number(event, "total_steps", &total);
    get_number(event, "epoch", &epoch);
    get_number(event, "loss", &loss);
    get_number(event, "learning_rate", &lr);
    get_number(event, "examples_per_second", &speed);
    double now = now_seconds();
    if (p->start_time == 0) {
        p->start_time = now;
        p->start_step = step;
    }
    char eta[32] = "-";
    if (step >= total)
        format_duration(0, eta, sizeof eta);
    else if (step > p->start_step)
        format_duration((total - step) * (now - p->start_time) / (step - p->start_step), eta, sizeof eta);

    char line[256];
    snprintf(line, sizeof line, "step %.0f/%.0f %3.0f%% | epoch %.0f | loss %.4f | lr %.2e | %.0f ex/s | ETA %s",
             step, total, total > 0 ? 100.0 * step / total : 0.0, epoch, loss, lr, speed, eta);
    if (p->on_terminal) {
        int length = (int)strlen(line);
        fprintf(stderr, "\r%s%*s", line, p->line_length > length ? p->line_length - length : 0, "");
        p->line_length = length;
        p->line_open = 1;
    } else if (p->last_plain == 0 || now - p->last_plain >= 30 || step >= total) {
        fprintf(stderr, "%s\n", line);
        p->last_plain = now;
    }
}

static void show_eval(struct progress *p, json_object *event)
{
    double epoch = 0, step = 0, train_loss = 0, eval_loss, accuracy, seconds = 0;
    get_number(event, "epoch", &epoch);
    get_number(event, "step", &step);
    get_number(event, "train_loss", &train_loss);
    get_number(event, "seconds", &seconds);
    char took[32];
    format_duration(seconds, took, sizeof took);
    end_line(p);
    fprintf(stderr, "epoch %.0f: step %.0f, train loss %.4f", epoch, step, train_loss);
    if (get_number(event, "eval_loss", &eval_loss))
        fprintf(stderr, ", eval loss %.4f", eval_loss);
    if (get_number(event, "eval_accuracy", &accuracy))
        fprintf(stderr, ", accuracy %.4f", accuracy);
    if (get_number(event, "eval_macro_f1", &accuracy))
        fprintf(stderr, ", macro F1 %.4f", accuracy);
    fprintf(stderr, " (%s)\n", took);
}

/* Progress callback: shows step, eval and saved events; returns nonzero after Ctrl-C. */
static int32_t on_progress(const char *event_json, void *user_data)
{
    struct progress *p = user_data;
    json_object *event = json_tokener_parse(event_json);
    const char *kind = get_string(event, "event");
    if (kind && strcmp(kind, "step") == 0) {
        show_step(p, event);
    } else if (kind && strcmp(kind, "eval") == 0) {
        show_eval(p, event);
    } else if (kind && strcmp(kind, "saved") == 0) {
        end_line(p);
        fprintf(stderr, "saved %s\n", get_string(event, "path") ? get_string(event, "path") : "?");
    }
    json_object_put(event);
    fflush(stderr);
    return interrupted; /* nonzero cancels */
}

/* ---------------------------------------------------------------------------------------------
 * Result table */

static void print_cell(json_object *row, const char *key, const char *format, int width)
{
    double v;
    if (get_number(row, key, &v))
        printf(format, width, v);
    else
        printf("%*s", width, "-");
}

static void print_result(json_object *result)
{
    json_object *epochs;
    printf("%5s %7s %11s %10s %9s %9s %9s\n", "epoch", "step", "train loss", "eval loss", "accuracy", "macro F1",
           "seconds");
    if (json_object_object_get_ex(result, "epochs", &epochs) && json_object_is_type(epochs, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(epochs); i++) {
            json_object *row = json_object_array_get_idx(epochs, i);
            print_cell(row, "epoch", "%*.0f", 5);
            print_cell(row, "step", " %*.0f", 7);
            print_cell(row, "train_loss", " %*.4f", 11);
            print_cell(row, "eval_loss", " %*.4f", 10);
            print_cell(row, "eval_accuracy", " %*.4f", 9);
            print_cell(row, "eval_macro_f1", " %*.4f", 9);
            print_cell(row, "seconds", " %*.1f", 9);
            putchar('\n');
        }
    }
    json_object *list;
    if (json_object_object_get_ex(result, "labels", &list) && json_object_is_type(list, json_type_array)) {
        printf("labels:");
        for (size_t i = 0; i < json_object_array_length(list); i++)
            printf(" %zu=%s", i, json_object_get_string(json_object_array_get_idx(list, i)));
        putchar('\n');
    }
    if (json_object_object_get_ex(result, "notes", &list) && json_object_is_type(list, json_type_array))
        for (size_t i = 0; i < json_object_array_length(list); i++)
            printf("note: %s\n", json_object_get_string(json_object_array_get_idx(list, i)));
    double v;
    if (get_number(result, "best_epoch", &v))
        printf("best epoch: %.0f\n", v);
    if (get_number(result, "best_step", &v))
        printf("best step: %.0f\n", v);
    if (get_number(result, "resumed_from_step", &v))
        printf("resumed after step: %.0f\n", v);
    if (get_string(result, "stop_reason"))
        printf("stopped: %s\n", get_string(result, "stop_reason"));
    if (get_number(result, "train_tokens_per_second", &v))
        printf("train tokens/s: %.0f\n", v);
    if (get_number(result, "steps", &v))
        printf("steps: %.0f\n", v);
    if (get_string(result, "output_dir"))
        printf("output: %s\n", get_string(result, "output_dir"));
}

/* ---------------------------------------------------------------------------------------------
 * Arguments */

static int parse_int(const char *option, const char *text, int64_t *value)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end) {
        fprintf(stderr, "train: %s needs an integer, got \"%s\"\n", option, text);
        return 0;
    }
    *value = v;
    return 1;
}

static int parse_double(const char *option, const char *text, double *value)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end) {
        fprintf(stderr, "train: %s needs a number, got \"%s\"\n", option, text);
        return 0;
    }
    *value = v;
    return 1;
}

static const struct {
    const char *option, *key;
    int is_integer; /* 0: number, 1: integer, 2: string, 3: comma-separated strings,
                       4: steps (an integer, or a fraction of the run below 1), 5: a path or true */
} OPTIONS[] = {
    {"--epochs", "num_train_epochs", 1}, {"--max-steps", "max_steps", 1},
    {"--lr", "learning_rate", 0},        {"--batch", "train_batch_size", 1},
    {"--save", "save_strategy", 2},      {"--threads", "threads", 1},
    {"--max-examples", "max_train_examples", 1}, {"--logging-steps", "logging_steps", 1},
    {"--format", "format", 2},           {"--text-column", "text_column", 2},
    {"--label-column", "label_column", 2}, {"--text-pair-column", "text_pair_column", 2},
    {"--labels", "labels", 3},           {"--metric", "metric_for_best_model", 2},
    {"--eval-strategy", "eval_strategy", 2}, {"--eval-steps", "eval_steps", 4},
    {"--save-steps", "save_steps", 4},   {"--save-total-limit", "save_total_limit", 1},
    {"--early-stopping", "early_stopping_patience", 1},
    {"--early-stopping-threshold", "early_stopping_threshold", 0},
    {"--resume", "resume_from_checkpoint", 5},
    {"--grad-accum", "gradient_accumulation_steps", 1},
    {"--max-micro-tokens", "max_tokens_per_micro_batch", 1},
    {"--scheduler", "lr_scheduler_type", 2}, {"--warmup-steps", "warmup_steps", 1},
    {"--warmup-ratio", "warmup_ratio", 0},
};

static void usage(const char *program)
{
    fprintf(stderr,
            "usage: %s MODEL_DIR TRAIN_FILE EVAL_FILE|- OUTPUT_DIR|- [--config FILE.json] [--epochs N]\n"
            "       [--max-steps N] [--lr X] [--batch N] [--save best|last|epoch|steps|no] [--threads N]\n"
            "       [--max-examples N] [--logging-steps N] [--bf16] [--result FILE.json]\n"
            "       [--format tsv|csv|jsonl] [--text-column NAME] [--text-pair-column NAME]\n"
            "       [--label-column NAME] [--labels A,B,...] [--metric NAME]\n"
            "       [--eval-strategy epoch|steps|no] [--eval-steps N] [--save-steps N] [--save-total-limit N]\n"
            "       [--early-stopping PATIENCE] [--early-stopping-threshold X] [--resume DIR|true]\n"
            "       [--grad-accum N] [--max-micro-tokens N] [--scheduler NAME] [--warmup-steps N]\n"
            "       [--warmup-ratio X]\n"
            "--save steps saves every --save-steps steps with the training state; --resume true continues\n"
            "the newest checkpoint in OUTPUT_DIR (the same arguments otherwise).\n",
            program);
}

/* Builds the train config from the arguments; NULL (after a message) when they are wrong. */
static json_object *build_config(int argc, char **argv, const char **result_file)
{
    const char *positional[4];
    int count = 0;
    json_object *config = NULL, *overrides = json_object_new_object();
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            if (count == 4)
                goto bad;
            positional[count++] = arg;
            continue;
        }
        if (strcmp(arg, "--bf16") == 0) {
            json_object_object_add(overrides, "bf16", json_object_new_boolean(1));
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "train: %s needs a value\n", arg);
            goto bad;
        }
        const char *value = argv[++i];
        if (strcmp(arg, "--config") == 0) {
            json_object_put(config);
            config = json_object_from_file(value);
            if (!config || !json_object_is_type(config, json_type_object)) {
                fprintf(stderr, "train: %s is not a readable JSON object file\n", value);
                goto bad;
            }
            continue;
        }
        if (strcmp(arg, "--result") == 0) {
            *result_file = value;
            continue;
        }
        size_t k = 0, n = sizeof OPTIONS / sizeof OPTIONS[0];
        while (k < n && strcmp(arg, OPTIONS[k].option) != 0)
            k++;
        if (k == n) {
            fprintf(stderr, "train: unknown option %s\n", arg);
            goto bad;
        }
        json_object *v;
        if (OPTIONS[k].is_integer == 3) {
            v = json_object_new_array();
            for (const char *p = value;; p++) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                json_object_array_add(v, json_object_new_string_len(p, (int)n));
                if (!comma)
                    break;
                p = comma;
            }
        } else if (OPTIONS[k].is_integer == 2) {
            v = json_object_new_string(value);
        } else if (OPTIONS[k].is_integer == 5) {
            v = strcmp(value, "true") == 0 ? json_object_new_boolean(1) : json_object_new_string(value);
        } else if (OPTIONS[k].is_integer == 4) {
            double x;
            if (!parse_double(arg, value, &x))
                goto bad;
            v = x >= 1 && x == (double)(int64_t)x ? json_object_new_int64((int64_t)x) : json_object_new_double(x);
        } else if (OPTIONS[k].is_integer) {
            int64_t x;
            if (!parse_int(arg, value, &x))
                goto bad;
            v = json_object_new_int64(x);
        } else {
            double x;
            if (!parse_double(arg, value, &x))
                goto bad;
            v = json_object_new_double(x);
        }
        json_object_object_add(overrides, OPTIONS[k].key, v);
    }
    if (count != 4)
        goto bad;
    if (!config)
        config = json_object_new_object();
    json_object_object_add(config, "model_dir", json_object_new_string(positional[0]));
    json_object_object_add(config, "train_file", json_object_new_string(positional[1]));
    if (strcmp(positional[2], "-") != 0)
        json_object_object_add(config, "eval_file", json_object_new_string(positional[2]));
    if (strcmp(positional[3], "-") != 0)
        json_object_object_add(config, "output_dir", json_object_new_string(positional[3]));
    else
        json_object_object_add(config, "save_strategy", json_object_new_string("no"));
    json_object_object_foreach(overrides, key, value) {
        json_object_object_add(config, key, json_object_get(value));
    }
    json_object_put(overrides);
    return config;
bad:
    json_object_put(overrides);
    json_object_put(config);
    usage(argv[0]);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *result_file = NULL;
    json_object *config = build_config(argc, argv, &result_file);
    if (!config)
        return 2;
    signal(SIGINT, on_sigint);

    struct progress progress = {.on_terminal = isatty(STDERR_FILENO)};
    char *out = NULL;
    int32_t status = sentiment_train(json_object_to_json_string_ext(config, JSON_FLAGS), on_progress, &progress, &out);
    json_object_put(config);
    end_line(&progress);

    json_object *doc = out ? json_tokener_parse(out) : NULL;
    json_object *result = NULL;
    if (status == SENTIMENT_OK)
        result = doc;
    else if (status == SENTIMENT_CANCELLED && doc)
        json_object_object_get_ex(doc, "result", &result); /* the partial result */
    if (status != SENTIMENT_OK)
        print_error("sentiment_train", status, doc);
    if (result && json_object_is_type(result, json_type_object)) {
        if (status == SENTIMENT_CANCELLED)
            printf("cancelled; finished so far:\n");
        print_result(result);
        if (result_file && json_object_to_file_ext(result_file, result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) != 0)
            fprintf(stderr, "train: cannot write %s\n", result_file);
    }
    json_object_put(doc);
    sentiment_string_free(out);
    if (status == SENTIMENT_OK)
        return 0;
    return status == SENTIMENT_CANCELLED ? 130 : 1;
}
