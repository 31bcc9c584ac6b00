import Foundation

/// The fields a Fellegi-Sunter model compares, each with its comparison levels (most specific
/// first). Level 0 of every field is "unknown on one side" and carries no weight. The address
/// is one field: its house number, street, postcode and town all say the same thing (the same
/// home), and counted as four independent fields one home outweighed a different given name
/// and date of birth, linking the members of a household.
public enum MatchField: String, Sendable, Codable, CaseIterable {
    case given, family, dateOfBirth, address

    /// The level labels, index = level; level 0 is unknown.
    public var levels: [String] { Self.labels[index] }

    /// The field's position in `allCases` (and in a `ComparisonVector`).
    public var index: Int {
        switch self {
        case .given: 0
        case .family: 1
        case .dateOfBirth: 2
        case .address: 3
        }
    }

    static let labels: [[String]] = MatchField.allCases.map(\.levelLabels)

    /// The lowest level that still agrees in part: above it the field disagrees.
    var lastPartialLevel: UInt8 {
        switch self {
        case .given: 7
        case .family: 6
        case .dateOfBirth: 6
        case .address: 6
        }
    }

    private var levelLabels: [String] {
        switch self {
        case .given:
            [
                "unknown", "exact", "nickname", "Jaro-Winkler >= 0.92", "Jaro-Winkler >= 0.85", "same phonetic key",
                "initial", "swapped with family name", "different",
            ]
        case .family:
            [
                "unknown", "exact", "one part of a double name", "Jaro-Winkler >= 0.92", "Jaro-Winkler >= 0.85",
                "same phonetic key", "swapped with given name", "different",
            ]
        case .dateOfBirth:
            [
                "unknown", "exact", "day/month or two adjacent digits transposed", "one digit apart",
                "year off by one or ten", "same year (one date partial)", "two digits apart", "different",
                "a generation apart (12 years or more)",
            ]
        case .address:
            [
                "unknown", "same house number, street and postcode", "same home, one part mistyped",
                "same postcode and street or house number", "same postcode, or a near one with the street or number",
                "same street, no shared postcode",
                "same town or postcode sector", "different",
            ]
        }
    }

    /// Field names as the explanations print them.
    public var label: String {
        switch self {
        case .given: "given name"
        case .family: "family name"
        case .dateOfBirth: "date of birth"
        case .address: "address"
        }
    }

    static let all = MatchField.allCases
}

/// The comparison levels of two records, one per `MatchField` (in `MatchField.allCases` order),
/// packed one byte per field, the first field in the highest byte: comparing two vectors as
/// numbers orders them as their levels lexicographically, and a vector is made and hashed
/// without an allocation (learning counts the patterns of every pair it compares).
public struct ComparisonVector: Sendable, Hashable {
    var packed: UInt64

    static let fieldCount = MatchField.allCases.count

    init(packed: UInt64) { self.packed = packed }

