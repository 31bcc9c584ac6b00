import EncompassModels
import Foundation

/// The synthetic Thames Valley the demo runs on: families living near real schools, several
/// years of incident history across the three counties' LPAs, and one day of new incidents in
/// which officers left many children and schools unrecorded or misspelt. Everything is derived
/// from the seed, so a run can be repeated exactly.
public struct WorldSettings: Sendable, Equatable {
    public var seed: UInt64
    /// Households to invent.
    public var families: Int
    /// New incidents on the demo day.
    public var dayIncidents: Int
    /// The demo day (the incidents' local date).
    public var day: CalendarDate
    /// Years of history before the day.
    public var historyYears: Int

    public init(seed: UInt64 = 2026, families: Int = 1_500, dayIncidents: Int = 120, day: CalendarDate, historyYears: Int = 3) {
        self.seed = seed
        self.families = families
        self.dayIncidents = dayIncidents
        self.day = day
        self.historyYears = historyYears
    }
}

/// What really happened on the demo day, which the officers' records only partly show.
public struct DayTruth: Codable, Sendable, Equatable {
    public struct Child: Codable, Sendable, Equatable {
        public var givenName: String
        public var familyName: String
        public var dateOfBirth: String
        /// The school the child really attends (nil below school age).
        public var schoolURN: String?
        /// The officer recorded this child.
        public var recordedByOfficer: Bool
        /// The officer recorded the child with the school's exact name or URN (the old process's success).
        public var officerSchoolCorrect: Bool
    }

    public var occurrenceNumber: String
    public var children: [Child]
}

/// One school's safeguarding contacts, as the MASH keeps them.
public struct WorldContact: Codable, Sendable, Equatable {
    public var urn: String
    public var role: String
    public var name: String
    public var email: String
    public var phone: String
}

public struct World: Sendable {
    public var settings: WorldSettings
    public var history: [Incident]
    public var day: [Incident]
    public var truth: [DayTruth]
    public var contacts: [WorldContact]
    public var schools: [WorldSchool]
}

public enum WorldGenerator {
    /// Thames Valley local authorities (DfE codes) and the LPAs that cover them, by town where
    /// one LA has several.
    static let thamesValley = ["867", "868", "869", "870", "871", "872", "825", "826", "931"]

    static func lpa(laCode: String, town: String) -> String {
        let t = town.lowercased()
        switch laCode {
        case "867", "872": return "Bracknell and Wokingham"
        case "868": return "Windsor and Maidenhead"
        case "869": return "West Berkshire"
        case "870": return "Reading"
        case "871": return "Slough"
        case "826": return "Milton Keynes"
        case "825":
            if ["amersham", "chesham", "beaconsfield", "gerrards cross", "chalfont st giles", "chalfont st peter", "great missenden", "iver", "denham", "farnham common", "burnham"].contains(where: t.contains) { return "Chiltern and South Bucks" }
            if ["high wycombe", "marlow", "princes risborough", "hazlemere", "wycombe", "bourne end", "stokenchurch"].contains(where: t.contains) { return "Wycombe" }
            return "Aylesbury Vale"
        default: // 931 Oxfordshire
            if t.contains("oxford") && !t.contains("shire") { return "Oxford" }
            if ["abingdon", "didcot", "wallingford", "henley", "thame", "wantage", "faringdon", "wheatley", "berinsfield", "chinnor", "watlington", "grove"].contains(where: t.contains) { return "South and Vale" }
            return "Cherwell and West Oxfordshire"
        }
    }

    private struct Person {
        var given: String
        var family: String
        var birth: CalendarDate
        var schoolURN: String?
    }

    private struct Family {
        var address: PostalAddress
        var laCode: String
        var lpa: String
        var victim: Person
        var suspect: Person
        var children: [Person]
    }

