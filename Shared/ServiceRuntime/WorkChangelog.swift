import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging

/// The partitions of one work topic this instance owns, and since when: a partition counts as
/// settled once it has been owned for `grace` (real time), so that what a replica consumer still
/// has to read about it (a standby copy) has arrived before the new owner acts on it, as Kafka
/// Streams restores a task's state before running it.
public struct SettledPartitions: Sendable {
    public let topic: String
    public let grace: Duration
    private var ownedSince: [Int: ContinuousClock.Instant] = [:]

    public init(topic: String, grace: Duration) {
        self.topic = topic
        self.grace = grace
    }

    /// Takes the instance's current assignment; returns the partitions of `topic` owned now and
    /// those owned for at least `grace`.
    public mutating func update(_ assignment: Set<TopicPartition>, now: ContinuousClock.Instant = .now) -> (owned: Set<Int>, settled: Set<Int>) {
        let current = Set(assignment.filter { $0.topic == topic }.map { Int($0.partition) })
        ownedSince = ownedSince.filter { current.contains($0.key) }
        for partition in current where ownedSince[partition] == nil { ownedSince[partition] = now }
        let grace = self.grace
        return (current, Set(current.filter { now - ownedSince[$0]! >= grace }))
    }
}

/// A compacted changelog of the open work items a service keeps per key of one of its work
/// topics (school resolution's CSC requests per child, dispatch's pending notices), so that
/// the items of an instance lost for good are taken over by the next owner of their partition.
///
/// - **Keyed like the work topic** (same key, same partition count, same partitioner), so a
///   key's changelog partition is its work partition: the instance that owns the work
///   partition owns the key's items.
/// - **What is published.** Triggers on the service's tables (`tracked`) mark each changed
///   key in `changelogDirty`, in the transaction of the change, whatever wrote it (a handler,
///   an HTTP action, the retention purge). A background task publishes each marked key's open
///   items (`snapshot`) as one record, with this store's name in the `encompass-owner` header,
///   or a tombstone when none is open (answered, closed, purged): compaction then drops the
///   personal data the earlier records carried. A marker survives a crash, so nothing changed
///   is left out of the changelog.
/// - **Standby copy.** Every instance reads the whole topic (a replica group of its own) into
///   `changelogStandby`: the latest record per key and the store that wrote it.
/// - **Restore.** Once a work partition has been owned for `grace`, the standby records of its
///   keys written by another store are restored (`restore`: the items this store does not
///   hold are inserted) and the key is published again with this store as owner.
/// - **Release.** A record written by another store for a key whose partition this instance
///   does not own supersedes the local copy: `release` drops this store's open items of the
///   key (the other store holds them), so an item is listed and acted on by one instance.
public struct WorkChangelog<P: MessagePayload>: Sendable {
    /// A table whose rows make up the items, and the column holding the work key.
    public struct Tracked: Sendable {
        public var table: String
        public var keyColumn: String
        public init(table: String, keyColumn: String) {
            self.table = table
            self.keyColumn = keyColumn
        }
    }

    public let topic: String
    public let workTopic: String
    public let service: ServiceName
    public let tracked: [Tracked]
    /// The open items of a key, or nil when it has none.
    public let snapshot: @Sendable (_ key: String, _ db: Database) throws -> P?
    /// Inserts the items of `payload` this store does not hold; returns how many it inserted.
    public let restore: @Sendable (_ key: String, _ payload: P, _ db: Database, _ now: Date) throws -> Int
    /// Drops this store's open items of `key` (another store owns them now).
    public let release: @Sendable (_ key: String, _ db: Database, _ now: Date) throws -> Void
    public let interval: Duration
    public let grace: Duration
    private let owned = Locked<Set<Int>?>(nil)

    public init(
        topic: String, workTopic: String, service: ServiceName, tracked: [Tracked], interval: Duration = .milliseconds(200),
        grace: Duration = .seconds(2),
        snapshot: @escaping @Sendable (_ key: String, _ db: Database) throws -> P?,
        restore: @escaping @Sendable (_ key: String, _ payload: P, _ db: Database, _ now: Date) throws -> Int,
        release: @escaping @Sendable (_ key: String, _ db: Database, _ now: Date) throws -> Void
    ) {
        self.topic = topic
        self.workTopic = workTopic
        self.service = service
        self.tracked = tracked
        self.interval = interval
        self.grace = grace
        self.snapshot = snapshot
        self.restore = restore
        self.release = release
    }

