import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging
import Prometheus
import ServiceLifecycle

/// Consumes the service's topics and applies each record at least once, effectively once:
///
/// 1. A batch of records is applied in one SQLite transaction. A handler's state change, its
///    inbox row and its outbox rows commit together. If a record throws, the transaction rolls
///    back and the batch is applied again with each record in a savepoint (below).
/// 2. A record that fails permanently (bad envelope, validation) is dead-lettered in that same
///    transaction. A transient failure stops the batch there; the record is retried with
///    backoff and dead-lettered once `maxAttempts` are spent. Later records wait, so a
///    partition's order is kept.
/// 3. Only then are the offsets stored for commit, and the outbox relay is woken.
public final class MessageWorker: Service, Sendable {
    private let consumer: KafkaConsumer
    private let store: ServiceStore
    private let handlers: [String: TopicHandler]
    private let configuration: ServiceConfiguration
    private let metrics: ServiceMetrics
    private let relay: OutboxRelay
    private let logger: Logger
    private let clock: @Sendable () -> Date

    public init(
        consumer: KafkaConsumer, store: ServiceStore, handlers: [TopicHandler], configuration: ServiceConfiguration,
        metrics: ServiceMetrics, relay: OutboxRelay, logger: Logger, clock: @escaping @Sendable () -> Date = Date.init
    ) {
        self.consumer = consumer
        self.store = store
        self.handlers = Dictionary(handlers.map { ($0.topic, $0) }, uniquingKeysWith: { first, _ in first })
        self.configuration = configuration
        self.metrics = metrics
        self.relay = relay
        self.logger = logger
        self.clock = clock
    }

    public func run() async throws {
        let consumer = self.consumer
        do {
            try await withGracefulShutdownHandler {
                var iterator = consumer.makeAsyncIterator()
                while let first = try await iterator.next() {
                    let batch = [first] + consumer.takeBuffered(limit: configuration.batchSize - 1)
                    try await process(batch)
                }
            } onGracefulShutdown: {
                consumer.stopDelivery()
            }
        } catch {
            logger.critical("consumer loop failed", metadata: ["error": "\(error)"])
            await consumer.close()
            throw error
        }
        await consumer.close()
        logger.info("consumer closed; offsets committed")
    }

    private struct BatchProgress {
        var next: Int
        var outcomes: [(topic: String, outcome: HandleOutcome)] = []
        var failure: (any Error)?
    }

    /// Applies a batch; returns when every record is applied or dead-lettered.
    ///
    /// First the whole batch is applied in one transaction without savepoints (two statements
    /// per record that almost never roll back; docs/BENCHMARKS.md). If any record throws, that transaction rolls back and the batch is
    /// applied again record by record, each in a savepoint, where a failure is dead-lettered or
    /// retried as described above. Handlers therefore may run twice for a batch that holds a bad
    /// record; only their SQLite changes count, and the first run's are rolled back.
    func process(_ batch: [KafkaRecord]) async throws {
        let started = ContinuousClock.now
        noteWait(batch)
        if let outcomes = try? await store.pool.write({ db in try batch.map { ($0.topic, try self.applyDirectly($0, db: db)) } }) {
            count(outcomes)
            finish(batch, started: started)
            return
        }
        var index = 0
        while index < batch.count {
            let from = index
            var progress: BatchProgress
            do {
                progress = try await store.pool.write { db in
                    var progress = BatchProgress(next: from)
                    for position in from..<batch.count {
                        do {
                            let outcome = try self.applyInSavepoint(batch[position], db: db, attempts: 1, firstFailedAt: nil)
                            progress.outcomes.append((batch[position].topic, outcome))
                            progress.next = position + 1
                        } catch {
                            progress.failure = error
                            return progress
                        }
                    }
                    return progress
                }
            } catch {
                progress = BatchProgress(next: from, failure: error)
            }
            count(progress.outcomes)
            index = progress.next
            if let failure = progress.failure, index < batch.count {
                try await retry(batch[index], firstError: failure)
                index += 1
            }
        }
        finish(batch, started: started)
    }

    /// How long each record waited between its producer's send and this batch (whole
    /// milliseconds: record timestamps have no finer unit).
    private func noteWait(_ batch: [KafkaRecord]) {
        let now = Date()
        var histogram: (topic: String, metric: DurationHistogram)?
        for record in batch {
            guard let timestamp = record.timestamp else { continue }
            if histogram?.topic != record.topic { histogram = (record.topic, metrics.recordWait(topic: record.topic)) }
            histogram?.metric.record(.milliseconds(max(0, Int64((now.timeIntervalSince(timestamp) * 1000).rounded()))))
        }
    }

