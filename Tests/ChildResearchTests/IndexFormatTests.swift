import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService

/// The index's fast paths must write exactly what the string-built keys and ids would, and the
/// key generations (index-v2) must find what v1 found.
@Suite("History index format: hashed keys, stable ids, key generations and the v1 -> v2 migration")
struct IndexFormatTests {
    static let people: [PersonFeatures] = [
        PersonFeatures(
            givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12", addressLines: ["Flat 2", "10 High Street"], town: "Reading",
            postcode: "RG1 7LL"),
        PersonFeatures(givenName: "Bob", familyName: "Smith-Jones", dateOfBirth: "1980", addressLines: ["2/10 High St"], postcode: "rg17ll"),
        PersonFeatures(givenName: "Zoë", familyName: "O'Brien", dateOfBirth: nil, addressLines: ["Rose Cottage", "Mill Lane"], postcode: "OX4 1AA"),
        PersonFeatures(givenName: "Amelia", familyName: "Amelia", dateOfBirth: "2019-01", addressLines: [], postcode: nil),
        PersonFeatures(givenName: "", familyName: "Patel", dateOfBirth: "04/04/2016", addressLines: ["22 Station Road"], postcode: "RG1 1AA"),
        PersonFeatures(givenName: "Mohammed", familyName: "", dateOfBirth: "20160404", addressLines: ["  ", "7"], postcode: "SL1 2AB"),
        PersonFeatures(givenName: "Jack", familyName: "Hughes", dateOfBirth: "2008-01-01", addressLines: ["Flat 12, 250 Forbury Road"], postcode: ""),
        PersonFeatures(
            givenName: "Mary Jane", familyName: "Wood  -  Hall", dateOfBirth: "1899-12-31", addressLines: ["3 The Crescent"], postcode: "MK9 3XX"),
        PersonFeatures(
            givenName: "Li", familyName: "Xu", dateOfBirth: "2024-02-29", addressLines: ["Apartment 4b", "1 Queens Rd"], postcode: "HP13 6AA"),
    ]

