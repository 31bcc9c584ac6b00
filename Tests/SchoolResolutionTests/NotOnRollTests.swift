import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchoolResolutionService

@Suite("Children on no school roll: a task for the MASH to tell the home local authority")
struct NotOnRollTests {
    let resolver = SchoolResolver(matcher: Fixtures.matcher, protocols: Fixtures.protocols)
    let ehe = SchoolContact(role: "education-otherwise", name: "Reading EHE team", email: "ehe@reading.example", phone: "0118 937 0000")

    func resolve(_ recorded: RecordedSchool?, origin: SchoolRecordOrigin? = nil, contacts: [String: [SchoolContact]] = [:]) -> Resolution {
        resolver.resolve(
            child: Fixtures.child(age: 8, school: recorded), incident: Fixtures.incident(), recorded: recorded,
            recordedOrigin: origin, previous: nil, blocked: []
        ) { contacts[$0] ?? [] }
    }

    @Test("the phrases officers and CSC write are recognised, whole; a school's name containing them is not")
    func phrases() {
        #expect(NotOnRoll(recorded: "Home Educated") == .homeEducated)
        #expect(NotOnRoll(recorded: "E.H.E") == nil, "initials with dots are not read as EHE: too easily a school's abbreviation")
        #expect(NotOnRoll(recorded: "EHE") == .homeEducated)
        #expect(NotOnRoll(recorded: "home-educated") == .homeEducated)
        #expect(NotOnRoll(recorded: "CME") == .missingEducation)
        #expect(NotOnRoll(recorded: "not on roll") == .missingEducation)
        #expect(NotOnRoll(recorded: "Awaiting a school place") == .awaitingPlace)
        #expect(NotOnRoll(recorded: "Caversham Primary School") == nil)
        #expect(NotOnRoll(recorded: "Home Farm Primary School") == nil)
    }

    @Test(
        "recorded as home-educated: a telephone task to the home LA's education-otherwise contact, under LA<code>; without one, the task says how to add it"
    )
    func homeEducated() {
        guard case .notice(let la, let reasons) = resolve(RecordedSchool(name: "Home educated"), contacts: ["LA870": [ehe]]) else {
            Issue.record("expected a notice to the LA")
            return
        }
        #expect(la.urn == "LA870" && la.localAuthorityCode == "870" && la.localAuthorityName == "Reading")
        #expect(la.channel == .telephone && la.contacts == [ehe])
        #expect(reasons.first?.contains("home-educated, on no school roll") == true)
        #expect(reasons.last?.contains("Reading EHE team") == true)
        guard case .notice(let bare, let why) = resolve(RecordedSchool(name: "CME")) else {
            Issue.record("expected a notice without contacts")
            return
        }
        #expect(bare.urn == "LA870" && bare.contacts.isEmpty && bare.channel == .telephone)
        #expect(why.last?.contains("la-contacts import") == true)
    }

    @Test("a 'home educated' carried over from an earlier record is old evidence, not a route: the request path decides")
    func oldRecord() {
        let origin = SchoolRecordOrigin(occurrenceNumber: "43230000001", recordedOn: "2023-01-01", homePostcode: "RG1 7LL")
        guard case .request = resolve(RecordedSchool(name: "Home educated"), origin: origin) else {
            Issue.record("expected a request")
            return
        }
    }

    @Test("Children's Social Care answers 'awaiting a school place': the request is resolved with a notice to the home LA")
    func cscAnswer() throws {
        let store = try Fixtures.store()
        let flow = SchoolFlow(protocols: Fixtures.protocols)
        let now = Fixtures.incidentDate.addingTimeInterval(3_600)
        let message = Fixtures.message(occurrence: "43260000301", child: Fixtures.child(id: "c-roll", age: 8, school: nil))
        try store.pool.write { db in
            let outcome = try flow.handleChild(
                message, messageId: "m-1", db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
            #expect(outcome == .request)
            try SchoolStore.apply(LocalAuthorityContacts(laCode: "870", contacts: [ehe], source: "test", updatedAt: now), db: db)
        }
        let sheet = "request_id,school_urn,school_name\n\(message.noticeKey),,Awaiting a school place\n"
        let answer = try store.pool.write { db in
            try CSCRequests.importReturned(
                Data(sheet.utf8), name: "returned.csv", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now)
        }
        #expect(answer.answers.map(\.outcome) == ["notice"] && answer.answers.first?.urn == "LA870")
        let published = try store.pool.read { try OutboxMessage.filter(Column("topic") == Topics.noticeRequests.name).fetchAll($0) }
            .map { try WireFormat.decode(NoticeRequested.self, from: Array($0.value)).payload }
        #expect(
            published.map(\.school.urn) == ["LA870"] && published.first?.school.contacts == [ehe] && published.first?.school.channel == .telephone)
    }
}
