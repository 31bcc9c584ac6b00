import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService

/// `HistoryIndex.candidates` reads rows tier by tier (most keys shared first) and counts the
/// rows sharing one key before reading them; what it returns must be exactly what reading every
/// row sharing a key, ranking them all and cutting gives. The reference below does that, by the
/// rule the doc comment states, over an index crowded enough that keys hit more rows than any cut.
@Suite("Candidate fetch: tier by tier equals reading every row")
struct CandidateFetchTests {
    /// Every row sharing a key with `features`, ranked and cut as `candidates` documents.
    static func reference(
        _ features: PersonFeatures, db: Database, kind: HistoryIndex.Kind, before: String?, limitPerKey: Int,
        maxRows: Int
    ) throws -> [HistoryIndex.PersonRow] {
        var hashes: [Int64] = []
        features.blockingKeyHashes(into: &hashes)
        let newest = HistoryIndex.generation(ofPerson: try Int64.fetchOne(db, sql: "SELECT max(id) FROM researchPerson") ?? 0)
        var shared: [Int64: Int] = [:]
        for hash in hashes {
            var remaining = limitPerKey
            for gen in stride(from: newest, through: 0, by: -1) where remaining > 0 {
                let people = try Int64.fetchAll(
                    db, sql: "SELECT person FROM researchKey WHERE key = ? ORDER BY person DESC LIMIT ?",
                    arguments: [HistoryIndex.storedKey(hash, generation: gen, child: kind == .children), remaining])
                remaining -= people.count
                for person in people { shared[person, default: 0] += 1 }
            }
        }
        var rows: [HistoryIndex.PersonRow] = []
        for person in shared.keys {
            let statement = try db.makeStatement(
                sql: "SELECT \(HistoryIndex.PersonRow.columns) FROM researchPerson WHERE id = ? AND (role = 'child') = ?")
            try statement.setArguments([person, kind == .children])
            let cursor = try Row.fetchCursor(statement)
            while try cursor.next() != nil {
                let row = HistoryIndex.PersonRow(statement: statement.sqliteStatement)
                if let before, row.occurredDay >= before { continue }
                rows.append(row)
            }
        }
        rows.sort { a, b in
            let (x, y) = (shared[a.row]!, shared[b.row]!)
            if x != y { return x > y }
            if a.occurredDay != b.occurredDay { return a.occurredDay > b.occurredDay }
            if a.forceCode != b.forceCode { return a.forceCode < b.forceCode }
            if a.occurrenceNumber != b.occurrenceNumber { return a.occurrenceNumber < b.occurrenceNumber }
            return a.row > b.row
        }
        if rows.count > maxRows { rows = Array(rows.prefix { shared[$0.row]! >= 2 }.prefix(maxRows)) }
        return rows
    }

