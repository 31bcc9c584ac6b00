import EncompassModels
import Foundation

/// Checks an incident against the intake rules. Every problem is reported with its field path,
/// so a caller can fix them all at once.
public struct IncidentValidator: Sendable {
    public let forces: ForceRegistry
    /// Clock skew tolerated for "not in the future".
    public var tolerance: TimeInterval = 300

    public init(forces: ForceRegistry) { self.forces = forces }

    public func validate(_ incident: Incident, now: Date) -> [FieldError] {
        var errors: [FieldError] = []
        let force = forces.forces[incident.forceCode]
        if force == nil {
            errors.append(FieldError("forceCode", "unknown force '\(incident.forceCode)'; known: \(forces.forces.keys.sorted().joined(separator: ", "))"))
        }
        let occurrence = incident.occurrenceNumber.trimmingCharacters(in: .whitespaces)
        if occurrence.isEmpty {
            errors.append(FieldError("occurrenceNumber", "required"))
        } else if let force, !forces.matchesOccurrence(occurrence, force: force.code) {
            errors.append(FieldError("occurrenceNumber", "'\(occurrence)' is not a \(force.name) occurrence number (\(force.occurrenceFormat))"))
        }
        errors += checkInstant(incident.occurredAt, field: "occurredAt", now: now)
        errors += checkInstant(incident.reportedAt, field: "reportedAt", now: now)
        if incident.reportedAt < incident.occurredAt.addingTimeInterval(-tolerance) {
            errors.append(FieldError("reportedAt", "is before occurredAt"))
        }
        errors += checkAddress(incident.incidentAddress, field: "incidentAddress")
        if let lpa = incident.localPolicingArea, let force, !force.localPolicingAreas.isEmpty,
           !force.localPolicingAreas.contains(where: { $0.caseInsensitiveCompare(lpa) == .orderedSame }) {
            errors.append(FieldError("localPolicingArea", "'\(lpa)' is not a \(force.name) LPA; expected one of: \(force.localPolicingAreas.joined(separator: ", "))"))
        }
        for (i, party) in incident.parties.enumerated() {
            let path = "parties[\(i)]"
            errors += checkName(party.givenName, field: "\(path).givenName")
            errors += checkName(party.familyName, field: "\(path).familyName")
            if let dob = party.dateOfBirth { errors += checkDateOfBirth(dob, field: "\(path).dateOfBirth", before: incident.occurredAt).errors }
            if let address = party.address { errors += checkAddress(address, field: "\(path).address") }
        }
        for (i, child) in incident.children.enumerated() {
            let path = "children[\(i)]"
            errors += checkName(child.givenName, field: "\(path).givenName")
            errors += checkName(child.familyName, field: "\(path).familyName")
            if let dob = child.dateOfBirth {
                let (problems, date) = checkDateOfBirth(dob, field: "\(path).dateOfBirth", before: incident.occurredAt)
                errors += problems
                if let date, let age = Self.age(born: date, at: incident.occurredAt), age >= 18 {
                    errors.append(FieldError("\(path).dateOfBirth", "child was \(age) at the incident; Operation Encompass covers children under 18"))
                }
            } else if let age = child.ageYears {
                if !(0...17).contains(age) { errors.append(FieldError("\(path).ageYears", "\(age) is not a child's age (0 to 17)")) }
            } else {
                errors.append(FieldError("\(path)", "needs dateOfBirth or ageYears"))
            }
            if let address = child.homeAddress { errors += checkAddress(address, field: "\(path).homeAddress") }
            if let urn = child.school?.urn, !urn.isEmpty, !(urn.count == 6 && urn.allSatisfy { $0.isASCII && $0.isNumber }), !SchoolReference.isEarlyYears(urn) {
                errors.append(FieldError("\(path).school.urn", "'\(urn)' is not a school URN (6 digits) or an Ofsted early years reference (EY and 6 digits)"))
            }
        }
        return errors
    }

    private func checkInstant(_ date: Date, field: String, now: Date) -> [FieldError] {
        if date > now.addingTimeInterval(tolerance) { return [FieldError(field, "\(Timestamp.format(date)) is in the future")] }
        if date < Self.earliest { return [FieldError(field, "\(Timestamp.format(date)) is before 1900")] }
        return []
    }

    private func checkName(_ name: String, field: String) -> [FieldError] {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return [FieldError(field, "required")] }
        if trimmed.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) {
            return [FieldError(field, "contains control characters")]
        }
        return []
    }

    private func checkAddress(_ address: PostalAddress, field: String) -> [FieldError] {
        var errors: [FieldError] = []
        if address.lines.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            errors.append(FieldError("\(field).lines", "at least one address line is required"))
        }
        if UKPostcode.normalise(address.postcode) == nil {
            errors.append(FieldError("\(field).postcode", "'\(address.postcode)' is not a UK postcode"))
        }
        return errors
    }

    private func checkDateOfBirth(_ text: String, field: String, before occurred: Date) -> (errors: [FieldError], date: Date?) {
        guard let date = Self.isoDate(text) else { return ([FieldError(field, "'\(text)' is not a date (YYYY-MM-DD)")], nil) }
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
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]) else { return nil }
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
    nonisolated(unsafe) private static let pattern = /^(GIR0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]([0-9ABEHMNPRV-Y])?|[0-9][A-HJKPS-UW])[0-9][ABD-HJLNP-UW-Z]{2})$/

    /// Upper-cased with one space before the inward code, or nil if it is not a postcode.
    public static func normalise(_ text: String) -> String? {
        let compact = text.uppercased().filter { !$0.isWhitespace }
        guard compact.count >= 5, compact.count <= 7, (try? pattern.wholeMatch(in: compact)) != nil else { return nil }
        return "\(compact.dropLast(3)) \(compact.suffix(3))"
    }
}
