import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// School resolution's CSC requests and held answers on `encompass.school-resolution.changelog`
/// (`WorkChangelog`, keyed by child id like `encompass.children`): when an instance is lost for
/// good, the next owner of a child's partition restores the child's open requests and held
/// answers, and the exports, accept/decline and returned sheets find them there.
public enum CSCChangelog {
    static let open = ["open", "review"]

    public static func make(grace: Duration = .seconds(2), interval: Duration = .milliseconds(200)) -> WorkChangelog<SchoolRequestsChangelog> {
        WorkChangelog(
            topic: Topics.schoolRequestsChangelog.name, workTopic: Topics.children.name, service: .schoolResolution,
            tracked: [.init(table: SchoolRequestRow.databaseTableName, keyColumn: "childId")], interval: interval, grace: grace,
            snapshot: snapshot, restore: restore, release: release)
    }

    /// The child's open requests and held answers; nil when none (a request purged by retention
    /// has no child record left and is not open any more).
    public static func snapshot(_ childId: String, db: Database) throws -> SchoolRequestsChangelog? {
        let rows = try SchoolRequestRow.fetchAll(
            db,
            sql: """
                SELECT * FROM schoolRequest WHERE childId = ? AND status IN ('open', 'review') AND length(child) > 0 ORDER BY createdAt, requestId
                """, arguments: [childId])
        let requests = rows.compactMap { row -> SchoolRequestsChangelog.Request? in
            // A row whose child record cannot be read cannot be acted on here either; it stays
            // in this store (and in its dead letters' trail) rather than blocking the changelog.
            guard let child = try? row.childIdentified() else { return nil }
            return SchoolRequestsChangelog.Request(
                requestId: row.requestId, forceCode: row.forceCode, occurrenceNumber: row.occurrenceNumber, lpa: row.lpa, reason: row.reason,
                candidates: row.candidates, child: child, causationId: row.causationId, status: row.status, createdAt: row.createdAt,
                updatedAt: row.updatedAt, exportedAt: row.exportedAt, note: row.note, reviewSchool: row.heldSchool, reviewReason: row.reviewReason,
                redirectOf: row.redirectOf)
        }
        return requests.isEmpty ? nil : SchoolRequestsChangelog(childId: childId, requests: requests)
    }

    /// Inserts the requests this store does not hold (whatever their status here: one answered
    /// here stays answered); returns how many.
    public static func restore(_ childId: String, _ entry: SchoolRequestsChangelog, db: Database, now: Date) throws -> Int {
        var inserted = 0
        for request in entry.requests where try !SchoolRequestRow.exists(db, key: request.requestId) {
            try SchoolRequestRow(
                requestId: request.requestId, childId: childId, forceCode: request.forceCode, occurrenceNumber: request.occurrenceNumber,
                lpa: request.lpa, reason: request.reason, candidates: request.candidates, child: try WireFormat.data(request.child),
                causationId: request.causationId, status: request.status, createdAt: request.createdAt, updatedAt: request.updatedAt,
                exportedAt: request.exportedAt, resolvedURN: nil, note: request.note,
                reviewSchool: try request.reviewSchool.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) },
                reviewReason: request.reviewReason, redirectOf: request.redirectOf
            ).insert(db)
            inserted += 1
        }
        return inserted
    }

    /// Drops this store's open requests and held answers of the child: another instance owns
    /// the child now and holds them.
    public static func release(_ childId: String, db: Database, now: Date) throws {
        try db.execute(sql: "DELETE FROM schoolRequest WHERE childId = ? AND status IN ('open', 'review')", arguments: [childId])
    }
}
