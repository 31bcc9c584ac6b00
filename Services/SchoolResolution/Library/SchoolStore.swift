import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// One school of the register (table `school`); every instance holds all of them.
public struct SchoolRow: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "school"
    public var urn: String
    public var name: String
    public var localAuthorityCode: String
    public var localAuthorityName: String
    public var status: String
    public var phase: String?
    public var type: String?
    public var statutoryLowAge: Int?
    public var statutoryHighAge: Int?
    public var street: String?
    public var locality: String?
    public var town: String?
    public var postcode: String?
    public var openDate: String?
    public var closeDate: String?
    public var linkedURN: String?
    /// Where the entry came from (`seed:…`, `import:FILE`, `contacts:http`).
    public var source: String
    public var updatedAt: Date

    public init(_ s: RegisteredSchool, source: String, updatedAt: Date) {
        urn = s.urn
        name = s.name
        localAuthorityCode = s.localAuthorityCode
        localAuthorityName = s.localAuthorityName
        status = s.status
        phase = s.phase
        type = s.type
        statutoryLowAge = s.statutoryLowAge
        statutoryHighAge = s.statutoryHighAge
        street = s.street
        locality = s.locality
        town = s.town
        postcode = s.postcode
        openDate = s.openDate
        closeDate = s.closeDate
        linkedURN = s.linkedURN
        self.source = source
        self.updatedAt = updatedAt
    }

    public var school: RegisteredSchool {
        RegisteredSchool(
            urn: urn, name: name, localAuthorityCode: localAuthorityCode, localAuthorityName: localAuthorityName,
            status: status, phase: phase, type: type, statutoryLowAge: statutoryLowAge, statutoryHighAge: statutoryHighAge,
            street: street, locality: locality, town: town, postcode: postcode, openDate: openDate,
            closeDate: closeDate, linkedURN: linkedURN)
    }
}

/// A safeguarding contact of a school (table `schoolContact`), kept by the MASH.
public struct SchoolContactRow: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "schoolContact"
    public var urn: String
    public var position: Int
    public var role: String
    public var name: String?
    public var email: String?
    public var phone: String?

    public var contact: SchoolContact { SchoolContact(role: role, name: name, email: email, phone: phone) }
}

/// A contact the MASH keeps for a local authority (table `laContact`, school-resolution-v4):
/// its Operation Encompass contact (`encompass`) and its contact for children not on a school
/// roll (`education-otherwise`). Every instance holds all.
public struct LAContactRow: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "laContact"
    public var laCode: String
    public var position: Int
    public var role: String
    public var name: String?
    public var email: String?
    public var phone: String?
    public var source: String
    public var updatedAt: Date

    public var contact: SchoolContact { SchoolContact(role: role, name: name, email: email, phone: phone) }
}

/// The school verified for a child (table `childSchool`): "the one previously held".
public struct ChildSchoolRow: Codable, FetchableRecord, ReplaceableRecord, Sendable, Equatable {
    public static let databaseTableName = "childSchool"
    public var childId: String
    public var urn: String
    public var noticeId: String
    public var verifiedAt: Date
    /// The day of the incident the school was verified for, and the child's home postcode then
    /// (school-resolution-v2; nil on older rows): the school is evidence as of that day.
    public var incidentDay: String?
    public var homePostcode: String?
    public var occurrenceNumber: String?

    public init(
        childId: String, urn: String, noticeId: String, verifiedAt: Date, incidentDay: String? = nil, homePostcode: String? = nil,
        occurrenceNumber: String? = nil
    ) {
        self.childId = childId
        self.urn = urn
        self.noticeId = noticeId
        self.verifiedAt = verifiedAt
        self.incidentDay = incidentDay
        self.homePostcode = homePostcode
        self.occurrenceNumber = occurrenceNumber
    }

    /// As a held school for resolution: evidence as of the incident it was verified for.
    public var held: HeldSchool {
        HeldSchool(
            urn: urn,
            origin: SchoolRecordOrigin(
                occurrenceNumber: occurrenceNumber ?? "notice \(noticeId)",
                recordedOn: incidentDay ?? CalendarDate(verifiedAt).description, homePostcode: homePostcode))
    }
}

/// A school that told us the child no longer attends (table `childSchoolBlock`): never again
/// notified about that child.
public struct ChildSchoolBlockRow: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "childSchoolBlock"
    public var childId: String
    public var urn: String
    public var noticeId: String
    public var reportedBy: String
    public var reportedAt: Date
    public var note: String?
}

