import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// Proposed children waiting for a MASH officer, the incidents they belong to, and rejections.
///
/// Tables:
/// - `researchOccurrence`: the latest `IncidentRecorded` per occurrence this instance handled.
/// - `proposal`: one row per (occurrence, child): score, evidence, status
///   (`pending`, `confirmed`, `rejected`), who decided and when.
/// - `rejection`: (force, occurrence, child id) never to be proposed again.
public enum ReviewQueue {
    public static let migration = StoreMigration("child-research-review-v1") { db in
        try db.execute(sql: """
            CREATE TABLE researchOccurrence (
                forceCode TEXT NOT NULL, occurrenceNumber TEXT NOT NULL, revision INTEGER NOT NULL, recorded BLOB NOT NULL,
                PRIMARY KEY (forceCode, occurrenceNumber)) WITHOUT ROWID;
            CREATE TABLE proposal (
                proposalId TEXT PRIMARY KEY NOT NULL, forceCode TEXT NOT NULL, occurrenceNumber TEXT NOT NULL,
                childId TEXT NOT NULL, child BLOB NOT NULL, evidence BLOB NOT NULL, score REAL NOT NULL,
                status TEXT NOT NULL, createdAt DATETIME NOT NULL, decidedBy TEXT, decidedAt DATETIME, note TEXT);
            CREATE INDEX proposalOccurrence ON proposal(forceCode, occurrenceNumber);
            CREATE INDEX proposalStatus ON proposal(status, createdAt);
            CREATE TABLE rejection (
                forceCode TEXT NOT NULL, occurrenceNumber TEXT NOT NULL, childId TEXT NOT NULL, reviewer TEXT NOT NULL,
                decidedAt DATETIME NOT NULL, PRIMARY KEY (forceCode, occurrenceNumber, childId)) WITHOUT ROWID;
            """)
    }

    /// A proposal as the review API lists it.
    public struct Proposal: Codable, Sendable, Equatable {
        public var proposalId: String
        public var forceCode: String
        public var occurrenceNumber: String
        public var child: IdentifiedChild
        public var evidence: ResearchEvidence
        public var status: String
        public var createdAt: Date
        public var decidedBy: String?
        public var decidedAt: Date?
        public var note: String?
    }

    public static func proposalId(forceCode: String, occurrenceNumber: String, childId: String) -> String {
        "r-" + String(StableHash.hex128("\(forceCode)\u{1F}\(occurrenceNumber)\u{1F}\(childId)").prefix(16))
    }

    static func encode<T: Encodable>(_ value: T) throws -> Data { try WireFormat.encoder().encode(value) }
    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T { try WireFormat.decoder().decode(type, from: data) }

    static func proposal(_ row: Row) throws -> Proposal {
        Proposal(proposalId: row["proposalId"], forceCode: row["forceCode"], occurrenceNumber: row["occurrenceNumber"],
                 child: try decode(IdentifiedChild.self, row["child"]), evidence: try decode(ResearchEvidence.self, row["evidence"]),
                 status: row["status"], createdAt: row["createdAt"], decidedBy: row["decidedBy"], decidedAt: row["decidedAt"], note: row["note"])
    }

    public static func list(_ db: Database, status: String? = "pending", limit: Int = 500) throws -> [Proposal] {
        let rows: [Row]
        if let status {
            rows = try Row.fetchAll(db, sql: "SELECT * FROM proposal WHERE status = ? ORDER BY createdAt, score DESC LIMIT ?", arguments: [status, limit])
        } else {
            rows = try Row.fetchAll(db, sql: "SELECT * FROM proposal ORDER BY createdAt, score DESC LIMIT ?", arguments: [limit])
        }
        return try rows.map(proposal)
    }

