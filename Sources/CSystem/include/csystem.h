// Linux system calls that Swift's Glibc module does not import.
#ifndef SENTIMENT_CSYSTEM_H
#define SENTIMENT_CSYSTEM_H

// renameat2(from, to, RENAME_EXCHANGE): swaps two existing paths in one atomic step.
// Returns 0, or -1 with errno set (EINVAL or ENOSYS where the file system or kernel lacks it).
int csystem_rename_exchange(const char *from, const char *to);

// The number of CPUs in this thread's affinity mask (sched_getaffinity), or 0 if unknown.
int csystem_affinity_cpus(void);

#endif
