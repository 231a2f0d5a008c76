#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
/* glibc's allocator settings (mallopt), which Swift's Glibc module does not export.
   See IdentityGraph's AllocatorTuning. */
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
/* Turns glibc's fast bins off (M_MXFAST 0); returns 1 on success. */
static inline int idgraph_disable_fastbins(void) {
    return mallopt(M_MXFAST, 0);
}
#else
static inline int idgraph_disable_fastbins(void) { return 0; }
#endif
#endif
