import EncompassModels
import Foundation
import GRDB

/// Who did what to a dead letter: replayed (with the message id it was published as) or
/// discarded. Kept forever beside the dead letter, for the audit.
public struct DeadLetterAction: Codable, FetchableRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "deadLetterAction"
    public var id: Int64?
    public var deadLetterId: Int64
    /// `replay` or `discard`.
    public var action: String
    public var actor: String
    public var at: Date
    /// The reason (discard) or `edited payload` / `original payload` (replay).
    public var detail: String?
    /// Where a replay went.
    public var topic: String?
    public var messageId: String?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// Which dead letters to list.
public struct DeadLetterFilter: Sendable, Equatable {
    /// open, replayed, discarded; nil for all.
    public var status: String?
    public var errorClass: String?
    public var since: Date?
    public var until: Date?
    /// Matches the record key or an occurrence number anywhere in the original value.
    public var occurrenceNumber: String?
    /// Only the dead letters of this record (the copies of it this store holds).
    public var record: DeadLetterRecordKey?
    public var limit: Int

    public init(
        status: String? = "open", errorClass: String? = nil, since: Date? = nil, until: Date? = nil,
        occurrenceNumber: String? = nil, record: DeadLetterRecordKey? = nil, limit: Int = 200
    ) {
        self.status = status
        self.errorClass = errorClass
        self.since = since
        self.until = until
        self.occurrenceNumber = occurrenceNumber
        self.record = record
        self.limit = limit
    }
}

/// The source record of a dead letter: topic, partition and offset. Only a Kafka record
/// (partition 0 or more) is the same record in every instance's store; input that did not come
/// from Kafka (HTTP, files: partition -1) and outbox rows Kafka refused (partition -2) are
/// numbered by the store that holds them.
public struct DeadLetterRecordKey: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    /// The record of `view`, nil when it did not come from Kafka (see the type).
    public init?(_ view: DeadLetterView) {
        guard view.originalPartition >= 0 else { return nil }
        self.init(topic: view.originalTopic, partition: view.originalPartition, offset: view.originalOffset)
    }

    public var description: String { "\(topic)[\(partition)]@\(offset)" }

    /// `GET /v1/dead-letters`' query for it.
    public var query: [String: String] { ["topic": topic, "partition": String(partition), "offset": String(offset)] }
}

/// A dead letter as the operations API shows it.
public struct DeadLetterView: Codable, Sendable, Equatable {
    public var id: Int64
    public var service: String
    public var originalTopic: String
    public var originalPartition: Int32
    public var originalOffset: Int64
    public var originalKey: String?
    public var originalMessageId: String?
    public var errorClass: String
    public var errorMessage: String
    public var attempts: Int
    public var firstFailedAt: Date
    public var deadLetteredAt: Date
    public var status: String
    /// Only in `show`: the original value as text (or base64 when it is not UTF-8).
    public var originalValue: String?
    public var originalValueBase64: String?
    public var actions: [DeadLetterAction]?
    /// Only in `encompass dlq list --json` and the console: where it is, as `DeadLetterAddress` writes it.
    public var address: String?
    /// Only in the listings merged across instances (`encompass dlq list`, the console): every
    /// copy of the record, one for each instance that dead-lettered it, newest first.
    public var copies: [DeadLetterCopy]?
}

/// One instance's copy of a dead-lettered record, in the listings merged across instances.
public struct DeadLetterCopy: Codable, Sendable, Equatable {
    /// As `DeadLetterAddress` writes it (`intake/2:17`).
    public var address: String
    public var status: String
    public var errorClass: String
    public var errorMessage: String
    public var deadLetteredAt: Date

    public init(_ view: DeadLetterView) {
        address = view.address ?? "\(view.service)/\(view.id)"
        status = view.status
        errorClass = view.errorClass
        errorMessage = view.errorMessage
        deadLetteredAt = view.deadLetteredAt
    }
}

/// Which dead letter of which instance: a dead letter's id is its instance's store's, so a
/// scaled service's are told apart by the instance's place in the service's instance list
/// (`ENCOMPASS_<SERVICE>_URLS`, or the `--endpoint`s given), counted from 1. Written
/// `SERVICE/ID` when the service has one instance, `SERVICE/N:ID` when it has several.
public struct DeadLetterAddress: Sendable, Equatable, CustomStringConvertible {
    public var service: ServiceName
    /// 1-based place in the instance list; nil: the only (or first) instance.
    public var instance: Int?
    public var id: Int64

