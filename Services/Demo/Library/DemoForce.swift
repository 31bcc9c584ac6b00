import EncompassModels
import Foundation

/// What makes the demo world one force's: its local authorities (DfE codes) and their LPAs,
/// its occurrence numbers, and the early years settings its protocol treats apart. The
/// generator, the demo and the judge read the force from here; everything else about the
/// force (release rules, notice fields, routes, contacts) is its protocol file's, as in
/// production.
public struct DemoForce: Sendable, Equatable {
    /// Home Office force code (`Incident.forceCode`).
    public var code: String
    public var name: String
    /// The local authorities whose schools the world's families attend.
    public var localAuthorities: [String]
    /// Synthetic early years settings (Ofsted `EY` references) per local authority: the 2018
    /// school list has no private or voluntary nurseries, which Cambridgeshire's protocol
    /// telephones.
    public var earlyYearsSettingsPerAuthority: Int

    public static let thamesValley = DemoForce(
        code: "43", name: "Thames Valley", localAuthorities: WorldGenerator.thamesValley, earlyYearsSettingsPerAuthority: 3)
    public static let cambridgeshire = DemoForce(
        code: "05", name: "Cambridgeshire and Peterborough", localAuthorities: ["873", "874"], earlyYearsSettingsPerAuthority: 12)

    public static let all = [thamesValley, cambridgeshire]

    /// Mixed into the world's seed, so that two forces' worlds of one seed (`--force 43,05`)
    /// are different people, not the same families in two places. Thames Valley's is 0: its
    /// worlds are those of the seed itself.
    var seedSalt: UInt64 { code == "43" ? 0 : 0x05C0_FFEE }

    /// The day comes as the DA desk's daily spreadsheet (`encompass ingest`), as Cambridgeshire's
    /// MASH receives it; Thames Valley's through the incidents API.
    public var feedsSpreadsheet: Bool { code == "05" }

    /// Who reviews found children and decides held answers in the demo: Cambridgeshire's MASH
    /// Navigator, Thames Valley's MASH reviewer.
    public var reviewer: String { code == "05" ? "MASH Navigator (demo)" : "MASH demo reviewer" }

    /// The DA desk's daily spreadsheet of `day`, as the demo writes it.
    public func deskSpreadsheetName(_ day: CalendarDate) -> String { "da-desk-\(code)-\(day).csv" }

    /// The force of a code (`43`, `05`), or nil.
    public static func code(_ code: String) -> DemoForce? { all.first { $0.code == code } }

    /// An occurrence number in the force's format for the `sequence`-th incident of the world
    /// and the `ofDay`-th of its date: Thames Valley 11 digits (year and a running number),
    /// Cambridgeshire `CC-YYYYMMDD-NNNN` (date and the day's number).
    func occurrenceNumber(_ date: CalendarDate, _ sequence: Int, _ ofDay: Int) -> String {
        switch code {
        case "05": String(format: "CC-%04d%02d%02d-%04d", date.year, date.month, date.day, ofDay % 10_000)
        default: String(format: "%02d%09d", date.year % 100, 430_000_000 + sequence)
        }
    }

    /// Cambridgeshire's LPAs (its districts; Peterborough is its own): by post town, and for
    /// Cambridge by postcode district (CB1 to CB5 are the city, the rest South Cambridgeshire).
    static func cambridgeshireLPA(laCode: String, town: String, postcode: String) -> String {
        if laCode == "874" { return "Peterborough" }
        if town.contains("cambridge") && !town.contains("cambourne") {
            let district = postcode.split(separator: " ").first.map(String.init) ?? ""
            return ["CB1", "CB2", "CB3", "CB4", "CB5"].contains(district) ? "Cambridge City" : "South Cambridgeshire"
        }
        if ["ely", "soham", "newmarket", "pymoor", "littleport", "burwell", "sutton"].contains(where: town.contains) { return "East Cambridgeshire" }
        if ["wisbech", "march", "chatteris", "whittlesey"].contains(where: town.contains) { return "Fenland" }
        if [
            "huntingdon", "neots", "st ives", "ramsey", "godmanchester", "sandy", "spaldwick", "alconbury", "somersham", "yaxley",
            "peterborough", "hegrey", "kimbolton", "sawtry",
        ].contains(where: town.contains) {
            return "Huntingdonshire"
        }
        return "South Cambridgeshire"
    }

    /// The force's synthetic early years settings, each beside a real school of its local
    /// authority (same town and postcode), aged 0 to 5, known by an Ofsted reference.
    func earlyYearsSettings(near schools: [WorldSchool], seed: UInt64) -> [WorldSchool] {
        guard earlyYearsSettingsPerAuthority > 0 else { return [] }
        var random = SeededRandom(seed: seed &+ 0xE4_5E77)
        let words = [
            "Little Acorns", "Busy Bees", "Rainbow", "Treetops", "Jack in the Box", "Ladybird", "Honeypot", "Sunflower",
            "Puddle Ducks", "Little Explorers", "Old School House", "First Steps", "Caterpillars", "Tiny Tots",
        ]
        var settings: [WorldSchool] = []
        var names = Set<String>()
        var reference = 512_000
        for la in localAuthorities {
            let anchors = schools.filter {
                $0.open && $0.localAuthorityCode == la && $0.ageFrom <= 5 && $0.ageTo <= 11 && $0.type != "Special School"
            }
            guard !anchors.isEmpty else { continue }
            for _ in 0..<earlyYearsSettingsPerAuthority {
                let anchor = random.pick(anchors)
                let name = "\(anchor.town) \(random.pick(words)) \(random.chance(0.6) ? "Day Nursery" : "Pre-School")"
                guard names.insert(name).inserted else { continue }
                reference += Int.random(in: 1...400, using: &random)
                settings.append(
                    WorldSchool(
                        urn: "EY\(reference)", name: name, town: anchor.town, postcode: anchor.postcode,
                        localAuthorityCode: la, open: true, ageFrom: 0, ageTo: 5, type: "Private nursery"))
            }
        }
        return settings
    }
}

extension World {
    /// Several forces' worlds as one, for a deployment that serves them all: their histories,
    /// days, truths, schools and contacts side by side (occurrence numbers and schools never
    /// collide: each force has its own format and local authorities). Settings are the first's.
    public static func merged(_ worlds: [World]) -> World {
        guard var merged = worlds.first else { preconditionFailure("no world to merge") }
        for world in worlds.dropFirst() {
            merged.history = (merged.history + world.history).sorted { $0.occurredAt < $1.occurredAt }
            merged.day += world.day
            merged.morning += world.morning
            merged.truth += world.truth
            merged.contacts += world.contacts
            merged.schools += world.schools
            merged.untidiness.merge(world.untidiness, uniquingKeysWith: +)
            merged.identities.merge(world.identities) { first, _ in first }
        }
        return merged
    }
}
