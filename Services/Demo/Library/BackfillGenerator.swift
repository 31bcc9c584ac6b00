import EncompassModels
import Foundation

/// Past incidents at national scale for the backfill benchmark, generated in slices so a year
/// of them never has to be in memory at once: each incident has two adults and zero to three
/// children at a household address, and about a fifth of households appear again later in the
/// year (the repeats research is there to find). Deterministic for a seed.
public struct BackfillGenerator: Sendable {
    public let count: Int
    public let year: Int
    public let seed: UInt64

    public init(count: Int, year: Int, seed: UInt64 = 7) {
        self.count = count
        self.year = year
        self.seed = seed
    }

    /// Incidents `range` (a slice of 0..<count), spread evenly over the year.
    public func incidents(_ range: Range<Int>) -> [Incident] {
        let start = CalendarDate(year: year, month: 1, day: 1)
        let perDay = max(1, count / 365 + (count % 365 == 0 ? 0 : 1))
        return range.map { index in
            // A fifth of incidents revisit an earlier household (same people and address).
            var pick = SeededRandom(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
            let household = index >= 10 && pick.chance(0.2) ? Int.random(in: 0..<index, using: &pick) : index
            var random = SeededRandom(seed: seed ^ (UInt64(household) &* 0xBF58_476D_1CE4_E5B9))
            let day = start.adding(days: min(364, index / perDay))
            let occurred = day.at(hour: index % 24, minute: (index / 24) % 60)
            let surname = random.pick(Names.surnames)
            let victim = Party(
                role: .victim, givenName: random.pick(Names.adultsFemale), familyName: surname,
                dateOfBirth: WorldGenerator.birth(day, minAge: 22, maxAge: 50, &random).description)
            let suspect = Party(
                role: .suspect, givenName: random.pick(Names.adultsMale),
                familyName: random.chance(0.7) ? surname : random.pick(Names.surnames),
                dateOfBirth: random.chance(0.9) ? WorldGenerator.birth(day, minAge: 22, maxAge: 55, &random).description : nil)
            // An officer records a date of birth for most children, an age for the rest.
            let children = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                let birth = WorldGenerator.birth(day, minAge: 0, maxAge: 16, &random)
                let given = random.chance(0.5) ? random.pick(Names.girls) : random.pick(Names.boys)
                return random.chance(0.8)
                    ? RecordedChild(givenName: given, familyName: surname, dateOfBirth: birth.description)
                    : RecordedChild(givenName: given, familyName: surname, ageYears: WorldGenerator.ageOn(day, birth))
            }
            let address = PostalAddress(
                lines: ["\(1 + household % 180) \(random.pick(Names.streets))"], town: "Reading",
                postcode:
                    "RG\(1 + household % 31) \(household % 10)\(["A", "B", "D", "E", "F", "G", "H", "J"][household % 8])\(["L", "N", "P", "Q", "R", "S", "T", "U"][(household / 8) % 8])"
            )
            return Incident(
                occurrenceNumber: String(format: "%02d%09d", year % 100, 100_000_000 + index), forceCode: "43",
                occurredAt: occurred, reportedAt: occurred.addingTimeInterval(1_800), incidentAddress: address,
                localPolicingArea: "Reading", riskLevel: random.chance(0.1) ? .high : .standard, crime: random.chance(0.4),
                parties: [victim, suspect], children: children
            )
        }
    }
}