    public init(levels: [UInt8]) {
        precondition(levels.count == Self.fieldCount, "a comparison has \(Self.fieldCount) levels, one per field")
        packed = levels.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The levels, index = field (`MatchField.allCases` order).
    public var levels: [UInt8] {
        get { (0..<Self.fieldCount).map(level) }
        set { self = ComparisonVector(levels: newValue) }
    }

    /// The level of field number `f` (`MatchField.allCases` order).
    @inline(__always) func level(_ f: Int) -> UInt8 { UInt8(truncatingIfNeeded: packed >> UInt64(8 * (Self.fieldCount - 1 - f))) }

    @inline(__always) mutating func setLevel(_ f: Int, _ level: UInt8) {
        let shift = UInt64(8 * (Self.fieldCount - 1 - f))
        packed = packed & ~(0xFF << shift) | UInt64(level) << shift
    }

    public subscript(field: MatchField) -> Int { Int(level(field.index)) }

    /// Compares two records field by field (symmetric: `compare(a, b) == compare(b, a)`).
    public static func compare(_ a: PersonFeatures, _ b: PersonFeatures) -> ComparisonVector {
        var given = givenLevel(a, b), family = familyLevel(a, b)
        if given >= 3 || family >= 3, swapped(a, b) {
            given = 7
            family = 6
        }
        let dob: UInt8 =
            if let da = a.dateDigits, let db = b.dateDigits {
                dateLevel(a.dateOfBirth!, da, b.dateOfBirth!, db)
            } else if let pa = a.dateOfBirth, let pb = b.dateOfBirth { partialDateLevel(pa, pb) } else { 0 }
        let address = addressLevel(a, b)
        return ComparisonVector(packed: UInt64(given) << 24 | UInt64(family) << 16 | UInt64(dob) << 8 | UInt64(address))
    }

    /// The address's level (`MatchField.address`), from its parts compared one by one: house
    /// number (1 same, 2 different), street (1 same, 2 most words alike, 3 some, 4 different),
    /// postcode (1 same, 2 same sector or one character apart, 3 different), town (1 same, 2
    /// alike, 3 different); 0 where a part is missing on either side. Two different streets are
    /// compared word by word, and two different towns by Jaro-Winkler, only when the level
    /// depends on it: for most pairs of strangers (other postcode, other town) it does not.
    static func addressLevel(_ a: PersonFeatures, _ b: PersonFeatures) -> UInt8 {
        // number: 0 unknown, 1 same, 2 different. street: 0 unknown, 1 same, 2 different (how
        // alike: `streetAlike()`). town: 0 unknown, 1 same, 2 alike, 3 different, 4 different
        // (how alike not yet known: `townLevel()`).
        var number: UInt8 = 0, street: UInt8 = 0
        if let la = a.line, let lb = b.line {
            if !la.number.isEmpty, !lb.number.isEmpty { number = la.number == lb.number ? 1 : 2 }
            if !la.street.isEmpty, !lb.street.isEmpty { street = la.street == lb.street ? 1 : 2 }
        }
        var postcode: UInt8 = 0
        if !a.postcode.isEmpty, !b.postcode.isEmpty {
            if a.postcode == b.postcode {
                postcode = 1
            } else if (a.postcode.utf8.count >= 5 && a.postcodeSector == b.postcodeSector) || oneApart(a.postcodeBytes, b.postcodeBytes) {
                postcode = 2
            } else {
                postcode = 3
            }
        }
        var town: UInt8 = 0
        if !a.town.isEmpty, !b.town.isEmpty { town = a.town == b.town ? 1 : 4 }
        if number == 0, street == 0, postcode == 0, town == 0 { return 0 }
        // The same street, or most words alike (`streetLevel` 2).
        var wordsAlike: Bool?
        func streetAlike() -> Bool {
            if street != 2 { return street == 1 }
            if let wordsAlike { return wordsAlike }
            let alike = streetLevel(a.line!.streetWords, b.line!.streetWords) == 2
            wordsAlike = alike
            return alike
        }
        func townLevel() -> UInt8 {
            if town == 4 { town = NameText.jaroWinkler(a.townBytes, b.townBytes) >= 0.9 ? 2 : 3 }
            return town
        }
        let sameNumber = number == 1
        if sameNumber, street == 1, postcode == 1 { return 1 }
        if sameNumber, (street == 2 && postcode == 1 && streetAlike()) || (street == 1 && postcode == 2) { return 2 }
        if postcode == 1, sameNumber || streetAlike() { return 3 }
        if postcode == 0, sameNumber, street == 1, townLevel() != 3 { return 3 }
        if postcode == 1 || (postcode == 2 && (sameNumber || streetAlike())) { return 4 }
        if townLevel() != 3, streetAlike() { return 5 }
        if postcode == 2 || townLevel() == 1 || townLevel() == 2 { return 6 }
        return 7
    }

    /// This comparison with the address left unknown when it shows another home (no shared
    /// postcode, or none within a mistype): for linking an incident's adults, where households
    /// move and the address is a link of its own, a different home says nothing about who the
    /// person is.
    public var withoutAnotherHome: ComparisonVector {
        guard self[.address] >= 5 else { return self }
        return personOnly
    }

    /// This comparison on the person alone (names and date of birth), the address left
    /// unknown: for telling apart the children of one household, who share its address.
    public var personOnly: ComparisonVector {
        var vector = self
        vector.setLevel(MatchField.address.index, 0)
        return vector
    }

    /// Whether the comparison holds evidence of who the person is beyond their home (a
    /// household's members share its family name and address; a sibling or partner linked is a
    /// breach, not a match). Not when:
    /// - given name and date of birth both disagree;
    /// - the given names disagree (beyond a typo, a nickname or a swap) and the dates of birth are
    ///   not the same: siblings or a couple born days or a year apart show a date "one digit
    ///   apart", which would pass for a mistype; one person's records under two given names
    ///   need the date of birth exact to say so;
    /// - the date of birth is missing on one side, the address is compared and the given names
    ///   are not exactly the same (nor swapped with the family name): a mother Katherine and a
    ///   daughter Katie at one address, or two names a typo apart, are told apart by nothing else;
    /// - the date of birth is missing or disagrees and the addresses are another home: names
    ///   alone (Kelly Lee and Lee Kelly, two Shaun Mitchells of one town), which a model learned
    ///   where names are rare would weigh as proof.
    public var hasIdentityEvidence: Bool { identityProblem == nil }

    /// Why the comparison has no identity evidence beyond the home (`hasIdentityEvidence`), else nil.
    public var identityProblem: String? {
        let given = level(MatchField.given.index), dob = level(MatchField.dateOfBirth.index), address = level(MatchField.address.index)
        if given > MatchField.given.lastPartialLevel {
            if dob > MatchField.dateOfBirth.lastPartialLevel { return Self.noIdentityEvidence }
            if dob >= 2 { return Self.differentGivenNameCloseDate }
        }
        if dob == 0, given != 1, given != Self.swappedGivenLevel, address != 0 { return Self.noDateOfBirthInexactName }
        if dob == 0 || dob > MatchField.dateOfBirth.lastPartialLevel, address >= Self.anotherHomeLevel { return Self.namesAlone }
        return nil
    }

    /// `MatchField.given`'s level "swapped with family name", and `MatchField.address`'s first
    /// level of another home ("same street, no shared postcode").
    static let swappedGivenLevel: UInt8 = 7
    static let anotherHomeLevel: UInt8 = 5

    /// Given name, family name and date of birth all alike (each at most a mistype apart): two
    /// records of one person, whatever else they say. Random pairs like this are left out of u
    /// (which is for pairs of different people): in a file with many duplicates they are most
    /// of the random pairs that share an address, and counted in u they make the address's
    /// agreement look common among different people.
    var isEvidentlyOnePerson: Bool {
        let given = level(MatchField.given.index), family = level(MatchField.family.index), dob = level(MatchField.dateOfBirth.index)
        return (1...4).contains(given) && (1...4).contains(family) && (1...4).contains(dob)
    }

    /// Why a comparison cannot link, as the evidence says it.
    public static let noIdentityEvidence = "given name and date of birth both disagree"
    public static let noDateOfBirthInexactName = "date of birth missing on one side and the given names not exactly the same"
    public static let differentGivenNameCloseDate = "given names different and dates of birth not the same (siblings or a couple born close together)"
    public static let namesAlone = "another home and no date of birth that agrees (names alone)"

    static func givenLevel(_ a: PersonFeatures, _ b: PersonFeatures) -> UInt8 {
        if a.given.isEmpty || b.given.isEmpty { return 0 }
        if a.given == b.given { return 1 }
        // `Nicknames.equivalent`, on the forms each record holds.
        if a.givenForms.contains(where: { b.givenForms.contains($0) }) { return 2 }
        if a.givenIsDouble || b.givenIsDouble {
            let pa = NameText.parts(a.given), pb = NameText.parts(b.given)
            if pa.contains(where: { pb.contains($0) }) { return 2 }
        }
        if a.givenBytes.count == 1 || b.givenBytes.count == 1 { return a.givenBytes.first == b.givenBytes.first ? 6 : 8 }
        let jw = NameText.jaroWinkler(a.givenBytes, b.givenBytes)
        if jw >= 0.92 { return 3 }
        if jw >= 0.85 { return 4 }
        if a.givenSoundex == b.givenSoundex { return 5 }
        return 8
    }

    static func familyLevel(_ a: PersonFeatures, _ b: PersonFeatures) -> UInt8 {
        if a.family.isEmpty || b.family.isEmpty { return 0 }
        if a.family == b.family { return 1 }
        if a.familyParts.count > 1 || b.familyParts.count > 1, a.familyParts.contains(where: { b.familyParts.contains($0) }) { return 2 }
        let jw = NameText.jaroWinkler(a.familyBytes, b.familyBytes)
        if jw >= 0.92 { return 3 }
        if jw >= 0.85 { return 4 }
        if a.familySoundex == b.familySoundex { return 5 }
        return 7
    }

    /// Given and family names exchanged (each alike the other's other name).
    static func swapped(_ a: PersonFeatures, _ b: PersonFeatures) -> Bool {
        guard !a.given.isEmpty, !a.family.isEmpty, !b.given.isEmpty, !b.family.isEmpty else { return false }
        let x = NameText.jaroWinkler(a.givenBytes, b.familyBytes), y = NameText.jaroWinkler(a.familyBytes, b.givenBytes)
        return min(x, y) >= 0.85 && max(x, y) >= 0.92
    }

    /// YYYYMMDD as eight decimal digits, without building a string.
    @inline(__always) static func digits(_ d: PartialDate) -> [UInt8]? {
        guard let year = d.year, let month = d.month, let day = d.day else { return nil }
        let value = year * 10_000 + month * 100 + day
        guard value >= 0, value < 100_000_000 else { return d.digits }
        var out = [UInt8](repeating: 0, count: 8), rest = value
        for i in stride(from: 7, through: 0, by: -1) {
            out[i] = UInt8(48 + rest % 10)
            rest /= 10
        }
        return out
    }

    static func dateLevel(_ a: PartialDate, _ b: PartialDate) -> UInt8 {
        guard let da = digits(a), let db = digits(b) else { return partialDateLevel(a, b) }
        return dateLevel(a, da, b, db)
    }

    /// Two dates, one of them (at least) partial.
    static func partialDateLevel(_ a: PartialDate, _ b: PartialDate) -> UInt8 {
        guard let ya = a.year, let yb = b.year, ya == yb else {
            if let ya = a.year, let yb = b.year, abs(ya - yb) >= generationYears { return 8 }
            return 7
        }
        if let ma = a.month, let mb = b.month, ma != mb { return 7 }
        return 5
    }

    /// Two whole dates and their digits (`digits`).
    static func dateLevel(_ a: PartialDate, _ da: [UInt8], _ b: PartialDate, _ db: [UInt8]) -> UInt8 {
        if da == db { return 1 }
        if a.year == b.year, a.month == b.day, a.day == b.month { return 2 }
        // How many of the eight digits differ, and where the first two do.
        var differ = 0, first = 0, second = 0
        for i in 0..<8 where da[i] != db[i] {
            if differ == 0 { first = i } else if differ == 1 { second = i }
            differ += 1
        }
        if differ == 2, second == first + 1, da[first] == db[second], da[second] == db[first] { return 2 }
        if differ == 1 { return 3 }
        if a.month == b.month, a.day == b.day, let ya = a.year, let yb = b.year, abs(ya - yb) == 1 || abs(ya - yb) == 10 { return 4 }
        if differ == 2 { return 6 }
        if let ya = a.year, let yb = b.year, abs(ya - yb) >= generationYears { return 8 }
        return 7
    }

    /// Dates of birth at least this many years apart are a generation apart (`MatchField.dateOfBirth`
    /// level 8, learned apart from "different": a parent and a child of one name at one home
    /// differ so, where a mistyped date rarely does).
    static let generationYears = 12

    /// Two different streets compared by their words (`AddressText.Line.streetWords`): each word
    /// of the shorter street finds its best Jaro-Winkler partner in the other; the mean decides the level.
    static func streetLevel(_ ta: [[UInt8]], _ tb: [[UInt8]]) -> UInt8 {
        let (short, long) = ta.count <= tb.count ? (ta, tb) : (tb, ta)
        guard !short.isEmpty else { return 4 }
        var sum = 0.0
        for word in short {
            var best = 0.0
            for other in long {
                best = max(best, NameText.jaroWinkler(word, other))
                if best == 1 { break } // nothing beats the same word
            }
            sum += best
        }
        let similarity = sum / Double(long.count)
        if similarity >= 0.9 { return 2 }
        if similarity >= 0.7 { return 3 }
        return 4
    }

    static func oneApart(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var differ = 0
        for i in a.indices where a[i] != b[i] {
            differ += 1
            if differ > 1 { return false }
        }
        return differ == 1
    }
}

/// One field's part in a match weight: its level and the weight it added (log2 of m/u,
/// term-frequency adjusted for an exact name).
public struct FieldContribution: Sendable, Codable, Equatable {
    public var field: MatchField
    public var level: String
    public var weight: Double
    /// The m and u probabilities behind the weight (u the value's frequency when adjusted).
    public var m: Double
    public var u: Double
    public var termFrequencyAdjusted: Bool
}

/// A pair scored by the model: the total match weight, its probability and every field's part.
public struct MatchEvidence: Sendable, Codable, Equatable, CustomStringConvertible {
    public var priorWeight: Double
    public var fields: [FieldContribution]
    public var matchWeight: Double
    /// The match probability: 0 when the pair has no identity evidence beyond the home (`ruledOut`).
    public var probability: Double
    /// Why the pair cannot be a link whatever its weight (`ComparisonVector.hasIdentityEvidence`), else nil.
    public var ruledOut: String?

