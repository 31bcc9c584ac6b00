import EncompassTestSupport
import GRDB
import ServiceRuntime
import EncompassModels
import Foundation
@testable import SchoolResolutionService
import Testing

@Suite("Verifying a child's school against the register and the force protocol")
struct ResolverTests {
    let resolver = SchoolResolver(matcher: Fixtures.matcher, protocols: Fixtures.protocols)
    let dslContacts = [SchoolContact(role: "dsl", name: "J Smith", email: "dsl@school.example", phone: "0118 000 0000")]

    func resolve(force: String = "43", age: Int? = 8, dob: String? = nil, _ school: RecordedSchool?, previous: String? = nil,
                 blocked: Set<String> = [], contacts: [String: [SchoolContact]] = [:]) -> Resolution {
        resolver.resolve(child: Fixtures.child(age: age, dob: dob, school: school), incident: Fixtures.incident(force: force),
                         recorded: school, previousURN: previous, blocked: blocked) { contacts[$0] ?? [] }
    }

    @Test("the protocol files carry a schools section for both forces")
    func protocols() {
        #expect(Set(Fixtures.protocols.keys) == ["43", "05"])
        #expect(Set(Fixtures.protocols["43"]?.localAuthorities.keys.map { $0 } ?? []) == ["867", "868", "869", "870", "871", "872", "825", "826", "931"])
        #expect(Set(Fixtures.protocols["05"]?.localAuthorities.keys.map { $0 } ?? []) == ["873", "874"])
        #expect(Fixtures.protocols["05"]?.outOfArea == .record)
        #expect(Fixtures.protocols["05"]?.earlyYearsChannel == .telephone)
        #expect(Fixtures.protocols["43"]?.earlyYearsChannel == .email)
    }

    @Test("a misspelt, abbreviated name resolves to the URN with the school's LA and contacts")
    func resolvedByName() throws {
        let outcome = resolve(RecordedSchool(name: "Cavresham Prim Sch"), contacts: ["109778": dslContacts])
        guard case .notice(let school, let reasons) = outcome else { Issue.record("expected a notice, got \(outcome)"); return }
        #expect(school.urn == "109778")
        #expect(school.localAuthorityCode == "870" && school.localAuthorityName == "Reading")
        #expect(school.contacts == dslContacts)
        #expect(school.channel == .email && !school.earlyYears)
        #expect(reasons.first?.contains("matched URN 109778") == true)
    }

    @Test("a URN alone is verified; a URN contradicted by the name goes to the request path")
    func urnChecks() {
        guard case .notice(let school, _) = resolve(RecordedSchool(urn: "109779")) else { Issue.record("URN alone"); return }
        #expect(school.name == "Coley Primary School")
        guard case .request(let reason, let candidates, _) = resolve(RecordedSchool(name: "Caversham Primary School", urn: "109779")) else {
            Issue.record("conflicting URN and name must not be guessed"); return
        }
        #expect(reason.contains("disagrees"))
        #expect(candidates.map(\.urn).contains("109778"))
        guard case .request(let unknown, _, _) = resolve(RecordedSchool(urn: "999999")) else { Issue.record("unknown URN"); return }
        #expect(unknown.contains("not in the register"))
    }

    @Test("a closed school is rejected; one with an open successor is amended to it, saying why")
    func closedSchools() {
        // 109806 Holly Spring Junior School, Bracknell: closed 2019-08-31, no successor → rejected.
        guard case .request(let reason, _, _) = resolve(RecordedSchool(name: "Holly Spring Junior School")) else { Issue.record("closed school"); return }
        #expect(reason.contains("closed"))
        // 110854 St Thomas More Catholic Primary, Peterborough: closed 2019-08-31, its academy
        // successor 147385 opened 2019-09-01 → amended (Cambridgeshire).
        guard case .notice(let peterborough, _) = resolve(force: "05", RecordedSchool(urn: "110854")) else { Issue.record("05 successor"); return }
        #expect(peterborough.urn == "147385")
        // 110002 closed 2018-10-31; successor 146275 (academy) opened 2018-11-01.
        guard case .notice(let school, let reasons) = resolve(RecordedSchool(urn: "110002")) else { Issue.record("successor"); return }
        #expect(school.urn == "146275")
        #expect(reasons.contains { $0.contains("amended to its successor URN 146275") })
    }

    @Test("the child's age must fit the school's age range")
    func ageMismatch() {
        // Caversham Primary is 5-11; a 14-year-old cannot be a pupil.
        guard case .request(let reason, _, _) = resolve(age: 14, RecordedSchool(name: "Caversham Primary School")) else {
            Issue.record("age mismatch"); return
        }
        #expect(reason.contains("aged 14") && reason.contains("5-11"))
        // Date of birth wins over a stale age: born 2015-06-01 is 11 on 2026-11-20 → fits.
        guard case .notice = resolve(age: 14, dob: "2015-06-01", RecordedSchool(name: "Caversham Primary School")) else {
            Issue.record("age from date of birth"); return
        }
        // An unknown age is not held against the school, but said.
        guard case .notice(_, let reasons) = resolve(age: nil, RecordedSchool(urn: "109778")) else { Issue.record("unknown age"); return }
        #expect(reasons.contains { $0.contains("age is unknown") })
    }

