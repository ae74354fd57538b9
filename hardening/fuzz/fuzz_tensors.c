/*
 * libFuzzer target, structure-aware: the input is model.safetensors of a checkpoint folder, and
 * the custom mutator keeps it a well-formed safetensors file. It parses the header JSON, changes
 * the tensors (shapes, dtypes, storage order and offsets, `_scale` tensors, special values,
 * names, metadata, bytes of one tensor), then writes a header whose offsets tile the data again
 * (one mutation in 16 skews one tensor's offsets instead). An input that does not parse gets
 * libFuzzer's byte mutations.
 *
 * A hash of the input picks how it is used, so a crash file replays as it ran: precision fp32
 * or int8, threads 1 or (one in four) 2, and for half the inputs that load a save into a
 * temporary folder at fp32 or int8. A save that returns OK must load again at its precision,
 * and when that is the precision the model was loaded at and the model type is kept, classify
 * as the model does; otherwise the target aborts (a finding). (A BERT encoder with the
 * DistilBERT head is saved as DistilBERT, its token-type row folded into the position
 * embeddings, which rounds otherwise.)
 */
#include "harness.h"

#include <json-c/json.h>
#include <math.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* ---- the file as tensors ---- */

#define MAX_TENSORS 256
#define MAX_RANK 6
#define MAX_TENSOR_BYTES (1 << 20)

struct tensor {
    char name[128];
    char dtype[16];
    int64_t shape[MAX_RANK];
    int rank;
    uint8_t *data;
    size_t bytes;
};

struct file {
    json_object *metadata; /* owned, or NULL */
    struct tensor t[MAX_TENSORS];
    int n;
    int skew;              /* 1 + the tensor whose offsets are written off by `skew_by`, or 0 */
    int skew_by;
};

static const struct {
    const char *name;
    int size;
} dtypes[] = {{"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I8", 1}, {"U8", 1}, {"I16", 2}, {"I32", 4},
              {"I64", 8}, {"BOOL", 1}, {"F8_E4M3", 1}, {"U64", 8}, {"F4", 1}, {"Q8", 1}};
#define DTYPES (sizeof dtypes / sizeof dtypes[0])

static int dtype_size(const char *dtype)
{
    for (size_t i = 0; i < DTYPES; i++)
        if (!strcmp(dtypes[i].name, dtype))
            return dtypes[i].size;
    return 1;
}

static int is_float(const char *dtype)
{
    return !strcmp(dtype, "F32") || !strcmp(dtype, "F16") || !strcmp(dtype, "BF16") || !strcmp(dtype, "F64");
}

static int64_t elements(const struct tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->shape[i];
    return n;
}

static void file_free(struct file *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->t[i].data);
    json_object_put(f->metadata);
    f->n = 0;
    f->metadata = NULL;
}

