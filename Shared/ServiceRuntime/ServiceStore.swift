import EncompassKafka
import EncompassModels
import Foundation
import GRDB

/// One schema change of a service's own tables. Identifiers must be unique and never change.
public struct StoreMigration: Sendable {
    public let identifier: String
    public let migrate: @Sendable (Database) throws -> Void

    public init(_ identifier: String, _ migrate: @escaping @Sendable (Database) throws -> Void) {
        self.identifier = identifier
        self.migrate = migrate
    }
}

/// A service's SQLite store: WAL mode (DatabasePool), the runtime's tables (inbox, outbox,
/// dead letters) and the service's own migrations.
public final class ServiceStore: Sendable {
    public let pool: DatabasePool
    public let path: String

    /// `writerSetup` runs once on the connection that writes (not on the pool's readers), after
    /// the runtime's own settings: e.g. a larger page cache for the tables a service's handlers
    /// search in their transactions.
    public init(path: String, migrations: [StoreMigration] = [], writerSetup: (@Sendable (Database) throws -> Void)? = nil) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL + NORMAL: durable at each checkpoint and safe against application crashes;
            // a power loss may lose the last transactions, never corrupt the file.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // Deleted or overwritten values are zeroed where that costs no extra I/O (personal
            // data does not linger in free space; the retention purge zeroes everything).
            try db.execute(sql: "PRAGMA secure_delete = FAST")
            if let writerSetup, !db.configuration.readonly { try writerSetup(db) }
        }
        self.path = path
        self.pool = try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        for migration in ServiceStore.runtimeMigrations + [DeadLetterOps.migration, ServiceStore.deadLetterValueLast] + migrations {
            migrator.registerMigration(migration.identifier, migrate: migration.migrate)
        }
        try migrator.migrate(pool)
    }

    static let runtimeMigrations: [StoreMigration] = [
        StoreMigration("runtime-v1") { db in
            try db.create(table: InboxEntry.databaseTableName) { t in
                t.primaryKey("messageId", .text)
                t.column("topic", .text).notNull()
                t.column("partition", .integer).notNull()
                t.column("offset", .integer).notNull()
                t.column("processedAt", .datetime).notNull().indexed()
            }
            try db.create(table: OutboxMessage.databaseTableName) { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("messageId", .text).notNull()
                t.column("topic", .text).notNull()
                t.column("key", .text)
                t.column("value", .blob).notNull()
                t.column("headers", .text).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: DeadLetter.databaseTableName) { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("service", .text).notNull()
                t.column("originalTopic", .text).notNull()
                t.column("originalPartition", .integer).notNull()
                t.column("originalOffset", .integer).notNull()
                t.column("originalKey", .text)
                t.column("originalValue", .blob).notNull()
                t.column("originalHeaders", .text).notNull()
                t.column("originalMessageId", .text).indexed()
                t.column("errorClass", .text).notNull().indexed()
                t.column("errorMessage", .text).notNull()
                t.column("attempts", .integer).notNull()
                t.column("firstFailedAt", .datetime).notNull()
                t.column("deadLetteredAt", .datetime).notNull().indexed()
                t.column("status", .text).notNull().defaults(to: "open")
                t.uniqueKey(["originalTopic", "originalPartition", "originalOffset"], onConflict: .ignore)
            }
        }
    ]
}