    // MARK: store

    /// The runtime's changelog tables (once per store) and this changelog's triggers; existing
    /// keys are marked, so a store that predates the changelog publishes its open items.
    public var migrations: [StoreMigration] {
        let topic = self.topic, tracked = self.tracked
        let literal = "'" + topic.replacingOccurrences(of: "'", with: "''") + "'"
        return [
            WorkChangelogStore.migration,
            StoreMigration("changelog-triggers:\(topic)") { db in
                for (index, table) in tracked.enumerated() {
                    let name = "changelog_\(index)_\(table.table)"
                    let mark = { (row: String) in
                        "INSERT OR IGNORE INTO changelogDirty (topic, key) VALUES (\(literal), \(row).\(table.keyColumn.quotedDatabaseIdentifier));"
                    }
                    let quoted = table.table.quotedDatabaseIdentifier
                    try db.execute(
                        sql: """
                            CREATE TRIGGER \(name)_insert AFTER INSERT ON \(quoted) BEGIN \(mark("NEW")) END;
                            CREATE TRIGGER \(name)_update AFTER UPDATE ON \(quoted) BEGIN \(mark("OLD")) \(mark("NEW")) END;
                            CREATE TRIGGER \(name)_delete AFTER DELETE ON \(quoted) BEGIN \(mark("OLD")) END;
                            INSERT OR IGNORE INTO changelogDirty (topic, key) SELECT \(literal), \(table.keyColumn.quotedDatabaseIdentifier) FROM \(quoted);
                            """)
                }
            },
        ]
    }

    // MARK: replica

    /// The replicated handler: keeps the latest record per key in `changelogStandby`; a
    /// record or tombstone of another store for a key this instance does not own releases the
    /// local copy.
    public var handler: TopicHandler {
        let topic = self.topic, release = self.release, owned = self.owned
        return TopicHandler(topic: topic) { record, db, _, now, _ in
            guard let key = record.keyString, !key.isEmpty else {
                throw RejectedMessage(
                    errorClass: "message.key", reason: "a record without a key on \(topic), which is keyed like its work topic; it cannot be restored"
                )
            }
            let me = try WorkChangelogStore.owner(db)
            let messageId = record.header(MessageHeader.messageId)?.stringValue ?? "\(record.partition)/\(record.offset)"
            let writer = record.header(MessageHeader.owner)?.stringValue
            let held = try StandbyRecord.fetchOne(db, key: ["topic": topic, "key": key])
            if writer == me {
                // This store's own record coming back: the standby row already holds it (or a
                // newer one); learn its partition.
                if let held, held.partition == nil {
                    try db.execute(
                        sql: "UPDATE changelogStandby SET partition = ? WHERE topic = ? AND key = ?", arguments: [Int(record.partition), topic, key])
                }
                if record.isTombstone, held?.messageId == messageId { try held?.delete(db) }
                return .duplicate
            }
            let mine = owned.withLock { $0 }?.contains(Int(record.partition)) ?? false
            if record.isTombstone {
                if held?.owner != me { try held?.delete(db) }
                if mine {
                    // Another store closed the key after this one took it over: what this
                    // store holds is published again, as the key's latest record.
                    try db.execute(sql: "UPDATE changelogStandby SET payloadHash = NULL WHERE topic = ? AND key = ?", arguments: [topic, key])
                    try db.execute(sql: "INSERT OR IGNORE INTO changelogDirty (topic, key) VALUES (?, ?)", arguments: [topic, key])
                    return .applied
                }
            } else {
                // Kept even for a partition this instance owns: the restore (or the next
                // publication of the key) merges its items first.
                try StandbyRecord(
                    topic: topic, key: key, partition: Int(record.partition), owner: writer ?? "", messageId: messageId,
                    value: Data(record.value), payloadHash: nil, restoreTried: false, updatedAt: now
                ).insert(db, onConflict: .replace)
                if mine { return .applied }
            }
            try release(key, db, now)
            try db.execute(sql: "DELETE FROM changelogDirty WHERE topic = ? AND key = ?", arguments: [topic, key])
            return .applied
        }
    }

