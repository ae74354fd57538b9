/*
 * signals: the library in a host whose signal handlers run all the time, as they do under a
 * sampling profiler (SIGPROF), an interval timer (SIGALRM), Python's SIGINT handler or a
 * parent of many children (SIGCHLD).
 *
 *   signals MODEL_DIR TRAIN_TSV [THREADS] [SECONDS]
 *
 * A handler for SIGALRM (no SA_RESTART, so system calls see EINTR) runs on every signal of
 *   - an interval timer every 100 us (process-directed: the kernel picks a thread), and
 *   - a thread that sends it to every other thread of the process every 200 us (tgkill),
 *     libgomp's workers included.
 * Under that storm, for SECONDS (default 10) each:
 *   1. classify with THREADS threads (default 2) must give the quiet answer, byte for byte, in
 *      fp32, int8 and bf16 (a third of the time each; bf16 is skipped, and says so, on a CPU
 *      without AVX512-BF16 or AMX);
 *   2. 3-step trains must give the quiet run's loss curve, byte for byte.
 * oneDNN's f32 GEMM kernels point the stack pointer at a heap workspace; a handler run there
 * writes its frame over the heap, and this program used to die of "corrupted size vs.
 * prev_size" within seconds. Prints one line per check and the number of signals handled;
 * exits 1 if a check failed.
 */
#include "testlib.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failed;
static atomic_long handled;
static atomic_int storming;

static void check(int ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok  " : "FAIL", what);
    fflush(stdout);
    failed += !ok;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sends SIGALRM to every other thread of the process, every 200 us, while `storming`. */
static void *storm_thread(void *arg)
{
    (void)arg;
    pid_t self = (pid_t)syscall(SYS_gettid);
    struct timespec pause = {0, 200000};
    while (atomic_load(&storming)) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            pid_t tid = (pid_t)atoi(e->d_name);
            if (tid > 0 && tid != self)
                syscall(SYS_tgkill, getpid(), tid, SIGALRM);
        }
        if (d)
            closedir(d);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static pthread_t storm;

static void start_storm(void)
{
    atomic_store(&storming, 1);
    /* The storm thread itself takes no SIGALRM, so the timer's signals reach the others. */
    sigset_t alarm, old;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, &old);
    pthread_create(&storm, NULL, storm_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    struct itimerval every = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &every, NULL);
}

static void stop_storm(void)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    atomic_store(&storming, 0);
    pthread_join(storm, NULL);
}

static const char *texts =
    "[\"a good movie\", \"dull and boring\", \"it is charming, witty and far too long for its own good\", "
    "\"not very good\", \"the most tedious two hours I have spent in a cinema, and I have seen many tedious films "
    "in my time, most of them with subtitles\", \"wonderful\", \"an utterly forgettable sequel\", \"a gem\"]";

/* classify's document, or NULL (after a message) on failure; the caller frees it. */
static char *classify(sentiment_model *model)
{
    char request[1024], *out = NULL;
    snprintf(request, sizeof request, "{\"texts\": %s}", texts);
    if (sentiment_classify(model, request, &out) != SENTIMENT_OK) {
        fprintf(stderr, "classify failed: %s\n", out ? out : "(no document)");
        sentiment_string_free(out);
        return NULL;
    }
    return out;
}

/* The "curve" member of a 3-step train's result, as JSON text (malloc'ed), or NULL. */
static char *train_curve(const char *model_dir, const char *train_file, int threads)
{
    char config[8192], *out = NULL;
    snprintf(config, sizeof config,
             "{\"model_dir\": \"%s\", \"train_file\": \"%s\", \"max_steps\": 3, \"train_batch_size\": 16, "
             "\"max_length\": 64, \"threads\": %d, \"save_strategy\": \"no\", \"seed\": 7}",
             model_dir, train_file, threads);
    int32_t status = sentiment_train(config, NULL, NULL, &out);
    char *curve = NULL;
    json_object *doc = out ? json_tokener_parse(out) : NULL;
    json_object *c = member(doc, "curve", json_type_object);
    if (status == SENTIMENT_OK && c)
        curve = strdup(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));
    else
        fprintf(stderr, "train failed (%d): %s\n", status, out ? out : "(no document)");
    json_object_put(doc);
    sentiment_string_free(out);
    return curve;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: signals MODEL_DIR TRAIN_TSV [THREADS] [SECONDS]\n");
        return 2;
    }
    const char *model_dir = argv[1], *train_file = argv[2];
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    double seconds = argc > 4 ? atof(argv[4]) : 10;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);

    /* The quiet answers: a model of each precision and its classify result, and a loss curve. */
    const char *precisions[] = {"fp32", "int8", "bf16"};
    sentiment_model *models[3] = {NULL, NULL, NULL};
    char *quiet[3] = {NULL, NULL, NULL}, msg[200];
    for (int p = 0; p < 3; p++) {
        char config[4200], *out = NULL;
        snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"threads\": %d, \"precision\": \"%s\"}", model_dir,
                 threads, precisions[p]);
        int32_t status = sentiment_model_load(config, &models[p], &out);
        if (status == SENTIMENT_INVALID_ARGUMENT && p == 2)
            printf("skip - bf16 classify: %s\n", out ? out : "(no document)");
        else if (status != SENTIMENT_OK || !(quiet[p] = classify(models[p])))
            return fprintf(stderr, "%s load: %s\n", precisions[p], out ? out : "(no document)"), 1;
        sentiment_string_free(out);
    }
    char *quiet_curve = train_curve(model_dir, train_file, threads);
    if (!quiet_curve)
        return 1;

    start_storm();
    for (int p = 0; p < 3; p++) {
        if (!models[p])
            continue;
        int calls = 0, same = 1;
        for (double end = now() + seconds / 3; now() < end; calls++) {
            char *got = classify(models[p]);
            if (!got || strcmp(got, quiet[p]) != 0)
                same = 0;
            sentiment_string_free(got);
        }
        snprintf(msg, sizeof msg, "%d %s classify calls with %d threads under signals agree with the quiet answer",
                 calls, precisions[p], threads);
        check(same && calls > 0, msg);
        sentiment_model_free(models[p]);
        free(quiet[p]);
    }
    long during_classify = atomic_load(&handled);

    int runs = 0, same = 1;
    for (double end = now() + seconds; now() < end || runs == 0; runs++) {
        char *curve = train_curve(model_dir, train_file, threads);
        if (!curve || strcmp(curve, quiet_curve) != 0)
            same = 0;
        free(curve);
    }
    stop_storm();
    snprintf(msg, sizeof msg, "%d 3-step trains under signals give the quiet loss curve", runs);
    check(same, msg);

    free(quiet_curve);
    printf("%ld signals handled (%ld during classify); %s\n", atomic_load(&handled), during_classify,
           failed ? "FAILED" : "all passed");
    return failed ? 1 : 0;
}