extension ServiceStore {
    /// The dead letter's value becomes the table's last column. A large value (a refused
    /// upload) is written with `zeroblob(N)` and then SQLite's incremental blob I/O; SQLite
    /// builds a row whose zeroblob is not its last column in memory, twice the value's size, and
    /// one whose zeroblob is last without allocating it. Columns are read by name, so nothing
    /// else changes.
    static let deadLetterValueLast = StoreMigration("runtime-v3-dead-letter-value-last") { db in
        let table = DeadLetter.databaseTableName
        let columns = [
            "id", "service", "originalTopic", "originalPartition", "originalOffset", "originalKey", "originalHeaders",
            "originalMessageId", "errorClass", "errorMessage", "attempts", "firstFailedAt", "deadLetteredAt", "status",
            "originalValue",
        ]
        try db.create(table: "\(table)_new") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("service", .text).notNull()
            t.column("originalTopic", .text).notNull()
            t.column("originalPartition", .integer).notNull()
            t.column("originalOffset", .integer).notNull()
            t.column("originalKey", .text)
            t.column("originalHeaders", .text).notNull()
            t.column("originalMessageId", .text)
            t.column("errorClass", .text).notNull()
            t.column("errorMessage", .text).notNull()
            t.column("attempts", .integer).notNull()
            t.column("firstFailedAt", .datetime).notNull()
            t.column("deadLetteredAt", .datetime).notNull()
            t.column("status", .text).notNull().defaults(to: "open")
            t.column("originalValue", .blob).notNull()
            t.uniqueKey(["originalTopic", "originalPartition", "originalOffset"], onConflict: .ignore)
        }
        let list = columns.map(\.quotedDatabaseIdentifier).joined(separator: ", ")
        try db.execute(sql: "INSERT INTO \(table)_new (\(list)) SELECT \(list) FROM \(table)")
        try db.drop(table: table)
        try db.rename(table: "\(table)_new", to: table)
        for column in ["originalMessageId", "errorClass", "deadLetteredAt"] {
            try db.create(index: "\(table)_on_\(column)", on: table, columns: [column])
        }
    }
}

/// A processed message id (dedupe). One row per message a service has applied.
public struct InboxEntry: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "inbox"
    public var messageId: String
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var processedAt: Date

    public init(messageId: String, topic: String, partition: Int32, offset: Int64, processedAt: Date) {
        self.messageId = messageId
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.processedAt = processedAt
    }
}

extension InboxEntry {
    /// Whether `messageId` was applied here (and not yet forgotten by the inbox retention).
    public static func contains(_ messageId: String, db: Database) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM inbox WHERE messageId = ?"), arguments: [messageId]) == true
    }

    /// Runs `apply` unless `messageId` was applied before, and remembers it, all in `db`'s
    /// transaction: the de-duplication every handler needs.
    ///
    /// One statement both asks and remembers: the insert is skipped on a known id, and then
    /// nothing changed. If `apply` throws, the caller's transaction or savepoint rolls the
    /// insert back with the rest, so a failed message is not remembered.
    public static func applyOnce(messageId: String, record: KafkaRecord, db: Database, now: Date, _ apply: () throws -> Void) throws -> HandleOutcome
    {
        // A statement prepared once per connection: this runs for every message of every service.
        var insert = RawStatement(
            try db.cachedStatement(
                sql: "INSERT INTO inbox (messageId, topic, partition, offset, processedAt) VALUES (?, ?, ?, ?, ?) ON CONFLICT(messageId) DO NOTHING"),
            db: db)
        insert.bind(messageId)
        insert.bind(record.topic)
        insert.bind(Int64(record.partition))
        insert.bind(record.offset)
        insert.bind(now)
        try insert.run()
        guard db.changesCount > 0 else { return .duplicate }
        try apply()
        return .applied
    }
}

/// A message to publish, written in the same transaction as the state change that caused it
/// and removed once the broker acknowledged it.
public struct OutboxMessage: Codable, FetchableRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "outbox"
    public var id: Int64?
    public var messageId: String
    public var topic: String
    public var key: String?
    public var value: Data
    /// JSON object of header name to value.
    public var headers: String
    public var createdAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    var producerRecord: ProducerRecord {
        // A flat object of strings, read straight from the wire decoder's tokens (decoding it as a
        // `[String: String]` through `Decodable` takes a third of the relay's own time); Foundation
        // reads what that gives up on.
        let members =
            (try? WireDecoder.stringMembers(from: Array(headers.utf8)))
            ?? (try? WireFormat.value([String: String].self, from: Data(headers.utf8)))?.map { (name: $0.key, value: $0.value) }
            ?? []
        var record = ProducerRecord(
            topic: topic, key: key, value: Array(value),
            headers: members.sorted { $0.name < $1.name }.map { KafkaHeader(key: $0.name, string: $0.value) }
        )
        record.isTombstone = members.contains { $0.name == MessageHeader.tombstone }
        return record
    }
}

