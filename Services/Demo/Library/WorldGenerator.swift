import EncompassModels
import Foundation

/// The synthetic force area the demo runs on (Thames Valley, or Cambridgeshire and
/// Peterborough: `DemoForce`): families living near real schools, several years of incident
/// history across the force's LPAs, and one day of new incidents in which officers left many
/// children and schools unrecorded or misspelt. Everything is derived from the seed, so a run
/// can be repeated exactly.
public struct WorldSettings: Sendable, Equatable {
    public var seed: UInt64
    /// The force whose area, records and protocol the world has.
    public var force: DemoForce
    /// Households to invent.
    public var families: Int
    /// New incidents on the demo day.
    public var dayIncidents: Int
    /// The demo day (the incidents' local date).
    public var day: CalendarDate
    /// Years of history before the day.
    public var historyYears: Int
    /// The share of school places a child takes at a school outside the force's local
    /// authorities (from the register's other LAs); 0 keeps every child in area.
    public var outOfAreaShare: Double

    public init(
        seed: UInt64 = 2026, families: Int = 1_500, dayIncidents: Int = 120, day: CalendarDate, historyYears: Int = 3,
        force: DemoForce = .thamesValley, outOfAreaShare: Double = 0
    ) {
        self.seed = seed
        self.force = force
        self.families = families
        self.dayIncidents = dayIncidents
        self.day = day
        self.historyYears = historyYears
        self.outOfAreaShare = outOfAreaShare
    }
}

/// Who the people of one incident are: the world's identity of each party and each recorded
/// child, in the order of the incident's `parties` and `children` (`force code` + `p` + a
/// number: the same person has the same identity in every record, however it was written).
public struct RecordedIdentities: Sendable, Equatable {
    public var parties: [String]
    public var children: [String]

    public init(parties: [String], children: [String]) {
        self.parties = parties
        self.children = children
    }
}

/// What really happened on the demo day, which the officers' records only partly show.
public struct DayTruth: Codable, Sendable, Equatable {
    public struct Child: Codable, Sendable, Equatable {
        public var givenName: String
        public var familyName: String
        public var dateOfBirth: String
        /// The school the child really attends on the day (nil below school age).
        public var schoolURN: String?
        /// The officer recorded this child.
        public var recordedByOfficer: Bool
        /// The officer recorded the child with the school's exact name or URN (the manual process alone gets this child right).
        public var officerSchoolCorrect: Bool
        /// The child is in at least one earlier record (research can only find children that are).
        public var inEarlierRecords: Bool = false
        /// The child's school on the day differs from the one in its latest earlier record
        /// (a phase transfer or a move since).
        public var schoolChangedSinceRecord: Bool = false
        /// The officer mistyped the child's date of birth.
        public var dateOfBirthMistyped: Bool = false
        /// What the officer wrote, where it differs from the truth (a slip in the given name, a
        /// mistyped date of birth): the judge knows the child by it too.
        public var recordedGivenName: String?
        public var recordedDateOfBirth: String?
        /// The school the child left in the term before the day, which the officer's record and
        /// every earlier record still name (nothing the police hold shows the move): the school
        /// answers "no longer attends" and the notice is redirected to `schoolURN`.
        public var leftSchoolURN: String?
        /// The child is on no school roll (home educated since the last record), recorded so by
        /// the officer: the notice goes to this local authority, where the child lives.
        public var homeAuthority: String?

        /// Whom a notice about the child must reach: its school, or, on no school roll, its
        /// home local authority (`LA<code>`, as school resolution routes it).
        public var notifiedAs: String? { schoolURN ?? homeAuthority.map(LocalAuthorityContacts.key) }
    }

    public var occurrenceNumber: String
    public var children: [Child]
    /// The officer mistyped an adult's date of birth (an impossible year).
    public var adultFieldMistyped: Bool = false
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
    /// The next school morning's late report: an incident of the day's evening reported after
    /// the morning's release, inside the protocol's release window (its notices go out at
    /// once). Its `reportedAt` is the demo's to set (when it feeds it); its truth is in `truth`.
    public var morning: [Incident] = []
    /// How untidy the world is: counts of each kind of trap real records hold (moves, previous
    /// occupants, partners' earlier children, phase transfers, typos, partial school names).
    public var untidiness: [String: Int] = [:]
    /// Who is who in the records (keyed by occurrence number, history, day and morning): the
    /// generator's identity of every adult and child it wrote into an incident, the ground truth
    /// for scoring the person matcher on the world's people (`WorldFiles.peopleFile`).
    public var identities: [String: RecordedIdentities] = [:]
}

