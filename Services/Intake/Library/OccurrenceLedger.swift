import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// Intake's record of every occurrence: its latest version and every version received.
/// Decides whether a submission is new, an amendment or an exact replay.
public enum OccurrenceLedger {
    public enum Outcome: Equatable, Sendable {
        case new
        case amendment(revision: Int, changes: [String])
        case replay(revision: Int)
    }

    public static let migration = StoreMigration("intake-v1") { db in
        try db.create(table: OccurrenceRow.databaseTableName) { t in
            t.primaryKey("occurrenceNumber", .text)
            t.column("forceCode", .text).notNull()
            t.column("revision", .integer).notNull()
            t.column("contentHash", .text).notNull()
            t.column("incident", .blob).notNull()
            t.column("firstSeenAt", .datetime).notNull()
            t.column("updatedAt", .datetime).notNull()
        }
        try db.create(table: OccurrenceVersionRow.databaseTableName) { t in
            t.column("occurrenceNumber", .text).notNull()
            t.column("revision", .integer).notNull()
            t.column("contentHash", .text).notNull()
            t.column("incident", .blob).notNull()
            t.column("source", .text).notNull()
            t.column("receivedAt", .datetime).notNull()
            t.primaryKey(["occurrenceNumber", "revision"])
        }
    }

    /// Applies a validated incident in `db`'s transaction and, unless it is a replay, queues
    /// an `IncidentRecorded` on `encompass.incidents`.
    @discardableResult
    public static func apply(_ incident: Incident, source: String, causationId: String?, db: Database, outbox: Outbox, now: Date) throws -> Outcome {
        let canonical = try canonicalJSON(incident)
        let hash = StableHash.hex128(String(decoding: canonical, as: UTF8.self))
        let existing = try OccurrenceRow.fetchOne(db, where: "occurrenceNumber", equals: incident.occurrenceNumber)
        let outcome: Outcome
        let revision: Int
        if let existing {
            if existing.contentHash == hash { return .replay(revision: existing.revision) }
            revision = existing.revision + 1
            if existing.incident.isEmpty {
                // The earlier version's details were purged after the retention period.
                outcome = .amendment(revision: revision, changes: ["earlier version purged after the retention period"])
            } else {
                let previous = try WireFormat.value(Incident.self, from: existing.incident)
                outcome = .amendment(revision: revision, changes: changes(from: previous, to: incident))
            }
            var row = existing
            row.revision = revision
            row.contentHash = hash
            row.incident = canonical
            row.forceCode = incident.forceCode
            row.updatedAt = now
            try row.insertOrReplace(db)
        } else {
            revision = 1
            outcome = .new
            try OccurrenceRow(
                occurrenceNumber: incident.occurrenceNumber, forceCode: incident.forceCode, revision: 1,
                contentHash: hash, incident: canonical, firstSeenAt: now, updatedAt: now
            ).insertOrReplace(db)
        }
        try OccurrenceVersionRow(
            occurrenceNumber: incident.occurrenceNumber, revision: revision, contentHash: hash,
            incident: canonical, source: source, receivedAt: now
        ).insertOrReplace(db)
        let kind: IncidentRecorded.Kind
        let changeList: [String]
        switch outcome {
        case .amendment(_, let list):
            kind = .amendment
            changeList = list
        default:
            kind = .new
            changeList = []
        }
        try outbox.publish(
            IncidentRecorded(kind: kind, revision: revision, changes: changeList, source: source, incident: incident),
            to: Topics.incidents.name, key: incident.occurrenceNumber,
            id: MessageID.derived(from: incident.occurrenceNumber, "revision-\(revision)-\(hash)"),
            causationId: causationId, now: now)
        return outcome
    }

    /// Sorted-key JSON with dates in UTC: equal incidents give equal bytes.
    static func canonicalJSON(_ incident: Incident) throws -> Data {
        try WireFormat.data(incident)
    }

    /// What changed between two versions, in words the MASH can read.
    static func changes(from old: Incident, to new: Incident) -> [String] {
        var changes: [String] = []
        func key(_ child: RecordedChild) -> String {
            "\(child.givenName.lowercased())|\(child.familyName.lowercased())|\(child.dateOfBirth ?? "")"
        }
        let oldChildren = Set(old.children.map(key))
        let newChildren = Set(new.children.map(key))
        let added = newChildren.subtracting(oldChildren).count
        let removed = oldChildren.subtracting(newChildren).count
        if added > 0 { changes.append("children added: \(added)") }
        if removed > 0 { changes.append("children removed: \(removed)") }
        if added == 0 && removed == 0 && old.children != new.children { changes.append("children details changed") }
        if old.parties != new.parties { changes.append("parties changed") }
        if old.occurredAt != new.occurredAt { changes.append("occurredAt changed") }
        if old.reportedAt != new.reportedAt { changes.append("reportedAt changed") }
        if old.incidentAddress != new.incidentAddress { changes.append("incident address changed") }
        if old.riskLevel != new.riskLevel { changes.append("risk level changed: \(old.riskLevel.rawValue) → \(new.riskLevel.rawValue)") }
        if old.crime != new.crime { changes.append("crime flag changed") }
        if old.localPolicingArea != new.localPolicingArea { changes.append("local policing area changed") }
        if old.forceCode != new.forceCode { changes.append("force changed") }
        if old.circumstances != new.circumstances { changes.append("circumstances changed") }
        if old.safeguardingInformation != new.safeguardingInformation { changes.append("safeguarding information changed") }
        return changes
    }
}

public struct OccurrenceRow: Codable, FetchableRecord, ReplaceableRecord, Sendable {
    public static let databaseTableName = "occurrence"
    public var occurrenceNumber: String
    public var forceCode: String
    public var revision: Int
    public var contentHash: String
    public var incident: Data
    public var firstSeenAt: Date
    public var updatedAt: Date
}

public struct OccurrenceVersionRow: Codable, FetchableRecord, ReplaceableRecord, Sendable {
    public static let databaseTableName = "occurrenceVersion"
    public var occurrenceNumber: String
    public var revision: Int
    public var contentHash: String
    public var incident: Data
    public var source: String
    public var receivedAt: Date
}

extension OccurrenceRow {
    public static let replacementColumns = ["occurrenceNumber", "forceCode", "revision", "contentHash", "incident", "firstSeenAt", "updatedAt"]
    public var replacementValues: [(any DatabaseValueConvertible)?] {
        [occurrenceNumber, forceCode, revision, contentHash, incident, firstSeenAt.stored, updatedAt.stored]
    }
}

extension OccurrenceVersionRow {
    public static let replacementColumns = ["occurrenceNumber", "revision", "contentHash", "incident", "source", "receivedAt"]
    public var replacementValues: [(any DatabaseValueConvertible)?] {
        [occurrenceNumber, revision, contentHash, incident, source, receivedAt.stored]
    }
}
