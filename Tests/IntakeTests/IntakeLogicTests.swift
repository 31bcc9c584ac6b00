import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import IntakeService

func date(_ text: String) -> Date { Timestamp.parse(text)! }

let now = date("2026-11-23T10:00:00Z")

func incident(
    occurrence: String = "43260001234", force: String = "43", occurred: String = "2026-11-22T21:15:00",
    children: [RecordedChild] = [
        RecordedChild(
            givenName: "Amelia", familyName: "Hughes", dateOfBirth: "2016-05-04",
            school: RecordedSchool(name: "St Marys CE Prim, Reading"))
    ]
) -> Incident {
    Incident(
        occurrenceNumber: occurrence, forceCode: force, occurredAt: date(occurred), reportedAt: date("2026-11-22T22:40:00"),
        incidentAddress: PostalAddress(lines: ["Flat 2", "14 Oxford Road"], town: "Reading", county: "Berkshire", postcode: "rg1 7ll"),
        localPolicingArea: "Reading", riskLevel: .medium, crime: true,
        parties: [
            Party(role: .victim, givenName: "Sarah", familyName: "Hughes", dateOfBirth: "1989-02-11"),
            Party(role: .suspect, givenName: "Mark", familyName: "Dolan"),
        ],
        children: children)
}

@Suite("Intake validation")
struct ValidationTests {
    let validator = IncidentValidator(forces: try! ForceRegistry(ForceRegistry.builtIn))

    @Test("a well-formed incident passes")
    func valid() {
        #expect(validator.validate(incident().normalised(), now: now) == [])
    }

    @Test(
        "each rule reports its field",
        arguments: [
            ("unknown force", { @Sendable (i: inout Incident) in i.forceCode = "99" }, "forceCode"),
            ("occurrence format", { @Sendable (i: inout Incident) in i.occurrenceNumber = "4326-0001" }, "occurrenceNumber"),
            ("occurrence missing", { @Sendable (i: inout Incident) in i.occurrenceNumber = " " }, "occurrenceNumber"),
            ("occurred in the future", { @Sendable (i: inout Incident) in i.occurredAt = date("2026-11-24T10:00:00Z") }, "occurredAt"),
            ("occurred before 1900", { @Sendable (i: inout Incident) in i.occurredAt = date("1899-12-31T10:00:00Z") }, "occurredAt"),
            ("reported before occurred", { @Sendable (i: inout Incident) in i.reportedAt = date("2026-11-20T10:00:00Z") }, "reportedAt"),
            ("bad postcode", { @Sendable (i: inout Incident) in i.incidentAddress.postcode = "RG1 7L" }, "incidentAddress.postcode"),
            ("no address lines", { @Sendable (i: inout Incident) in i.incidentAddress.lines = ["  "] }, "incidentAddress.lines"),
            ("unknown LPA", { @Sendable (i: inout Incident) in i.localPolicingArea = "Fenland" }, "localPolicingArea"),
            ("party name missing", { @Sendable (i: inout Incident) in i.parties[0].familyName = "" }, "parties[0].familyName"),
            ("party DOB not a date", { @Sendable (i: inout Incident) in i.parties[0].dateOfBirth = "1989-02-30" }, "parties[0].dateOfBirth"),
            ("child is 18", { @Sendable (i: inout Incident) in i.children[0].dateOfBirth = "2008-11-22" }, "children[0].dateOfBirth"),
            (
                "child born after the incident", { @Sendable (i: inout Incident) in i.children[0].dateOfBirth = "2026-11-23" },
                "children[0].dateOfBirth"
            ),
            ("child without DOB or age", { @Sendable (i: inout Incident) in i.children[0].dateOfBirth = nil }, "children[0]"),
            (
                "child age out of range",
                { @Sendable (i: inout Incident) in
                    i.children[0].dateOfBirth = nil
                    i.children[0].ageYears = 18
                }, "children[0].ageYears"
            ),
            ("bad URN", { @Sendable (i: inout Incident) in i.children[0].school = RecordedSchool(urn: "12AB56") }, "children[0].school.urn"),
            ("control characters in a name", { @Sendable (i: inout Incident) in i.children[0].givenName = "Ame\u{0}lia" }, "children[0].givenName"),
        ] as [(String, @Sendable (inout Incident) -> Void, String)])
    func rules(name: String, mutate: @Sendable (inout Incident) -> Void, field: String) {
        var value = incident()
        mutate(&value)
        let errors = validator.validate(value.normalised(), now: now)
        #expect(errors.map(\.field).contains(field), "\(name): \(errors)")
        #expect(errors.allSatisfy { !$0.message.isEmpty })
    }

