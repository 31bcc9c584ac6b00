import EncompassModels
import Foundation
import Spreadsheets

/// Turns the DA desk's spreadsheet into incidents: one row per child present, or one row per
/// incident with no child listed; rows with the same occurrence number make one incident.
/// Columns are documented in README ("The DA desk's spreadsheet").
public enum IncidentSheet {
    public static let requiredColumns = [
        "occurrence_number", "force_code", "occurred_at", "reported_at", "incident_address", "incident_postcode", "risk_level", "crime",
    ]
    public static let optionalColumns = [
        "incident_town", "incident_county", "lpa",
        "victim_given_name", "victim_family_name", "victim_dob", "suspect_given_name", "suspect_family_name", "suspect_dob",
        "child_given_name", "child_family_name", "child_dob", "child_age", "child_presence", "child_address", "child_postcode",
        "child_school", "child_school_urn", "circumstances", "safeguarding_information",
    ]
    /// Incident-level columns: every row of one occurrence must agree on them.
    static let incidentColumns =
        requiredColumns + [
            "incident_town", "incident_county", "lpa", "victim_given_name", "victim_family_name", "victim_dob",
            "suspect_given_name", "suspect_family_name", "suspect_dob", "circumstances", "safeguarding_information",
        ]

    public struct Group: Sendable {
        public var incident: Incident
        /// Row numbers the incident came from; `childRows[i]` is the row of `incident.children[i]`.
        public var rows: [Int]
        public var childRows: [Int]
    }

    public struct RowProblem: Sendable, Equatable {
        public var row: Int
        public var cells: [String: String]
        public var errors: [FieldError]
    }

    public static func checkColumns(_ sheet: Sheet) throws(SheetError) {
        let missing = requiredColumns.filter { !sheet.headers.contains($0) }
        guard missing.isEmpty else {
            throw SheetError(
                "missing column(s): \(missing.joined(separator: ", ")); the header row must name \(requiredColumns.joined(separator: ", "))")
        }
    }

    /// Unknown columns are reported, not fatal.
    public static func unknownColumns(_ sheet: Sheet) -> [String] {
        sheet.headers.filter { !requiredColumns.contains($0) && !optionalColumns.contains($0) }
    }

    public static func incidents(from sheet: Sheet) -> (groups: [Group], problems: [RowProblem]) {
        var problems: [RowProblem] = []
        var order: [String] = []
        var byOccurrence: [String: [SheetRow]] = [:]
        for row in sheet.rows {
            if let problem = row.problem {
                problems.append(RowProblem(row: row.number, cells: row.cells, errors: [FieldError("row \(row.number)", problem)]))
                continue
            }
            let occurrence = row.cells["occurrence_number"] ?? ""
            guard !occurrence.isEmpty else {
                problems.append(RowProblem(row: row.number, cells: row.cells, errors: [FieldError("occurrence_number", "required")]))
                continue
            }
            if byOccurrence[occurrence] == nil { order.append(occurrence) }
            byOccurrence[occurrence, default: []].append(row)
        }
        var groups: [Group] = []
        for occurrence in order {
            var rows = byOccurrence[occurrence]!
            let first = rows[0]
            // Rows that disagree with the first on incident-level columns are refused.
            rows = rows.filter { row in
                let conflicts = incidentColumns.filter { (row.cells[$0] ?? "") != (first.cells[$0] ?? "") }
                guard !conflicts.isEmpty else { return true }
                problems.append(
                    RowProblem(
                        row: row.number, cells: row.cells,
                        errors: conflicts.map {
                            FieldError($0, "differs from row \(first.number) of the same occurrence")
                        }))
                return false
            }
            var errors: [FieldError] = []
            let incidentFields = build(first, errors: &errors)
            guard let incidentFields, errors.isEmpty else {
                for row in rows { problems.append(RowProblem(row: row.number, cells: row.cells, errors: errors)) }
                continue
            }
            var incident = incidentFields
            var childRows: [Int] = []
            for row in rows where !(row.cells["child_given_name"] ?? "").isEmpty || !(row.cells["child_family_name"] ?? "").isEmpty {
                var childErrors: [FieldError] = []
                if let child = child(row, errors: &childErrors), childErrors.isEmpty {
                    incident.children.append(child)
                    childRows.append(row.number)
                } else {
                    problems.append(RowProblem(row: row.number, cells: row.cells, errors: childErrors))
                }
            }
            groups.append(Group(incident: incident, rows: rows.map(\.number), childRows: childRows))
        }
        problems.sort { $0.row < $1.row }
        return (groups, problems)
    }