static int by_offset(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Parses a well-formed safetensors file; -1 (and nothing held) for anything else. */
static int file_parse(const uint8_t *data, size_t size, struct file *f)
{
    memset(f, 0, sizeof *f);
    if (size < 8)
        return -1;
    uint64_t header_bytes = 0;
    memcpy(&header_bytes, data, 8);
    if (header_bytes == 0 || header_bytes > size - 8)
        return -1;
    json_tokener *tok = json_tokener_new();
    json_object *header = json_tokener_parse_ex(tok, (const char *)data + 8, (int)header_bytes);
    json_tokener_free(tok);
    if (!header || !json_object_is_type(header, json_type_object)) {
        json_object_put(header);
        return -1;
    }
    const uint8_t *section = data + 8 + header_bytes;
    size_t section_bytes = size - 8 - header_bytes;
    int64_t order[MAX_TENSORS][2]; /* begin offset, tensor index */
    int ok = 1;
    json_object_object_foreach(header, key, value)
    {
        if (!strcmp(key, "__metadata__")) {
            f->metadata = json_object_get(value);
            continue;
        }
        json_object *dtype, *shape, *offsets;
        if (f->n == MAX_TENSORS || strlen(key) >= sizeof f->t[0].name ||
            !json_object_object_get_ex(value, "dtype", &dtype) || !json_object_is_type(dtype, json_type_string) ||
            strlen(json_object_get_string(dtype)) >= sizeof f->t[0].dtype ||
            !json_object_object_get_ex(value, "shape", &shape) || !json_object_is_type(shape, json_type_array) ||
            json_object_array_length(shape) > MAX_RANK || !json_object_object_get_ex(value, "data_offsets", &offsets) ||
            !json_object_is_type(offsets, json_type_array) || json_object_array_length(offsets) != 2) {
            ok = 0;
            break;
        }
        struct tensor *t = &f->t[f->n];
        strcpy(t->name, key);
        strcpy(t->dtype, json_object_get_string(dtype));
        t->rank = (int)json_object_array_length(shape);
        for (int i = 0; i < t->rank; i++)
            t->shape[i] = json_object_get_int64(json_object_array_get_idx(shape, i));
        int64_t begin = json_object_get_int64(json_object_array_get_idx(offsets, 0));
        int64_t end = json_object_get_int64(json_object_array_get_idx(offsets, 1));
        if (begin < 0 || end < begin || (uint64_t)end > section_bytes || end - begin > MAX_TENSOR_BYTES) {
            ok = 0;
            break;
        }
        t->bytes = (size_t)(end - begin);
        t->data = malloc(t->bytes ? t->bytes : 1);
        memcpy(t->data, section + begin, t->bytes);
        order[f->n][0] = begin;
        order[f->n][1] = f->n;
        f->n++;
    }
    json_object_put(header);
    if (!ok) {
        file_free(f);
        return -1;
    }
    /* Keep the storage order of the file. */
    qsort(order, f->n, sizeof order[0], by_offset);
    struct tensor sorted[MAX_TENSORS];
    for (int i = 0; i < f->n; i++)
        sorted[i] = f->t[order[i][1]];
    memcpy(f->t, sorted, f->n * sizeof sorted[0]);
    return 0;
}

/* Writes the file with offsets that tile the data section; the size, or 0 when over `cap`. */
static size_t file_write(const struct file *f, uint8_t *out, size_t cap)
{
    json_object *header = json_object_new_object();
    if (f->metadata)
        json_object_object_add(header, "__metadata__", json_object_get(f->metadata));
    int64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const struct tensor *t = &f->t[i];
        json_object *entry = json_object_new_object(), *shape = json_object_new_array(), *offsets = json_object_new_array();
        for (int k = 0; k < t->rank; k++)
            json_object_array_add(shape, json_object_new_int64(t->shape[k]));
        int64_t skew = f->skew == i + 1 ? f->skew_by : 0;
        json_object_array_add(offsets, json_object_new_int64(at + skew));
        json_object_array_add(offsets, json_object_new_int64(at + (int64_t)t->bytes + skew));
        json_object_object_add(entry, "dtype", json_object_new_string(t->dtype));
        json_object_object_add(entry, "shape", shape);
        json_object_object_add(entry, "data_offsets", offsets);
        json_object_object_add(header, t->name, entry);
        at += (int64_t)t->bytes;
    }
    const char *text = json_object_to_json_string_ext(header, JSON_C_TO_STRING_PLAIN);
    uint64_t header_bytes = strlen(text);
    size_t total = 8 + header_bytes + (size_t)at;
    if (total <= cap) {
        memcpy(out, &header_bytes, 8);
        memcpy(out + 8, text, header_bytes);
        uint8_t *p = out + 8 + header_bytes;
        for (int i = 0; i < f->n; i++) {
            memcpy(p, f->t[i].data, f->t[i].bytes);
            p += f->t[i].bytes;
        }
    }
    json_object_put(header);
    return total <= cap ? total : 0;
}

/* ---- mutations ---- */

static uint64_t rng;

static uint32_t next(uint32_t bound)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return bound ? (uint32_t)(rng % bound) : 0;
}

static float read_float(const uint8_t *p, const char *dtype)
{
    if (!strcmp(dtype, "F32")) {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    if (!strcmp(dtype, "F64")) {
        double v;
        memcpy(&v, p, 8);
        return (float)v;
    }
    uint16_t h;
    memcpy(&h, p, 2);
    if (!strcmp(dtype, "BF16")) {
        uint32_t bits = (uint32_t)h << 16;
        float v;
        memcpy(&v, &bits, 4);
        return v;
    }
    _Float16 v;
    memcpy(&v, &h, 2);
    return (float)v;
}

static void write_float(uint8_t *p, const char *dtype, float v)
{
    if (!strcmp(dtype, "F32")) {
        memcpy(p, &v, 4);
    } else if (!strcmp(dtype, "F64")) {
        double d = v;
        memcpy(p, &d, 8);
    } else if (!strcmp(dtype, "BF16")) {
        uint32_t bits;
        memcpy(&bits, &v, 4);
        uint16_t h = (uint16_t)(bits >> 16);
        memcpy(p, &h, 2);
    } else {
        _Float16 h = (_Float16)v;
        memcpy(p, &h, 2);
    }
}

static const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e38f, -1e38f, 3e36f, 1e-45f, 1e-38f, 65504.0f, 1e5f,
                                 INFINITY, -INFINITY, NAN};
