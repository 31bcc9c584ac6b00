import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchoolResolutionService

@Suite("Verifying a child's school against the register and the force protocol")
struct ResolverTests {
    let resolver = SchoolResolver(matcher: Fixtures.matcher, protocols: Fixtures.protocols)
    let dslContacts = [SchoolContact(role: "dsl", name: "J Smith", email: "dsl@school.example", phone: "0118 000 0000")]

    func resolve(
        force: String = "43", age: Int? = 8, dob: String? = nil, _ school: RecordedSchool?, previous: String? = nil,
        blocked: Set<String> = [], contacts: [String: [SchoolContact]] = [:]
    ) -> Resolution {
        resolver.resolve(
            child: Fixtures.child(age: age, dob: dob, school: school), incident: Fixtures.incident(force: force),
            recorded: school, previous: previous.map { HeldSchool(urn: $0) }, blocked: blocked
        ) { contacts[$0] ?? [] }
    }

    @Test("the protocol files carry a schools section for both forces")
    func protocols() {
        #expect(Set(Fixtures.protocols.keys) == ["43", "05"])
        #expect(
            Set(Fixtures.protocols["43"]?.localAuthorities.keys.map { $0 } ?? []) == ["867", "868", "869", "870", "871", "872", "825", "826", "931"])
        #expect(Set(Fixtures.protocols["05"]?.localAuthorities.keys.map { $0 } ?? []) == ["873", "874"])
        #expect(Fixtures.protocols["05"]?.outOfArea == .notify && Fixtures.protocols["43"]?.outOfArea == .notify)
        #expect(Fixtures.protocols["05"]?.earlyYearsChannel == .telephone)
        #expect(Fixtures.protocols["43"]?.earlyYearsChannel == .email)
    }

    @Test("a misspelt, abbreviated name resolves to the URN with the school's LA and contacts")
    func resolvedByName() throws {
        let outcome = resolve(RecordedSchool(name: "Cavresham Prim Sch"), contacts: ["109778": dslContacts])
        guard case .notice(let school, let reasons) = outcome else {
            Issue.record("expected a notice, got \(outcome)")
            return
        }
        #expect(school.urn == "109778")
        #expect(school.localAuthorityCode == "870" && school.localAuthorityName == "Reading")
        #expect(school.contacts == dslContacts)
        #expect(school.channel == .email && !school.earlyYears)
        #expect(reasons.first?.contains("matched URN 109778") == true)
    }

    @Test("a URN alone is verified; a URN contradicted by the name goes to the request path")
    func urnChecks() {
        guard case .notice(let school, _) = resolve(RecordedSchool(urn: "109779")) else {
            Issue.record("URN alone")
            return
        }
        #expect(school.name == "Coley Primary School")
        guard case .request(let reason, let candidates, _) = resolve(RecordedSchool(name: "Caversham Primary School", urn: "109779")) else {
            Issue.record("conflicting URN and name must not be guessed")
            return
        }
        #expect(reason.contains("disagrees"))
        #expect(candidates.map(\.urn).contains("109778"))
        guard case .request(let unknown, _, _) = resolve(RecordedSchool(urn: "999999")) else {
            Issue.record("unknown URN")
            return
        }
        #expect(unknown.contains("not in the register"))
    }

    @Test("a closed school is rejected; one with an open successor is amended to it, saying why")
    func closedSchools() {
        // 109806 Holly Spring Junior School, Bracknell: closed 2019-08-31, no successor → rejected.
        guard case .request(let reason, _, _) = resolve(RecordedSchool(name: "Holly Spring Junior School")) else {
            Issue.record("closed school")
            return
        }
        #expect(reason.contains("closed"))
        // 110854 St Thomas More Catholic Primary, Peterborough: closed 2019-08-31, its academy
        // successor 147385 opened 2019-09-01 → amended (Cambridgeshire).
        guard case .notice(let peterborough, _) = resolve(force: "05", RecordedSchool(urn: "110854")) else {
            Issue.record("05 successor")
            return
        }
        #expect(peterborough.urn == "147385")
        // 110002 closed 2018-10-31; successor 146275 (academy) opened 2018-11-01.
        guard case .notice(let school, let reasons) = resolve(RecordedSchool(urn: "110002")) else {
            Issue.record("successor")
            return
        }
        #expect(school.urn == "146275")
        #expect(reasons.contains { $0.contains("amended to its successor URN 146275") })
    }

    @Test("the child's age must fit the school's age range")
    func ageMismatch() {
        // Caversham Primary is 5-11; a 14-year-old cannot be a pupil.
        guard case .request(let reason, _, _) = resolve(age: 14, RecordedSchool(name: "Caversham Primary School")) else {
            Issue.record("age mismatch")
            return
        }
        #expect(reason.contains("school-year age 13 or 14") && reason.contains("5-11"), "\(reason)")
        // Date of birth wins over a stale age, and the school year counts, not the age on the
        // day: born 2015-10-01 is 11 on 2026-11-20 but was 10 on 31 August 2026 (Year 6) → fits;
        // born 2015-06-01 was 11 on 31 August 2026: Year 7, no longer at a primary school.
        guard case .notice = resolve(age: 14, dob: "2015-10-01", RecordedSchool(name: "Caversham Primary School")) else {
            Issue.record("age from date of birth")
            return
        }
        guard case .request(let year7, _, _) = resolve(age: nil, dob: "2015-06-01", RecordedSchool(name: "Caversham Primary School")) else {
            Issue.record("a Year 7 child at a primary school must not be notified")
            return
        }
        #expect(year7.contains("school-year age 11 ") && year7.contains("ages 4-10"), "\(year7)")
        // A primary listed from 5 (compulsory school age) takes Reception: born 2022-03-01 is
        // 4 on 31 August 2026.
        guard case .notice = resolve(age: nil, dob: "2022-03-01", RecordedSchool(name: "Caversham Primary School")) else {
            Issue.record("a Reception child at a primary listed 5-11")
            return
        }
        // An unknown age is not held against the school, but said.
        guard case .notice(_, let reasons) = resolve(age: nil, RecordedSchool(urn: "109778")) else {
            Issue.record("unknown age")
            return
        }
        #expect(reasons.contains { $0.contains("age is unknown") })
    }

    @Test("the recorded school failing, the one previously held for the child is used, saying why")
    func previouslyHeld() {
        // An ambiguous "St Marys" fits the St Mary's the child was at before: that one is used.
        guard case .notice(let school, let reasons) = resolve(RecordedSchool(name: "St Marys"), previous: "109995") else {
            Issue.record("previous school")
            return
        }
        #expect(school.urn == "109995")
        #expect(reasons.contains { $0.contains("not guessed") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("previously held") })
        // But not a previous school the recorded name does not fit (the child may have moved).
        guard case .request(_, let candidates, let moved) = resolve(RecordedSchool(name: "St Marys"), previous: "109779") else {
            Issue.record("previous school not fitting the recorded name must not be used")
            return
        }
        #expect(!candidates.isEmpty)
        #expect(moved.contains { $0.contains("does not fit the recorded name") })
        // A recorded school failing verification (closed) falls back to the previous one.
        guard case .notice(let fallback, _) = resolve(RecordedSchool(name: "Holly Spring Junior School"), previous: "109779") else {
            Issue.record("closed recorded school, previous used")
            return
        }
        #expect(fallback.urn == "109779")
        guard case .request = resolve(RecordedSchool(name: "St Marys")) else {
            Issue.record("ambiguous → request")
            return
        }
        guard case .request(let none, _, _) = resolve(nil) else {
            Issue.record("nothing recorded")
            return
        }
        #expect(none.contains("no school recorded"))
    }

    @Test("a school that reported the pupil no longer attends is never notified again")
    func blocked() {
        guard case .request(let reason, _, _) = resolve(RecordedSchool(urn: "109779"), blocked: ["109779"]) else {
            Issue.record("blocked")
            return
        }
        #expect(reason.contains("no longer attends"))
    }

    @Test(
        "out of area (s49A): notified like any school, through the school's contacts, else its LA's Operation Encompass contact, else a telephone task with the reason"
    )
    func outOfArea() {
        let laContact = [
            SchoolContact(role: "encompass", name: "Reading OE", email: "encompass@reading.example"),
            SchoolContact(role: "education-otherwise", email: "ehe@reading.example"),
        ]
        // A Cambridgeshire child at a Reading school, with the school's own contacts.
        guard case .notice(let own, let ownReasons) = resolve(force: "05", RecordedSchool(urn: "109778"), contacts: ["109778": dslContacts]) else {
            Issue.record("05 with contacts")
            return
        }
        #expect(own.contacts == dslContacts && own.channel == .email)
        #expect(ownReasons.contains { $0.contains("outside force 05's local authorities") && $0.contains("notified like any school") })
        // No contacts for the school: the LA's Operation Encompass contact (only that role).
        guard case .notice(let viaLA, let laReasons) = resolve(force: "05", RecordedSchool(urn: "109778"), contacts: ["LA870": laContact]) else {
            Issue.record("05 via LA")
            return
        }
        #expect(viaLA.urn == "109778" && viaLA.contacts == [laContact[0]] && viaLA.channel == .email)
        #expect(laReasons.last?.contains("Reading's Operation Encompass contact") == true)
        // Neither: still a notice, as a telephone task for the MASH, saying why.
        guard case .notice(let unrouted, let why) = resolve(age: 12, RecordedSchool(name: "Bedford Free School")) else {
            Issue.record("43 no contacts")
            return
        }
        #expect(unrouted.localAuthorityCode == "822" && unrouted.channel == .telephone && unrouted.contacts.isEmpty)
        #expect(why.last?.contains(SchoolResolver.unroutedOutOfArea) == true && why.last?.contains("la-contacts import") == true)
        // An LA's education-otherwise contact alone does not take a school's notice.
        guard
            case .notice(let stillUnrouted, _) = resolve(
                age: 12, RecordedSchool(name: "Bedford Free School"),
                contacts: ["LA822": [SchoolContact(role: "education-otherwise", email: "ehe@bedford.example")]])
        else {
            Issue.record("43 EHE only")
            return
        }
        #expect(stillUnrouted.channel == .telephone)
        // In area for Cambridgeshire.
        guard case .notice(let ely, _) = resolve(force: "05", RecordedSchool(name: "Ely St Marys Jun")) else {
            Issue.record("05 in area")
            return
        }
        #expect(ely.urn == "141707")
    }

    @Test("the legacy out-of-area settings still mean what they meant, when a protocol sets them; left out, the setting is notify")
    func legacyOutOfArea() throws {
        func protocolJSON(_ outOfArea: String?) throws -> SchoolsProtocol {
            let setting = outOfArea.map { "\"outOfArea\": \"\($0)\"," } ?? ""
            return try JSONDecoder().decode(
                SchoolsProtocol.self,
                from: Data(
                    """
                    {"localAuthorities": {"873": "Cambridgeshire"}, \(setting) "earlyYearsChannel": "telephone", "earlyYearsMaximumAge": 5,
                     "match": {"minimumScore": 0.8, "minimumMargin": 0.1}}
                    """.utf8))
        }
        #expect(try protocolJSON(nil).outOfArea == .notify)
        #expect(throws: DecodingError.self) { try protocolJSON("share-sometimes") }
        for (setting, withContacts) in [("record", false), ("notify-when-contacts", true)] {
            let legacy = SchoolResolver(matcher: Fixtures.matcher, protocols: ["05": try protocolJSON(setting)])
            func run(_ contacts: [String: [SchoolContact]]) -> Resolution {
                legacy.resolve(
                    child: Fixtures.child(age: 8, school: RecordedSchool(urn: "109778")), incident: Fixtures.incident(force: "05"),
                    recorded: RecordedSchool(urn: "109778"), previous: nil, blocked: []
                ) { contacts[$0] ?? [] }
            }
            guard case .notNotified(let urn, _) = run([:]) else {
                Issue.record("\(setting) without contacts")
                continue
            }
            #expect(urn == "109778")
            let held = run(["109778": dslContacts])
            if withContacts {
                guard case .notice = held else {
                    Issue.record("\(setting) with contacts")
                    continue
                }
            } else {
                guard case .notNotified = held else {
                    Issue.record("\(setting) with contacts")
                    continue
                }
            }
        }
    }

    @Test("early years: telephoned in Cambridgeshire, emailed in Thames Valley")
    func earlyYears() {
        guard
            case .notice(let histon, _) = resolve(
                force: "05", age: 4, RecordedSchool(name: "Histon Early Years Centre"), contacts: ["900001": dslContacts])
        else {
            Issue.record("05 early years")
            return
        }
        #expect(histon.earlyYears && histon.channel == .telephone)
        guard case .notice(let katesgrove, _) = resolve(age: 3, RecordedSchool(name: "Katesgrove Nursery"), contacts: ["900002": dslContacts]) else {
            Issue.record("43 early years: \(resolve(age: 3, RecordedSchool(name: "Katesgrove Nursery")))")
            return
        }
        #expect(katesgrove.earlyYears && katesgrove.channel == .email)
        // Darul Madinah Slough is 4-5 in the 2018 list: early years by its age range.
        let darulOutcome = resolve(age: 4, RecordedSchool(urn: "147293"))
        guard case .notice(let darul, _) = darulOutcome else {
            Issue.record("age-range early years: \(darulOutcome)")
            return
        }
        #expect(darul.earlyYears)
    }

    @Test("without an email contact the notice goes by telephone, and says so")
    func channelFallback() {
        let phoneOnly = [SchoolContact(role: "office", phone: "0118 901 2345")]
        guard case .notice(let school, let reasons) = resolve(RecordedSchool(urn: "109778"), contacts: ["109778": phoneOnly]) else {
            Issue.record("phone")
            return
        }
        #expect(school.channel == .telephone)
        #expect(reasons.contains { $0.contains("no safeguarding email") })
    }

    // MARK: - Old schools: school years, phase transfers, moves

    /// A child born `dob`, living at `home`, whose school `urn` is known only from an earlier
    /// record of `recordedOn` (when the child lived at `homeThen`); the incident is on 2026-11-20.
    func resolveOld(
        dob: String?, urn: String, recordedOn: String, home: String = "RG1 7LL", homeThen: String? = "RG1 7LL",
        age: Int? = nil, source: ChildSource = .officer
    ) -> Resolution {
        let origin = SchoolRecordOrigin(occurrenceNumber: "43230000001", recordedOn: recordedOn, homePostcode: homeThen)
        var child = Fixtures.child(age: age, dob: dob, school: RecordedSchool(urn: urn))
        child.homeAddress?.postcode = home
        child.schoolOrigin = origin
        let incident = Fixtures.incident()
        return resolver.resolve(
            child: child, incident: incident, recorded: child.recordedSchool, recordedOrigin: origin, previous: nil,
            blocked: [], place: .of(child, incident: incident, source: source)
        ) { _ in self.dslContacts }
    }

    @Test("school-year ages: 31 August decides the year group; ranges take low to high - 1; nursery classes a year earlier")
    func schoolYears() {
        let day = CalendarDate(year: 2026, month: 11, day: 20)
        #expect(SchoolYear.age(born: CalendarDate(year: 2015, month: 8, day: 31), during: day) == 11) // oldest in Year 7
        #expect(SchoolYear.age(born: CalendarDate(year: 2015, month: 9, day: 1), during: day) == 10) // youngest in Year 6... of 2026-27
        #expect(SchoolYear.age(born: CalendarDate(year: 2015, month: 9, day: 1), during: CalendarDate(year: 2026, month: 8, day: 31)) == 9)
        #expect(SchoolYear.fits(age: 10, low: 4, high: 11) && !SchoolYear.fits(age: 11, low: 4, high: 11))
        #expect(SchoolYear.fits(age: 2, low: 3, high: 11) && !SchoolYear.fits(age: 3, low: 4, high: 11))
        #expect(
            SchoolYear.fits(age: 4, low: 5, high: 11) && !SchoolYear.fits(age: 10, low: 11, high: 16) && !SchoolYear.fits(age: 6, low: 7, high: 11))
        #expect(SchoolYear.fits(age: 17, low: 11, high: 18) && !SchoolYear.fits(age: 16, low: 11, high: 16))
        #expect(SchoolYear.transfers(low: 9, high: 13) == [4, 16])
        #expect(SchoolYear.transfers(low: 4, high: 11) == [4, 11, 16])
        #expect(SchoolYear.possibleAges(ageOn: day, age: 11) == 10...11)
    }

    @Test("a school from an earlier school year: trusted only in range now, across no phase transfer, at the same home")
    func oldSchools() {
        // Primary (Coley 109779, 3-11) recorded in Year 5 (2025-01); now in Year 7: out of range.
        guard case .request(let year7, _, _) = resolveOld(dob: "2015-03-10", urn: "109779", recordedOn: "2025-01-15") else {
            Issue.record("a primary school from Year 5 must not be notified for a Year 7 child")
            return
        }
        #expect(year7.contains("outside the age range"), "\(year7)")
        // The same primary recorded in Year 4, child now in Year 6: still there (same home).
        guard case .notice(let stays, let why) = resolveOld(dob: "2016-03-10", urn: "109779", recordedOn: "2025-01-15") else {
            Issue.record("a primary school two years ago, still in range, same home")
            return
        }
        #expect(stays.urn == "109779")
        #expect(why.contains { $0.contains("was recorded for the child in 43230000001 (2025-01-15)") }, "\(why)")
        // Nursery class at a 3-11 primary (Alfred Sutton 109776) when 3; now in Reception: the
        // range still fits, but most children change school at Reception.
        guard case .request(let reception, _, _) = resolveOld(dob: "2022-02-01", urn: "109776", recordedOn: "2025-10-01") else {
            Issue.record("nursery → Reception: the old school is no longer evidence")
            return
        }
        #expect(reception.contains("nursery to Reception"), "\(reception)")
        // 11-18 school (Blessed Hugh Faringdon 110107) in Year 11; now Year 12: post-16 transfer.
        guard case .request(let post16, _, _) = resolveOld(dob: "2010-01-05", urn: "110107", recordedOn: "2026-03-01") else {
            Issue.record("Year 11 → 12: the old school is no longer evidence")
            return
        }
        #expect(post16.contains("Year 11 to post-16"), "\(post16)")
        // A middle school (Dedworth 142791, 9-13): Year 6 → Year 7 is no transfer there.
        guard case .notice = resolveOld(dob: "2015-01-05", urn: "142791", recordedOn: "2026-03-01", home: "SL4 5PE", homeThen: "SL4 5PE") else {
            Issue.record("a middle school is not left at 11")
            return
        }
        // The family has moved since: the old school is doubtful, even within the school year.
        guard case .request(let moved, _, _) = resolveOld(dob: "2016-03-10", urn: "109779", recordedOn: "2026-10-01", home: "RG30 2AB") else {
            Issue.record("a moved household makes the old school doubtful")
            return
        }
        #expect(moved.contains("moved household"), "\(moved)")
        // Unknown home then, or an unknown date of birth across school years: not trusted.
        guard case .request = resolveOld(dob: "2016-03-10", urn: "109779", recordedOn: "2026-10-01", homeThen: nil),
            case .request = resolveOld(dob: nil, urn: "109779", recordedOn: "2025-01-15", age: 10)
        else {
            Issue.record("old evidence that cannot be checked is not trusted")
            return
        }
        // A child found by research lives where the incident was (RG1 7LL), whatever its old record says.
        guard
            case .request = resolveOld(
                dob: "2016-03-10", urn: "109779", recordedOn: "2026-10-01", home: "RG1 7LL", homeThen: "OX3 9ED", source: .research)
        else {
            Issue.record("research: the incident's address is the child's home now")
            return
        }
    }

    // MARK: - Names and places

    func resolveAt(_ name: String, home: String, age: Int = 6) -> Resolution {
        var child = Fixtures.child(age: age, school: RecordedSchool(name: name))
        child.homeAddress?.postcode = home
        var incident = Fixtures.incident()
        incident.incidentAddress.postcode = home
        return resolver.resolve(child: child, incident: incident, recorded: child.recordedSchool, previous: nil, blocked: []) { _ in self.dslContacts
        }
    }

    @Test("a partial or shared name resolves only to the one such school in the child's area, never to a distant namesake")
    func namesAndPlaces() {
        // "St Andrew's" in Oxford (OX3): two St Andrew's CE primaries in Oxfordshire, and the
        // exact name "St Andrew's School" is an independent school in West Berkshire.
        for written in ["St Andrew's", "St Andrews", "st andrews"] {
            guard case .request(let reason, let candidates, _) = resolveAt(written, home: "OX3 7LH") else {
                Issue.record("\(written) from OX3 must go to Children's Social Care")
                continue
            }
            #expect(reason.contains("not guessed") && reason.contains("2 in the child's area"), "\(reason)")
            #expect(Set(candidates.map(\.urn)).isSuperset(of: ["123126", "123140", "110122"]))
        }
        // In Milton Keynes there is one: St Andrew's CofE Infant School.
        guard case .notice(let mk, let why) = resolveAt("St Andrews", home: "MK14 6BN") else {
            Issue.record("the one St Andrew's in MK")
            return
        }
        #expect(mk.urn == "110443")
        #expect(why.contains { $0.contains("only one in the child's area") })
        // A full name that is also part of another school's ("Caversham Primary" / "Caversham
        // Park Primary") is not shared: the other adds a naming word.
        guard case .notice(let caversham, _) = resolveAt("Caversham Primary School", home: "RG4 7AA") else {
            Issue.record("Caversham Primary")
            return
        }
        #expect(caversham.urn == "109778")
    }

}

@Suite("School resolution's rows written by prepared statements")
struct SchoolRowTests {
    @Test("the resolution and child-school rows' column lists match their Codable encoding, with and without optional values")
    func replaceableRows() throws {
        let at = Timestamp.parse("2026-11-23T10:00:00.250Z")!
        let resolution = ResolutionRow(
            noticeId: "n", childId: "c", forceCode: "43", occurrenceNumber: "1", incidentRevision: 2, outcome: "notice",
            urn: "110001", reasons: "[\"a\"]", updatedAt: at)
        var unresolved = resolution
        unresolved.urn = nil
        let link = ChildSchoolRow(childId: "c", urn: "110001", noticeId: "n", verifiedAt: at)
        for drift in [try resolution.replacementDrift(), try unresolved.replacementDrift(), try link.replacementDrift()] { #expect(drift == []) }
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("school-rows") + "/s.sqlite", migrations: SchoolStore.migrations(seed: false))
        try store.pool.write { db in
            try resolution.insertOrReplace(db)
            try unresolved.insertOrReplace(db)
            try link.insertOrReplace(db)
            #expect(try ResolutionRow.fetchAll(db) == [unresolved])
            #expect(try ChildSchoolRow.fetchAll(db) == [link])
        }
    }
}
