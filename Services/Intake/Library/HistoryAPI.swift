import EncompassModels
import Foundation
import GRDB
import Hummingbird
import ServiceRuntime
import Spreadsheets

/// POST /v1/history?name=FILE&first=N: a chunk of a history file, JSON Lines (one incident per
/// line) or CSV (the daily spreadsheet's columns, header included in every chunk). `first`
/// is the file line (JSONL) or row (CSV) number of the chunk's first record, so answers and
/// dead letters name places in the whole file. Valid incidents go to `encompass.history`;
/// every invalid one is answered with its place and reasons and kept as a dead letter.
/// The answer to `POST /v1/history`: records read and accepted, each rejected one by its place
/// (line or row in the whole file) with a reason per field.
public struct HistoryAnswer: Codable, Sendable, Equatable {
    public struct Rejected: Codable, Sendable, Equatable {
        public var place: Int
        public var errors: [FieldError]
    }
    public var file: String
    public var records: Int
    public var accepted: Int
    public var rejected: [Rejected]
    public var notices: [String]
    /// Why the whole chunk was refused.
    public var error: String?
}

extension IncidentAPI {
    func handleHistory(_ request: Request) async throws -> Response {
        guard let body = await body(request) else { return Self.tooLarge }
        let name = request.uri.queryParameters.get("name") ?? "history"
        let first = request.uri.queryParameters.get("first").flatMap(Int.init) ?? 1
        let now = environment.clock.now()
        let fileKey = "history:\(name)"
        let parsed: HistoryFile
        do {
            parsed = try HistoryFile.parse(body, first: first)
        } catch {
            return HTTPEndpoint.json(
                .unprocessableContent, HistoryAnswer(file: name, records: 0, accepted: 0, rejected: [], notices: [], error: error.description))
        }
        let isJSONLines = parsed.isJSONLines
        let incidents = parsed.incidents
        var problems = parsed.problems
        let notices = parsed.notices
        let recordCount = incidents.count + problems.count
        var valid: [(Int, Incident)] = []
        for (place, incident) in incidents {
            let normalised = validator.forces.prepare(incident)
            let errors = validator.validate(normalised, now: now)
            if errors.isEmpty {
                valid.append((place, normalised))
            } else {
                problems.append((place, (try? WireFormat.data(incident)) ?? Data(), errors))
            }
        }
        problems.sort { $0.place < $1.place }
        let validItems = valid
        let problemItems = problems
        let allNotices = notices
        let environment = self.environment
        let answer = try await environment.store.pool.write { db -> HistoryAnswer in
            let outbox = environment.outbox(db, producer: "intake-history")
            for (_, incident) in validItems {
                let content = String(decoding: try WireFormat.data(incident), as: UTF8.self)
                try outbox.publish(
                    HistoricalIncident(source: fileKey, incident: incident), to: Topics.history.name,
                    key: incident.occurrenceNumber,
                    id: MessageID.derived(from: incident.occurrenceNumber, "history-\(StableHash.hex128(content))"), now: now)
            }
            var answer = HistoryAnswer(file: name, records: recordCount, accepted: validItems.count, rejected: [], notices: allNotices)
            for problem in problemItems {
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .intake, origin: fileKey, place: Int64(problem.place), key: nil, value: Array(problem.value),
                    errorClass: "history.record",
                    message: "\(name) \(isJSONLines ? "line" : "row") \(problem.place): " + problem.errors.map(\.description).joined(separator: "; "),
                    now: now, outbox: outbox)
                answer.rejected.append(.init(place: problem.place, errors: problem.errors))
            }
            return answer
        }
        environment.relay.wake()
        return HTTPEndpoint.json(answer.accepted == 0 && !answer.rejected.isEmpty ? .unprocessableContent : .accepted, answer)
    }
}

/// A chunk of a history file, read but not yet validated: the incidents it holds (with their
/// place in the whole file) and the records that could not be read.
public struct HistoryFile: Sendable {
    public var isJSONLines: Bool
    public var incidents: [(place: Int, incident: Incident)]
    public var problems: [(place: Int, value: Data, errors: [FieldError])]
    public var notices: [String]

    public static let maximumFirst = 1_000_000_000

    /// Reads JSON Lines (a body whose first non-blank byte is `{`) or CSV/XLSX. A record that
    /// cannot be read is a problem with its place; a file that cannot be read at all throws.
    public static func parse(_ body: [UInt8], first: Int) throws(SheetError) -> HistoryFile {
        // Places are added to `first`: keep them far from overflow.
        guard (1...maximumFirst).contains(first) else {
            throw SheetError("first=\(first) is out of range: give the file line or row number of the chunk's first record (1...\(maximumFirst))")
        }
        var incidents: [(place: Int, incident: Incident)] = []
        var problems: [(place: Int, value: Data, errors: [FieldError])] = []
        var notices: [String] = []
        let isJSONLines =
            body.first { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 || $0 == 0xEF || $0 == 0xBB || $0 == 0xBF) } == UInt8(ascii: "{")
        if isJSONLines {
            for (i, line) in body.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
                let data = Data(line)
                guard !String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { continue }
                do {
                    incidents.append((first + i, try WireFormat.decoder().decode(Incident.self, from: data)))
                } catch {
                    problems.append((first + i, data, [FieldError("line \(first + i)", WireFormat.describe(error))]))
                }
            }
        } else {
            let sheet = try SpreadsheetReader.read(Data(body))
            try IncidentSheet.checkColumns(sheet)
            notices = sheet.notices
            // Rows are numbered within the chunk (header = 1); shift to the file's numbering.
            let offset = first - 2
            let (groups, sheetProblems) = IncidentSheet.incidents(from: sheet)
            for group in groups { incidents.append(((group.rows.first ?? 0) + offset, group.incident)) }
            for problem in sheetProblems {
                let value =
                    (try? JSONSerialization.data(withJSONObject: ["row": problem.row + offset, "cells": problem.cells], options: [.sortedKeys]))
                    ?? Data()
                problems.append((problem.row + offset, value, problem.errors))
            }
        }
        return HistoryFile(isJSONLines: isJSONLines, incidents: incidents, problems: problems, notices: notices)
    }
}
