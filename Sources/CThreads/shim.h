#ifndef CTHREADS_SHIM_H
#define CTHREADS_SHIM_H
#include <sys/prctl.h>

/* Thread naming for idgraph's own threads and its benchmark's. prctl is variadic, which Swift
   cannot call. */

/* Names the calling thread (Linux keeps 15 bytes): what `top -H`, `perf` and
   /proc/PID/task/TID/comm show. */
static inline void idgraph_name_thread(const char *name) {
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

#endif
