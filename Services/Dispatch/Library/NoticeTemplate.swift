import EncompassModels
import Foundation

/// A field a force's protocol may allow on a notice. Nothing else about an incident can ever
/// reach a school: the renderer reads only the fields listed in the protocol's `fields`.
public enum NoticeField: String, Codable, Sendable, CaseIterable {
    case occurredAt, childName, childAge, dateOfBirth, homeAddress, incidentAddress, occurrenceNumber
    /// Brief circumstances (Cambridgeshire): how the child was present, and the officer's own
    /// brief circumstances where the incident has them (`Incident.circumstances`).
    case circumstances
    /// The child's relationship to the adults, as recorded (Cambridgeshire).
    case relationships
    /// "Any other relevant safeguarding information" in the officer's words
    /// (`Incident.safeguardingInformation`, Cambridgeshire).
    case safeguardingInformation

    public var label: String {
        switch self {
        case .occurredAt: "Date and time of incident"
        case .childName: "Child's name"
        case .childAge: "Child's age"
        case .dateOfBirth: "Date of birth"
        case .homeAddress: "Home address"
        case .incidentAddress: "Incident address"
        case .occurrenceNumber: "Police occurrence number"
        case .circumstances: "Brief circumstances"
        case .relationships: "Relationships"
        case .safeguardingInformation: "Other relevant safeguarding information"
        }
    }
}

/// A force's `dispatch` protocol section: what a notice may say and how it is sent.
public struct DispatchProtocol: Codable, Sendable, Equatable {
    public struct EmailWording: Codable, Sendable, Equatable {
        /// May use `{schoolName}`; never personal data.
        public var subject: String
        /// Paragraphs; may use `{schoolName}`, `{link}`, `{expiresAt}`.
        public var body: [String]
    }

    public var title: String
    /// The only incident fields a notice shows, in this order.
    public var fields: [NoticeField]
    /// The protocol's standard paragraphs, shown under the fields.
    public var standardWording: [String]
    public var email: EmailWording
    /// How long a notice link works.
    public var linkExpiryHours: Int
    /// `HH:MM` London time on the release day by which a notice must be acknowledged, else it
    /// is flagged for MASH follow-up.
    public var acknowledgeByLocalTime: String
    /// Shown as the mail's sender name and on the page.
    public var senderName: String

    /// The acknowledgement deadline as (hour, minute).
    public var acknowledgeBy: (hour: Int, minute: Int)? {
        let parts = acknowledgeByLocalTime.split(separator: ":")
        guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0..<24).contains(h), (0..<60).contains(m) else { return nil }
        return (h, m)
    }

    func problems() -> [String] {
        var problems: [String] = []
        if fields.isEmpty { problems.append("\"fields\" is empty") }
        if Set(fields).count != fields.count { problems.append("\"fields\" repeats a field") }
        if linkExpiryHours < 1 || linkExpiryHours > 24 * 31 { problems.append("\"linkExpiryHours\" must be 1...744") }
        if acknowledgeBy == nil { problems.append("\"acknowledgeByLocalTime\" must be HH:MM") }
        if !email.body.joined().contains("{link}") { problems.append("\"email.body\" must contain {link}") }
        for placeholder in ["{childName}", "{occurrenceNumber}", "{homeAddress}", "{incidentAddress}"]
        where (email.subject + email.body.joined()).contains(placeholder) {
            problems.append("the email may not carry personal data (\(placeholder)); it only links to the notice page")
        }
        return problems
    }
}

/// Every force's dispatch protocol, by force code.
public struct DispatchProtocols: Sendable {
    public let byForce: [String: DispatchProtocol]
    public let forceNames: [String: String]

    public init(byForce: [String: DispatchProtocol], forceNames: [String: String] = [:]) {
        self.byForce = byForce
        self.forceNames = forceNames
    }

    public subscript(forceCode: String) -> DispatchProtocol? { byForce[forceCode] }