    @Test("blocking-key hashes equal the hashes of the key strings; packed Soundex equals Soundex")
    func keyHashes() {
        for person in Self.people {
            var hashes: [Int64] = []
            person.blockingKeyHashes(into: &hashes)
            #expect(hashes == person.blockingKeys.map(HistoryIndex.keyHash), "\(person.given) \(person.family): \(person.blockingKeys)")
            for name in [person.given, person.family, Nicknames.canonical(person.given)] {
                let packed = NameText.soundexCode(name)
                let text = packed == 0 ? "" : String(decoding: [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: packed >> $0) }, as: UTF8.self)
                #expect(text == NameText.soundex(name))
            }
        }
        #expect(!Self.people[0].blockingKeys.isEmpty)
    }

    @Test("stable person ids hashed byte by byte equal c- + StableHash.hex128(identity)")
    func personIds() {
        for person in Self.people {
            let g = Nicknames.canonical(person.given)
            let identity =
                person.dateOfBirth?.isComplete == true ? "\(g)|\(person.family)|\(person.dateOfBirth!)" : "\(g)|\(person.family)||\(person.postcode)"
            #expect(HistoryIndex.personId(person) == "c-" + String(StableHash.hex128(identity).prefix(20)))
        }
        #expect(
            HistoryIndex.personId(given: "Bob", family: "Smith", dateOfBirth: "1980-02-02", postcode: nil)
                == HistoryIndex.personId(given: "Robert", family: "smith", dateOfBirth: "1980-02-02", postcode: "RG1 1AA"))
    }

    @Test("normalisation keeps its rules (case, accents, punctuation, spaces, hyphens)")
    func normalise() {
        #expect(NameText.normalise("  O'Brien ") == "obrien")
        #expect(NameText.normalise("Zoë") == "zoe")
        #expect(NameText.normalise("Smith - Jones") == "smith jones")
        #expect(NameText.normalise("-Anne-Marie-") == "anne-marie")
        #expect(NameText.normalise("Flat 2, 10 High St.") == "flat 2 10 high st")
        #expect(NameText.normalise("") == "")
        #expect(NameText.normalise("''") == "")
    }

    @Test("key generations: rows of later generations are found newest first beside older ones")
    func generations() throws {
        #expect(HistoryIndex.generation(ofPerson: 1) == 0)
        #expect(HistoryIndex.generation(ofPerson: 1 << Int64(HistoryIndex.generationBits)) == 1)
        #expect(HistoryIndex.generation(ofPerson: (1 << Int64(HistoryIndex.generationBits)) - 1) == 0)
        #expect(HistoryIndex.generation(ofPerson: Int64.max) == HistoryIndex.maxGeneration)
        for child in [false, true] {
            #expect(HistoryIndex.storedKey(-1, generation: HistoryIndex.maxGeneration, child: child) > 0)
            #expect(HistoryIndex.storedKey(-1, generation: 0, child: child) != HistoryIndex.storedKey(-1, generation: 1, child: child))
            #expect(HistoryIndex.storedKey(-1, generation: 3, child: child) >> Int64(HistoryIndex.hashBits) == 3)
            #expect((HistoryIndex.storedKey(-1, generation: 3, child: child) & HistoryIndex.childBit != 0) == child)
        }
        #expect(HistoryIndex.storedKey(12345, generation: 0, child: false) != HistoryIndex.storedKey(12345, generation: 0, child: true))

        let store = try History.store() // 9 people in generation 0
        try store.pool.write { (db: Database) throws in
            // Jump the row ids two generations on, then index a later incident of the same household.
            try db.execute(
                sql: """
                    INSERT INTO researchPerson (id, forceCode, occurrenceNumber, role, givenName, familyName, occurredDay, personId)
                    VALUES (600000, '43', 'filler', 'victim', 'x', 'y', '2020-01-01', 'c-x')
                    """)
            var later = History.h1
            later.occurrenceNumber = "43250000404"
            later.occurredAt = day("2025-01-02")
            try HistoryIndex.index(later, revision: 0, source: "history:test", db: db)
            let oliver = PersonFeatures(
                givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12", addressLines: ["10 High Street"], postcode: "RG1 7LL")
            let rows = try HistoryIndex.candidates(for: oliver, db: db, kind: .children)
            let olivers = rows.filter { $0.givenName == "Oliver" }
            #expect(olivers.map(\.occurrenceNumber) == ["43250000404", "43230000101"])
            #expect(olivers[0].row > 600_000 && olivers[1].row < 1 << Int64(HistoryIndex.generationBits))
            #expect(HistoryIndex.generation(ofPerson: olivers[0].row) > HistoryIndex.generation(ofPerson: olivers[1].row))
            // At most limitPerKey rows per key, the newest generation first.
            let newest = try HistoryIndex.candidates(for: oliver, db: db, kind: .children, limitPerKey: 1)
            #expect(newest.first?.occurrenceNumber == "43250000404")
        }
    }

    @Test("an index written by v1 (bare 64-bit key hashes) is rewritten by the v2 migration and researched the same")
    func migration() throws {
        let path = TestPaths.temporaryDirectory("research-v1") + "/store.sqlite"
        let expected: [String]
        do {
            let v1 = try ServiceStore(path: path, migrations: [HistoryIndex.migration, ReviewQueue.migration])
            try v1.pool.write { (db: Database) throws in
                for incident in [History.h1, History.h2, History.h3] { try HistoryIndex.index(incident, revision: 0, source: "history:test", db: db) }
                // As v1 wrote them: the full hash of each key string.
                try db.execute(sql: "DELETE FROM researchKey")
                for incident in [History.h1, History.h2, History.h3] {
                    for row in try HistoryIndex.people(forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber, db: db) {
                        for key in row.features.blockingKeys {
                            try db.execute(
                                sql: "INSERT OR IGNORE INTO researchKey (key, person) VALUES (?, ?)", arguments: [HistoryIndex.keyHash(key), row.row])
                        }
                    }
                }
                #expect(
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM researchKey WHERE key < 0 OR key > ?", arguments: [HistoryIndex.hashMask])! > 0)
            }
            expected = ["Oliver", "Amelia", "Lily"]
        }
        let v3 = try ServiceStore(path: path, migrations: ChildResearchService.migrations)
        let candidates = try v3.pool.read { db in try Researcher(settings: .standard).research(History.today, db: db) }
        #expect(Set(candidates.map(\.child.givenName)) == Set(expected))
        try v3.pool.read { (db: Database) throws in
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM researchKey WHERE key < 0 OR key > ?", arguments: [HistoryIndex.hashMask]) == 0)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM researchKey")! > 20)
            try Self.expectKindBits(db)
        }
    }

    /// Every stored key carries its person's kind (index-v3).
    static func expectKindBits(_ db: Database) throws {
        #expect(
            try Int.fetchOne(
                db,
                sql: """
                    SELECT count(*) FROM researchKey k JOIN researchPerson p ON p.id = k.person
                    WHERE ((k.key & ?) != 0) != (p.role = 'child')
                    """, arguments: [HistoryIndex.childBit]) == 0)
        #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM researchKey WHERE key & ? != 0", arguments: [HistoryIndex.childBit])! > 0)
        #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM researchKey WHERE key & ? = 0", arguments: [HistoryIndex.childBit])! > 0)
    }

    @Test("an index written by v2 (no kind bit) is rewritten by the v3 migration: children's keys marked, the same children found")
    func kindsMigration() throws {
        let path = TestPaths.temporaryDirectory("research-v2") + "/store.sqlite"
        let before: [String]
        let keyCount: Int
        do {
            let v2 = try ServiceStore(path: path, migrations: Array(ChildResearchService.migrations.prefix(4)))
            try v2.pool.write { (db: Database) throws in
                for incident in [History.h1, History.h2, History.h3] { try HistoryIndex.index(incident, revision: 0, source: "history:test", db: db) }
                // As v2 wrote them: every key without the kind bit (hash bit 51 random).
                try db.execute(
                    sql: "UPDATE researchKey SET key = key & ~? | ((person % 2) * ?)", arguments: [HistoryIndex.childBit, HistoryIndex.childBit])
            }
            keyCount = try v2.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM researchKey")! }
            before = try v2.pool.read { db in
                try HistoryIndex.people(forceCode: History.h1.forceCode, occurrenceNumber: History.h1.occurrenceNumber, db: db)
                    .filter { $0.role == "child" }.map(\.givenName)
            }
        }
        let v3 = try ServiceStore(path: path, migrations: ChildResearchService.migrations)
        try v3.pool.read { (db: Database) throws in
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM researchKey") == keyCount)
            try Self.expectKindBits(db)
            let candidates = try Researcher(settings: .standard).research(History.today, db: db)
            #expect(Set(candidates.map(\.child.givenName)) == Set(["Oliver", "Amelia", "Lily"]))
            // A child's lookup finds children only, an adult's adults only.
            let oliver = PersonFeatures(
                givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12", addressLines: ["10 High Street"], postcode: "RG1 7LL")
            let children = try HistoryIndex.candidates(for: oliver, db: db, kind: .children)
            #expect(!children.isEmpty && children.allSatisfy { $0.role == "child" })
            #expect(Set(children.map(\.givenName)).isSuperset(of: Set(before).intersection(["Oliver"])))
            #expect(try HistoryIndex.candidates(for: oliver, db: db, kind: .adults).allSatisfy { $0.role != "child" })
        }
    }

    @Test("candidates come back in ranked order (most shared keys first, then the most recent day), however many statements fetch them")
    func rankedOrder() throws {
        let store = try History.store()
        try store.pool.write { (db: Database) throws in
            // Forty earlier incidents of one household: more rows than one fetch statement holds.
            for i in 0..<40 {
                var earlier = History.h1
                earlier.occurrenceNumber = "4322\(String(format: "%07d", i))"
                earlier.occurredAt = day("2021-01-01").addingTimeInterval(Double(i) * 86_400)
                if i % 3 == 0 { earlier.incidentAddress.postcode = "RG2 0AA" } // fewer shared keys
                try HistoryIndex.index(earlier, revision: 0, source: "history:test", db: db)
            }
            let oliver = PersonFeatures(
                givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12", addressLines: ["10 High Street"], postcode: "RG1 7LL")
            let rows = try HistoryIndex.candidates(for: oliver, db: db, kind: .children)
            #expect(rows.count > HistoryIndex.personRowsPerStatement)
            var hashes: [Int64] = []
            oliver.blockingKeyHashes(into: &hashes)
            func shared(_ row: HistoryIndex.PersonRow) -> Int {
                var theirs: [Int64] = []
                row.features.blockingKeyHashes(into: &theirs)
                return Set(theirs).intersection(hashes).count
            }
            let ranks = rows.map { (shared($0), $0.occurredDay) }
            #expect(ranks.elementsEqual(ranks.sorted { ($0.0, $0.1) > ($1.0, $1.1) }, by: ==), "\(ranks)")
        }
    }
}
