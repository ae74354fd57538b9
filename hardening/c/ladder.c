/*
 * ladder: runs the bad-input catalogue under injected faults, each case at each injection
 * point in a forked child with a timeout, so an abort, a crash, an exit or a hang is counted
 * instead of ending the run.
 *
 *   ladder alloc CASES_JSON [--min-bytes B] [--every K] [--only TEXT] [--timeout S]
 *       the Nth allocation of at least B bytes (default 1 MB) fails, for every N the case reaches
 *   ladder aligned CASES_JSON [--min-bytes B] ...
 *       the same for allocations aligned to 64 bytes or more only (tensors, oneDNN), default 0 bytes
 *   ladder io CASES_JSON [--every K] [--only TEXT] [--timeout S]
 *       the Nth file-system call of faults.c fails, with each of ENOSPC EIO EROFS EDQUOT EINTR
 *   ladder rlimit CASES_JSON [--only TEXT] [--timeout S]
 *       RLIMIT_AS set to the child's size plus each headroom of HEADROOM_MB
 *
 * --every K samples every Kth point (always the first and the last); --only runs the cases whose
 * id contains TEXT; --at N runs point N (EIO or ENOMEM) of the first such case in this process,
 * for a debugger. alloc and io run under libfaults.so (the program preloads it itself, from
 * its own folder). A case first runs unarmed, counting the calls it makes; that run must be
 * clean. Then each point: clean is the case's expected status with all its checks, or another
 * error status with a well-formed error document (NOMEM, IO, ...); anything else fails.
 * In rlimit mode only headrooms of at least PROMISED_MB (MemoryGuard's reserve) must be clean:
 * below it a small allocation can fail, and Swift traps on that. Exits 1 on any failure.
 */
#define _GNU_SOURCE
#include "cases.h"
#include "faults.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int HEADROOM_MB[] = {1, 4, 16, 64, 128, 256, 288, 320, 384, 512, 1024, 2048, 4096};
enum { PROMISED_MB = 256 };
static const int IO_ERRNOS[] = {ENOSPC, EIO, EROFS, EDQUOT, EINTR};

/* What a child left in shared memory; `done` is 0 if it never got to the end of its case. */
struct report {
    int done, clean, signal;   /* signal: set by the parent, the one that ended the child */
    int32_t status;
    long counted, fired;
};

/* The kinds of result of one point. */
enum verdict { CLEAN_EXPECTED, CLEAN_OTHER, UNCLEAN, ABORT, CRASH, EXIT, HANG, NOT_REACHED, VERDICTS };
static const char *VERDICT_NAMES[] = {"expected status", "other clean error", "unclean result", "aborts (SIGABRT)",
                                      "crashes (other signals)", "exits", "hangs", "points not reached"};

static void (*arm)(int, long, int, size_t, int);
static long (*disarm)(void), (*fired)(void);
static struct {
    int kind, err;
    long nth;
    size_t min_bytes;
} plan;
static struct report *shared;
static int in_process;   /* --at: the one point runs here, not in a child (for a debugger) */

static void arm_now(void) { arm(plan.kind, plan.nth, plan.err, plan.min_bytes, 0); }

static void disarm_now(void)
{
    shared->fired = fired();
    shared->counted = disarm();
}

/* VmSize of this process in bytes (0 if unreadable). */
static long vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* Runs case `c` in a child (under an address-space limit of its size plus `headroom` bytes if
 * headroom > 0), waits at most `timeout` seconds, and says how it went. */