    public init(service: ServiceName, instance: Int? = nil, id: Int64) {
        self.service = service
        self.instance = instance
        self.id = id
    }

    public var description: String { "\(service.rawValue)/\(instance.map { "\($0):" } ?? "")\(id)" }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Reads `SERVICE/ID`, `SERVICE/N:ID`, or `ID` / `N:ID` with `service` (the `--service` option).
    public static func parse(_ text: String, service: String? = nil) throws(ParseError) -> DeadLetterAddress {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else { throw ParseError(description: "'\(text)' is not a dead letter: write SERVICE/ID or SERVICE/N:ID, as listed") }
        let name = parts.count == 2 ? parts[0] : service
        guard let name else { throw ParseError(description: "say which service holds '\(text)': SERVICE/ID (as listed) or --service") }
        guard let named = ServiceName(rawValue: name) else {
            throw ParseError(description: "unknown service '\(name)'; use \(ServiceName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let local = parts[parts.count - 1].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard local.count <= 2, let id = Int64(local[local.count - 1]) else {
            throw ParseError(description: "'\(text)' is not a dead letter id: write SERVICE/ID, or SERVICE/N:ID for instance N of a scaled service")
        }
        var instance: Int?
        if local.count == 2 {
            guard let n = Int(local[0]), n >= 1 else {
                throw ParseError(description: "'\(local[0])' in '\(text)' is not an instance number (1 for the first instance listed)")
            }
            instance = n
        }
        return DeadLetterAddress(service: named, instance: instance, id: id)
    }
}

/// Why a dead-letter operation was refused; each says what to do.
public enum DeadLetterOpError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(Int64)
    case discarded(Int64)
    case noTarget(origin: String)
    case invalidPayload(String)
    case actorRequired
    /// Asked to mark dead letter `id` replayed as a copy of another record.
    case otherRecord(Int64, String)
    /// Another copy of the record (this address) was discarded: the record is not replayed.
    case copyDiscarded(String)

    public var description: String {
        switch self {
        case .notFound(let id): "no dead letter \(id) in this service; list them with encompass dlq list"
        case .discarded(let id): "dead letter \(id) was discarded; it cannot be replayed"
        case .noTarget(let origin):
            "dead letter from \(origin) has no topic to replay to; re-submit the corrected input at its source"
        case .invalidPayload(let detail): "the payload to replay is not valid: \(detail); fix it and replay again"
        case .actorRequired: "say who you are (--by NAME): every replay and discard is recorded"
        case .otherRecord(let id, let record):
            "dead letter \(id) is not a copy of \(record); list the record's copies again with encompass dlq list"
        case .copyDiscarded(let address):
            "this record's copy \(address) was discarded, so the record is not replayed; see it with encompass dlq show \(address)"
        }
    }
}

/// The result of a replay request.
public struct ReplayOutcome: Codable, Sendable, Equatable {
    public var deadLetterId: Int64
    public var topic: String
    public var key: String?
    public var messageId: String?
    /// True when this dead letter had been replayed before: nothing was published again.
    public var alreadyReplayed: Bool
    public var replayedBy: String
    public var replayedAt: Date
}

/// Listing, replaying and discarding a service's dead letters (the SQLite `deadLetter` table,
/// which outlives the broker's retention).
///
/// Replay re-publishes the original bytes (or an edited payload, validated first) to the
/// original topic with the original key, through the outbox in the same transaction that marks
/// the dead letter `replayed` and records who did it. A second replay of the same dead letter
/// publishes nothing and answers with the first replay. Input that did not come from Kafka
/// (intake's HTTP items, spreadsheet rows, history lines) replays to `encompass.incidents.raw`
/// when its value (or the edit) is an incident.
public enum DeadLetterOps {
    public static let migration = StoreMigration("runtime-v2-dead-letter-actions") { db in
        try db.create(table: DeadLetterAction.databaseTableName) { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("deadLetterId", .integer).notNull().indexed().references(DeadLetter.databaseTableName)
            t.column("action", .text).notNull()
            t.column("actor", .text).notNull()
            t.column("at", .datetime).notNull()
            t.column("detail", .text)
            t.column("topic", .text)
            t.column("messageId", .text)
        }
    }

