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
/// - `researchKey`: blocking keys -> person rows. A lookup reads only the rows of the query's
///   keys, never the whole history. The stored key is the generation of the person row (row id
///   / 2^17, in the top bits), one bit for the kind of person (child or adult) and 51 bits of the
///   key's hash: new rows' keys go to the newest generation's part of the B-tree, so a
///   transaction of inserts touches the pages of one generation (131,072 people, about 800,000
///   keys) however large the history grows, and a lookup probes each generation, newest first
///   (index-v2; index-v1 stored the bare 64-bit hash). A lookup for children reads children's
///   keys only, and one for adults adults' (index-v3): a child shares its dwelling, surname and
///   postcode with its parents, and without the kind bit those adults' rows would take places
///   in every child's candidate ranking and each be looked up to be filtered out.
public enum HistoryIndex {
    public static let migration = StoreMigration("child-research-index-v1") { db in
        try db.execute(
            sql: """
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

    /// index-v2: blocking keys grouped by generation of the person row (see `storedKey`). Rewrites
    /// the keys of an index built by v1, in key order.
    public static let generationsMigration = StoreMigration("child-research-index-v2-key-generations") { db in
        try db.execute(
            sql: """
                CREATE TABLE researchKeyV2 (key INTEGER NOT NULL, person INTEGER NOT NULL, PRIMARY KEY (key, person)) WITHOUT ROWID;
                INSERT OR IGNORE INTO researchKeyV2 (key, person)
                    SELECT (min(person >> \(generationBits), \(maxGeneration)) << \(hashBits)) | (key & \(hashMask)), person FROM researchKey ORDER BY 1, 2;
                DROP TABLE researchKey;
                ALTER TABLE researchKeyV2 RENAME TO researchKey;
                """)
    }

    /// index-v3: the kind of person (child or adult) in bit 51 of every stored key (see
    /// `storedKey`). Rewrites the keys of an index built by v2, in key order; keys of person rows
    /// that no longer exist (none should) are dropped.
    public static let kindsMigration = StoreMigration("child-research-index-v3-key-kinds") { db in
        try db.execute(
            sql: """
                CREATE TABLE researchKeyV3 (key INTEGER NOT NULL, person INTEGER NOT NULL, PRIMARY KEY (key, person)) WITHOUT ROWID;
                INSERT OR IGNORE INTO researchKeyV3 (key, person)
                    SELECT (k.key & ~\(childBit)) | (CASE WHEN p.role = 'child' THEN \(childBit) ELSE 0 END), k.person
                    FROM researchKey k JOIN researchPerson p ON p.id = k.person ORDER BY 1, 2;
                DROP TABLE researchKey;
                ALTER TABLE researchKeyV3 RENAME TO researchKey;
                """)
    }

    /// Person rows per generation of the key index (2^17 = 131,072): smaller generations make
    /// inserts cheaper (fewer pages written per transaction) and lookups dearer (one probe per
    /// generation); 2^17 measured better than 2^18 at 1,000,000 people (docs/BENCHMARKS.md).
    static let generationBits = 17
    static let hashBits = 52
    static let maxGeneration: Int64 = 2047
    static let hashMask: Int64 = (1 << 52) - 1
    /// The bit of a stored key that marks a child's key (index-v3).
    static let childBit: Int64 = 1 << 51

    static func generation(ofPerson row: Int64) -> Int64 { min(row >> Int64(generationBits), maxGeneration) }

    /// The stored key: the generation in the top bits (the sign bit stays 0), then the kind of
    /// person, then 51 bits of the hash.
    static func storedKey(_ hash: Int64, generation: Int64, child: Bool) -> Int64 {
        generation << Int64(hashBits) | (child ? childBit : 0) | (hash & (childBit - 1))
    }

    /// A larger page cache for the connection that writes the index and searches it (the
    /// service's writer, `ENCOMPASS_RESEARCH_INDEX_CACHE_MIB`): the blocking-key B-tree takes
    /// random inserts and lookups, which otherwise re-read pages from disk (SQLite's default
    /// cache is 2 MiB). The WAL file is cut back to 64 MiB whenever it is reset (SQLite's
    /// default keeps it at the largest size it ever reached, 818 MB in a backfill of 1.5 million
    /// incidents while long reads kept it from being reset).
    public static func tuneConnection(_ db: Database, cacheMiB: Int) throws {
        try db.execute(sql: "PRAGMA cache_size = -\(cacheMiB * 1024)")
        try db.execute(sql: "PRAGMA journal_size_limit = \(64 << 20)")
    }

    /// For a bulk build outside the service (`encompass-bench research`): a 256 MiB cache, and
    /// checkpoints every 16,384 WAL pages (64 MiB) instead of 1,000, so a page rewritten by
    /// several transactions is copied into the database once per checkpoint. The service keeps
    /// SQLite's default: a checkpoint of 64 MiB inside a message's commit is a latency spike
    /// (p99 at 200 incidents/s: 137 ms with it, 75 ms without).
    public static func tuneForBulkLoad(_ db: Database) throws {
        try tuneConnection(db, cacheMiB: 256)
        try db.execute(sql: "PRAGMA wal_autocheckpoint = 16384")
    }

    /// 64-bit hash of a blocking key.
    static func keyHash(_ key: String) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return Int64(bitPattern: h)
    }

    /// The stable id of a person: `c-` + a hash of their canonical identity (canonical given name,
    /// family name, date of birth, else birth-year-free identity with postcode), so every
    /// instance gives the same person the same id whatever order it indexed records in.
    public static func personId(given: String, family: String, dateOfBirth: String?, postcode: String?) -> String {
        personId(
            PersonFeatures(
                given: NameText.normalise(given), family: NameText.normalise(family), dateOfBirth: PartialDate(dateOfBirth),
                line: nil, town: "", postcodeKey: AddressText.postcodeKey(postcode)))
    }

    static func personId(_ features: PersonFeatures) -> String {
        personId(given: features.given, family: features.family, dateOfBirth: features.dateOfBirth, postcode: features.postcode)
    }

    /// `"c-" + StableHash.hex128(identity).prefix(20)` for the identity `g|f|YYYY-MM-DD` (or
    /// `g|f||postcode`), hashed as it is written, without the identity string.
    static func personId(given: String, family: String, dateOfBirth: PartialDate?, postcode: String) -> String {
        var h = IdentityHasher()
        h.text(Nicknames.canonical(given))
        h.byte(124)
        h.text(family)
        h.byte(124)
        if let dob = dateOfBirth, dob.isComplete, let y = dob.year, let m = dob.month, let d = dob.day {
            h.decimal(y, width: 4)
            h.byte(45)
            h.decimal(m, width: 2)
            h.byte(45)
            h.decimal(d, width: 2)
        } else {
            h.byte(124)
            h.text(postcode)
        }
        return h.personId
    }

    /// StableHash.hex128's two lanes, fed with the identity's parts as they are written.
    struct IdentityHasher {
        var lanes = StableHash.Lanes()

        @inline(__always) mutating func byte(_ byte: UInt8) { lanes.add(byte) }

        mutating func text(_ text: String) { lanes.add(text) }

        mutating func decimal(_ value: Int, width: Int) {
            guard value >= 0 else {
                text(PartialDate.pad(value, width))
                return
            }
            var divisor = 1, digits = 1
            while divisor <= value / 10 {
                divisor *= 10
                digits += 1
            }
            if width > digits { for _ in digits..<width { byte(48) } }
            while divisor > 0 {
                byte(UInt8(48 + (value / divisor) % 10))
                divisor /= 10
            }
        }

        /// `c-` and the first 20 hex digits of the 128-bit hash.
        var personId: String {
            let (x, y) = lanes.finish()
            return String(unsafeUninitializedCapacity: 22) { out in
                out[0] = UInt8(ascii: "c")
                out[1] = UInt8(ascii: "-")
                for i in 0..<16 { out[2 + i] = StableHash.hexDigit(x >> UInt64(60 - 4 * i)) }
                for i in 0..<4 { out[18 + i] = StableHash.hexDigit(y >> UInt64(60 - 4 * i)) }
                return 22
            }
        }
    }

    /// Whether an incident's occurrence is already indexed at this revision or later.
    static func indexedRevision(_ db: Database, forceCode: String, occurrenceNumber: String) throws -> Int? {
        var lookup = RawStatement(
            try db.cachedStatement(sql: "SELECT revision FROM researchIncident WHERE forceCode = ? AND occurrenceNumber = ?"), db: db)
        lookup.bind(forceCode)
        lookup.bind(occurrenceNumber)
        var revision: Int?
        try lookup.rows { revision = Int(sqlite3_column_int64($0, 0)) }
        return revision
    }

    /// Adds (or replaces with a later revision) one incident with its adults and children.
    /// Idempotent: the same or an older revision changes nothing. History imports are revision 0.
    ///
    /// The hot path of a bulk load: statements are GRDB's cached ones, bound and stepped
    /// straight through SQLite (GRDB's argument arrays cost more than the inserts), and each
    /// person's blocking keys and stable id are hashed from the normalised names without
    /// building the key strings.
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
        let place = PersonFeatures(
            given: "", family: "", dateOfBirth: nil, addressLines: incident.incidentAddress.lines,
            town: incident.incidentAddress.town, postcode: incident.incidentAddress.postcode)
        let insertIncident = try db.cachedStatement(
            sql: """
                INSERT OR REPLACE INTO researchIncident (forceCode, occurrenceNumber, revision, occurredDay, dwellingKey, postcode, source)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """)
        var raw = RawStatement(insertIncident, db: db)
        raw.bind(incident.forceCode)
        raw.bind(incident.occurrenceNumber)
        raw.bind(Int64(revision))
        raw.bind(day)
        raw.bind(place.dwellingKey)
        raw.bind(place.postcode)
        raw.bind(source)
        try raw.run()
        let placeText = encodeAddress(incident.incidentAddress)
        let insertPerson = try db.cachedStatement(
            sql: """
                INSERT INTO researchPerson (forceCode, occurrenceNumber, role, givenName, familyName, dateOfBirth, ageYears,
                    occurredDay, address, schoolName, schoolURN, personId) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        var hashes: [Int64] = []
        hashes.reserveCapacity(8)
        // The incident's (key, person) pairs, inserted together at the end, several rows per statement.
        var pairs: [(Int64, Int64)] = []
        pairs.reserveCapacity(32)
        func add(role: String, given: String, family: String, dob: String?, age: Int?, address: PostalAddress?, school: RecordedSchool?) throws {
            let atPlace = address == nil || address == incident.incidentAddress
            let ownPlace =
                atPlace
                ? place
                : PersonFeatures(
                    given: "", family: "", dateOfBirth: nil, addressLines: address?.lines ?? [],
                    town: address?.town, postcode: address?.postcode)
            let normalisedGiven = NameText.normalise(given), normalisedFamily = NameText.normalise(family)
            let dateOfBirth = PartialDate(dob)
            var person = RawStatement(insertPerson, db: db)
            person.bind(incident.forceCode)
            person.bind(incident.occurrenceNumber)
            person.bind(role)
            person.bind(given)
            person.bind(family)
            person.bind(dob)
            person.bind(age.map { Int64($0) })
            person.bind(day)
            person.bind(atPlace ? placeText : address.map(encodeAddress))
            person.bind(school?.name)
            person.bind(school?.urn)
            person.bind(personId(given: normalisedGiven, family: normalisedFamily, dateOfBirth: dateOfBirth, postcode: ownPlace.postcode))
            try person.run()
            let row = db.lastInsertedRowID
            let gen = Self.generation(ofPerson: row)
            hashes.removeAll(keepingCapacity: true)
            PersonFeatures.blockingKeyHashes(
                given: normalisedGiven, family: normalisedFamily, dateOfBirth: dateOfBirth, line: ownPlace.line,
                postcode: ownPlace.postcode, into: &hashes)
            for hash in hashes { pairs.append((storedKey(hash, generation: gen, child: role == "child"), row)) }
        }
        for party in incident.parties {
            try add(
                role: party.role.rawValue, given: party.givenName, family: party.familyName, dob: party.dateOfBirth,
                age: nil, address: party.address, school: nil)
        }
        for child in incident.children {
            try add(
                role: "child", given: child.givenName, family: child.familyName, dob: child.dateOfBirth,
                age: child.ageYears, address: child.homeAddress, school: child.school)
        }
        try insertKeys(pairs, db: db)
        return true
    }

    /// Rows per key-insert statement: one statement (one step) per up to 16 keys instead of one per key.
    static let keyRowsPerStatement = 16

    static func keyInsertSQL(rows: Int) -> String {
        "INSERT OR IGNORE INTO researchKey (key, person) VALUES " + Array(repeating: "(?, ?)", count: rows).joined(separator: ", ")
    }

    static let keyInsertSQLs: [String] = (0...keyRowsPerStatement).map { keyInsertSQL(rows: max(1, $0)) }

    static func insertKeys(_ pairs: [(Int64, Int64)], db: Database) throws {
        var start = 0
        while start < pairs.count {
            let count = min(keyRowsPerStatement, pairs.count - start)
            var insert = RawStatement(try db.cachedStatement(sql: keyInsertSQLs[count]), db: db)
            for (key, person) in pairs[start..<(start + count)] {
                insert.bind(key)
                insert.bind(person)
            }
            try insert.run()
            start += count
        }
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
        public var schoolName: String?
        public var schoolURN: String?
        public var personId: String
        /// The stored address text (see `encodeAddress`): parsed on demand, and cached by it.
        var addressText: String?

        public var address: PostalAddress? { HistoryIndex.decodeAddress(addressText) }

        /// This record as the origin of a school carried over from it.
        public var schoolOrigin: SchoolRecordOrigin {
            SchoolRecordOrigin(occurrenceNumber: occurrenceNumber, recordedOn: occurredDay, homePostcode: address?.postcode)
        }

        /// The columns `init(statement:)` reads, in its order.
        static let columns =
            "id, forceCode, occurrenceNumber, role, givenName, familyName, dateOfBirth, ageYears, occurredDay, address, schoolName, schoolURN, personId"

        /// Reads the current row of a statement that selects `columns`, by index: the research
        /// hot path decodes up to 80 rows per child, and looking columns up by name costs a fifth
        /// of child research's time (perf, pipeline benchmark).
        init(statement s: OpaquePointer) {
            func text(_ i: Int32) -> String? {
                guard let bytes = sqlite3_column_text(s, i) else { return nil }
                return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(s, i))), as: UTF8.self)
            }
            row = sqlite3_column_int64(s, 0)
            forceCode = text(1) ?? ""
            occurrenceNumber = text(2) ?? ""
            role = text(3) ?? ""
            givenName = text(4) ?? ""
            familyName = text(5) ?? ""
            dateOfBirth = text(6)
            ageYears = sqlite3_column_type(s, 7) == SQLITE_NULL ? nil : Int(sqlite3_column_int64(s, 7))
            occurredDay = text(8) ?? ""
            addressText = text(9)
            schoolName = text(10)
            schoolURN = text(11)
            personId = text(12) ?? ""
        }
    }

    /// Person rows sharing a blocking key with `features` (at most `limit` per key, most recent first).
    public enum Kind: Sendable { case adults, children }

    /// Person rows of `kind` that share blocking keys with `features`. Reads only the key index
    /// (at most `limitPerKey` most recent rows per key), ranks rows by how many keys they share,
    /// and keeps at most `maxRows`: rows sharing one key only are kept while the total is small,
    /// so a broad key (common surname and birth year) cannot flood the comparison.
    ///
    /// `before` (a day, `YYYY-MM-DD`): only records of earlier days, and they alone count towards
    /// `maxRows`, so the answer does not depend on how many of the day's own incidents have
    /// arrived yet. The rows come out ranked by keys shared, then most recent day, then
    /// occurrence: by what they say, not by the order this instance happened to index them in
    /// (row ids follow arrival, which differs between instances and partition interleavings).
    ///
    /// Rows are read tier by tier, most keys shared first, and only while the answer needs them:
    /// once `maxRows` rows share two or more keys the rest cannot be kept; rows sharing one key
    /// are read only when all the rows together are `maxRows` or fewer, which is counted first
    /// without reading them. A broad key's hundreds of rows are then never read and sorted.
    public static func candidates(
        for features: PersonFeatures, db: Database, kind: Kind, before: String? = nil, limitPerKey: Int = 200,
        maxRows: Int = 80
    ) throws -> [PersonRow] {
        let keyStatement = try db.cachedStatement(sql: "SELECT person FROM researchKey WHERE key = ? ORDER BY person DESC LIMIT ?")
        var hashes: [Int64] = []
        features.blockingKeyHashes(into: &hashes)
        let maxRow = try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(id) FROM researchPerson")) ?? 0
        let newest = Self.generation(ofPerson: maxRow)
        // Every (key, person) hit; a person's hits counted after sorting them.
        var hits: [Int64] = []
        for hash in hashes {
            // Generations newest first: person rows come out in descending order, as one B-tree range would.
            var remaining = limitPerKey
            var gen = newest
            while gen >= 0, remaining > 0 {
                var lookup = RawStatement(keyStatement, db: db)
                lookup.bind(storedKey(hash, generation: gen, child: kind == .children))
                lookup.bind(Int64(remaining))
                try lookup.rows { statement in
                    hits.append(sqlite3_column_int64(statement, 0))
                    remaining -= 1
                }
                gen -= 1
            }
        }
        hits.sort()
        // Person ids by the number of keys they share (tiers[n - 1]: sharing n keys).
        var tiers: [[Int64]] = []
        var i = 0
        while i < hits.count {
            var j = i + 1
            while j < hits.count, hits[j] == hits[i] { j += 1 }
            let shared = j - i
            if tiers.count < shared { tiers += Array(repeating: [], count: shared - tiers.count) }
            tiers[shared - 1].append(hits[i])
            i = j
        }
        var ranked: [(shared: Int, row: PersonRow)] = []
        for shared in stride(from: tiers.count, through: 2, by: -1) where !tiers[shared - 1].isEmpty {
            try fetchRows(tiers[shared - 1], kind: kind, before: before, db: db) { ranked.append((shared, $0)) }
            if ranked.count >= maxRows { break }
        }
        // Rows sharing one key count only when every row together is `maxRows` or fewer: when
        // there are more ids than room, those of earlier days are found first (their ids only),
        // and only they are read, so a row of the same day is never read twice.
        if ranked.count < maxRows, let single = tiers.first, !single.isEmpty {
            let room = maxRows - ranked.count
            let kept = single.count <= room ? single : try rowIds(single, kind: kind, before: before, upTo: room + 1, db: db)
            if kept.count <= room { try fetchRows(kept, kind: kind, before: before, db: db) { ranked.append((1, $0)) } }
        }
        ranked.sort { x, y in
            if x.shared != y.shared { return x.shared > y.shared }
            let (a, b) = (x.row, y.row)
            if a.occurredDay != b.occurredDay { return a.occurredDay > b.occurredDay }
            if a.forceCode != b.forceCode { return a.forceCode < b.forceCode }
            if a.occurrenceNumber != b.occurrenceNumber { return a.occurrenceNumber < b.occurrenceNumber }
            return a.row > b.row // one occurrence's people were indexed together, in its order
        }
        return ranked.prefix(maxRows).map(\.row)
    }

    /// The rows of `ids` of `kind` (the role test guards the kind bit) recorded before `before`,
    /// up to 16 per statement (one statement per row was most of child research's SQLite time).
    /// SQLite tests the day, so a row of a later day is not decoded.
    static func fetchRows(_ ids: [Int64], kind: Kind, before: String?, db: Database, _ body: (PersonRow) -> Void) throws {
        var start = 0
        while start < ids.count {
            let count = min(personRowsPerStatement, ids.count - start)
            var fetch = RawStatement(try db.cachedStatement(sql: personFetchSQLs[count]), db: db)
            for person in ids[start..<(start + count)] { fetch.bind(person) }
            fetch.bind(kind == .children ? 1 : 0)
            fetch.bind(before)
            try fetch.rows { body(PersonRow(statement: $0)) }
            start += count
        }
    }

    /// The ids of `ids` that `fetchRows` would give, up to `limit` of them (reads no row's text).
    static func rowIds(_ ids: [Int64], kind: Kind, before: String?, upTo limit: Int, db: Database) throws -> [Int64] {
        var found: [Int64] = []
        var start = 0
        while start < ids.count, found.count < limit {
            let count = min(personRowsPerStatement, ids.count - start)
            var fetch = RawStatement(try db.cachedStatement(sql: personIdSQLs[count]), db: db)
            for person in ids[start..<(start + count)] { fetch.bind(person) }
            fetch.bind(kind == .children ? 1 : 0)
            fetch.bind(before)
            try fetch.rows { found.append(sqlite3_column_int64($0, 0)) }
            start += count
        }
        return found
    }

    /// Person rows per fetch statement in `candidates`.
    static let personRowsPerStatement = 16

    /// Rows of the listed ids and kind, and of days before the last parameter (NULL: any day).
    static func personSQL(_ columns: String, count: Int) -> String {
        "SELECT \(columns) FROM researchPerson WHERE id IN (" + Array(repeating: "?", count: max(1, count)).joined(separator: ", ")
            + ") AND (role = 'child') = ? AND coalesce(occurredDay < ?, 1)"
    }

    static let personFetchSQLs: [String] = (0...personRowsPerStatement).map { personSQL(PersonRow.columns, count: $0) }

    static let personIdSQLs: [String] = (0...personRowsPerStatement).map { personSQL("id", count: $0) }

    /// The people recorded in one occurrence.
    public static func people(forceCode: String, occurrenceNumber: String, db: Database) throws -> [PersonRow] {
        var fetch = try RawStatement(
            db.cachedStatement(sql: "SELECT \(PersonRow.columns) FROM researchPerson WHERE forceCode = ? AND occurrenceNumber = ?"), db: db)
        fetch.bind(forceCode)
        fetch.bind(occurrenceNumber)
        var rows: [PersonRow] = []
        try fetch.rows { rows.append(PersonRow(statement: $0)) }
        return rows
    }

    public struct IncidentRow: Sendable, Equatable {
        public var forceCode: String
        public var occurrenceNumber: String
        public var occurredDay: String
    }

    /// Occurrences at the same dwelling (flat, number, street, postcode), most recent first;
    /// `before` (a day): only those of earlier days, which alone then fill `limit`.
    public static func incidents(atDwelling key: String, before: String? = nil, db: Database, limit: Int = 50) throws -> [IncidentRow] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT forceCode, occurrenceNumber, occurredDay FROM researchIncident WHERE dwellingKey = ? AND occurredDay < ?
                    ORDER BY occurredDay DESC, forceCode, occurrenceNumber LIMIT ?
                    """), arguments: [key, before ?? "9999-12-31", limit]
        ).map { IncidentRow(forceCode: $0["forceCode"], occurrenceNumber: $0["occurrenceNumber"], occurredDay: $0["occurredDay"]) }
    }

    public static func counts(_ db: Database) throws -> (incidents: Int, people: Int) {
        (
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM researchIncident") ?? 0,
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM researchPerson") ?? 0
        )
    }
}

extension HistoryIndex.PersonRow {
    public var features: PersonFeatures {
        let address = self.address
        return PersonFeatures(
            givenName: givenName, familyName: familyName, dateOfBirth: dateOfBirth, addressLines: address?.lines ?? [],
            town: address?.town, postcode: address?.postcode)
    }

    /// The features, parsing each distinct address once per `cache`.
    func features(cache: inout [String: PersonFeatures]) -> PersonFeatures {
        let key = addressText ?? ""
        if let place = cache[key] { return place.with(givenName: givenName, familyName: familyName, dateOfBirth: dateOfBirth) }
        let address = self.address
        let place = PersonFeatures(
            given: "", family: "", dateOfBirth: nil, addressLines: address?.lines ?? [], town: address?.town, postcode: address?.postcode)
        cache[key] = place
        return place.with(givenName: givenName, familyName: familyName, dateOfBirth: dateOfBirth)
    }
}
