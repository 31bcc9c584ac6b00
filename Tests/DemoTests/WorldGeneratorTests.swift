import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@testable import EncompassDemo

@Suite("Demo world generator")
struct WorldGeneratorTests {
    static let schoolsFile = "\(TestPaths.shared)/data/schools/schools_2018_tvp_cambs.csv"

    @Test("reads the real school list, quoted fields included")
    func readsSchools() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        #expect(schools.count == 1652)
        let alfred = try #require(schools.first { $0.urn == "109776" })
        #expect(alfred.name == "Alfred Sutton Primary School")
        #expect(alfred.localAuthorityCode == "870")
        #expect(alfred.ageFrom == 3 && alfred.ageTo == 11)
        #expect(schools.allSatisfy { !$0.postcode.isEmpty })
    }

    @Test(
        "out-of-area places: a share of children attend a school outside the force's LAs; share 0 keeps every child in area; the day has as many incidents"
    )
    func outOfAreaPlaces() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let day = CalendarDate(year: 2026, month: 11, day: 23)
        let inArea = WorldGenerator.generate(WorldSettings(seed: 7, families: 300, dayIncidents: 80, day: day), schools: schools)
        let across = WorldGenerator.generate(WorldSettings(seed: 7, families: 300, dayIncidents: 80, day: day, outOfAreaShare: 0.2), schools: schools)
        let tvp = Set(["867", "868", "869", "870", "871", "872", "825", "826", "931"])
        func outside(_ world: World) -> Int {
            // The register's schools and the world's own early years settings (Ofsted references).
            let laOf = Dictionary((schools + world.schools).map { ($0.urn, $0.localAuthorityCode) }, uniquingKeysWith: { a, _ in a })
            return world.truth.flatMap(\.children).compactMap(\.schoolURN).filter { !tvp.contains(laOf[$0] ?? "") }.count
        }
        #expect(outside(inArea) == 0)
        #expect(outside(across) > 0)
        // Places across the border change which schools children attend (and the draws that
        // follow from a school), not how many incidents the day has.
        #expect(across.day.count == inArea.day.count)
    }

    @Test("the same seed makes the same world; the day has gaps officers left, and the truth to score against")
    func deterministicWorld() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let settings = WorldSettings(seed: 7, families: 300, dayIncidents: 80, day: CalendarDate(year: 2026, month: 11, day: 23))
        let a = WorldGenerator.generate(settings, schools: schools)
        let b = WorldGenerator.generate(settings, schools: schools)
        #expect(a.day == b.day && a.history == b.history && a.truth == b.truth)
        let c = WorldGenerator.generate(WorldSettings(seed: 8, families: 300, dayIncidents: 80, day: settings.day), schools: schools)
        #expect(c.day != a.day)

        #expect(a.day.count == 80 && a.truth.count == 81 && a.morning.count == 1, "the day's incidents and the next morning's late report")
        #expect(a.history.count > 200)
        #expect(a.history.allSatisfy { $0.occurredAt < settings.day.at(hour: 0) })
        let tvpCodes = Set(["867", "868", "869", "870", "871", "872", "825", "826", "931"])
        #expect(a.schools.allSatisfy { tvpCodes.contains($0.localAuthorityCode) && $0.open })
        let lpas = Set([
            "Bracknell and Wokingham", "Reading", "Slough", "West Berkshire", "Windsor and Maidenhead", "Aylesbury Vale",
            "Chiltern and South Bucks", "Milton Keynes", "Wycombe", "Cherwell and West Oxfordshire", "Oxford", "South and Vale",
        ])
        #expect(a.day.allSatisfy { lpas.contains($0.localPolicingArea ?? "") && $0.occurrenceNumber.count == 11 })
        #expect(Set(a.day.compactMap(\.localPolicingArea)).count >= 6, "incidents across the three counties")
        let children = a.truth.flatMap(\.children)
        let recorded = children.filter(\.recordedByOfficer).count
        #expect(recorded > 0 && recorded < children.count, "officers recorded some children, not all")
        #expect(a.day.contains { $0.children.isEmpty })
        #expect(children.filter(\.officerSchoolCorrect).count < children.filter { $0.schoolURN != nil }.count)
        // Every truth child of school age attends a real open school whose range fits.
        for child in children {
            guard let urn = child.schoolURN else { continue }
            let school = try #require(a.schools.first { $0.urn == urn })
            let birth = try #require(CalendarDate(iso: child.dateOfBirth))
            let age =
                IdentifiedChild(childId: "x", givenName: "", familyName: "", dateOfBirth: birth.description).age(on: settings.day.at(hour: 12)) ?? -1
            #expect(school.ageFrom <= age && age <= school.ageTo)
        }
        // As untidy as real records: every kind of trap is in the world.
        for trap in [
            "households that moved", "homes with previous occupants in the records", "suspects with an earlier partner's children in the records",
            "children whose school changed since their last record", "adults' dates of birth mistyped (impossible year)",
        ] {
            #expect((a.untidiness[trap] ?? 0) > 0, "\(trap): \(a.untidiness)")
        }
        #expect(children.contains { $0.schoolChangedSinceRecord && $0.schoolURN != nil })
        // The records show the school of their day: a child's earlier record may name a school
        // it has left since (the truth on the day differs).
        let byName = Dictionary(
            grouping: a.history.flatMap { incident in incident.children.map { ($0, incident.occurredAt) } },
            by: { "\($0.0.givenName)|\($0.0.familyName)|\($0.0.dateOfBirth ?? "")" })
        let moved = children.filter { child in
            guard let records = byName["\(child.givenName)|\(child.familyName)|\(child.dateOfBirth)"],
                let last = records.max(by: { $0.1 < $1.1 })?.0.school?.name
            else { return false }
            return a.schools.first { $0.urn == child.schoolURN }?.name != last
        }
        #expect(!moved.isEmpty, "some children's latest record names a school they have since left")
        // Late reports: occurred days before, reported on the day.
        #expect(a.day.allSatisfy { $0.reportedAt >= $0.occurredAt })
    }

    @Test("the judge: a notice to the child's school is correct, a second one about the same child to it is reported twice, another school is wrong")
    func judgeCountsTwice() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let world = WorldGenerator.generate(
            WorldSettings(seed: 7, families: 300, dayIncidents: 40, day: CalendarDate(year: 2026, month: 11, day: 23)), schools: schools)
        let (day, child) = try #require(world.truth.lazy.compactMap { day in day.children.first { $0.schoolURN != nil }.map { (day, $0) } }.first)
        let identified = IdentifiedChild(childId: "c-1", givenName: child.givenName, familyName: child.familyName, dateOfBirth: child.dateOfBirth)
        let twin = IdentifiedChild(childId: "c-2", givenName: child.givenName, familyName: child.familyName, dateOfBirth: child.dateOfBirth)
        func notice(_ who: IdentifiedChild, _ urn: String) -> DemoJudge.Notice {
            DemoJudge.Notice(occurrenceNumber: day.occurrenceNumber, child: who, childSource: .research, schoolURN: urn, sent: true)
        }
        let judge = DemoJudge(truth: world.truth)
        let card = judge.score([notice(identified, child.schoolURN!), notice(twin, child.schoolURN!), notice(identified, "999999")])
        #expect(card.correctNotices == 1)
        #expect(card.duplicates.count == 1 && card.duplicates[0].contains("URN \(child.schoolURN!) again"))
        #expect(card.wrongNotices == 1)
        #expect(judge.score([notice(identified, child.schoolURN!)]).duplicates.isEmpty)
    }

    @Test(
        "the duty's rarer cases: a child who moved school in the term, whom the officer and every record place at the school it left, and a child on no school roll recorded as home educated; the judge lists a notice to the school left apart from wrong ones and counts the home LA's notice as the child's"
    )
    func dutyCases() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let world = WorldGenerator.generate(
            WorldSettings(seed: 7, families: 300, dayIncidents: 80, day: CalendarDate(year: 2026, month: 11, day: 23)), schools: schools)
        func recorded(_ day: DayTruth, _ child: DayTruth.Child) throws -> RecordedChild {
            let incident = try #require(world.day.first { $0.occurrenceNumber == day.occurrenceNumber })
            return try #require(
                incident.children.first {
                    $0.givenName == child.givenName && $0.familyName == child.familyName && $0.dateOfBirth == child.dateOfBirth
                })
        }
        let moved = world.truth.flatMap { day in day.children.filter { $0.leftSchoolURN != nil }.map { (day, $0) } }
        #expect(moved.count == 1)
        let (movedDay, mover) = try #require(moved.first)
        let old = try #require(world.schools.first { $0.urn == mover.leftSchoolURN })
        let new = try #require(world.schools.first { $0.urn == mover.schoolURN })
        #expect(new.urn != old.urn && new.localAuthorityCode == old.localAuthorityCode && !mover.officerSchoolCorrect)
        #expect(try recorded(movedDay, mover).school == RecordedSchool(name: old.name), "the officer names the school the child left")
        #expect(
            !world.history.contains {
                $0.children.contains { $0.givenName == mover.givenName && $0.familyName == mover.familyName && $0.school?.name == new.name }
            },
            "no record shows the move")
        let home = world.truth.flatMap { day in day.children.filter { $0.homeAuthority != nil }.map { (day, $0) } }
        #expect(home.count == 1)
        let (homeDay, educated) = try #require(home.first)
        #expect(educated.schoolURN == nil && educated.notifiedAs == "LA\(educated.homeAuthority ?? "")")
        #expect(["867", "868", "869", "870", "871", "872", "825", "826", "931"].contains(educated.homeAuthority ?? ""))
        #expect(try recorded(homeDay, educated).school == RecordedSchool(name: "Home educated"))

        func notice(_ day: DayTruth, _ child: DayTruth.Child, _ urn: String, id: String = "c-1") -> DemoJudge.Notice {
            DemoJudge.Notice(
                occurrenceNumber: day.occurrenceNumber,
                child: IdentifiedChild(
                    childId: id, givenName: child.givenName, familyName: child.familyName,
                    dateOfBirth: child.dateOfBirth), childSource: .officer, schoolURN: urn, sent: true)
        }
        let judge = DemoJudge(truth: world.truth)
        let card = judge.score([
            notice(movedDay, mover, old.urn), notice(movedDay, mover, new.urn), notice(homeDay, educated, educated.notifiedAs!, id: "c-2"),
        ])
        #expect(card.wrongNotices == 0 && card.toSchoolLeft.count == 1 && card.toSchoolLeft[0].contains("notified URN \(old.urn)"))
        #expect(card.notOnRoll == 1 && card.notOnRollNotified == 1)
        // A holiday escalation about the child went to the Education Safeguarding Manager, not to the school it left.
        var escalation = notice(movedDay, mover, old.urn)
        escalation.escalation = true
        let escalated = judge.score([escalation])
        #expect(escalated.wrongNotices == 0 && escalated.toSchoolLeft.isEmpty && escalated.escalations == 1)
        // Another local authority, or another school than the one left, is wrong.
        let wrong = judge.score([notice(homeDay, educated, "LA999", id: "c-2"), notice(movedDay, mover, "999999")])
        #expect(wrong.wrongNotices == 2 && wrong.toSchoolLeft.isEmpty && wrong.notOnRollNotified == 0)
    }

    @Test("world files: JSON Lines the intake API reads, truth and contacts")
    func writesFiles() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let world = WorldGenerator.generate(
            WorldSettings(seed: 1, families: 50, dayIncidents: 10, day: CalendarDate(year: 2026, month: 11, day: 23)), schools: schools)
        let directory = TestPaths.temporaryDirectory("world")
        try WorldFiles.write(world, to: directory)
        let lines = try String(contentsOfFile: "\(directory)/day.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 10)
        let decoded = try lines.map { try WireFormat.decoder().decode(Incident.self, from: Data($0.utf8)) }
        #expect(decoded == world.day)
        let morning = try String(contentsOfFile: "\(directory)/morning.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(try morning.map { try WireFormat.decoder().decode(Incident.self, from: Data($0.utf8)) } == world.morning && morning.count == 1)
        let contacts = try String(contentsOfFile: "\(directory)/contacts.csv", encoding: .utf8)
        #expect(contacts.hasPrefix("urn,role,name,email,phone"))
        #expect(WorldFiles.describe(world).contains("10 incidents"))
    }

    @Test(
        "a Cambridgeshire and Peterborough world: its LAs' real schools, its occurrence numbers and LPAs, early years settings, officers' free text; Thames Valley's world unchanged by the force parameter"
    )
    func cambridgeshireWorld() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let day = CalendarDate(year: 2026, month: 11, day: 21)
        let world = WorldGenerator.generate(
            WorldSettings(seed: 5, families: 300, dayIncidents: 60, day: day, force: .cambridgeshire), schools: schools)
        #expect(world.day.count == 60 && world.day.allSatisfy { $0.forceCode == "05" } && world.history.allSatisfy { $0.forceCode == "05" })
        let occurrence = /CC-[0-9]{8}-[0-9]{4}/
        #expect((world.day + world.history).allSatisfy { $0.occurrenceNumber.wholeMatch(of: occurrence) != nil })
        #expect(
            Set((world.day + world.history).map(\.occurrenceNumber)).count == world.day.count + world.history.count, "occurrence numbers are unique")
        // The date in the number is the incident's date.
        for incident in world.day {
            let date = CalendarDate(incident.occurredAt)
            #expect(incident.occurrenceNumber.hasPrefix(String(format: "CC-%04d%02d%02d-", date.year, date.month, date.day)))
        }
        let lpas: Set<String> = ["Cambridge City", "East Cambridgeshire", "Fenland", "Huntingdonshire", "Peterborough", "South Cambridgeshire"]
        #expect(world.day.allSatisfy { lpas.contains($0.localPolicingArea ?? "") })
        #expect(Set(world.history.compactMap(\.localPolicingArea)).count >= 5, "incidents across the districts and Peterborough")
        #expect(world.schools.allSatisfy { ["873", "874"].contains($0.localAuthorityCode) })
        let real = Set(schools.map(\.urn))
        let settings = world.schools.filter { SchoolReference.isEarlyYears($0.urn) }
        #expect(settings.count >= 12 && settings.allSatisfy { $0.ageTo == 5 && !real.contains($0.urn) })
        #expect(world.schools.filter { !SchoolReference.isEarlyYears($0.urn) }.allSatisfy { real.contains($0.urn) }, "every school is a real one")
        // Children at the settings are of pre-school age; every child's school takes its age.
        let children = world.truth.flatMap(\.children)
        for child in children {
            guard let urn = child.schoolURN, let school = world.schools.first(where: { $0.urn == urn }) else { continue }
            let age = SchoolYear.age(born: try #require(CalendarDate(iso: child.dateOfBirth)), during: day)
            #expect(
                SchoolYear.fits(age: age, low: school.ageFrom, high: school.ageTo),
                "\(urn) takes \(school.ageFrom)-\(school.ageTo), child of school-year age \(age)")
            if SchoolReference.isEarlyYears(urn) { #expect(age <= 3) }
        }
        #expect(world.day.contains { $0.circumstances != nil } && world.day.contains { $0.safeguardingInformation != nil })
        #expect(world.day.contains { $0.circumstances == nil }, "brief circumstances are optional")
        // The contacts are usable for every school and setting (UK phone numbers of digits).
        #expect(world.contacts.count == world.schools.count && world.contacts.allSatisfy { $0.phone.allSatisfy { $0.isNumber || $0 == " " } })

        // The force is a parameter: the default world is Thames Valley's, and the same seed
        // makes the same Thames Valley world with the parameter given.
        let tvp = WorldSettings(seed: 5, families: 100, dayIncidents: 20, day: day)
        var explicit = tvp
        explicit.force = .thamesValley
        let a = WorldGenerator.generate(tvp, schools: schools), b = WorldGenerator.generate(explicit, schools: schools)
        #expect(a.day == b.day && a.history == b.history && a.day.allSatisfy { $0.forceCode == "43" && $0.occurrenceNumber.count == 11 })
        let settingsTVP = a.schools.filter { SchoolReference.isEarlyYears($0.urn) }
        #expect(
            !settingsTVP.isEmpty && settingsTVP.count <= 27 && settingsTVP.allSatisfy { $0.ageTo == 5 },
            "Thames Valley's early years settings, up to 3 per LA")
    }

    @Test(
        "the Thames Valley demo world shows every route: children at early years settings and at out-of-area schools, and the next morning's late report with every child recorded with its school"
    )
    func everyRoute() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let day = CalendarDate(year: 2026, month: 11, day: 23)
        let world = WorldGenerator.generate(WorldSettings(seed: 2026, day: day, outOfAreaShare: 0.02), schools: schools)
        let tvp = Set(WorldGenerator.thamesValley)
        let laOf = Dictionary((schools + world.schools).map { ($0.urn, $0.localAuthorityCode) }, uniquingKeysWith: { a, _ in a })
        let dayTruth = world.truth.filter { truth in world.day.contains { $0.occurrenceNumber == truth.occurrenceNumber } }
        let attending = dayTruth.flatMap(\.children).compactMap(\.schoolURN)
        #expect(attending.contains { SchoolReference.isEarlyYears($0) }, "a child of the day at an early years setting")
        #expect(attending.contains { !tvp.contains(laOf[$0] ?? "") }, "a child of the day at a school outside Thames Valley")
        let late = try #require(world.morning.first)
        #expect(world.morning.count == 1 && late.forceCode == "43" && CalendarDate(late.occurredAt) == day)
        #expect(!world.day.contains { $0.occurrenceNumber == late.occurrenceNumber })
        let truth = try #require(world.truth.first { $0.occurrenceNumber == late.occurrenceNumber })
        #expect(truth.children.count == late.children.count && truth.children.allSatisfy(\.recordedByOfficer))
        for (child, recorded) in zip(truth.children, late.children) {
            #expect(recorded.school?.urn == child.schoolURN, "the officer recorded \(child.givenName)'s school exactly")
        }
        #expect(truth.children.contains { $0.schoolURN != nil })
        // The same seed, the same late report.
        let without = WorldGenerator.generate(WorldSettings(seed: 2026, day: day, outOfAreaShare: 0.02), schools: schools)
        #expect(without.day == world.day && without.morning == world.morning)
    }

    @Test("the judge checks each route: notices, sent, to the child's own school; each unsent notice listed")
    func judgeRoutes() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let world = WorldGenerator.generate(
            WorldSettings(seed: 7, families: 300, dayIncidents: 40, day: CalendarDate(year: 2026, month: 11, day: 23)), schools: schools)
        let pupils = world.truth.flatMap { day in day.children.filter { $0.schoolURN != nil }.map { (day.occurrenceNumber, $0) } }
        #expect(pupils.count >= 3)
        func notice(_ index: Int, _ urn: String? = nil, sent: Bool = true, route: DemoJudge.Route) -> DemoJudge.Notice {
            let (occurrence, child) = pupils[index]
            return DemoJudge.Notice(
                occurrenceNumber: occurrence,
                child: IdentifiedChild(
                    childId: "c-\(index)", givenName: child.givenName, familyName: child.familyName,
                    dateOfBirth: child.dateOfBirth),
                childSource: .officer, schoolURN: urn ?? child.schoolURN!, sent: sent, route: route)
        }
        let checks = DemoJudge(truth: world.truth).checkRoutes([
            notice(0, route: .outOfAreaAuthority), notice(1, sent: false, route: .outOfAreaAuthority),
            notice(2, "999999", route: .outOfAreaAuthority),
            notice(0, route: .earlyYears),
        ])
        let across = try #require(checks[.outOfAreaAuthority])
        #expect(across.notices == 3 && across.sent == 2 && across.correct == 1)
        #expect(across.unsent.count == 1 && across.unsent[0].contains("\(pupils[1].1.givenName)") && across.unsent[0].contains("not sent"))
        #expect(checks[.earlyYears]?.correct == 1 && checks[.school] == nil)
    }

    @Test("the DA desk's spreadsheet of a day: one row per child, one for an incident without, quoted free text, early years register rows")
    func deskSpreadsheet() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let world = WorldGenerator.generate(
            WorldSettings(
                seed: 3, families: 120, dayIncidents: 25, day: CalendarDate(year: 2026, month: 11, day: 23),
                force: .cambridgeshire), schools: schools)
        let directory = TestPaths.temporaryDirectory("world-05")
        try WorldFiles.write(world, to: directory)
        let rows = CSVRows.parse(try String(contentsOfFile: "\(directory)/day.csv", encoding: .utf8))
        let header = try #require(rows.first)
        #expect(header.contains("circumstances") && header.contains("safeguarding_information") && header.contains("child_school_urn"))
        #expect(rows.dropFirst().allSatisfy { $0.count == header.count })
        #expect(rows.count - 1 == world.day.reduce(0) { $0 + max(1, $1.children.count) })
        let occurrence = try #require(header.firstIndex(of: "occurrence_number")),
            circumstances = try #require(header.firstIndex(of: "circumstances"))
        for incident in world.day {
            let mine = rows.dropFirst().filter { $0[occurrence] == incident.occurrenceNumber }
            #expect(mine.allSatisfy { $0[circumstances] == (incident.circumstances ?? "") })
        }
        let register = CSVRows.parse(try String(contentsOfFile: "\(directory)/early-years.csv", encoding: .utf8))
        #expect(register.first?.starts(with: ["URN", "Name"]) == true)
        #expect(register.dropFirst().allSatisfy { SchoolReference.isEarlyYears($0[0]) && $0[6] == "Private nursery" })
    }

    @Test(
        "every adult and child in the records has the world's identity: one per record, the same person one identity across incidents and homes; people.csv writes each record once, FEBRL-style"
    )
    func personIdentities() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let world = WorldGenerator.generate(
            WorldSettings(seed: 7, families: 300, dayIncidents: 80, day: CalendarDate(year: 2026, month: 11, day: 23)), schools: schools)
        let incidents = world.history + world.day + world.morning
        var dates: [String: Set<String>] = [:], postcodes: [String: Set<String>] = [:]
        for incident in incidents {
            let ids = try #require(world.identities[incident.occurrenceNumber])
            #expect(ids.parties.count == incident.parties.count && ids.children.count == incident.children.count)
            #expect(Set(ids.parties + ids.children).count == ids.parties.count + ids.children.count, "no one twice in one record")
            guard world.history.contains(incident) else { continue }
            // The history writes dates of birth exactly (or not at all): one person, one date.
            for (party, id) in zip(incident.parties, ids.parties) {
                if let dob = party.dateOfBirth { dates[id, default: []].insert(dob) }
                postcodes[id, default: []].insert(incident.incidentAddress.postcode)
            }
            for (child, id) in zip(incident.children, ids.children) {
                if let dob = child.dateOfBirth { dates[id, default: []].insert(dob) }
            }
        }
        #expect(dates.values.allSatisfy { $0.count == 1 })
        #expect(postcodes.values.contains { $0.count > 1 }, "someone recorded at two homes (a move, or a suspect's earlier household)")
        // The identities do not change the world a seed makes.
        var without = world
        without.identities = [:]
        let again = WorldGenerator.generate(
            WorldSettings(seed: 7, families: 300, dayIncidents: 80, day: CalendarDate(year: 2026, month: 11, day: 23)), schools: schools)
        #expect(again.history == without.history && again.day == without.day && again.identities == world.identities)

        let rows = WorldFiles.peopleFile(world).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(
            rows.first?.map(String.init) == [
                "rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state", "date_of_birth",
                "soc_sec_id",
            ])
        let records = incidents.reduce(0) { $0 + $1.parties.count + $1.children.count }
        #expect(rows.count == records + 1 && rows.dropFirst().allSatisfy { $0.count == 11 })
        let recIds = rows.dropFirst().map { String($0[0]) }
        #expect(Set(recIds).count == records)
        #expect(recIds.filter { $0.hasSuffix("-org") }.count == Set(world.identities.values.flatMap { $0.parties + $0.children }).count)
        func parts(_ line: String) -> [String] {
            let p = WorldFiles.addressParts(line)
            return [p.number, p.street, p.flat]
        }
        #expect(parts("Flat 3, 12 High Street") == ["12", "High Street", "flat 3"])
        #expect(parts("3/12 High St") == ["12", "High St", "flat 3"])
        #expect(parts("12 High Street") == ["12", "High Street", ""])
    }
}
