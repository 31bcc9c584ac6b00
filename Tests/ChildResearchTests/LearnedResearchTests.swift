@testable import ChildResearchService
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@Suite("Research with the learned match model")
struct LearnedResearchTests {
    static let today = "2026-11-23"
    static let now = Date(timeIntervalSince1970: 1_795_400_000) // 2026-11-23 evening, London

    /// The model store's households, each with a child recorded in both incidents.
    static func history() -> [Incident] {
        MatchModelStoreTests.incidents().enumerated().map { i, incident in
            var incident = incident
            let h = i / 2
            incident.children = [RecordedChild(givenName: ["Mia", "Leo", "Ella", "Finn", "Ivy", "Theo"][h % 6], familyName: incident.parties[0].familyName,
                                               dateOfBirth: String(format: "2016-%02d-%02d", 1 + h % 12, 1 + h % 28))]
            return incident
        }
    }

    /// Today: household 0's victim (the misspelt form of her earlier records) at the household's
    /// address, no children recorded.
    static func incident(from history: [Incident]) -> Incident {
        let earlier = history[1]
        return Incident(occurrenceNumber: "43229999999", forceCode: "43", occurredAt: now, reportedAt: now, incidentAddress: earlier.incidentAddress,
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

    @Test("with a model stored for the incident's day research links by its probability and explains every field; without, by the hand-weighted matcher")
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
        for field in ["given name", "family name", "date of birth", "house number", "street", "postcode", "town"] {
            #expect(adult.contains(field), "\(field) missing in \(adult)")
        }
        #expect(child.evidence.explanation.contains { $0.hasPrefix("matcher: learned model (720 people of days before 2026-11-23)") })
        // A pair below the model's threshold does not link: the suspect is not the victim.
        let people = try store.pool.read { db in try HistoryIndex.people(forceCode: "43", occurrenceNumber: "43220000000", db: db) }
        let victim = try #require(people.first { $0.role == "victim" }).features, suspect = try #require(people.first { $0.role == "suspect" }).features
        #expect(!researcher.samePerson(victim, suspect))
        #expect(researcher.score(victim, victim).same)
        // Children of one household are told apart on names and date of birth: their shared
        // address does not make two siblings one child; the same name and date of birth does.
        func kid(_ given: String, _ dob: String) -> PersonFeatures {
            PersonFeatures(givenName: given, familyName: "Castleton", dateOfBirth: dob, addressLines: ["7 Mill Lane"], town: "Reading", postcode: "RG7 7AB")
        }
        #expect(!researcher.sameChild(kid("Isaac", "2015-03-02"), kid("Daisy", "2018-07-19")))
        #expect(researcher.sameChild(kid("Isaac", "2015-03-02"), kid("Isaac", "2015-03-02")))
        // Without a model the hand-weighted matcher decides, with its own reasons (no probability).
        let hand = Researcher(settings: .standard).score(victim, victim)
        #expect(hand.same && !hand.why().contains("probability"))
        #expect(!Researcher(settings: .standard).samePerson(victim, suspect))
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
        #expect(try MatchModelStore.retrainIfDue(store: store, every: 100, minimumPeople: 100, before: Self.today, settled: 300, now: Self.now) == nil)
        #expect(try store.pool.read { try cache.matcher(forDay: Self.today, db: $0) }?.stored.people == 300)
        // Still 330 at the next check: the import is over, learned from all of them.
        let settled = try #require(try MatchModelStore.retrainIfDue(store: store, every: 100, minimumPeople: 100, before: Self.today, settled: 330,
                                                                    now: Self.now))
        #expect(settled.people == 330)
        #expect(try store.pool.read { try cache.matcher(forDay: Self.today, db: $0) }?.stored.people == 330)
        // The next day: learned again for it.
        let next = try #require(try MatchModelStore.retrainIfDue(store: store, every: 100, minimumPeople: 100, before: "2026-11-24", now: Self.now))
        #expect(next.beforeDay == "2026-11-24")
        #expect(try store.pool.read { try cache.matcher(forDay: Self.today, db: $0) } == nil)
    }
}
