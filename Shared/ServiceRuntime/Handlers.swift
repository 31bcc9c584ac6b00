import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// An error that retrying cannot fix: the message goes straight to the dead letter.
public protocol PermanentFailure: Error, CustomStringConvertible {
    /// Stable category for filtering dead letters, e.g. `payload.validation`.
    var errorClass: String { get }
}

extension EnvelopeError: PermanentFailure {}

/// A handler's verdict that a message is unacceptable as it is.
public struct RejectedMessage: PermanentFailure, Equatable {
    public var errorClass: String
    public var reason: String

    public init(errorClass: String, reason: String) {
        self.errorClass = errorClass
        self.reason = reason
    }

    public var description: String { reason }
}

/// What a handler gets for one message: the open write transaction, the record and an outbox
/// in that same transaction.
public struct MessageContext {
    public let db: Database
    public let record: KafkaRecord
    public let outbox: Outbox
    public let now: Date
    public let logger: Logger
}

public enum HandleOutcome: String, Sendable {
    case applied
    case duplicate
    case deadLettered = "dead_lettered"
}

/// Processes the records of one topic. Built with `TopicHandler.on(...)`, which decodes and
/// validates the envelope and de-duplicates by message id (the inbox) in the same transaction
/// as the handler's state change.
public struct TopicHandler: Sendable {
    public let topic: String
    let apply: @Sendable (KafkaRecord, Database, Outbox, Date, Logger) throws -> HandleOutcome

    public init(topic: String, apply: @escaping @Sendable (KafkaRecord, Database, Outbox, Date, Logger) throws -> HandleOutcome) {
        self.topic = topic
        self.apply = apply
    }

    /// `alreadyHeld`, when given, is asked first with the record's message id (its
    /// `encompass-message-id` header): true skips the record undecoded, as a duplicate. A
    /// replica uses it to pass over its own changes coming back, which is most of what it reads.
    ///
    /// `tombstone`, when given, takes the records with no value (tombstones of a compacted
    /// topic) by key: it must forget what it holds for the key, idempotently. Without it a
    /// tombstone is refused (dead letter, `message.tombstone`), as is one without a key.
    public static func on<P: MessagePayload>(
        _ topic: String, _ type: P.Type,
        alreadyHeld: (@Sendable (_ messageId: String, _ record: KafkaRecord, _ db: Database) throws -> Bool)? = nil,
        tombstone: (@Sendable (_ key: String, _ db: Database, _ now: Date) throws -> Void)? = nil,
        _ body: @escaping @Sendable (Envelope<P>, MessageContext) throws -> Void
    ) -> TopicHandler {
        TopicHandler(topic: topic) { record, db, outbox, now, logger in
            if record.isTombstone {
                guard let tombstone, let key = record.keyString, !key.isEmpty else {
                    throw RejectedMessage(
                        errorClass: "message.tombstone",
                        reason: tombstone == nil
                            ? "a tombstone (a record with no value) on \(topic), which is not a compacted topic of this service; only a retention purge sends tombstones, to compacted topics"
                            : "a tombstone without a key on \(topic); a tombstone must name the key to forget")
                }
                try tombstone(key, db, now)
                return .applied
            }
            if let alreadyHeld, let id = record.header(MessageHeader.messageId)?.stringValue, try alreadyHeld(id, record, db) {
                return .duplicate
            }
            let envelope = try WireFormat.decode(P.self, from: record.value)
            return try InboxEntry.applyOnce(messageId: envelope.id, record: record, db: db, now: now) {
                try body(envelope, MessageContext(db: db, record: record, outbox: outbox, now: now, logger: logger))
            }
        }
    }
}

extension TopicHandler {
    /// One topic that carries more than one schema: each record goes to the handler of the
    /// schema its `encompass-schema` header names (a record without the header, such as a
    /// replayed dead letter or another producer's, by the envelope's `schema` field), else to
    /// `otherwise` (which decodes it and dead-letters what it cannot read). Each handler must be
    /// built for `topic`.
    public static func bySchema(_ topic: String, _ handlers: [String: TopicHandler], otherwise: TopicHandler) -> TopicHandler {
        struct SchemaOnly: Decodable { var schema: String? }
        return TopicHandler(topic: topic) { record, db, outbox, now, logger in
            let schema =
                record.header(MessageHeader.schema)?.stringValue
                ?? (record.isTombstone ? nil : (try? JSONDecoder().decode(SchemaOnly.self, from: Data(record.value)))?.schema)
            let handler = schema.flatMap { handlers[$0] } ?? otherwise
            return try handler.apply(record, db, outbox, now, logger)
        }
    }
}