    public static func list(_ db: Database, filter: DeadLetterFilter) throws -> [DeadLetterView] {
        var request = DeadLetter.all()
        if let status = filter.status { request = request.filter(Column("status") == status) }
        if let errorClass = filter.errorClass { request = request.filter(Column("errorClass") == errorClass) }
        if let since = filter.since { request = request.filter(Column("deadLetteredAt") >= since) }
        if let until = filter.until { request = request.filter(Column("deadLetteredAt") < until) }
        if let number = filter.occurrenceNumber {
            request = request.filter(sql: "(originalKey = ? OR instr(CAST(originalValue AS TEXT), ?) > 0)", arguments: [number, number])
        }
        if let record = filter.record {
            request = request.filter(
                Column("originalTopic") == record.topic && Column("originalPartition") == record.partition
                    && Column("originalOffset") == record.offset)
        }
        return try request.order(Column("id").desc).limit(max(1, min(filter.limit, 10_000))).fetchAll(db).map { view($0, full: false, actions: nil) }
    }

    public static func show(_ db: Database, id: Int64) throws -> DeadLetterView {
        guard let row = try DeadLetter.fetchOne(db, key: id) else { throw DeadLetterOpError.notFound(id) }
        let actions = try DeadLetterAction.filter(Column("deadLetterId") == id).order(Column("id")).fetchAll(db)
        return view(row, full: true, actions: actions)
    }

    /// Replays dead letter `id` (see the type's documentation).
    public static func replay(_ db: Database, id: Int64, actor: String, editedValue: [UInt8]?, outbox: Outbox, now: Date) throws -> ReplayOutcome {
        guard !actor.trimmingCharacters(in: .whitespaces).isEmpty else { throw DeadLetterOpError.actorRequired }
        guard var row = try DeadLetter.fetchOne(db, key: id) else { throw DeadLetterOpError.notFound(id) }
        if row.status == "discarded" { throw DeadLetterOpError.discarded(id) }
        if editedValue == nil, DeadLetterPurge.isPurged(row) {
            throw DeadLetterOpError.invalidPayload(
                "dead letter \(id): its payload was purged after the retention period; replay it with an edited value or discard it")
        }
        if let earlier = try earlierReplay(db, row) { return earlier }
        let value = editedValue ?? Array(row.originalValue)
        let topic: String
        let messageId: String?
        // Came from Kafka, or was refused by Kafka on its way out of the outbox (partition -2);
        // rejected HTTP/file input is recorded with partition -1.
        if row.originalPartition >= 0 || row.originalPartition == DeadLetter.outboxPartition {
            topic = row.originalTopic
            if isEnvelope(value) {
                do { try PayloadSchemas.validate(value) } catch { throw DeadLetterOpError.invalidPayload(error.description) }
            } else if topic == Topics.incidentsRaw.name {
                try checkIncident(value)
            } else if editedValue != nil {
                throw DeadLetterOpError.invalidPayload("\(topic) carries Encompass envelopes; send one")
            }
            messageId = envelopeId(value) ?? row.originalMessageId
        } else {
            // HTTP items, spreadsheet rows, history lines: replay as a records-feed submission.
            guard editedValue != nil || (try? checkIncident(value)) != nil else { throw DeadLetterOpError.noTarget(origin: row.originalTopic) }
            try checkIncident(value)
            topic = Topics.incidentsRaw.name
            messageId = nil
        }
        var headers: [String: String] = ["encompass-replay-of": "\(row.service)/\(id)", "encompass-replayed-by": actor]
        if let messageId { headers[MessageHeader.messageId] = messageId }
        var message = OutboxMessage(
            messageId: messageId ?? MessageID.derived(from: "\(row.service)/dead-letter/\(id)", "replay"), topic: topic,
            key: row.originalKey, value: Data(value),
            headers: String(decoding: try JSONEncoder().encode(headers), as: UTF8.self), createdAt: now
        )
        // A replay as large as what Kafka refused would only be refused again: edit it first.
        try outbox.checkSize(topic: topic, key: row.originalKey, valueBytes: value.count, headersBytes: message.headers.utf8.count)
        try message.insert(db)
        row.status = "replayed"
        try row.update(db)
        var action = DeadLetterAction(
            deadLetterId: id, action: "replay", actor: actor, at: now,
            detail: editedValue == nil ? "original payload" : "edited payload", topic: topic, messageId: message.messageId)
        try action.insert(db)
        return ReplayOutcome(
            deadLetterId: id, topic: topic, key: row.originalKey, messageId: message.messageId,
            alreadyReplayed: false, replayedBy: actor, replayedAt: now)
    }

