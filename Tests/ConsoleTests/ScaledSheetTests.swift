@testable import ConsoleService
import EncompassModels
import Foundation
import SchoolResolutionService
import Testing

@Suite("CSC sheet of a scaled school resolution: one export of every instance, each returned row answered once")
struct ScaledSheetTests {
    typealias Row = CSCImportAnswer.Row

    func answer(_ rows: [Row]) -> CSCImportAnswer {
        CSCImportAnswer(file: "returned.csv", rows: 4, answers: rows, notices: ["a note"], error: nil)
    }

    @Test("the export merges every instance's rows into one list ordered by incident date, occurrence and request id; other columns are refused")
    func mergeRows() throws {
        let header = CSCRequests.header
        func row(_ id: String, date: String, occurrence: String) -> [String] {
            header.map { column in
                switch column {
                case "request_id": id
                case "incident_date": date
                case "occurrence_number": occurrence
                default: ""
                }
            }
        }
        let one = CSCRequestRows(header: header, rows: [row("n-b", date: "2026-11-23", occurrence: "43260000002"),
                                                        row("n-d", date: "2026-11-24", occurrence: "43260000001")])
        let two = CSCRequestRows(header: header, rows: [row("n-a", date: "2026-11-23", occurrence: "43260000002"),
                                                        row("n-c", date: "2026-11-23", occurrence: "43260000003")])
        let merged = try CSCRequestRows.merge([one, two]).get()
        let id = try #require(header.firstIndex(of: "request_id"))
        #expect(merged.rows.map { $0[id] } == ["n-a", "n-b", "n-c", "n-d"])
        // The same request listed by two instances (a store copied by mistake) is written once.
        #expect(try CSCRequestRows.merge([one, one]).get().rows.count == 2)
        #expect(try CSCRequestRows.merge([]).get().rows.isEmpty)
        let older = CSCRequestRows(header: Array(header.dropLast()), rows: [])
        guard case .failure(let problem) = CSCRequestRows.merge([one, older]) else { Issue.record("different columns were merged"); return }
        #expect(problem.description.contains("same version"))
    }

    @Test("import: each row takes the answer of the instance that held it; a row no instance held takes the rejection of the unheld pass")
    func combineAnswers() {
        let first = answer([
            Row(outcome: "notice", row: 2, requestId: "n-1", urn: "110111", reasons: ["verified"]),
            Row(outcome: "not-held", row: 3, requestId: "n-2", reasons: ["not held by this instance"]),
            Row(outcome: "not-held", row: 4, requestId: "n-x", reasons: ["not held by this instance"]),
            Row(outcome: "not-held", row: 5, requestId: nil, reasons: ["not held by this instance"]),
        ])
        let second = answer([
            Row(outcome: "not-held", row: 2, requestId: "n-1", reasons: ["not held by this instance"]),
            Row(outcome: "review", row: 3, requestId: "n-2", urn: "110001", reasons: ["age"]),
            Row(outcome: "not-held", row: 4, requestId: "n-x", reasons: ["not held by this instance"]),
            Row(outcome: "not-held", row: 5, requestId: nil, reasons: ["not held by this instance"]),
        ])
        let unheld = CSCImportAnswer.unheldRows([first, second])
        #expect(unheld == [4, 5])
        let rejections = answer([
            Row(outcome: "rejected", row: 4, requestId: "n-x", reasons: ["request n-x is held by no school resolution instance: check request_id against the exported sheet"]),
            Row(outcome: "rejected", row: 5, requestId: nil, reasons: ["request_id is empty"]),
        ])
        let combined = CSCImportAnswer.combine([first, second], unheld: unheld, rejections: .ok(rejections))
        #expect(combined.answers.map(\.row) == [2, 3, 4, 5])
        #expect(combined.answers.map(\.outcome) == ["notice", "review", "rejected", "rejected"])
        #expect(combined.answers[1].urn == "110001")
        #expect(combined.answers[3].reasons == ["request_id is empty"])
        #expect(combined.rows == 4 && combined.notices == ["a note"] && combined.file == "returned.csv")
        // The unheld pass could not be made: those rows are still answered, rejected, saying why.
        let failed = CSCImportAnswer.combine([first, second], unheld: unheld, rejections: .unreachable("school-resolution is unreachable at http://x: refused"))
        #expect(failed.answers.map(\.outcome) == ["notice", "review", "rejected", "rejected"])
        #expect(failed.answers[2].reasons.first?.contains("held by no school resolution instance; it could not be kept as a dead letter: school-resolution is unreachable") == true)
        #expect(failed.answers[2].requestId == "n-x")
        // Every row held somewhere: no unheld pass.
        #expect(CSCImportAnswer.unheldRows([first, answer([Row(outcome: "open", row: 3, requestId: "n-2", reasons: []), Row(outcome: "open", row: 4, requestId: "n-x", reasons: []),
                                                           Row(outcome: "rejected", row: 5, requestId: nil, reasons: ["x"])])]).isEmpty)
    }
}