    public static func generate(_ settings: WorldSettings, schools allSchools: [WorldSchool]) -> World {
        var random = SeededRandom(seed: settings.seed)
        let postcode = /^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$/
        let schools = allSchools.filter {
            $0.open && thamesValley.contains($0.localAuthorityCode) && $0.ageTo >= 5 && $0.postcode.wholeMatch(of: postcode) != nil
        }
        let byLA = Dictionary(grouping: schools, by: \.localAuthorityCode)
        let las = thamesValley.filter { byLA[$0] != nil }
        var occurrence = 0
        func nextOccurrence(_ date: CalendarDate) -> String {
            occurrence += 1
            return String(format: "%02d%09d", date.year % 100, 430_000_000 + occurrence)
        }

        // Families near real schools.
        var families: [Family] = []
        for _ in 0..<settings.families {
            let la = random.pick(las.flatMap { la in Array(repeating: la, count: max(1, byLA[la]!.count / 10)) })
            let anchor = random.pick(byLA[la]!)
            let district = anchor.postcode.split(separator: " ").first.map(String.init) ?? anchor.postcode
            let letters = Array("ABDEFGHJLNPQRSTUWXYZ")
            let postcode = "\(district) \(Int.random(in: 1...9, using: &random))\(random.pick(letters))\(random.pick(letters))"
            var line = "\(Int.random(in: 1...180, using: &random)) \(random.pick(Names.streets))"
            if random.chance(0.2) { line = "Flat \(Int.random(in: 1...24, using: &random)), " + line }
            let address = PostalAddress(lines: [line], town: anchor.town, county: nil, postcode: postcode)
            let family = random.pick(Names.surnames)
            let mother = Person(given: random.pick(Names.adultsFemale), family: random.chance(0.8) ? family : random.pick(Names.surnames),
                                birth: birth(settings.day, minAge: 22, maxAge: 45, &random))
            let father = Person(given: random.pick(Names.adultsMale), family: family, birth: birth(settings.day, minAge: 23, maxAge: 50, &random))
            var children: [Person] = []
            for _ in 0..<max(1, min(4, random.poisson(1.6))) {
                let born = birth(settings.day, minAge: 0, maxAge: 17, &random)
                var child = Person(given: random.chance(0.5) ? random.pick(Names.girls) : random.pick(Names.boys),
                                   family: random.chance(0.15) ? "\(mother.family)-\(family)" : family, birth: born)
                let age = ageOn(settings.day, born)
                let fitting = byLA[la]!.filter { $0.ageFrom <= age && age <= $0.ageTo && $0.type != "Special School" && $0.type != "College" }
                if age >= 4, !fitting.isEmpty {
                    let near = fitting.filter { $0.town == anchor.town }
                    child.schoolURN = random.pick(near.isEmpty ? fitting : near).urn
                }
                children.append(child)
            }
            families.append(Family(address: address, laCode: la, lpa: lpa(laCode: la, town: anchor.town),
                                   victim: mother, suspect: father, children: children))
        }

        func party(_ person: Person, _ role: PartyRole, variant: Bool) -> Party {
            Party(role: role, givenName: variant ? informalOrTypo(person.given, &random) : person.given,
                  familyName: variant && random.chance(0.3) ? typo(person.family, &random) : person.family,
                  dateOfBirth: random.chance(0.85) ? person.birth.description : nil)
        }

        // History: earlier incidents at the families' addresses, children recorded then.
        var history: [Incident] = []
        let historyStart = CalendarDate(year: settings.day.year - settings.historyYears, month: settings.day.month, day: 1)
        let spanDays = max(30, settings.historyYears * 365 - 2)
        for family in families {
            for _ in 0..<random.poisson(1.4) {
                let date = historyStart.adding(days: Int.random(in: 0..<spanDays, using: &random))
                let occurred = date.at(hour: Int.random(in: 0...23, using: &random), minute: Int.random(in: 0...59, using: &random))
                let present = family.children.filter { $0.birth < date && ageOn(date, $0.birth) < 18 }
                let children = present.filter { _ in random.chance(0.85) }.map { child in
                    let knownBirth = random.chance(0.9)
                    return RecordedChild(givenName: child.given, familyName: child.family,
                                  dateOfBirth: knownBirth ? child.birth.description : nil,
                                  ageYears: knownBirth ? nil : ageOn(date, child.birth), homeAddress: family.address, presence: .present,
                                  school: child.schoolURN.flatMap { urn in schools.first { $0.urn == urn } }.map { RecordedSchool(name: $0.name) })
                }
                var address = family.address
                if random.chance(0.3) { address.lines = address.lines.map(addressVariant) }
                history.append(Incident(
                    occurrenceNumber: nextOccurrence(date), forceCode: "43", occurredAt: occurred,
                    reportedAt: occurred.addingTimeInterval(Double(Int.random(in: 10...240, using: &random)) * 60),
                    incidentAddress: address, localPolicingArea: family.lpa, riskLevel: random.pick([.standard, .standard, .medium, .high]),
                    crime: random.chance(0.6), parties: [party(family.victim, .victim, variant: random.chance(0.3)), party(family.suspect, .suspect, variant: random.chance(0.3))],
                    children: children))
            }
        }

        // The day: officers often leave the children or their school out, or misspell them.
        var day: [Incident] = []
        var truth: [DayTruth] = []
        let withChildren = families.filter { f in f.children.contains { ageOn(settings.day, $0.birth) < 18 } }
        for _ in 0..<(withChildren.isEmpty ? 0 : settings.dayIncidents) {
            let family = random.pick(withChildren)
            let late = random.chance(0.05)
            let date = late ? settings.day.adding(days: -Int.random(in: 2...4, using: &random)) : settings.day
            let occurred = date.at(hour: Int.random(in: 0...22, using: &random), minute: Int.random(in: 0...59, using: &random))
            let reported = late ? settings.day.at(hour: Int.random(in: 8...17, using: &random)) : occurred.addingTimeInterval(Double(Int.random(in: 5...50, using: &random)) * 60)
            let present = family.children.filter { ageOn(date, $0.birth) < 18 }
            let omitAll = random.chance(0.45)
            var recorded: [RecordedChild] = []
            var truthChildren: [DayTruth.Child] = []
            for child in present {
                let record = !omitAll && random.chance(0.85)
                var schoolCorrect = false
                if record {
                    var school: RecordedSchool?
                    if let urn = child.schoolURN, let real = schools.first(where: { $0.urn == urn }) {
                        let roll = Double.random(in: 0..<1, using: &random)
                        if roll < 0.35 {
                            school = nil
                        } else if roll < 0.65 {
                            school = RecordedSchool(name: schoolVariant(real, &random))
                        } else {
                            school = RecordedSchool(name: real.name)
                            schoolCorrect = true
                        }
                    }
                    let knownBirth = random.chance(0.7)
                    recorded.append(RecordedChild(
                        givenName: child.given, familyName: child.family,
                        dateOfBirth: knownBirth ? child.birth.description : nil,
                        ageYears: knownBirth ? nil : ageOn(date, child.birth), homeAddress: family.address, presence: random.pick([.present, .present, .witness]), school: school))
                }
                truthChildren.append(DayTruth.Child(givenName: child.given, familyName: child.family, dateOfBirth: child.birth.description,
                                                    schoolURN: child.schoolURN, recordedByOfficer: record, officerSchoolCorrect: schoolCorrect))
            }
            let number = nextOccurrence(date)
            day.append(Incident(
                occurrenceNumber: number, forceCode: "43", occurredAt: occurred, reportedAt: reported,
                incidentAddress: family.address, localPolicingArea: family.lpa,
                riskLevel: random.pick([.standard, .standard, .medium, .high]), crime: random.chance(0.6),
                parties: [party(family.victim, .victim, variant: random.chance(0.4)), party(family.suspect, .suspect, variant: random.chance(0.4))],
                children: recorded))
            truth.append(DayTruth(occurrenceNumber: number, children: truthChildren))
        }

        let contacts = schools.map { school in
            WorldContact(urn: school.urn, role: "dsl", name: "Designated Safeguarding Lead",
                         email: "dsl.\(school.urn)@schools.example.org.uk", phone: "01\(school.urn.suffix(3)) \(school.urn)")
        }
        return World(settings: settings, history: history.sorted { $0.occurredAt < $1.occurredAt }, day: day, truth: truth,
                     contacts: contacts, schools: schools)
    }