    /// After a batch is committed: metrics, offsets for commit, and the relay woken.
    private func finish(_ batch: [KafkaRecord], started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        // The registry is asked once per topic of the batch (it builds the metric's name and
        // labels on every call), then each record is observed.
        var perTopic: [String: Int] = [:]
        for record in batch { perTopic[record.topic, default: 0] += 1 }
        for (topic, records) in perTopic {
            let histogram = metrics.latency(topic: topic)
            for _ in 0..<records { histogram.record(elapsed) }
        }
        metrics.recordProgress(group: consumer.groupId, records: batch)
        consumer.storeOffsets(batch)
        relay.wake()
    }

    /// Applies one record in the enclosing transaction, with no savepoint: any error is thrown
    /// (the caller rolls the batch back and takes the savepoint path).
    private func applyDirectly(_ record: KafkaRecord, db: Database) throws -> HandleOutcome {
        guard let handler = handlers[record.topic] else {
            throw RejectedMessage(errorClass: "topic.unhandled", reason: "\(configuration.service.rawValue) has no handler for topic \(record.topic)")
        }
        return try handler.apply(
            record, db, Outbox(db: db, producer: configuration.service.rawValue, maxMessageBytes: configuration.maxMessageBytes), clock(), logger)
    }

    /// Applies one record in a savepoint; permanent failures become dead letters in the
    /// enclosing transaction, transient ones are thrown.
    private func applyInSavepoint(_ record: KafkaRecord, db: Database, attempts: Int, firstFailedAt: Date?) throws -> HandleOutcome {
        let now = clock()
        let outbox = Outbox(db: db, producer: configuration.service.rawValue, maxMessageBytes: configuration.maxMessageBytes)
        do {
            var outcome = HandleOutcome.applied
            try db.inSavepoint {
                guard let handler = handlers[record.topic] else {
                    throw RejectedMessage(
                        errorClass: "topic.unhandled", reason: "\(configuration.service.rawValue) has no handler for topic \(record.topic)")
                }
                outcome = try handler.apply(record, db, outbox, now, logger)
                return .commit
            }
            return outcome
        } catch let failure as any PermanentFailure {
            try deadLetter(
                record, db: db, errorClass: failure.errorClass, message: failure.description,
                attempts: attempts, firstFailedAt: firstFailedAt ?? now, now: now, outbox: outbox)
            return .deadLettered
        }
    }

    private func deadLetter(
        _ record: KafkaRecord, db: Database, errorClass: String, message: String, attempts: Int,
        firstFailedAt: Date, now: Date, outbox: Outbox
    ) throws {
        logger.warning(
            "dead-lettered",
            metadata: [
                "topic": .string(record.topic), "partition": "\(record.partition)", "offset": "\(record.offset)",
                "errorClass": .string(errorClass), "error": .string(message), "attempts": "\(attempts)",
            ])
        try DeadLetterWriter.write(
            db: db, service: configuration.service, record: record, errorClass: errorClass, message: message,
            attempts: attempts, firstFailedAt: firstFailedAt, now: now, outbox: outbox
        )
        metrics.deadLettered(topic: record.topic, errorClass: errorClass)
    }

    /// Retries a record that failed transiently, then dead-letters it with the last error.
    private func retry(_ record: KafkaRecord, firstError: any Error) async throws {
        let firstFailedAt = clock()
        var lastError = firstError
        metrics.failed(topic: record.topic)
        for attempt in 2...max(2, configuration.maxAttempts) where attempt <= configuration.maxAttempts {
            logger.warning(
                "retrying after transient failure",
                metadata: [
                    "topic": .string(record.topic), "offset": "\(record.offset)", "attempt": "\(attempt)", "error": "\(lastError)",
                ])
            try? await Task.sleep(for: configuration.retryBackoff * (1 << min(attempt - 2, 10)))
            do {
                let outcome = try await store.pool.write { db in
                    try self.applyInSavepoint(record, db: db, attempts: attempt, firstFailedAt: firstFailedAt)
                }
                count([(record.topic, outcome)])
                return
            } catch {
                lastError = error
                metrics.failed(topic: record.topic)
            }
        }
        let message = "failed \(configuration.maxAttempts) times; last error: \(lastError)"
        try await store.pool.write { db in
            let now = self.clock()
            try self.deadLetter(
                record, db: db, errorClass: "retries-exhausted", message: message,
                attempts: self.configuration.maxAttempts, firstFailedAt: firstFailedAt, now: now,
                outbox: Outbox(db: db, producer: self.configuration.service.rawValue, maxMessageBytes: self.configuration.maxMessageBytes))
        }
        count([(record.topic, .deadLettered)])
    }

    private func count(_ outcomes: [(topic: String, outcome: HandleOutcome)]) {
        var counts: [TopicOutcome: Int] = [:]
        for (topic, outcome) in outcomes { counts[TopicOutcome(topic: topic, outcome: outcome), default: 0] += 1 }
        for (key, count) in counts { metrics.processed(topic: key.topic, outcome: key.outcome, count: count) }
    }

    private struct TopicOutcome: Hashable {
        var topic: String
        var outcome: HandleOutcome
    }
}