/// The Kafka headers every outbox record carries, so that a consumer can route or skip a record
/// without decoding its JSON.
public enum MessageHeader {
    public static let messageId = "encompass-message-id"
    public static let schema = "encompass-schema"
    public static let version = "encompass-version"
    /// On a record with no value: a tombstone queued by `Outbox.tombstone` (the relay sends it
    /// with a null value; the header stays, for whoever reads the topic).
    public static let tombstone = "encompass-tombstone"
    /// On a work changelog's records and tombstones (`WorkChangelog`): the store that owned the
    /// key's open items when it wrote the record.
    public static let owner = "encompass-owner"
}

public enum DeadLetterWriter {
    /// Records the dead letter and queues its event for the dead-letter topic, in `db`'s
    /// transaction. A record dead-lettered before (re-delivery) is not recorded twice.
    /// Input that did not come from Kafka (HTTP, files) passes a record whose topic names the
    /// source (e.g. `http:/v1/incidents`), partition -1 and a unique offset.
    public static func write(
        db: Database, service: ServiceName, record: KafkaRecord, errorClass: String, message: String,
        attempts: Int, firstFailedAt: Date, now: Date, outbox: Outbox
    ) throws {
        let messageId = messageId(of: record)
        var headers: [String: String] = [:]
        for header in record.headers { headers[header.key] = header.stringValue ?? "" }
        var row = DeadLetter(
            service: service.rawValue, originalTopic: record.topic, originalPartition: record.partition,
            originalOffset: record.offset, originalKey: record.keyString, originalValue: Data(record.value),
            originalHeaders: String(decoding: try JSONEncoder().encode(headers), as: UTF8.self),
            originalMessageId: messageId, errorClass: errorClass, errorMessage: message, attempts: attempts,
            firstFailedAt: firstFailedAt, deadLetteredAt: now, status: "open"
        )
        try row.insert(db)
        guard db.changesCount > 0 else { return }
        let id = MessageID.derived(from: "\(record.topic)/\(record.partition)/\(record.offset)", "dead-letter")
        do {
            try outbox.publish(row.event, to: service.deadLetterTopic, key: record.keyString ?? "", id: id, causationId: messageId, now: now)
        } catch OutboxError.messageTooLarge {
            // The original is too large for the topic (often why it is a dead letter): the event
            // says where it is kept instead of carrying it.
            try outbox.publish(
                referenceEvent(row, bytes: record.value.count, service: service), to: service.deadLetterTopic,
                key: record.keyString ?? "", id: id, causationId: messageId, now: now)
        }
    }

    /// The dead-letter event of `row` without its original value, which is too large for the
    /// topic: it names where the value is kept instead.
    static func referenceEvent(_ row: DeadLetter, bytes: Int, service: ServiceName) -> DeadLetterEvent {
        var event = row.event
        event.originalValue = nil
        event.originalValueBase64 = nil
        event.errorMessage +=
            " (the original value, \(bytes) bytes, is too large for \(service.deadLetterTopic); "
            + "it is kept in \(service.rawValue)'s deadLetter table, id \(row.id ?? 0))"
        return event
    }