public enum WorldGenerator {
    /// Thames Valley local authorities (DfE codes) and the LPAs that cover them, by town where
    /// one LA has several.
    static let thamesValley = ["867", "868", "869", "870", "871", "872", "825", "826", "931"]

    static func lpa(laCode: String, town: String, postcode: String) -> String {
        let t = town.lowercased()
        switch laCode {
        case "873", "874": return DemoForce.cambridgeshireLPA(laCode: laCode, town: t, postcode: postcode)
        case "867", "872": return "Bracknell and Wokingham"
        case "868": return "Windsor and Maidenhead"
        case "869": return "West Berkshire"
        case "870": return "Reading"
        case "871": return "Slough"
        case "826": return "Milton Keynes"
        case "825":
            if [
                "amersham", "chesham", "beaconsfield", "gerrards cross", "chalfont st giles", "chalfont st peter", "great missenden", "iver",
                "denham", "farnham common", "burnham",
            ].contains(where: t.contains) {
                return "Chiltern and South Bucks"
            }
            if ["high wycombe", "marlow", "princes risborough", "hazlemere", "wycombe", "bourne end", "stokenchurch"].contains(where: t.contains) {
                return "Wycombe"
            }
            return "Aylesbury Vale"
        default: // 931 Oxfordshire
            if t.contains("oxford") && !t.contains("shire") { return "Oxford" }
            if [
                "abingdon", "didcot", "wallingford", "henley", "thame", "wantage", "faringdon", "wheatley", "berinsfield", "chinnor", "watlington",
                "grove",
            ].contains(where: t.contains) {
                return "South and Vale"
            }
            return "Cherwell and West Oxfordshire"
        }
    }

    /// A child's school from a date on (nil: none, e.g. below school age).
    private struct Spell {
        var from: CalendarDate
        var urn: String?
    }

    private struct Person {
        var given: String
        var family: String
        var birth: CalendarDate
        var spells: [Spell] = []
        /// The person's identity in the world (`RecordedIdentities`), the same in every record of them.
        var id = ""

        func school(on day: CalendarDate) -> String? { spells.last { $0.from <= day }?.urn }
    }

    /// Where a household lives from a date on.
    private struct Home {
        var from: CalendarDate
        var address: PostalAddress
        var laCode: String
        var town: String
        var lpa: String
    }

    private struct Family {
        var homes: [Home]
        var victim: Person
        var suspect: Person
        var children: [Person]
        /// A suspect's earlier household: in the records, never at today's incidents.
        var earlierPartnership = false

        func home(on day: CalendarDate) -> Home { homes.last { $0.from <= day } ?? homes[0] }
    }

