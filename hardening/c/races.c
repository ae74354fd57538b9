/*
 * races: a handle freed or saved while other threads use it.
 *
 *   races MODEL_DIR [THREADS]     THREADS: the "threads" of every load (default 1)
 *
 *   1. Free mid-classify: 3 threads classify, tokenize and ask info on one handle in a loop
 *      while 2 threads free it at once, 20 rounds. Every call returns OK with the serial
 *      result or MISUSE, the handle is MISUSE after, and in some round a call that began
 *      before both frees and ended after them returned OK (the model was freed mid-call).
 *   2. Free mid-evaluate: evaluate's progress callback waits while another thread frees the
 *      handle; the evaluation then finishes with the serial result and the handle is MISUSE.
 *   3. Save while classifying: 3 threads classify while 2 threads save the handle 4 times each
 *      (one fp32, one int8, each into its own folder, and both fp32 into a shared one). Every
 *      classify equals the serial result, every save returns OK, no staging folder is left,
 *      and each folder loads and classifies as a save made alone does (int8: at precision int8).
 * Prints one line per check; exits 1 if any failed.
 */
#include "testlib.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3
#define ROUNDS 20
#define SAVERS 2
#define SAVES 4
#define RING 64
#define SHARED_ROUNDS 20
#define SAVERS_AT_ONCE 4

static int failed;
static int threads = 1;

static void check(int ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok  " : "FAIL", what);
    failed += !ok;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static const char *classify_request = "{\"texts\": [\"a good movie\", \"dull and boring\", \"not very good\", "
                                      "\"great fun!\", \"the film was awful\", \"\", \"it is charming\"], "
                                      "\"batch_size\": 2}";
static const char *tokenize_request = "{\"texts\": [\"A Good Movie, not awful!\", \"charming\"]}";
static const char *evaluate_request = "{\"texts\": [\"a good movie\", \"dull and boring\", \"not very good\", "
                                      "\"great fun!\", \"the film was awful\", \"it is charming\"], "
                                      "\"labels\": [1, 0, 0, 1, 0, 1], \"batch_size\": 1}";

static sentiment_model *load(const char *dir, const char *precision)
{
    char config[4300];
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"max_length\": 64, \"threads\": %d, \"precision\": \"%s\"}",
             dir, threads, precision);
    sentiment_model *m = NULL;
    char *out = NULL;
    if (sentiment_model_load(config, &m, &out) != SENTIMENT_OK)
        fprintf(stderr, "load %s: %s\n", dir, out ? out : "");
    sentiment_string_free(out);
    return m;
}

/* The classify result of `m`, malloc'ed, or NULL when the call failed. */
static char *classified(sentiment_model *m)
{
    char *out = NULL;
    if (sentiment_classify(m, classify_request, &out) == SENTIMENT_OK)
        return out;
    sentiment_string_free(out);
    return NULL;
}

/* ---- 1. free mid-classify ---- */

struct expected {
    char *classified, *tokenized, *info;
};

struct call {
    double start, end;
    int32_t status;
};

struct worker {
    sentiment_model *model;
    const struct expected *expected;
    atomic_int calls;
    int wrong;             /* a status other than OK/MISUSE, or an OK result that differs */
    struct call ring[RING]; /* the last RING calls */
};

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    for (int i = 0;; i++) {
        char *out = NULL;
        struct call c = {now(), 0, 0};
        const char *want;
        switch (i % 3) {
        case 0:
            c.status = sentiment_classify(w->model, classify_request, &out);
            want = w->expected->classified;
            break;
        case 1:
            c.status = sentiment_tokenize(w->model, tokenize_request, &out);
            want = w->expected->tokenized;
            break;
        default:
            c.status = sentiment_model_info(w->model, &out);
            want = w->expected->info;
        }
        c.end = now();
        w->ring[i % RING] = c;
        if (c.status != SENTIMENT_MISUSE && (c.status != SENTIMENT_OK || strcmp(out, want) != 0))
            w->wrong++;
        sentiment_string_free(out);
        atomic_fetch_add(&w->calls, 1);
        if (c.status == SENTIMENT_MISUSE)
            return NULL;
    }
}

struct freer {
    sentiment_model *model;
    atomic_int *go;
    double start, end;
};

