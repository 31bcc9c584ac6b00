import EncompassModels
import Foundation
import GRDB
import Hummingbird
import ServiceRuntime

/// POST /v1/spreadsheets?name=FILE: the DA desk's daily spreadsheet (CSV or XLSX) as the body.
///
/// Rows become incidents (rows sharing an occurrence number make one incident). Every row that
/// cannot be used is answered with its row number and reasons and kept as a dead letter (the
/// row's cells as JSON); a child row with a bad value is set aside without holding back the
/// rest of its incident, which is amended when the corrected row arrives. A file that cannot
/// be read at all is kept whole as a dead letter and answered 422.
extension IncidentAPI {
    struct SpreadsheetAnswer: Codable {
        struct Accepted: Codable {
            var occurrenceNumber: String
            var rows: [Int]
            var messageId: String
            /// Adults' fields set aside (the incident was accepted without them).
            var warnings: [FieldError]?
        }
        struct Rejected: Codable { var row: Int; var errors: [FieldError] }
        var file: String
        var rows: Int
        var accepted: [Accepted]
        var rejectedRows: [Rejected]
        var notices: [String]
        var error: String?
    }

    func handleSpreadsheet(_ request: Request) async throws -> Response {
        if let refusal = refusal(request) { return refusal }
        guard let body = await body(request) else { return Self.tooLarge }
        let name = request.uri.queryParameters.get("name") ?? "upload"
        let environment = self.environment
        let now = environment.clock.now()
        let fileKey = "spreadsheet:\(name):\(StableHash.hex128(String(decoding: body, as: UTF8.self)).prefix(12))"
        let sheet: Sheet
        do {
            sheet = try SpreadsheetReader.read(Data(body))
            try IncidentSheet.checkColumns(sheet)
        } catch {
            try await environment.store.pool.write { db in
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .intake, origin: fileKey, place: 0, key: name, value: body,
                    errorClass: "spreadsheet.unreadable", message: error.description, now: now,
                    outbox: environment.outbox(db, producer: "intake-spreadsheet"))
            }
            environment.relay.wake()
            return HTTPEndpoint.json(.unprocessableContent, SpreadsheetAnswer(
                file: name, rows: 0, accepted: [], rejectedRows: [], notices: [], error: error.description))
        }
        var notices = sheet.notices
        let unknown = IncidentSheet.unknownColumns(sheet)
        if !unknown.isEmpty { notices.append("ignored unknown column(s): \(unknown.joined(separator: ", "))") }

        let (groups, sheetProblems) = IncidentSheet.incidents(from: sheet)
        var problems = sheetProblems
        var accepted: [(incident: Incident, rows: [Int], warnings: [FieldError])] = []
        let cellsByRow = Dictionary(sheet.rows.map { ($0.number, $0.cells) }, uniquingKeysWith: { first, _ in first })
        for group in groups {
            var incident = validator.forces.prepare(group.incident)
            var childRows = group.childRows
            var review = validator.review(incident, now: now)
            // Child-level errors set that child's row aside; the incident goes on without it.
            // An adult's bad field is set aside with a warning (the review's incident lacks it).
            let badChildren = Set(review.errors.compactMap { Self.childIndex($0.field) })
            if !badChildren.isEmpty {
                for index in badChildren.sorted() where childRows.indices.contains(index) {
                    let row = childRows[index]
                    let childErrors = review.errors.filter { Self.childIndex($0.field) == index }
                    problems.append(IncidentSheet.RowProblem(row: row, cells: cellsByRow[row] ?? [:], errors: childErrors))
                }
                let keep = incident.children.indices.filter { !badChildren.contains($0) }
                incident.children = keep.map { incident.children[$0] }
                childRows = keep.map { childRows[$0] }
                review = validator.review(incident, now: now)
            }
            if review.errors.isEmpty {
                accepted.append((review.incident, group.rows, review.warnings))
            } else {
                for row in group.rows where !problems.contains(where: { $0.row == row }) {
                    problems.append(IncidentSheet.RowProblem(row: row, cells: cellsByRow[row] ?? [:], errors: review.errors))
                }
            }
        }
        problems.sort { $0.row < $1.row }
        let acceptedItems = accepted
        let problemItems = problems
        let allNotices = notices
        let answer = try await environment.store.pool.write { db -> SpreadsheetAnswer in
            let outbox = environment.outbox(db, producer: "intake-spreadsheet:\(name)")
            var answer = SpreadsheetAnswer(file: name, rows: sheet.rows.count, accepted: [], rejectedRows: [], notices: allNotices)
            for (incident, rows, warnings) in acceptedItems {
                let id = MessageID.fresh()
                try outbox.publish(incident, to: Topics.incidentsRaw.name, key: incident.occurrenceNumber, id: id, now: now)
                answer.accepted.append(.init(occurrenceNumber: incident.occurrenceNumber, rows: rows, messageId: id,
                                             warnings: warnings.isEmpty ? nil : warnings))
            }
            for problem in problemItems {
                let value = try JSONSerialization.data(withJSONObject: ["file": name, "row": problem.row, "cells": problem.cells], options: [.sortedKeys])
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .intake, origin: fileKey, place: Int64(problem.row), key: problem.cells["occurrence_number"],
                    value: Array(value), errorClass: "spreadsheet.row",
                    message: "row \(problem.row): " + problem.errors.map(\.description).joined(separator: "; "), now: now, outbox: outbox)
                answer.rejectedRows.append(.init(row: problem.row, errors: problem.errors))
            }
            return answer
        }
        environment.relay.wake()
        for item in answer.accepted {
            reportSetAside(item.warnings ?? [], occurrenceNumber: item.occurrenceNumber, source: fileKey)
        }
        return HTTPEndpoint.json(answer.accepted.isEmpty && !answer.rejectedRows.isEmpty ? .unprocessableContent : .accepted, answer)
    }

    /// `children[3].dateOfBirth` → 3.
    static func childIndex(_ field: String) -> Int? {
        guard field.hasPrefix("children["), let close = field.firstIndex(of: "]") else { return nil }
        return Int(field[field.index(field.startIndex, offsetBy: 9)..<close])
    }
}
