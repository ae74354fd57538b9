/*
 * libfaults.so: an LD_PRELOAD shim that fails the Nth allocation or the Nth file-system call,
 * for the fault-injection ladders of hardening/c/ladder.c.
 *
 * Nothing is counted until a test arms it (the loader's and the runner's own calls are not):
 *   faults_arm(FAULTS_ALLOC, n, ENOMEM, min_bytes, sticky)   malloc, calloc, realloc,
 *       posix_memalign, aligned_alloc, memalign, valloc, pvalloc of at least min_bytes
 *   faults_arm(FAULTS_ALIGNED, n, ENOMEM, min_bytes, sticky)   only those that libsentiment.so
 *       itself aligns to 64 bytes or more (posix_memalign, aligned_alloc, memalign): its tensors
 *       (MemoryGuard); the Swift runtime in it asks for 16, oneDNN's calls come from libdnnl
 *   faults_arm(FAULTS_IO, n, errno, 0, sticky)   write, fsync, rename, renameat2 (also through
 *       syscall(2)), mkdtemp, mkstemp, open, openat, opendir, fdopendir, mkdir, mkdirat, linkat
 * The nth counted call (1-based) fails with the errno, and with sticky every later one too.
 * faults_disarm() stops counting and returns how many calls were counted; faults_pause(1) stops
 * it until faults_pause(0) (a test's own calls in between are not counted).
 * Allocations go to glibc's __libc_* functions, file-system calls to the next definition (dlsym).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "faults.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static _Atomic int armed;   /* 0, FAULTS_ALLOC, FAULTS_ALIGNED or FAULTS_IO */
static _Atomic int paused;
static _Atomic long counted, nth, fired;
static int fault_errno, sticky;
static size_t min_bytes;

void faults_arm(int kind, long n, int err, size_t min, int keep_failing)
{
    atomic_store(&counted, 0);
    atomic_store(&fired, 0);
    atomic_store(&nth, n);
    fault_errno = err;
    min_bytes = min;
    sticky = keep_failing;
    atomic_store(&paused, 0);
    atomic_store(&armed, kind);
}

long faults_disarm(void)
{
    atomic_store(&armed, 0);
    return atomic_load(&counted);
}

long faults_fired(void) { return atomic_load(&fired); }

long faults_counted(void) { return atomic_load(&counted); }

void faults_pause(int on) { atomic_store(&paused, on); }

/* Counts a call of `kind`; true (errno set) if it is to fail. */
static int fail(int kind)
{
    if (atomic_load_explicit(&armed, memory_order_relaxed) != kind || atomic_load(&paused))
        return 0;
    long n = atomic_fetch_add(&counted, 1) + 1, at = atomic_load(&nth);
    if (n != at && !(sticky && n > at))
        return 0;
    atomic_fetch_add(&fired, 1);
    errno = fault_errno;
    return 1;
}

static int fail_alloc(size_t bytes) { return bytes >= min_bytes && fail(FAULTS_ALLOC); }

/* Whether code at `address` is in libsentiment.so. */
static int in_library(void *address)
{
    Dl_info info;
    return dladdr(address, &info) && info.dli_fname && strstr(info.dli_fname, "libsentiment");
}

static int fail_aligned(size_t alignment, size_t bytes, void *caller)
{
    if (bytes < min_bytes)
        return 0;
    if (fail(FAULTS_ALLOC))
        return 1;
    return alignment >= 64 && atomic_load_explicit(&armed, memory_order_relaxed) == FAULTS_ALIGNED && in_library(caller) &&
           fail(FAULTS_ALIGNED);
}

/* ---- allocation ------------------------------------------------------------------------- */

void *malloc(size_t n) { return fail_alloc(n) ? NULL : __libc_malloc(n); }

void *calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n))
        n = SIZE_MAX;
    return fail_alloc(n) ? NULL : __libc_calloc(count, size);
}

void *realloc(void *p, size_t n) { return p && n == 0 ? __libc_realloc(p, 0) : fail_alloc(n) ? NULL : __libc_realloc(p, n); }

void *memalign(size_t alignment, size_t n)
{
    return fail_aligned(alignment, n, __builtin_return_address(0)) ? NULL : __libc_memalign(alignment, n);
}

void *aligned_alloc(size_t alignment, size_t n)
{
    return fail_aligned(alignment, n, __builtin_return_address(0)) ? NULL : __libc_memalign(alignment, n);
}

void *valloc(size_t n) { return fail_alloc(n) ? NULL : __libc_valloc(n); }

void *pvalloc(size_t n) { return fail_alloc(n) ? NULL : __libc_pvalloc(n); }

int posix_memalign(void **out, size_t alignment, size_t n)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    if (fail_aligned(alignment, n, __builtin_return_address(0)))
        return ENOMEM;
    void *p = __libc_memalign(alignment, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* ---- file-system calls ------------------------------------------------------------------ */

#define NEXT(name) static __typeof__(name) *next; if (!next) next = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n)
{
    NEXT(write);
    return fail(FAULTS_IO) ? -1 : next(fd, buf, n);
}

int fsync(int fd)
{
    NEXT(fsync);
    return fail(FAULTS_IO) ? -1 : next(fd);
}

int rename(const char *from, const char *to)
{
    NEXT(rename);
    return fail(FAULTS_IO) ? -1 : next(from, to);
}

int renameat2(int fromdir, const char *from, int todir, const char *to, unsigned flags)
{
    NEXT(renameat2);
    return fail(FAULTS_IO) ? -1 : next(fromdir, from, todir, to, flags);
}

long syscall(long number, ...)
{
    NEXT(syscall);
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_renameat2 && fail(FAULTS_IO))
        return -1;
    return next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

char *mkdtemp(char *template)
{
    NEXT(mkdtemp);
    return fail(FAULTS_IO) ? NULL : next(template);
}

int mkstemp(char *template)
{
    NEXT(mkstemp);
    return fail(FAULTS_IO) ? -1 : next(template);
}

static mode_t mode_argument(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    NEXT(open);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    return fail(FAULTS_IO) ? -1 : next(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    NEXT(open64);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    return fail(FAULTS_IO) ? -1 : next(path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    NEXT(openat);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    return fail(FAULTS_IO) ? -1 : next(dir, path, flags, mode);
}

DIR *opendir(const char *path)
{
    NEXT(opendir);
    return fail(FAULTS_IO) ? NULL : next(path);
}

DIR *fdopendir(int fd)
{
    NEXT(fdopendir);
    return fail(FAULTS_IO) ? NULL : next(fd);
}

int mkdir(const char *path, mode_t mode)
{
    NEXT(mkdir);
    return fail(FAULTS_IO) ? -1 : next(path, mode);
}

int mkdirat(int dir, const char *path, mode_t mode)
{
    NEXT(mkdirat);
    return fail(FAULTS_IO) ? -1 : next(dir, path, mode);
}

int linkat(int fromdir, const char *from, int todir, const char *to, int flags)
{
    NEXT(linkat);
    return fail(FAULTS_IO) ? -1 : next(fromdir, from, todir, to, flags);
}
