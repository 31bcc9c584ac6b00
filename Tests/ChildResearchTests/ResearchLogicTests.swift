import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import Logging
import ServiceRuntime
import Testing

@testable import ChildResearchService

func day(_ text: String) -> Date {
    let f = ISO8601DateFormatter()
    return f.date(from: text + "T20:00:00Z")!
}

func makeIncident(
    _ occurrence: String, on date: String, lines: [String], town: String = "Reading", postcode: String,
    parties: [Party], children: [RecordedChild] = []
) -> Incident {
    Incident(
        occurrenceNumber: occurrence, forceCode: "43", occurredAt: day(date), reportedAt: day(date),
        incidentAddress: PostalAddress(lines: lines, town: town, postcode: postcode), riskLevel: .medium, crime: true,
        parties: parties, children: children)
}

/// Earlier records of the Hughes household, a move, and an unrelated family.
enum History {
    static let h1 = makeIncident(
        "43230000101", on: "2023-05-10", lines: ["Flat 2", "10 High Street"], postcode: "RG1 7LL",
        parties: [
            Party(role: .victim, givenName: "Sarah", familyName: "Hughes", dateOfBirth: "1988-07-21"),
            Party(role: .suspect, givenName: "Mark", familyName: "Hughes", dateOfBirth: "1985-02-02"),
        ],
        children: [
            RecordedChild(givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12", school: RecordedSchool(name: "St Mary's CE Primary")),
            RecordedChild(givenName: "Amelia", familyName: "Smith-Hughes", dateOfBirth: "2019-01-30"),
        ])
    static let h2 = makeIncident(
        "43210000202", on: "2021-03-01", lines: ["4 Mill Lane"], town: "Oxford", postcode: "OX4 1AA",
        parties: [Party(role: .victim, givenName: "Sarah", familyName: "Hughes", dateOfBirth: "1988-07-21")],
        children: [
            RecordedChild(givenName: "Jack", familyName: "Hughes", dateOfBirth: "2008-01-01"),
            RecordedChild(givenName: "Lily", familyName: "Hughes", dateOfBirth: "2012-09-09"),
        ])
    static let h3 = makeIncident(
        "43220000303", on: "2022-08-08", lines: ["22 Station Road"], postcode: "RG1 1AA",
        parties: [Party(role: .victim, givenName: "Priya", familyName: "Patel", dateOfBirth: "1990-03-03")],
        children: [RecordedChild(givenName: "Noah", familyName: "Patel", dateOfBirth: "2016-04-04")])
    /// Today's incident: the flat written another way, the victim's name misspelt and DOB digits transposed.
    static let today = makeIncident(
        "43260000999", on: "2026-11-20", lines: ["2/10 High St"], postcode: "rg17ll",
        parties: [Party(role: .victim, givenName: "Sara", familyName: "Hughes", dateOfBirth: "1988-07-12")])

    static func store() throws -> ServiceStore {
        let store = try ServiceStore(
            path: TestPaths.temporaryDirectory("research") + "/store.sqlite",
            migrations: ChildResearchService.migrations)
        try store.pool.write { (db: Database) throws in
            for incident in [h1, h2, h3] { try HistoryIndex.index(incident, revision: 0, source: "history:test", db: db) }
        }
        return store
    }
}

@Suite("History index and research")
struct ResearchLogicTests {
    let researcher = Researcher(settings: .standard)

    @Test("indexing is idempotent and a later revision replaces an occurrence's people")
    func indexing() throws {
        let store = try History.store()
        try store.pool.write { (db: Database) throws in
            #expect(try HistoryIndex.counts(db).incidents == 3)
            #expect(try HistoryIndex.counts(db).people == 9)
            #expect(try HistoryIndex.index(History.h1, revision: 0, source: "again", db: db) == false)
            var amended = History.h3
            amended.children.append(RecordedChild(givenName: "Ava", familyName: "Patel", ageYears: 3))
            #expect(try HistoryIndex.index(amended, revision: 1, source: "incident", db: db))
            #expect(try HistoryIndex.counts(db).incidents == 3)
            #expect(try HistoryIndex.counts(db).people == 10)
            #expect(try HistoryIndex.index(History.h3, revision: 0, source: "older", db: db) == false)
            #expect(try HistoryIndex.counts(db).incidents == 3)
            #expect(try HistoryIndex.counts(db).people == 10)
        }
    }

