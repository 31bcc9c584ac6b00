import EncompassModels
import Foundation

/// The largest values intake takes (docs/schemas/incident.schema.json says the same, as
/// `maxLength`/`maxItems`). Lengths count Unicode code points, as JSON Schema does. They keep
/// every message an incident causes far below what Kafka takes (`Outbox.maxMessageBytes`),
/// however it grows on its way through the pipeline.
public enum IncidentLimits {
    public static let occurrenceNumber = 40
    public static let forceCode = 8
    public static let localPolicingArea = 100
    /// Given and family names.
    public static let name = 100
    public static let addressLines = 10
    public static let addressLine = 200
    /// Town and county.
    public static let place = 100
    public static let postcode = 16
    public static let schoolName = 200
    public static let parties = 50
    public static let children = 50
    /// The free-text fields a force's notice may carry: brief circumstances and "any other
    /// relevant safeguarding information".
    public static let circumstances = 1_000
    public static let safeguardingInformation = 2_000
    /// The whole incident as JSON: checked after the fields, before anything enters an outbox.
    public static let encodedBytes = 256 * 1024
}

/// What intake makes of an incident: the problems that reject it (an incident field, or a
/// child's), and the adults' fields it set aside so that the incident can go on for its
/// children (a mistyped adult date of birth must not hold back a child's notice).
public struct IncidentReview: Sendable {
    /// The incident with the set-aside adult fields removed (a party whose name is unusable is
    /// removed whole).
    public var incident: Incident
    /// Problems that reject the incident (in a spreadsheet, a child's problems set that child's
    /// row aside instead).
    public var errors: [FieldError]
    /// Adult fields set aside, with why: reported to the sender, the incident goes on.
    public var warnings: [FieldError]
}

/// Checks an incident against the intake rules. Every problem is reported with its field path,
/// so a caller can fix them all at once.
public struct IncidentValidator: Sendable {
    public let forces: ForceRegistry
    /// Clock skew tolerated for "not in the future".
    public var tolerance: TimeInterval = 300

    public init(forces: ForceRegistry) { self.forces = forces }

    /// Every problem of the incident as it is, adults' fields included.
    public func validate(_ incident: Incident, now: Date) -> [FieldError] {
        let review = review(incident, now: now)
        return review.errors + review.warnings
    }

    /// Checks the incident; a problem with an adult's field (a party's) sets that field aside
    /// with a warning instead of rejecting the incident. `unknownFields` are the paths of
    /// fields the submitted JSON had beyond the format (`IncidentShape.unknownFields`): an
    /// adult's are set aside with a warning (decoding already dropped them), any other rejects.
    public func review(_ incident: Incident, now: Date, unknownFields: [String] = []) -> IncidentReview {
        var errors: [FieldError] = []
        var warnings: [FieldError] = []
        for path in unknownFields {
            let problem = FieldError(
                path, "unknown field: the incident format (docs/schemas/incident.schema.json) has no such field; remove it or check its spelling")
            if path.hasPrefix("parties[") { warnings.append(problem) } else { errors.append(problem) }
        }
        let force = forces.forces[incident.forceCode]
        if let problem = checkLength(incident.forceCode, field: "forceCode", limit: IncidentLimits.forceCode) {
            errors.append(problem)
        } else if force == nil {
            errors.append(
                FieldError("forceCode", "unknown force '\(incident.forceCode)'; known: \(forces.forces.keys.sorted().joined(separator: ", "))"))
        }
        let occurrence = incident.occurrenceNumber.trimmingCharacters(in: .whitespaces)
        if occurrence.isEmpty {
            errors.append(FieldError("occurrenceNumber", "required"))
        } else if let problem = checkLength(occurrence, field: "occurrenceNumber", limit: IncidentLimits.occurrenceNumber) {
            errors.append(problem)
        } else if let force, !forces.matchesOccurrence(occurrence, force: force.code) {
            errors.append(FieldError("occurrenceNumber", "'\(occurrence)' is not a \(force.name) occurrence number (\(force.occurrenceFormat))"))
        }
        errors += checkInstant(incident.occurredAt, field: "occurredAt", now: now)
        errors += checkInstant(incident.reportedAt, field: "reportedAt", now: now)
        if incident.reportedAt < incident.occurredAt.addingTimeInterval(-tolerance) {
            errors.append(FieldError("reportedAt", "is before occurredAt"))
        }
        errors += checkAddress(incident.incidentAddress, field: "incidentAddress")
        if let lpa = incident.localPolicingArea {
            if let problem = checkLength(lpa, field: "localPolicingArea", limit: IncidentLimits.localPolicingArea) {
                errors.append(problem)
            } else if let force, !force.localPolicingAreas.isEmpty,
                !force.localPolicingAreas.contains(where: { $0.caseInsensitiveCompare(lpa) == .orderedSame })
            {
                errors.append(
                    FieldError(
                        "localPolicingArea",
                        "'\(lpa)' is not a \(force.name) LPA; expected one of: \(force.localPolicingAreas.joined(separator: ", "))"))
            }
        }
        errors += checkFreeText(incident.circumstances, field: "circumstances", limit: IncidentLimits.circumstances)
        errors += checkFreeText(incident.safeguardingInformation, field: "safeguardingInformation", limit: IncidentLimits.safeguardingInformation)
        var reviewed = incident
        if incident.parties.count > IncidentLimits.parties {
            errors.append(FieldError("parties", "\(incident.parties.count) parties; at most \(IncidentLimits.parties)"))
        } else {
            reviewed.parties = []
            for (i, party) in incident.parties.enumerated() {
                let (kept, setAside) = reviewParty(party, path: "parties[\(i)]", occurred: incident.occurredAt)
                warnings += setAside
                if let kept { reviewed.parties.append(kept) }
            }
        }
        if incident.children.count > IncidentLimits.children {
            errors.append(FieldError("children", "\(incident.children.count) children; at most \(IncidentLimits.children)"))
        } else {
            for (i, child) in incident.children.enumerated() {
                errors += checkChild(child, path: "children[\(i)]", occurred: incident.occurredAt)
            }
        }
        if errors.isEmpty, let bytes = try? WireFormat.data(reviewed).count, bytes > IncidentLimits.encodedBytes {
            errors.append(
                FieldError(
                    "(incident)",
                    "the incident is \(bytes) bytes as JSON, over the \(IncidentLimits.encodedBytes) bytes intake takes; send fewer or shorter values"
                ))
        }
        return IncidentReview(incident: reviewed, errors: errors, warnings: warnings)
    }

