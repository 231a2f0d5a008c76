#ifndef CLMDB_SHIM_H
#define CLMDB_SHIM_H
#include <lmdb.h>
#include <stdint.h>
#include <string.h>

/// LMDB's default order (bytes compared as unsigned, a shorter key before its extensions),
/// computed eight bytes at a time: the keys and sorted values of idgraph's tables are mostly
/// big-endian 8- and 16-byte integers, which this compares in one or two loads instead of a
/// call of `memcmp` through `mdb_cmp_memn`. Same order, so a database written with either
/// comparator reads correctly with the other (and with LMDB's tools).
static int idgraph_compare_bytes(const MDB_val *a, const MDB_val *b) {
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    const unsigned char *p = (const unsigned char *)a->mv_data;
    const unsigned char *q = (const unsigned char *)b->mv_data;
    while (n >= 8) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        memcpy(&y, q, 8);
        if (x != y) {
            x = __builtin_bswap64(x);
            y = __builtin_bswap64(y);
            return x < y ? -1 : 1;
        }
        p += 8;
        q += 8;
        n -= 8;
    }
    while (n > 0) {
        if (*p != *q) return *p < *q ? -1 : 1;
        p++;
        q++;
        n--;
    }
    return a->mv_size < b->mv_size ? -1 : (a->mv_size > b->mv_size ? 1 : 0);
}

/// The comparator above, as LMDB takes it (`mdb_set_compare`, `mdb_set_dupsort`).
static inline MDB_cmp_func *idgraph_bytes_comparator(void) { return idgraph_compare_bytes; }
#endif
