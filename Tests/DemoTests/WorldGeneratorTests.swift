import EncompassDemo
import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

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

    @Test("out-of-area places: a share of children attend a school outside the force's LAs; share 0 keeps every child in area; the day's incidents keep their numbers")
    func outOfAreaPlaces() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let day = CalendarDate(year: 2026, month: 11, day: 23)
        let inArea = WorldGenerator.generate(WorldSettings(seed: 7, families: 300, dayIncidents: 80, day: day), schools: schools)
        let across = WorldGenerator.generate(WorldSettings(seed: 7, families: 300, dayIncidents: 80, day: day, outOfAreaShare: 0.2), schools: schools)
        let tvp = Set(["867", "868", "869", "870", "871", "872", "825", "826", "931"])
        let laOf = Dictionary(uniqueKeysWithValues: schools.map { ($0.urn, $0.localAuthorityCode) })
        func outside(_ world: World) -> Int {
            world.truth.flatMap(\.children).compactMap(\.schoolURN).filter { !tvp.contains(laOf[$0] ?? "") }.count
        }
        #expect(outside(inArea) == 0)
        #expect(outside(across) > 0)
        #expect(across.day.map(\.occurrenceNumber) == inArea.day.map(\.occurrenceNumber))
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

        #expect(a.day.count == 80 && a.truth.count == 80)
        #expect(a.history.count > 200)
        #expect(a.history.allSatisfy { $0.occurredAt < settings.day.at(hour: 0) })
        let tvpCodes = Set(["867", "868", "869", "870", "871", "872", "825", "826", "931"])
        #expect(a.schools.allSatisfy { tvpCodes.contains($0.localAuthorityCode) && $0.open })
        let lpas = Set(["Bracknell and Wokingham", "Reading", "Slough", "West Berkshire", "Windsor and Maidenhead", "Aylesbury Vale",
                        "Chiltern and South Bucks", "Milton Keynes", "Wycombe", "Cherwell and West Oxfordshire", "Oxford", "South and Vale"])
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
            let age = IdentifiedChild(childId: "x", givenName: "", familyName: "", dateOfBirth: birth.description).age(on: settings.day.at(hour: 12)) ?? -1
            #expect(school.ageFrom <= age && age <= school.ageTo)
        }
        // As untidy as real records: every kind of trap is in the world.
        for trap in ["households that moved", "homes with previous occupants in the records", "suspects with an earlier partner's children in the records",
                     "children whose school changed since their last record", "adults' dates of birth mistyped (impossible year)"] {
            #expect((a.untidiness[trap] ?? 0) > 0, "\(trap): \(a.untidiness)")
        }
        #expect(children.contains { $0.schoolChangedSinceRecord && $0.schoolURN != nil })
        // The records show the school of their day: a child's earlier record may name a school
        // it has left since (the truth on the day differs).
        let byName = Dictionary(grouping: a.history.flatMap { incident in incident.children.map { ($0, incident.occurredAt) } },
                                by: { "\($0.0.givenName)|\($0.0.familyName)|\($0.0.dateOfBirth ?? "")" })
        let moved = children.filter { child in
            guard let records = byName["\(child.givenName)|\(child.familyName)|\(child.dateOfBirth)"],
                  let last = records.max(by: { $0.1 < $1.1 })?.0.school?.name else { return false }
            return a.schools.first { $0.urn == child.schoolURN }?.name != last
        }
        #expect(!moved.isEmpty, "some children's latest record names a school they have since left")
        // Late reports: occurred days before, reported on the day.
        #expect(a.day.allSatisfy { $0.reportedAt >= $0.occurredAt })
    }

    @Test("world files: JSON Lines the intake API reads, truth and contacts")
    func writesFiles() throws {
        let schools = try SchoolList.read(path: Self.schoolsFile)
        let world = WorldGenerator.generate(WorldSettings(seed: 1, families: 50, dayIncidents: 10, day: CalendarDate(year: 2026, month: 11, day: 23)), schools: schools)
        let directory = TestPaths.temporaryDirectory("world")
        try WorldFiles.write(world, to: directory)
        let lines = try String(contentsOfFile: "\(directory)/day.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 10)
        let decoded = try lines.map { try WireFormat.decoder().decode(Incident.self, from: Data($0.utf8)) }
        #expect(decoded == world.day)
        let contacts = try String(contentsOfFile: "\(directory)/contacts.csv", encoding: .utf8)
        #expect(contacts.hasPrefix("urn,role,name,email,phone"))
        #expect(WorldFiles.describe(world).contains("10 incidents"))
    }
}