    /// An adult's problems: a bad date of birth or address is dropped, a party without a
    /// usable name is dropped whole; each with a warning saying so.
    private func reviewParty(_ party: Party, path: String, occurred: Date) -> (Party?, [FieldError]) {
        let nameProblems = checkName(party.givenName, field: "\(path).givenName") + checkName(party.familyName, field: "\(path).familyName")
        if !nameProblems.isEmpty {
            return (nil, nameProblems.map { FieldError($0.field, "\($0.message); the whole party was set aside, the incident goes on") })
        }
        var kept = party
        var warnings: [FieldError] = []
        if let dob = party.dateOfBirth {
            let problems = checkDateOfBirth(dob, field: "\(path).dateOfBirth", before: occurred).errors
            if !problems.isEmpty {
                kept.dateOfBirth = nil
                warnings += problems.map { FieldError($0.field, "\($0.message); set aside, the incident goes on without it") }
            }
        }
        if let address = party.address {
            let problems = checkAddress(address, field: "\(path).address")
            if !problems.isEmpty {
                kept.address = nil
                warnings += problems.map { FieldError($0.field, "\($0.message); the address was set aside, the incident goes on without it") }
            }
        }
        return (kept, warnings)
    }

    private func checkChild(_ child: RecordedChild, path: String, occurred: Date) -> [FieldError] {
        var errors = checkName(child.givenName, field: "\(path).givenName") + checkName(child.familyName, field: "\(path).familyName")
        if let dob = child.dateOfBirth {
            let (problems, date) = checkDateOfBirth(dob, field: "\(path).dateOfBirth", before: occurred)
            errors += problems
            if let date, let age = Self.age(born: date, at: occurred), age >= 18 {
                errors.append(FieldError("\(path).dateOfBirth", "child was \(age) at the incident; Operation Encompass covers children under 18"))
            }
        } else if let age = child.ageYears {
            if !(0...17).contains(age) { errors.append(FieldError("\(path).ageYears", "\(age) is not a child's age (0 to 17)")) }
        } else {
            errors.append(FieldError("\(path)", "needs dateOfBirth or ageYears"))
        }
        if let address = child.homeAddress { errors += checkAddress(address, field: "\(path).homeAddress") }
        if let name = child.school?.name, let problem = checkLength(name, field: "\(path).school.name", limit: IncidentLimits.schoolName) {
            errors.append(problem)
        }
        if let urn = child.school?.urn, !urn.isEmpty, !(urn.count == 6 && urn.allSatisfy { $0.isASCII && $0.isNumber }),
            !SchoolReference.isEarlyYears(urn)
        {
            let expected = "a school URN (6 digits) or an Ofsted early years reference (EY and 6 digits)"
            errors.append(FieldError("\(path).school.urn", urn.unicodeScalars.count > 16 ? "is not \(expected)" : "'\(urn)' is not \(expected)"))
        }
        return errors
    }

