import EncompassModels
import Foundation
import GRDB
import GRDBSQLite
import ServiceRuntime

/// The history index: past incidents, the people in them and their blocking keys, in the
/// service's SQLite store. Every instance holds all of it (fed by the replicated consumers).
///
/// Tables:
/// - `researchIncident`: one row per occurrence (force, number, revision, day, dwelling key).
/// - `researchPerson`: one row per person per occurrence (role, names, date of birth or age,
///   home address, school, stable person id).
/// - `researchKey`: blocking keys (64-bit hashes) -> person rows. A lookup reads only the rows
///   of the query's keys, never the whole history.
public enum HistoryIndex {
    public static let migration = StoreMigration("child-research-index-v1") { db in
        try db.execute(sql: """
            CREATE TABLE researchIncident (
                forceCode TEXT NOT NULL, occurrenceNumber TEXT NOT NULL, revision INTEGER NOT NULL,
                occurredDay TEXT NOT NULL, dwellingKey TEXT, postcode TEXT NOT NULL, source TEXT NOT NULL,
                PRIMARY KEY (forceCode, occurrenceNumber)) WITHOUT ROWID;
            CREATE INDEX researchIncidentDwelling ON researchIncident(dwellingKey);
            CREATE TABLE researchPerson (
                id INTEGER PRIMARY KEY, forceCode TEXT NOT NULL, occurrenceNumber TEXT NOT NULL, role TEXT NOT NULL,
                givenName TEXT NOT NULL, familyName TEXT NOT NULL, dateOfBirth TEXT, ageYears INTEGER,
                occurredDay TEXT NOT NULL, address TEXT, schoolName TEXT, schoolURN TEXT, personId TEXT NOT NULL);
            CREATE INDEX researchPersonOccurrence ON researchPerson(forceCode, occurrenceNumber);
            CREATE TABLE researchKey (key INTEGER NOT NULL, person INTEGER NOT NULL, PRIMARY KEY (key, person)) WITHOUT ROWID;
            """)
    }

    /// A larger page cache (256 MiB) for the connection that writes the index: the blocking-key
    /// B-tree takes random inserts, which otherwise re-read pages from disk.
    public static func tuneConnection(_ db: Database) throws {
        try db.execute(sql: "PRAGMA cache_size = -262144")
    }

