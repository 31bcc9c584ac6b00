import Foundation

/// A person as the matcher sees them: normalised names, date of birth and address, computed once.
public struct PersonFeatures: Sendable, Hashable {
    public var given: String { didSet { prepareGiven() } }
    public var family: String { didSet { prepareFamily() } }
    public var dateOfBirth: PartialDate? { didSet { dateDigits = dateOfBirth.flatMap(ComparisonVector.digits) } }
    public var line: AddressText.Line?
    /// Postcode without spaces, upper case; empty when unknown.
    public var postcode: String { didSet { preparePostcode() } }
    public var town: String { didSet { townBytes = Array(town.utf8) } }

    // Forms the comparisons read, made once per record rather than once per pair (learning
    // compares tens of thousands of pairs): kept in step with the fields above.
    private(set) var givenBytes: [UInt8] = []
    private(set) var familyBytes: [UInt8] = []
    private(set) var familyParts: [String] = []
    /// The given name and the full names it may stand for (`Nicknames.forms`).
    private(set) var givenForms: [String] = []
    /// A double or hyphenated given name (a space or a hyphen in it).
    private(set) var givenIsDouble = false
    /// `NameText.soundexCode` of the names.
    private(set) var givenSoundex: UInt32 = 0
    private(set) var familySoundex: UInt32 = 0
    /// YYYYMMDD as digits (`ComparisonVector.digits`), nil for a partial or unknown date.
    private(set) var dateDigits: [UInt8]?
    private(set) var postcodeBytes: [UInt8] = []
    /// `AddressText.postcodeSector(postcode)`.
    private(set) var postcodeSector = ""
    private(set) var townBytes: [UInt8] = []

    private mutating func prepareGiven() {
        givenBytes = Array(given.utf8)
        givenForms = Nicknames.forms(of: given)
        givenIsDouble = givenBytes.contains { $0 == 32 || $0 == 45 }
        givenSoundex = NameText.soundexCode(given)
    }

    private mutating func prepareFamily() {
        familyBytes = Array(family.utf8)
        familyParts = NameText.parts(family)
        familySoundex = NameText.soundexCode(family)
    }

    private mutating func preparePostcode() {
        postcodeBytes = Array(postcode.utf8)
        postcodeSector = AddressText.postcodeSector(postcode)
    }

    public init(
        givenName: String, familyName: String, dateOfBirth: String?, addressLines: [String] = [], town: String? = nil, postcode: String? = nil
    ) {
        self.init(
            given: NameText.normalise(givenName), family: NameText.normalise(familyName), dateOfBirth: PartialDate(dateOfBirth),
            addressLines: addressLines, town: town, postcode: postcode)
    }

    public init(given: String, family: String, dateOfBirth: PartialDate?, addressLines: [String] = [], town: String? = nil, postcode: String? = nil) {
        let nonEmpty = addressLines.filter { line in
            // Fast path: any ASCII byte other than space or tab means the line is not blank.
            line.utf8.contains { $0 < 128 && $0 != 32 && $0 != 9 } || !line.trimmingCharacters(in: .whitespaces).isEmpty
        }
        self.init(
            given: given, family: family, dateOfBirth: dateOfBirth, line: nonEmpty.isEmpty ? nil : AddressText.parse(nonEmpty),
            town: NameText.normalise(town ?? ""), postcodeKey: AddressText.postcodeKey(postcode))
    }

    /// With an address already parsed (the people of one incident share its address).
    public init(given: String, family: String, dateOfBirth: PartialDate?, line: AddressText.Line?, town: String, postcodeKey: String) {
        self.given = given
        self.family = family
        self.dateOfBirth = dateOfBirth
        self.line = line
        self.postcode = postcodeKey
        self.town = town
        prepareGiven()
        prepareFamily()
        dateDigits = dateOfBirth.flatMap(ComparisonVector.digits)
        preparePostcode()
        townBytes = Array(town.utf8)
    }