    /// A value over its limit, said without repeating it (it may be megabytes).
    private func checkLength(_ text: String, field: String, limit: Int) -> FieldError? {
        let length = text.unicodeScalars.count
        return length > limit ? FieldError(field, "is \(length) characters long; at most \(limit)") : nil
    }

    /// Free text for a notice: within its limit, and no control characters but line breaks and tabs.
    private func checkFreeText(_ text: String?, field: String, limit: Int) -> [FieldError] {
        guard let text else { return [] }
        if let problem = checkLength(text, field: field, limit: limit) { return [problem] }
        let allowed: Set<Unicode.Scalar> = ["\n", "\r", "\t"]
        if text.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) && !allowed.contains($0) }) {
            return [FieldError(field, "contains control characters other than line breaks and tabs")]
        }
        return []
    }

    private func checkInstant(_ date: Date, field: String, now: Date) -> [FieldError] {
        if date > now.addingTimeInterval(tolerance) { return [FieldError(field, "\(Timestamp.format(date)) is in the future")] }
        if date < Self.earliest { return [FieldError(field, "\(Timestamp.format(date)) is before 1900")] }
        return []
    }

    private func checkName(_ name: String, field: String) -> [FieldError] {
        if let problem = checkLength(name, field: field, limit: IncidentLimits.name) { return [problem] }
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return [FieldError(field, "required")] }
        if trimmed.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) {
            return [FieldError(field, "contains control characters")]
        }
        return []
    }

    private func checkAddress(_ address: PostalAddress, field: String) -> [FieldError] {
        var errors: [FieldError] = []
        if address.lines.count > IncidentLimits.addressLines {
            errors.append(FieldError("\(field).lines", "\(address.lines.count) lines; at most \(IncidentLimits.addressLines)"))
        }
        for (i, line) in address.lines.enumerated() {
            if let problem = checkLength(line, field: "\(field).lines[\(i)]", limit: IncidentLimits.addressLine) { errors.append(problem) }
        }
        if let town = address.town, let problem = checkLength(town, field: "\(field).town", limit: IncidentLimits.place) { errors.append(problem) }
        if let county = address.county, let problem = checkLength(county, field: "\(field).county", limit: IncidentLimits.place) {
            errors.append(problem)
        }
        if address.lines.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            errors.append(FieldError("\(field).lines", "at least one address line is required"))
        }
        if let problem = checkLength(address.postcode, field: "\(field).postcode", limit: IncidentLimits.postcode) {
            errors.append(problem)
        } else if UKPostcode.normalise(address.postcode) == nil {
            errors.append(FieldError("\(field).postcode", "'\(address.postcode)' is not a UK postcode"))
        }
        return errors
    }

    private func checkDateOfBirth(_ text: String, field: String, before occurred: Date) -> (errors: [FieldError], date: Date?) {
        guard let date = Self.isoDate(text) else {
            return ([FieldError(field, text.unicodeScalars.count > 20 ? "is not a date (YYYY-MM-DD)" : "'\(text)' is not a date (YYYY-MM-DD)")], nil)
        }
        if date < Self.earliest { return ([FieldError(field, "\(text) is before 1900")], date) }
        if date > occurred { return ([FieldError(field, "\(text) is after the incident")], date) }
        return ([], date)
    }

    static let earliest = Date(timeIntervalSince1970: -2_208_988_800) // 1900-01-01T00:00:00Z

    static let london: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/London")!
        return calendar
    }()

    /// Parses YYYY-MM-DD strictly (real calendar dates only).
    public static func isoDate(_ text: String) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2])
        else { return nil }
        let components = DateComponents(year: y, month: m, day: d)
        guard let date = london.date(from: components) else { return nil }
        let back = london.dateComponents([.year, .month, .day], from: date)
        return back.year == y && back.month == m && back.day == d ? date : nil
    }

    /// Whole years between birth and a moment, on the London calendar.
    public static func age(born: Date, at moment: Date) -> Int? {
        london.dateComponents([.year], from: london.startOfDay(for: born), to: moment).year
    }
}

/// UK postcode format (the Royal Mail pattern, including GIR 0AA).
public enum UKPostcode {
    nonisolated(unsafe) private static let pattern =
        /^(GIR0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]([0-9ABEHMNPRV-Y])?|[0-9][A-HJKPS-UW])[0-9][ABD-HJLNP-UW-Z]{2})$/

    /// Upper-cased with one space before the inward code, or nil if it is not a postcode.
    public static func normalise(_ text: String) -> String? {
        let compact = text.uppercased().filter { !$0.isWhitespace }
        guard compact.count >= 5, compact.count <= 7, (try? pattern.wholeMatch(in: compact)) != nil else { return nil }
        return "\(compact.dropLast(3)) \(compact.suffix(3))"
    }
}