    // MARK: owner

    /// Publishes the marked keys and restores the settled partitions' keys of other stores,
    /// every `interval`.
    public var task: BackgroundTask {
        let changelog = self
        return BackgroundTask(name: "changelog:\(topic)") { environment in
            var partitions = SettledPartitions(topic: changelog.workTopic, grace: changelog.grace)
            while !Task.isCancelled {
                let (owned, settled) = partitions.update(environment.ownedPartitions())
                changelog.owned.withLock { $0 = owned }
                do {
                    let now = environment.clock.now()
                    let restored = try await environment.write { db, outbox in
                        let restored = try changelog.restoreSettled(settled, db: db, now: now)
                        _ = try changelog.publishMarked(owned: owned, db: db, outbox: outbox, now: now)
                        return restored
                    }
                    if !restored.isEmpty {
                        environment.logger.info(
                            "changelog restored",
                            metadata: [
                                "topic": .string(changelog.topic), "keys": "\(restored.count)",
                                "items": "\(restored.map(\.items).reduce(0, +))",
                                "from": .string(Set(restored.map(\.from)).sorted().joined(separator: ",")),
                            ])
                    }
                    var more = true
                    while more && !Task.isCancelled {
                        more = try await environment.write { db, outbox in
                            try changelog.publishMarked(owned: owned, db: db, outbox: outbox, now: now) >= WorkChangelogStore.batch
                        }
                    }
                } catch {
                    environment.logger.error(
                        "changelog publish or restore failed; retrying", metadata: ["topic": .string(changelog.topic), "error": "\(error)"])
                }
                try await Task.sleep(for: changelog.interval)
            }
        }
    }

    /// One key taken over by `restoreSettled`.
    public struct Restored: Sendable, Equatable {
        public var key: String
        public var from: String
        public var items: Int
    }

    /// Restores the standby records of other stores in `partitions` (this store's items not
    /// held are inserted) and marks their keys, so they are published with this store as owner.
    public func restoreSettled(_ partitions: Set<Int>, db: Database, now: Date) throws -> [Restored] {
        guard !partitions.isEmpty else { return [] }
        let me = try WorkChangelogStore.owner(db)
        let list = partitions.sorted().map(String.init).joined(separator: ",")
        let rows = try StandbyRecord.fetchAll(
            db,
            sql: """
                SELECT * FROM changelogStandby
                WHERE topic = ? AND owner != ? AND value IS NOT NULL AND NOT restoreTried AND partition IN (\(list)) ORDER BY key
                """, arguments: [topic, me])
        var restored: [Restored] = []
        for row in rows {
            guard let value = row.value else { continue }
            let envelope = try WireFormat.decode(P.self, from: Array(value))
            let items = try restore(row.key, envelope.payload, db, now)
            // Once per record: a key whose items this store declines (it holds none of them
            // open) keeps the other store's record, and is not tried again until a new one comes.
            try db.execute(sql: "UPDATE changelogStandby SET restoreTried = 1 WHERE topic = ? AND key = ?", arguments: [topic, row.key])
            try db.execute(sql: "INSERT OR IGNORE INTO changelogDirty (topic, key) VALUES (?, ?)", arguments: [topic, row.key])
            restored.append(Restored(key: row.key, from: row.owner, items: items))
        }
        return restored
    }

