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
 *   ladder save CASES_JSON [--every K] [--timeout S]
 *       the Nth file-system call of a save, or of a training run that saves, over an older
 *       checkpoint fails (each errno as in io): after it output_dir holds the checkpoint of the
 *       last save that succeeded (the older one if none did) byte for byte, and it loads; no
 *       staging folder is left; the error names output_dir; a run that made steps returns them
 *       as its partial "result"
 *   ladder rlimit CASES_JSON [--only TEXT] [--timeout S]
 *       RLIMIT_AS set to the child's size plus each headroom of HEADROOM_MB, around the library call
 *
 * --every K samples every Kth point (always the first and the last; in rlimit mode every Kth case); --only runs the cases whose
 * id contains TEXT; --at N runs point N (EIO or ENOMEM) of the first such case in this process,
 * for a debugger. alloc and io run under libfaults.so (the program preloads it itself, from
 * its own folder). A case first runs unarmed, counting the calls it makes; that run must be
 * clean. Then each point: clean is the case's expected status with all its checks, or another
 * error status with a well-formed error document (NOMEM, IO, ...); anything else fails.
 * In rlimit mode every headroom must be clean: below MemoryGuard's reserve (256 MB) the library
 * refuses a call up front with NOMEM, since the Swift runtime traps when a small allocation fails.
 * Exits 1 on any failure.
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
#include <sys/stat.h>
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int HEADROOM_MB[] = {1, 4, 16, 64, 128, 256, 288, 320, 384, 512, 1024, 2048, 4096};
static const int IO_ERRNOS[] = {ENOSPC, EIO, EROFS, EDQUOT, EINTR};

/* What a child left in shared memory; `done` is 0 if it never got to the end of its case. */
struct report {
    int done, clean, signal;   /* signal: set by the parent, the one that ended the child */
    int32_t status;
    long counted, fired;
    char why[512];             /* what a save scenario found wrong */
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

/* Runs `body(arg)` in a child (which fills `shared`), waits at most `timeout` seconds and
 * says how it ended: ABORT, CRASH, HANG, EXIT (it ended without `done`), else NOT_REACHED (the
 * fault never fired) or CLEAN_EXPECTED, which the caller refines from `*r`. */
static enum verdict in_child(void (*body)(void *), void *arg, int timeout, struct report *r)
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
        body(arg);
        shared->done = 1;
        if (in_process) {
            *r = *shared;
            printf("status %d, %s, %ld calls counted, %ld failed%s%s\n", r->status, r->clean ? "clean" : "unclean",
                   r->counted, r->fired, *r->why ? ": " : "", r->why);
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
    return CLEAN_EXPECTED;
}

struct case_run {
    json_object *c;
    sentiment_model *valid, *stale;
    long headroom;
};

/* rlimit mode: the child's headroom, applied right before the library call and lifted right
 * after it, so reading a large request file and checking the result are not limited. */
static long headroom_now;

static void limit_now(void)
{
    struct rlimit limit = {(rlim_t)(vm_size() + headroom_now), RLIM_INFINITY};
    setrlimit(RLIMIT_AS, &limit);
}

static void unlimit_now(void)
{
    struct rlimit limit = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_AS, &limit);
}

static void case_body(void *arg)
{
    struct case_run *k = arg;
    headroom_now = k->headroom;
    struct outcome o;
    run_case(k->c, k->valid, k->stale, &o);
    shared->status = o.status;
    shared->clean = o.clean;
}

/* Runs case `c` in a child (under an address-space limit of its size plus `headroom` bytes if
 * headroom > 0), waits at most `timeout` seconds, and says how it went. */
static enum verdict run_child(json_object *c, sentiment_model *valid, sentiment_model *stale, long headroom,
                              int timeout, struct report *r)
{
    struct case_run k = {c, valid, stale, headroom};
    enum verdict v = in_child(case_body, &k, timeout, r);
    if (v != CLEAN_EXPECTED)
        return v;
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

/* ---- save scenarios: the Nth file-system call of a save or a training run fails ------------ */

/* A save scenario: a save over an older checkpoint, or a training run saving into one. */
struct scenario {
    const char *name;
    int train;
    const char *extra;   /* train config keys */
};
static const struct scenario SCENARIOS[] = {
    {"save", 0, ""},
    {"train-best", 1, "\"save_strategy\": \"best\""},
    {"train-epoch-state", 1, "\"save_strategy\": \"epoch\", \"save_optimizer_state\": true"},
};
enum { MAX_SAVES = 8 };

/* What the unfaulted run of a scenario showed: the fingerprint of output_dir before the call and
 * after each save, and the calls counted when the first step ended. */
static struct reference {
    unsigned long long folder[MAX_SAVES + 1];
    int saves;
    long calls_at_first_step;
} *ref;

static const struct scenario *scene;
static const char *out_dir, *train_model, *train_file;
static sentiment_model *save_model;
static long (*counted_now)(void);
static void (*pause_faults)(int);

static unsigned long long fnv(unsigned long long h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ULL;
    return h;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sets every "seconds" and "train_seconds" member under `o` to 0: wall-clock figures, which
 * differ between any two runs. */
static void zero_timings(json_object *o)
{
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            zero_timings(json_object_array_get_idx(o, i));
    } else if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, value) {
            if (!strcmp(key, "seconds") || !strcmp(key, "train_seconds"))
                json_object_object_add(o, key, json_object_new_double(0));
            else
                zero_timings(value);
        }
    }
}