    /// Incidents with officer-recorded children at real Thames Valley schools (by URN), so every
    /// child is eligible without a human step: each must end as exactly one notice and one mail.
    ///
    /// People are named as a force's records are: common given names and surnames of England and
    /// Wales, children of primary-school age (5 to 9), Reading postcodes. No two children share
    /// name and date of birth, so every child is a different child. (Until 2026-11-24 these were
    /// "Child<n> Walker<n>", all born within 300 days: names that differ only in digits share
    /// every phonetic blocking key, so each child's history lookup read hundreds of near-namesakes,
    /// which no force's records look like.)
    public static func eligibleIncidents(count: Int, day: CalendarDate, schools: [WorldSchool], seed: UInt64) -> [Incident] {
        var random = SeededRandom(seed: seed)
        let primaries = schools.filter { $0.open && $0.localAuthorityCode == "870" && $0.ageFrom <= 5 && $0.ageTo >= 10 && $0.type != "Special School" }
        var children = Set<String>()
        return (0..<count).map { index in
            let school = primaries[index % primaries.count]
            let occurred = day.at(hour: 8 + index % 12, minute: index % 60)
            var given: String, family: String, birth: CalendarDate
            repeat {
                given = random.pick(random.chance(0.5) ? Names.girls : Names.boys)
                family = random.pick(Names.surnames)
                birth = day.adding(days: -Int.random(in: (5 * 365 + 2)...(9 * 365 + 360), using: &random))
            } while !children.insert("\(given)|\(family)|\(birth)").inserted
            let letters = Array("ABDEFGHJLNPQRSTUWXYZ")
            let postcode = "RG\(1 + Int.random(in: 0..<31, using: &random)) \(Int.random(in: 1...9, using: &random))"
                + "\(random.pick(letters))\(random.pick(letters))"
            let parentBirth = day.adding(days: -Int.random(in: (22 * 365)...(45 * 365), using: &random))
            return Incident(
                occurrenceNumber: String(format: "%02d%09d", day.year % 100, 500_000_000 + index), forceCode: "43",
                occurredAt: occurred, reportedAt: occurred.addingTimeInterval(900),
                incidentAddress: PostalAddress(lines: ["\(1 + Int.random(in: 0..<180, using: &random)) \(random.pick(Names.streets))"],
                                               town: "Reading", postcode: postcode),
                localPolicingArea: "Reading", riskLevel: .standard, crime: false,
                parties: [Party(role: .victim, givenName: random.pick(Names.adultsFemale), familyName: family, dateOfBirth: parentBirth.description)],
                children: [RecordedChild(givenName: given, familyName: family, dateOfBirth: birth.description,
                                         school: RecordedSchool(name: school.name, urn: school.urn))])
        }
    }

