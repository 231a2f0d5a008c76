import CMalloc
import Foundation

/// Process-wide settings of the C allocator that the writer threads measurably gain from.
///
/// glibc keeps small freed blocks in "fast bins" and, whenever a free leaves a block of 64 KiB
/// or more (next to the top of a thread's heap, say), first coalesces every fast-bin block.
/// The writer frees many small blocks between larger ones, and `perf` put `malloc_consolidate`
/// and `unlink_chunk` at ~8% of its thread while applying a day of events. Without fast bins
/// (`M_MXFAST` 0; small blocks still go through the per-thread cache first) the same load took
/// 5% less time and 9% less CPU (docs/benchmarks.md, session 14).
public enum AllocatorTuning {
    /// Turns glibc's fast bins off, unless `GLIBC_TUNABLES` sets `glibc.malloc.mxfast` itself.
    /// Call it once, early (the `idgraph` command does, before parsing its arguments); it
    /// affects the whole process, so an application embedding the library decides for itself.
    /// Returns whether it changed anything (no-op where the C library is not glibc).
    @discardableResult
    public static func apply() -> Bool {
        if let tunables = ProcessInfo.processInfo.environment["GLIBC_TUNABLES"], tunables.contains("glibc.malloc.mxfast") { return false }
        return idgraph_disable_fastbins() == 1
    }
}