    public var description: String {
        var parts = [
            "probability \(FixedText.text(probability, digits: 4)) (match weight \(FixedText.text(matchWeight, digits: 1, sign: true)): "
                + "prior \(FixedText.text(priorWeight, digits: 1, sign: true))"
        ]
        for f in fields where f.level != "unknown" {
            parts.append(
                "\(f.field.label) \(f.level)\(f.termFrequencyAdjusted ? " (term frequency)" : "") \(FixedText.text(f.weight, digits: 1, sign: true))")
        }
        let text = parts.joined(separator: "; ") + ")"
        return ruledOut.map { "not a link: \($0); \(text)" } ?? text
    }
}

/// A Fellegi-Sunter person-matching model learned from the records themselves: for every field
/// and comparison level, m (how often a true pair shows it) and u (how often two unrelated
/// records do); a pair's match weight is the prior's log-odds plus Σ log2(m/u), and its match
/// probability 2^w / (1 + 2^w). Exact given and family names are term-frequency adjusted: u is
/// the name's frequency in the records, so "Smith" counts less than "Okafor".
public struct MatchModel: Sendable, Codable, Equatable {
    public static let formatVersion = 3
    public var version = MatchModel.formatVersion
    /// m and u per field (keyed by `MatchField.rawValue`), index = level (level 0 unused).
    public var m: [String: [Double]]
    public var u: [String: [Double]]
    /// The prior probability that two random records are the same person.
    public var lambda: Double
    /// Name frequencies (share of records) for the term-frequency adjustment.
    public var givenFrequency: [String: Double]
    public var familyFrequency: [String: Double]
    /// Records the model was learned from.
    public var records: Int
    /// Blocked pairs EM ran over, and its iterations.
    public var trainingPairs: Int
    public var iterations: Int
    /// Links are made at or above this match probability.
    public var threshold: Double
    /// The expected share of false links among the training pairs linked at `threshold`
    /// (mean of 1 − probability over them): the model's own estimate, not a measurement.
    public var expectedFalseLinkRate: Double