    public static func forOccurrence(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> [Proposal] {
        try Row.fetchAll(db, sql: "SELECT * FROM proposal WHERE forceCode = ? AND occurrenceNumber = ? ORDER BY score DESC",
                         arguments: [forceCode, occurrenceNumber]).map(proposal)
    }

    public static func find(_ db: Database, proposalId: String) throws -> Proposal? {
        try Row.fetchOne(db, sql: "SELECT * FROM proposal WHERE proposalId = ?", arguments: [proposalId]).map(proposal)
    }

    public static func rejectedChildren(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> Set<String> {
        Set(try String.fetchAll(db, sql: "SELECT childId FROM rejection WHERE forceCode = ? AND occurrenceNumber = ?",
                                arguments: [forceCode, occurrenceNumber]))
    }

    static func recorded(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> IncidentRecorded? {
        guard let data = try Data.fetchOne(db, sql: "SELECT recorded FROM researchOccurrence WHERE forceCode = ? AND occurrenceNumber = ?",
                                           arguments: [forceCode, occurrenceNumber]) else { return nil }
        return try decode(IncidentRecorded.self, data)
    }

    static func saveRecorded(_ db: Database, _ recorded: IncidentRecorded) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO researchOccurrence (forceCode, occurrenceNumber, revision, recorded) VALUES (?, ?, ?, ?)",
                       arguments: [recorded.incident.forceCode, recorded.incident.occurrenceNumber, recorded.revision, try encode(recorded)])
    }

    /// Adds a candidate as pending (or auto-confirmed); an existing proposal keeps its decision
    /// and takes the fresh evidence. Returns the stored proposal.
    static func upsert(_ db: Database, candidate: Candidate, incident: Incident, status: String, decidedBy: String?, now: Date) throws -> Proposal {
        let id = proposalId(forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber, childId: candidate.child.childId)
        if var existing = try find(db, proposalId: id) {
            existing.child = candidate.child
            existing.evidence = ResearchEvidence(score: candidate.evidence.score, explanation: candidate.evidence.explanation,
                                                 sourceOccurrences: candidate.evidence.sourceOccurrences,
                                                 confirmedBy: existing.evidence.confirmedBy, confirmedAt: existing.evidence.confirmedAt)
            try db.execute(sql: "UPDATE proposal SET child = ?, evidence = ?, score = ? WHERE proposalId = ?",
                           arguments: [try encode(existing.child), try encode(existing.evidence), existing.evidence.score, id])
            return existing
        }
        var evidence = candidate.evidence
        if status == "confirmed" { evidence.confirmedBy = decidedBy; evidence.confirmedAt = now }
        try db.execute(sql: """
            INSERT INTO proposal (proposalId, forceCode, occurrenceNumber, childId, child, evidence, score, status, createdAt, decidedBy, decidedAt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [id, incident.forceCode, incident.occurrenceNumber, candidate.child.childId, try encode(candidate.child),
                             try encode(evidence), evidence.score, status, now, decidedBy, status == "pending" ? nil : now])
        return try find(db, proposalId: id)!
    }

    static func decide(_ db: Database, proposal: Proposal, decision: ReviewDecision) throws -> Proposal {
        var updated = proposal
        updated.status = decision.verdict == .confirm ? "confirmed" : "rejected"
        updated.decidedBy = decision.reviewer
        updated.decidedAt = decision.decidedAt
        updated.note = decision.note
        if decision.verdict == .confirm {
            updated.evidence.confirmedBy = decision.reviewer
            updated.evidence.confirmedAt = decision.decidedAt
        } else {
            try db.execute(sql: "INSERT OR REPLACE INTO rejection (forceCode, occurrenceNumber, childId, reviewer, decidedAt) VALUES (?, ?, ?, ?, ?)",
                           arguments: [proposal.forceCode, proposal.occurrenceNumber, proposal.child.childId, decision.reviewer, decision.decidedAt])
        }
        try db.execute(sql: "UPDATE proposal SET status = ?, decidedBy = ?, decidedAt = ?, note = ?, evidence = ? WHERE proposalId = ?",
                       arguments: [updated.status, updated.decidedBy, updated.decidedAt, updated.note, try encode(updated.evidence), proposal.proposalId])
        return updated
    }
}