    /// 64-bit hash of a blocking key.
    static func keyHash(_ key: String) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        h ^= h >> 33; h = h &* 0xff51_afd7_ed55_8ccd; h ^= h >> 33
        return Int64(bitPattern: h)
    }

    /// The stable id of a person: `c-` + a hash of their canonical identity (canonical given name,
    /// family name, date of birth, else birth-year-free identity with postcode), so every
    /// instance gives the same person the same id whatever order it indexed records in.
    public static func personId(given: String, family: String, dateOfBirth: String?, postcode: String?) -> String {
        personId(PersonFeatures(given: NameText.normalise(given), family: NameText.normalise(family), dateOfBirth: PartialDate(dateOfBirth),
                                line: nil, town: "", postcodeKey: AddressText.postcodeKey(postcode)))
    }

    static func personId(_ features: PersonFeatures) -> String {
        let g = Nicknames.canonical(features.given), f = features.family
        let identity: String
        if let dob = features.dateOfBirth, dob.isComplete {
            identity = "\(g)|\(f)|\(dob)"
        } else {
            identity = "\(g)|\(f)||\(features.postcode)"
        }
        return "c-" + String(StableHash.hex128(identity).prefix(20))
    }

    /// Whether an incident's occurrence is already indexed at this revision or later.
    static func indexedRevision(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> Int? {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT revision FROM researchIncident WHERE forceCode = ? AND occurrenceNumber = ?"),
                         arguments: [forceCode, occurrenceNumber])
    }

    /// Adds (or replaces with a later revision) one incident with its adults and children.
    /// Idempotent: the same or an older revision changes nothing. History imports are revision 0.
    @discardableResult
    public static func index(_ incident: Incident, revision: Int, source: String, db: Database) throws -> Bool {
        let existing = try indexedRevision(db, forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber)
        if let existing, existing >= revision { return false }
        if existing != nil {
            try db.cachedStatement(sql: "DELETE FROM researchPerson WHERE forceCode = ? AND occurrenceNumber = ?")
                .execute(arguments: [incident.forceCode, incident.occurrenceNumber])
        }
        let calendarDay = CalendarDate(incident.occurredAt)
        let day = PartialDate(year: calendarDay.year, month: calendarDay.month, day: calendarDay.day).description
        let postcode = AddressText.postcodeKey(incident.incidentAddress.postcode)
        let place = PersonFeatures(given: "", family: "", dateOfBirth: nil, addressLines: incident.incidentAddress.lines,
                                   town: incident.incidentAddress.town, postcode: incident.incidentAddress.postcode)
        try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO researchIncident (forceCode, occurrenceNumber, revision, occurredDay, dwellingKey, postcode, source)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [incident.forceCode, incident.occurrenceNumber, revision, day, place.dwellingKey, postcode, source])
        let placeText = encodeAddress(incident.incidentAddress)
        let insertPerson = try db.cachedStatement(sql: """
            INSERT INTO researchPerson (forceCode, occurrenceNumber, role, givenName, familyName, dateOfBirth, ageYears,
                occurredDay, address, schoolName, schoolURN, personId) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let insertKey = try db.cachedStatement(sql: "INSERT OR IGNORE INTO researchKey (key, person) VALUES (?, ?)")
        func add(role: String, given: String, family: String, dob: String?, age: Int?, address: PostalAddress?, school: RecordedSchool?) throws {
            let home = address ?? incident.incidentAddress
            let features = address == nil || address == incident.incidentAddress
                ? place.with(givenName: given, familyName: family, dateOfBirth: dob)
                : PersonFeatures(givenName: given, familyName: family, dateOfBirth: dob, addressLines: home.lines, town: home.town, postcode: home.postcode)
            let addressText = address == nil ? placeText : encodeAddress(home)
            try insertPerson.execute(arguments: [
                incident.forceCode, incident.occurrenceNumber, role, given, family, dob, age, day, addressText,
                school?.name, school?.urn, personId(features),
            ])
            let row = db.lastInsertedRowID
            // The hot loop of a bulk load binds integers straight to SQLite (GRDB's argument
            // arrays cost more than the insert itself); the statement is GRDB's cached one.
            let raw = insertKey.sqliteStatement
            for key in features.blockingKeys {
                sqlite3_reset(raw)
                sqlite3_bind_int64(raw, 1, keyHash(key))
                sqlite3_bind_int64(raw, 2, row)
                let code = sqlite3_step(raw)
                guard code == SQLITE_DONE else {
                    sqlite3_reset(raw)
                    throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
            }
            sqlite3_reset(raw)
        }
        for party in incident.parties {
            try add(role: party.role.rawValue, given: party.givenName, family: party.familyName, dob: party.dateOfBirth,
                    age: nil, address: party.address, school: nil)
        }
        for child in incident.children {
            try add(role: "child", given: child.givenName, family: child.familyName, dob: child.dateOfBirth,
                    age: child.ageYears, address: child.homeAddress, school: child.school)
        }
        return true
    }

    /// Compact address text: lines separated by U+1E, then U+1F town U+1F postcode.
    static func encodeAddress(_ address: PostalAddress) -> String {
        address.lines.joined(separator: "\u{1E}") + "\u{1F}" + (address.town ?? "") + "\u{1F}" + address.postcode
    }

    static func decodeAddress(_ text: String?) -> PostalAddress? {
        guard let text, !text.isEmpty else { return nil }
        let parts = text.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else { return nil }
        let lines = parts[0].split(separator: "\u{1E}").map(String.init)
        return PostalAddress(lines: lines, town: parts[1].isEmpty ? nil : parts[1], postcode: parts[2])
    }

    /// One indexed person in one occurrence.
    public struct PersonRow: Sendable, Equatable {
        public var row: Int64
        public var forceCode: String
        public var occurrenceNumber: String
        public var role: String
        public var givenName: String
        public var familyName: String
        public var dateOfBirth: String?
        public var ageYears: Int?
        public var occurredDay: String
        public var address: PostalAddress?
        public var schoolName: String?
        public var schoolURN: String?
        public var personId: String

        init(_ r: Row) {
            row = r["id"]; forceCode = r["forceCode"]; occurrenceNumber = r["occurrenceNumber"]; role = r["role"]
            givenName = r["givenName"]; familyName = r["familyName"]; dateOfBirth = r["dateOfBirth"]; ageYears = r["ageYears"]
            occurredDay = r["occurredDay"]; address = HistoryIndex.decodeAddress(r["address"]); schoolName = r["schoolName"]
            schoolURN = r["schoolURN"]; personId = r["personId"]; addressText = r["address"]
        }

        /// The stored address text, for caching parsed addresses.
        var addressText: String?
    }

    /// Person rows sharing a blocking key with `features` (at most `limit` per key, most recent first).
    public enum Kind: Sendable { case adults, children }

    /// Person rows of `kind` that share blocking keys with `features`. Reads only the key index
    /// (at most `limitPerKey` most recent rows per key), ranks rows by how many keys they share,
    /// and fetches at most `maxRows`: rows sharing one key only are kept while the total is small,
    /// so a broad key (common surname and birth year) cannot flood the comparison.
    public static func candidates(for features: PersonFeatures, db: Database, kind: Kind, limitPerKey: Int = 200, maxRows: Int = 80) throws -> [PersonRow] {
        let keyStatement = try db.cachedStatement(sql: "SELECT person FROM researchKey WHERE key = ? ORDER BY person DESC LIMIT ?")
        var shared: [Int64: Int] = [:]
        for key in features.blockingKeys {
            for person in try Int64.fetchAll(keyStatement, arguments: [keyHash(key), limitPerKey]) { shared[person, default: 0] += 1 }
        }
        var ranked = shared.sorted { ($0.value, $0.key) > ($1.value, $1.key) }
        if ranked.count > maxRows {
            ranked = Array(ranked.prefix { $0.value >= 2 }.prefix(maxRows))
        }
        let rowStatement = try db.cachedStatement(sql: "SELECT * FROM researchPerson WHERE id = ? AND (role = 'child') = ?")
        var rows: [PersonRow] = []
        for (person, _) in ranked {
            if let r = try Row.fetchOne(rowStatement, arguments: [person, kind == .children]) { rows.append(PersonRow(r)) }
        }
        return rows
    }

    /// The people recorded in one occurrence.
    public static func people(forceCode: String, occurrenceNumber: String, db: Database) throws -> [PersonRow] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM researchPerson WHERE forceCode = ? AND occurrenceNumber = ?"),
                         arguments: [forceCode, occurrenceNumber]).map(PersonRow.init)
    }

    public struct IncidentRow: Sendable, Equatable {
        public var forceCode: String
        public var occurrenceNumber: String
        public var occurredDay: String
    }

    /// Earlier occurrences at the same dwelling (flat, number, street, postcode).
    public static func incidents(atDwelling key: String, db: Database, limit: Int = 50) throws -> [IncidentRow] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT forceCode, occurrenceNumber, occurredDay FROM researchIncident WHERE dwellingKey = ? ORDER BY occurredDay DESC LIMIT ?
            """), arguments: [key, limit]).map { IncidentRow(forceCode: $0["forceCode"], occurrenceNumber: $0["occurrenceNumber"], occurredDay: $0["occurredDay"]) }
    }

    public static func counts(_ db: Database) throws -> (incidents: Int, people: Int) {
        (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM researchIncident") ?? 0,
         try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM researchPerson") ?? 0)
    }
}

extension HistoryIndex.PersonRow {
    public var features: PersonFeatures {
        PersonFeatures(givenName: givenName, familyName: familyName, dateOfBirth: dateOfBirth, addressLines: address?.lines ?? [],
                       town: address?.town, postcode: address?.postcode)
    }

    /// The features, parsing each distinct address once per `cache`.
    func features(cache: inout [String: PersonFeatures]) -> PersonFeatures {
        let key = addressText ?? ""
        if let place = cache[key] { return place.with(givenName: givenName, familyName: familyName, dateOfBirth: dateOfBirth) }
        let place = PersonFeatures(given: "", family: "", dateOfBirth: nil, addressLines: address?.lines ?? [], town: address?.town, postcode: address?.postcode)
        cache[key] = place
        return place.with(givenName: givenName, familyName: familyName, dateOfBirth: dateOfBirth)
    }
}
