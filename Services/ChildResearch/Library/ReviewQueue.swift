import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// Proposed children waiting for a MASH officer, the incidents they belong to, and rejections.
///
/// Tables:
/// - `researchOccurrence`: the latest `IncidentRecorded` per occurrence this instance handled, in
///   the envelope it arrived in.
/// - `proposal`: one row per (occurrence, child): score, evidence, status
///   (`pending`, `confirmed`, `rejected`, `withdrawn`), who decided and when, and a version.
///   Every instance holds every proposal: the owner of the occurrence publishes each change on
///   `encompass.review.proposals` and every instance keeps the highest version (review-v2).
/// - `rejection`: (force, occurrence, child id) never to be proposed again.
public enum ReviewQueue {
    public static let migration = StoreMigration("child-research-review-v1") { db in
        try db.execute(
            sql: """
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

    /// review-v2: a version per proposal, so replicas keep the latest state.
    public static let versionMigration = StoreMigration("child-research-review-v2-replicated") { db in
        try db.execute(sql: "ALTER TABLE proposal ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
    }

    /// A proposal as the review API lists it: the same type as the replicated state, so the
    /// API, the topic and the console cannot drift.
    public typealias Proposal = ReviewProposalState

    public static func proposalId(forceCode: String, occurrenceNumber: String, childId: String) -> String {
        "r-" + String(StableHash.hex128("\(forceCode)\u{1F}\(occurrenceNumber)\u{1F}\(childId)").prefix(16))
    }

    static func encode<T: Encodable>(_ value: T) throws -> Data { try WireFormat.data(value) }
    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T { try WireFormat.value(type, from: data) }

    static func proposal(_ row: Row) throws -> Proposal {
        Proposal(
            proposalId: row["proposalId"], forceCode: row["forceCode"], occurrenceNumber: row["occurrenceNumber"],
            child: try decode(IdentifiedChild.self, row["child"]), evidence: try decode(ResearchEvidence.self, row["evidence"]),
            status: row["status"], createdAt: row["createdAt"], decidedBy: row["decidedBy"], decidedAt: row["decidedAt"], note: row["note"],
            version: row["version"])
    }

    public static func list(_ db: Database, status: String? = "pending", limit: Int = 500) throws -> [Proposal] {
        let rows: [Row]
        if let status {
            rows = try Row.fetchAll(
                db, sql: "SELECT * FROM proposal WHERE status = ? ORDER BY createdAt, score DESC LIMIT ?", arguments: [status, limit])
        } else {
            rows = try Row.fetchAll(db, sql: "SELECT * FROM proposal ORDER BY createdAt, score DESC LIMIT ?", arguments: [limit])
        }
        return try rows.map(proposal)
    }

    /// How often officers confirmed proposals, by score band, from every decided proposal this
    /// instance holds (every instance holds them all). Automatic confirmations are counted apart.
    public static func calibration(_ db: Database) throws -> ReviewCalibration {
        var decisions: [ReviewCalibration.Decision] = []
        var automatic = 0
        for row in try Row.fetchAll(db, sql: "SELECT score, status, decidedBy FROM proposal WHERE status IN ('confirmed', 'rejected')") {
            if (row["decidedBy"] as String?) == "auto" {
                automatic += 1
                continue
            }
            decisions.append(ReviewCalibration.Decision(score: row["score"], confirmed: (row["status"] as String) == "confirmed"))
        }
        return ReviewCalibration(decisions: decisions, automatic: automatic)
    }

    public static func forOccurrence(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> [Proposal] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM proposal WHERE forceCode = ? AND occurrenceNumber = ? ORDER BY score DESC"),
            arguments: [forceCode, occurrenceNumber]
        ).map(proposal)
    }

    public static func find(_ db: Database, proposalId: String) throws -> Proposal? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM proposal WHERE proposalId = ?"), arguments: [proposalId]).map(proposal)
    }

    public static func rejectedChildren(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> Set<String> {
        Set(
            try String.fetchAll(
                db.cachedStatement(sql: "SELECT childId FROM rejection WHERE forceCode = ? AND occurrenceNumber = ?"),
                arguments: [forceCode, occurrenceNumber]))
    }

    static func recorded(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> IncidentRecorded? {
        guard
            let data = try Data.fetchOne(
                db.cachedStatement(sql: "SELECT recorded FROM researchOccurrence WHERE forceCode = ? AND occurrenceNumber = ?"),
                arguments: [forceCode, occurrenceNumber])
        else { return nil }
        // The message as it arrived (an envelope, read back without checking it again), or, when
        // saved without one, the payload.
        if let envelope = try? WireFormat.value(Envelope<IncidentRecorded>.self, from: data) { return envelope.payload }
        return try decode(IncidentRecorded.self, data)
    }

    /// The revision of the incident held for an occurrence, without decoding it.
    static func recordedRevision(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> Int? {
        try Int.fetchOne(
            db.cachedStatement(sql: "SELECT revision FROM researchOccurrence WHERE forceCode = ? AND occurrenceNumber = ?"),
            arguments: [forceCode, occurrenceNumber])
    }

    /// Keeps the latest revision of an occurrence. `message` is the envelope it arrived in,
    /// stored as it is: encoding the incident again cost a fourteenth of child research's time.
    static func saveRecorded(_ db: Database, _ recorded: IncidentRecorded, message: [UInt8]? = nil) throws {
        let stored: Data = try message.map { Data($0) } ?? encode(recorded)
        try db.cachedStatement(
            sql: """
                INSERT INTO researchOccurrence (forceCode, occurrenceNumber, revision, recorded) VALUES (?, ?, ?, ?)
                ON CONFLICT (forceCode, occurrenceNumber) DO UPDATE SET revision = excluded.revision, recorded = excluded.recorded
                WHERE excluded.revision >= researchOccurrence.revision
                """
        ).execute(arguments: [recorded.incident.forceCode, recorded.incident.occurrenceNumber, recorded.revision, stored])
    }

    /// Adds a candidate as pending (or auto-confirmed); an existing proposal keeps its decision
    /// and takes the fresh evidence, and a withdrawn one applies again (pending, or confirmed
    /// when confident). Returns the stored proposal and whether it changed.
    static func upsert(_ db: Database, candidate: Candidate, incident: Incident, status: String, decidedBy: String?, now: Date) throws -> (
        Proposal, changed: Bool
    ) {
        let id = proposalId(forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber, childId: candidate.child.childId)
        if var existing = try find(db, proposalId: id) {
            let before = existing
            existing.child = candidate.child
            existing.evidence = ResearchEvidence(
                score: candidate.evidence.score, explanation: candidate.evidence.explanation,
                sourceOccurrences: candidate.evidence.sourceOccurrences,
                confirmedBy: existing.evidence.confirmedBy, confirmedAt: existing.evidence.confirmedAt)
            if existing.status == "withdrawn" {
                existing.status = status
                existing.decidedBy = decidedBy
                existing.decidedAt = status == "pending" ? nil : now
                existing.note = nil
                if status == "confirmed" {
                    existing.evidence.confirmedBy = decidedBy
                    existing.evidence.confirmedAt = now
                }
            }
            guard existing != before else { return (existing, false) }
            existing.version += 1
            try save(db, existing)
            return (existing, true)
        }
        var evidence = candidate.evidence
        if status == "confirmed" {
            evidence.confirmedBy = decidedBy
            evidence.confirmedAt = now
        }
        let proposal = Proposal(
            proposalId: id, forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber, child: candidate.child,
            evidence: evidence, status: status, createdAt: now, decidedBy: decidedBy, decidedAt: status == "pending" ? nil : now,
            note: nil, version: 1)
        try save(db, proposal)
        return (proposal, true)
    }

    /// Writes a proposal's whole state (insert or replace).
    static func save(_ db: Database, _ p: Proposal) throws {
        try db.cachedStatement(
            sql: """
                INSERT OR REPLACE INTO proposal (proposalId, forceCode, occurrenceNumber, childId, child, evidence, score, status, createdAt,
                    decidedBy, decidedAt, note, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            p.proposalId, p.forceCode, p.occurrenceNumber, p.child.childId, try encode(p.child), try encode(p.evidence),
            p.evidence.score, p.status, p.createdAt, p.decidedBy, p.decidedAt, p.note, p.version,
        ])
    }

