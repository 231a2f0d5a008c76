import Dispatch
import IdentityGraph

/// Applies one batch at a time on a thread of its own while the loader reads the next, so that
/// parsing runs on one core and the graph writer on the other.
///
/// At most one batch is in flight: ``start(_:)`` may only be called when the previous batch
/// was collected with ``finish()``. Each batch is still one transaction with its checkpoint, so
/// a crash loses nothing that committed and the same command resumes after the last committed
/// batch; a batch that fails is reported by the next ``finish()``, and nothing read after it
/// is committed.
final class BatchCommitter: @unchecked Sendable {
    /// Signalled when the batch in flight is done (its outcome stored).
    private let done = DispatchSemaphore(value: 0)
    private let queue = DispatchQueue(label: "idgraph.load.commit", qos: .userInitiated)
    /// Written by the queue before it signals `done`, read after waiting on it.
    private var outcome: Result<ApplyReport, any Error>?
    /// Operations in the batch in flight, `nil` when none is.
    private var inFlight: Int?

    /// Starts applying a batch of `operations` operations (`work` commits them).
    func start(operations: Int, _ work: @escaping @Sendable () throws -> ApplyReport) {
        precondition(inFlight == nil, "a batch is already in flight")
        inFlight = operations
        queue.async { [self] in
            outcome = Result { try work() }
            done.signal()
        }
    }

    /// Waits for the batch in flight and returns what it did and how many operations it held,
    /// or rethrows its error; `nil` when no batch is in flight.
    func finish() throws -> (report: ApplyReport, operations: Int)? {
        guard let operations = inFlight else { return nil }
        done.wait()
        inFlight = nil
        let result = outcome!
        outcome = nil
        return (try result.get(), operations)
    }
}

/// A batch of operations shared between the loader and the committer's thread, so that the
/// loader, not the committer (the graph's writer), frees it once the batch is done.
final class OperationBox: @unchecked Sendable {
    /// The operations; the loader empties them after ``BatchCommitter/finish()``.
    var operations: [PreparedOperation]
    init(_ operations: [PreparedOperation]) { self.operations = operations }
}