    /// The same place with another person's names and date of birth.
    public func with(givenName: String, familyName: String, dateOfBirth: String?) -> PersonFeatures {
        PersonFeatures(
            given: NameText.normalise(givenName), family: NameText.normalise(familyName), dateOfBirth: PartialDate(dateOfBirth),
            line: line, town: town, postcodeKey: postcode)
    }

    /// The dwelling key (postcode, flat, number, first street word), when an address is known.
    public var dwellingKey: String? {
        guard let line, !(line.number.isEmpty && line.street.isEmpty) else { return nil }
        return AddressText.dwellingKey(line, postcode: postcode)
    }

    /// Blocking keys: two records are compared only when they share one. Phonetic family name
    /// (and phonetic canonical given name, so swapped names meet) with birth year; the full date
    /// of birth; postcode with phonetic family name; the dwelling.
    public var blockingKeys: [String] {
        var keys: [String] = []
        let sf = NameText.soundex(family), sg = NameText.soundex(Nicknames.canonical(given))
        let year = dateOfBirth?.year.map(String.init)
        if let year {
            if !sf.isEmpty { keys.append("n\(sf)\(year)") }
            if !sg.isEmpty, sg != sf { keys.append("n\(sg)\(year)") }
        } else if !postcode.isEmpty {
            if !sf.isEmpty { keys.append("n\(sf)\(postcode)") }
            if !sg.isEmpty, sg != sf { keys.append("n\(sg)\(postcode)") }
        }
        if let dob = dateOfBirth, dob.isComplete { keys.append("d\(dob)") }
        if !postcode.isEmpty, !sf.isEmpty { keys.append("p\(postcode)\(sf)") }
        if !postcode.isEmpty, !sg.isEmpty, sg != sf { keys.append("p\(postcode)\(sg)") }
        if let dwelling = dwellingKey, !sf.isEmpty || !sg.isEmpty { keys.append("a\(dwelling)\(sf.prefix(1))") }
        return keys
    }

    /// `blockingKeys.map(HistoryIndex.keyHash)`, computed without building the key strings.
    public func blockingKeyHashes(into hashes: inout [Int64]) {
        Self.blockingKeyHashes(given: given, family: family, dateOfBirth: dateOfBirth, line: line, postcode: postcode, into: &hashes)
    }

    /// The hashes of the blocking keys of a person with these normalised parts (see `blockingKeys`).
    static func blockingKeyHashes(
        given: String, family: String, dateOfBirth: PartialDate?, line: AddressText.Line?, postcode: String,
        into hashes: inout [Int64]
    ) {
        let sf = NameText.soundexCode(family), sg = NameText.soundexCode(Nicknames.canonical(given))
        let hasPostcode = !postcode.isEmpty
        func key(_ tag: Character, _ body: (inout KeyHasher) -> Void) {
            var h = KeyHasher()
            h.byte(tag.asciiValue!)
            body(&h)
            hashes.append(h.value)
        }
        if let year = dateOfBirth?.year {
            if sf != 0 {
                key("n") {
                    $0.soundex(sf)
                    $0.decimal(year)
                }
            }
            if sg != 0, sg != sf {
                key("n") {
                    $0.soundex(sg)
                    $0.decimal(year)
                }
            }
        } else if hasPostcode {
            if sf != 0 {
                key("n") {
                    $0.soundex(sf)
                    $0.text(postcode)
                }
            }
            if sg != 0, sg != sf {
                key("n") {
                    $0.soundex(sg)
                    $0.text(postcode)
                }
            }
        }
        if let dob = dateOfBirth, dob.isComplete, let year = dob.year, let month = dob.month, let day = dob.day {
            key("d") {
                $0.decimal(year, width: 4)
                $0.byte(45)
                $0.decimal(month, width: 2)
                $0.byte(45)
                $0.decimal(day, width: 2)
            }
        }
        if hasPostcode, sf != 0 {
            key("p") {
                $0.text(postcode)
                $0.soundex(sf)
            }
        }
        if hasPostcode, sg != 0, sg != sf {
            key("p") {
                $0.text(postcode)
                $0.soundex(sg)
            }
        }
        if let line, !(line.number.isEmpty && line.street.isEmpty), sf != 0 || sg != 0 {
            key("a") { h in
                let bar = UInt8(ascii: "|")
                h.text(postcode)
                h.byte(bar)
                h.text(line.flat)
                h.byte(bar)
                h.text(line.number)
                h.byte(bar)
                // The first word of the street, as `split(separator: " ").first`.
                var started = false
                for b in line.street.utf8 {
                    if b == 32 { if started { break } else { continue } }
                    started = true
                    h.byte(b)
                }
                if sf != 0 { h.byte(UInt8(truncatingIfNeeded: sf >> 24)) }
            }
        }
    }
}

