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
    private let service: ServiceName
    private let maxMessageBytes: Int
    private let clock: @Sendable () -> Date
    private let head = Locked<(id: Int64, since: ContinuousClock.Instant)?>(nil)
    private let shutdownGrace: Duration
    /// Set once the shutdown grace has passed: what is not published by then stays in the outbox.
    private let gaveUp = Locked(false)
    /// Set (under its lock) before the producer closes: no purge may run once it is.
    private let closing = Locked(false)

    /// `service` names the dead letters of rows Kafka refuses; `clock` dates them.
    public init(
        store: ServiceStore, producer: KafkaProducer, metrics: ServiceMetrics, logger: Logger, service: ServiceName,
        batchSize: Int = 500, inboxRetention: Duration = .seconds(14 * 24 * 3600),
        maxMessageBytes: Int = Outbox.defaultMaxMessageBytes, clock: @escaping @Sendable () -> Date = Date.init,
        shutdownGrace: Duration = .seconds(15)
    ) {
        self.shutdownGrace = shutdownGrace
        self.service = service
        self.maxMessageBytes = maxMessageBytes
        self.clock = clock
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

    /// The first wake since the relay last read the outbox (for `outboxRelayWait`).
    private let wokenAt = Locked<ContinuousClock.Instant?>(nil)

    /// Tells the relay that new rows were committed.
    public func wake() {
        wokenAt.withLock { if $0 == nil { $0 = ContinuousClock.now } }
        wakeup.signal()
    }

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
                    logger.error(
                        "outbox relay failed; retrying",
                        metadata: [
                            "error": "\(error)",
                            "backoffMs": "\(backoff.components.seconds * 1000 + backoff.components.attoseconds / 1_000_000_000_000_000)",
                        ])
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(10))
                }
            }
        } onGracefulShutdown: {
            self.stopping.withLock { $0 = true }
            self.wakeup.signal()
            self.abandonAfterGrace()
        }
        // Services that write the outbox stop before the relay: publish what they left.
        let deadline = ContinuousClock.now + shutdownGrace
        while ContinuousClock.now < deadline, !gaveUp.withLock({ $0 }) {
            do {
                if try await relayOnce() == 0 { break }
            } catch {
                logger.error("outbox drain at shutdown failed; rows stay for the next start", metadata: ["error": "\(error)"])
                break
            }
        }
        closing.withLock { $0 = true }
        await producer.close()
    }

    /// A broker that does not answer would hold a shutdown for the producer's delivery timeout
    /// (minutes). After the grace, records still in flight are purged, so the relay's wait ends;
    /// their rows were never deleted and go out at the next start.
    private func abandonAfterGrace() {
        Task { [producer, logger, shutdownGrace, gaveUp, closing] in
            try? await Task.sleep(for: shutdownGrace)
            var warned = false
            while true {
                gaveUp.withLock { $0 = true }
                let purged = closing.withLock { closed in
                    if !closed { producer.purgeUndelivered() }
                    return !closed
                }
                guard purged else { return }
                if !warned {
                    logger.warning(
                        "outbox relay: Kafka did not acknowledge within the shutdown grace; unacknowledged rows stay in the outbox for the next start",
                        metadata: ["graceSeconds": "\(shutdownGrace.components.seconds)", "queued": "\(producer.queuedCount)"])
                    warned = true
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// Publishes up to one batch; returns how many rows left the outbox (published, or refused
    /// by Kafka for good and dead-lettered).
    @discardableResult
    public func relayOnce() async throws -> Int {
        let limit = batchSize
        let woken = wokenAt.withLock { instant in
            defer { instant = nil }
            return instant
        }
        if let woken {
            metrics.outboxRelayWait.record(ContinuousClock.now - woken)
        }
        // Statements prepared once per connection: the relay runs once per batch of every service.
        let rows = try await store.pool.read { db in
            try OutboxMessage.fetchAll(db.cachedStatement(sql: "SELECT * FROM outbox ORDER BY id LIMIT ?"), arguments: [limit])
        }
        metrics.outboxPending.set(Int64(rows.count))
        noteHead(rows.first?.id)
        guard !rows.isEmpty, let first = rows.first?.id, let last = rows.last?.id else { return 0 }
        do {
            let sending = ContinuousClock.now
            try await producer.sendBatch(rows.map(\.producerRecord))
            metrics.outboxPublishDuration.record(ContinuousClock.now - sending)
        } catch {
            // A record Kafka will never take (too large, invalid) would hold back every row
            // behind it for ever: find it by sending the batch one row at a time.
            guard error.refusesRecord else { throw error }
            return try await publishOneByOne(rows, batchError: error)
        }
        // The rows read are the outbox's first ids in order, and ids only grow (AUTOINCREMENT;
        // one writer), so the range between the first and the last holds exactly those rows.
        try await store.pool.write { db in
            try db.cachedStatement(sql: "DELETE FROM outbox WHERE id BETWEEN ? AND ?").execute(arguments: [first, last])
        }
        noteHead(nil)
        metrics.outboxPublished.increment(by: Int64(rows.count))
        return rows.count
    }

    /// After a batch failed with an error that refuses a record: sends the rows in order, one at
    /// a time; a row Kafka refuses for good becomes a dead letter (the `deadLetter` table and
    /// the service's dead-letter topic) and leaves the outbox, so the rows behind it flow on.
    /// Stops at the first transient failure (the rest wait for the next pass). Rows of the
    /// batch that were published before the failure are published again: same ids, dropped by
    /// the consumers' inboxes.
    private func publishOneByOne(_ rows: [OutboxMessage], batchError: KafkaError) async throws -> Int {
        var published: [Int64] = []
        var refused: [(row: OutboxMessage, error: KafkaError)] = []
        var stoppedBy: KafkaError?
        for row in rows {
            guard let id = row.id else { continue }
            do {
                try await producer.send(row.producerRecord)
                published.append(id)
            } catch {
                guard error.refusesRecord else {
                    stoppedBy = error
                    break
                }
                refused.append((row, error))
            }
        }
        if published.isEmpty, refused.isEmpty { throw stoppedBy ?? batchError }
        let service = self.service
        let limit = maxMessageBytes
        let now = clock()
        let dropped = refused
        let sent = published
        try await store.pool.write { db in
            let outbox = Outbox(db: db, producer: service.rawValue, maxMessageBytes: limit)
            for (row, error) in dropped {
                // A dead-letter event is itself refused: its dead letter is already in the table.
                guard row.topic != service.deadLetterTopic else { continue }
                try DeadLetterWriter.writeRefusedOutboxRow(
                    db: db, service: service, row: row,
                    reason: "Kafka refused the record for \(row.topic) (\(row.value.count) bytes) for good: \(error.description). "
                        + "It was taken out of the outbox so that the records behind it are published; fix it and replay it",
                    attempts: 2, now: now, outbox: outbox)
            }
            let ids = sent + dropped.compactMap(\.row.id)
            for id in ids { try db.cachedStatement(sql: "DELETE FROM outbox WHERE id = ?").execute(arguments: [id]) }
        }
        for (row, error) in refused {
            let onDeadLetterTopic = row.topic == service.deadLetterTopic
            logger.error(
                onDeadLetterTopic
                    ? "dead-letter event refused by Kafka; the dead letter stays in the deadLetter table"
                    : "outbox record refused by Kafka; dead-lettered",
                metadata: [
                    "topic": .string(row.topic), "outboxId": "\(row.id ?? 0)", "messageId": .string(row.messageId),
                    "bytes": "\(row.value.count)", "errorClass": "outbox.refused", "error": .string(error.description),
                ])
            metrics.deadLettered(topic: row.topic, errorClass: "outbox.refused")
        }
        metrics.outboxPublished.increment(by: Int64(published.count))
        noteHead(nil)
        if refused.isEmpty, let stoppedBy { throw stoppedBy }
        return published.count + refused.count
    }

    /// Remembers since when the outbox's first row has been first (nil: the outbox is empty or
    /// its head was just published).
    private func noteHead(_ id: Int64?) {
        head.withLock { head in
            guard let id else {
                head = nil
                return
            }
            if head?.id != id { head = (id, ContinuousClock.now) }
        }
    }

    /// How long the oldest outbox row has waited since this relay first read it: about its age
    /// while the relay runs (it reads within 250 ms of a commit), growing for as long as a row
    /// cannot be published. Measured on the monotonic clock, so a simulated service clock that
    /// jumps does not move it. Zero when the outbox is empty.
    public var oldestRowAge: Duration {
        head.withLock { $0.map { ContinuousClock.now - $0.since } } ?? .zero
    }
}

/// A one-slot signal: `signal()` wakes the current or next `wait`. A loop that would otherwise
/// poll its store on a timer waits on one, and whoever commits work for it signals it (after
/// the commit: `Database.afterNextTransaction`), so the work starts at once; the timeout stays
/// as the fallback.
public final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Locked(State())

    public init() {}

    public func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the first signal since the last wait, or after `timeout`.
    /// A cancelled caller returns at once (the cancellation counts as a signal).
    public func wait(timeout: Duration) async {
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.waitForSignal() }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    if !Task.isCancelled { self.signal() }
                }
                await group.next()
                group.cancelAll()
            }
        } onCancel: {
            self.signal()
        }
    }

    private func waitForSignal() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { s -> Bool in
                if s.pending {
                    s.pending = false
                    return true
                }
                s.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
