import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import ServiceRuntime
import Spreadsheets

/// Register imports and contact edits taken on one instance: compared with this instance's
/// copy of the register and published on `encompass.schools.register` (key URN), which every
/// instance (this one included) applies.
public enum RegisterDesk {
    public struct ImportAnswer: Codable, Sendable {
        public struct Rejected: Codable, Sendable {
            public var row: Int
            public var reason: String
        }
        public var file: String
        public var layout: String
        public var schools: Int
        public var published: Int
        public var unchanged: Int
        public var rejectedRows: [Rejected]
        public var notices: [String]
    }

    /// Publishes every new or changed school of a register file (contacts are kept).
    public static func importRegister(_ file: RegisterFile, name: String, db: Database, outbox: Outbox, now: Date) throws -> ImportAnswer {
        var published = 0, unchanged = 0
        let batch = MessageID.fresh()
        for imported in file.schools {
            var school = imported
            let existing = try SchoolRow.fetchOne(db, key: school.urn)
            // The GIAS download has no links column (links come in a separate file): keep a
            // predecessor/successor link the register already knows.
            if school.linkedURN == nil { school.linkedURN = existing?.linkedURN }
            if let existing, existing.school == school {
                unchanged += 1
                continue
            }
            let update = SchoolRegisterUpdate(
                school: school, contacts: try SchoolStore.contacts(db, urn: school.urn),
                source: "import:\(name)", updatedAt: now)
            try outbox.publish(
                update, to: Topics.schoolRegister.name, key: school.urn,
                id: MessageID.derived(from: batch, school.urn), now: now)
            published += 1
        }
        return ImportAnswer(
            file: name, layout: file.layout.rawValue, schools: file.schools.count, published: published, unchanged: unchanged,
            rejectedRows: file.rejected.map { .init(row: $0.row, reason: $0.reason) }, notices: file.notices)
    }

    /// Problems with a contact list (empty when it can be used).
    public static func problems(_ contacts: [SchoolContact]) -> [FieldError] {
        var errors: [FieldError] = []
        for (i, c) in contacts.enumerated() {
            if c.role.trimmingCharacters(in: .whitespaces).isEmpty {
                errors.append(FieldError("contacts[\(i)].role", "must not be empty (dsl, deputy-dsl, da-lead, office…)"))
            }
            if c.email == nil && c.phone == nil { errors.append(FieldError("contacts[\(i)]", "needs an email or a phone number")) }
            if let email = c.email, !isEmail(email) { errors.append(FieldError("contacts[\(i)].email", "'\(email)' is not an email address")) }
            if let phone = c.phone, phone.filter(\.isNumber).count < 10 || !phone.allSatisfy({ $0.isNumber || " +()-".contains($0) }) {
                errors.append(FieldError("contacts[\(i)].phone", "'\(phone)' is not a UK phone number"))
            }
        }
        return errors
    }

