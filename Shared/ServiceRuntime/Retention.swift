import EncompassModels
import Foundation
import GRDB
import Logging
import Prometheus

/// How long personal data is kept, and how the purge runs (docs/SECURITY.md).
///
/// `ENCOMPASS_RETENTION_DAYS` (default 400: a school year and a summer plus the month a late
/// amendment, review or complaint takes — every notice is sent, acknowledged or escalated
/// within days, so after that the personal details serve no purpose the protocols allow, while
/// the audit trail of who was told what, and when, stays), `ENCOMPASS_RETENTION_INTERVAL_MINUTES`
/// (default 60: how often the purge looks), `ENCOMPASS_RETENTION_BATCH` (default 500 records
/// per transaction, so the purge never holds the store's write lock for long).
public struct RetentionSettings: Sendable, Equatable {
    public var days: Int
    public var interval: Duration
    public var batchSize: Int

    public static let defaultDays = 400

    public init(days: Int = RetentionSettings.defaultDays, interval: Duration = .seconds(3600), batchSize: Int = 500) {
        self.days = days
        self.interval = interval
        self.batchSize = batchSize
    }

    public static func fromEnvironment(_ environment: [String: String]) throws(ConfigurationError) -> RetentionSettings {
        let env = EnvironmentReader(environment)
        // At least 30 days: a notice's whole life (release, acknowledgement, escalation,
        // resend) must fit before its details go.
        let days = try env.int("ENCOMPASS_RETENTION_DAYS", in: 30...3_650) ?? defaultDays
        let minutes = try env.int("ENCOMPASS_RETENTION_INTERVAL_MINUTES", in: 1...10_080) ?? 60
        let batch = try env.int("ENCOMPASS_RETENTION_BATCH", in: 1...100_000) ?? 500
        return RetentionSettings(days: days, interval: .seconds(minutes * 60), batchSize: batch)
    }

    /// Records older than this are purged.
    public func cutoff(now: Date) -> Date { now.addingTimeInterval(-Double(days) * 86_400) }
}

/// One kind of personal data a service purges: a batch at a time, each batch in its own
/// transaction, idempotent (a purged record is not selected again).
public struct PurgeRule: Sendable {
    public let name: String
    /// The cutoff for this rule (default: the retention period before now).
    public let cutoff: @Sendable (_ now: Date, _ settings: RetentionSettings) -> Date
    /// Purges at most `limit` records older than `cutoff` in `db`'s transaction; returns how many.
    public let batch: @Sendable (_ db: Database, _ cutoff: Date, _ now: Date, _ limit: Int) throws -> Int

    public init(
        name: String,
        cutoff: @escaping @Sendable (_ now: Date, _ settings: RetentionSettings) -> Date = { now, settings in settings.cutoff(now: now) },
        batch: @escaping @Sendable (_ db: Database, _ cutoff: Date, _ now: Date, _ limit: Int) throws -> Int
    ) {
        self.name = name
        self.cutoff = cutoff
        self.batch = batch
    }

    /// Blanks personal columns of rows whose `age` column is older than the cutoff, keeping the
    /// row (ids, timestamps, states: the audit trail). `set` is SQL assignments (`:now` is the
    /// purge time); `pending` selects rows not purged yet (so a second run changes nothing);
    /// `key` is the row's key columns (`rowid`, or the primary key of a WITHOUT ROWID table).
    public static func redact(
        _ name: String, table: String, key: String = "rowid", age: String, set: String, pending: String,
        where condition: String = "1"
    ) -> PurgeRule {
        PurgeRule(name: name) { db, cutoff, now, limit in
            try db.execute(
                sql: """
                    UPDATE \(table) SET \(set) WHERE (\(key)) IN (
                        SELECT \(key) FROM \(table) WHERE \(age) < :cutoff AND (\(pending)) AND (\(condition)) LIMIT :limit)
                    """, arguments: ["cutoff": cutoff, "now": now, "limit": limit])
            return db.changesCount
        }
    }

    /// Deletes rows whose `age` column is older than the cutoff.
    public static func delete(_ name: String, table: String, key: String = "rowid", age: String, where condition: String = "1") -> PurgeRule {
        PurgeRule(name: name) { db, cutoff, _, limit in
            try db.execute(
                sql: """
                    DELETE FROM \(table) WHERE (\(key)) IN (
                        SELECT \(key) FROM \(table) WHERE \(age) < :cutoff AND (\(condition)) LIMIT :limit)
                    """, arguments: ["cutoff": cutoff, "limit": limit])
            return db.changesCount
        }
    }

