import Foundation

// The school register school resolution keeps: every instance holds all of it, from the
// replicated topic `encompass.schools.register` (key: URN).

/// One establishment of the DfE register (Get Information About Schools), as school
/// resolution holds it.
public struct RegisteredSchool: Codable, Sendable, Equatable, Hashable {
    /// DfE unique reference number (6 digits), or the Ofsted reference of an early years setting
    /// that has none (a private or voluntary nursery, a childminder: `EY` and 6 digits).
    public var urn: String
    public var name: String
    /// DfE local authority code, e.g. `870` (Reading).
    public var localAuthorityCode: String
    public var localAuthorityName: String
    /// GIAS "EstablishmentStatus (name)": `Open`, `Closed`, `Open, but proposed to close`, `Proposed to open`.
    public var status: String
    /// DfE phase, e.g. `Primary`, `Secondary`, `Nursery`, `All-through`, `16 plus`, `Not applicable`.
    public var phase: String?
    /// GIAS "TypeOfEstablishment (name)", e.g. `Community school`, `Academy converter`.
    public var type: String?
    public var statutoryLowAge: Int?
    public var statutoryHighAge: Int?
    public var street: String?
    public var locality: String?
    public var town: String?
    public var postcode: String?
    /// ISO dates (YYYY-MM-DD).
    public var openDate: String?
    public var closeDate: String?
    /// Another URN of the same school (predecessor or successor), when the source says so.
    public var linkedURN: String?

    public init(
        urn: String, name: String, localAuthorityCode: String, localAuthorityName: String, status: String,
        phase: String? = nil, type: String? = nil, statutoryLowAge: Int? = nil, statutoryHighAge: Int? = nil,
        street: String? = nil, locality: String? = nil, town: String? = nil, postcode: String? = nil,
        openDate: String? = nil, closeDate: String? = nil, linkedURN: String? = nil
    ) {
        self.urn = urn
        self.name = name
        self.localAuthorityCode = localAuthorityCode
        self.localAuthorityName = localAuthorityName
        self.status = status
        self.phase = phase
        self.type = type
        self.statutoryLowAge = statutoryLowAge
        self.statutoryHighAge = statutoryHighAge
        self.street = street
        self.locality = locality
        self.town = town
        self.postcode = postcode
        self.openDate = openDate
        self.closeDate = closeDate
        self.linkedURN = linkedURN
    }

    /// An early years setting known by its Ofsted reference (`EY…`), not a school.
    public var isOfstedEarlyYears: Bool { SchoolReference.isEarlyYears(urn) }

    /// Open (including "open, but proposed to close").
    public var isOpen: Bool {
        let s = status.lowercased()
        return s.hasPrefix("open")
    }
}

/// `encompass.schools.register` (key: URN): the whole current state of one school in the
/// register — its DfE entry and the safeguarding contacts the MASH keeps for it — published by
/// the instance that took a register import or a contact edit, applied by every instance.
/// Carrying the whole state (not a change) makes applying it idempotent and lets the topic be
/// compacted by URN.
public struct SchoolRegisterUpdate: MessagePayload {
    public static let schema = "encompass.school-register-update"
    public static let schemaVersion = 1

    public var school: RegisteredSchool
    public var contacts: [SchoolContact]
    /// Where the change came from, e.g. `import:edubasealldata20261101.csv` or `contacts:http`.
    public var source: String
    public var updatedAt: Date
    /// Who changed the contacts, when known.
    public var updatedBy: String?

    public init(school: RegisteredSchool, contacts: [SchoolContact], source: String, updatedAt: Date, updatedBy: String? = nil) {
        self.school = school
        self.contacts = contacts
        self.source = source
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
    }

    public func validationErrors() -> [FieldError] {
        var errors: [FieldError] = []
        if !SchoolReference.isValid(school.urn) {
            errors.append(FieldError("school.urn", "must be a DfE URN (5 to 8 digits) or an Ofsted early years reference (EY and 6 digits)"))
        }
        if school.name.trimmingCharacters(in: .whitespaces).isEmpty { errors.append(FieldError("school.name", "must not be empty")) }
        if school.localAuthorityCode.isEmpty { errors.append(FieldError("school.localAuthorityCode", "must not be empty")) }
        for (i, contact) in contacts.enumerated() where contact.email == nil && contact.phone == nil {
            errors.append(FieldError("contacts[\(i)]", "needs an email or a phone number"))
        }
        return errors
    }
}

/// `encompass.schools.register` (key: `LA<code>`), beside the schools: the contacts the MASH
/// keeps for one local authority, whole (applied by every instance; an empty list removes them).
/// Roles: `encompass`, the LA's Operation Encompass contact, who takes the notice for a school
/// of that LA when no contact is held for the school itself (out-of-area schools); and
/// `education-otherwise`, the LA's designated contact for children not on a school roll.
public struct LocalAuthorityContacts: MessagePayload {
    public static let schema = "encompass.la-contacts"
    public static let schemaVersion = 1

    /// The roles a local authority's contact can have.
    public static let roles: Set<String> = [encompassRole, educationOtherwiseRole]
    public static let encompassRole = "encompass"
    public static let educationOtherwiseRole = "education-otherwise"

    /// DfE local authority code, e.g. `850` (Hampshire).
    public var laCode: String
    public var contacts: [SchoolContact]
    /// Where the change came from, e.g. `la-contacts:la-contacts.csv`.
    public var source: String
    public var updatedAt: Date