    /// The match probability for a threshold chosen for precision.
    public static let defaultThreshold = 0.99

    public func evidence(_ a: PersonFeatures, _ b: PersonFeatures) -> MatchEvidence {
        evidence(ComparisonVector.compare(a, b), a, b)
    }

    /// For one pair; to score many, use `scorer()` once.
    public func probability(_ a: PersonFeatures, _ b: PersonFeatures) -> Double { scorer().probability(a, b) }

    public func matches(_ a: PersonFeatures, _ b: PersonFeatures) -> Bool { probability(a, b) >= threshold }

    /// The model's weights in arrays, for scoring many pairs.
    public func scorer() -> MatchScorer { MatchScorer(self) }

    static func probability(weight: Double) -> Double { 1 / (1 + exp2(-weight)) }

    var priorWeight: Double { log2(lambda / (1 - lambda)) }

    public func evidence(_ vector: ComparisonVector, _ a: PersonFeatures, _ b: PersonFeatures) -> MatchEvidence {
        var fields: [FieldContribution] = []
        var total = priorWeight
        for (i, field) in MatchField.all.enumerated() {
            let level = Int(vector.level(i))
            if level == 0 {
                fields.append(FieldContribution(field: field, level: "unknown", weight: 0, m: 1, u: 1, termFrequencyAdjusted: false))
                continue
            }
            let c = contribution(field, level, a, b)
            total += c.weight
            fields.append(c)
        }
        let ruledOut = vector.identityProblem
        return MatchEvidence(
            priorWeight: priorWeight, fields: fields, matchWeight: total,
            probability: ruledOut == nil ? Self.probability(weight: total) : 0, ruledOut: ruledOut)
    }

