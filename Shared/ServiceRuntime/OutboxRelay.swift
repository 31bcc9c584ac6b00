import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging
import Prometheus
import ServiceLifecycle

/// Publishes outbox rows to Kafka in insertion order and deletes them once acknowledged.
///
/// Up to `batchesInFlight` batches await their acknowledgements at once: rows committed while
/// a batch is in flight are read and handed to Kafka without waiting for it, and each batch's
/// rows are deleted once it and every batch before it are acknowledged.
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
    private let batchesInFlight: Int
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
    /// `batchesInFlight` (at least 1) bounds the batches awaiting acknowledgement at once.
    public init(
        store: ServiceStore, producer: KafkaProducer, metrics: ServiceMetrics, logger: Logger, service: ServiceName,
        batchSize: Int = 500, batchesInFlight: Int = 4, inboxRetention: Duration = .seconds(14 * 24 * 3600),
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
        self.batchesInFlight = max(1, batchesInFlight)
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
        var pipeline = Pipeline()
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
                    // Woken by a commit (new rows) or by a batch's last acknowledgement.
                    if try await step(&pipeline) == .idle { await wakeup.wait(timeout: .milliseconds(250)) }
                    backoff = .milliseconds(100)
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
        // Services that write the outbox stop before the relay: publish what they left, and
        // delete what is acknowledged of the batches still in flight.
        let deadline = ContinuousClock.now + shutdownGrace
        while ContinuousClock.now < deadline, !gaveUp.withLock({ $0 }) {
            do {
                if try await step(&pipeline) == .idle {
                    if pipeline.batches.isEmpty { break }
                    await wakeup.wait(timeout: .milliseconds(250))
                }
            } catch {
                logger.error("outbox drain at shutdown failed; rows stay for the next start", metadata: ["error": "\(error)"])
                break
            }
        }
        closing.withLock { $0 = true }
        // The grace is over (or the drain failed): what Kafka has not acknowledged is purged,
        // whichever of this loop and `abandonAfterGrace` saw the deadline first, so the close
        // does not wait for the delivery timeout; the rows stay in the outbox for the next start.
        if producer.queuedCount > 0 { producer.purgeUndelivered() }
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

    /// Publishes up to one batch from the head of the outbox and waits for its
    /// acknowledgements; returns how many rows left the outbox (published, or refused by Kafka
    /// for good and dead-lettered). For tools and tests: not while `run()` runs.
    @discardableResult
    public func relayOnce() async throws -> Int {
        var pipeline = Pipeline()
        guard let batch = try await send(after: 0) else {
            noteHead(nil)
            return 0
        }
        pipeline.append(batch)
        await settled([batch])
        return try await settle(&pipeline)
    }

    /// The batches handed to Kafka whose rows are still in the outbox, oldest first.
    private struct Pipeline {
        var batches: [InFlightBatch] = []
        /// The last outbox id handed to Kafka: the next batch is the rows after it.
        var sentThrough: Int64 = 0

        mutating func append(_ batch: InFlightBatch) {
            batches.append(batch)
            sentThrough = batch.last
        }
    }

    private enum Progress { case idle, busy }

    /// One turn of the relay: deletes the rows of the oldest batches once Kafka has
    /// acknowledged them, then hands the rows committed since the last batch to Kafka, while
    /// fewer than `batchesInFlight` batches await acknowledgement. So a row committed just
    /// after a batch left goes out at once, not after that batch's round trip.
    ///
    /// Order: the rows are handed to the producer by this one task, in id order, and the
    /// idempotent producer writes each partition's records in the order it was given them,
    /// retries included, however many requests are in flight (docs/ARCHITECTURE.md, "One
    /// record's path through a service").
    private func step(_ pipeline: inout Pipeline) async throws -> Progress {
        var progress: Progress = try await settle(&pipeline) > 0 ? .busy : .idle
        // A failed batch stops the sending: it and everything after it go again once every
        // batch in flight has settled (`settle`).
        while pipeline.batches.count < batchesInFlight, !pipeline.batches.contains(where: \.hasFailed) {
            guard let batch = try await send(after: pipeline.sentThrough) else { break }
            pipeline.append(batch)
            progress = .busy
        }
        metrics.outboxPending.set(Int64(pipeline.batches.reduce(0) { $0 + $1.rows.count }))
        noteHead(pipeline.batches.first?.first)
        return progress
    }

    /// Reads the rows after `id` (up to a batch) and hands them to the producer in order;
    /// nil when there are none. A row the producer does not take (too large, closed) fails the
    /// batch there; the rows behind it are not handed over.
    private func send(after id: Int64) async throws -> InFlightBatch? {
        let woken = wokenAt.withLock { instant in
            defer { instant = nil }
            return instant
        }
        if let woken {
            metrics.outboxRelayWait.record(ContinuousClock.now - woken)
        }
        // Statements prepared once per connection: the relay reads once per batch of every service.
        let limit = batchSize
        let rows = try await store.pool.read { db in
            try OutboxMessage.fetchAll(
                db.cachedStatement(sql: "SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?"), arguments: [id, limit])
        }
        guard let first = rows.first?.id, let last = rows.last?.id else { return nil }
        let batch = InFlightBatch(rows: rows, first: first, last: last, wakeup: wakeup)
        for (index, row) in rows.enumerated() {
            do {
                try await producer.enqueue(row.producerRecord) { batch.delivered($0) }
            } catch {
                batch.notHandedOver(rows.count - index, error: error)
                break
            }
        }
        return batch
    }

    /// Deletes the rows of the oldest batches that Kafka acknowledged, in one transaction;
    /// returns how many rows left the outbox. When the oldest batch failed, waits until every
    /// batch in flight has settled and starts again from the outbox's head: a batch Kafka
    /// refused a record of is sent again one row at a time (`publishOneByOne`); any other
    /// failure is thrown (the caller backs off). The rows of later batches are published
    /// again (same message ids, dropped by the consumers' inboxes).
    private func settle(_ pipeline: inout Pipeline) async throws -> Int {
        var acknowledged: [InFlightBatch] = []
        var failed: (batch: InFlightBatch, error: KafkaError)?
        for batch in pipeline.batches {
            guard let outcome = batch.outcome else { break }
            if case .failure(let error) = outcome {
                failed = (batch, error)
                break
            }
            acknowledged.append(batch)
        }
        var left = 0
        if let first = acknowledged.first?.first, let last = acknowledged.last?.last {
            // The batches are consecutive runs of the outbox's ids, and ids only grow
            // (AUTOINCREMENT; one writer at a time), so the range holds exactly their rows.
            try await store.pool.write { db in
                try db.cachedStatement(sql: "DELETE FROM outbox WHERE id BETWEEN ? AND ?").execute(arguments: [first, last])
            }
            pipeline.batches.removeFirst(acknowledged.count)
            for batch in acknowledged {
                if case .success(let took)? = batch.outcome { metrics.outboxPublishDuration.record(took) }
                left += batch.rows.count
            }
            metrics.outboxPublished.increment(by: Int64(left))
        }
        guard let failed else { return left }
        let behind = pipeline.batches
        pipeline = Pipeline()
        // Nothing is sent again before every batch handed over has settled, so what is sent
        // again follows all of it.
        await settled(behind)
        noteHead(failed.batch.first)
        // A record Kafka will never take (too large, invalid) would hold back every row
        // behind it for ever: find it by sending the batch one row at a time.
        guard failed.error.refusesRecord else { throw failed.error }
        let oneByOne = try await publishOneByOne(failed.batch.rows, batchError: failed.error)
        return left + oneByOne
    }

    /// Waits until every delivery report of these batches is in (or their records were purged).
    private func settled(_ batches: [InFlightBatch]) async {
        while batches.contains(where: { !$0.isSettled }) {
            await wakeup.wait(timeout: .milliseconds(250))
        }
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

/// One batch of outbox rows handed to the producer: counts its delivery reports (served on the
/// producer's poll thread) and wakes the relay when the last is in, or at the first failure.
final class InFlightBatch: Sendable {
    let rows: [OutboxMessage]
    let first: Int64
    let last: Int64
    private let handedOver = ContinuousClock.now
    private let wakeup: Wakeup
    private struct State {
        var remaining: Int
        var failure: KafkaError?
        var settledAt: ContinuousClock.Instant?
    }
    private let state: Locked<State>

    init(rows: [OutboxMessage], first: Int64, last: Int64, wakeup: Wakeup) {
        self.rows = rows
        self.first = first
        self.last = last
        self.wakeup = wakeup
        state = Locked(State(remaining: rows.count))
    }

    /// One record's delivery report.
    func delivered(_ result: Result<DeliveryReport, KafkaError>) {
        switch result {
        case .success: settle(1, error: nil)
        case .failure(let error): settle(1, error: error)
        }
    }

    /// `count` records the producer did not take: the batch fails with `error`.
    func notHandedOver(_ count: Int, error: KafkaError) { settle(count, error: error) }

    private func settle(_ count: Int, error: KafkaError?) {
        let wake = state.withLock { s -> Bool in
            s.remaining -= count
            let firstFailure = error != nil && s.failure == nil
            if firstFailure { s.failure = error }
            if s.remaining <= 0 { s.settledAt = ContinuousClock.now }
            return s.remaining <= 0 || firstFailure
        }
        if wake { wakeup.signal() }
    }

    var hasFailed: Bool { state.withLock { $0.failure != nil } }
    var isSettled: Bool { state.withLock { $0.remaining <= 0 } }

    /// Once every record is reported: how long from the hand-over to the last acknowledgement,
    /// or the first failure.
    var outcome: Result<Duration, KafkaError>? {
        state.withLock { s in
            guard s.remaining <= 0, let at = s.settledAt else { return nil }
            if let failure = s.failure { return .failure(failure) }
            return .success(at - handedOver)
        }
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
