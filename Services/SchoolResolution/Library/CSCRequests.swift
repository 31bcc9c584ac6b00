import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import ServiceRuntime
import Spreadsheets

/// Requests to Children's Social Care: the children without a verified school, exported per
/// local policing area as a spreadsheet, and the spreadsheet CSC returns with the schools filled in.
public enum CSCRequests {
    public static let header = [
        "request_id", "lpa", "force", "occurrence_number", "incident_date", "child_given_name", "child_family_name",
        "child_date_of_birth", "child_age", "child_address", "child_postcode", "recorded_school", "recorded_urn",
        "reason", "candidates", "school_urn", "school_name", "csc_note",
        "corrected_given_name", "corrected_family_name", "corrected_date_of_birth",
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
                "", "", "", "", "", "",
            ]
        }
    }

    /// Marks requests as exported.
    public static func markExported(_ db: Database, ids: [String], now: Date) throws {
        for id in ids {
            try db.execute(sql: "UPDATE schoolRequest SET exportedAt = ? WHERE requestId = ?", arguments: [now, id])
        }
    }

    /// Which rows of a returned sheet an instance applies. A scaled group holds each request on
    /// one instance (the owner of the child's partition), so a sheet is given to every instance.
    public enum ImportScope: Sendable, Equatable {
        /// Every row: a request not held here is rejected and dead-lettered (one instance).
        case all
        /// Only the rows whose request this instance holds; every other row is answered
        /// `not-held` and nothing is written for it (the caller asks every instance).
        case held
        /// Only these row numbers, which no instance of the group holds: each is rejected with
        /// its reason and dead-lettered once, here.
        case unheld(Set<Int>)
    }

    /// Applies a returned spreadsheet (CSV or XLSX) in `db`'s transaction. Unusable rows are
    /// answered and kept as dead letters; a file that cannot be read throws `SheetError`.
    /// `forces`: a force's own console imports for those forces only; a row of another force's
    /// request is rejected, never applied.
    public static func importReturned(
        _ data: Data, name: String, flow: SchoolFlow, db: Database, outbox: Outbox, now: Date, scope: ImportScope = .all,
        forces: Set<String>? = nil
    ) throws -> CSCImportAnswer {
        let sheet = try SpreadsheetReader.read(data)
        guard sheet.headers.contains("request_id") else {
            throw SheetError(
                "the returned sheet has no request_id column; send back the exported spreadsheet with the school_urn or school_name filled in")
        }
        guard sheet.headers.contains("school_urn") || sheet.headers.contains("school_name") else {
            throw SheetError("the returned sheet has neither a school_urn nor a school_name column")
        }
        let origin = "requests-import:\(name):\(StableHash.hex128(String(decoding: data, as: UTF8.self)).prefix(12))"
        var answer = CSCImportAnswer(file: name, rows: sheet.rows.count, answers: [], notices: sheet.notices)
        for row in sheet.rows {
            func cell(_ key: String) -> String? { row.cells[key].map(SheetWriter.restore)?.trimmingCharacters(in: .whitespaces).nilIfEmpty }
            let requestId = cell("request_id")
            if case .unheld(let rows) = scope, !rows.contains(row.number) { continue }
            if scope == .held, try row.problem != nil || requestId.map({ try SchoolRequestRow.exists(db, key: $0) }) != true {
                answer.answers.append(
                    CSCImportAnswer.Row(outcome: "not-held", row: row.number, requestId: requestId, reasons: ["not held by this instance"]))
                continue
            }
            func reject(_ reasons: [String], candidates: [String]? = nil) throws {
                answer.answers.append(
                    CSCImportAnswer.Row(outcome: "rejected", row: row.number, requestId: requestId, reasons: reasons, candidates: candidates))
                let value = try JSONSerialization.data(withJSONObject: ["file": name, "row": row.number, "cells": row.cells], options: [.sortedKeys])
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .schoolResolution, origin: origin, place: Int64(row.number), key: requestId, value: Array(value),
                    errorClass: "requests.row", message: "row \(row.number): " + reasons.joined(separator: "; "), now: now, outbox: outbox)
            }
            if let problem = row.problem {
                try reject([problem])
                continue
            }
            guard let requestId else {
                try reject(["request_id is empty"])
                continue
            }
            guard var request = try SchoolRequestRow.fetchOne(db, key: requestId) else {
                if case .unheld = scope {
                    try reject(["request \(requestId) is held by no school resolution instance: check request_id against the exported sheet"])
                } else {
                    try reject(["request \(requestId) is not held here (unknown, or held by another instance)"])
                }
                continue
            }
            if let forces, !forces.contains(request.forceCode) {
                try reject([
                    "request \(requestId) is force \(request.forceCode)'s; this import is for force \(forces.sorted().joined(separator: ", ")) only"
                ])
                continue
            }
            let urn = cell("school_urn").map(RegisterImporter.cleanURN)
            let schoolName = cell("school_name")
            if urn == nil && schoolName == nil {
                answer.answers.append(
                    CSCImportAnswer.Row(outcome: "open", row: row.number, requestId: requestId, reasons: ["no school given: the request stays open"]))
                continue
            }
            guard request.status == "open" else {
                var sameSchool = urn == request.resolvedURN
                if urn == nil, let schoolName {
                    let thresholds = flow.protocols[request.forceCode]?.match ?? MatchThresholds()
                    sameSchool = try flow.cache.matcher(db).match(schoolName, thresholds: thresholds).winner?.urn == request.resolvedURN
                }
                if sameSchool, let resolved = request.resolvedURN {
                    answer.answers.append(
                        CSCImportAnswer.Row(
                            outcome: "unchanged", row: row.number, requestId: requestId, urn: resolved,
                            reasons: ["already resolved to URN \(resolved)"]))
                } else {
                    try reject(["request \(requestId) is already \(request.status)\(request.resolvedURN.map { " (URN \($0))" } ?? "")"])
                }
                continue
            }
            var message: ChildIdentified
            do { message = try request.childIdentified() } catch {
                try reject(["request \(requestId) holds an unreadable child record: \(error)"])
                continue
            }
            // Children's Social Care knows the child: its corrections of the officer's record
            // (a mistyped date of birth or name) stand before the school is verified.
            let corrections: [String]
            switch correct(
                &message.child, given: cell("corrected_given_name"), family: cell("corrected_family_name"),
                dateOfBirth: cell("corrected_date_of_birth"))
            {
            case .failure(let problem):
                try reject([problem.description])
                continue
            case .success(let made): corrections = made
            }
            if !corrections.isEmpty {
                request.child = try WireFormat.data(message)
                request.note = "corrected by Children's Social Care: " + corrections.joined(separator: "; ")
                request.updatedAt = now
                try request.update(db)
            }
            let returned = RecordedSchool(name: schoolName, urn: urn)
            let label = "returned by Children's Social Care"
            let resolution = try flow.resolve(message, recorded: returned, label: label, previous: nil, db: db)
            if case .request(let reason, _, _) = resolution,
                case let unchecked = try flow.resolve(message, recorded: returned, label: label, previous: nil, checkAge: false, db: db),
                let held = unchecked.urn
            {
                // The school is verified but for the child's age: CSC is the authority on
                // school and the recorded age may be wrong, so a MASH officer decides.
                request.status = "review"
                request.reviewSchool = String(decoding: try JSONEncoder().encode(RecordedSchool(name: schoolName, urn: held)), as: UTF8.self)
                request.reviewReason = reason
                request.updatedAt = now
                try request.update(db)
                answer.answers.append(
                    CSCImportAnswer.Row(
                        outcome: "review", row: row.number, requestId: requestId, urn: held,
                        reasons: corrections.map { "corrected: \($0)" } + [
                            reason, "held for a MASH officer: encompass schools requests accept \(requestId) --by NAME (or decline)",
                        ]))
                continue
            }
            switch resolution {
            case .request(let reason, let candidates, let reasons):
                try reject(reasons.isEmpty ? [reason] : reasons, candidates: candidates.map(\.summary))
                request.note = "returned school not verified: \(reason)"
                request.updatedAt = now
                try request.update(db)
            case .notice(let school, let reasons):
                _ = try flow.record(
                    resolution, for: message, noticeId: request.requestId, causationId: request.causationId,
                    purpose: "csc-return:\(school.urn)", db: db, outbox: outbox, now: now)
                answer.answers.append(
                    CSCImportAnswer.Row(
                        outcome: "notice", row: row.number, requestId: requestId, urn: school.urn,
                        reasons: corrections.map { "corrected: \($0)" } + reasons))
            case .notNotified(let urn, let reasons):
                _ = try flow.record(
                    resolution, for: message, noticeId: request.requestId, causationId: request.causationId, purpose: "csc-return:\(urn)",
                    db: db, outbox: outbox, now: now)
                answer.answers.append(CSCImportAnswer.Row(outcome: "not-notified", row: row.number, requestId: requestId, urn: urn, reasons: reasons))
            }
        }
        return answer
    }

    struct CorrectionError: Error, CustomStringConvertible { let description: String }

    /// Applies Children's Social Care's corrections to the child; returns what changed.
    static func correct(_ child: inout IdentifiedChild, given: String?, family: String?, dateOfBirth: String?) -> Result<[String], CorrectionError> {
        var made: [String] = []
        if let dateOfBirth {
            guard let date = CalendarDate(iso: dateOfBirth) ?? CalendarDate(dayMonthYear: dateOfBirth) else {
                return .failure(
                    CorrectionError(description: "corrected_date_of_birth \"\(dateOfBirth)\" is not a date: write YYYY-MM-DD or DD/MM/YYYY"))
            }
            if date.description != child.dateOfBirth {
                made.append("date of birth \(child.dateOfBirth ?? child.ageYears.map { "unknown (age \($0))" } ?? "unknown") → \(date)")
                child.dateOfBirth = date.description
                child.ageYears = nil
            }
        }
        if let given, given != child.givenName {
            made.append("given name \(child.givenName) → \(given)")
            child.givenName = given
        }
        if let family, family != child.familyName {
            made.append("family name \(child.familyName) → \(family)")
            child.familyName = family
        }
        return .success(made)
    }

    public enum ReviewVerdict: String, Codable, Sendable { case accept, decline }

    /// The answer to a MASH officer's decision on a held CSC answer.
    public struct ReviewAnswer: Codable, Sendable, Equatable {
        public var requestId: String
        /// `notice`, `not-notified` (accepted), `open` (declined: back to CSC), or `rejected`.
        public var outcome: String
        public var urn: String?
        public var reasons: [String]
    }

    /// CSC answers held for a MASH officer (status `review`), oldest first.
    public static func held(_ db: Database) throws -> [SchoolRequestRow] {
        try SchoolRequestRow.filter(Column("status") == "review").order(Column("updatedAt"), Column("requestId")).fetchAll(db)
    }

    /// A MASH officer's decision on a CSC answer held for an age-range conflict: `accept` sends
    /// the notice to the school CSC named (age not checked, and said); `decline` returns the
    /// request to CSC with the reviewer's note. Nil when no such request is held.
    public static func decide(
        _ requestId: String, verdict: ReviewVerdict, reviewer: String, note: String?, flow: SchoolFlow,
        db: Database, outbox: Outbox, now: Date
    ) throws -> ReviewAnswer? {
        guard var request = try SchoolRequestRow.fetchOne(db, key: requestId), request.status == "review",
            let school = request.heldSchool
        else { return nil }
        let message = try request.childIdentified()
        let who = "\(reviewer)\(note.map { " (\($0))" } ?? "")"
        switch verdict {
        case .decline:
            request.status = "open"
            request.note = "MASH officer \(who) declined Children's Social Care's school URN \(school.urn ?? "?"): \(request.reviewReason ?? "")"
            request.reviewSchool = nil
            request.updatedAt = now
            try request.update(db)
            return ReviewAnswer(requestId: requestId, outcome: "open", urn: nil, reasons: [request.note ?? ""])
        case .accept:
            let resolution = try flow.resolve(
                message, recorded: school, label: "returned by Children's Social Care and accepted by MASH officer \(who)",
                previous: nil, checkAge: false, db: db)
            guard let urn = resolution.urn else {
                if case .request(let reason, _, _) = resolution {
                    return ReviewAnswer(requestId: requestId, outcome: "rejected", urn: nil, reasons: [reason])
                }
                return nil
            }
            let outcome = try flow.record(
                resolution, for: message, noticeId: request.requestId, causationId: request.causationId, purpose: "csc-return:\(urn)",
                db: db, outbox: outbox, now: now)
            if let original = request.redirectOf {
                try SchoolFlow.publishEvent(
                    outcome == .notice ? .redirected : .flagged, noticeId: original, message: message, urn: urn,
                    detail: "Children's Social Care named URN \(urn) as the child's current school, accepted by MASH officer \(who): "
                        + (outcome == .notice ? "notice \(requestId) requested" : "not notified"),
                    id: MessageID.derived(from: request.causationId, "csc-return:\(urn):event"), causationId: request.causationId,
                    outbox: outbox, now: now)
            }
            if var settled = try SchoolRequestRow.fetchOne(db, key: requestId) {
                settled.note = "age-range conflict accepted by MASH officer \(who)"
                settled.status = outcome == .notice ? "resolved" : "closed"
                settled.resolvedURN = urn
                settled.updatedAt = now
                try settled.update(db)
            }
            var reasons: [String] = []
            if case .notice(_, let why) = resolution { reasons = why } else if case .notNotified(_, let why) = resolution { reasons = why }
            return ReviewAnswer(requestId: requestId, outcome: outcome.rawValue, urn: urn, reasons: reasons)
        }
    }
}

extension HeldAnswer {
    init(_ row: SchoolRequestRow) {
        let child = (try? row.childIdentified())?.child
        self.init(
            requestId: row.requestId, lpa: row.lpa, forceCode: row.forceCode, occurrenceNumber: row.occurrenceNumber,
            childName: child.map { "\($0.givenName) \($0.familyName)" } ?? "", dateOfBirth: child?.dateOfBirth,
            school: row.heldSchool,
            reason: row.reviewReason ?? row.reason, note: row.note, updatedAt: row.updatedAt)
    }
}