    @Test("the recorded school failing, the one previously held for the child is used, saying why")
    func previouslyHeld() {
        // An ambiguous "St Marys" fits the St Mary's the child was at before: that one is used.
        guard case .notice(let school, let reasons) = resolve(RecordedSchool(name: "St Marys"), previous: "109995") else {
            Issue.record("previous school"); return
        }
        #expect(school.urn == "109995")
        #expect(reasons.contains { $0.contains("ambiguous") })
        #expect(reasons.contains { $0.contains("previously held") })
        // But not a previous school the recorded name does not fit (the child may have moved).
        guard case .request(_, let candidates, let moved) = resolve(RecordedSchool(name: "St Marys"), previous: "109779") else {
            Issue.record("previous school not fitting the recorded name must not be used"); return
        }
        #expect(!candidates.isEmpty)
        #expect(moved.contains { $0.contains("does not fit the recorded name") })
        // A recorded school failing verification (closed) falls back to the previous one.
        guard case .notice(let fallback, _) = resolve(RecordedSchool(name: "Holly Spring Junior School"), previous: "109779") else {
            Issue.record("closed recorded school, previous used"); return
        }
        #expect(fallback.urn == "109779")
        guard case .request = resolve(RecordedSchool(name: "St Marys")) else { Issue.record("ambiguous → request"); return }
        guard case .request(let none, _, _) = resolve(nil) else { Issue.record("nothing recorded"); return }
        #expect(none.contains("no school recorded"))
    }

    @Test("a school that reported the pupil no longer attends is never notified again")
    func blocked() {
        guard case .request(let reason, _, _) = resolve(RecordedSchool(urn: "109779"), blocked: ["109779"]) else { Issue.record("blocked"); return }
        #expect(reason.contains("no longer attends"))
    }

    @Test("out of area: Cambridgeshire records without notifying; Thames Valley notifies only schools it holds contacts for")
    func outOfArea() {
        // A Cambridgeshire child at a Reading school.
        guard case .notNotified(let urn, let reasons) = resolve(force: "05", RecordedSchool(urn: "109778")) else { Issue.record("05 out of area"); return }
        #expect(urn == "109778")
        #expect(reasons.last?.contains("not notified (force protocol)") == true)
        // Even with contacts held, Cambridgeshire does not notify.
        guard case .notNotified = resolve(force: "05", RecordedSchool(urn: "109778"), contacts: ["109778": dslContacts]) else { Issue.record("05 contacts"); return }
        // Thames Valley: Bedford (LA 822) without contacts → recorded; with contacts → notified.
        guard case .notNotified(_, let tvReasons) = resolve(age: 12, RecordedSchool(name: "Bedford Free School")) else { Issue.record("43 no contacts"); return }
        #expect(tvReasons.last?.contains("no contacts") == true)
        guard case .notice(let school, _) = resolve(age: 12, RecordedSchool(name: "Bedford Free School"), contacts: ["900004": dslContacts]) else {
            Issue.record("43 with contacts"); return
        }
        #expect(school.localAuthorityCode == "822")
        // In area for Cambridgeshire.
        guard case .notice(let ely, _) = resolve(force: "05", RecordedSchool(name: "Ely St Marys Jun")) else { Issue.record("05 in area"); return }
        #expect(ely.urn == "141707")
    }

    @Test("early years: telephoned in Cambridgeshire, emailed in Thames Valley")
    func earlyYears() {
        guard case .notice(let histon, _) = resolve(force: "05", age: 4, RecordedSchool(name: "Histon Early Years Centre"), contacts: ["900001": dslContacts]) else {
            Issue.record("05 early years"); return
        }
        #expect(histon.earlyYears && histon.channel == .telephone)
        guard case .notice(let katesgrove, _) = resolve(age: 3, RecordedSchool(name: "Katesgrove Nursery"), contacts: ["900002": dslContacts]) else {
            Issue.record("43 early years"); return
        }
        #expect(katesgrove.earlyYears && katesgrove.channel == .email)
        // Darul Madinah Slough is 4-5 in the 2018 list: early years by its age range.
        guard case .notice(let darul, _) = resolve(age: 4, RecordedSchool(urn: "147293")) else { Issue.record("age-range early years"); return }
        #expect(darul.earlyYears)
    }

    @Test("without an email contact the notice goes by telephone, and says so")
    func channelFallback() {
        let phoneOnly = [SchoolContact(role: "office", phone: "0118 901 2345")]
        guard case .notice(let school, let reasons) = resolve(RecordedSchool(urn: "109778"), contacts: ["109778": phoneOnly]) else { Issue.record("phone"); return }
        #expect(school.channel == .telephone)
        #expect(reasons.contains { $0.contains("no safeguarding email") })
    }
}

@Suite("School resolution's rows written by prepared statements")
struct SchoolRowTests {
    @Test("the resolution and child-school rows' column lists match their Codable encoding, with and without optional values")
    func replaceableRows() throws {
        let at = Timestamp.parse("2026-11-23T10:00:00.250Z")!
        let resolution = ResolutionRow(noticeId: "n", childId: "c", forceCode: "43", occurrenceNumber: "1", incidentRevision: 2, outcome: "notice",
                                       urn: "110001", reasons: "[\"a\"]", updatedAt: at)
        var unresolved = resolution
        unresolved.urn = nil
        let link = ChildSchoolRow(childId: "c", urn: "110001", noticeId: "n", verifiedAt: at)
        for drift in [try resolution.replacementDrift(), try unresolved.replacementDrift(), try link.replacementDrift()] { #expect(drift == []) }
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("school-rows") + "/s.sqlite", migrations: [SchoolStore.migration])
        try store.pool.write { db in
            try resolution.insertOrReplace(db)
            try unresolved.insertOrReplace(db)
            try link.insertOrReplace(db)
            #expect(try ResolutionRow.fetchAll(db) == [unresolved])
            #expect(try ChildSchoolRow.fetchAll(db) == [link])
        }
    }
}