    func contribution(_ field: MatchField, _ level: Int, _ a: PersonFeatures, _ b: PersonFeatures) -> FieldContribution {
        let mValue = m[field.rawValue]?[level] ?? 0.5, uValue = u[field.rawValue]?[level] ?? 0.5
        var label = field.levels[level]
        // Term frequency: an exact name is as unlikely to agree by chance as the name is rare.
        if level == 1, field == .given || field == .family {
            let name = field == .given ? a.given : a.family
            if let tf = (field == .given ? givenFrequency : familyFrequency)[name] {
                label += " (\(name))"
                return FieldContribution(
                    field: field, level: label, weight: log2(mValue / max(tf, uValue / 64)), m: mValue, u: tf,
                    termFrequencyAdjusted: true)
            }
        }
        return FieldContribution(field: field, level: label, weight: log2(mValue / uValue), m: mValue, u: uValue, termFrequencyAdjusted: false)
    }
}

/// A `MatchModel`'s weights laid out for speed: log2(m/u) per field and level, the exact-name
/// m for the term-frequency adjustment. Same results as the model's `evidence`.
public struct MatchScorer: Sendable {
    let weights: [[Double]]
    let exactGivenM: Double, exactFamilyM: Double, exactGivenFloor: Double, exactFamilyFloor: Double
    let givenFrequency: [String: Double], familyFrequency: [String: Double]
    let prior: Double
    public let threshold: Double

    init(_ model: MatchModel) {
        weights = MatchField.all.map { field in
            let m = model.m[field.rawValue] ?? [], u = model.u[field.rawValue] ?? []
            return field.levels.indices.map { level in level == 0 || level >= m.count || level >= u.count ? 0 : log2(m[level] / u[level]) }
        }
        exactGivenM = model.m[MatchField.given.rawValue]?[1] ?? 0.5
        exactFamilyM = model.m[MatchField.family.rawValue]?[1] ?? 0.5
        exactGivenFloor = (model.u[MatchField.given.rawValue]?[1] ?? 0.5) / 64
        exactFamilyFloor = (model.u[MatchField.family.rawValue]?[1] ?? 0.5) / 64
        givenFrequency = model.givenFrequency
        familyFrequency = model.familyFrequency
        prior = model.priorWeight
        threshold = model.threshold
    }

    public func weight(_ a: PersonFeatures, _ b: PersonFeatures) -> Double { weight(ComparisonVector.compare(a, b), a) }

    /// The weight of a comparison already made (`a` is the record whose names the term
    /// frequencies are read for).
    public func weight(_ vector: ComparisonVector, _ a: PersonFeatures) -> Double {
        var total = prior
        for f in 0..<ComparisonVector.fieldCount {
            let level = Int(vector.level(f))
            if level == 0 { continue }
            if level == 1, f == 0, let tf = givenFrequency[a.given] {
                total += log2(exactGivenM / max(tf, exactGivenFloor))
                continue
            }
            if level == 1, f == 1, let tf = familyFrequency[a.family] {
                total += log2(exactFamilyM / max(tf, exactFamilyFloor))
                continue
            }
            total += weights[f][level]
        }
        return total
    }

    /// The match probability of a comparison already made: 0 without identity evidence beyond
    /// the home (`ComparisonVector.hasIdentityEvidence`), whatever the address and surname weigh.
    public func probability(_ vector: ComparisonVector, _ a: PersonFeatures) -> Double {
        vector.hasIdentityEvidence ? MatchModel.probability(weight: weight(vector, a)) : 0
    }

    public func probability(_ a: PersonFeatures, _ b: PersonFeatures) -> Double { probability(ComparisonVector.compare(a, b), a) }