extension OutboxMessage {
    /// Read by column, not through `Decodable`: the relay reads every row once. (In an
    /// extension, so the memberwise initialiser stays.)
    public init(row: Row) throws {
        self.init(
            id: row["id"], messageId: row["messageId"], topic: row["topic"], key: row["key"], value: row["value"],
            headers: row["headers"], createdAt: row["createdAt"])
    }
}

/// A record that could not be processed, kept durably with the reason.
public struct DeadLetter: Codable, FetchableRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "deadLetter"
    public var id: Int64?
    public var service: String
    public var originalTopic: String
    public var originalPartition: Int32
    public var originalOffset: Int64
    public var originalKey: String?
    public var originalValue: Data
    /// JSON object of header name to value.
    public var originalHeaders: String
    public var originalMessageId: String?
    public var errorClass: String
    public var errorMessage: String
    public var attempts: Int
    public var firstFailedAt: Date
    public var deadLetteredAt: Date
    /// open, replayed or discarded.
    public var status: String

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension DeadLetter {
    /// `originalPartition` of a dead letter taken out of the outbox because Kafka refused it
    /// (`originalTopic` is the topic it was for, `originalOffset` its outbox row id). Input that
    /// did not come from Kafka has -1; Kafka records 0 and up.
    public static let outboxPartition: Int32 = -2

    /// The event published on the service's dead-letter topic for this row.
    public var event: DeadLetterEvent {
        DeadLetterEvent(
            service: service, originalTopic: originalTopic, originalPartition: originalPartition,
            originalOffset: originalOffset, originalKey: originalKey, originalValue: Array(originalValue),
            originalMessageId: originalMessageId, errorClass: errorClass, errorMessage: errorMessage, attempts: attempts,
            firstFailedAt: firstFailedAt, deadLetteredAt: deadLetteredAt
        )
    }
}

/// A message refused before it entered the outbox: Kafka would refuse it too, and an outbox
/// row that cannot be published holds back every row behind it.
public enum OutboxError: PermanentFailure, Equatable {
    /// Key, value and headers together are over the limit the producer and brokers take.
    case messageTooLarge(topic: String, bytes: Int, limit: Int)

    public var errorClass: String { "outbox.message-too-large" }

    public var description: String {
        switch self {
        case .messageTooLarge(let topic, let bytes, let limit):
            "the message for \(topic) would be \(bytes) bytes, over the \(limit) bytes Kafka takes (message.max.bytes, "
                + "less \(Outbox.recordOverhead) bytes of record overhead); nothing was queued. Shorten the fields that made it "
                + "this large (names, addresses, free text), or raise message.max.bytes on the brokers and "
                + "ENCOMPASS_KAFKA_PROPERTY_MESSAGE_MAX_BYTES together"
        }
    }
}

/// Writes outbox rows inside the current transaction.
public struct Outbox {
    public let db: Database
    public let producer: String
    /// The largest record Kafka takes (`message.max.bytes`); a larger message is refused with
    /// `OutboxError.messageTooLarge` before it is inserted.
    public let maxMessageBytes: Int

    /// librdkafka's default `message.max.bytes`, which Apache Kafka's brokers also take.
    public static let defaultMaxMessageBytes = 1_000_000
    /// What a record adds on the wire beyond its key, value and headers (batch header, lengths),
    /// rounded up: librdkafka counts it against `message.max.bytes`.
    public static let recordOverhead = 256

    public init(db: Database, producer: String, maxMessageBytes: Int = Outbox.defaultMaxMessageBytes) {
        self.db = db
        self.producer = producer
        self.maxMessageBytes = maxMessageBytes
    }

    /// Throws `OutboxError.messageTooLarge` when a record of these sizes would be refused.
    public func checkSize(topic: String, key: String?, valueBytes: Int, headersBytes: Int) throws(OutboxError) {
        let bytes = valueBytes + (key?.utf8.count ?? 0) + headersBytes
        if bytes > maxMessageBytes - Self.recordOverhead {
            throw .messageTooLarge(topic: topic, bytes: bytes, limit: maxMessageBytes)
        }
    }