    public init(laCode: String, contacts: [SchoolContact], source: String, updatedAt: Date) {
        self.laCode = laCode
        self.contacts = contacts
        self.source = source
        self.updatedAt = updatedAt
    }

    /// The register topic's key for a local authority.
    public static func key(_ laCode: String) -> String { "LA" + laCode }

    public func validationErrors() -> [FieldError] {
        var errors: [FieldError] = []
        if laCode.count != 3 || !laCode.allSatisfy({ $0.isASCII && $0.isNumber }) {
            errors.append(FieldError("laCode", "'\(laCode)' is not a DfE local authority code (3 digits, e.g. 850)"))
        }
        for (i, contact) in contacts.enumerated() {
            if !Self.roles.contains(contact.role) {
                errors.append(FieldError("contacts[\(i)].role", "'\(contact.role)' is not encompass or education-otherwise"))
            }
            if contact.email == nil && contact.phone == nil { errors.append(FieldError("contacts[\(i)]", "needs an email or a phone number")) }
        }
        return errors
    }
}

// School resolution's API for CSC answers held for a MASH officer (the CLI and the console
// decode these; school resolution encodes them).

/// `GET /v1/requests/export?format=json`: one instance's open requests to Children's Social
/// Care as the sheet's cells (raw: the writer of the sheet neutralises formula-like cells).
/// A scaled group's sheet is written from every instance's rows.
public struct CSCRequestRows: Codable, Sendable, Equatable {
    public var header: [String]
    public var rows: [[String]]
    /// The exporting instance's day by its service clock (London), which names the sheet's
    /// file: a simulated or replayed day writes that day's file, not the machine's.
    public var day: CalendarDate?

    public init(header: [String], rows: [[String]], day: CalendarDate? = nil) {
        self.header = header
        self.rows = rows
        self.day = day
    }
}

/// `GET /v1/requests/held`: CSC answers waiting for a MASH officer (the school CSC named
/// conflicts with the child's recorded age).
public struct HeldAnswers: Codable, Sendable, Equatable {
    public var held: [HeldAnswer]

    public init(held: [HeldAnswer]) { self.held = held }
}

public struct HeldAnswer: Codable, Sendable, Equatable {
    public var requestId: String
    public var lpa: String
    public var forceCode: String
    public var occurrenceNumber: String
    public var childName: String
    public var dateOfBirth: String?
    /// The school Children's Social Care named, and why it was not notified at once.
    public var school: RecordedSchool?
    public var reason: String
    public var note: String?
    public var updatedAt: Date

    public init(
        requestId: String, lpa: String, forceCode: String, occurrenceNumber: String, childName: String, dateOfBirth: String?,
        school: RecordedSchool?, reason: String, note: String?, updatedAt: Date
    ) {
        self.requestId = requestId
        self.lpa = lpa
        self.forceCode = forceCode
        self.occurrenceNumber = occurrenceNumber
        self.childName = childName
        self.dateOfBirth = dateOfBirth
        self.school = school
        self.reason = reason
        self.note = note
        self.updatedAt = updatedAt
    }
}

/// `POST /v1/requests/{id}/accept|decline`.
public struct HeldDecision: Codable, Sendable, Equatable {
    public var reviewer: String
    public var note: String?

    public init(reviewer: String, note: String? = nil) {
        self.reviewer = reviewer
        self.note = note
    }
}

/// The references a school or setting is known by: a DfE URN (5 to 8 digits) or, for early
/// years settings on Ofsted's register without a URN (private and voluntary nurseries,
/// childminders), an Ofsted reference `EY` and 6 digits.
public enum SchoolReference {
    public static func isURN(_ text: String) -> Bool { (5...8).contains(text.count) && text.allSatisfy { $0.isASCII && $0.isNumber } }

    public static func isEarlyYears(_ text: String) -> Bool {
        text.count == 8 && text.hasPrefix("EY") && text.dropFirst(2).allSatisfy { $0.isASCII && $0.isNumber }
    }

    public static func isValid(_ text: String) -> Bool { isURN(text) || isEarlyYears(text) }

    /// `146275.0` → `146275`; `ey123456` → `EY123456`.
    public static func clean(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.lowercased().hasPrefix("ey") { return trimmed.uppercased() }
        return trimmed.hasSuffix(".0") ? String(trimmed.dropLast(2)) : trimmed
    }
}

/// `GET /v1/la-contacts` (school resolution): every local authority's contacts as the MASH
/// imported them, for `encompass schools la-contacts list` and the console's page.
public struct LAContactsList: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var laCode: String
        /// The LA's name in the register, when it holds schools of the LA.
        public var localAuthority: String?
        public var contacts: [SchoolContact]
        /// When the contacts were last imported.
        public var updatedAt: Date
        /// The import they came from, e.g. `la-contacts:la-contacts.csv`.
        public var source: String?

        public init(laCode: String, localAuthority: String?, contacts: [SchoolContact], updatedAt: Date, source: String? = nil) {
            self.laCode = laCode
            self.localAuthority = localAuthority
            self.contacts = contacts
            self.updatedAt = updatedAt
            self.source = source
        }
    }

    public var localAuthorities: [Entry]

    public init(localAuthorities: [Entry]) { self.localAuthorities = localAuthorities }
}