    /// Publishes up to `WorkChangelogStore.batch` marked keys (`owned`: the work partitions this
    /// instance owns now); returns how many keys it looked at.
    @discardableResult
    public func publishMarked(owned: Set<Int>?, db: Database, outbox: Outbox, now: Date) throws -> Int {
        let me = try WorkChangelogStore.owner(db)
        let keys = try String.fetchAll(
            db, sql: "SELECT key FROM changelogDirty WHERE topic = ? LIMIT \(WorkChangelogStore.batch)", arguments: [topic])
        for key in keys {
            try db.execute(sql: "DELETE FROM changelogDirty WHERE topic = ? AND key = ?", arguments: [topic, key])
            let held = try StandbyRecord.fetchOne(db, key: ["topic": topic, "key": key])
            if let held, held.owner != me {
                if let partition = held.partition, let owned, !owned.contains(partition) {
                    // Another store owns the key and this instance not its partition: what
                    // changed here is a stale copy.
                    try release(key, db, now)
                    try db.execute(sql: "DELETE FROM changelogDirty WHERE topic = ? AND key = ?", arguments: [topic, key])
                    continue
                }
                // Taking the key over (before its partition settled, say): the other store's
                // items first, so publishing this store's items does not drop them.
                if let value = held.value {
                    _ = try restore(key, try WireFormat.decode(P.self, from: Array(value)).payload, db, now)
                    try db.execute(sql: "DELETE FROM changelogDirty WHERE topic = ? AND key = ?", arguments: [topic, key])
                }
            }
            let headers = [(MessageHeader.owner, me)]
            guard let payload = try snapshot(key, db) else {
                // Nothing open here: forget this store's own record; another store's stays (it
                // is theirs to close, and a tombstone would erase what they hold).
                guard let held, held.owner == me, held.value != nil else { continue }
                let id = MessageID.fresh()
                try outbox.tombstone(topic: topic, key: key, id: id, now: now, headers: headers)
                try StandbyRecord(
                    topic: topic, key: key, partition: held.partition, owner: me, messageId: id, value: nil,
                    payloadHash: nil, restoreTried: false, updatedAt: now
                ).insert(db, onConflict: .replace)
                continue
            }
            let hash = StableHash.hex128(String(decoding: try WireFormat.data(payload), as: UTF8.self))
            if let held, held.owner == me, held.payloadHash == hash { continue }
            let id = MessageID.fresh()
            let value = try outbox.publish(payload, to: topic, key: key, id: id, now: now, headers: headers)
            try StandbyRecord(
                topic: topic, key: key, partition: held?.partition, owner: me, messageId: id, value: value,
                payloadHash: hash, restoreTried: false, updatedAt: now
            ).insert(db, onConflict: .replace)
        }
        return keys.count
    }
}

/// The runtime's tables for `WorkChangelog`.
public enum WorkChangelogStore {
    static let batch = 500

    public static let migration = StoreMigration("runtime-work-changelog-v1") { db in
        try db.execute(
            sql: """
                CREATE TABLE changelogOwner (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL);
                INSERT INTO changelogOwner (id, name) VALUES (1, 'store-' || lower(hex(randomblob(8))));
                CREATE TABLE changelogDirty (topic TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (topic, key)) WITHOUT ROWID;
                CREATE TABLE changelogStandby (
                    topic TEXT NOT NULL, key TEXT NOT NULL, partition INTEGER, owner TEXT NOT NULL, messageId TEXT NOT NULL,
                    value BLOB, payloadHash TEXT, restoreTried BOOLEAN NOT NULL DEFAULT 0, updatedAt DATETIME NOT NULL,
                    PRIMARY KEY (topic, key)) WITHOUT ROWID;
                CREATE INDEX changelogStandby_owner ON changelogStandby (topic, owner, partition);
                """)
    }

    /// This store's name as a changelog owner (made once per store: a store deleted and made
    /// again is a new owner, and restores what its predecessor held).
    public static func owner(_ db: Database) throws -> String {
        guard let name = try String.fetchOne(db.cachedStatement(sql: "SELECT name FROM changelogOwner WHERE id = 1")) else {
            throw DatabaseError(message: "changelogOwner is empty; the runtime-work-changelog-v1 migration did not run")
        }
        return name
    }
}

/// The latest record of one key of a work changelog, as this instance read or wrote it (table
/// `changelogStandby`). `value` is nil for a tombstone this store wrote and has not yet read back.
public struct StandbyRecord: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "changelogStandby"
    public var topic: String
    public var key: String
    /// The changelog partition (= the work partition); nil until read from the topic.
    public var partition: Int?
    public var owner: String
    public var messageId: String
    public var value: Data?
    public var payloadHash: String?
    /// Another store's record this store has tried to restore (`restoreSettled`).
    public var restoreTried: Bool
    public var updatedAt: Date
}