/// The latest outcome per notice (table `resolution`): notice, not-notified or request, and why.
public struct ResolutionRow: Codable, FetchableRecord, ReplaceableRecord, Sendable, Equatable {
    public static let databaseTableName = "resolution"
    public var noticeId: String
    public var childId: String
    public var forceCode: String
    public var occurrenceNumber: String
    public var incidentRevision: Int
    /// `notice`, `not-notified`, `request`.
    public var outcome: String
    public var urn: String?
    /// JSON array of strings.
    public var reasons: String
    public var updatedAt: Date
    /// With outcome `notice`: the `NoticeRequested` envelope as published (school-resolution-v3),
    /// so that a notice whose school says the pupil no longer attends can be redirected. Purged
    /// with the other personal data (nil then, and on older rows).
    public var request: Data? = nil

    public var reasonList: [String] { (try? JSONDecoder().decode([String].self, from: Data(reasons.utf8))) ?? [] }

    /// The child of the notice, as the request carried it (nil when not held).
    public var childIdentified: ChildIdentified? {
        guard let request, !request.isEmpty, let envelope = try? WireFormat.decode(NoticeRequested.self, from: Array(request)) else { return nil }
        let notice = envelope.payload
        return ChildIdentified(incident: notice.incident, incidentRevision: notice.incidentRevision, child: notice.child, source: notice.childSource)
    }
}

/// A child without a verified school, waiting for Children's Social Care (table `schoolRequest`).
public struct SchoolRequestRow: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "schoolRequest"
    /// The notice id of the (incident, child).
    public var requestId: String
    public var childId: String
    public var forceCode: String
    public var occurrenceNumber: String
    /// The incident's local policing area (`unknown` when it has none).
    public var lpa: String
    public var reason: String
    /// JSON array of `MatchCandidate`.
    public var candidates: String
    /// The `ChildIdentified` payload (JSON, wire format), to carry on once a school is returned.
    public var child: Data
    /// The id of the message that caused the request.
    public var causationId: String
    /// `open`, `review` (Children's Social Care named a school that conflicts with the child's
    /// age: a MASH officer decides), `resolved` (notice requested), `closed` (verified, not
    /// notified), `superseded` (resolved by a later revision).
    public var status: String
    public var createdAt: Date
    public var updatedAt: Date
    public var exportedAt: Date?
    public var resolvedURN: String?
    public var note: String?
    /// With status `review`: the school Children's Social Care returned (JSON `RecordedSchool`)
    /// and why it needs a MASH officer (school-resolution-v2).
    public var reviewSchool: String?
    public var reviewReason: String?
    /// A redirect (school-resolution-v3): the notice whose school said the pupil no longer
    /// attends. This request's id is the redirect's own notice id.
    public var redirectOf: String? = nil

    public var candidateList: [MatchCandidate] { (try? JSONDecoder().decode([MatchCandidate].self, from: Data(candidates.utf8))) ?? [] }

    /// `reviewSchool` read back.
    public var heldSchool: RecordedSchool? {
        reviewSchool.flatMap { try? JSONDecoder().decode(RecordedSchool.self, from: Data($0.utf8)) }
    }

    public func childIdentified() throws -> ChildIdentified {
        try WireFormat.value(ChildIdentified.self, from: child)
    }
}

