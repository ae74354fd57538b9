#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "csystem.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int csystem_rename_exchange(const char *from, const char *to) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE);
}

int csystem_renameat_noreplace(int fromdir, const char *from, int todir, const char *to) {
    return (int)syscall(SYS_renameat2, fromdir, from, todir, to, RENAME_NOREPLACE);
}

int csystem_affinity_cpus(void) {
    for (int n = 1024; n <= (1 << 20); n *= 4) {   // masks larger than cpu_set_t's 1024 CPUs too
        cpu_set_t *set = CPU_ALLOC((size_t)n);
        if (!set)
            return 0;
        size_t size = CPU_ALLOC_SIZE((size_t)n);
        int count = sched_getaffinity(0, size, set) == 0 ? CPU_COUNT_S(size, set) : -1;
        CPU_FREE(set);
        if (count >= 0)
            return count;
    }
    return 0;
}

// --- fork ---------------------------------------------------------------------------------

static __thread int thread_forked;
static pthread_mutex_t *fork_mutexes[16];
static int fork_mutex_count;
static pthread_mutex_t fork_table_lock = PTHREAD_MUTEX_INITIALIZER;

static void before_fork(void) {
    pthread_mutex_lock(&fork_table_lock);
    for (int i = 0; i < fork_mutex_count; i++)
        pthread_mutex_lock(fork_mutexes[i]);
}

static void after_fork_parent(void) {
    for (int i = fork_mutex_count - 1; i >= 0; i--)
        pthread_mutex_unlock(fork_mutexes[i]);
    pthread_mutex_unlock(&fork_table_lock);
}

static void after_fork_child(void) {
    after_fork_parent();
    thread_forked = 1;
}

__attribute__((constructor)) static void watch_fork(void) {
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

int csystem_thread_forked(void) { return thread_forked; }

struct thunk {
    void (*fn)(void *);
    void *context;
};

static void *run_thunk(void *arg) {
    struct thunk *t = arg;
    t->fn(t->context);
    return NULL;
}

int csystem_run_on_new_thread(void (*fn)(void *), void *context, size_t stack_bytes) {
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err)
        return err;
    if (stack_bytes)
        pthread_attr_setstacksize(&attr, stack_bytes);
    struct thunk t = {fn, context};
    pthread_t thread;
    err = pthread_create(&thread, &attr, run_thunk, &t);
    pthread_attr_destroy(&attr);
    if (err)
        return err;
    return pthread_join(thread, NULL);
}

int csystem_fork_safe_mutex_init(pthread_mutex_t *mutex) {
    pthread_mutex_init(mutex, NULL);
    pthread_mutex_lock(&fork_table_lock);
    int ok = fork_mutex_count < (int)(sizeof fork_mutexes / sizeof fork_mutexes[0]);
    if (ok)
        fork_mutexes[fork_mutex_count++] = mutex;
    pthread_mutex_unlock(&fork_table_lock);
    return ok ? 0 : -1;
}

// How deep the calling thread is in csystem_hold_signals: only the outermost pair changes the mask.
static __thread unsigned hold_depth;

void csystem_hold_signals(sigset_t *old) {
    if (hold_depth++ > 0)
        return;
    sigset_t held;
    sigfillset(&held);
    // A fault raised while its signal is blocked kills the process at once: leave them open.
    int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&held, faults[i]);
    pthread_sigmask(SIG_BLOCK, &held, old);
}

void csystem_release_signals(const sigset_t *old) {
    if (--hold_depth > 0)
        return;
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

// Weak: resolved only when a TSan runtime is in the process.
void __tsan_acquire(void *addr) __attribute__((weak));
void __tsan_release(void *addr) __attribute__((weak));

void csystem_tsan_release(void *addr) {
    if (__tsan_release)
        __tsan_release(addr);
}

void csystem_tsan_acquire(void *addr) {
    if (__tsan_acquire)
        __tsan_acquire(addr);
}