    /// Queues an envelope for publication. `id` should be derived from the causing message
    /// (`MessageID.derived`) so that re-processing re-creates the same id. Returns the record's
    /// value as queued (the encoded envelope), for a caller that keeps a copy.
    @discardableResult
    public func publish<P: MessagePayload>(
        _ payload: P, to topic: String, key: String, id: String, causationId: String? = nil, now: Date = Date(),
        headers extra: [(String, String)] = []
    ) throws -> Data {
        let envelope = Envelope(id: id, key: key, producer: producer, createdAt: now, causationId: causationId, payload: payload)
        let headers = [(MessageHeader.messageId, id), (MessageHeader.schema, P.schema), (MessageHeader.version, String(P.schemaVersion))] + extra
        let value = Data(try WireFormat.encode(envelope))
        try queue(id: id, topic: topic, key: key, value: value, headers: headers, now: now)
        return value
    }

    private func queue(id: String, topic: String, key: String, value: Data, headers: [(String, String)], now: Date) throws {
        // Built in one string (a `map` and `joined` allocated per header, on every message).
        var headerJSON = "{"
        headerJSON.reserveCapacity(headers.reduce(2) { $0 + $1.0.utf8.count + $1.1.utf8.count + 6 })
        for (index, (name, value)) in headers.enumerated() {
            if index > 0 { headerJSON += "," }
            JSONText.append(name, to: &headerJSON)
            headerJSON += ":"
            JSONText.append(value, to: &headerJSON)
        }
        headerJSON += "}"
        try checkSize(topic: topic, key: key, valueBytes: value.count, headersBytes: headerJSON.utf8.count)
        // A statement prepared once per connection: every message of every service passes here.
        var insert = RawStatement(
            try db.cachedStatement(sql: "INSERT INTO outbox (messageId, topic, key, value, headers, createdAt) VALUES (?, ?, ?, ?, ?, ?)"), db: db)
        insert.bind(id)
        insert.bind(topic)
        insert.bind(key)
        insert.bind(value)
        insert.bind(headerJSON)
        insert.bind(now)
        try insert.run()
    }

    /// Queues a tombstone (a record with no value) for `key` on a compacted topic, so that
    /// compaction drops the key's earlier records: what the retention purge does to the copies
    /// of personal data a compacted topic would otherwise keep for ever. The outbox row has an
    /// empty value and the `encompass-tombstone` header; the relay sends it with a null value.
    public func tombstone(topic: String, key: String, id: String, now: Date = Date(), headers extra: [(String, String)] = []) throws {
        try queue(
            id: id, topic: topic, key: key, value: Data(), headers: [(MessageHeader.messageId, id), (MessageHeader.tombstone, "true")] + extra,
            now: now)
    }
}

extension FetchableRecord where Self: TableRecord {
    /// The rows whose `column` equals `value`, through a statement prepared once per connection.
    /// For handlers' per-message lookups: the query interface (`fetchOne(db, key:)`,
    /// `filter(...)`) generates and prepares its SQL, with SQLite's authorizer, on every call,
    /// which costs 5–7% of school resolution's and scheduling's time in the pipeline benchmark.
    public static func fetchAll(_ db: Database, where column: String, equals value: some DatabaseValueConvertible, orderBy order: String? = nil)
        throws -> [Self]
    {
        let sql =
            "SELECT * FROM \(databaseTableName.quotedDatabaseIdentifier) WHERE \(column.quotedDatabaseIdentifier) = ?"
            + (order.map { " ORDER BY \($0.quotedDatabaseIdentifier)" } ?? "")
        return try fetchAll(db.cachedStatement(sql: sql), arguments: [value])
    }

    /// The row whose `column` (a primary or unique key) equals `value`; see `fetchAll(_:where:equals:orderBy:)`.
    public static func fetchOne(_ db: Database, where column: String, equals value: some DatabaseValueConvertible) throws -> Self? {
        try fetchOne(
            db.cachedStatement(
                sql: "SELECT * FROM \(databaseTableName.quotedDatabaseIdentifier) WHERE \(column.quotedDatabaseIdentifier) = ? LIMIT 1"),
            arguments: [value])
    }
}

