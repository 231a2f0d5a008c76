import Foundation

/// A value that many threads read and few replace, behind a reader-writer lock: readers never
/// wait for one another, only for a replacement in progress.
///
/// The catalog every lookup and every real-time submission reads was behind a mutex: 40,000
/// submissions and 10,000 lookups a second took it in turn, a waiter slept in the kernel, and
/// waking it again on a busy core took ~150 µs. `strace`-style counts (`perf trace -s`) showed a
/// lookup thread blocked on that futex in one lookup of four, and lookup p99 at 40,000 events/s
/// was 136–183 µs (docs/benchmarks.md, session 14).
final class ReadMostly<Value>: @unchecked Sendable {
    // Unsafe only in that the lock needs a fixed address; it lives as long as this object.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private var value: Value

    init(_ value: Value) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
        self.value = value
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` with the value; any number of readers at once.
    func read<T>(_ body: (Value) throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(value)
    }

    /// The value (a copy: for a class, the reference).
    var current: Value { read { $0 } }

    /// Changes the value, alone.
    func update<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value)
    }
}