    static func birth(_ day: CalendarDate, minAge: Int, maxAge: Int, _ random: inout SeededRandom) -> CalendarDate {
        day.adding(days: -Int.random(in: (minAge * 365 + 1)...(maxAge * 365 + 360), using: &random))
    }

    static func ageOn(_ day: CalendarDate, _ birth: CalendarDate) -> Int {
        var years = day.year - birth.year
        if (day.month, day.day) < (birth.month, birth.day) { years -= 1 }
        return years
    }

    static func informalOrTypo(_ name: String, _ random: inout SeededRandom) -> String {
        if let forms = Names.informal[name], random.chance(0.6) { return random.pick(forms) }
        return typo(name, &random)
    }

    /// One keyboard slip: a swapped pair, a dropped or a doubled letter.
    static func typo(_ word: String, _ random: inout SeededRandom) -> String {
        var letters = Array(word)
        guard letters.count > 3 else { return word }
        let i = Int.random(in: 1..<(letters.count - 1), using: &random)
        switch Int.random(in: 0..<3, using: &random) {
        case 0: letters.swapAt(i, i + 1)
        case 1: letters.remove(at: i)
        default: letters.insert(letters[i], at: i)
        }
        return String(letters)
    }

    /// How an officer might write a school's name: abbreviated, without its church, or misspelt.
    static func schoolVariant(_ school: WorldSchool, _ random: inout SeededRandom) -> String {
        var name = school.name
        let swaps = [("Church of England", "CE"), ("C of E", "CE"), ("Primary School", "Primary"), ("Primary", "Prim"),
                     ("Saint ", "St "), ("St. ", "St "), ("Roman Catholic", "RC"), ("Catholic", "RC"), ("School", "Sch"),
                     ("Infant", "Inf"), ("Junior", "Jnr"), ("Academy", "Acad")]
        for (long, short) in swaps where name.contains(long) && random.chance(0.6) {
            name = name.replacingOccurrences(of: long, with: short)
        }
        if random.chance(0.3) { name = name.replacingOccurrences(of: "'", with: "") }
        if random.chance(0.35) { name = typo(name, &random) }
        if random.chance(0.4) { name += ", \(school.town)" }
        if name == school.name { name = name.lowercased() }
        return name
    }

    static func addressVariant(_ line: String) -> String {
        line.replacingOccurrences(of: " Road", with: " Rd").replacingOccurrences(of: " Street", with: " St")
            .replacingOccurrences(of: "Flat ", with: "").replacingOccurrences(of: ", ", with: "/")
    }
}