/// How well two person records agree, with the reasons.
public struct PersonMatch: Sendable, Equatable {
    /// 0...1.
    public var score: Double
    public var reasons: [String]
}

/// Compares person records field by field and combines the agreements with weights.
///
/// Names tolerate typos (Jaro-Winkler), nicknames (Bob/Robert), hyphenated or double surnames
/// (one part is enough) and given/family swaps; dates of birth tolerate transposed digits,
/// day/month swaps, one wrong digit and partial dates; addresses compare flat, house number,
/// street and postcode after normalisation. A field missing on either side counts half,
/// as "unknown".
public struct PersonMatcher: Sendable {
    public struct Weights: Sendable, Codable, Equatable {
        public var given: Double = 0.2
        public var family: Double = 0.25
        public var dateOfBirth: Double = 0.3
        public var address: Double = 0.15
        public var postcode: Double = 0.1
        public init() {}
    }

    public var weights: Weights
    /// Score at or above which two records are the same person.
    public var threshold: Double

    public init(weights: Weights = Weights(), threshold: Double = 0.55) {
        self.weights = weights
        self.threshold = threshold
    }

    /// Jaro-Winkler rescaled so that unrelated names (about 0.7 and below) score 0.
    static func rescale(_ jw: Double) -> Double { max(0, (jw - 0.72) / 0.28) }

    static func givenScore(_ a: PersonFeatures, _ b: PersonFeatures) -> (Double, String) {
        if a.given.isEmpty || b.given.isEmpty { return (-1, "") }
        if a.given == b.given { return (1, "same given name") }
        if Nicknames.equivalent(a.given, b.given) { return (0.95, "given name \(a.given)/\(b.given) (nickname)") }
        if a.given.count == 1 || b.given.count == 1, a.given.first == b.given.first { return (0.6, "given name initial") }
        let ja = NameText.jaroWinkler(a.givenBytes, b.givenBytes)
        // First names as parts of longer given names ("mary jane" / "mary").
        let pa = NameText.parts(a.given), pb = NameText.parts(b.given)
        if pa.count > 1 || pb.count > 1, pa.contains(where: { pb.contains($0) }) {
            return (0.85, "given names share \(pa.first { pb.contains($0) } ?? "")")
        }
        return (rescale(ja), "given name \(a.given)/\(b.given) (\(FixedText.text(ja, digits: 2)))")
    }

    static func familyScore(_ a: PersonFeatures, _ b: PersonFeatures) -> (Double, String) {
        if a.family.isEmpty || b.family.isEmpty { return (-1, "") }
        if a.family == b.family { return (1, "same family name") }
        if a.familyParts.count > 1 || b.familyParts.count > 1 {
            if let part = a.familyParts.first(where: { b.familyParts.contains($0) }) {
                return (0.9, "family name part \(part) (hyphenated/double surname)")
            }
        }
        let jw = NameText.jaroWinkler(a.familyBytes, b.familyBytes)
        return (rescale(jw), "family name \(a.family)/\(b.family) (\(FixedText.text(jw, digits: 2)))")
    }