    private static func build(_ row: SheetRow, errors: inout [FieldError]) -> Incident? {
        let c = row.cells
        func instant(_ column: String) -> Date? {
            let text = c[column] ?? ""
            if let date = Timestamp.parse(text) { return date }
            errors.append(FieldError(column, text.isEmpty ? "required" : "'\(text)' is not a date and time (e.g. 2026-11-22 21:15)"))
            return nil
        }
        let occurred = instant("occurred_at")
        let reported = instant("reported_at")
        let riskText = (c["risk_level"] ?? "").lowercased()
        let risk = RiskLevel(rawValue: riskText)
        if risk == nil { errors.append(FieldError("risk_level", "'\(c["risk_level"] ?? "")' is not standard, medium or high")) }
        let crime: Bool?
        switch (c["crime"] ?? "").lowercased() {
        case "y", "yes", "true", "1", "crime": crime = true
        case "n", "no", "false", "0", "non-crime", "non crime", "noncrime": crime = false
        default:
            crime = nil
            errors.append(FieldError("crime", "'\(c["crime"] ?? "")' is not Y/N (crime or non-crime)"))
        }
        var parties: [Party] = []
        for role in [PartyRole.victim, .suspect] {
            let given = c["\(role.rawValue)_given_name"] ?? ""
            let family = c["\(role.rawValue)_family_name"] ?? ""
            guard !given.isEmpty || !family.isEmpty else { continue }
            parties.append(Party(role: role, givenName: given, familyName: family, dateOfBirth: date(c["\(role.rawValue)_dob"])))
        }
        guard let occurred, let reported, let risk, let crime else { return nil }
        return Incident(
            occurrenceNumber: c["occurrence_number"] ?? "", forceCode: c["force_code"] ?? "", occurredAt: occurred, reportedAt: reported,
            incidentAddress: PostalAddress(
                lines: lines(c["incident_address"]), town: nonEmpty(c["incident_town"]),
                county: nonEmpty(c["incident_county"]), postcode: c["incident_postcode"] ?? ""),
            localPolicingArea: nonEmpty(c["lpa"]), riskLevel: risk, crime: crime, parties: parties, children: [],
            circumstances: nonEmpty(c["circumstances"]), safeguardingInformation: nonEmpty(c["safeguarding_information"]))
    }

    private static func child(_ row: SheetRow, errors: inout [FieldError]) -> RecordedChild? {
        let c = row.cells
        var age: Int?
        if let text = nonEmpty(c["child_age"]) {
            age = Int(text)
            if age == nil { errors.append(FieldError("child_age", "'\(text)' is not a whole number of years")) }
        }
        var presence = ChildPresence.present
        if let text = nonEmpty(c["child_presence"]) {
            guard let value = ChildPresence(rawValue: text.lowercased()) else {
                errors.append(FieldError("child_presence", "'\(text)' is not present, witness or involved"))
                return nil
            }
            presence = value
        }
        let address = nonEmpty(c["child_address"]).map {
            PostalAddress(lines: lines($0), postcode: c["child_postcode"] ?? "")
        }
        let school =
            (nonEmpty(c["child_school"]) != nil || nonEmpty(c["child_school_urn"]) != nil)
            ? RecordedSchool(name: nonEmpty(c["child_school"]), urn: nonEmpty(c["child_school_urn"])) : nil
        return RecordedChild(
            givenName: c["child_given_name"] ?? "", familyName: c["child_family_name"] ?? "",
            dateOfBirth: date(c["child_dob"]), ageYears: age, homeAddress: address, presence: presence, school: school)
    }

    /// Dates as YYYY-MM-DD; also accepts the UK's DD/MM/YYYY, which spreadsheets often hold.
    static func date(_ text: String?) -> String? {
        guard let text = nonEmpty(text) else { return nil }
        let uk = text.split(separator: "/")
        if uk.count == 3, uk[0].count <= 2, uk[1].count <= 2, uk[2].count == 4, let d = Int(uk[0]), let m = Int(uk[1]) {
            return String(format: "%@-%02d-%02d", String(uk[2]), m, d)
        }
        return text
    }

    static func lines(_ text: String?) -> [String] {
        (text ?? "").split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == "|" })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func nonEmpty(_ text: String?) -> String? {
        guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        return text
    }
}
