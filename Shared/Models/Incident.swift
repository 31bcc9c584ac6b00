import Foundation

/// A UK postal address as police records hold it.
public struct PostalAddress: Codable, Sendable, Equatable, Hashable {
    public var lines: [String]
    public var town: String?
    public var county: String?
    public var postcode: String

    public init(lines: [String], town: String? = nil, county: String? = nil, postcode: String) {
        self.lines = lines
        self.town = town
        self.county = county
        self.postcode = postcode
    }
}

public enum RiskLevel: String, Codable, Sendable, CaseIterable {
    case standard, medium, high
}

public enum PartyRole: String, Codable, Sendable, CaseIterable {
    case victim, suspect, other
}

/// An adult (or other person) linked to the incident.
public struct Party: Codable, Sendable, Equatable {
    public var role: PartyRole
    public var givenName: String
    public var familyName: String
    /// ISO date (YYYY-MM-DD), when known.
    public var dateOfBirth: String?
    public var address: PostalAddress?

    public init(role: PartyRole, givenName: String, familyName: String, dateOfBirth: String? = nil, address: PostalAddress? = nil) {
        self.role = role
        self.givenName = givenName
        self.familyName = familyName
        self.dateOfBirth = dateOfBirth
        self.address = address
    }
}

public enum ChildPresence: String, Codable, Sendable, CaseIterable {
    case present, witness, involved
}

/// The school as the officer recorded it: free text and/or a URN, unverified.
public struct RecordedSchool: Codable, Sendable, Equatable {
    public var name: String?
    public var urn: String?

    public init(name: String? = nil, urn: String? = nil) {
        self.name = name
        self.urn = urn
    }
}

/// A child the officer linked to the incident.
public struct RecordedChild: Codable, Sendable, Equatable {
    public var givenName: String
    public var familyName: String
    /// ISO date (YYYY-MM-DD), when known.
    public var dateOfBirth: String?
    /// Age in whole years when the date of birth is unknown.
    public var ageYears: Int?
    public var homeAddress: PostalAddress?
    public var presence: ChildPresence
    public var school: RecordedSchool?

    public init(
        givenName: String, familyName: String, dateOfBirth: String? = nil, ageYears: Int? = nil,
        homeAddress: PostalAddress? = nil, presence: ChildPresence = .present, school: RecordedSchool? = nil
    ) {
        self.givenName = givenName
        self.familyName = familyName
        self.dateOfBirth = dateOfBirth
        self.ageYears = ageYears
        self.homeAddress = homeAddress
        self.presence = presence
        self.school = school
    }
}

/// A domestic abuse incident as submitted to intake (HTTP, spreadsheet or records feed).
/// Documented in docs/schemas/incident.schema.json.
public struct Incident: MessagePayload {
    public static let schema = "encompass.incident"
    public static let schemaVersion = 1

    public var occurrenceNumber: String
    public var forceCode: String
    /// When it happened. Local times without an offset are read as Europe/London.
    public var occurredAt: Date
    public var reportedAt: Date
    public var incidentAddress: PostalAddress
    public var localPolicingArea: String?
    public var riskLevel: RiskLevel
    public var crime: Bool
    public var parties: [Party]
    public var children: [RecordedChild]
    /// Brief circumstances in the officer's words (free text). A notice shows it only where the
    /// force's protocol lists the field `circumstances` (Cambridgeshire); never Thames Valley.
    public var circumstances: String?
    /// "Any other relevant safeguarding information" (free text), shown only where the force's
    /// protocol lists the field `safeguardingInformation` (Cambridgeshire).
    public var safeguardingInformation: String?

    public init(
        occurrenceNumber: String, forceCode: String, occurredAt: Date, reportedAt: Date, incidentAddress: PostalAddress,
        localPolicingArea: String? = nil, riskLevel: RiskLevel, crime: Bool, parties: [Party] = [], children: [RecordedChild] = [],
        circumstances: String? = nil, safeguardingInformation: String? = nil
    ) {
        self.occurrenceNumber = occurrenceNumber
        self.forceCode = forceCode
        self.occurredAt = occurredAt
        self.reportedAt = reportedAt
        self.incidentAddress = incidentAddress
        self.localPolicingArea = localPolicingArea
        self.riskLevel = riskLevel
        self.crime = crime
        self.parties = parties
        self.children = children
        self.circumstances = circumstances
        self.safeguardingInformation = safeguardingInformation
    }
}

/// What intake publishes on `encompass.incidents`: each new occurrence, and each changed
/// version of it (an amendment) with what changed. Exact replays are not published.
public struct IncidentRecorded: MessagePayload {
    public static let schema = "encompass.incident-recorded"
    public static let schemaVersion = 1

    public enum Kind: String, Codable, Sendable { case new, amendment }

    public var kind: Kind
    /// 1 for the first version of the occurrence, +1 per amendment.
    public var revision: Int
    /// Human-readable list of changed parts, e.g. `children added: 1`. Empty for `new`.
    public var changes: [String]
    /// Where it came from: `http`, `spreadsheet:<file>`, `feed`.
    public var source: String
    public var incident: Incident

    public init(kind: Kind, revision: Int, changes: [String], source: String, incident: Incident) {
        self.kind = kind
        self.revision = revision
        self.changes = changes
        self.source = source
        self.incident = incident
    }
}

/// A past incident for child research's history index, published by intake's history import
/// on `encompass.history` (key: occurrence number). Its id is derived from its content, so
/// importing the same file twice changes nothing downstream.
public struct HistoricalIncident: MessagePayload {
    public static let schema = "encompass.history-incident"
    public static let schemaVersion = 1

    /// The import it came from, e.g. `history:niche-2019-2025.jsonl`.
    public var source: String
    public var incident: Incident

    public init(source: String, incident: Incident) {
        self.source = source
        self.incident = incident
    }
}