    /// Purges, one key at a time with `forget`, the records whose keys `select` finds (SQL
    /// selecting one text column, with `:cutoff` and `:limit`), and queues a tombstone for each
    /// key on `topic`: a compacted topic whose last record of the key still carries the data.
    /// Compaction then drops it there too, and each replica that reads the tombstone runs the
    /// same `forget` on its own copy (`TopicHandler.on(…, tombstone:)`).
    public static func forgetting(
        _ name: String, select: String, tombstonesOn topic: String, producer: ServiceName,
        forget: @escaping @Sendable (_ key: String, _ db: Database) throws -> Void
    ) -> PurgeRule {
        PurgeRule(name: name) { db, cutoff, now, limit in
            let keys = try String.fetchAll(db, sql: select, arguments: ["cutoff": cutoff, "limit": limit])
            let outbox = Outbox(db: db, producer: producer.rawValue)
            for key in keys {
                try forget(key, db)
                try outbox.tombstone(topic: topic, key: key, id: MessageID.derived(from: key, "retention-tombstone"), now: now)
            }
            return keys.count
        }
    }

    /// The runtime's own table every service has: a dead letter's payload (the rejected input)
    /// and its error text (which may quote the input) go; the row stays — service, topic,
    /// offset, message id, error class, attempts, dates, status — and so do its actions
    /// (`deadLetterAction`: who replayed or discarded it, when).
    public static let deadLetterPayloads = PurgeRule.redact(
        "dead-letter.payload", table: DeadLetter.databaseTableName, age: "deadLetteredAt",
        set: "originalValue = X'', originalKey = NULL, originalHeaders = '{}', errorMessage = '\(DeadLetterPurge.marker) ' || errorClass",
        pending: "length(originalValue) > 0 OR originalKey IS NOT NULL")
}

/// Leaves no copy of deleted values in a store's file or its write-ahead log.
///
/// Every store runs with `secure_delete = FAST`: SQLite zeroes what it deletes inside a page,
/// but not the pages it frees (an updated row's old overflow pages, the pages of deleted
/// rows), which keep their bytes on the free list until they are reused. So the purge runs with
/// `secure_delete = ON` (freed pages zeroed too), then zeroes the free list, then moves every
/// page from the write-ahead log into the file and truncates the log to nothing.
public enum SecureDelete {
    /// Runs `body` with `secure_delete = ON`, then sets it back to what the connection had.
    public static func fully<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        let previous = try Int.fetchOne(db, sql: "PRAGMA secure_delete") ?? 0
        try db.execute(sql: "PRAGMA secure_delete = ON")
        defer { try? db.execute(sql: "PRAGMA secure_delete = \(previous == 2 ? "FAST" : previous == 1 ? "ON" : "OFF")") }
        return try body()
    }

    /// Overwrites every page on the store's free list with zeros (a table of zero blobs that
    /// takes them all, dropped with `secure_delete = ON`), then checkpoints the write-ahead log
    /// into the file and truncates it. Costs a write of the free pages, not of the whole store.
    public static func scrub(_ store: ServiceStore) async throws(RetentionError) {
        do {
            try await store.pool.write { db in
                try fully(db) {
                    let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                    guard free > 0 else { return }
                    let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                    try db.execute(sql: "CREATE TABLE retentionScrub (fill BLOB NOT NULL)")
                    // Rows of at most 64 MiB: zero blobs are written without being held in memory.
                    var remaining = free * pageSize
                    while remaining > 0 {
                        let chunk = min(remaining, 64 << 20)
                        try db.execute(sql: "INSERT INTO retentionScrub (fill) VALUES (zeroblob(?))", arguments: [chunk])
                        remaining -= chunk
                    }
                    try db.execute(sql: "DROP TABLE retentionScrub")
                }
            }
        } catch {
            throw RetentionError.scrub("\(error)")
        }
        try await truncateLog(store)
    }

    /// Checkpoints the whole write-ahead log into the file and truncates it to nothing; waits
    /// (the store's busy timeout, three times) for readers of older snapshots to finish.
    public static func truncateLog(_ store: ServiceStore) async throws(RetentionError) {
        var last = ""
        for attempt in 0..<3 {
            do {
                let result = try await store.pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
                if result.walFrameCount == result.checkpointedFrameCount { return }
                last = "\(result.checkpointedFrameCount) of \(result.walFrameCount) pages copied"
            } catch {
                last = "\(error)"
            }
            try? await Task.sleep(for: .milliseconds(200 * (attempt + 1)))
        }
        throw RetentionError.checkpoint(last)
    }
}