    public func matches(_ a: PersonFeatures, _ b: PersonFeatures) -> Bool { probability(a, b) >= threshold }
}

/// Learns a `MatchModel` from unlabelled records: u from random pairs, m and the prior by
/// expectation maximisation over the blocked pairs (u held fixed, as Splink does), name
/// frequencies for the term-frequency adjustment. The records are put in a canonical order
/// first, so the same records give the same model whatever order they were added in.
public enum MatchModelTrainer {
    public struct Options: Sendable {
        /// Random pairs for u (at most: 4 per record, at least 20,000 when there are as many pairs).
        public var randomPairs = 1_000_000
        public var maxIterations = 50
        public var threshold = MatchModel.defaultThreshold
        public init() {}
    }

    /// A canonical sort key of a record (every field that the model reads).
    static func canonicalKey(_ p: PersonFeatures) -> String {
        "\(p.given)|\(p.family)|\(p.dateOfBirth?.description ?? "")|\(p.line?.key ?? "")|\(p.postcode)|\(p.town)"
    }

    /// `blocked` are candidate pairs (indices into `records`) as blocking produced them; their
    /// order does not matter.
    public static func train(records unordered: [PersonFeatures], blockedPairs: [(Int, Int)]? = nil, options: Options = Options()) -> MatchModel {
        learn(records: unordered, blockedPairs: blockedPairs, options: options).model
    }

    /// A model learned from `records` and the blocked pairs it links (indices into `records`,
    /// the smaller first): learning compares every blocked pair once, and the links come from
    /// those same comparisons, not from comparing every pair again.
    public static func trainAndLink(
        records: [PersonFeatures], blockedPairs: [(Int, Int)]? = nil,
        options: Options = Options()
    ) -> (model: MatchModel, links: [(Int, Int)]) {
        learn(records: records, blockedPairs: blockedPairs, options: options)
    }

