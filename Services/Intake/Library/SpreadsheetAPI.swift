import EncompassModels
import Foundation
import GRDB
import Hummingbird
import ServiceRuntime
import Spreadsheets

/// Limits of `POST /v1/spreadsheets`, public for the CLI's upload benchmark.
public enum SpreadsheetUpload {
    /// Rows one upload may have (see `IncidentAPI.maximumUploadRows`).
    public static let maximumRows = 20_000
}

/// POST /v1/spreadsheets?name=FILE: the DA desk's daily spreadsheet (CSV or XLSX) as the body.
///
/// Rows become incidents (rows sharing an occurrence number make one incident). Every row that
/// cannot be used is answered with its row number and reasons (the first
/// `maximumRejectedRowsAnswered`, then counts by field), and an upload with rejected rows is
/// kept as one dead letter: the file as sent, with a summary of its row errors. A child row
/// with a bad value is set aside without holding back the rest of its incident, which is
/// amended when the corrected row arrives. A file that cannot be read at all, or has more than
/// `maximumUploadRows` rows, is kept whole as a dead letter and answered 422.
public struct SpreadsheetAnswer: Codable, Sendable, Equatable {
    public struct Accepted: Codable, Sendable, Equatable {
        public var occurrenceNumber: String
        public var rows: [Int]
        public var messageId: String
        /// Adults' fields set aside (the incident was accepted without them).
        public var warnings: [FieldError]?
    }
    public struct Rejected: Codable, Sendable, Equatable {
        public var row: Int
        public var errors: [FieldError]
    }
    public var file: String
    public var rows: Int
    public var accepted: [Accepted]
    /// The first `IncidentAPI.maximumRejectedRowsAnswered` rejected rows.
    public var rejectedRows: [Rejected]
    /// All rejected rows, and their problems counted by field (`children[].dateOfBirth`).
    public var rejectedRowCount: Int = 0
    public var rejectedByField: [String: Int] = [:]
    public var notices: [String]
    /// Why the whole file was refused (422, kept as a dead letter).
    public var error: String?
}

extension IncidentAPI {
    /// Rows one upload may have: the DA desk's day is a few hundred. A larger file is refused
    /// as soon as the reader meets row `maximumUploadRows + 1`, so a huge file costs little.
    static let maximumUploadRows = SpreadsheetUpload.maximumRows
    /// Rejected rows listed in the answer with their reasons; the rest are counted.
    static let maximumRejectedRowsAnswered = 1_000
    /// Rejected rows quoted in the upload's dead letter.
    static let maximumRejectedRowsQuoted = 20

    /// Where an upload is spooled while it arrives: beside the store, which keeps the file if
    /// it is refused.
    var spoolDirectory: URL {
        URL(fileURLWithPath: environment.store.path).deletingLastPathComponent()
    }

    func handleSpreadsheet(_ request: Request) async throws -> Response {
        let upload: SpreadsheetReceiver.Received
        do {
            upload = try await SpreadsheetReceiver.receive(
                request.body, into: spoolDirectory, maximumBytes: Self.maximumBody,
                maximumRows: Self.maximumUploadRows)
        } catch is SpreadsheetReceiver.TooLarge {
            return Self.tooLarge
        }
        defer { upload.discard() }
        let name = request.uri.queryParameters.get("name") ?? "upload"
        let environment = self.environment
        let now = environment.clock.now()
        let fileKey = "spreadsheet:\(name):\(upload.hash.prefix(12))"
        let file = upload.file
        let sheet: Sheet
        do {
            sheet = try upload.sheet.get()
            try IncidentSheet.checkColumns(sheet)
        } catch {
            try await environment.store.pool.write { db in
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .intake, origin: fileKey, place: 0, key: name, valueFile: file,
                    errorClass: "spreadsheet.unreadable", message: error.description, now: now,
                    outbox: environment.outbox(db, producer: "intake-spreadsheet"))
            }
            environment.relay.wake()
            return HTTPEndpoint.json(
                .unprocessableContent,
                SpreadsheetAnswer(
                    file: name, rows: 0, accepted: [], rejectedRows: [], notices: [], error: error.description))
        }
        var notices = sheet.notices
        let unknown = IncidentSheet.unknownColumns(sheet)
        if !unknown.isEmpty { notices.append("ignored unknown column(s): \(unknown.joined(separator: ", "))") }