/* The hash of a file's bytes; for trainer_state.json, of its JSON with the timings zeroed. */
static unsigned long long file_hash(unsigned long long h, const char *path, const char *name, size_t size)
{
    char *bytes = read_file(path);
    if (!bytes)
        return fnv(h, "unreadable", 10);
    json_object *state = strcmp(name, "trainer_state.json") ? NULL : json_tokener_parse(bytes);
    if (state) {
        zero_timings(state);
        const char *text = json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN);
        h = fnv(h, text, strlen(text));
        json_object_put(state);
    } else {
        h = fnv(h, bytes, size);
    }
    free(bytes);
    return h;
}

/* A hash of the names, kinds and bytes under `path` (sorted, recursive), staging folders
 * (".saving-") left out: they are checked on their own. *staging counts them. */
static unsigned long long fingerprint(const char *path, int *staging)
{
    unsigned long long h = 1469598103934665603ULL;
    DIR *d = opendir(path);
    if (!d)
        return fnv(h, "missing", 7);
    char *names[512];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 512;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    for (size_t i = 0; i < n; i++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, names[i]);
        if (strstr(names[i], ".saving-")) {
            ++*staging;
        } else {
            h = fnv(h, names[i], strlen(names[i]) + 1);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
                unsigned long long inner = fingerprint(sub, staging);
                h = fnv(h, &inner, sizeof inner);
            } else {
                h = file_hash(h, sub, names[i], (size_t)st.st_size);
            }
        }
        free(names[i]);
    }
    return h;
}