    static func learn(records unordered: [PersonFeatures], blockedPairs: [(Int, Int)]?, options: Options) -> (model: MatchModel, links: [(Int, Int)])
    {
        // Canonical order: ties broken by the full key, so input order cannot leak in.
        let keys = unordered.map(canonicalKey)
        let order = unordered.indices.sorted { keys[$0] < keys[$1] }
        var position = [Int](repeating: 0, count: unordered.count)
        for (p, i) in order.enumerated() { position[i] = p }
        let records = order.map { unordered[$0] }
        let n = records.count
        let fields = MatchField.all

        // Name frequencies.
        var givenCount: [String: Int] = [:], familyCount: [String: Int] = [:]
        for r in records {
            if !r.given.isEmpty { givenCount[r.given, default: 0] += 1 }
            if !r.family.isEmpty { familyCount[r.family, default: 0] += 1 }
        }
        let givenTotal = Double(max(1, givenCount.values.reduce(0, +))), familyTotal = Double(max(1, familyCount.values.reduce(0, +)))

        // u from random pairs (a fixed-seed generator over the canonical order).
        var uCounts = fields.map { [Double](repeating: 1, count: $0.levels.count) } // add-one smoothing
        var rng = SplitMix(seed: 0x5EED_F5E1)
        let samples = n < 2 ? 0 : min(options.randomPairs, n * (n - 1) / 2, max(20_000, 4 * n))
        for _ in 0..<samples {
            let i = Int(rng.next() % UInt64(n))
            var j = Int(rng.next() % UInt64(n - 1))
            if j >= i { j += 1 }
            let v = ComparisonVector.compare(records[i], records[j])
            if v.isEvidentlyOnePerson { continue }
            for f in fields.indices where v.level(f) != 0 { uCounts[f][Int(v.level(f))] += 1 }
        }
        let u = uCounts.map { counts -> [Double] in
            let total = counts.dropFirst().reduce(0, +)
            return counts.enumerated().map { $0.offset == 0 ? 1 : $0.element / total }
        }

        // Blocked pairs, as comparison patterns with counts (EM runs over distinct patterns).
        // Positions in the canonical order, packed smaller first (sorted as numbers = by the first, then the second).
        var pairs: [Int64]
        if let blockedPairs {
            pairs = blockedPairs.map { pair in
                let a = position[pair.0], b = position[pair.1]
                return Int64(min(a, b)) << 32 | Int64(max(a, b))
            }
        } else {
            pairs = Self.blockedPairs(records).map { Int64($0.0) << 32 | Int64($0.1) }
        }
        pairs.sort()
        // Each distinct pair compared once: its comparison serves the patterns, the false-link
        // estimate and the links.
        var compared: [(pair: (Int, Int), vector: ComparisonVector)] = []
        compared.reserveCapacity(pairs.count)
        var patternCounts: [ComparisonVector: Double] = [:]
        var previous: Int64 = -1
        for packed in pairs where packed != previous {
            previous = packed
            let pair = (Int(packed >> 32), Int(packed & 0xFFFF_FFFF))
            if pair.0 == pair.1 { continue }
            let vector = ComparisonVector.compare(records[pair.0], records[pair.1])
            compared.append((pair, vector))
            patternCounts[vector, default: 0] += 1
        }
        let patterns = patternCounts.sorted { $0.key.packed < $1.key.packed } // the levels lexicographically
        let totalPairs = patterns.reduce(0) { $0 + $1.value }

        // EM in two sessions, as Splink trains: over the pairs with the same date of birth
        // (learns the names' and the address's m), and over the pairs with alike given and family
        // names (learns the date of birth's and the address's m). Each session leaves out the
        // fields it selected on. Over all blocked pairs at once, EM would learn "the same
        // household" (same surname and address, different given name and date of birth) as its
        // match class; within these sessions household members rarely meet.
        let dob = fields.firstIndex(of: .dateOfBirth)!, given = fields.firstIndex(of: .given)!, family = fields.firstIndex(of: .family)!
        let sessions: [(select: (ComparisonVector) -> Bool, leaveOut: Set<Int>)] = [
            ({ $0.level(dob) == 1 }, [dob]),
            ({ (1...3).contains($0.level(given)) && (1...3).contains($0.level(family)) }, [given, family]),
        ]
        var mSum = fields.map { [Double](repeating: 0, count: $0.levels.count) }
        var mSessions = [Int](repeating: 0, count: fields.count)
        var iterations = 0
        for session in sessions {
            let selected = patterns.filter { session.select($0.key) }
            guard selected.reduce(0, { $0 + $1.value }) >= 10 else { continue }
            let (m, _, sessionIterations) = expectationMaximisation(selected, u: u, leaveOut: session.leaveOut, maxIterations: options.maxIterations)
            iterations += sessionIterations
            for f in fields.indices where !session.leaveOut.contains(f) {
                for l in m[f].indices { mSum[f][l] += m[f][l] }
                mSessions[f] += 1
            }
        }
        let m = fields.indices.map { f -> [Double] in
            mSessions[f] == 0 ? Self.initialM(fields[f]) : mSum[f].map { $0 / Double(mSessions[f]) }
        }
        // The prior: EM over every blocked pair with m and u held, estimating only λ.
        let (_, lambdaBlocked, priorIterations) = expectationMaximisation(
            patterns, u: u, leaveOut: [], maxIterations: options.maxIterations, fixedM: m)
        iterations += priorIterations
        // Over all pairs of records: the expected true pairs among the blocked ones, over every pair.
        let allPairs = Double(max(1, n * (n - 1) / 2))
        let lambda = min(max(lambdaBlocked * totalPairs / allPairs, 1e-12), 0.5)

        var model = MatchModel(
            m: Dictionary(uniqueKeysWithValues: fields.enumerated().map { ($0.element.rawValue, m[$0.offset]) }),
            u: Dictionary(uniqueKeysWithValues: fields.enumerated().map { ($0.element.rawValue, u[$0.offset]) }),
            lambda: lambda,
            givenFrequency: givenCount.mapValues { Double($0) / givenTotal },
            familyFrequency: familyCount.mapValues { Double($0) / familyTotal },
            records: n, trainingPairs: Int(totalPairs), iterations: iterations,
            threshold: options.threshold, expectedFalseLinkRate: 0)
        // The model's own estimate of the false-link share at its threshold, over the blocked pairs.
        let scorer = model.scorer()
        var falseLinks = 0.0
        var links: [(Int, Int)] = []
        for (pair, vector) in compared {
            let p = scorer.probability(vector, records[pair.0])
            guard p >= options.threshold else { continue }
            falseLinks += 1 - p
            let a = order[pair.0], b = order[pair.1]
            links.append((min(a, b), max(a, b)))
        }
        model.expectedFalseLinkRate = links.isEmpty ? 0 : falseLinks / Double(links.count)
        return (model, links)
    }

    static func initialM(_ field: MatchField) -> [Double] {
        let k = field.levels.count
        return (0..<k).map { level in level == 0 ? 1 : level == 1 ? 0.8 : 0.2 / Double(k - 2) }
    }

    /// EM over comparison patterns with u held: the m of every field not left out (unless
    /// `fixedM` holds them too) and the share of matches. Returns m, λ and the iterations run.
    static func expectationMaximisation(
        _ patterns: [(key: ComparisonVector, value: Double)], u: [[Double]], leaveOut: Set<Int>,
        maxIterations: Int, fixedM: [[Double]]? = nil
    ) -> ([[Double]], Double, Int) {
        let fields = MatchField.all
        var m = fixedM ?? fields.map(initialM)
        var lambda = 0.1
        let total = patterns.reduce(0) { $0 + $1.value }
        var iterations = 0
        let used = fields.indices.map { !leaveOut.contains($0) }
        // The logarithms each pattern adds, once per iteration rather than once per pattern.
        let logU = u.map { $0.map(log) }
        for _ in 0..<maxIterations {
            iterations += 1
            var mCounts = fields.map { [Double](repeating: 0.01, count: $0.levels.count) }
            var matched = 0.0
            let logM = m.map { $0.map(log) }
            let logLambda = log(lambda), logNotLambda = log(1 - lambda)
            for (pattern, count) in patterns {
                var lm = logLambda, lu = logNotLambda
                for f in fields.indices where pattern.level(f) != 0 && used[f] {
                    let l = Int(pattern.level(f))
                    lm += logM[f][l]
                    lu += logU[f][l]
                }
                let p = 1 / (1 + exp(lu - lm))
                matched += p * count
                for f in fields.indices where pattern.level(f) != 0 { mCounts[f][Int(pattern.level(f))] += p * count }
            }
            let newLambda = min(max(matched / max(1, total), 1e-9), 1 - 1e-9)
            var change = abs(newLambda - lambda)
            if fixedM == nil {
                for f in fields.indices where !leaveOut.contains(f) {
                    let sum = mCounts[f].dropFirst().reduce(0, +)
                    for l in 1..<mCounts[f].count {
                        let value = mCounts[f][l] / sum
                        change = max(change, abs(value - m[f][l]))
                        m[f][l] = value
                    }
                }
            }
            lambda = newLambda
            if change < 1e-6 { break }
        }
        return (m, lambda, iterations)
    }