    @Test("an incident without children: children at the same flat and of the same victim are proposed, adults and over-18s are not")
    func research() throws {
        let store = try History.store()
        let candidates = try store.pool.read { db in try researcher.research(History.today, db: db) }
        let names = candidates.map(\.child.givenName)
        #expect(Set(names) == ["Oliver", "Amelia", "Lily"])
        // Address and adult evidence together rank above the adult alone.
        #expect(names.last == "Lily")
        let oliver = try #require(candidates.first { $0.child.givenName == "Oliver" })
        #expect(oliver.evidence.sourceOccurrences == ["43230000101"])
        #expect(oliver.evidence.explanation.contains { $0.hasPrefix("address: same address as 43230000101") })
        #expect(
            oliver.evidence.explanation.contains { $0.contains("adult: victim Sara Hughes matched victim Sarah Hughes") && $0.contains("transposed") }
        )
        #expect(oliver.child.dateOfBirth == "2015-06-12")
        #expect(oliver.child.recordedSchool?.name == "St Mary's CE Primary")
        #expect(oliver.child.childId == HistoryIndex.personId(given: "Oliver", family: "Hughes", dateOfBirth: "2015-06-12", postcode: "RG1 7LL"))
        #expect(oliver.evidence.score > 0.8)
        let lily = try #require(candidates.first { $0.child.givenName == "Lily" })
        #expect(lily.evidence.score < oliver.evidence.score)
        #expect(!lily.evidence.explanation.contains { $0.hasPrefix("address:") })

        // A rejected child is not proposed again.
        let again = try store.pool.read { db in try researcher.research(History.today, db: db, excluded: [oliver.child.childId]) }
        #expect(!again.map(\.child.givenName).contains("Oliver"))
        // Someone unrelated at another address: nothing.
        let stranger = makeIncident(
            "43260000998", on: "2026-11-20", lines: ["1 Queens Road"], postcode: "SL1 1AA",
            parties: [Party(role: .victim, givenName: "Grace", familyName: "Okafor", dateOfBirth: "1992-02-02")])
        #expect(try store.pool.read { db in try researcher.research(stranger, db: db) }.isEmpty)
    }