    public static func generate(_ settings: WorldSettings, schools allSchools: [WorldSchool]) -> World {
        var random = SeededRandom(seed: settings.seed ^ settings.force.seedSalt)
        let postcode = /^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$/
        let force = settings.force
        let schools =
            allSchools.filter {
                $0.open && force.localAuthorities.contains($0.localAuthorityCode) && $0.ageTo >= 5 && $0.postcode.wholeMatch(of: postcode) != nil
            } + force.earlyYearsSettings(near: allSchools, seed: settings.seed)
        let byLA = Dictionary(grouping: schools, by: \.localAuthorityCode)
        let outOfArea =
            settings.outOfAreaShare > 0
            ? allSchools.filter {
                $0.open && !force.localAuthorities.contains($0.localAuthorityCode) && $0.ageTo >= 5 && $0.postcode.wholeMatch(of: postcode) != nil
            } : []
        let byURN = Dictionary(uniqueKeysWithValues: (schools + outOfArea).map { ($0.urn, $0) })
        var acrossBorder = SeededRandom(seed: settings.seed ^ 0x0A0A_5149)
        let las = force.localAuthorities.filter { byLA[$0] != nil }
        var untidiness: [String: Int] = [:]
        var occurrence = 0
        var occurrencesOn: [CalendarDate: Int] = [:]
        func nextOccurrence(_ date: CalendarDate) -> String {
            occurrence += 1
            occurrencesOn[date, default: 0] += 1
            return force.occurrenceNumber(date, occurrence, occurrencesOn[date]!)
        }
        // The officers' free text (brief circumstances, other safeguarding information) comes
        // from its own random sequence, so it leaves the rest of a seed's world as it was.
        var prose = SeededRandom(seed: settings.seed &+ 0x9E37_79B9)
        let historyStart = CalendarDate(year: settings.day.year - settings.historyYears, month: settings.day.month, day: 1)
        let spanDays = max(30, settings.historyYears * 365 - 2)
        let longAgo = CalendarDate(year: settings.day.year - 40, month: 1, day: 1)

        /// A new home near a real school: in `la`, or in an LA picked by size.
        func newHome(from: CalendarDate, la wanted: String? = nil) -> Home {
            let la = wanted ?? random.pick(las.flatMap { la in Array(repeating: la, count: max(1, byLA[la]!.count / 10)) })
            let anchor = random.pick(byLA[la]!.filter { !SchoolReference.isEarlyYears($0.urn) })
            let district = anchor.postcode.split(separator: " ").first.map(String.init) ?? anchor.postcode
            let letters = Array("ABDEFGHJLNPQRSTUWXYZ")
            let code = "\(district) \(Int.random(in: 1...9, using: &random))\(random.pick(letters))\(random.pick(letters))"
            var line = "\(Int.random(in: 1...180, using: &random)) \(random.pick(Names.streets))"
            if random.chance(0.2) { line = "Flat \(Int.random(in: 1...24, using: &random)), " + line }
            return Home(
                from: from, address: PostalAddress(lines: [line], town: anchor.town, county: nil, postcode: code),
                laCode: la, town: anchor.town, lpa: lpa(laCode: la, town: anchor.town, postcode: code))
        }

        /// A school near `home` that takes a child of school-year age `age`.
        func pickSchool(age: Int, home: Home) -> String? {
            func takes(_ school: WorldSchool) -> Bool {
                SchoolYear.fits(age: age, low: school.ageFrom, high: school.ageTo) && school.type != "Special School"
                    && (age >= 16 || school.type != "College")
                    && (age <= 3 || !SchoolReference.isEarlyYears(school.urn))
            }
            let fitting = byLA[home.laCode]!.filter(takes)
            guard !fitting.isEmpty else { return nil }
            // Where the world has early years settings, half the nursery-age children attend one
            // (the rest a school's nursery class).
            let earlyYears = fitting.filter { SchoolReference.isEarlyYears($0.urn) }
            if !earlyYears.isEmpty, random.chance(0.5) {
                let near = earlyYears.filter { $0.town == home.town }
                return random.pick(near.isEmpty ? earlyYears : near).urn
            }
            let near = fitting.filter { $0.town == home.town }
            let local = random.pick(near.isEmpty ? fitting : near).urn
            // Across the border, drawn from a stream of its own after the local pick, so the
            // world changes little beyond the children placed across it (later draws that depend
            // on a school, such as how its name is misspelt, can still differ).
            if !outOfArea.isEmpty, age >= 4, acrossBorder.chance(settings.outOfAreaShare) {
                let across = outOfArea.filter(takes)
                if !across.isEmpty { return acrossBorder.pick(across).urn }
            }
            return local
        }

        /// A child's schools from the age of 3 to the day: it changes school where English
        /// children do (nursery to Reception, Year 6 to 7, after Year 11 for most, when its
        /// school's range ends) and, mostly, when the family moves.
        func schooling(_ child: inout Person, homes: [Home]) {
            var events: [(CalendarDate, moved: Bool)] = []
            for year in stride(from: child.birth.year + 3, through: settings.day.year, by: 1) {
                events.append((CalendarDate(year: year, month: 9, day: 1), false))
            }
            for home in homes.dropFirst() { events.append((home.from, true)) }
            events = events.filter { $0.0 <= settings.day && $0.0 > child.birth }.sorted { $0.0 < $1.0 }
            var current: String?
            for (date, moved) in events {
                let age = SchoolYear.age(born: child.birth, during: date)
                let home = homes.last { $0.from <= date } ?? homes[0]
                var next: String?
                if age == 3 {
                    next = random.chance(0.5) ? pickSchool(age: 3, home: home) : nil
                } else if age >= 4 && age <= 17 {
                    let school = current.flatMap { byURN[$0] }
                    let fits = school.map { SchoolYear.fits(age: age, low: $0.ageFrom, high: $0.ageTo) } ?? false
                    let transfer = school.map { SchoolYear.transfers(low: $0.ageFrom, high: $0.ageTo).contains(age) } ?? false
                    let stays = fits && (!transfer || (age == 16 && random.chance(0.55))) && (!moved || random.chance(0.2))
                    next = stays ? current : pickSchool(age: age, home: home)
                }
                if next != current || child.spells.isEmpty {
                    child.spells.append(Spell(from: date, urn: next))
                    current = next
                }
            }
        }

        // Every person made gets the next identity (no random draw: the world is as it was).
        var people = 0
        func identity() -> String {
            people += 1
            return "\(force.code)p\(people)"
        }

        func adult(female: Bool, family: String, minAge: Int, maxAge: Int) -> Person {
            var person = Person(
                given: random.pick(female ? Names.adultsFemale : Names.adultsMale), family: family,
                birth: birth(settings.day, minAge: minAge, maxAge: maxAge, &random))
            person.id = identity()
            return person
        }

        /// Siblings: no two share a given name.
        func children(surname: String, mother: Person, count: Int, minAge: Int = 0) -> [Person] {
            var names = Set<String>()
            return (0..<count).map { _ in
                var given: String
                repeat { given = random.chance(0.5) ? random.pick(Names.girls) : random.pick(Names.boys) } while !names.insert(given).inserted
                var child = Person(
                    given: given, family: random.chance(0.15) ? "\(mother.family)-\(surname)" : surname,
                    birth: birth(settings.day, minAge: minAge, maxAge: 17, &random))
                child.id = identity()
                return child
            }
        }

        // Households near real schools. Some moved in the last years; some homes had other
        // occupants before them; some suspects had children with an earlier partner.
        var families: [Family] = []
        for _ in 0..<settings.families {
            let surname = random.pick(Names.surnames)
            let mother = adult(female: true, family: random.chance(0.8) ? surname : random.pick(Names.surnames), minAge: 22, maxAge: 45)
            let father = adult(female: false, family: surname, minAge: 23, maxAge: 50)
            var homes = [newHome(from: longAgo)]
            if random.chance(0.25) {
                let moved = historyStart.adding(days: Int.random(in: 60..<(spanDays - 30), using: &random))
                homes.append(newHome(from: moved, la: random.chance(0.6) ? homes[0].laCode : nil))
                untidiness["households that moved", default: 0] += 1
                if random.chance(0.5) {
                    // The home they left gets new occupants, whose own records start there.
                    let surname2 = random.pick(Names.surnames)
                    let mother2 = adult(female: true, family: surname2, minAge: 22, maxAge: 45)
                    var next = homes[0]
                    next.from = moved.adding(days: Int.random(in: 14...90, using: &random))
                    families.append(
                        Family(
                            homes: [newHome(from: longAgo), next], victim: mother2,
                            suspect: adult(female: false, family: surname2, minAge: 23, maxAge: 50),
                            children: children(surname: surname2, mother: mother2, count: max(1, min(3, random.poisson(1.4))))))
                    untidiness["homes with previous occupants in the records", default: 0] += 1
                }
            }
            families.append(
                Family(
                    homes: homes, victim: mother, suspect: father,
                    children: children(surname: surname, mother: mother, count: max(1, min(4, random.poisson(1.6))))))
            if random.chance(0.15) {
                // The suspect's earlier household: his children with another partner, elsewhere.
                let ex = adult(female: true, family: random.pick(Names.surnames), minAge: 25, maxAge: 50)
                families.append(
                    Family(
                        homes: [newHome(from: longAgo)], victim: ex, suspect: father,
                        children: children(surname: surname, mother: ex, count: random.chance(0.5) ? 1 : 2, minAge: 3),
                        earlierPartnership: true))
                untidiness["suspects with an earlier partner's children in the records", default: 0] += 1
            }
        }
        for index in families.indices {
            let homes = families[index].homes
            for child in families[index].children.indices { schooling(&families[index].children[child], homes: homes) }
        }

        func party(_ person: Person, _ role: PartyRole, variant: Bool) -> Party {
            Party(
                role: role, givenName: variant ? informalOrTypo(person.given, &random) : person.given,
                familyName: variant && random.chance(0.3) ? typo(person.family, &random) : person.family,
                dateOfBirth: random.chance(0.85) ? person.birth.description : nil)
        }

        // History: earlier incidents where each household lived then, its children recorded
        // with the school they attended then.
        var history: [Incident] = []
        var identities: [String: RecordedIdentities] = [:]
        var lastRecordedSchool: [String: String?] = [:] // child key → school in its latest record
        var recordedChildren = Set<String>()
        func key(_ person: Person) -> String { "\(person.given)|\(person.family)|\(person.birth)" }
        for family in families {
            var dates: [CalendarDate] = []
            for _ in 0..<random.poisson(1.4) { dates.append(historyStart.adding(days: Int.random(in: 0..<spanDays, using: &random))) }
            for date in dates.sorted() {
                let home = family.home(on: date)
                let occurred = date.at(hour: Int.random(in: 0...23, using: &random), minute: Int.random(in: 0...59, using: &random))
                let present = family.children.filter { $0.birth < date && ageOn(date, $0.birth) < 18 }
                var childIds: [String] = []
                let children = present.filter { _ in random.chance(0.85) }.map { child in
                    childIds.append(child.id)
                    let knownBirth = random.chance(0.9)
                    recordedChildren.insert(key(child))
                    lastRecordedSchool[key(child)] = child.school(on: date)
                    return RecordedChild(
                        givenName: child.given, familyName: child.family,
                        dateOfBirth: knownBirth ? child.birth.description : nil,
                        ageYears: knownBirth ? nil : ageOn(date, child.birth), homeAddress: home.address, presence: .present,
                        school: child.school(on: date).flatMap { byURN[$0] }.map { RecordedSchool(name: $0.name) })
                }
                var address = home.address
                if random.chance(0.3) { address.lines = address.lines.map(addressVariant) }
                history.append(
                    Incident(
                        occurrenceNumber: nextOccurrence(date), forceCode: force.code, occurredAt: occurred,
                        reportedAt: occurred.addingTimeInterval(Double(Int.random(in: 10...240, using: &random)) * 60),
                        incidentAddress: address, localPolicingArea: home.lpa, riskLevel: random.pick([.standard, .standard, .medium, .high]),
                        crime: random.chance(0.6),
                        parties: [
                            party(family.victim, .victim, variant: random.chance(0.3)), party(family.suspect, .suspect, variant: random.chance(0.3)),
                        ],
                        children: children))
                identities[history[history.count - 1].occurrenceNumber] = RecordedIdentities(
                    parties: [family.victim.id, family.suspect.id], children: childIds)
            }
        }

        // The day: officers often leave the children or their school out, or misspell them.
        var day: [Incident] = []
        var truth: [DayTruth] = []
        var homeAuthority: [String: String] = [:] // occurrence → the LA of the home it happened at
        let withChildren = families.filter { f in !f.earlierPartnership && f.children.contains { ageOn(settings.day, $0.birth) < 18 } }
        for _ in 0..<(withChildren.isEmpty ? 0 : settings.dayIncidents) {
            let family = random.pick(withChildren)
            let late = random.chance(0.05)
            let date = late ? settings.day.adding(days: -Int.random(in: 2...4, using: &random)) : settings.day
            let home = family.home(on: date)
            let occurred = date.at(hour: Int.random(in: 0...22, using: &random), minute: Int.random(in: 0...59, using: &random))
            let reported =
                late
                ? settings.day.at(hour: Int.random(in: 8...17, using: &random))
                : occurred.addingTimeInterval(Double(Int.random(in: 5...50, using: &random)) * 60)
            let present = family.children.filter { ageOn(date, $0.birth) < 18 }
            let omitAll = random.chance(0.45)
            var recorded: [RecordedChild] = []
            var recordedIds: [String] = []
            var truthChildren: [DayTruth.Child] = []
            for child in present {
                let record = !omitAll && random.chance(0.85)
                let urn = child.school(on: date)
                var schoolCorrect = false
                var dobMistyped = false
                var recordedGiven: String?, recordedDOB: String?
                if record {
                    var school: RecordedSchool?
                    if let urn, let real = byURN[urn] {
                        let roll = Double.random(in: 0..<1, using: &random)
                        if roll < 0.35 {
                            school = nil
                        } else if roll < 0.65 {
                            let written = schoolVariant(real, &random)
                            if written.partial { untidiness["school names written partially", default: 0] += 1 }
                            school = RecordedSchool(name: written.name)
                        } else {
                            school = RecordedSchool(name: real.name)
                            schoolCorrect = true
                        }
                    }
                    let knownBirth = random.chance(0.7)
                    var dob = knownBirth ? child.birth.description : nil
                    if knownBirth, random.chance(0.06) {
                        dob = mistypedDate(child.birth)
                        dobMistyped = dob != child.birth.description
                        if dobMistyped { untidiness["children's dates of birth mistyped", default: 0] += 1 }
                    }
                    recordedGiven = random.chance(0.08) ? typo(child.given, &random) : child.given
                    recordedDOB = dob
                    recordedIds.append(child.id)
                    recorded.append(
                        RecordedChild(
                            givenName: recordedGiven ?? child.given, familyName: child.family,
                            dateOfBirth: dob, ageYears: knownBirth ? nil : ageOn(date, child.birth), homeAddress: home.address,
                            presence: random.pick([.present, .present, .witness]), school: school))
                }
                let seen = lastRecordedSchool[key(child)]
                let changed = seen != nil && seen! != urn
                if changed, urn != nil { untidiness["children whose school changed since their last record", default: 0] += 1 }
                truthChildren.append(
                    DayTruth.Child(
                        givenName: child.given, familyName: child.family, dateOfBirth: child.birth.description,
                        schoolURN: urn, recordedByOfficer: record, officerSchoolCorrect: schoolCorrect,
                        inEarlierRecords: recordedChildren.contains(key(child)),
                        schoolChangedSinceRecord: changed, dateOfBirthMistyped: dobMistyped,
                        recordedGivenName: recordedGiven == child.given ? nil : recordedGiven,
                        recordedDateOfBirth: recordedDOB == child.birth.description ? nil : recordedDOB))
            }
            var parties = [party(family.victim, .victim, variant: random.chance(0.4)), party(family.suspect, .suspect, variant: random.chance(0.4))]
            let adultTypo = random.chance(0.08)
            if adultTypo, let born = parties[1].dateOfBirth ?? parties[0].dateOfBirth {
                // A year keyed in backwards or with a stray digit (1987 → 9187): impossible.
                let index = parties[1].dateOfBirth != nil ? 1 : 0
                parties[index].dateOfBirth = "9" + born.dropFirst()
                untidiness["adults' dates of birth mistyped (impossible year)", default: 0] += 1
            }
            let number = nextOccurrence(date)
            homeAuthority[number] = home.laCode
            identities[number] = RecordedIdentities(parties: [family.victim.id, family.suspect.id], children: recordedIds)
            day.append(
                Incident(
                    occurrenceNumber: number, forceCode: force.code, occurredAt: occurred, reportedAt: reported,
                    incidentAddress: home.address, localPolicingArea: home.lpa,
                    riskLevel: random.pick([.standard, .standard, .medium, .high]), crime: random.chance(0.6),
                    parties: parties, children: recorded,
                    circumstances: prose.chance(0.6) ? prose.pick(Names.circumstances) : nil,
                    safeguardingInformation: prose.chance(0.25) ? prose.pick(Names.safeguardingInformation) : nil))
            truth.append(
                DayTruth(
                    occurrenceNumber: number, children: truthChildren,
                    adultFieldMistyped: adultTypo && parties.contains { $0.dateOfBirth?.hasPrefix("9") == true }))
        }

        // The next school morning: one more incident of the evening before, reported after the
        // first release, every child recorded with its school (its own random stream, so the
        // rest of the world is as it was).
        var lateStream = SeededRandom(seed: settings.seed ^ 0x1A7E_5EED)
        var morning: [Incident] = []
        let pupils = withChildren.filter { family in
            family.children.contains { ageOn(settings.day, $0.birth) < 18 && $0.school(on: settings.day).flatMap { byURN[$0] } != nil }
        }
        if !pupils.isEmpty {
            let family = lateStream.pick(pupils)
            let home = family.home(on: settings.day)
            let occurred = settings.day.at(hour: 21, minute: Int.random(in: 0...59, using: &lateStream))
            let present = family.children.filter { ageOn(settings.day, $0.birth) < 18 }
            let number = nextOccurrence(settings.day)
            identities[number] = RecordedIdentities(parties: [family.victim.id, family.suspect.id], children: present.map(\.id))
            morning.append(
                Incident(
                    occurrenceNumber: number, forceCode: force.code, occurredAt: occurred,
                    reportedAt: settings.day.adding(days: 1).at(hour: 8, minute: 40),
                    incidentAddress: home.address, localPolicingArea: home.lpa, riskLevel: .medium, crime: true,
                    parties: [party(family.victim, .victim, variant: false), party(family.suspect, .suspect, variant: false)],
                    children: present.map { child in
                        RecordedChild(
                            givenName: child.given, familyName: child.family, dateOfBirth: child.birth.description, homeAddress: home.address,
                            presence: .present,
                            school: child.school(on: settings.day).flatMap { byURN[$0] }.map { RecordedSchool(name: $0.name, urn: $0.urn) })
                    }))
            truth.append(
                DayTruth(
                    occurrenceNumber: number,
                    children: present.map { child in
                        let urn = child.school(on: settings.day)
                        return DayTruth.Child(
                            givenName: child.given, familyName: child.family, dateOfBirth: child.birth.description, schoolURN: urn,
                            recordedByOfficer: true, officerSchoolCorrect: urn.flatMap { byURN[$0] } != nil,
                            inEarlierRecords: recordedChildren.contains(key(child)))
                    }))
        }

        dutyCases(
            day: &day, truth: &truth, homeAuthority: homeAuthority, schools: schools, allSchools: allSchools, force: force,
            settings: settings, untidiness: &untidiness)

        let contacts = schools.map { school in
            let digits = school.urn.filter(\.isNumber) // an early years setting's Ofsted reference is EY and digits
            return WorldContact(
                urn: school.urn, role: "dsl", name: "Designated Safeguarding Lead",
                email: "dsl.\(school.urn)@schools.example.org.uk", phone: "01\(digits.suffix(3)) \(digits)")
        }
        return World(
            settings: settings, history: history.sorted { $0.occurredAt < $1.occurredAt }, day: day, truth: truth,
            contacts: contacts, schools: schools, morning: morning, untidiness: untidiness, identities: identities)
    }