    /// Marks dead letter `id` replayed because another copy of its record, held by another
    /// instance, was published (`copy`): publishes nothing, records who and which copy.
    public static func markReplayed(_ db: Database, id: Int64, actor: String, as copy: DeadLetterReplayedCopy, now: Date) throws -> ReplayOutcome {
        guard !actor.trimmingCharacters(in: .whitespaces).isEmpty else { throw DeadLetterOpError.actorRequired }
        guard var row = try DeadLetter.fetchOne(db, key: id) else { throw DeadLetterOpError.notFound(id) }
        let record = DeadLetterRecordKey(topic: copy.originalTopic, partition: copy.originalPartition, offset: copy.originalOffset)
        guard record.partition >= 0, row.originalTopic == record.topic, row.originalPartition == record.partition, row.originalOffset == record.offset
        else { throw DeadLetterOpError.otherRecord(id, record.description) }
        if row.status == "discarded" { throw DeadLetterOpError.discarded(id) }
        if let earlier = try earlierReplay(db, row) { return earlier }
        row.status = "replayed"
        try row.update(db)
        var action = DeadLetterAction(
            deadLetterId: id, action: "replay", actor: actor, at: now, detail: "published once for the record, as \(copy.address)",
            topic: copy.topic, messageId: copy.messageId)
        try action.insert(db)
        return ReplayOutcome(
            deadLetterId: id, topic: copy.topic, key: row.originalKey, messageId: copy.messageId,
            alreadyReplayed: false, replayedBy: actor, replayedAt: now)
    }

    /// The first replay of `row` when it has been replayed: what a second replay answers.
    static func earlierReplay(_ db: Database, _ row: DeadLetter) throws -> ReplayOutcome? {
        guard row.status == "replayed", let id = row.id,
            let first = try DeadLetterAction.filter(Column("deadLetterId") == id && Column("action") == "replay").order(Column("id")).fetchOne(db)
        else { return nil }
        return ReplayOutcome(
            deadLetterId: id, topic: first.topic ?? row.originalTopic, key: row.originalKey, messageId: first.messageId,
            alreadyReplayed: true, replayedBy: first.actor, replayedAt: first.at)
    }

    public static func discard(_ db: Database, id: Int64, actor: String, reason: String, now: Date) throws -> DeadLetterView {
        guard !actor.trimmingCharacters(in: .whitespaces).isEmpty else { throw DeadLetterOpError.actorRequired }
        guard var row = try DeadLetter.fetchOne(db, key: id) else { throw DeadLetterOpError.notFound(id) }
        if row.status != "discarded" {
            row.status = "discarded"
            try row.update(db)
            var action = DeadLetterAction(deadLetterId: id, action: "discard", actor: actor, at: now, detail: reason)
            try action.insert(db)
        }
        return try show(db, id: id)
    }

    static func view(_ row: DeadLetter, full: Bool, actions: [DeadLetterAction]?) -> DeadLetterView {
        let text = String(validating: Array(row.originalValue), as: UTF8.self)
        return DeadLetterView(
            id: row.id ?? 0, service: row.service, originalTopic: row.originalTopic, originalPartition: row.originalPartition,
            originalOffset: row.originalOffset, originalKey: row.originalKey, originalMessageId: row.originalMessageId,
            errorClass: row.errorClass, errorMessage: row.errorMessage, attempts: row.attempts, firstFailedAt: row.firstFailedAt,
            deadLetteredAt: row.deadLetteredAt, status: row.status,
            originalValue: full ? text : nil,
            originalValueBase64: full && text == nil ? row.originalValue.base64EncodedString() : nil,
            actions: actions
        )
    }

    private struct Probe: Decodable {
        var schema: String?
        var id: String?
    }

    static func isEnvelope(_ value: [UInt8]) -> Bool {
        (try? JSONDecoder().decode(Probe.self, from: Data(value)))?.schema != nil
    }

    static func envelopeId(_ value: [UInt8]) -> String? {
        (try? JSONDecoder().decode(Probe.self, from: Data(value)))?.id
    }

    static func checkIncident(_ value: [UInt8]) throws {
        do {
            _ = try WireFormat.decoder().decode(Incident.self, from: Data(value))
        } catch {
            throw DeadLetterOpError.invalidPayload("not an incident: \(WireFormat.describe(error))")
        }
    }
}