    @Test("research reads only the incident's own force's records: the same household under another force finds and identifies no one")
    func ownForceOnly() throws {
        let store = try History.store()
        var elsewhere = History.today
        elsewhere.forceCode = "05"
        elsewhere.occurrenceNumber = "CC-20261120-0001"
        #expect(try store.pool.read { db in try researcher.research(elsewhere, db: db) }.isEmpty)
        let child = RecordedChild(givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12")
        elsewhere.children = [child]
        let (identified, notes) = try store.pool.read { db in try researcher.identify(child, in: elsewhere, db: db) }
        #expect(identified.recordedSchool == nil && identified.schoolOrigin == nil && notes.isEmpty, "no other force's record fills anything")
        // The same incident under the records' own force finds the household's children.
        #expect(try !store.pool.read { db in try researcher.research(History.today, db: db) }.isEmpty)
    }

    @Test("the answer does not depend on the order the index was filled in, nor on which of the day's other incidents have arrived")
    func arrivalOrder() throws {
        // The same day at the same flat, with the adults of today's incident and a child the
        // officer did record: an instance that holds its partition has it indexed already.
        let sameDay = makeIncident(
            "43260000997", on: "2026-11-20", lines: ["Flat 2", "10 High Street"], postcode: "RG1 7LL",
            parties: [Party(role: .victim, givenName: "Sarah", familyName: "Hughes", dateOfBirth: "1988-07-21")],
            children: [
                RecordedChild(givenName: "Tommy", familyName: "Hughes", dateOfBirth: "2020-02-02"),
                RecordedChild(givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12", school: RecordedSchool(name: "Today's School")),
            ])
        let inOrder = try History.store()
        let otherOrder = try ServiceStore(
            path: TestPaths.temporaryDirectory("research-order") + "/store.sqlite", migrations: ChildResearchService.migrations)
        try otherOrder.pool.write { (db: Database) throws in
            for incident in [sameDay, History.h3, History.h1, History.h2] {
                try HistoryIndex.index(incident, revision: 0, source: "history:test", db: db)
            }
        }
        let oliver = RecordedChild(givenName: "Ollie", familyName: "Hughes")
        var withOliver = Self.bothAdults
        withOliver.children = [oliver]
        func answer(_ store: ServiceStore) throws -> ([Candidate], IdentifiedChild) {
            try store.pool.read { db in
                (try researcher.research(Self.bothAdults, db: db), try researcher.identify(oliver, in: withOliver, db: db).0)
            }
        }
        let (a, oliverA) = try answer(inOrder), (b, oliverB) = try answer(otherOrder)
        #expect(a == b)
        #expect(oliverA == oliverB && oliverA.recordedSchool?.name == "St Mary's CE Primary")
        #expect(!b.contains { $0.child.givenName == "Tommy" }, "the day's own incidents are not earlier records")
        #expect(Set(b.map(\.child.givenName)) == ["Oliver", "Amelia", "Lily"])
    }

    @Test("an officer-recorded child by nickname without DOB keeps the history id and gets DOB and school filled")
    func officerChild() throws {
        let store = try History.store()
        let child = RecordedChild(givenName: "Ollie", familyName: "Hughes")
        var incident = History.today
        incident.children = [child]
        let (identified, notes) = try store.pool.read { db in try researcher.identify(child, in: incident, db: db) }
        #expect(identified.childId == HistoryIndex.personId(given: "Oliver", family: "Hughes", dateOfBirth: "2015-06-12", postcode: "RG1 7LL"))
        #expect(identified.dateOfBirth == "2015-06-12")
        #expect(identified.recordedSchool?.name == "St Mary's CE Primary")
        // The school is old evidence: it says which record it came from, when, and where the child lived then.
        #expect(identified.schoolOrigin == SchoolRecordOrigin(occurrenceNumber: "43230000101", recordedOn: "2023-05-10", homePostcode: "RG1 7LL"))
        #expect(notes.contains { $0.contains("date of birth filled") })
        // A child never seen before keeps what the officer recorded, with an id of its own.
        let newChild = RecordedChild(givenName: "Freya", familyName: "Nowak", ageYears: 4)
        let (other, otherNotes) = try store.pool.read { db in try researcher.identify(newChild, in: incident, db: db) }
        #expect(other.childId.hasPrefix("c-") && other.childId != identified.childId)
        #expect(other.dateOfBirth == nil && other.ageYears == 4 && otherNotes.isEmpty)
    }

    /// Today's incident with both adults of the Hughes household: Oliver and Amelia score about 0.97.
    static let bothAdults: Incident = {
        var incident = History.today
        incident.parties.append(Party(role: .suspect, givenName: "Mark", familyName: "Hughes", dateOfBirth: "1985-02-02"))
        return incident
    }()

    func applyToday(_ incident: Incident, settings: ChildResearchService.Settings, db: Database, id: String = "m-1", revision: Int = 1) throws {
        let recorded = IncidentRecorded(kind: revision == 1 ? .new : .amendment, revision: revision, changes: [], source: "test", incident: incident)
        try ChildResearchService.apply(
            recorded, messageId: id, settings: settings, db: db,
            outbox: Outbox(db: db, producer: "child-research"), now: day("2026-11-21"), logger: TestLog.logger("research"))
    }

    @Test("under the shipped protocols every found child waits for a MASH officer, even at a score of 0.97; nothing goes on before a decision")
    func humanConfirmationByDefault() throws {
        let store = try History.store()
        let settings = try ChildResearchService.Settings.fromEnvironment([:])
        #expect(settings.research(forForce: "43").autoConfirm == .off && settings.research(forForce: "05").autoConfirm == .off)
        try store.pool.write { (db: Database) throws in
            try applyToday(Self.bothAdults, settings: settings, db: db)
            let proposals = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: "43260000999")
            let oliver = try #require(proposals.first { $0.child.givenName == "Oliver" })
            #expect(oliver.evidence.score >= 0.95, "the test needs a confident candidate: \(oliver.evidence)")
            #expect(proposals.count == 3 && proposals.allSatisfy { $0.status == "pending" && $0.decidedBy == nil && $0.evidence.confirmedBy == nil })
            #expect(try OutboxMessage.filter(Column("topic") == Topics.children.name).fetchCount(db) == 0)
        }
    }

    @Test(
        "service logic: with automatic confirmation on, candidates at its threshold are confirmed `auto`, the rest queued; rejected ones never proposed again"
    )
    func queue() throws {
        let store = try History.store()
        var settings = ChildResearchService.Settings()
        settings.fallback.autoConfirm = .init(enabled: true, threshold: 0.95)
        try store.pool.write { (db: Database) throws in
            try applyToday(Self.bothAdults, settings: settings, db: db)
            let proposals = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: "43260000999")
            #expect(proposals.count == 3)
            let auto = proposals.filter { $0.status == "confirmed" }
            #expect(Set(auto.map(\.child.givenName)) == ["Oliver", "Amelia"])
            #expect(auto.allSatisfy { $0.evidence.confirmedBy == "auto" && $0.decidedBy == "auto" && $0.evidence.score >= 0.95 })
            #expect(proposals.filter { $0.status == "pending" }.map(\.child.givenName) == ["Lily"])
            // Auto-confirmed children went to the outbox for encompass.children.
            let sent = try OutboxMessage.filter(Column("topic") == Topics.children.name).fetchAll(db)
            #expect(sent.count == auto.count)
            let message = try WireFormat.decode(ChildIdentified.self, from: Array(sent[0].value)).payload
            #expect(message.source == .research && message.evidence?.confirmedBy == "auto")

            let lily = try #require(proposals.first { $0.child.givenName == "Lily" })
            _ = try ReviewQueue.decide(
                db, proposal: lily,
                decision: ReviewDecision(
                    forceCode: "43", occurrenceNumber: "43260000999", proposalId: lily.proposalId, verdict: .reject,
                    reviewer: "PS 1234", decidedAt: day("2026-11-21")))
            #expect(try ReviewQueue.rejectedChildren(db, forceCode: "43", occurrenceNumber: "43260000999") == [lily.child.childId])
            // An amendment (revision 2) researches again: Lily stays rejected, not re-queued as pending.
            try applyToday(Self.bothAdults, settings: settings, db: db, id: "m-2", revision: 2)
            let after = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: "43260000999")
            #expect(after.first { $0.child.givenName == "Lily" }?.status == "rejected")
            #expect(after.count == 3)
        }
    }

    @Test("two children of one incident that match one earlier record stay two children; one child listed twice is one")
    func namesakes() throws {
        let store = try History.store()
        var incident = History.today
        // "Ollie" aged 11 is Oliver Hughes of the records (born 2015-06-12); a second Oliver
        // aged 7 matches that record too (name and address, no date of birth to tell them
        // apart), yet is another child; and Oliver born 2015-06-12 is the first listed again.
        incident.children = [
            RecordedChild(givenName: "Ollie", familyName: "Hughes", ageYears: 11),
            RecordedChild(givenName: "Oliver", familyName: "Hughes", ageYears: 7),
            RecordedChild(givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12"),
        ]
        let recorded = IncidentRecorded(kind: .new, revision: 1, changes: [], source: "test", incident: incident)
        try store.pool.write { (db: Database) throws in
            try ChildResearchService.apply(
                recorded, messageId: "m-1", settings: ChildResearchService.Settings(), db: db,
                outbox: Outbox(db: db, producer: "child-research"), now: day("2026-11-21"), logger: TestLog.logger("research"))
            let sent = try OutboxMessage.filter(Column("topic") == Topics.children.name).fetchAll(db)
                .map { try WireFormat.decode(ChildIdentified.self, from: Array($0.value)).payload.child }
            #expect(sent.count == 2, "\(sent.map { ($0.givenName, $0.dateOfBirth, $0.ageYears) })")
            #expect(Set(sent.map(\.childId)).count == 2)
            #expect(sent.contains { $0.givenName == "Oliver" && $0.ageYears == 7 && $0.dateOfBirth == nil })
        }
    }

    @Test("messages that cannot be right are rejected with a reason")
    func validation() {
        var bad = History.today
        bad.occurrenceNumber = " "
        #expect(throws: RejectedMessage.self) { try ChildResearchService.validate(bad, revision: 1) }
        #expect(throws: RejectedMessage.self) { try ChildResearchService.validate(History.today, revision: 0) }
    }
}