    /// The statutory duty's two rarer cases, each once, drawn from a stream of their own so the
    /// rest of the seed's world is as it was. Each is a child of the day whom the officer
    /// recorded exactly (name, date of birth, school), seen at no other incident of the day:
    /// - **moved school in the term**: a primary-age child now attends another school of its
    ///   local authority, while the officer's record and every earlier one still name the school
    ///   it left (`leftSchoolURN`); that school will answer "no longer attends";
    /// - **on no school roll**: a school-age child taken off the roll to be home educated, whom
    ///   the officer records as "Home educated" (`homeAuthority`: notified to its home LA).
    static func dutyCases(
        day: inout [Incident], truth: inout [DayTruth], homeAuthority: [String: String], schools: [WorldSchool],
        allSchools: [WorldSchool], force: DemoForce, settings: WorldSettings, untidiness: inout [String: Int]
    ) {
        var duty = SeededRandom(seed: settings.seed ^ 0xD07E_0024)
        let byURN = Dictionary(schools.map { ($0.urn, $0) }, uniquingKeysWith: { first, _ in first })
        var sameName: [String: Int] = [:]
        for school in allSchools where school.open { sameName[school.name.lowercased(), default: 0] += 1 }
        // The LA with most schools in a postcode district: the home LA school resolution finds.
        var districtLAs: [String: [String: Int]] = [:]
        for school in allSchools where school.open && !SchoolReference.isEarlyYears(school.urn) {
            let district = school.postcode.split(separator: " ").first.map(String.init) ?? school.postcode
            districtLAs[district, default: [:]][school.localAuthorityCode, default: 0] += 1
        }
        func districtLA(_ postcode: String?) -> String? {
            guard let district = postcode?.split(separator: " ").first.map(String.init) else { return nil }
            return districtLAs[district]?.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
        }
        var seen: [String: Int] = [:]
        for entry in truth { for child in entry.children { seen["\(child.givenName)|\(child.familyName)|\(child.dateOfBirth)", default: 0] += 1 } }
        // (incident, truth child, recorded child, the child's school) for every clean candidate.
        var candidates: [(Int, Int, Int, WorldSchool)] = []
        for index in day.indices
        where index < truth.count && truth[index].occurrenceNumber == day[index].occurrenceNumber && !truth[index].adultFieldMistyped {
            for (k, child) in truth[index].children.enumerated() {
                guard child.recordedByOfficer, child.officerSchoolCorrect, !child.dateOfBirthMistyped, child.recordedGivenName == nil,
                    seen["\(child.givenName)|\(child.familyName)|\(child.dateOfBirth)"] == 1,
                    let school = child.schoolURN.flatMap({ byURN[$0] }), force.localAuthorities.contains(school.localAuthorityCode),
                    !SchoolReference.isEarlyYears(school.urn), sameName[school.name.lowercased()] == 1,
                    let j = day[index].children.firstIndex(where: {
                        $0.givenName == child.givenName && $0.familyName == child.familyName
                            && $0.dateOfBirth == child.dateOfBirth && $0.school?.name == school.name
                    })
                else { continue }
                candidates.append((index, k, j, school))
            }
        }
        func age(_ child: DayTruth.Child) -> Int { SchoolYear.age(born: CalendarDate(iso: child.dateOfBirth)!, during: settings.day) }
        var used = Set<Int>()
        let movers = candidates.compactMap { candidate -> (Int, Int, Int, WorldSchool, WorldSchool)? in
            let (index, k, j, old) = candidate
            let years = age(truth[index].children[k])
            guard (5...9).contains(years) else { return nil }
            let others = schools.filter {
                $0.urn != old.urn && $0.localAuthorityCode == old.localAuthorityCode && !SchoolReference.isEarlyYears($0.urn)
                    && $0.type != "Special School" && $0.type != "College" && SchoolYear.fits(age: years, low: $0.ageFrom, high: $0.ageTo)
            }
            let near = others.filter { $0.town == old.town }
            guard let new = (near.isEmpty ? others : near).first else { return nil }
            return (index, k, j, old, new)
        }
        if !movers.isEmpty {
            let (index, k, _, old, new) = duty.pick(movers)
            truth[index].children[k].leftSchoolURN = old.urn
            truth[index].children[k].schoolURN = new.urn
            truth[index].children[k].officerSchoolCorrect = false
            truth[index].children[k].schoolChangedSinceRecord = true
            used.insert(index)
            untidiness["children who moved school in the term, every record naming the school they left", default: 0] += 1
        }
        let homeEducated = candidates.filter { candidate in
            let (index, k, j, _) = candidate
            guard !used.contains(index), (5...15).contains(age(truth[index].children[k])), let la = homeAuthority[day[index].occurrenceNumber] else {
                return false
            }
            return districtLA(day[index].children[j].homeAddress?.postcode ?? day[index].incidentAddress.postcode) == la
        }
        if !homeEducated.isEmpty {
            let (index, k, j, _) = duty.pick(homeEducated)
            truth[index].children[k].schoolURN = nil
            truth[index].children[k].homeAuthority = homeAuthority[day[index].occurrenceNumber]
            truth[index].children[k].officerSchoolCorrect = false
            day[index].children[j].school = RecordedSchool(name: "Home educated")
            untidiness["children on no school roll (home educated), recorded so by the officer", default: 0] += 1
        }
    }