public enum SchoolStore {
    public static let migration = StoreMigration("school-resolution-v1") { db in
        try db.create(table: SchoolRow.databaseTableName) { t in
            t.primaryKey("urn", .text)
            t.column("name", .text).notNull()
            t.column("localAuthorityCode", .text).notNull().indexed()
            t.column("localAuthorityName", .text).notNull()
            t.column("status", .text).notNull()
            t.column("phase", .text)
            t.column("type", .text)
            t.column("statutoryLowAge", .integer)
            t.column("statutoryHighAge", .integer)
            t.column("street", .text)
            t.column("locality", .text)
            t.column("town", .text)
            t.column("postcode", .text)
            t.column("openDate", .text)
            t.column("closeDate", .text)
            t.column("linkedURN", .text)
            t.column("source", .text).notNull()
            t.column("updatedAt", .datetime).notNull()
        }
        try db.create(table: SchoolContactRow.databaseTableName) { t in
            t.column("urn", .text).notNull()
            t.column("position", .integer).notNull()
            t.column("role", .text).notNull()
            t.column("name", .text)
            t.column("email", .text)
            t.column("phone", .text)
            t.primaryKey(["urn", "position"])
        }
        try db.create(table: "registerMeta") { t in
            t.primaryKey("key", .text)
            t.column("value", .integer).notNull()
        }
        try db.execute(sql: "INSERT INTO registerMeta (key, value) VALUES ('generation', 0)")
        try db.create(table: ChildSchoolRow.databaseTableName) { t in
            t.primaryKey("childId", .text)
            t.column("urn", .text).notNull()
            t.column("noticeId", .text).notNull()
            t.column("verifiedAt", .datetime).notNull()
        }
        try db.create(table: ChildSchoolBlockRow.databaseTableName) { t in
            t.column("childId", .text).notNull()
            t.column("urn", .text).notNull()
            t.column("noticeId", .text).notNull()
            t.column("reportedBy", .text).notNull()
            t.column("reportedAt", .datetime).notNull()
            t.column("note", .text)
            t.primaryKey(["childId", "urn"], onConflict: .ignore)
        }
        try db.create(table: ResolutionRow.databaseTableName) { t in
            t.primaryKey("noticeId", .text)
            t.column("childId", .text).notNull().indexed()
            t.column("forceCode", .text).notNull()
            t.column("occurrenceNumber", .text).notNull()
            t.column("incidentRevision", .integer).notNull()
            t.column("outcome", .text).notNull().indexed()
            t.column("urn", .text)
            t.column("reasons", .text).notNull()
            t.column("updatedAt", .datetime).notNull()
        }
        try db.create(table: SchoolRequestRow.databaseTableName) { t in
            t.primaryKey("requestId", .text)
            t.column("childId", .text).notNull()
            t.column("forceCode", .text).notNull()
            t.column("occurrenceNumber", .text).notNull()
            t.column("lpa", .text).notNull()
            t.column("reason", .text).notNull()
            t.column("candidates", .text).notNull()
            t.column("child", .blob).notNull()
            t.column("causationId", .text).notNull()
            t.column("status", .text).notNull()
            t.column("createdAt", .datetime).notNull()
            t.column("updatedAt", .datetime).notNull()
            t.column("exportedAt", .datetime)
            t.column("resolvedURN", .text)
            t.column("note", .text)
        }
        try db.create(index: "schoolRequest_lpa_status", on: SchoolRequestRow.databaseTableName, columns: ["lpa", "status"])
    }

    /// Every migration of the store, in order.
    public static func migrations(seed: Bool) -> [StoreMigration] {
        [migration, seedMigration(enabled: seed), evidenceMigration, redirectMigration, laContactsMigration]
    }

    /// v4: the contacts the MASH keeps per local authority.
    public static let laContactsMigration = StoreMigration("school-resolution-v4-la-contacts") { db in
        try db.create(table: LAContactRow.databaseTableName) { t in
            t.column("laCode", .text).notNull()
            t.column("position", .integer).notNull()
            t.column("role", .text).notNull()
            t.column("name", .text)
            t.column("email", .text)
            t.column("phone", .text)
            t.column("source", .text).notNull()
            t.column("updatedAt", .datetime).notNull()
            t.primaryKey(["laCode", "position"])
        }
    }

    /// Applies a local authority's contacts (the replicated topic's handler, and tests): the
    /// list replaces what is held, unless what is held is newer.
    public static func apply(_ update: LocalAuthorityContacts, db: Database) throws {
        if let held = try LAContactRow.filter(Column("laCode") == update.laCode).fetchOne(db), held.updatedAt > update.updatedAt { return }
        try LAContactRow.filter(Column("laCode") == update.laCode).deleteAll(db)
        for (i, c) in update.contacts.enumerated() {
            try LAContactRow(
                laCode: update.laCode, position: i, role: c.role, name: c.name, email: c.email, phone: c.phone,
                source: update.source, updatedAt: update.updatedAt
            ).insert(db)
        }
    }

    /// A local authority's contacts in `role` (nil: all), in the order given.
    public static func laContacts(_ db: Database, laCode: String, role: String? = nil) throws -> [SchoolContact] {
        try LAContactRow.filter(Column("laCode") == laCode).order(Column("position")).fetchAll(db).map(\.contact)
            .filter { role == nil || $0.role == role }
    }