/// JSON text for small values written by hand on hot paths.
enum JSONText {
    /// `text` as a JSON string literal (RFC 8259: quote, backslash and control characters escaped).
    static func quoted(_ text: String) -> String {
        var out = ""
        append(text, to: &out)
        return out
    }

    /// Appends `text` as a JSON string literal to `out`.
    static func append(_ text: String, to out: inout String) {
        // Ids, schema names and versions: nothing to escape, so no scalar-by-scalar copy.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += "\""
            out += text
            out += "\""
            return
        }
        out += "\""
        out.reserveCapacity(out.utf8.count + text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// A record that handlers write once per message: inserted, or inserted or replaced, whole by a
/// statement prepared once per connection. GRDB's `save`, `upsert` and `insert` generate their SQL on
/// every call (through `upsert`, a sixth of school resolution's time in the pipeline benchmark).
///
/// The table must have no foreign keys or triggers that a replacement (a delete, then an
/// insert) would set off. Each service's tests check its records with `replacementDrift()`,
/// so the column list and the Codable encoding cannot drift apart.
public protocol ReplaceableRecord: PersistableRecord {
    /// The columns, in the order `replacementValues` gives their values.
    static var replacementColumns: [String] { get }
    /// The values as GRDB's Codable encoding stores them (dates as `Date.stored`, enums as raw values).
    var replacementValues: [(any DatabaseValueConvertible)?] { get }
}

extension ReplaceableRecord {
    /// `INSERT OR REPLACE` of the whole row.
    public func insertOrReplace(_ db: Database) throws {
        try db.cachedStatement(sql: Self.insertionSQL(replace: true)).execute(arguments: StatementArguments(replacementValues))
    }

    /// A plain `INSERT` of the whole row: the table's own conflict clauses decide what a
    /// duplicate does (a unique column `ON CONFLICT IGNORE` drops it).
    public func insertRow(_ db: Database) throws {
        try db.cachedStatement(sql: Self.insertionSQL(replace: false)).execute(arguments: StatementArguments(replacementValues))
    }

    /// The statement's SQL, built once per record type and verb (this runs once per message).
    static func insertionSQL(replace: Bool) -> String {
        let key = InsertionKey(type: ObjectIdentifier(Self.self), replace: replace)
        if let sql = insertionSQLs.withLock({ $0[key] }) { return sql }
        let columns = replacementColumns
        let sql =
            (replace ? "INSERT OR REPLACE INTO " : "INSERT INTO ") + databaseTableName.quotedDatabaseIdentifier + " ("
            + columns.map(\.quotedDatabaseIdentifier).joined(separator: ", ") + ") VALUES ("
            + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        insertionSQLs.withLock { $0[key] = sql }
        return sql
    }

    /// Where `replacementColumns`/`replacementValues` differ from GRDB's Codable encoding of
    /// this record (a missing or extra column, a value stored differently); empty when none.
    public func replacementDrift() throws -> [String] {
        let encoded = try databaseDictionary
        let given = Dictionary(zip(Self.replacementColumns, replacementValues.map { $0?.databaseValue ?? .null }), uniquingKeysWith: { a, _ in a })
        var drift: [String] = []
        if Self.replacementColumns.count != replacementValues.count {
            drift.append("\(Self.replacementColumns.count) columns, \(replacementValues.count) values")
        }
        for (column, value) in encoded.sorted(by: { $0.key < $1.key }) where given[column] != value {
            drift.append("\(column): encoded \(value), given \(given[column].map { "\($0)" } ?? "nothing")")
        }
        for column in given.keys.sorted() where encoded[column] == nil { drift.append("\(column): not a column of the record") }
        return drift
    }
}

/// `ReplaceableRecord.insertionSQL` of each record type and verb.
private struct InsertionKey: Hashable {
    var type: ObjectIdentifier
    var replace: Bool
}

private let insertionSQLs = Locked<[InsertionKey: String]>([:])

extension Date {
    /// The date as GRDB stores it (`yyyy-MM-dd HH:mm:ss.SSS` UTC text), written without GRDB's
    /// DateFormatter, for statements that run once per message (`Timestamp.databaseText`).
    public var stored: any DatabaseValueConvertible { Timestamp.databaseText(self) ?? self }
}