@Suite("Child research settings")
struct SettingsTests {
    @Test(
        "both shipped force protocols have a research section with automatic confirmation off; environment overrides apply and bad values are refused by name"
    )
    func settings() throws {
        let settings = try ChildResearchService.Settings.fromEnvironment([:])
        #expect(Set(settings.protocols.keys) == ["43", "05"])
        for code in ["43", "05"] {
            #expect(settings.research(forForce: code).autoConfirm == ResearchProtocol.AutoConfirm(enabled: false, threshold: 0.95))
        }
        #expect(settings.fallback.autoConfirm.enabled == false)
        let overridden = try ChildResearchService.Settings.fromEnvironment(["ENCOMPASS_RESEARCH_CONFIDENT_THRESHOLD": "0.9"])
        #expect(overridden.research(forForce: "05").autoConfirm == .init(enabled: false, threshold: 0.9))
        #expect(overridden.research(forForce: "99").autoConfirm.threshold == 0.9)
        do {
            _ = try ChildResearchService.Settings.fromEnvironment(["ENCOMPASS_RESEARCH_PERSON_THRESHOLD": "high"])
            Issue.record("a non-number threshold was accepted")
        } catch {
            #expect(error.description.contains("ENCOMPASS_RESEARCH_PERSON_THRESHOLD"))
        }
    }