static void *freer_thread(void *arg)
{
    struct freer *f = arg;
    while (!atomic_load(f->go))
        sched_yield();
    f->start = now();
    sentiment_model_free(f->model);
    f->end = now();
    return NULL;
}

/* info's load_seconds differs per load: it is compared within one handle only. */
static int expect_of(sentiment_model *m, struct expected *e)
{
    char *out = NULL;
    e->classified = classified(m);
    e->tokenized = sentiment_tokenize(m, tokenize_request, &out) == SENTIMENT_OK ? out : NULL;
    out = NULL;
    e->info = sentiment_model_info(m, &out) == SENTIMENT_OK ? out : NULL;
    return e->classified && e->tokenized && e->info;
}

static void drop_expected(struct expected *e)
{
    sentiment_string_free(e->classified);
    sentiment_string_free(e->tokenized);
    sentiment_string_free(e->info);
}

static void test_free_mid_classify(const char *model_dir)
{
    int wrong = 0, stale = 0, mid_call = 0, rounds = 0;
    for (int r = 0; r < ROUNDS; r++) {
        sentiment_model *m = load(model_dir, "fp32");
        struct expected e;
        if (!m || !expect_of(m, &e)) {
            check(0, "load and call serially");
            return;
        }
        static struct worker workers[WORKERS];
        pthread_t wt[WORKERS], ft[2];
        for (int i = 0; i < WORKERS; i++) {
            workers[i] = (struct worker){.model = m, .expected = &e};
            atomic_init(&workers[i].calls, 0);
            pthread_create(&wt[i], NULL, worker_thread, &workers[i]);
        }
        /* Free once every worker is busy, at a different point of the loop each round. */
        for (int i = 0; i < WORKERS; i++)
            while (atomic_load(&workers[i].calls) < 2)
                usleep(100);
        atomic_int go;
        atomic_init(&go, 0);
        struct freer freers[2] = {{m, &go, 0, 0}, {m, &go, 0, 0}};
        for (int i = 0; i < 2; i++)
            pthread_create(&ft[i], NULL, freer_thread, &freers[i]);
        usleep(97 * r % 1000);
        atomic_store(&go, 1);
        for (int i = 0; i < 2; i++)
            pthread_join(ft[i], NULL);
        double freeing = freers[0].start < freers[1].start ? freers[0].start : freers[1].start;
        double freed = freers[0].end > freers[1].end ? freers[0].end : freers[1].end;
        for (int i = 0; i < WORKERS; i++) {
            pthread_join(wt[i], NULL);
            wrong += workers[i].wrong;
            for (int k = 0; k < RING; k++) {
                struct call c = workers[i].ring[k];
                mid_call += c.status == SENTIMENT_OK && c.start < freeing && c.end > freed;
            }
        }
        char *out = NULL;
        stale += sentiment_classify(m, classify_request, &out) == SENTIMENT_MISUSE;
        sentiment_string_free(out);
        drop_expected(&e);
        rounds++;
    }
    char what[240];
    snprintf(what, sizeof what, "%d rounds of 2 frees during 3 threads' classify/tokenize/info: %d calls not OK "
             "with the serial result or MISUSE, %d handles MISUSE after", rounds, wrong, stale);
    check(wrong == 0 && stale == rounds, what);
    snprintf(what, sizeof what, "%d calls began before the frees and returned OK after them", mid_call);
    check(mid_call > 0, what);
}

/* ---- 2. free mid-evaluate ---- */

struct evaluation {
    sentiment_model *model;
    atomic_int asked; /* the callback waits for the free */
    atomic_int freed;
    int events_after_free;
    int32_t status;
    char *out;
};

static int32_t wait_for_free(const char *event_json, void *user_data)
{
    (void)event_json;
    struct evaluation *e = user_data;
    if (atomic_load(&e->freed)) {
        e->events_after_free++;
        return 0;
    }
    atomic_store(&e->asked, 1);
    for (int i = 0; i < 10000 && !atomic_load(&e->freed); i++) /* 10 s at most */
        usleep(1000);
    return 0;
}

static void *evaluate_thread(void *arg)
{
    struct evaluation *e = arg;
    e->status = sentiment_evaluate(e->model, evaluate_request, wait_for_free, e, &e->out);
    return NULL;
}

/* An evaluate result without its "seconds", serialized (malloc'ed), or NULL. */
static char *without_seconds(const char *result)
{
    json_object *doc = json_tokener_parse(result ? result : "");
    if (!doc)
        return NULL;
    json_object_object_del(doc, "seconds");
    char *text = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
    json_object_put(doc);
    return text;
}