    /// Reads the `dispatch` section of every force protocol (forces without one cannot be dispatched).
    public static func load(_ protocols: ForceProtocols) throws(ForceProtocolError) -> DispatchProtocols {
        var byForce: [String: DispatchProtocol] = [:]
        var names: [String: String] = [:]
        for (code, force) in protocols.byCode where force.hasSection("dispatch") {
            let section = try force.section("dispatch", as: DispatchProtocol.self)
            let problems = section.problems()
            guard problems.isEmpty else {
                throw ForceProtocolError(path: force.path, problem: "section \"dispatch\": " + problems.joined(separator: "; "))
            }
            byForce[code] = section
            names[code] = force.name
        }
        return DispatchProtocols(byForce: byForce, forceNames: names)
    }
}

extension NoticeContent {
    /// Renders `due` under `protocol`. Each allowed field is read on its own; nothing is read
    /// for a field the protocol does not list, so no other detail of the incident can leak.
    public static func render(_ due: NoticeDue, under rules: DispatchProtocol) -> NoticeContent {
        let request = due.request
        var lines: [Line] = []
        for field in rules.fields {
            lines.append(Line(field: field.rawValue, label: field.label, value: value(of: field, in: request)))
        }
        return NoticeContent(
            title: rules.title, senderName: rules.senderName, schoolName: request.school.name,
            schoolURN: request.school.urn, lines: lines, wording: rules.standardWording)
    }

    static func value(of field: NoticeField, in request: NoticeRequested) -> String {
        let child = request.child
        let incident = request.incident
        switch field {
        case .occurredAt:
            return NoticeFormat.dateTime(incident.occurredAt)
        case .childName:
            return "\(child.givenName) \(child.familyName)"
        case .childAge:
            return child.age(on: incident.occurredAt).map { "\($0) \($0 == 1 ? "year" : "years")" } ?? "not known"
        case .dateOfBirth:
            return child.dateOfBirth.flatMap(CalendarDate.init(iso:)).map(NoticeFormat.day) ?? "not known"
        case .homeAddress:
            return child.homeAddress.map(NoticeFormat.address) ?? "not known"
        case .incidentAddress:
            return NoticeFormat.address(incident.incidentAddress)
        case .occurrenceNumber:
            return incident.occurrenceNumber
        case .circumstances:
            let how: String
            switch child.presence {
            case .present: how = "was present"
            case .witness: how = "witnessed it"
            case .involved: how = "was involved"
            }
            let presence = "Police attended a domestic abuse incident; the child \(how)."
            return incident.circumstances.map { "\(presence) \($0)" } ?? presence
        case .relationships:
            return child.relationship ?? "not recorded"
        case .safeguardingInformation:
            return incident.safeguardingInformation ?? "none recorded"
        }
    }
}

/// Dates and addresses as a person reads them (Europe/London).
public enum NoticeFormat {
    public static func dateTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.calendar = CalendarDate.london
        formatter.timeZone = CalendarDate.london.timeZone
        formatter.locale = Locale(identifier: "en_GB_POSIX")
        formatter.dateFormat = "EEEE d MMMM yyyy 'at' HH:mm"
        return formatter.string(from: date)
    }

    public static func day(_ date: CalendarDate) -> String {
        let formatter = DateFormatter()
        formatter.calendar = CalendarDate.london
        formatter.timeZone = CalendarDate.london.timeZone
        formatter.locale = Locale(identifier: "en_GB_POSIX")
        formatter.dateFormat = "d MMMM yyyy"
        return formatter.string(from: date.at(hour: 12))
    }

    public static func address(_ address: PostalAddress) -> String {
        (address.lines + [address.town, address.county].compactMap { $0 } + [address.postcode])
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: ", ")
    }
}

/// The email that announces a notice: only the school's name, the link and its expiry.
public struct NoticeEmail: Sendable, Equatable {
    public var subject: String
    public var body: String

    public static func render(_ rules: DispatchProtocol, schoolName: String, link: String, expiresAt: Date) -> NoticeEmail {
        func fill(_ text: String) -> String {
            text.replacingOccurrences(of: "{schoolName}", with: schoolName)
                .replacingOccurrences(of: "{link}", with: link)
                .replacingOccurrences(of: "{expiresAt}", with: NoticeFormat.dateTime(expiresAt))
        }
        return NoticeEmail(subject: fill(rules.email.subject), body: rules.email.body.map(fill).joined(separator: "\n\n"))
    }
}