    /// `writeRejectedInput` for input spooled to a file (a streamed upload): the dead letter's
    /// value is the file's bytes, copied into the store a chunk at a time (SQLite's incremental
    /// blob I/O), so a file of any size costs one chunk of memory. A file larger than a Kafka
    /// message can be is not put on the dead-letter topic: its event names the row that keeps it.
    public static func writeRejectedInput(
        db: Database, service: ServiceName, origin: String, place: Int64, key: String?, valueFile: URL,
        errorClass: String, message: String, now: Date, outbox: Outbox
    ) throws {
        let file = try FileHandle(forReadingFrom: valueFile)
        defer { try? file.close() }
        let size = Int(try file.seekToEnd())
        try file.seek(toOffset: 0)
        if size < outbox.maxMessageBytes {
            let value = try file.readToEnd() ?? Data()
            try writeRejectedInput(
                db: db, service: service, origin: origin, place: place, key: key, value: Array(value),
                errorClass: errorClass, message: message, now: now, outbox: outbox)
            return
        }
        var row = DeadLetter(
            service: service.rawValue, originalTopic: origin, originalPartition: -1, originalOffset: place, originalKey: key,
            originalValue: Data(), originalHeaders: "{}", originalMessageId: nil, errorClass: errorClass, errorMessage: message,
            attempts: 1, firstFailedAt: now, deadLetteredAt: now, status: "open"
        )
        try row.insert(db)
        guard db.changesCount > 0, let rowID = row.id else { return }
        try db.execute(sql: "UPDATE \(DeadLetter.databaseTableName) SET originalValue = zeroblob(?) WHERE id = ?", arguments: [size, rowID])
        var blob: OpaquePointer?
        let opened = sqlite3_blob_open(db.sqliteConnection, "main", DeadLetter.databaseTableName, "originalValue", rowID, 1, &blob)
        guard opened == SQLITE_OK, let blob else {
            if let blob { sqlite3_blob_close(blob) }
            throw DatabaseError(resultCode: ResultCode(rawValue: opened), message: "cannot open the dead letter's value to write it")
        }
        defer { sqlite3_blob_close(blob) }
        var offset = 0
        while offset < size, let chunk = try file.read(upToCount: 1 << 20), !chunk.isEmpty {
            let count = min(chunk.count, size - offset)
            let written = chunk.withUnsafeBytes { sqlite3_blob_write(blob, $0.baseAddress, Int32(count), Int32(offset)) }
            guard written == SQLITE_OK else {
                throw DatabaseError(resultCode: ResultCode(rawValue: written), message: "cannot write the dead letter's value")
            }
            offset += count
        }
        guard offset == size else { throw DatabaseError(message: "the spooled input \(valueFile.path) ended at byte \(offset) of \(size)") }
        let id = MessageID.derived(from: "\(origin)/-1/\(place)", "dead-letter")
        try outbox.publish(referenceEvent(row, bytes: size, service: service), to: service.deadLetterTopic, key: key ?? "", id: id, now: now)
    }

    /// Records an outbox row that Kafka refused for good (`KafkaError.refusesRecord`: too
    /// large, invalid) as a dead letter: topic the row was for, partition
    /// `DeadLetter.outboxPartition`, the outbox row id as offset. The caller deletes the row, so
    /// the rows behind it are published; a replay (after an edit) queues it again.
    public static func writeRefusedOutboxRow(
        db: Database, service: ServiceName, row: OutboxMessage, reason: String, attempts: Int, now: Date, outbox: Outbox
    ) throws {
        let record = KafkaRecord(
            topic: row.topic, partition: DeadLetter.outboxPartition, offset: row.id ?? 0, key: row.key.map { Array($0.utf8) },
            value: Array(row.value), headers: row.producerRecord.headers
        )
        try write(
            db: db, service: service, record: record, errorClass: "outbox.refused", message: reason,
            attempts: attempts, firstFailedAt: row.createdAt, now: now, outbox: outbox)
    }

    /// Records input that did not come from Kafka (an HTTP item, a spreadsheet row, a file) as
    /// a dead letter: `origin` names the source (e.g. `http:/v1/incidents`) and `place` must be
    /// unique within it (row or line number), so sending the same bad input again is recorded once.
    public static func writeRejectedInput(
        db: Database, service: ServiceName, origin: String, place: Int64, key: String?, value: [UInt8],
        errorClass: String, message: String, now: Date, outbox: Outbox
    ) throws {
        let record = KafkaRecord(topic: origin, partition: -1, offset: place, key: key.map { Array($0.utf8) }, value: value)
        try write(
            db: db, service: service, record: record, errorClass: errorClass, message: message,
            attempts: 1, firstFailedAt: now, now: now, outbox: outbox)
    }

    /// The envelope id, if the value is JSON with an `id` field.
    static func messageId(of record: KafkaRecord) -> String? {
        if let header = record.header(MessageHeader.messageId)?.stringValue { return header }
        struct IdOnly: Decodable { var id: String? }
        return (try? JSONDecoder().decode(IdOnly.self, from: Data(record.value)))?.id
    }
}
