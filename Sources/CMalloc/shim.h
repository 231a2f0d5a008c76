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
/* Sets how much more than asked a heap grows by, and keeps at its top when trimmed
   (M_TOP_PAD); returns 1 on success. */
static inline int idgraph_set_top_pad(int bytes) {
    return mallopt(M_TOP_PAD, bytes);
}
#else
static inline int idgraph_disable_fastbins(void) { return 0; }
static inline int idgraph_set_top_pad(int bytes) { (void)bytes; return 0; }
#endif
#endif