/* out_dir and its parent's staging folders: fingerprint, and how many staging folders. */
static unsigned long long out_state(int *staging)
{
    *staging = 0;
    char parent[PATH_MAX], prefix[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", out_dir);
    char *slash = strrchr(parent, '/');
    *slash = 0;
    snprintf(prefix, sizeof prefix, ".%s.saving-", slash + 1);
    DIR *d = opendir(parent);
    for (struct dirent *e; d && (e = readdir(d));)
        *staging += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return fingerprint(out_dir, staging);
}

/* Whether out_dir loads and classifies. */
static int out_loads(void)
{
    char config[PATH_MAX + 64], *out = NULL;
    snprintf(config, sizeof config, "{\"model_dir\": \"%s\", \"max_length\": 64, \"threads\": 1}", out_dir);
    sentiment_model *m = NULL;
    int ok = sentiment_model_load(config, &m, NULL) == SENTIMENT_OK &&
             sentiment_classify(m, "{\"texts\": [\"a good movie\"]}", &out) == SENTIMENT_OK;
    sentiment_string_free(out);
    sentiment_model_free(m);
    return ok;
}

struct progress {
    int saves;
    long steps;
    int recording;   /* the reference run: fingerprint after each save */
};

static int on_progress(const char *event, void *data)
{
    struct progress *p = data;
    pause_faults(1);
    json_object *doc = json_tokener_parse(event);
    const char *kind = string_member(doc, "event");
    if (kind && !strcmp(kind, "step")) {
        json_object *step = member(doc, "step", json_type_int);
        p->steps = step ? json_object_get_int64(step) : p->steps;
        if (p->recording && p->steps == 1)
            ref->calls_at_first_step = counted_now();
    } else if (kind && !strcmp(kind, "saved") && p->saves < MAX_SAVES) {
        p->saves++;
        if (p->recording) {
            int staging;
            ref->folder[p->saves] = fingerprint(out_dir, &staging);
            ref->saves = p->saves;
        }
    }
    json_object_put(doc);
    pause_faults(0);
    return 0;
}

/* Puts the older checkpoint in out_dir: a bf16 save of the model, and a subfolder of another run. */
static void prepare_out(void)
{
    char command[PATH_MAX + 16], config[PATH_MAX + 64], marker[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", out_dir);
    if (system(command) != 0 || mkdir(out_dir, 0755) != 0) {
        fprintf(stderr, "ladder: cannot make %s\n", out_dir);
        exit(2);
    }
    snprintf(config, sizeof config, "{\"output_dir\": \"%s\", \"precision\": \"bf16\"}", out_dir);
    snprintf(marker, sizeof marker, "%s/kept", out_dir);
    FILE *f = NULL;
    if (sentiment_model_save(save_model, config, NULL) != SENTIMENT_OK || mkdir(marker, 0755) != 0 ||
        !(f = fopen(strcat(marker, "/marker"), "w")) || fputs("another run's folder\n", f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "ladder: cannot put a checkpoint in %s\n", out_dir);
        exit(2);
    }
}

#define WRONG(...) (snprintf(shared->why, sizeof shared->why, __VA_ARGS__), shared->clean = 0)

/* One run of the scenario in a child: the call with the fault of `plan`, then the checks. */
static void scenario_body(void *arg)
{
    int recording = arg != NULL;
    int staging;
    if (recording)
        ref->folder[0] = out_state(&staging);
    struct progress p = {0, 0, recording};
    char config[3 * PATH_MAX], *out = NULL;
    if (scene->train)
        snprintf(config, sizeof config,
                 "{\"model_dir\": \"%s\", \"train_file\": \"%s\", \"output_dir\": \"%s\", \"num_train_epochs\": 2, "
                 "\"train_batch_size\": 4, \"max_length\": 64, \"threads\": 1, \"logging_steps\": 1, %s}",
                 train_model, train_file, out_dir, scene->extra);
    else
        snprintf(config, sizeof config, "{\"output_dir\": \"%s\"}", out_dir);
    arm_now();
    int32_t status = scene->train ? sentiment_train(config, on_progress, &p, &out)
                                  : sentiment_model_save(save_model, config, &out);
    disarm_now();
    if (!scene->train)
        p.saves = status == SENTIMENT_OK;
    json_object *doc = out ? json_tokener_parse(out) : NULL;
    shared->status = status;
    shared->clean = 1;
    unsigned long long now = out_state(&staging);
    if (recording && !scene->train && status == SENTIMENT_OK) {
        ref->folder[1] = now;
        ref->saves = 1;
    }
    json_object *error = member(doc, "error", json_type_object), *result = member(doc, "result", json_type_object);
    const char *field = string_member(error, "field"), *message = string_member(error, "message");
    int saves = recording ? p.saves : status == SENTIMENT_OK ? ref->saves : p.saves;
    if (recording && status != SENTIMENT_OK)
        WRONG("the run without a fault failed: %s", out ? out : "(no document)");
    else if (!recording && status == SENTIMENT_OK && p.saves != ref->saves)
        WRONG("%d saves, the run without a fault made %d", p.saves, ref->saves);
    else if (status != SENTIMENT_OK && !is_error_document(doc, status))
        WRONG("status %d without a well-formed error document: %s", status, out ? out : "(none)");
    else if (!recording && now != ref->folder[saves])
        WRONG("output_dir is not the checkpoint of save %d of %d (0: the older one), byte for byte", saves, ref->saves);
    else if (staging)
        WRONG("%d staging folders left", staging);
    else if (!out_loads())
        WRONG("output_dir does not load");
    else if (status != SENTIMENT_OK && (!scene->train || ref->calls_at_first_step < plan.nth) &&
             !(field && !strcmp(field, "output_dir")))
        WRONG("the error names %s, not output_dir: %s", field ? field : "no field", message);
    else if (status != SENTIMENT_OK && scene->train && p.steps > 0 &&
             !(result && member(result, "steps", json_type_int) &&
               json_object_get_int64(member(result, "steps", json_type_int)) == p.steps))
        WRONG("no partial result of the %ld steps done: %s", p.steps, out);
    json_object_put(doc);
    sentiment_string_free(out);
}

/* Runs every scenario at every `every`th call, with each errno. Returns the failures. */
static long save_ladder(const char *work, long every, int timeout, const char *only, long at_point, long counts[VERDICTS],
                        long *points)
{
    char out[PATH_MAX], train[PATH_MAX];
    snprintf(out, sizeof out, "%s/ladder-save/output", work);
    snprintf(train, sizeof train, "%s/ladder-save/train.tsv", work);
    out_dir = out;
    train_file = train;
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%s/ladder-save", work);
    mkdir(folder, 0755);
    FILE *f = fopen(train, "w");
    if (!f || fputs("sentence\tlabel\na good movie\t2\nawful\t0\nthe film\t1\ngreat fun\t2\n"
                    "a good movie\t2\nawful\t0\nthe film\t1\ngreat fun\t2\n", f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "ladder: cannot write %s\n", train);
        exit(2);
    }
    ref = mmap(NULL, sizeof *ref, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    long failures = 0;
    for (size_t s = 0; s < sizeof SCENARIOS / sizeof SCENARIOS[0]; s++) {
        scene = &SCENARIOS[s];
        if (only && !strstr(scene->name, only))
            continue;
        struct report r;
        plan.nth = LONG_MAX;
        plan.err = 0;
        prepare_out();
        memset(ref, 0, sizeof *ref);
        ref->calls_at_first_step = LONG_MAX;
        enum verdict v = in_child(scenario_body, (void *)1, timeout, &r);
        if (v != NOT_REACHED || !r.clean) {
            printf("FAIL %s without a fault: %s %s\n", scene->name, VERDICT_NAMES[v], r.why);
            failures++;
            continue;
        }
        long calls = r.counted;
        printf("ladder save: %s: %ld calls, %d saves\n", scene->name, calls, ref->saves);
        if (at_point > 0) {   /* one point, here, and output_dir left as it is */
            plan.nth = at_point;
            plan.err = EIO;
            prepare_out();
            in_process = 1;
            in_child(scenario_body, NULL, timeout, &r);
        }
        for (long nth = 1; nth <= calls; nth = nth == calls ? calls + 1 : (nth + every > calls ? calls : nth + every)) {
            for (size_t e = 0; e < sizeof IO_ERRNOS / sizeof IO_ERRNOS[0]; e++) {
                plan.nth = nth;
                plan.err = IO_ERRNOS[e];
                prepare_out();
                v = in_child(scenario_body, NULL, timeout, &r);
                if (v == CLEAN_EXPECTED && !r.clean)
                    v = UNCLEAN;
                else if (v == CLEAN_EXPECTED && r.status != SENTIMENT_OK)
                    v = CLEAN_OTHER;
                counts[v]++;
                ++*points;
                if (v >= UNCLEAN && v != NOT_REACHED) {
                    printf("FAIL %s at call %ld of %ld, %s: %s%s%s\n", scene->name, nth, calls, strerrorname_np(IO_ERRNOS[e]),
                           VERDICT_NAMES[v], *r.why ? ": " : "", r.why);
                    failures++;
                }
            }
        }
    }
    return failures;
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
                      strcmp(argv[1], "save") && strcmp(argv[1], "rlimit"))) {
        fprintf(stderr, "usage: %s alloc|aligned|io|save|rlimit CASES_JSON [--min-bytes B] [--every K] [--only TEXT] [--timeout S]\n",
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
        counted_now = shim("faults_counted");
        pause_faults = shim("faults_pause");
        if (!arm || !disarm || !fired || !counted_now || !pause_faults)
            reexec_with_shim(argv);
        before_call = arm_now;
        after_call = disarm_now;
    } else {
        before_call = limit_now;
        after_call = unlimit_now;
    }
    json_object *table = NULL, *cases = NULL;
    sentiment_model *valid = NULL, *stale = NULL;
    if (!open_table(argv[2], &table, &cases, &valid, &stale))
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
    if (!strcmp(mode, "save")) {
        char work[PATH_MAX];
        snprintf(work, sizeof work, "%s", argv[2]);
        plan.kind = FAULTS_IO;
        save_model = valid;
        train_model = string_member(table, "model_dir");
        long counts[VERDICTS] = {0}, points = 0;
        long failures = save_ladder(dirname(work), every, timeout, only, at_point, counts, &points);
        printf("ladder save: %zu scenarios, %ld points (each call with 5 errnos)\n", sizeof SCENARIOS / sizeof SCENARIOS[0],
               points);
        for (int v = 0; v < VERDICTS; v++)
            printf("  %-26s %ld\n", VERDICT_NAMES[v], counts[v]);
        printf("ladder save: %ld failures\n", failures);
        sentiment_model_free(valid);
        return failures > 0 || points == 0;
    }

    long counts[VERDICTS] = {0}, points = 0, seen = 0, ran = 0, total_calls = 0;
    int baseline_failures = 0;
    size_t n = json_object_array_length(cases);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        const char *id = string_member(c, "id");
        if (only && !strstr(id, only))
            continue;
        if (!injects && seen++ % every != 0)   /* rlimit --every K: every Kth case */
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
                if (v >= UNCLEAN) {
                    snprintf(at, sizeof at, "headroom %d MB", HEADROOM_MB[h]);
                    show_failure(id, at, v, &r);
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
        printf("  %-26s %ld\n", VERDICT_NAMES[v], counts[v]);
        if (v >= UNCLEAN && v != NOT_REACHED)
            failures += counts[v];
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