/// Why a purge could not leave its store clean; the background task logs it and runs again.
public enum RetentionError: Error, CustomStringConvertible, Equatable {
    case scrub(String)
    case checkpoint(String)

    public var description: String {
        switch self {
        case .scrub(let why):
            "could not zero the store's free pages after the purge (\(why)); the purge runs again at the next interval, check the disk and the store's permissions"
        case .checkpoint(let why):
            "could not empty the write-ahead log after the purge (\(why)): a reader held an old snapshot; the next run tries again, check for a stuck reader (an open sqlite3 shell, a backup)"
        }
    }
}

/// How a purged dead letter is recognised (its error message starts with this).
public enum DeadLetterPurge {
    public static let marker = "[personal data purged after the retention period]"

    public static func isPurged(_ letter: DeadLetter) -> Bool {
        letter.originalValue.isEmpty && letter.errorMessage.hasPrefix(marker)
    }
}

/// Runs purge rules against a store.
public enum RetentionPurge {
    /// Purges everything older than each rule's cutoff, batch by batch. Returns the records
    /// purged per rule (0 when nothing was due: running it again is harmless).
    public static func run(_ rules: [PurgeRule], store: ServiceStore, settings: RetentionSettings, now: Date) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for rule in rules {
            let cutoff = rule.cutoff(now, settings)
            var total = 0
            while true {
                try Task.checkCancellation()
                let limit = settings.batchSize
                let purged = try await store.pool.write { db in
                    // Freed space is zeroed, so the purged values do not linger in the file.
                    try SecureDelete.fully(db) { try rule.batch(db, cutoff, now, limit) }
                }
                total += purged
                if purged < limit { break }
                await Task.yield()
            }
            counts[rule.name] = total
        }
        // After every run, not only one that purged: a run whose scrub failed leaves the work to
        // the next, and the free pages other deletes left meanwhile (relayed outbox rows) go too.
        try await SecureDelete.scrub(store)
        return counts
    }

    /// The service's background purge: every `interval` (real time), on the service clock,
    /// logged with its counts and counted in `encompass_personal_data_purged_total{rule}`.
    /// A failed run is logged and retried at the next interval; it never stops the service.
    public static func task(_ rules: [PurgeRule], settings: RetentionSettings) -> BackgroundTask {
        let allRules = rules + [PurgeRule.deadLetterPayloads]
        return BackgroundTask(name: "retention-purge") { environment in
            while !Task.isCancelled {
                await once(allRules, settings: settings, environment: environment)
                try await Task.sleep(for: settings.interval)
            }
        }
    }

    /// One run of the purge, as the background task does it.
    @discardableResult
    public static func once(_ rules: [PurgeRule], settings: RetentionSettings, environment: ServiceEnvironment) async -> [String: Int] {
        let now = environment.clock.now()
        do {
            let counts = try await run(rules, store: environment.store, settings: settings, now: now)
            for (rule, count) in counts where count > 0 { environment.metrics.personalDataPurged(rule: rule, count: count) }
            let total = counts.values.reduce(0, +)
            var metadata: Logger.Metadata = [
                "retentionDays": "\(settings.days)", "cutoff": .string(Timestamp.format(settings.cutoff(now: now))), "purged": "\(total)",
            ]
            for (rule, count) in counts.sorted(by: { $0.key < $1.key }) { metadata["purged.\(rule)"] = "\(count)" }
            if total > 0 {
                environment.logger.notice("personal data purged", metadata: metadata)
            } else {
                environment.logger.debug("personal data purge: nothing due", metadata: metadata)
            }
            return counts
        } catch is CancellationError {
            return [:]
        } catch {
            environment.logger.error("personal data purge failed; retrying at the next interval", metadata: ["error": "\(error)"])
            return [:]
        }
    }
}

extension ServiceMetrics {
    /// `encompass_personal_data_purged_total{service, rule}`: records whose personal data the
    /// retention purge removed.
    public func personalDataPurged(rule: String, count: Int) {
        registry.makeCounter(
            descriptor: .init(
                metricName: "encompass_personal_data_purged", unitName: "total",
                helpText: "Records whose personal data the retention purge removed"),
            labels: [("service", service), ("rule", rule)]
        ).increment(by: Int64(count))
    }
}