#define SPECIALS (sizeof specials / sizeof specials[0])

/* Resizes `t`'s data to its shape, repeating the old bytes; 0 when too large. */
static int fit_data(struct tensor *t)
{
    int64_t n = elements(t);
    if (n < 0 || n > MAX_TENSOR_BYTES / dtype_size(t->dtype))
        return 0;
    size_t bytes = (size_t)n * dtype_size(t->dtype);
    uint8_t *data = malloc(bytes ? bytes : 1);
    for (size_t i = 0; i < bytes; i++)
        data[i] = t->bytes ? t->data[i % t->bytes] : (uint8_t)next(256);
    free(t->data);
    t->data = data;
    t->bytes = bytes;
    return 1;
}

static void mutate_shape(struct tensor *t)
{
    int64_t old[MAX_RANK];
    int old_rank = t->rank;
    memcpy(old, t->shape, sizeof old);
    int d = t->rank ? (int)next(t->rank) : 0;
    switch (next(8)) {
    case 0: if (t->rank) t->shape[d] += 1; break;
    case 1: if (t->rank && t->shape[d] > 0) t->shape[d] -= 1; break;
    case 2: if (t->rank) t->shape[d] *= 2; break;
    case 3: if (t->rank) t->shape[d] /= 2; break;
    case 4: if (t->rank) t->shape[d] = next(3); break;
    case 5: if (t->rank >= 2) { int64_t x = t->shape[0]; t->shape[0] = t->shape[1]; t->shape[1] = x; } break;
    case 6: if (t->rank < MAX_RANK) t->shape[t->rank++] = 1; break;
    default: if (t->rank) t->rank--; break;
    }
    if (!fit_data(t)) {
        t->rank = old_rank;
        memcpy(t->shape, old, sizeof old);
    }
}

static void mutate_dtype(struct tensor *t)
{
    const char *to = dtypes[next(DTYPES)].name;
    int64_t n = elements(t);
    if (is_float(t->dtype) && is_float(to) && n * dtype_size(to) <= MAX_TENSOR_BYTES) {
        uint8_t *data = malloc(n * dtype_size(to) + 1);
        for (int64_t i = 0; i < n; i++)
            write_float(data + i * dtype_size(to), to, read_float(t->data + i * dtype_size(t->dtype), t->dtype));
        free(t->data);
        t->data = data;
        t->bytes = n * dtype_size(to);
        strcpy(t->dtype, to);
        return;
    }
    char from[16];
    strcpy(from, t->dtype);
    strcpy(t->dtype, to);
    if (!fit_data(t))
        strcpy(t->dtype, from);
}

static void set_specials(struct tensor *t)
{
    int size = dtype_size(t->dtype);
    int64_t n = t->bytes / size;
    for (int k = 1 + next(3); n > 0 && k > 0; k--) {
        uint8_t *p = t->data + next((uint32_t)n) * size;
        if (is_float(t->dtype))
            write_float(p, t->dtype, specials[next(SPECIALS)]);
        else
            *p = (uint8_t)(next(2) ? 0x80 : 0x7f); /* -128 or 127 as I8 */
    }
}

static int add_tensor(struct file *f, const char *name, const char *dtype, int64_t rows)
{
    if (f->n == MAX_TENSORS || strlen(name) >= sizeof f->t[0].name)
        return -1;
    struct tensor *t = &f->t[f->n];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    strcpy(t->dtype, dtype);
    t->rank = 1;
    t->shape[0] = rows;
    if (!fit_data(t))
        return -1;
    return f->n++;
}

static void set_metadata(struct file *f, const char *key, const char *value)
{
    if (!f->metadata)
        f->metadata = json_object_new_object();
    if (value)
        json_object_object_add(f->metadata, key, json_object_new_string(value));
    else
        json_object_object_del(f->metadata, key);
}

