// oneDNN GEMM plus the few libgomp entry points we call directly.
// omp.h lives in gcc's private include dir, so the prototypes are declared here.
#include <oneapi/dnnl/dnnl.h>
int  omp_get_max_threads(void);
void omp_set_num_threads(int n);
int  omp_get_thread_num(void);
int  omp_get_num_threads(void);
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