    func protocols(_ research: String) throws -> [String: String] {
        let directory = TestPaths.temporaryDirectory("protocols")
        try #"{"forceCode": "43", "name": "Test force", "research": \#(research)}"#.write(
            toFile: directory + "/43.json", atomically: true, encoding: .utf8)
        return ["ENCOMPASS_PROTOCOLS_DIR": directory]
    }

    @Test(
        "a protocol turns automatic confirmation on with its threshold; an old confidentThreshold is only a threshold; a threshold outside 0…1 is refused"
    )
    func autoConfirmSetting() throws {
        let on = try ChildResearchService.Settings.fromEnvironment(protocols(#"{"autoConfirm": {"enabled": true, "threshold": 0.97}}"#))
        #expect(on.research(forForce: "43").autoConfirm == .init(enabled: true, threshold: 0.97))
        #expect(on.research(forForce: "43").confirmsAutomatically(score: 0.97) && !on.research(forForce: "43").confirmsAutomatically(score: 0.969))
        #expect(on.research(forForce: "43").proposalThreshold == 0.5, "missing fields take the defaults")
        let old = try ChildResearchService.Settings.fromEnvironment(protocols(#"{"proposalThreshold": 0.5, "confidentThreshold": 0.9}"#))
        #expect(old.research(forForce: "43").autoConfirm == .init(enabled: false, threshold: 0.9))
        #expect(!old.research(forForce: "43").confirmsAutomatically(score: 0.99))
        do {
            _ = try ChildResearchService.Settings.fromEnvironment(protocols(#"{"autoConfirm": {"enabled": true, "threshold": 95}}"#))
            Issue.record("a threshold of 95 was accepted")
        } catch let error as ConfigurationError {
            #expect(error.variable == "ENCOMPASS_PROTOCOLS_DIR")
            #expect(error.description.contains("autoConfirm.threshold is 95.0; set a number from 0 to 1"), "\(error)")
        }
    }
}

@Suite("Research: grouping records into children")
struct GroupingTests {
    @Test("two children recorded in the same incident are two children, even when one's name is the other's nickname (Evie and Evelyn)")
    func siblingsStayApart() throws {
        let singhs = makeIncident(
            "43240000701", on: "2024-12-20", lines: ["Flat 6, 67 Chiltern View"], town: "Milton Keynes", postcode: "MK8 9LF",
            parties: [Party(role: .victim, givenName: "Leanne", familyName: "Singh", dateOfBirth: "1997-11-08")],
            children: [
                RecordedChild(givenName: "Evelyn", familyName: "Singh", dateOfBirth: "2009-10-09"),
                RecordedChild(givenName: "Evie", familyName: "Singh", dateOfBirth: "2015-02-27"),
            ])
        let store = try ResidenceTests.store([singhs])
        let today = makeIncident(
            "43260000702", on: "2026-11-20", lines: ["Flat 6, 67 Chiltern View"], town: "Milton Keynes", postcode: "MK8 9LF",
            parties: [Party(role: .victim, givenName: "Leanne", familyName: "Singh", dateOfBirth: "1997-11-08")])
        let found = try store.pool.read { db in try Researcher(settings: .standard).research(today, db: db) }
        #expect(Set(found.map(\.child.givenName)) == ["Evelyn", "Evie"], "\(found.map(\.child))")
        // The same name twice in one record (one child entered twice, a date of birth mistyped) stays one candidate.
        var twice = singhs
        twice.occurrenceNumber = "43240000703"
        twice.children = [
            RecordedChild(givenName: "Evie", familyName: "Singh", dateOfBirth: "2015-02-27"),
            RecordedChild(givenName: "Evie", familyName: "Singh", dateOfBirth: "2015-02-72"),
        ]
        let single = try ResidenceTests.store([twice])
        #expect(try single.pool.read { db in try Researcher(settings: .standard).research(today, db: db) }.map(\.child.givenName) == ["Evie"])
    }
}
