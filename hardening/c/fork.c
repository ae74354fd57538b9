/*
 * fork: the library in a child process made by fork(2), as pyspark's workers, multiprocessing,
 * gunicorn --preload and Celery's prefork pool make them.
 *
 *   fork MODEL_DIR
 *
 *   1. The parent classifies with 2 threads (so libgomp's pool exists), then forks; the child
 *      classifies with 2 threads and must give the parent's answer, byte for byte.
 *   2. The same with a second thread of the parent in the middle of classify calls at each fork
 *      (5 forks).
 *   3. A child of a child (fork twice) classifies.
 * Each child runs under alarm(60): a hang is SIGALRM, reported as a failure. Prints one line
 * per check; exits 1 if any failed.
 */
#include "testlib.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;
static const char *request = "{\"texts\": [\"a good movie\", \"dull and boring\", \"it is charming\"]}";

static void check(int ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok  " : "FAIL", what);
    fflush(stdout);
    failed += !ok;
}

/* classify's document, or NULL (after a message) on failure; the caller frees it. */
static char *classify(sentiment_model *model)
{
    char *out = NULL;
    if (sentiment_classify(model, request, &out) != SENTIMENT_OK) {
        fprintf(stderr, "classify failed: %s\n", out ? out : "(no document)");
        sentiment_string_free(out);
        return NULL;
    }
    return out;
}

static int fork_and_classify(sentiment_model *model, const char *expected, int depth);

/* In a child: classify, compare with `expected`, and with depth > 1 fork again. */
static int child_agrees(sentiment_model *model, const char *expected, int depth)
{
    char *got = classify(model);
    int same = got && strcmp(got, expected) == 0;
    sentiment_string_free(got);
    return same && (depth <= 1 || fork_and_classify(model, expected, depth - 1));
}

/* Forks a child that classifies (`depth` generations deep); returns whether it agreed. */
static int fork_and_classify(sentiment_model *model, const char *expected, int depth)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        _exit(child_agrees(model, expected, depth) ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "child killed by signal %d%s\n", WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct busy {
    sentiment_model *model;
    atomic_int stop;
    atomic_int calls;
};

static void *keep_classifying(void *arg)
{
    struct busy *b = arg;
    while (!atomic_load(&b->stop)) {
        sentiment_string_free(classify(b->model));
        atomic_fetch_add(&b->calls, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    char config[4096];
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"threads\": 2}", argv[1]);
    sentiment_model *model = NULL;
    char *out = NULL;
    if (sentiment_model_load(config, &model, &out) != SENTIMENT_OK) {
        fprintf(stderr, "load failed: %s\n", out ? out : "");
        return 1;
    }
    sentiment_string_free(out);
    char *expected = classify(model);
    check(expected != NULL, "the parent classifies with 2 threads");
    if (!expected)
        return 1;

    check(fork_and_classify(model, expected, 1), "a forked child classifies with 2 threads, as the parent did");

    struct busy b = {.model = model};
    pthread_t thread;
    pthread_create(&thread, NULL, keep_classifying, &b);
    int all = 1;
    for (int i = 0; i < 5; i++) {
        while (atomic_load(&b.calls) < i + 1)
            usleep(1000);
        all &= fork_and_classify(model, expected, 1);
    }
    atomic_store(&b.stop, 1);
    pthread_join(thread, NULL);
    check(all, "5 children forked while another thread was mid-classify classify");

    check(fork_and_classify(model, expected, 2), "a child of a forked child classifies");

    sentiment_string_free(expected);
    sentiment_model_free(model);
    printf("fork: %d failed\n", failed);
    return failed ? 1 : 0;
}
