import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService

@Suite("Research with the learned match model")
struct LearnedResearchTests {
    static let today = "2026-11-23"
    static let now = Date(timeIntervalSince1970: 1_795_400_000) // 2026-11-23 evening, London

    /// The model store's households, each with a child recorded in both incidents.
    static func history() -> [Incident] {
        MatchModelStoreTests.incidents().enumerated().map { i, incident in
            var incident = incident
            let h = i / 2
            incident.children = [
                RecordedChild(
                    givenName: ["Mia", "Leo", "Ella", "Finn", "Ivy", "Theo"][h % 6], familyName: incident.parties[0].familyName,
                    dateOfBirth: String(format: "2016-%02d-%02d", 1 + h % 12, 1 + h % 28))
            ]
            return incident
        }
    }

    /// Today: household 0's victim (the misspelt form of her earlier records) at the household's
    /// address, no children recorded.
    static func incident(from history: [Incident]) -> Incident {
        let earlier = history[1]
        return Incident(
            occurrenceNumber: "43229999999", forceCode: "43", occurredAt: now, reportedAt: now, incidentAddress: earlier.incidentAddress,
            riskLevel: .medium, crime: false, parties: [earlier.parties[0]])
    }

    static func store(_ name: String, _ incidents: [Incident]) throws -> ServiceStore {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory(name) + "/store.sqlite", migrations: ChildResearchService.migrations)
        try store.pool.write { db in
            for incident in incidents { try HistoryIndex.index(incident, revision: 0, source: "history:test", db: db) }
        }
        return store
    }

    static func learn(_ store: ServiceStore) throws -> MatchModelStore.Stored {
        try #require(try MatchModelStore.retrainIfDue(store: store, every: 100, minimumPeople: 100, before: today, now: now))
    }

    @Test(
        "with a model stored for the incident's day research links by its probability and explains every field; without, by the hand-weighted matcher"
    )
    func scoredByTheStoredModel() throws {
        let history = Self.history()
        let store = try Self.store("learned-research", history)
        let cache = MatchModelCache()
        #expect(try store.pool.read { try cache.matcher(forDay: Self.today, db: $0) } == nil) // a fresh install

        let stored = try Self.learn(store)
        #expect(stored.beforeDay == Self.today && stored.people == 720)
        let learned = try #require(try store.pool.read { try cache.matcher(forDay: Self.today, db: $0) })
        #expect(learned.stored == stored)
        // Learned for another day: not used (its records are not the ones research reads today).
        #expect(try store.pool.read { try cache.matcher(forDay: "2026-11-24", db: $0) } == nil)

        let researcher = Researcher(settings: .standard, learned: learned)
        let candidates = try store.pool.read { db in try researcher.research(Self.incident(from: history), db: db) }
        let child = try #require(candidates.first)
        #expect(child.child.givenName == "Mia" && child.child.familyName == history[0].parties[0].familyName)
        // The adult's link carries the model's evidence: its probability and each known field's level and weight.
        let adult = try #require(child.evidence.explanation.first { $0.hasPrefix("adult: victim") })
        #expect(adult.contains("probability"), "\(adult)")
        for field in ["given name", "family name", "date of birth", "address same house number, street and postcode"] {
            #expect(adult.contains(field), "\(field) missing in \(adult)")
        }
        #expect(child.evidence.explanation.contains { $0.hasPrefix("matcher: learned model (720 people of days before 2026-11-23)") })
        // A pair below the model's threshold does not link: the suspect is not the victim.
        let people = try store.pool.read { db in try HistoryIndex.people(forceCode: "43", occurrenceNumber: "43220000000", db: db) }
        let victim = try #require(people.first { $0.role == "victim" }).features,
            suspect = try #require(people.first { $0.role == "suspect" }).features
        #expect(!researcher.samePerson(victim, suspect))
        #expect(researcher.score(victim, victim).same)
        // Children of one household are told apart on names and date of birth: their shared
        // address does not make two siblings one child; the same name and date of birth does.
        func kid(_ given: String, _ dob: String) -> Researcher.ChildRecord {
            Researcher.ChildRecord(
                PersonFeatures(
                    givenName: given, familyName: "Castleton", dateOfBirth: dob, addressLines: ["7 Mill Lane"], town: "Reading",
                    postcode: "RG7 7AB"), ageYears: nil, recordedOn: nil)
        }
        #expect(!researcher.sameChild(kid("Isaac", "2015-03-02"), kid("Daisy", "2018-07-19")))
        #expect(researcher.sameChild(kid("Isaac", "2015-03-02"), kid("Isaac", "2015-03-02")))
        // Without a model the hand-weighted matcher decides, with its own reasons (no probability).
        let hand = Researcher(settings: .standard).score(victim, victim)
        #expect(hand.same && !hand.why().contains("probability"))
        #expect(!Researcher(settings: .standard).samePerson(victim, suspect))
    }

    /// A household whose daughter was recorded with her date of birth, then once with an age
    /// only, then with her date of birth again (the demo's Maryam Marshall), and her brother.
    static func householdWithAnAgeOnlyRecord() -> [Incident] {
        let home = PostalAddress(lines: ["100 Mortimer Road"], town: "Bracknell", postcode: "RG42 9EL")
        let mother = Party(role: .victim, givenName: "Joanne", familyName: "Marshall", dateOfBirth: "1988-04-17")
        let father = Party(role: .suspect, givenName: "Gary", familyName: "Marshall", dateOfBirth: "1985-10-02")
        let recorded: [(String, [RecordedChild])] = [
            (
                "2025-09-21",
                [
                    RecordedChild(givenName: "Maryam", familyName: "Marshall", dateOfBirth: "2020-11-04"),
                    RecordedChild(givenName: "Leo", familyName: "Marshall", dateOfBirth: "2017-01-08"),
                ]
            ),
            ("2025-12-05", [RecordedChild(givenName: "Maryam", familyName: "Marshall", ageYears: 5)]),
            ("2026-05-30", [RecordedChild(givenName: "Maryam", familyName: "Marshall", dateOfBirth: "2020-11-04")]),
        ]
        return recorded.enumerated().map { n, entry in
            let when = ISO8601DateFormatter().date(from: entry.0 + "T12:00:00Z")!
            return Incident(
                occurrenceNumber: "4322888888\(n)", forceCode: "43", occurredAt: when, reportedAt: when, incidentAddress: home,
                riskLevel: .medium, crime: false, parties: [mother, father], children: entry.1)
        }
    }

    @Test(
        "a child recorded once with an age and otherwise with a date of birth is one proposal, not two (the learned model alone leaves the pair apart)"
    )
    func ageOnlyRecordJoinsItsChild() throws {
        let household = Self.householdWithAnAgeOnlyRecord()
        let store = try Self.store("learned-research-age-only", Self.history() + household)
        _ = try Self.learn(store)
        let learned = try #require(try store.pool.read { db in try MatchModelCache().matcher(forDay: Self.today, db: db) })
        let researcher = Researcher(settings: .standard, learned: learned)
        let rows = try store.pool.read { db in
            try household.flatMap { try HistoryIndex.people(forceCode: "43", occurrenceNumber: $0.occurrenceNumber, db: db) }.filter {
                $0.givenName == "Maryam"
            }
        }
        let withDate = try #require(rows.first { $0.dateOfBirth != nil }), withAge = try #require(rows.first { $0.ageYears != nil })
        // The cause: on names alone (no date of birth to compare) the model does not reach its threshold.
        #expect(!researcher.score(withDate.features, withAge.features, address: .ignored).same)
        #expect(researcher.sameChild(.init(withDate, features: withDate.features), .init(withAge, features: withAge.features)))
        // An age that disagrees with the date of birth is another child.
        var older = withAge
        older.ageYears = 8
        #expect(!researcher.sameChild(.init(withDate, features: withDate.features), .init(older, features: older.features)))

        let today = Incident(
            occurrenceNumber: "43229999990", forceCode: "43", occurredAt: Self.now, reportedAt: Self.now,
            incidentAddress: household[0].incidentAddress, riskLevel: .medium, crime: false, parties: household[0].parties)
        let candidates = try store.pool.read { db in try researcher.research(today, db: db) }
        let maryams = candidates.filter { $0.child.givenName == "Maryam" }
        #expect(maryams.count == 1, "\(candidates.map { "\($0.child.givenName) \($0.child.childId)" })")
        let maryam = try #require(maryams.first)
        #expect(maryam.child.childId == withDate.personId && maryam.child.dateOfBirth == "2020-11-04")
        #expect(maryam.evidence.sourceOccurrences == household.map(\.occurrenceNumber))
        #expect(candidates.filter { $0.child.givenName == "Leo" }.count == 1)
    }

    @Test("the background check counts the people of earlier days from an index by day, not by reading the person table")
    func peopleByDayUseAnIndex() throws {
        let store = try Self.store("learned-research-people-by-day", Array(Self.history().prefix(20)))
        let plan = try store.pool.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM researchPerson WHERE occurredDay < ?", arguments: [Self.today])
                .map { $0["detail"] as String? ?? "" }.joined(separator: "; ")
        }
        #expect(plan.contains("USING COVERING INDEX researchPersonDay"), "\(plan)")
        #expect(try store.pool.read { try MatchModelStore.people(before: Self.today, db: $0) } == 60)
        #expect(try store.pool.read { try MatchModelStore.people(before: "2022-04-20", db: $0) } == 15) // the first five days
    }

    @Test("two stores filled in different orders learn the same model and research gives the same answer")
    func sameAnswerWhateverTheOrder() throws {
        let history = Self.history()
        let forward = try Self.store("learned-research-forward", history)
        let backward = try Self.store("learned-research-backward", history.reversed())
        // Today's incidents arrive too, in another order on each instance: they are not learned from.
        let todays = (0..<3).map { n in
            var incident = Self.incident(from: history)
            incident.occurrenceNumber = "4322999999\(n)"
            return incident
        }
        try forward.pool.write { db in for i in todays { try HistoryIndex.index(i, revision: 1, source: "incident", db: db) } }
        try backward.pool.write { db in for i in todays.reversed() { try HistoryIndex.index(i, revision: 1, source: "incident", db: db) } }
        let a = try Self.learn(forward), b = try Self.learn(backward)
        #expect(a.model == b.model && a.people == b.people)
        func research(_ store: ServiceStore) throws -> [Candidate] {
            try store.pool.read { db in
                let learned = try #require(try MatchModelCache().matcher(forDay: Self.today, db: db))
                return try Researcher(settings: .standard, learned: learned).research(Self.incident(from: history), db: db)
            }
        }
        let one = try research(forward), two = try research(backward)
        #expect(!one.isEmpty)
        #expect(one == two)
    }

    @Test("the model is learned again when the day changes, and when an import has settled; the cache follows the stored version")
    func relearnedOnDayAndSettle() throws {
        let history = Self.history()
        let store = try Self.store("learned-research-relearn", Array(history.prefix(100)))
        let cache = MatchModelCache()
        let first = try Self.learn(store)
        #expect(first.people == 300)
        #expect(try MatchModelStore.retrainIfDue(store: store, every: 100, minimumPeople: 100, before: Self.today, now: Self.now) == nil)
        try store.pool.write { db in for i in history[100..<110] { try HistoryIndex.index(i, revision: 0, source: "history:test", db: db) } }
        // 30 more people: below `every`, not yet settled (the previous check saw 300).
        #expect(
            try MatchModelStore.retrainIfDue(store: store, every: 100, minimumPeople: 100, before: Self.today, settled: 300, now: Self.now) == nil)
        #expect(try store.pool.read { try cache.matcher(forDay: Self.today, db: $0) }?.stored.people == 300)
        // Still 330 at the next check: the import is over, learned from all of them.
        let settled = try #require(
            try MatchModelStore.retrainIfDue(
                store: store, every: 100, minimumPeople: 100, before: Self.today, settled: 330,
                now: Self.now))
        #expect(settled.people == 330)
        #expect(try store.pool.read { try cache.matcher(forDay: Self.today, db: $0) }?.stored.people == 330)
        // The next day: learned again for it.
        let next = try #require(try MatchModelStore.retrainIfDue(store: store, every: 100, minimumPeople: 100, before: "2026-11-24", now: Self.now))
        #expect(next.beforeDay == "2026-11-24")
        #expect(try store.pool.read { try cache.matcher(forDay: Self.today, db: $0) } == nil)
    }

    @Test("within an import a model is learned again after `every` people or a tenth of the model's people, whichever is more")
    func relearnedAfterProportionalGrowth() throws {
        let store = try Self.store("learned-research-growth", Array(Self.history().prefix(110)))
        let first = try Self.learn(store)
        #expect(first.people == 330)
        func due(storedPeople: Int, every: Int) throws -> (due: Bool, people: Int, behind: Int) {
            try store.pool.write { db in
                try MatchModelStore.save(
                    MatchModelStore.Stored(model: first.model, people: storedPeople, trainedAt: Self.now, beforeDay: Self.today), db: db)
                return try MatchModelStore.isDue(db, every: every, minimumPeople: 100, before: Self.today)
            }
        }
        // 30 people since a model of 300: a tenth of 300, at least `every` (10).
        #expect(try due(storedPeople: 300, every: 10) == (true, 330, 30))
        // 20 since a model of 310: `every` passed, a tenth of 310 (31) not.
        #expect(try due(storedPeople: 310, every: 10) == (false, 330, 20))
        // `every` above a tenth: it rules.
        #expect(try due(storedPeople: 300, every: 31) == (false, 330, 30))
        #expect(try due(storedPeople: 300, every: 30) == (true, 330, 30))
        // Fewer people than the model was learned from (a purge): due at once.
        #expect(try due(storedPeople: 340, every: 1_000) == (true, 330, 10))
    }
}
