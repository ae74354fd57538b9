/*
 * Shared set-up of the libFuzzer targets in hardening/fuzz/ (see scripts/fuzz.sh). Every target drives
 * the public C API only. File targets write the input over one file of a copy of the tiny
 * test model ($SENTIMENT_FUZZ_MODEL, made by hardening/catalogue/catalogue.py) in a private
 * temporary folder and load it. A crash, sanitizer report or leak is a finding.
 */
#ifndef SENTIMENT_FUZZ_HARNESS_H
#define SENTIMENT_FUZZ_HARNESS_H

#include <sentiment.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[64];
static sentiment_model *fuzz_model; /* the intact tiny model, for request targets */

static int write_bytes(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = size ? fwrite(data, 1, size, f) : 0;
    return fclose(f) == 0 && n == size ? 0 : -1;
}

static void fuzz_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", fuzz_dir, name);
}

/* A NUL-terminated copy of the input (the C API takes C strings). */
static char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = 0;
    }
    return s;
}

/* Calls and frees: the fuzzer only cares that nothing crashes or leaks. */
static void drop(int32_t status, char *out)
{
    (void)status;
    sentiment_string_free(out);
}

static void fuzz_load_dir(void)
{
    char config[160];
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"max_length\": 64, \"threads\": 1}", fuzz_dir);
    sentiment_model *m = NULL;
    char *out = NULL;
    drop(sentiment_model_load(config, &m, &out), out);
    if (m) {
        out = NULL;
        drop(sentiment_tokenize(m, "{\"texts\": [\"a good movie, not awful!\", \"\"]}", &out), out);
        out = NULL;
        drop(sentiment_classify(m, "{\"texts\": [\"a good movie\"]}", &out), out);
        sentiment_model_free(m);
    }
}

static const char *fuzz_files[] = {"config.json", "vocab.txt", "model.safetensors"};

static void fuzz_cleanup(void)
{
    for (size_t i = 0; i < 3; i++) {
        char path[128];
        fuzz_path(path, sizeof path, fuzz_files[i]);
        unlink(path);
    }
    rmdir(fuzz_dir);
    sentiment_model_free(fuzz_model);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *model = getenv("SENTIMENT_FUZZ_MODEL");
    if (!model) {
        fprintf(stderr, "set SENTIMENT_FUZZ_MODEL to the tiny model folder (scripts/fuzz.sh does)\n");
        exit(2);
    }
    strcpy(fuzz_dir, "/tmp/sentiment-fuzz-XXXXXX");
    if (!mkdtemp(fuzz_dir))
        exit(2);
    atexit(fuzz_cleanup);
    for (size_t i = 0; i < 3; i++) {
        char from[4096], to[128];
        snprintf(from, sizeof from, "%s/%s", model, fuzz_files[i]);
        fuzz_path(to, sizeof to, fuzz_files[i]);
        FILE *f = fopen(from, "rb");
        if (!f)
            exit(2);
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (write_bytes(to, buf, n) != 0)
            exit(2);
    }
    char config[4200];
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"max_length\": 64, \"threads\": 1}", model);
    if (sentiment_model_load(config, &fuzz_model, NULL) != SENTIMENT_OK)
        exit(2);
    return 0;
}

/* Restores one file of the private model copy from the original after a file target ran. */
static void restore(const char *name)
{
    char from[4096], to[128];
    snprintf(from, sizeof from, "%s/%s", getenv("SENTIMENT_FUZZ_MODEL"), name);
    fuzz_path(to, sizeof to, name);
    FILE *f = fopen(from, "rb");
    static uint8_t buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    write_bytes(to, buf, n);
}

/* The body of a file target: input -> NAME in the model copy, load, restore. */
static int fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    char path[128];
    fuzz_path(path, sizeof path, name);
    if (write_bytes(path, data, size) == 0)
        fuzz_load_dir();
    restore(name);
    return 0;
}

#endif