static void test_free_mid_evaluate(const char *model_dir)
{
    sentiment_model *m = load(model_dir, "fp32");
    char *out = NULL;
    if (!m || sentiment_evaluate(m, evaluate_request, NULL, NULL, &out) != SENTIMENT_OK) {
        check(0, "load and evaluate serially");
        sentiment_string_free(out);
        return;
    }
    char *serial = without_seconds(out);
    sentiment_string_free(out);
    struct evaluation e = {.model = m};
    atomic_init(&e.asked, 0);
    atomic_init(&e.freed, 0);
    pthread_t thread;
    pthread_create(&thread, NULL, evaluate_thread, &e);
    while (!atomic_load(&e.asked))
        usleep(100);
    sentiment_model_free(m);
    atomic_store(&e.freed, 1);
    pthread_join(thread, NULL);
    char *result = without_seconds(e.out);
    out = NULL;
    int32_t after = sentiment_model_info(m, &out);
    char what[200];
    snprintf(what, sizeof what, "an evaluate whose handle was freed at its first progress event returned %d (%s), "
             "%d events later, with the serial result; the handle is then %s", e.status,
             sentiment_status_string(e.status), e.events_after_free, sentiment_status_string(after));
    check(e.status == SENTIMENT_OK && e.events_after_free > 0 && serial && result && strcmp(serial, result) == 0 &&
              after == SENTIMENT_MISUSE,
          what);
    sentiment_string_free(out);
    sentiment_string_free(e.out);
    free(serial);
    free(result);
}

/* ---- 3. save while classifying ---- */

struct classifier {
    sentiment_model *model;
    const char *expected;
    atomic_int *done;
    int rounds, wrong;
};

static void *classifier_thread(void *arg)
{
    struct classifier *c = arg;
    do {
        char *out = classified(c->model);
        c->wrong += !out || strcmp(out, c->expected) != 0;
        sentiment_string_free(out);
        c->rounds++;
    } while (!atomic_load(c->done));
    return NULL;
}

struct saver {
    sentiment_model *model;
    const char *dir, *own, *precision;
    int ok, saves;
};

static int save(sentiment_model *m, const char *dir, const char *name, const char *precision)
{
    char config[4400], *out = NULL;
    snprintf(config, sizeof config, "{\"output_dir\": \"%s/%s\", \"precision\": \"%s\"}", dir, name, precision);
    int32_t status = sentiment_model_save(m, config, &out);
    if (status != SENTIMENT_OK)
        fprintf(stderr, "save %s/%s: %s\n", dir, name, out ? out : "");
    sentiment_string_free(out);
    return status == SENTIMENT_OK;
}

static void *saver_thread(void *arg)
{
    struct saver *s = arg;
    for (int i = 0; i < SAVES; i++) {
        if (s->own) {
            s->ok += save(s->model, s->dir, s->own, s->precision);
            s->saves++;
        }
        s->ok += save(s->model, s->dir, "shared", "fp32");
        s->saves++;
    }
    return NULL;
}

/* The classify result of dir/name loaded at `precision`, or NULL. */
static char *classified_from(const char *dir, const char *name, const char *precision)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sentiment_model *m = load(path, precision);
    char *out = m ? classified(m) : NULL;
    sentiment_model_free(m);
    return out;
}

/* Whether `result` (freed here) equals `expected`. */
static int same(char *result, const char *expected)
{
    int equal = result && strcmp(result, expected) == 0;
    sentiment_string_free(result);
    return equal;
}

static int staging_left(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strstr(e->d_name, ".saving-")) {
            fprintf(stderr, "staging folder left: %s/%s\n", dir, e->d_name);
            n++;
        }
    }
    if (d)
        closedir(d);
    return n;
}