    @Test("a child who turns 18 the day after the incident is still a child")
    func ageBoundary() {
        var value = incident()
        value.children[0].dateOfBirth = "2008-11-23"
        #expect(validator.validate(value, now: now) == [])
    }

    @Test("Cambridgeshire occurrence numbers follow their own format")
    func otherForce() {
        var value = incident(occurrence: "CC-20261122-0042", force: "05")
        value.localPolicingArea = "Fenland"
        #expect(validator.validate(value.normalised(), now: now) == [])
        value.occurrenceNumber = "43260001234"
        #expect(validator.validate(value, now: now).map(\.field) == ["occurrenceNumber"])
    }

    @Test("a missing LPA is derived where the address's local authority maps to one LPA, never guessed otherwise")
    func derivedLPA() {
        let forces = validator.forces
        var reading = incident()
        reading.localPolicingArea = nil
        #expect(forces.prepare(reading).localPolicingArea == "Reading") // RG1: Reading (unitary)
        var oxford = reading
        oxford.incidentAddress.postcode = "OX1 1AA"
        #expect(forces.prepare(oxford).localPolicingArea == nil) // Oxfordshire has three LPAs
        var explicit = reading
        explicit.localPolicingArea = "Slough"
        #expect(forces.prepare(explicit).localPolicingArea == "Slough") // given wins
        var peterborough = incident(occurrence: "CC-20261122-0001", force: "05")
        peterborough.localPolicingArea = nil
        peterborough.incidentAddress.postcode = "pe1 1aa"
        #expect(forces.prepare(peterborough).localPolicingArea == "Peterborough")
        var unknown = reading
        unknown.incidentAddress.postcode = "EC1A 1BB" // outside the force area
        #expect(forces.prepare(unknown).localPolicingArea == nil)
    }

    @Test(
        "UK postcodes are recognised and normalised",
        arguments: [
            ("rg1 7ll", "RG1 7LL"), ("OX44 9AA", "OX44 9AA"), ("hp219rq", "HP21 9RQ"), ("CB2 1TN", "CB2 1TN"),
            ("EC1A 1BB", "EC1A 1BB"), ("W1A 0AX", "W1A 0AX"), ("GIR 0AA", "GIR 0AA"),
        ])
    func postcodes(input: String, expected: String) {
        #expect(UKPostcode.normalise(input) == expected)
    }

    @Test("non-postcodes are refused", arguments: ["", "RG1", "RG1 7L", "QQ1 1AA", "RG1 7LLL", "12345", "RG1 7CI"])
    func notPostcodes(input: String) {
        #expect(UKPostcode.normalise(input) == nil)
    }

    @Test("local times without an offset are Europe/London, across DST")
    func londonTimes() {
        #expect(Timestamp.format(date("2026-11-22T21:15:00")) == "2026-11-22T21:15:00.000Z") // GMT
        #expect(Timestamp.format(date("2026-07-01T21:15:00")) == "2026-07-01T20:15:00.000Z") // BST
        #expect(Timestamp.format(date("2026-10-25 00:30")) == "2026-10-24T23:30:00.000Z")
        #expect(Timestamp.parse("22/11/2026 21:15") == nil)
    }
}

@Suite("Occurrence ledger: new, amendment, replay")
struct LedgerTests {
    func store() throws -> ServiceStore {
        try ServiceStore(path: TestPaths.temporaryDirectory("ledger") + "/intake.sqlite", migrations: [OccurrenceLedger.migration])
    }

    func apply(_ store: ServiceStore, _ value: Incident, source: String = "test") throws -> OccurrenceLedger.Outcome {
        try store.pool.write { db in
            try OccurrenceLedger.apply(
                value.normalised(), source: source, causationId: nil, db: db,
                outbox: Outbox(db: db, producer: "intake"), now: now)
        }
    }