static enum verdict run_child(json_object *c, sentiment_model *valid, sentiment_model *stale, long headroom,
                              int timeout, struct report *r)
{
    memset(shared, 0, sizeof *shared);
    fflush(stdout);
    pid_t pid = in_process ? 0 : fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (headroom > 0) {
            struct rlimit limit = {(rlim_t)(vm_size() + headroom), RLIM_INFINITY};
            setrlimit(RLIMIT_AS, &limit);
        }
        struct outcome o;
        run_case(c, valid, stale, &o);
        shared->status = o.status;
        shared->clean = o.clean;
        shared->done = 1;
        if (in_process) {
            *r = *shared;
            printf("status %d, %s, %ld calls counted, %ld failed\n", r->status, r->clean ? "clean" : "unclean",
                   r->counted, r->fired);
            exit(r->clean ? 0 : 1);
        }
        _exit(0);
    }
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    struct timespec limit = {timeout, 0};
    int status = 0;
    pid_t got = 0;
    while (got == 0) {
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0 && sigtimedwait(&child, NULL, &limit) < 0 && errno == EAGAIN) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            *r = *shared;
            return HANG;
        }
    }
    *r = *shared;
    r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (WIFSIGNALED(status))   /* SIGALRM: the alarm of a case with a "timeout" */
        return WTERMSIG(status) == SIGABRT ? ABORT : WTERMSIG(status) == SIGALRM ? HANG : CRASH;
    if (!r->done || WEXITSTATUS(status) != 0)
        return EXIT;
    if (plan.kind && r->fired == 0)
        return NOT_REACHED;
    if (!r->clean)
        return UNCLEAN;
    return r->status == status_value(string_member(c, "expect")) ? CLEAN_EXPECTED : CLEAN_OTHER;
}

static void show_failure(const char *id, const char *at, enum verdict v, const struct report *r)
{
    printf("FAIL %s at %s: %s", id, at, VERDICT_NAMES[v]);
    if (v == UNCLEAN)
        printf(" (status %d)", r->status);
    if (v == CRASH)
        printf(" (%s)", strsignal(r->signal));
    printf("\n");
}

/* The address of a faults.c function, or NULL without the shim. */
static void *shim(const char *name) { return dlsym(RTLD_DEFAULT, name); }

