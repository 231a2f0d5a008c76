import Foundation
import IdentityGraph

/// Applies batches on a thread of its own while the loader reads the next, so that parsing
/// runs on one core and the graph writer on the other; several batches may share one
/// transaction (``IdentityGraph/applyBatches(now:operationsPerTransaction:next:applied:committed:)``).
///
/// At most one batch is handed over and not yet applied: ``submit(_:)`` waits for the one
/// before. Each transaction commits with the checkpoint of its last batch, so a crash loses
/// nothing that committed and the same command resumes after the last committed batch; a
/// failure is thrown by the next ``submit(_:)`` or by ``close()``, and nothing handed over
/// after the failed transaction's first batch is committed.
final class BatchPipeline: @unchecked Sendable {
    private let condition = NSCondition()
    /// The batch handed over and not yet taken by the writer.
    private var slot: QueuedBatch?
    /// The writer took a batch and has not applied it yet.
    private var applying = false
    /// No more batches will come.
    private var closed = false
    /// The writer's thread is done (after ``close()`` or a failure).
    private var ended = false
    private var failure: (any Error)?
    /// Transactions committed and not yet collected: their batches and what they did.
    private var commits: [(batches: [QueuedBatch], report: ApplyReport)] = []

    /// Starts the writer's thread for `graph`: transactions of about `operationsPerTransaction`
    /// operations (a batch never splits), events without a time stamped `now`.
    init(graph: IdentityGraph, now: Int64?, operationsPerTransaction: Int) {
        let thread = Thread { [self] in
            ThreadControl.name("idgraph-apply")
            do {
                try graph.applyBatches(
                    now: now, operationsPerTransaction: operationsPerTransaction,
                    next: { [self] in
                        condition.lock()
                        defer { condition.unlock() }
                        while slot == nil && !closed { condition.wait() }
                        guard let batch = slot else { return nil }
                        slot = nil
                        applying = true
                        return batch
                    },
                    applied: { [self] _, commitsNext in
                        // A batch its transaction's commit follows counts as applied once
                        // committed: the loader frees the transaction's batches before it reads
                        // another (else one more batch of prepared operations is held).
                        guard !commitsNext else { return }
                        condition.lock()
                        applying = false
                        condition.broadcast()
                        condition.unlock()
                    },
                    committed: { [self] batches, report in
                        condition.lock()
                        commits.append((batches, report))
                        applying = false
                        condition.broadcast()
                        condition.unlock()
                    })
            } catch {
                condition.lock()
                failure = error
                condition.unlock()
            }
            condition.lock()
            ended = true
            condition.broadcast()
            condition.unlock()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Hands `batch` over once the batch before it is applied (and committed, when its
    /// transaction ends with it); rethrows the writer's failure.
    func submit(_ batch: QueuedBatch) throws {
        condition.lock()
        defer { condition.unlock() }
        while (slot != nil || applying) && !ended { condition.wait() }
        if ended { throw failure ?? LoadPipelineClosed() }
        slot = batch
        condition.broadcast()
    }

    /// The transactions committed since the last call, oldest first.
    func collect() -> [(batches: [QueuedBatch], report: ApplyReport)] {
        condition.lock()
        defer { condition.unlock() }
        let done = commits
        commits = []
        return done
    }

    /// Lets the writer apply and commit what it was handed, waits for it, and rethrows its
    /// failure. ``collect()`` then has every commit.
    func close() throws {
        condition.lock()
        closed = true
        condition.broadcast()
        while !ended { condition.wait() }
        let failure = self.failure
        condition.unlock()
        if let failure { throw failure }
    }
}

/// A batch handed to a ``BatchPipeline`` after it was closed (a loader bug).
struct LoadPipelineClosed: Error, CustomStringConvertible {
    var description: String { "internal error: a batch was handed to a closed loader pipeline" }
}