    @Test("the officer's free text added or changed later is an amendment saying so; re-sent with only its spaces changed, a replay")
    func freeTextAmendments() throws {
        let store = try store()
        #expect(try apply(store, incident()) == .new)
        var described = incident()
        described.circumstances = "Argument in the kitchen; the children were upstairs."
        #expect(try apply(store, described) == .amendment(revision: 2, changes: ["circumstances changed"]))
        described.circumstances = "  Argument in the kitchen; the children were upstairs.\n"
        #expect(try apply(store, described) == .replay(revision: 2))
        described.safeguardingInformation = "The child may be tired in school."
        #expect(try apply(store, described) == .amendment(revision: 3, changes: ["safeguarding information changed"]))
    }

    @Test("same number re-sent: exact replays dropped, changes become amendments with what changed")
    func lifecycle() throws {
        let store = try store()
        #expect(try apply(store, incident()) == .new)
        #expect(try apply(store, incident()) == .replay(revision: 1))
        // Formatting differences only (postcode case, spaces) are still a replay.
        var respaced = incident()
        respaced.incidentAddress.postcode = "RG17LL"
        respaced.children[0].givenName = " Amelia "
        #expect(try apply(store, respaced) == .replay(revision: 1))
        // A child added later.
        var amended = incident()
        amended.children.append(RecordedChild(givenName: "Oliver", familyName: "Hughes", ageYears: 7))
        #expect(try apply(store, amended, source: "spreadsheet") == .amendment(revision: 2, changes: ["children added: 1"]))
        var riskier = amended
        riskier.riskLevel = .high
        #expect(try apply(store, riskier) == .amendment(revision: 3, changes: ["risk level changed: medium → high"]))

        let (versions, latest, published) = try store.pool.read { db in
            (
                try OccurrenceVersionRow.order(Column("revision")).fetchAll(db),
                try OccurrenceRow.fetchOne(db, key: "43260001234"),
                try OutboxMessage.order(Column("id")).fetchAll(db)
            )
        }
        #expect(versions.map(\.revision) == [1, 2, 3])
        #expect(versions.map(\.source) == ["test", "spreadsheet", "test"])
        #expect(latest?.revision == 3)
        #expect(published.count == 3)
        #expect(published.allSatisfy { $0.topic == Topics.incidents.name && $0.key == "43260001234" })
        let events = try published.map { try WireFormat.decode(IncidentRecorded.self, from: Array($0.value)).payload }
        #expect(events.map(\.kind) == [.new, .amendment, .amendment])
        #expect(events[1].incident.children.count == 2)
        #expect(Set(published.map(\.messageId)).count == 3)
    }
}

@Suite("Intake's rows written by prepared statements")
struct IntakeRowTests {
    @Test("the occurrence rows' column lists match their Codable encoding, and a replaced row reads back whole")
    func replaceableRows() throws {
        let row = OccurrenceRow(
            occurrenceNumber: "43260000001", forceCode: "43", revision: 2, contentHash: "h", incident: Data("{}".utf8),
            firstSeenAt: date("2026-11-23T10:00:00.123Z"), updatedAt: date("2026-11-23T11:00:00Z"))
        let version = OccurrenceVersionRow(
            occurrenceNumber: "43260000001", revision: 2, contentHash: "h", incident: Data("{}".utf8),
            source: "http", receivedAt: date("2026-11-23T11:00:00Z"))
        #expect(try row.replacementDrift() == [])
        #expect(try version.replacementDrift() == [])
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("intake-rows") + "/intake.sqlite", migrations: [OccurrenceLedger.migration])
        try store.pool.write { db in
            try row.insertOrReplace(db)
            var changed = row
            changed.revision = 3
            try changed.insertOrReplace(db)
            try version.insertOrReplace(db)
            #expect(try OccurrenceRow.fetchAll(db).map(\.revision) == [3])
            #expect(try OccurrenceRow.fetchOne(db, key: row.occurrenceNumber)?.databaseDictionary == changed.databaseDictionary)
            #expect(try OccurrenceVersionRow.fetchOne(db)?.databaseDictionary == version.databaseDictionary)
        }
    }
}
