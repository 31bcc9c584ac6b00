import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// What child research purges (docs/SECURITY.md).
///
/// The history index (`researchIncident`, `researchPerson`, `researchKey`) is the reference
/// data research needs: earlier incidents in which a child appeared. It is kept for the
/// force's look-back window (`lookbackYears` in the protocol's research section, 10 years
/// for both shipped forces) — the research never looks further back, so an incident older
/// than that is deleted with its people and their blocking keys. Within the window the index
/// stays whole, whatever `ENCOMPASS_RETENTION_DAYS` says: it is what finds a child that an
/// officer did not record.
/// The learned match model (`researchMatchModel`) holds the index's name frequencies; it is
/// learned again once the index has shrunk (`MatchModelStore.isDue`), so purged people's names
/// leave it too.
///
/// Live research state follows the general retention period: proposals (the child and the
/// evidence shown to the MASH reviewer) and each researched occurrence's recorded incident
/// (`researchOccurrence`). The reviewers' rejections (`rejection`: occurrence, child id, who,
/// when) stay as the audit trail, as do the decisions on `encompass.review.decisions`.
public enum ResearchRetention {
    public static func rules(_ settings: ChildResearchService.Settings) -> [PurgeRule] {
        [occurrences, proposals, history(settings)]
    }

    /// Proposals made before the retention period. Each also gets a tombstone on the compacted
    /// `encompass.review.proposals`, whose last record of the proposal still carries the child:
    /// compaction drops it there, and every replica that reads the tombstone deletes its copy.
    static let proposals = PurgeRule.forgetting(
        "research.proposal", select: "SELECT proposalId FROM proposal WHERE createdAt < :cutoff LIMIT :limit",
        tombstonesOn: Topics.reviewProposals.name, producer: .childResearch, forget: forgetProposal)

    /// Deletes a proposal (the reviewers' rejections stay): the purge's own step, and a
    /// replica's answer to the tombstone of the proposal.
    static func forgetProposal(_ proposalId: String, db: Database) throws {
        try db.execute(sql: "DELETE FROM proposal WHERE proposalId = ?", arguments: [proposalId])
    }

    /// The recorded incident of occurrences that happened before the retention period.
    static let occurrences = PurgeRule(name: "research.occurrence") { db, cutoff, _, limit in
        try db.execute(
            sql: """
                DELETE FROM researchOccurrence WHERE (forceCode, occurrenceNumber) IN (
                    SELECT o.forceCode, o.occurrenceNumber FROM researchOccurrence o
                    JOIN researchIncident i ON i.forceCode = o.forceCode AND i.occurrenceNumber = o.occurrenceNumber
                    WHERE i.occurredDay < ? LIMIT ?)
                """, arguments: [day(cutoff), limit])
        return db.changesCount
    }

    /// Index entries older than each force's look-back window.
    static func history(_ settings: ChildResearchService.Settings) -> PurgeRule {
        // Persons were deleted since the last sweep of their blocking keys.
        let keysToSweep = Locked(false)
        return PurgeRule(name: "research.history", cutoff: { now, _ in now }) { db, _, now, limit in
            var purged = 0
            let forces = try String.fetchAll(db, sql: "SELECT DISTINCT forceCode FROM researchIncident")
            for force in forces where purged < limit {
                let years = settings.research(forForce: force).lookbackYears
                let oldest = day(Calendar(identifier: .gregorian).date(byAdding: .year, value: -years, to: now) ?? now)
                let occurrences = try String.fetchAll(
                    db,
                    sql: """
                        SELECT occurrenceNumber FROM researchIncident WHERE forceCode = ? AND occurredDay < ? LIMIT ?
                        """, arguments: [force, oldest, limit - purged])
                for occurrence in occurrences {
                    try db.execute(sql: "DELETE FROM researchPerson WHERE forceCode = ? AND occurrenceNumber = ?", arguments: [force, occurrence])
                    try db.execute(sql: "DELETE FROM researchIncident WHERE forceCode = ? AND occurrenceNumber = ?", arguments: [force, occurrence])
                    try db.execute(
                        sql: "DELETE FROM researchOccurrence WHERE forceCode = ? AND occurrenceNumber = ?", arguments: [force, occurrence])
                }
                purged += occurrences.count
            }
            if purged > 0 { keysToSweep.withLock { $0 = true } }
            // The last batch of a run: drop the blocking keys of the deleted people (one pass over
            // the key table, only after something was deleted).
            if purged < limit, keysToSweep.withLock({ $0 }) {
                try db.execute(sql: "DELETE FROM researchKey WHERE person NOT IN (SELECT id FROM researchPerson)")
                keysToSweep.withLock { $0 = false }
            }
            return purged
        }
    }

    /// `YYYY-MM-DD` (Europe/London), as the index stores days.
    static func day(_ date: Date) -> String {
        let day = CalendarDate(date)
        return String(format: "%04d-%02d-%02d", day.year, day.month, day.day)
    }
}
