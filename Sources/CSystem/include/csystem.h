// Linux system calls that Swift's Glibc module does not import.
#ifndef SENTIMENT_CSYSTEM_H
#define SENTIMENT_CSYSTEM_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>

// renameat2(from, to, RENAME_EXCHANGE): swaps two existing paths in one atomic step.
// Returns 0, or -1 with errno set (EINVAL or ENOSYS where the file system or kernel lacks it).
int csystem_rename_exchange(const char *from, const char *to);

// renameat2(fromdir, from, todir, to, RENAME_NOREPLACE): moves an entry between two open
// folders, failing with EEXIST rather than replacing one of the same name.
int csystem_renameat_noreplace(int fromdir, const char *from, int todir, const char *to);

// The number of CPUs in this thread's affinity mask (sched_getaffinity), or 0 if unknown.
int csystem_affinity_cpus(void);

// Fork: libgomp's thread pool belongs to the thread that started it, and after fork(2) the
// child has that thread but not the pool's workers, so its next parallel region waits
// forever. At load the library registers fork handlers: in the child, the forking thread is
// marked (csystem_thread_forked), and the library runs that thread's calls on a new thread,
// which builds a new pool (csystem_run_on_new_thread).

// 1 on the thread that called fork(2), in the child; else 0.
int csystem_thread_forked(void);

// Runs fn(context) on a new thread with `stack_bytes` of stack and waits for it.
// Returns 0, or an errno value when the thread cannot be created (fn has not run).
int csystem_run_on_new_thread(void (*fn)(void *), void *context, size_t stack_bytes);

// Initializes *mutex and registers it for fork: the parent takes it before fork(2) and both
// processes release it after, so no child inherits it held by a thread it does not have.
// At most 16 mutexes; returns 0, or -1 when the table is full (the mutex is still initialized).
int csystem_fork_safe_mutex_init(pthread_mutex_t *mutex);

// Signals: oneDNN's f32 GEMM kernels point the stack pointer at a heap workspace, so a signal
// handler that runs there writes its frame over the heap. Every oneDNN call and parallel region
// runs between these two: the calling thread holds back the asynchronous signals (all but
// SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS and SIGABRT) and they are delivered when the
// call returns. libgomp's workers are created inside, so they inherit the mask and keep it.

// Blocks the asynchronous signals on the calling thread; *old receives the previous mask.
// Nested calls on a thread that already holds them do nothing (and leave *old unset).
void csystem_hold_signals(sigset_t *old);
// Restores the mask the outermost csystem_hold_signals saved (signals that came meanwhile arrive
// now); nested calls do nothing.
void csystem_release_signals(const sigset_t *old);

// ThreadSanitizer does not see libgomp's (uninstrumented) fork and join. Under TSan (its
// runtime in the process) these mark them: release before a parallel region and after each
// thread's share, acquire before each share and after the region. Elsewhere they do nothing.
void csystem_tsan_release(void *addr);
void csystem_tsan_acquire(void *addr);

#endif
