import CThreads

/// Naming of the calling thread, for idgraph's own threads and its benchmark's.
public enum ThreadControl {
    /// Names the calling thread `name` for `top -H`, `perf` and `/proc/PID/task/*/comm`
    /// (Linux keeps 15 bytes). Foundation's `Thread.name` does not reach the kernel on Linux:
    /// every thread showed as `oot.default-qos`.
    public static func name(_ name: String) {
        idgraph_name_thread(name)
    }
}
