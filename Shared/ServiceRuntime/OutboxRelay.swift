import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging
import Prometheus
import ServiceLifecycle

/// Publishes outbox rows to Kafka in insertion order and deletes them once acknowledged.
///
/// A crash after commit and before publication leaves the rows in SQLite: they are published
/// at the next start. A crash after publication and before deletion publishes them again with
/// the same message id, which consumers drop in their inbox. So no effect is lost and none is
/// applied twice.
public final class OutboxRelay: Service, Sendable {
    private let store: ServiceStore
    private let producer: KafkaProducer
    private let metrics: ServiceMetrics
    private let logger: Logger
    private let batchSize: Int
    private let inboxRetention: Duration
    private let wakeup = Wakeup()
    private let stopping = Locked(false)

    public init(
        store: ServiceStore, producer: KafkaProducer, metrics: ServiceMetrics, logger: Logger, batchSize: Int = 500,
        inboxRetention: Duration = .seconds(14 * 24 * 3600)
    ) {
        self.store = store
        self.producer = producer
        self.metrics = metrics
        self.logger = logger
        self.batchSize = batchSize
        self.inboxRetention = inboxRetention
    }

    /// Forgets processed message ids older than the retention; returns how many. Runs every
    /// ten minutes in the relay loop. A message re-delivered after its id was forgotten would be
    /// applied again, so the retention must exceed any re-delivery window (topic retention).
    @discardableResult
    public func pruneInbox(now: Date = Date()) async throws -> Int {
        let cutoff = now.addingTimeInterval(-Double(inboxRetention.components.seconds))
        return try await store.pool.write { db in
            try InboxEntry.filter(Column("processedAt") < cutoff).deleteAll(db)
        }
    }

    /// Tells the relay that new rows were committed.
    public func wake() { wakeup.signal() }

    public func run() async throws {
        await withGracefulShutdownHandler {
            var backoff = Duration.milliseconds(100)
            var lastPrune = ContinuousClock.now
            while !stopping.withLock({ $0 }) {
                if ContinuousClock.now - lastPrune > .seconds(600) {
                    lastPrune = ContinuousClock.now
                    do {
                        let pruned = try await pruneInbox()
                        if pruned > 0 { logger.info("inbox pruned", metadata: ["entries": "\(pruned)"]) }
                    } catch {
                        logger.warning("inbox prune failed; retrying later", metadata: ["error": "\(error)"])
                    }
                }
                do {
                    let published = try await relayOnce()
                    backoff = .milliseconds(100)
                    if published == 0 { await wakeup.wait(timeout: .milliseconds(250)) }
                } catch {
                    logger.error("outbox relay failed; retrying", metadata: ["error": "\(error)", "backoffMs": "\(backoff.components.seconds * 1000 + backoff.components.attoseconds / 1_000_000_000_000_000)"])
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(10))
                }
            }
        } onGracefulShutdown: {
            self.stopping.withLock { $0 = true }
            self.wakeup.signal()
        }
        // Services that write the outbox stop before the relay: publish what they left.
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            do {
                if try await relayOnce() == 0 { break }
            } catch {
                logger.error("outbox drain at shutdown failed; rows stay for the next start", metadata: ["error": "\(error)"])
                break
            }
        }
        await producer.close()
    }

    /// Publishes up to one batch; returns how many rows were published and removed.
    @discardableResult
    public func relayOnce() async throws -> Int {
        let limit = batchSize
        // Statements prepared once per connection: the relay runs once per batch of every service.
        let rows = try await store.pool.read { db in
            try OutboxMessage.fetchAll(db.cachedStatement(sql: "SELECT * FROM outbox ORDER BY id LIMIT ?"), arguments: [limit])
        }
        metrics.outboxPending.set(Int64(rows.count))
        guard !rows.isEmpty, let first = rows.first?.id, let last = rows.last?.id else { return 0 }
        try await producer.sendBatch(rows.map(\.producerRecord))
        // The rows read are the outbox's first ids in order, and ids only grow (AUTOINCREMENT;
        // one writer), so the range between the first and the last holds exactly those rows.
        try await store.pool.write { db in
            try db.cachedStatement(sql: "DELETE FROM outbox WHERE id BETWEEN ? AND ?").execute(arguments: [first, last])
        }
        metrics.outboxPublished.increment(by: Int64(rows.count))
        return rows.count
    }
}

/// A one-slot signal: `signal()` wakes the current or next `wait`.
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Locked(State())

    func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter { s.waiter = nil; return w }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { self.signal() }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { s -> Bool in
                if s.pending { s.pending = false; return true }
                s.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
