import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService

/// Evidence that a found child no longer lives at the incident's address (or never lived with
/// its household) lowers its score, each with its own explanation line.
@Suite("Research: residence evidence")
struct ResidenceTests {
    static func store(_ incidents: [Incident]) throws -> ServiceStore {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("residence") + "/store.sqlite", migrations: ChildResearchService.migrations)
        try store.pool.write { (db: Database) throws in
            for incident in incidents { try HistoryIndex.index(incident, revision: 0, source: "history:test", db: db) }
        }
        return store
    }

    /// Everything the research finds, however low it scores, to read the explanations.
    let everything = Researcher(settings: ResearchProtocol(proposalThreshold: 0.05))
    let standard = Researcher(settings: .standard)

    /// The child of that given name among everything research finds for `incident`.
    func found(_ given: String, for incident: Incident, in store: ServiceStore) throws -> Candidate {
        try #require(try store.pool.read { db in try everything.research(incident, db: db) }.first { $0.child.givenName == given })
    }

    static let elm = ["7 Elm Road"]
    /// The Walshes lived at 7 Elm Road with Ruby in 2022; the Carters, with Leo, since 2024.
    static let walshes = makeIncident(
        "43220000401", on: "2022-03-01", lines: elm, postcode: "RG2 0AA",
        parties: [
            Party(role: .victim, givenName: "Dawn", familyName: "Walsh", dateOfBirth: "1984-04-04"),
            Party(role: .suspect, givenName: "Kyle", familyName: "Walsh", dateOfBirth: "1982-08-08"),
        ],
        children: [RecordedChild(givenName: "Ruby", familyName: "Walsh", dateOfBirth: "2014-05-05")])
    static let carters = makeIncident(
        "43240000402", on: "2024-06-01", lines: elm, postcode: "RG2 0AA",
        parties: [
            Party(role: .victim, givenName: "Emma", familyName: "Carter", dateOfBirth: "1991-01-10"),
            Party(role: .suspect, givenName: "Tom", familyName: "Carter", dateOfBirth: "1989-09-19"),
        ],
        children: [RecordedChild(givenName: "Leo", familyName: "Carter", dateOfBirth: "2017-02-02")])
    static let cartersToday = makeIncident(
        "43260000403", on: "2026-11-20", lines: elm, postcode: "RG2 0AA",
        parties: [
            Party(role: .victim, givenName: "Emma", familyName: "Carter", dateOfBirth: "1991-01-10"),
            Party(role: .suspect, givenName: "Tom", familyName: "Carter", dateOfBirth: "1989-09-19"),
        ])

    @Test(
        "previous occupants: a child of a household recorded at the address before another one moved in drops below the proposal threshold it passed (0.6), with the later household named"
    )
    func previousOccupants() throws {
        let store = try Self.store([Self.walshes, Self.carters])
        let ruby = try found("Ruby", for: Self.cartersToday, in: store)
        let leo = try found("Leo", for: Self.cartersToday, in: store)
        #expect(ruby.evidence.score < 0.5 && ruby.evidence.score < leo.evidence.score, "\(ruby.evidence)")
        #expect(
            ruby.evidence.explanation.contains(
                "residence: a different household recorded at this address since Ruby Walsh's last record here (43220000401, 2022-03-01): Emma Carter, Tom Carter in 43240000402 (2024-06-01) (score × 0.6)"
            ),
            "\(ruby.evidence.explanation)")
        #expect(!leo.evidence.explanation.contains { $0.hasPrefix("residence:") || $0.hasPrefix("household:") }, "\(leo.evidence.explanation)")
        #expect(leo.evidence.score > 0.9)
        let proposed = try store.pool.read { db in try standard.research(Self.cartersToday, db: db) }
        #expect(proposed.map(\.child.givenName) == ["Leo"])
    }

    @Test(
        "previous occupants: when this incident is the new household's first record, its adults are strangers to the household the child lived with")
    func strangersToday() throws {
        let store = try Self.store([Self.walshes])
        let ruby = try found("Ruby", for: Self.cartersToday, in: store)
        #expect(
            ruby.evidence.explanation.contains(
                "residence: Ruby Walsh was recorded here with Dawn Walsh, Kyle Walsh (43220000401, 2022-03-01); this incident's adults (Emma Carter, Tom Carter) are a different household (score × 0.6)"
            ),
            "\(ruby.evidence.explanation)")
        #expect(abs(ruby.evidence.score - 0.36) < 0.001)
        // Someone of the household's family name, misspelt: not a stranger, nothing to doubt.
        var relative = Self.cartersToday
        relative.parties = [Party(role: .victim, givenName: "Kerry", familyName: "Walch")]
        let withRelative = try store.pool.read { db in try standard.research(relative, db: db) }
        #expect(try #require(withRelative.first { $0.child.givenName == "Ruby" }).evidence.score == 0.6)
        // The Walshes again at their old address: nothing to doubt.
        var walshesBack = Self.cartersToday
        walshesBack.parties = Self.walshes.parties
        let back = try store.pool.read { db in try standard.research(walshesBack, db: db) }
        let rubyBack = try #require(back.first { $0.child.givenName == "Ruby" })
        #expect(!rubyBack.evidence.explanation.contains { $0.hasPrefix("residence:") } && rubyBack.evidence.score > 0.9)
    }

    static let oak = ["3 Oak Close"]
    static let browns = makeIncident(
        "43210000501", on: "2021-04-04", lines: oak, postcode: "RG3 3AA",
        parties: [Party(role: .victim, givenName: "Jade", familyName: "Brown", dateOfBirth: "1990-10-10")],
        children: [
            RecordedChild(givenName: "Mia", familyName: "Brown", dateOfBirth: "2012-12-12"),
            RecordedChild(givenName: "Sam", familyName: "Brown", dateOfBirth: "2015-05-15"),
        ])
    /// Mia is recorded with her aunt at Park Lane in 2023; Jade (without the children) at Bridge Street in 2024.
    static let miaElsewhere = makeIncident(
        "43230000502", on: "2023-09-09", lines: ["9 Park Lane"], town: "Oxford", postcode: "OX1 1ZZ",
        parties: [Party(role: .victim, givenName: "Tina", familyName: "Brown", dateOfBirth: "1980-01-01")],
        children: [RecordedChild(givenName: "Mia", familyName: "Brown", dateOfBirth: "2012-12-12")])
    static let jadeElsewhere = makeIncident(
        "43240000503", on: "2024-02-02", lines: ["12 Bridge Street"], town: "Oxford", postcode: "OX2 2BB",
        parties: [Party(role: .victim, givenName: "Jade", familyName: "Brown", dateOfBirth: "1990-10-10")])
    /// Today at 3 Oak Close, the adults not recorded.
    static let oakToday = makeIncident("43260000504", on: "2026-11-20", lines: oak, postcode: "RG3 3AA", parties: [])

    @Test("moved: a later record of the child at another address, or of every adult it lived with here, halves the score and says where and when")
    func moved() throws {
        let store = try Self.store([Self.browns, Self.miaElsewhere, Self.jadeElsewhere])
        let mia = try found("Mia", for: Self.oakToday, in: store)
        #expect(
            mia.evidence.explanation.contains(
                "residence: Mia Brown recorded at 9 Park Lane, OX1 1ZZ in 43230000502 (2023-09-09), after 43210000501 (2021-04-04) at this address (score × 0.5)"
            ),
            "\(mia.evidence.explanation)")
        #expect(abs(mia.evidence.score - 0.3) < 0.001)
        let sam = try found("Sam", for: Self.oakToday, in: store)
        #expect(
            sam.evidence.explanation.contains(
                "residence: the adults recorded here with Sam Brown in 43210000501 (2021-04-04) were recorded elsewhere since: Jade Brown at 12 Bridge Street, OX2 2BB in 43240000503 (2024-02-02) (score × 0.5)"
            ),
            "\(sam.evidence.explanation)")
        // Recorded elsewhere with an adult of this incident (her aunt Tina): not a move away from it.
        var withTina = Self.oakToday
        withTina.parties = Self.miaElsewhere.parties
        #expect(try found("Mia", for: withTina, in: store).evidence.explanation.allSatisfy { !$0.hasPrefix("residence: Mia Brown recorded at") })
        // Without the later records both children keep the address's 0.6.
        let before = try Self.store([Self.browns])
        let plain = try before.pool.read { db in try standard.research(Self.oakToday, db: db) }
        #expect(plain.map(\.evidence.score) == [0.6, 0.6] && plain.allSatisfy { !$0.evidence.explanation.contains { $0.hasPrefix("residence:") } })
    }

    /// Mark Hughes (today's suspect) was recorded in 2020 at Rose Street with Kelly Dunn and her son Tyler.
    static let marksEarlier = makeIncident(
        "43200000601", on: "2020-07-07", lines: ["5 Rose Street"], town: "Oxford", postcode: "OX4 4RR",
        parties: [
            Party(role: .victim, givenName: "Kelly", familyName: "Dunn", dateOfBirth: "1987-03-03"),
            Party(role: .suspect, givenName: "Mark", familyName: "Hughes", dateOfBirth: "1985-02-02"),
        ],
        children: [RecordedChild(givenName: "Tyler", familyName: "Dunn", dateOfBirth: "2013-01-01")])

    @Test(
        "a partner's earlier children: found only through the suspect, recorded with him and another partner elsewhere, never here: below the current household's children and the proposal threshold"
    )
    func partnersEarlierChildren() throws {
        let store = try Self.store([History.h1, History.h2, Self.marksEarlier])
        var today = History.today
        today.parties.append(Party(role: .suspect, givenName: "Mark", familyName: "Hughes", dateOfBirth: "1985-02-02"))
        let tyler = try found("Tyler", for: today, in: store)
        let oliver = try found("Oliver", for: today, in: store)
        #expect(
            tyler.evidence.explanation.contains(
                "household: Tyler Dunn was recorded only with Mark Hughes and Kelly Dunn at 5 Rose Street, OX4 4RR in 43200000601 (2020-07-07), never at this address, and that partner is not in this incident (a partner's earlier children rarely live with the new household) (score × 0.6)"
            ),
            "\(tyler.evidence.explanation)")
        #expect(tyler.evidence.score < 0.5 && tyler.evidence.score < oliver.evidence.score)
        // Lily, recorded with Sarah (today's victim) alone at her earlier address: no doubt.
        let lily = try found("Lily", for: today, in: store)
        #expect(!lily.evidence.explanation.contains { $0.hasPrefix("household:") || $0.hasPrefix("residence:") })
        #expect(try store.pool.read { db in try standard.research(today, db: db) }.map(\.child.givenName).contains("Tyler") == false)
        // Kelly in today's incident too: Tyler is hers, no doubt.
        today.parties.append(Party(role: .other, givenName: "Kelly", familyName: "Dunn", dateOfBirth: "1987-03-03"))
        #expect(try found("Tyler", for: today, in: store).evidence.explanation.allSatisfy { !$0.hasPrefix("household:") })
    }

    @Test("a victim's children from an earlier relationship, found through her, are not lowered by the partner rule (they usually live with her)")
    func victimsEarlierChildren() throws {
        // Kelly Dunn is today's victim, at a new address with a new partner; Tyler was recorded with her and Mark Hughes at Rose Street.
        let store = try Self.store([Self.marksEarlier])
        let today = makeIncident(
            "43260000602", on: "2026-11-20", lines: ["40 Castle Street"], postcode: "RG1 7SB",
            parties: [
                Party(role: .victim, givenName: "Kelly", familyName: "Dunn", dateOfBirth: "1987-03-03"),
                Party(role: .suspect, givenName: "Ryan", familyName: "Cole", dateOfBirth: "1986-06-06"),
            ])
        let tyler = try found("Tyler", for: today, in: store)
        #expect(!tyler.evidence.explanation.contains { $0.hasPrefix("household:") }, "\(tyler.evidence.explanation)")
        #expect(try store.pool.read { db in try standard.research(today, db: db) }.map(\.child.givenName) == ["Tyler"])
    }
}