static void test_save_while_classifying(const char *model_dir, const char *dir)
{
    /* What a save gives when nothing else runs: a reference folder per precision. */
    sentiment_model *m = load(model_dir, "fp32");
    char *expected = m ? classified(m) : NULL;
    char *saved = NULL, *saved8 = NULL;
    if (expected && save(m, dir, "reference-fp32", "fp32") && save(m, dir, "reference-int8", "int8")) {
        saved = classified_from(dir, "reference-fp32", "fp32");
        saved8 = classified_from(dir, "reference-int8", "int8");
    }
    if (!saved || !saved8) {
        check(0, "load, classify, save at fp32 and int8 and load the saves serially");
        sentiment_string_free(expected);
        sentiment_model_free(m);
        return;
    }
    atomic_int done;
    atomic_init(&done, 0);
    struct classifier classifiers[WORKERS];
    struct saver savers[SAVERS] = {{m, dir, "fp32", "fp32", 0, 0}, {m, dir, "int8", "int8", 0, 0}};
    pthread_t ct[WORKERS], st[SAVERS];
    for (int i = 0; i < WORKERS; i++) {
        classifiers[i] = (struct classifier){m, expected, &done, 0, 0};
        pthread_create(&ct[i], NULL, classifier_thread, &classifiers[i]);
    }
    for (int i = 0; i < SAVERS; i++)
        pthread_create(&st[i], NULL, saver_thread, &savers[i]);
    int ok = 0, saves = 0, rounds = 0, wrong = 0;
    for (int i = 0; i < SAVERS; i++) {
        pthread_join(st[i], NULL);
        ok += savers[i].ok;
        saves += savers[i].saves;
    }
    atomic_store(&done, 1);
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(ct[i], NULL);
        rounds += classifiers[i].rounds;
        wrong += classifiers[i].wrong;
    }
    int left = staging_left(dir);
    char what[240];
    snprintf(what, sizeof what, "%d of %d saves (fp32, int8, 2 savers into one folder) OK while 3 threads classified "
             "%d times, %d results not the serial one; %d staging folders left", ok, saves, rounds, wrong, left);
    check(ok == saves && wrong == 0 && left == 0, what);
    check(same(classified_from(dir, "fp32", "fp32"), saved) && same(classified_from(dir, "shared", "fp32"), saved),
          "the fp32 folder and the shared one load and classify as the serial fp32 save");
    check(same(classified_from(dir, "int8", "int8"), saved8),
          "the int8 folder loads at precision int8 and classifies as the serial int8 save");
    sentiment_string_free(expected);
    sentiment_string_free(saved);
    sentiment_string_free(saved8);
    sentiment_model_free(m);
}

/* ---- 4. saves into one folder at once ---- */

static void test_saves_into_one_folder(const char *model_dir, const char *dir)
{
    sentiment_model *m = load(model_dir, "fp32");
    char *saved = m && save(m, dir, "alone", "fp32") ? classified_from(dir, "alone", "fp32") : NULL;
    if (!saved) {
        check(0, "load, save and load the save serially");
        sentiment_model_free(m);
        return;
    }
    int ok = 0, saves = 0, left = 0, loads = 0;
    for (int r = 0; r < SHARED_ROUNDS; r++) {
        struct saver savers[SAVERS_AT_ONCE];
        pthread_t st[SAVERS_AT_ONCE];
        for (int i = 0; i < SAVERS_AT_ONCE; i++) {
            savers[i] = (struct saver){m, dir, NULL, NULL, 0, 0};
            pthread_create(&st[i], NULL, saver_thread, &savers[i]);
        }
        for (int i = 0; i < SAVERS_AT_ONCE; i++) {
            pthread_join(st[i], NULL);
            ok += savers[i].ok;
            saves += savers[i].saves;
        }
        left += staging_left(dir);
        loads += same(classified_from(dir, "shared", "fp32"), saved);
    }
    char what[200];
    snprintf(what, sizeof what, "%d rounds of %d threads saving into one folder at once: %d of %d saves OK, %d staging "
             "folders left, %d rounds' folders load and classify as a save made alone", SHARED_ROUNDS, SAVERS_AT_ONCE,
             ok, saves, left, loads);
    check(ok == saves && left == 0 && loads == SHARED_ROUNDS, what);
    sentiment_string_free(saved);
    sentiment_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR [THREADS]\n", argv[0]);
        return 2;
    }
    if (argc == 3)
        threads = atoi(argv[2]);
    char dir[] = "/tmp/sentiment-races-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    test_free_mid_classify(argv[1]);
    test_free_mid_evaluate(argv[1]);
    test_save_while_classifying(argv[1], dir);
    test_saves_into_one_folder(argv[1], dir);
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    check(system(command) == 0, "remove the temporary folder");
    printf("races: %d failed\n", failed);
    return failed > 0;
}