    /// Withdraws a pending proposal that no longer applies (the amended incident lists its
    /// children, or research on the amended adults and address no longer finds the child).
    static func withdraw(_ db: Database, proposal: Proposal, reason: String, now: Date) throws -> Proposal {
        var updated = proposal
        updated.status = "withdrawn"
        updated.decidedBy = "auto"
        updated.decidedAt = now
        updated.note = reason
        updated.version = proposal.version + 1
        try save(db, updated)
        return updated
    }

    /// Publishes a proposal's state on `encompass.review.proposals` for every instance, with an
    /// id derived from the message that caused the change (a re-run is dropped downstream).
    static func publish(_ proposal: Proposal, outbox: Outbox, causationId: String, now: Date) throws {
        try outbox.publish(
            proposal, to: Topics.reviewProposals.name, key: proposal.proposalId,
            id: MessageID.derived(from: causationId, "proposal/\(proposal.proposalId)/v\(proposal.version)"), causationId: causationId, now: now)
    }

    /// A replica applies another instance's proposal state: kept when newer than what it holds.
    /// A rejection is remembered here too, so an instance that takes the occurrence over after a
    /// rebalance never proposes the child again. Returns whether it was applied.
    @discardableResult
    static func applyReplica(_ db: Database, _ state: ReviewProposalState) throws -> Bool {
        if let held = try Int.fetchOne(db.cachedStatement(sql: "SELECT version FROM proposal WHERE proposalId = ?"), arguments: [state.proposalId]),
            held >= state.version
        {
            return false
        }
        try save(db, state)
        if state.status == "rejected" {
            try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO rejection (forceCode, occurrenceNumber, childId, reviewer, decidedAt) VALUES (?, ?, ?, ?, ?)"
            )
            .execute(arguments: [
                state.forceCode, state.occurrenceNumber, state.child.childId, state.decidedBy ?? "", state.decidedAt ?? state.createdAt,
            ])
        }
        return true
    }

    static func decide(_ db: Database, proposal: Proposal, decision: ReviewDecision) throws -> Proposal {
        var updated = proposal
        updated.status = decision.verdict == .confirm ? "confirmed" : "rejected"
        updated.decidedBy = decision.reviewer
        updated.decidedAt = decision.decidedAt
        updated.note = decision.note
        updated.version = proposal.version + 1
        if decision.verdict == .confirm {
            updated.evidence.confirmedBy = decision.reviewer
            updated.evidence.confirmedAt = decision.decidedAt
        } else {
            try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO rejection (forceCode, occurrenceNumber, childId, reviewer, decidedAt) VALUES (?, ?, ?, ?, ?)"
            )
            .execute(arguments: [proposal.forceCode, proposal.occurrenceNumber, proposal.child.childId, decision.reviewer, decision.decidedAt])
        }
        try save(db, updated)
        return updated
    }
}