    public func compare(_ a: PersonFeatures, _ b: PersonFeatures) -> PersonMatch {
        var total = 0.0, weightSum = 0.0
        var reasons: [String] = []
        func add(_ score: Double, _ weight: Double, _ reason: String) {
            if score < 0 { // unknown on one side: half weight at a neutral half score
                total += 0.25 * weight
                weightSum += 0.5 * weight
            } else {
                total += score * weight
                weightSum += weight
                if score > 0, !reason.isEmpty { reasons.append(reason) }
            }
        }
        var (g, gReason) = Self.givenScore(a, b)
        var (f, fReason) = Self.familyScore(a, b)
        // Swapped given and family names.
        if g >= 0, f >= 0, g + f < 1.6 {
            let swapG = Self.rescale(NameText.jaroWinkler(a.givenBytes, b.familyBytes))
            let swapF = Self.rescale(NameText.jaroWinkler(a.familyBytes, b.givenBytes))
            if swapG + swapF > g + f + 0.3 {
                g = swapG
                f = swapF
                gReason = "given and family names swapped (\(a.given) \(a.family) / \(b.given) \(b.family))"
                fReason = ""
            }
        }
        add(g, weights.given, gReason)
        add(f, weights.family, fReason)
        if let da = a.dateOfBirth, let db = b.dateOfBirth {
            let (score, reason) = PartialDate.compare(da, db)
            add(score, weights.dateOfBirth, reason)
        } else {
            add(-1, weights.dateOfBirth, "")
        }
        if let la = a.line, let lb = b.line, !(la.street.isEmpty && la.number.isEmpty), !(lb.street.isEmpty && lb.number.isEmpty) {
            let number: Double = la.number == lb.number ? 1 : 0
            let street = la.street == lb.street ? 1 : Self.rescale(NameText.jaroWinkler(la.street, lb.street))
            let flat: Double = la.flat == lb.flat ? 1 : (la.flat.isEmpty || lb.flat.isEmpty ? 0.5 : 0)
            let score = 0.4 * number + 0.45 * street + 0.15 * flat
            let reason =
                score >= 0.99
                ? (la.flat.isEmpty ? "same address" : "same flat and address")
                : "address \(la.number) \(la.street)/\(lb.number) \(lb.street) (\(FixedText.text(score, digits: 2)))"
            add(score, weights.address, reason)
        } else {
            add(-1, weights.address, "")
        }
        if !a.postcode.isEmpty, !b.postcode.isEmpty {
            if a.postcode == b.postcode {
                add(1, weights.postcode, "same postcode")
            } else if AddressText.postcodeSector(a.postcode) == AddressText.postcodeSector(b.postcode) {
                add(0.5, weights.postcode, "same postcode sector")
            } else if !a.town.isEmpty, a.town == b.town {
                add(0.4, weights.postcode, "same town")
            } else {
                add(0, weights.postcode, "")
            }
        } else if !a.town.isEmpty, !b.town.isEmpty {
            add(a.town == b.town ? 0.8 : 0, weights.postcode, a.town == b.town ? "same town" : "")
        } else {
            add(-1, weights.postcode, "")
        }
        var score = weightSum > 0 ? total / weightSum : 0
        // Different given names (siblings, twins) weigh more than their share.
        if g >= 0, g < 0.2, gReason.hasPrefix("given name"), NameText.jaroWinkler(a.givenBytes, b.givenBytes) < 0.6 {
            score *= 0.8
            reasons.append("different given names")
        }
        // The learned model's identity rules where both dates of birth are known: a pair that
        // nothing but its home and family name joins (a household's members born apart or close
        // together), or its names alone at another home, is never a link. The rules that turn on
        // a missing date of birth are left to the model: research identifies a child recorded
        // without one (`Ollie`, aged 7, for an earlier `Oliver` at the address) with this matcher.
        let vector = ComparisonVector.compare(a, b)
        if vector[.dateOfBirth] != 0, let problem = vector.identityProblem {
            return PersonMatch(score: min(score, 0), reasons: ["not a link: \(problem)"] + reasons)
        }
        return PersonMatch(score: score, reasons: reasons)
    }

    public func matches(_ a: PersonFeatures, _ b: PersonFeatures) -> Bool { compare(a, b).score >= threshold }
}