/* Runs this program again with libfaults.so (beside it) preloaded. */
static void reexec_with_shim(char **argv)
{
    char self[PATH_MAX], lib[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "ladder: cannot find itself, so cannot preload libfaults.so\n");
        exit(2);
    }
    self[n] = 0;
    snprintf(lib, sizeof lib, "%s/libfaults.so", dirname(self));
    if (getenv("LD_PRELOAD")) {
        fprintf(stderr, "ladder: LD_PRELOAD is set but %s is not in it: cannot inject\n", lib);
        exit(2);
    }
    setenv("LD_PRELOAD", lib, 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "ladder: cannot run itself with %s: %s\n", lib, strerror(errno));
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "alloc") && strcmp(argv[1], "aligned") && strcmp(argv[1], "io") &&
                      strcmp(argv[1], "rlimit"))) {
        fprintf(stderr, "usage: %s alloc|aligned|io|rlimit CASES_JSON [--min-bytes B] [--every K] [--only TEXT] [--timeout S]\n",
                argv[0]);
        return 2;
    }
    const char *mode = argv[1], *only = NULL;
    long every = 1, min_bytes = strcmp(mode, "alloc") == 0 ? 1 << 20 : 0;
    int timeout = 60;
    long at_point = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--every"))
            every = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--min-bytes"))
            min_bytes = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
        else if (!strcmp(argv[i], "--at"))
            at_point = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout"))
            timeout = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "ladder: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (every < 1 || timeout < 1 || min_bytes < 0) {
        fprintf(stderr, "ladder: --every and --timeout must be at least 1, --min-bytes at least 0\n");
        return 2;
    }
    int injects = strcmp(mode, "rlimit") != 0;
    if (injects) {
        arm = shim("faults_arm");
        disarm = shim("faults_disarm");
        fired = shim("faults_fired");
        if (!arm || !disarm || !fired)
            reexec_with_shim(argv);
        before_call = arm_now;
        after_call = disarm_now;
    }
    json_object *table = json_object_from_file(argv[2]);
    json_object *cases = member(table, "cases", json_type_array);
    const char *model_dir = string_member(table, "model_dir");
    if (!cases || !model_dir) {
        fprintf(stderr, "%s: not a catalogue table\n", argv[2]);
        return 2;
    }
    sentiment_model *valid = NULL, *stale = NULL;
    if (!load_models(model_dir, &valid, &stale))
        return 2;
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child, NULL);
    cases_quiet = 1;

    long counts[VERDICTS] = {0}, promised[VERDICTS] = {0}, points = 0, ran = 0, total_calls = 0;
    int baseline_failures = 0;
    size_t n = json_object_array_length(cases);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        const char *id = string_member(c, "id");
        if (only && !strstr(id, only))
            continue;
        ran++;
        json_object *own = member(c, "timeout", json_type_int);
        int seconds = timeout + (own ? json_object_get_int(own) : 0);
        struct report r;
        char at[64];
        if (!injects) {
            for (size_t h = 0; h < sizeof HEADROOM_MB / sizeof HEADROOM_MB[0]; h++) {
                enum verdict v = run_child(c, valid, stale, (long)HEADROOM_MB[h] << 20, seconds, &r);
                counts[v]++;
                points++;
                if (HEADROOM_MB[h] >= PROMISED_MB) {
                    promised[v]++;
                    if (v >= UNCLEAN) {
                        snprintf(at, sizeof at, "headroom %d MB", HEADROOM_MB[h]);
                        show_failure(id, at, v, &r);
                    }
                }
            }
            continue;
        }
        plan.kind = !strcmp(mode, "alloc") ? FAULTS_ALLOC : !strcmp(mode, "aligned") ? FAULTS_ALIGNED : FAULTS_IO;
        plan.min_bytes = (size_t)min_bytes;
        plan.nth = LONG_MAX;   /* counts, fails nothing */
        plan.err = 0;
        if (at_point > 0) {
            plan.nth = at_point;
            plan.err = plan.kind == FAULTS_IO ? EIO : ENOMEM;
            in_process = 1;
        }
        enum verdict v = run_child(c, valid, stale, 0, seconds, &r);
        if (v != NOT_REACHED || !r.clean || r.status != status_value(string_member(c, "expect"))) {
            show_failure(id, "no fault", v == NOT_REACHED ? UNCLEAN : v, &r);
            baseline_failures++;
            continue;
        }
        long calls = r.counted;
        total_calls += calls;
        int io = plan.kind == FAULTS_IO;
        const int *errs = io ? IO_ERRNOS : (const int[]){ENOMEM};
        size_t nerrs = io ? sizeof IO_ERRNOS / sizeof IO_ERRNOS[0] : 1;
        for (long nth = 1; nth <= calls; nth = nth == calls ? calls + 1 : (nth + every > calls ? calls : nth + every)) {
            for (size_t e = 0; e < nerrs; e++) {
                plan.nth = nth;
                plan.err = errs[e];
                v = run_child(c, valid, stale, 0, seconds, &r);
                counts[v]++;
                points++;
                if (v >= UNCLEAN && v != NOT_REACHED) {
                    snprintf(at, sizeof at, "call %ld of %ld, %s", nth, calls, strerrorname_np(errs[e]));
                    show_failure(id, at, v, &r);
                }
            }
        }
    }
    sentiment_model_free(valid);
    json_object_put(table);

    long failures = baseline_failures;
    printf("ladder %s: %ld cases, %ld points", mode, ran, points);
    if (injects)
        printf(" (%ld calls counted, %s)", total_calls, strcmp(mode, "io") ? "allocations of at least --min-bytes" : "each with 5 errnos");
    printf("\n");
    for (int v = 0; v < VERDICTS; v++) {
        printf("  %-26s %ld", VERDICT_NAMES[v], counts[v]);
        if (!injects)
            printf("   (%ld at headrooms >= %d MB)", promised[v], PROMISED_MB);
        printf("\n");
        if (v >= UNCLEAN && v != NOT_REACHED)
            failures += injects ? counts[v] : promised[v];
    }
    if (baseline_failures)
        printf("  %d cases failed without a fault\n", baseline_failures);
    if (points == 0) {
        printf("ladder %s: SKIPPED, no injection point (no case reached a counted call)\n", mode);
        return 77;
    }
    printf("ladder %s: %ld failures\n", mode, failures);
    return failures > 0;
}