        let (groups, sheetProblems) = IncidentSheet.incidents(from: sheet)
        var problems = sheetProblems
        var accepted: [(incident: Incident, submitted: Incident, rows: [Int], warnings: [FieldError])] = []
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
                accepted.append((review.incident, incident, group.rows, review.warnings))
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
            for (incident, submitted, rows, warnings) in acceptedItems {
                let id = MessageID.fresh()
                try outbox.publish(incident, to: Topics.incidentsRaw.name, key: incident.occurrenceNumber, id: id, now: now)
                answer.accepted.append(
                    .init(
                        occurrenceNumber: incident.occurrenceNumber, rows: rows, messageId: id,
                        warnings: warnings.isEmpty ? nil : warnings))
                if !warnings.isEmpty {
                    // The incident as the rows gave it, set-aside fields included (row numbers
                    // start at 2, after the header: 0 and 1 are the file's own dead letters).
                    try DeadLetterWriter.writeRejectedInput(
                        db: db, service: .intake, origin: fileKey, place: Int64(rows.first ?? 2), key: incident.occurrenceNumber,
                        value: Array(try WireFormat.data(submitted)), errorClass: IntakeService.setAsideClass,
                        message: "rows \(rows.map(String.init).joined(separator: ", ")): " + IntakeService.setAsideMessage(warnings), now: now,
                        outbox: outbox)
                }
            }
            let summary = Self.summarise(problemItems)
            answer.rejectedRows = problemItems.prefix(Self.maximumRejectedRowsAnswered).map { .init(row: $0.row, errors: $0.errors) }
            answer.rejectedRowCount = problemItems.count
            answer.rejectedByField = summary.byField
            if !problemItems.isEmpty {
                // One dead letter for the upload, whatever its number of bad rows: the file as
                // sent (nothing is lost: fix the rows and send it again; accepted incidents sent
                // again unchanged are dropped as replays) and what was wrong with it.
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .intake, origin: fileKey, place: 1, key: name, valueFile: file, errorClass: "spreadsheet.rows",
                    message: "\(name): \(problemItems.count) of \(sheet.rows.count) rows rejected; " + summary.text, now: now, outbox: outbox)
            }
            return answer
        }
        environment.relay.wake()
        for item in answer.accepted {
            reportSetAside(item.warnings ?? [], occurrenceNumber: item.occurrenceNumber, source: fileKey)
        }
        return HTTPEndpoint.json(answer.accepted.isEmpty && !answer.rejectedRows.isEmpty ? .unprocessableContent : .accepted, answer)
    }

    /// Rejected rows counted by field (indices left out: `children[].dateOfBirth`), and as text
    /// with the first `maximumRejectedRowsQuoted` rows and their reasons.
    static func summarise(_ problems: [IncidentSheet.RowProblem]) -> (byField: [String: Int], text: String) {
        var byField: [String: Int] = [:]
        for problem in problems {
            for field in Set(problem.errors.map { $0.field.replacing(/\[[0-9]+\]/, with: "[]") }) { byField[field, default: 0] += 1 }
        }
        let counts = byField.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        let quoted = problems.prefix(maximumRejectedRowsQuoted).map { "row \($0.row): " + $0.errors.map(\.description).joined(separator: "; ") }
        let more = problems.count > maximumRejectedRowsQuoted ? " (and \(problems.count - maximumRejectedRowsQuoted) more rows)" : ""
        return (
            byField,
            "rows with a problem, by field: \(counts.joined(separator: ", ")); " + quoted.joined(separator: " | ") + more
                + ". The file is kept whole in this dead letter: fix the rows and send it again"
        )
    }

    /// `children[3].dateOfBirth` → 3.
    static func childIndex(_ field: String) -> Int? {
        guard field.hasPrefix("children["), let close = field.firstIndex(of: "]") else { return nil }
        return Int(field[field.index(field.startIndex, offsetBy: 9)..<close])
    }
}
