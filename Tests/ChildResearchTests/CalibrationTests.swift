import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService

@Suite("Review calibration: how often officers confirmed each score")
struct CalibrationTests {
    func proposal(_ n: Int, score: Double, status: String, decidedBy: String?) -> ReviewQueue.Proposal {
        ReviewQueue.Proposal(
            proposalId: "r-\(n)", forceCode: "43", occurrenceNumber: "4326000\(n)",
            child: IdentifiedChild(childId: "c-\(n)", givenName: "Child", familyName: "\(n)"),
            evidence: ResearchEvidence(score: score, explanation: [], sourceOccurrences: []),
            status: status, createdAt: day("2026-11-20"), decidedBy: decidedBy, version: 1)
    }

    @Test(
        "counts per band are exact: officers' confirmations and rejections at or above each score; pending and withdrawn left out, automatic ones apart"
    )
    func exactCounts() throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("calibration") + "/store.sqlite", migrations: ChildResearchService.migrations)
        let rows: [(Double, String, String?)] = [
            (0.52, "rejected", "PS 1"), (0.6, "rejected", "PS 1"), (0.61, "rejected", "PS 2"), (0.6, "confirmed", "PS 2"),
            (0.75, "confirmed", "PS 1"), (0.88, "rejected", "PS 3"), (0.9, "confirmed", "PS 3"), (0.95, "confirmed", "PS 1"),
            (0.99, "confirmed", "PS 1"), (0.97, "confirmed", "auto"), (0.45, "rejected", "PS 1"),
            (0.93, "pending", nil), (0.7, "withdrawn", "auto"),
        ]
        try store.pool.write { (db: Database) throws in
            for (n, row) in rows.enumerated() { try ReviewQueue.save(db, proposal(n, score: row.0, status: row.1, decidedBy: row.2)) }
        }
        let table = try store.pool.read { db in try ReviewQueue.calibration(db) }
        #expect(table.decided == 10 && table.confirmed == 5 && table.automatic == 1)
        let expected: [(Double, Int, Int)] = [(0.5, 9, 5), (0.6, 8, 5), (0.7, 5, 4), (0.8, 4, 3), (0.9, 3, 3), (0.95, 2, 2), (0.99, 1, 1)]
        #expect(
            table.bands.map { [$0.minimumScore, Double($0.decided), Double($0.confirmed)] } == expected.map { [$0.0, Double($0.1), Double($0.2)] })
        #expect(table.bands[1].shareConfirmed == 5.0 / 8.0)
        // Nothing decided: no share.
        #expect(ReviewCalibration(decisions: [], automatic: 0).bands.allSatisfy { $0.decided == 0 && $0.shareConfirmed == nil })
    }
}
