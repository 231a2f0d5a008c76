#ifndef CPREFETCH_SHIM_H
#define CPREFETCH_SHIM_H
/* A hint to the CPU to bring the cache line at `address` in for reading: the bulk writer's
   hash tables issue it for keys a few steps ahead, so that the probe finds the line in cache.
   It never faults and has no effect on results. */
static inline void idgraph_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}
#endif