    static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix(".") else { return false }
        return !text.contains(where: { $0.isWhitespace || $0 == "," || $0 == ";" || $0 == "<" || $0 == ">" })
    }

    /// Replaces one school's contacts (published for every instance).
    public static func setContacts(urn: String, contacts: [SchoolContact], by: String?, source: String, db: Database, outbox: Outbox, now: Date)
        throws -> Bool
    {
        guard let row = try SchoolRow.fetchOne(db, key: urn) else { return false }
        let update = SchoolRegisterUpdate(school: row.school, contacts: contacts, source: source, updatedAt: now, updatedBy: by)
        try outbox.publish(update, to: Topics.schoolRegister.name, key: urn, id: MessageID.fresh(), now: now)
        return true
    }

    /// A contacts sheet (CSV or XLSX): columns `urn`, `role`, and `email` and/or `phone`
    /// (optional `name`). Every school named in it gets exactly the listed contacts.
    public static func contactsSheet(_ data: Data) throws -> (byURN: [String: [SchoolContact]], rejected: [(row: Int, reason: String)]) {
        let sheet = try SpreadsheetReader.read(data)
        let missing = ["urn", "role"].filter { !sheet.headers.contains($0) }
        guard missing.isEmpty else {
            throw SheetError("missing column(s): \(missing.joined(separator: ", ")); expected urn, role, name, email, phone")
        }
        guard sheet.headers.contains("email") || sheet.headers.contains("phone") else { throw SheetError("needs an email or a phone column") }
        var byURN: [String: [SchoolContact]] = [:]
        var rejected: [(Int, String)] = []
        for row in sheet.rows {
            if let problem = row.problem {
                rejected.append((row.number, problem))
                continue
            }
            func cell(_ key: String) -> String? { row.cells[key].map(SheetWriter.restore)?.nilIfEmpty }
            guard let urn = cell("urn").map(RegisterImporter.cleanURN), RegisterImporter.isURN(urn) else {
                rejected.append((row.number, "urn is missing or not a URN"))
                continue
            }
            let contact = SchoolContact(role: cell("role") ?? "", name: cell("name"), email: cell("email"), phone: cell("phone"))
            let errors = problems([contact])
            guard errors.isEmpty else {
                rejected.append((row.number, errors.map { $0.message }.joined(separator: "; ")))
                continue
            }
            byURN[urn, default: []].append(contact)
        }
        return (byURN, rejected)
    }

    /// A local authorities' contacts sheet (CSV or XLSX): columns `la_code`, `role` (`encompass`
    /// or `education-otherwise`), and `email` and/or `phone` (optional `name`). Every local
    /// authority named in it gets exactly the listed contacts.
    public static func laContactsSheet(_ data: Data) throws -> (byLA: [String: [SchoolContact]], rejected: [(row: Int, reason: String)]) {
        let sheet = try SpreadsheetReader.read(data)
        let missing = ["la_code", "role"].filter { !sheet.headers.contains($0) }
        guard missing.isEmpty else {
            throw SheetError("missing column(s): \(missing.joined(separator: ", ")); expected la_code, role, name, email, phone")
        }
        guard sheet.headers.contains("email") || sheet.headers.contains("phone") else { throw SheetError("needs an email or a phone column") }
        var byLA: [String: [SchoolContact]] = [:]
        var rejected: [(Int, String)] = []
        for row in sheet.rows {
            if let problem = row.problem {
                rejected.append((row.number, problem))
                continue
            }
            func cell(_ key: String) -> String? { row.cells[key].map(SheetWriter.restore)?.trimmingCharacters(in: .whitespaces).nilIfEmpty }
            guard let code = cell("la_code").map(RegisterImporter.cleanURN), code.count == 3, code.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                rejected.append((row.number, "la_code is missing or not a DfE local authority code (3 digits, e.g. 850)"))
                continue
            }
            let role = cell("role")?.lowercased() ?? ""
            guard LocalAuthorityContacts.roles.contains(role) else {
                rejected.append(
                    (
                        row.number,
                        "role '\(role)' is not encompass (the LA's Operation Encompass contact) or education-otherwise (children not on a school roll)"
                    ))
                continue
            }
            let contact = SchoolContact(role: role, name: cell("name"), email: cell("email"), phone: cell("phone"))
            let errors = problems([contact])
            guard errors.isEmpty else {
                rejected.append((row.number, errors.map { $0.message }.joined(separator: "; ")))
                continue
            }
            byLA[code, default: []].append(contact)
        }
        return (byLA, rejected)
    }

    /// Publishes a local authority's contacts for every instance (itself included) to apply.
    public static func setLAContacts(laCode: String, contacts: [SchoolContact], source: String, outbox: Outbox, now: Date) throws {
        try outbox.publish(
            LocalAuthorityContacts(laCode: laCode, contacts: contacts, source: source, updatedAt: now),
            to: Topics.schoolRegister.name, key: LocalAuthorityContacts.key(laCode), id: MessageID.fresh(), now: now)
    }
}
