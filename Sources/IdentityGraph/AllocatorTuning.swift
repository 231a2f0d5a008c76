import CMalloc
import Foundation

/// Process-wide settings of the C allocator that the writer threads measurably gain from.
///
/// - **No fast bins** (`M_MXFAST` 0). glibc keeps small freed blocks in "fast bins" and,
///   whenever a free leaves a block of 64 KiB or more (next to the top of a thread's heap, say),
///   first coalesces every fast-bin block. The writer frees many small blocks between larger
///   ones, and `perf` put `malloc_consolidate` and `unlink_chunk` at ~8% of its thread while
///   applying a day of events; without fast bins (small blocks still go through the per-thread
///   cache first) the same load took 5% less time and 9% less CPU.
/// - **Heaps grown 64 MiB at a time** (`M_TOP_PAD`). A thread's heap otherwise grows by what
///   each allocation lacks, one `mprotect` per step: a 1M-event bulk load made 127,298 of them
///   on its writer thread (`perf trace -s`), each taking the process's memory-map lock; with
///   the pad, 11. The pages are only reserved until touched; peak RSS moved by under 20 MB.
///
/// Measurements: docs/benchmarks.md, session 14.
public enum AllocatorTuning {
    /// The heap growth step (and what a trimmed heap keeps at its top).
    public static let topPad = 64 << 20

    /// Turns glibc's fast bins off and sets its heap growth step to ``topPad``, each unless
    /// `GLIBC_TUNABLES` sets it (`glibc.malloc.mxfast`, `glibc.malloc.top_pad`). Call it once,
    /// early (the `idgraph` command does, before parsing its arguments); it affects the whole
    /// process, so an application embedding the library decides for itself. Returns the
    /// number of settings it changed (0 where the C library is not glibc).
    @discardableResult
    public static func apply() -> Int {
        let tunables = ProcessInfo.processInfo.environment["GLIBC_TUNABLES"] ?? ""
        var changed = 0
        if !tunables.contains("glibc.malloc.mxfast"), idgraph_disable_fastbins() == 1 { changed += 1 }
        if !tunables.contains("glibc.malloc.top_pad"), idgraph_set_top_pad(Int32(topPad)) == 1 { changed += 1 }
        return changed
    }
}