    /// v3: each notice's published request (for redirects) and a redirect's original notice.
    public static let redirectMigration = StoreMigration("school-resolution-v3-redirects") { db in
        try db.alter(table: ResolutionRow.databaseTableName) { t in t.add(column: "request", .blob) }
        try db.alter(table: SchoolRequestRow.databaseTableName) { t in t.add(column: "redirectOf", .text) }
    }

    /// v2: the day and home postcode a child's school was verified for, and CSC answers held for
    /// a MASH officer's review.
    public static let evidenceMigration = StoreMigration("school-resolution-v2-school-evidence") { db in
        try db.alter(table: ChildSchoolRow.databaseTableName) { t in
            t.add(column: "incidentDay", .text)
            t.add(column: "homePostcode", .text)
            t.add(column: "occurrenceNumber", .text)
        }
        try db.alter(table: SchoolRequestRow.databaseTableName) { t in
            t.add(column: "reviewSchool", .text)
            t.add(column: "reviewReason", .text)
        }
    }

    /// Fills an empty register from the shipped 2018 list (first start).
    public static func seedMigration(enabled: Bool) -> StoreMigration {
        StoreMigration("school-resolution-seed-2018") { db in
            guard enabled, try SchoolRow.fetchCount(db) == 0 else { return }
            guard let url = RegisterImporter.bundledListURL, let data = FileManager.default.contents(atPath: url.path) else {
                throw RegisterFileError("the shipped school list schools_2018_tvp_cambs.csv is missing from the bundle")
            }
            let file = try RegisterImporter.read(data)
            let now = Date(timeIntervalSince1970: 0)
            for school in file.schools { try SchoolRow(school, source: "seed:schools_2018_tvp_cambs.csv", updatedAt: now).insert(db) }
            try bumpGeneration(db)
        }
    }

    /// Read for every child (is the cached matcher current?): a statement prepared once per
    /// connection, not per call (preparing it per call costs 7% of school resolution's time).
    static func generation(_ db: Database) throws -> Int {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT value FROM registerMeta WHERE key = 'generation'")) ?? 0
    }

    static func bumpGeneration(_ db: Database) throws {
        try db.execute(sql: "UPDATE registerMeta SET value = value + 1 WHERE key = 'generation'")
    }

    /// Applies a register update (the replicated topic's handler, and tests).
    public static func apply(_ update: SchoolRegisterUpdate, db: Database) throws {
        try SchoolRow(update.school, source: update.source, updatedAt: update.updatedAt).save(db)
        try SchoolContactRow.filter(Column("urn") == update.school.urn).deleteAll(db)
        for (i, c) in update.contacts.enumerated() {
            try SchoolContactRow(urn: update.school.urn, position: i, role: c.role, name: c.name, email: c.email, phone: c.phone).insert(db)
        }
        try bumpGeneration(db)
    }

    public static func contacts(_ db: Database, urn: String) throws -> [SchoolContact] {
        try SchoolContactRow.fetchAll(db, where: "urn", equals: urn, orderBy: "position").map(\.contact)
    }
}

/// The matcher over the current register, rebuilt when the register changes (a generation
/// counter in the store moves with every applied update).
public final class RegisterCache: Sendable {
    private let state = Locked<(generation: Int, matcher: SchoolMatcher)?>(nil)

    public init() {}

    public func matcher(_ db: Database) throws -> SchoolMatcher {
        let generation = try SchoolStore.generation(db)
        if let cached = state.withLock({ $0 }), cached.generation == generation { return cached.matcher }
        let schools = try SchoolRow.fetchAll(db).map(\.school)
        let matcher = SchoolMatcher(schools: schools).remembering()
        state.withLock { $0 = (generation, matcher) }
        return matcher
    }
}

extension ChildSchoolRow {
    public static let replacementColumns = ["childId", "urn", "noticeId", "verifiedAt", "incidentDay", "homePostcode", "occurrenceNumber"]
    public var replacementValues: [(any DatabaseValueConvertible)?] {
        [childId, urn, noticeId, verifiedAt.stored, incidentDay, homePostcode, occurrenceNumber]
    }
}

extension ResolutionRow {
    public static let replacementColumns = [
        "noticeId", "childId", "forceCode", "occurrenceNumber", "incidentRevision", "outcome", "urn", "reasons", "updatedAt", "request",
    ]
    public var replacementValues: [(any DatabaseValueConvertible)?] {
        [noticeId, childId, forceCode, occurrenceNumber, incidentRevision, outcome, urn, reasons, updatedAt.stored, request]
    }
}
