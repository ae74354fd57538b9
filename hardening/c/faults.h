/* The control functions of libfaults.so (faults.c); ladder.c finds them with dlsym. */
#ifndef SENTIMENT_FAULTS_H
#define SENTIMENT_FAULTS_H

#include <stddef.h>

enum { FAULTS_ALLOC = 1, FAULTS_IO = 2, FAULTS_ALIGNED = 3 };

void faults_arm(int kind, long nth, int err, size_t min_bytes, int sticky);
long faults_disarm(void);
long faults_fired(void);
long faults_counted(void);
void faults_pause(int on);

#endif