    @Test("the same rows in the same order as reading, ranking and cutting every row, for every cut, day and kind")
    func sameAsReadingEveryRow() throws {
        // Few names, years, streets and postcodes, so keys are shared by many people; ten days,
        // so a `before` day leaves out many rows.
        let given = ["Oliver", "Olivia", "Jack", "Amelia", "Noah", "Isla"], family = ["Hughes", "Hughs", "Patel", "Smith-Hughes", "Wood"]
        let streets = ["High Street", "Mill Lane"], postcodes = ["RG1 7LL", "RG1 7LA", "OX4 1AA"]
        var rng = SplitMix(seed: 2026)
        func pick<T>(_ list: [T]) -> T { list[Int(rng.next() % UInt64(list.count))] }
        func number(_ bound: Int) -> Int { Int(rng.next() % UInt64(bound)) }
        func person() -> (String, String, String?) {
            (pick(given), pick(family), number(5) == 0 ? nil : "20\(10 + number(3))-0\(1 + number(2))-1\(number(2))")
        }
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("candidates") + "/store.sqlite", migrations: ChildResearchService.migrations)
        var queries: [PersonFeatures] = []
        try store.pool.write { (db: Database) throws in
            for i in 0..<700 {
                let lines = ["\(1 + number(4)) \(pick(streets))"], postcode = pick(postcodes)
                let adults = (0..<2).map { _ in person() }, children = (0..<number(4)).map { _ in person() }
                let incident = makeIncident(
                    "4321\(String(format: "%07d", i))", on: "2021-01-0\(1 + number(9))", lines: lines, postcode: postcode,
                    parties: adults.enumerated().map {
                        Party(
                            role: $0.offset == 0 ? .victim : .suspect, givenName: $0.element.0,
                            familyName: $0.element.1, dateOfBirth: $0.element.2)
                    },
                    children: children.map { RecordedChild(givenName: $0.0, familyName: $0.1, dateOfBirth: $0.2, ageYears: $0.2 == nil ? 9 : nil) })
                try HistoryIndex.index(incident, revision: 0, source: "history:test", db: db)
                if i % 35 == 0 {
                    let (g, f, dob) = person()
                    queries.append(PersonFeatures(givenName: g, familyName: f, dateOfBirth: dob, addressLines: lines, postcode: postcode))
                }
            }
        }
        var compared = 0, cut = 0, singlesKept = 0, singlesLeftOut = 0
        try store.pool.read { (db: Database) throws in
            for features in queries {
                for kind in [HistoryIndex.Kind.adults, .children] {
                    for before in [nil, "2021-01-02", "2021-01-05", "2021-01-09"] {
                        for (limitPerKey, maxRows) in [(200, 80), (200, 10), (30, 40), (5, 3), (200, 1)] {
                            let expected = try Self.reference(
                                features, db: db, kind: kind, before: before, limitPerKey: limitPerKey, maxRows: maxRows)
                            let rows = try HistoryIndex.candidates(
                                for: features, db: db, kind: kind, before: before, limitPerKey: limitPerKey, maxRows: maxRows)
                            #expect(
                                rows == expected, "\(features.given) \(features.family) \(kind) before \(before ?? "-") \(limitPerKey)/\(maxRows)")
                            compared += 1
                            if rows.count == maxRows { cut += 1 }
                            // Whether rows sharing one key were kept, or left out because there were too many.
                            var hashes: [Int64] = []
                            features.blockingKeyHashes(into: &hashes)
                            let singles = rows.filter { row in
                                var theirs: [Int64] = []
                                row.features.blockingKeyHashes(into: &theirs)
                                return Set(theirs).intersection(hashes).count == 1
                            }
                            if singles.isEmpty { singlesLeftOut += 1 } else { singlesKept += 1 }
                        }
                    }
                }
            }
        }
        // The cases the tiers distinguish all occur: cut at maxRows, single-key rows kept and left out.
        #expect(compared == queries.count * 40)
        #expect(cut > 0 && singlesKept > 0 && singlesLeftOut > 0, "cut \(cut), single-key rows kept \(singlesKept), left out \(singlesLeftOut)")
    }

    @Test("FixedText writes numbers exactly as String(format:) does")
    func fixedText() {
        var rng = SplitMix(seed: 7)
        var values: [Double] = [
            0, -0.0, 0.05, 0.15, 0.25, 0.35, 0.125, 0.995, 0.9999, 0.99995, -0.04, -0.05, 1.5, 2.5, -2.5, 123456.789, 1e-9, -1e-9,
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .infinity, -.infinity, .nan, 0.55, 0.6, 0.5 * 0.6,
        ]
        for _ in 0..<20_000 {
            let unit = Double(rng.next() >> 11) / Double(1 << 53)
            values.append((unit - 0.5) * [2, 40, 2_000][Int(rng.next() % 3)])
            values.append((unit * 1000).rounded() / 1000) // values on the rounding boundary of fewer digits
        }
        for value in values {
            for digits in [0, 1, 2, 4] {
                #expect(FixedText.text(value, digits: digits) == String(format: "%.\(digits)f", value), "\(value) \(digits)")
                #expect(FixedText.text(value, digits: digits, sign: true) == String(format: "%+.\(digits)f", value), "\(value) +\(digits)")
            }
        }
    }
}