    /// A date of birth as an officer might mistype it: the year's last two digits swapped
    /// (2012 → 2021), or day and month swapped where both are possible.
    static func mistypedDate(_ date: CalendarDate) -> String {
        let tens = (date.year / 10) % 10, units = date.year % 10
        if tens != units {
            let year = date.year - tens * 10 - units + units * 10 + tens
            if let swapped = CalendarDate(iso: CalendarDate(year: year, month: date.month, day: date.day).description) { return swapped.description }
        }
        if date.day <= 12, date.day != date.month { return CalendarDate(year: date.year, month: date.day, day: date.month).description }
        return date.description
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
        let primaries = schools.filter {
            $0.open && $0.localAuthorityCode == "870" && $0.ageFrom <= 5 && $0.ageTo >= 10 && $0.type != "Special School"
        }
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
            let postcode =
                "RG\(1 + Int.random(in: 0..<31, using: &random)) \(Int.random(in: 1...9, using: &random))"
                + "\(random.pick(letters))\(random.pick(letters))"
            let parentBirth = day.adding(days: -Int.random(in: (22 * 365)...(45 * 365), using: &random))
            return Incident(
                occurrenceNumber: String(format: "%02d%09d", day.year % 100, 500_000_000 + index), forceCode: "43",
                occurredAt: occurred, reportedAt: occurred.addingTimeInterval(900),
                incidentAddress: PostalAddress(
                    lines: ["\(1 + Int.random(in: 0..<180, using: &random)) \(random.pick(Names.streets))"],
                    town: "Reading", postcode: postcode),
                localPolicingArea: "Reading", riskLevel: .standard, crime: false,
                parties: [Party(role: .victim, givenName: random.pick(Names.adultsFemale), familyName: family, dateOfBirth: parentBirth.description)],
                children: [
                    RecordedChild(
                        givenName: given, familyName: family, dateOfBirth: birth.description,
                        school: RecordedSchool(name: school.name, urn: school.urn))
                ])
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

    /// How an officer might write a school's name: abbreviated, without its church, misspelt,
    /// or only its naming words ("St Andrew's" for St Andrew's Church of England Primary School).
    static func schoolVariant(_ school: WorldSchool, _ random: inout SeededRandom) -> (name: String, partial: Bool) {
        var name = school.name
        if random.chance(0.2) {
            var words = name.split(separator: " ").map(String.init)
            let kinds: Set<String> = [
                "church", "of", "england", "c", "e", "ce", "cofe", "c.e.", "catholic", "roman", "rc", "primary", "school",
                "infant", "junior", "academy", "nursery", "community", "(aided)", "(va)", "(vc)", "and", "college",
            ]
            words.removeAll { kinds.contains($0.lowercased()) }
            if !words.isEmpty, words.joined(separator: " ") != name { return (words.joined(separator: " "), true) }
        }
        let swaps = [
            ("Church of England", "CE"), ("C of E", "CE"), ("Primary School", "Primary"), ("Primary", "Prim"),
            ("Saint ", "St "), ("St. ", "St "), ("Roman Catholic", "RC"), ("Catholic", "RC"), ("School", "Sch"),
            ("Infant", "Inf"), ("Junior", "Jnr"), ("Academy", "Acad"),
        ]
        for (long, short) in swaps where name.contains(long) && random.chance(0.6) {
            name = name.replacingOccurrences(of: long, with: short)
        }
        if random.chance(0.3) { name = name.replacingOccurrences(of: "'", with: "") }
        if random.chance(0.35) { name = typo(name, &random) }
        if random.chance(0.4) { name += ", \(school.town)" }
        if name == school.name { name = name.lowercased() }
        return (name, false)
    }

    static func addressVariant(_ line: String) -> String {
        line.replacingOccurrences(of: " Road", with: " Rd").replacingOccurrences(of: " Street", with: " St")
            .replacingOccurrences(of: "Flat ", with: "").replacingOccurrences(of: ", ", with: "/")
    }
}