    /// Candidate pairs from the records' blocking keys (as research's index blocks them), plus
    /// given and family name phonetic keys without the year, so a mistyped year still meets.
    /// Blocks of more than 400 members are left out. The keys are grouped by their 64-bit hashes
    /// (`extendedBlockingKeyHashes`, sorted with the record's index), not as strings in a
    /// dictionary.
    public static func blockedPairs(_ records: [PersonFeatures]) -> [(Int, Int)] {
        // (key hash, record) sorted: each block is a run of one hash, its members in record order.
        var keyed: [(hash: Int64, record: Int32)] = []
        keyed.reserveCapacity(records.count * 10)
        var hashes: [Int64] = []
        for (i, r) in records.enumerated() {
            hashes.removeAll(keepingCapacity: true)
            extendedBlockingKeyHashes(r, into: &hashes)
            for h in hashes { keyed.append((h, Int32(i))) }
        }
        keyed.sort { $0.hash != $1.hash ? $0.hash < $1.hash : $0.record < $1.record }
        // Every block's pairs, then sorted and each kept once (cheaper than a set of them).
        var pairs: [Int64] = []
        var start = 0
        while start < keyed.count {
            var end = start + 1
            while end < keyed.count, keyed[end].hash == keyed[start].hash { end += 1 }
            if end - start > 1, end - start <= 400 {
                for x in start..<end {
                    for y in (x + 1)..<end {
                        let a = keyed[x].record, b = keyed[y].record
                        if a == b { continue } // a record with two equal keys (given name = family name)
                        pairs.append(Int64(a) << 32 | Int64(b))
                    }
                }
            }
            start = end
        }
        pairs.sort()
        var distinct: [(Int, Int)] = []
        distinct.reserveCapacity(pairs.count)
        var previous: Int64 = -1
        for pair in pairs where pair != previous {
            distinct.append((Int(pair >> 32), Int(pair & 0xFFFF_FFFF)))
            previous = pair
        }
        return distinct
    }

    /// `blockingKeys` and keys that meet mistyped years and addresses: phonetic given and family
    /// name together, and house number with street.
    public static func extendedBlockingKeys(_ p: PersonFeatures) -> [String] {
        var keys = p.blockingKeys
        let sf = NameText.soundex(p.family), sg = NameText.soundex(p.given)
        if !sf.isEmpty, !sg.isEmpty {
            keys.append("g\(sg)\(sf)")
            keys.append("g\(sf)\(sg)")
        }
        if let line = p.line, !line.number.isEmpty, !line.street.isEmpty { keys.append("s\(line.number)|\(line.street)") }
        if let dob = p.dateOfBirth, dob.isComplete, !sf.isEmpty { keys.append("m\(dob.month ?? 0)-\(dob.day ?? 0)\(sf)") }
        return keys
    }

    /// `extendedBlockingKeys(p).map(HistoryIndex.keyHash)`, without building the key strings.
    static func extendedBlockingKeyHashes(_ p: PersonFeatures, into hashes: inout [Int64]) {
        p.blockingKeyHashes(into: &hashes)
        let sf = p.familySoundex, sg = p.givenSoundex
        func key(_ tag: Character, _ body: (inout KeyHasher) -> Void) {
            var h = KeyHasher()
            h.byte(tag.asciiValue!)
            body(&h)
            hashes.append(h.value)
        }
        if sf != 0, sg != 0 {
            key("g") {
                $0.soundex(sg)
                $0.soundex(sf)
            }
            key("g") {
                $0.soundex(sf)
                $0.soundex(sg)
            }
        }
        if let line = p.line, !line.number.isEmpty, !line.street.isEmpty {
            key("s") {
                $0.text(line.number)
                $0.byte(UInt8(ascii: "|"))
                $0.text(line.street)
            }
        }
        if let dob = p.dateOfBirth, dob.isComplete, sf != 0 {
            key("m") {
                $0.decimal(dob.month ?? 0)
                $0.byte(UInt8(ascii: "-"))
                $0.decimal(dob.day ?? 0)
                $0.soundex(sf)
            }
        }
    }
}

/// SplitMix64: a small deterministic generator for sampling.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