/* Quantizes a 2-D F32 tensor as the library's int8 checkpoints do: I8 rows and a F32 `_scale` per row. */
static void quantize(struct file *f, int i)
{
    struct tensor *t = &f->t[i];
    if (strcmp(t->dtype, "F32") || t->rank != 2 || t->shape[0] == 0)
        return;
    char scale_name[160];
    snprintf(scale_name, sizeof scale_name, "%s_scale", t->name);
    int rows = (int)t->shape[0], cols = (int)t->shape[1];
    int s = add_tensor(f, scale_name, "F32", rows);
    if (s < 0)
        return;
    t = &f->t[i];
    float *values = (float *)t->data, *scales = (float *)f->t[s].data;
    int8_t *q = malloc((size_t)rows * cols + 1);
    for (int r = 0; r < rows; r++) {
        float m = 0;
        for (int c = 0; c < cols; c++)
            m = fmaxf(m, fabsf(values[r * cols + c]));
        scales[r] = m > 0 && isfinite(m) ? m / 127 : 1;
        for (int c = 0; c < cols; c++)
            q[r * cols + c] = (int8_t)fmaxf(-127, fminf(127, roundf(values[r * cols + c] / scales[r])));
    }
    free(t->data);
    t->data = (uint8_t *)q;
    t->bytes = (size_t)rows * cols;
    strcpy(t->dtype, "I8");
    set_metadata(f, "quantization", "sentiment-int8");
}

/* A `_scale` tensor: special values, another shape or dtype, removed; or a new int8 tensor. */
static void mutate_scale(struct file *f)
{
    int scales[MAX_TENSORS], n = 0;
    for (int i = 0; i < f->n; i++)
        if (strstr(f->t[i].name, "_scale"))
            scales[n++] = i;
    if (n == 0 || next(4) == 0) {
        quantize(f, (int)next(f->n));
        return;
    }
    struct tensor *t = &f->t[scales[next(n)]];
    switch (next(5)) {
    case 0: set_specials(t); break;
    case 1: mutate_shape(t); break;
    case 2: mutate_dtype(t); break;
    case 3: /* removed: the last tensor takes its place */
        free(t->data);
        *t = f->t[--f->n];
        break;
    default: /* all rows the same special value */
        for (size_t k = 0; is_float(t->dtype) && k + dtype_size(t->dtype) <= t->bytes; k += dtype_size(t->dtype))
            write_float(t->data + k, t->dtype, specials[(rng >> 3) % SPECIALS]);
    }
}

static void mutate_names(struct file *f, int i)
{
    struct tensor *t = &f->t[i];
    switch (next(4)) {
    case 0: /* removed */
        free(t->data);
        *t = f->t[--f->n];
        break;
    case 1: { /* a copy under another name */
        if (f->n == MAX_TENSORS || strlen(t->name) + 3 >= sizeof t->name)
            break;
        struct tensor *c = &f->t[f->n++];
        *c = *t;
        c->data = malloc(t->bytes + 1);
        memcpy(c->data, t->data, t->bytes);
        strcat(c->name, next(2) ? "_x" : "_scale");
        break;
    }
    case 2: { /* without its first dotted component ("bert.") */
        char *dot = strchr(t->name, '.');
        if (dot)
            memmove(t->name, dot + 1, strlen(dot));
        break;
    }
    default:
        if (strlen(t->name) + 9 < sizeof t->name) {
            memmove(t->name + 9, t->name, strlen(t->name) + 1);
            memcpy(t->name, "encoder.x", 9);
        }
    }
}

static void mutate_once(struct file *f)
{
    if (f->n == 0) {
        add_tensor(f, "x", "F32", 4);
        return;
    }
    int i = (int)next(f->n);
    switch (next(10)) {
    case 0: mutate_shape(&f->t[i]); break;
    case 1: mutate_dtype(&f->t[i]); break;
    case 2: case 3: mutate_scale(f); break;
    case 4: set_specials(&f->t[i]); break;
    case 5: { /* storage order */
        int j = (int)next(f->n);
        struct tensor x = f->t[i];
        f->t[i] = f->t[j];
        f->t[j] = x;
        break;
    }
    case 6: mutate_names(f, i); break;
    case 7: /* metadata */
        switch (next(4)) {
        case 0: set_metadata(f, "quantization", NULL); break;
        case 1: set_metadata(f, "quantization", next(2) ? "sentiment-int8" : "gptq"); break;
        case 2: set_metadata(f, "format", next(2) ? "pt" : "np"); break;
        default: json_object_put(f->metadata); f->metadata = NULL;
        }
        break;
    default: /* bytes of one tensor, its size kept */
        if (f->t[i].bytes)
            LLVMFuzzerMutate(f->t[i].data, f->t[i].bytes, f->t[i].bytes);
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    rng = seed * 0x9E3779B97F4A7C15ull + 1;
    struct file f;
    if (file_parse(data, size, &f) != 0)
        return LLVMFuzzerMutate(data, size, max_size);
    for (int k = next(4) ? 1 : 2 + next(2); k > 0; k--) /* mostly one: most inputs should still load */
        mutate_once(&f);
    if (f.n && next(16) == 0) {
        f.skew = 1 + (int)next(f.n);
        f.skew_by = (int)next(9) - 4;
    }
    size_t written = file_write(&f, data, max_size);
    file_free(&f);
    return written ? written : size;
}

/* ---- running an input ---- */

static char saved_dir[64];
/* What the inputs reached, printed at exit. */
static struct {
    long inputs, loaded, int8, threaded, saved;
} reached;

static void report(void)
{
    fprintf(stderr, "tensors: %ld inputs, %ld loaded (%ld at int8, %ld with 2 threads), %ld saved and loaded again\n",
            reached.inputs, reached.loaded, reached.int8, reached.threaded, reached.saved);
}

static void remove_saved(void)
{
    char command[96];
    snprintf(command, sizeof command, "rm -rf '%s'", saved_dir);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", saved_dir);
}

static sentiment_model *load(const char *dir, const char *precision, int threads)
{
    char config[200];
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"max_length\": 64, \"threads\": %d, \"precision\": \"%s\"}",
             dir, threads, precision);
    sentiment_model *m = NULL;
    char *out = NULL;
    drop(sentiment_model_load(config, &m, &out), out);
    return m;
}

