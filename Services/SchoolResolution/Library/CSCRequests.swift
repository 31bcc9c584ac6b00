import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import IntakeService
import ServiceRuntime

/// Requests to Children's Social Care: the children without a verified school, exported per
/// local policing area as a spreadsheet, and the spreadsheet CSC returns with the schools filled in.
public enum CSCRequests {
    public static let header = [
        "request_id", "lpa", "force", "occurrence_number", "incident_date", "child_given_name", "child_family_name",
        "child_date_of_birth", "child_age", "child_address", "child_postcode", "recorded_school", "recorded_urn",
        "reason", "candidates", "school_urn", "school_name", "csc_note",
    ]

    /// Open requests of one LPA (case-insensitive; `all` for every LPA), oldest first.
    public static func open(_ db: Database, lpa: String) throws -> [SchoolRequestRow] {
        var query = SchoolRequestRow.filter(Column("status") == "open")
        if lpa.lowercased() != "all" { query = query.filter(sql: "lower(lpa) = lower(?)", arguments: [lpa]) }
        return try query.order(Column("createdAt"), Column("occurrenceNumber"), Column("requestId")).fetchAll(db)
    }

    /// The rows of the export.
    public static func rows(_ requests: [SchoolRequestRow]) -> [[String]] {
        requests.map { request in
            let message = try? request.childIdentified()
            let child = message?.child
            let age = message.flatMap { $0.child.age(on: $0.incident.occurredAt) }.map(String.init) ?? ""
            return [
                request.requestId, request.lpa, request.forceCode, request.occurrenceNumber,
                message.map { CalendarDate($0.incident.occurredAt).description } ?? "",
                child?.givenName ?? "", child?.familyName ?? "", child?.dateOfBirth ?? "", age,
                child?.homeAddress.map { ($0.lines + [$0.town].compactMap { $0 }).joined(separator: ", ") } ?? "",
                child?.homeAddress?.postcode ?? "",
                child?.recordedSchool?.name ?? "", child?.recordedSchool?.urn ?? "",
                request.reason, request.candidateList.map(\.summary).joined(separator: "; "),
                "", "", "",
            ]
        }
    }

    /// Marks requests as exported.
    public static func markExported(_ db: Database, ids: [String], now: Date) throws {
        for id in ids {
            try db.execute(sql: "UPDATE schoolRequest SET exportedAt = ? WHERE requestId = ?", arguments: [now, id])
        }
    }

    /// The answer for one returned row.
    public struct RowAnswer: Codable, Sendable, Equatable {
        /// `notice` (school verified, notice requested), `not-notified` (verified, out of area per
        /// protocol), `open` (no school given yet), `unchanged` (already resolved to it), `rejected`.
        public var outcome: String
        public var row: Int
        public var requestId: String?
        public var urn: String?
        public var reasons: [String]
        public var candidates: [String]?
    }

    public struct ImportAnswer: Codable, Sendable {
        public var file: String
        public var rows: Int
        public var answers: [RowAnswer]
        public var notices: [String]
        public var error: String?

        public var rejected: Int { answers.filter { $0.outcome == "rejected" }.count }
    }

    /// Applies a returned spreadsheet (CSV or XLSX) in `db`'s transaction. Unusable rows are
    /// answered and kept as dead letters; a file that cannot be read throws `SheetError`.
    public static func importReturned(
        _ data: Data, name: String, flow: SchoolFlow, db: Database, outbox: Outbox, now: Date
    ) throws -> ImportAnswer {
        let sheet = try SpreadsheetReader.read(data)
        guard sheet.headers.contains("request_id") else {
            throw SheetError("the returned sheet has no request_id column; send back the exported spreadsheet with the school_urn or school_name filled in")
        }
        guard sheet.headers.contains("school_urn") || sheet.headers.contains("school_name") else {
            throw SheetError("the returned sheet has neither a school_urn nor a school_name column")
        }
        let origin = "requests-import:\(name):\(StableHash.hex128(String(decoding: data, as: UTF8.self)).prefix(12))"
        var answer = ImportAnswer(file: name, rows: sheet.rows.count, answers: [], notices: sheet.notices)
        for row in sheet.rows {
            func cell(_ key: String) -> String? { row.cells[key].map(SheetWriter.restore)?.trimmingCharacters(in: .whitespaces).nilIfEmpty }
            let requestId = cell("request_id")
            func reject(_ reasons: [String], candidates: [String]? = nil) throws {
                answer.answers.append(RowAnswer(outcome: "rejected", row: row.number, requestId: requestId, reasons: reasons, candidates: candidates))
                let value = try JSONSerialization.data(withJSONObject: ["file": name, "row": row.number, "cells": row.cells], options: [.sortedKeys])
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .schoolResolution, origin: origin, place: Int64(row.number), key: requestId, value: Array(value),
                    errorClass: "requests.row", message: "row \(row.number): " + reasons.joined(separator: "; "), now: now, outbox: outbox)
            }
            if let problem = row.problem { try reject([problem]); continue }
            guard let requestId else { try reject(["request_id is empty"]); continue }
            guard var request = try SchoolRequestRow.fetchOne(db, key: requestId) else {
                try reject(["request \(requestId) is not held here (unknown, or held by another instance)"]); continue
            }
            let urn = cell("school_urn").map(RegisterImporter.cleanURN)
            let schoolName = cell("school_name")
            if urn == nil && schoolName == nil {
                answer.answers.append(RowAnswer(outcome: "open", row: row.number, requestId: requestId, reasons: ["no school given: the request stays open"]))
                continue
            }
            guard request.status == "open" else {
                var sameSchool = urn == request.resolvedURN
                if urn == nil, let schoolName {
                    let thresholds = flow.protocols[request.forceCode]?.match ?? MatchThresholds()
                    sameSchool = try flow.cache.matcher(db).match(schoolName, thresholds: thresholds).winner?.urn == request.resolvedURN
                }
                if sameSchool, let resolved = request.resolvedURN {
                    answer.answers.append(RowAnswer(outcome: "unchanged", row: row.number, requestId: requestId, urn: resolved, reasons: ["already resolved to URN \(resolved)"]))
                } else {
                    try reject(["request \(requestId) is already \(request.status)\(request.resolvedURN.map { " (URN \($0))" } ?? "")"])
                }
                continue
            }
            let message: ChildIdentified
            do { message = try request.childIdentified() } catch {
                try reject(["request \(requestId) holds an unreadable child record: \(error)"]); continue
            }
            let returned = RecordedSchool(name: schoolName, urn: urn)
            let resolution = try flow.resolve(message, recorded: returned, label: "returned by Children's Social Care", previous: nil, db: db)
            switch resolution {
            case .request(let reason, let candidates, let reasons):
                try reject(reasons.isEmpty ? [reason] : reasons, candidates: candidates.map(\.summary))
                request.note = "returned school not verified: \(reason)"
                request.updatedAt = now
                try request.update(db)
            case .notice(let school, let reasons):
                _ = try flow.record(resolution, for: message, causationId: request.causationId,
                                    purpose: "csc-return:\(school.urn)", db: db, outbox: outbox, now: now)
                answer.answers.append(RowAnswer(outcome: "notice", row: row.number, requestId: requestId, urn: school.urn, reasons: reasons))
            case .notNotified(let urn, let reasons):
                _ = try flow.record(resolution, for: message, causationId: request.causationId, purpose: "csc-return:\(urn)",
                                    db: db, outbox: outbox, now: now)
                answer.answers.append(RowAnswer(outcome: "not-notified", row: row.number, requestId: requestId, urn: urn, reasons: reasons))
            }
        }
        return answer
    }
}