static char *classified(sentiment_model *m)
{
    char *out = NULL;
    if (sentiment_classify(m, "{\"texts\": [\"a good movie\", \"not awful!\", \"\"]}", &out) == SENTIMENT_OK)
        return out;
    sentiment_string_free(out);
    return NULL;
}

/* info's model_type (a BERT encoder with the DistilBERT head is saved as DistilBERT). */
static void model_type(sentiment_model *m, char out[32])
{
    char *info = NULL;
    drop(sentiment_model_info(m, &info), NULL);
    json_object *doc = json_tokener_parse(info ? info : "");
    json_object *type = NULL;
    json_object_object_get_ex(doc, "model_type", &type);
    snprintf(out, 32, "%s", type ? json_object_get_string(type) : "");
    json_object_put(doc);
    sentiment_string_free(info);
}

static void save_and_reload(sentiment_model *m, const char *loaded_at, const char *precision, int threads)
{
    char config[160], *out = NULL, path[96];
    if (!saved_dir[0]) {
        strcpy(saved_dir, "/tmp/sentiment-fuzz-save-XXXXXX");
        if (!mkdtemp(saved_dir))
            exit(2);
        atexit(remove_saved);
    }
    snprintf(path, sizeof path, "%s/out", saved_dir);
    snprintf(config, sizeof config, "{\"output_dir\": \"%s\", \"precision\": \"%s\"}", path, precision);
    int32_t status = sentiment_model_save(m, config, &out);
    drop(status, out);
    if (status != SENTIMENT_OK)
        return;
    sentiment_model *again = load(path, precision, threads);
    if (!again) {
        fprintf(stderr, "a %s save of a model loaded at %s does not load\n", precision, loaded_at);
        abort();
    }
    reached.saved++;
    char before_type[32], after_type[32];
    model_type(m, before_type);
    model_type(again, after_type);
    if (!strcmp(precision, loaded_at) && !strcmp(before_type, after_type)) {
        char *before = classified(m), *after = classified(again);
        if (!before || !after || strcmp(before, after)) {
            fprintf(stderr, "a %s save classifies otherwise:\n%s\n%s\n", precision, before ? before : "(failed)",
                    after ? after : "(failed)");
            abort();
        }
        sentiment_string_free(before);
        sentiment_string_free(after);
    }
    sentiment_model_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    const char *precision = h & 1 ? "int8" : "fp32";
    int threads = (h >> 1) % 4 == 0 ? 2 : 1;
    char path[128];
    fuzz_path(path, sizeof path, "model.safetensors");
    if (reached.inputs++ == 0)
        atexit(report);
    if (write_bytes(path, data, size) == 0) {
        sentiment_model *m = load(fuzz_dir, precision, threads);
        if (m) {
            reached.loaded++;
            reached.int8 += precision[0] == 'i';
            reached.threaded += threads > 1;
            char *out = NULL;
            drop(sentiment_tokenize(m, "{\"texts\": [\"a good movie, not awful!\", \"\"]}", &out), out);
            sentiment_string_free(classified(m));
            if ((h >> 3) & 1)
                save_and_reload(m, precision, (h >> 4) & 1 ? "int8" : "fp32", threads);
            sentiment_model_free(m);
        }
    }
    restore("model.safetensors");
    return 0;
}
