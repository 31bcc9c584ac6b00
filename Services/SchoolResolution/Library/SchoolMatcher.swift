import EncompassModels
import Foundation
import Synchronization

/// A school the matcher considered, with its score (0...1).
public struct MatchCandidate: Codable, Sendable, Equatable {
    public var urn: String
    public var name: String
    public var town: String?
    public var score: Double

    public var summary: String { "\(urn) \(name)\(town.map { ", \($0)" } ?? "") (\(String(format: "%.2f", score)))" }
}

/// The matcher's verdict on a free-text school name.
public struct MatchOutcome: Sendable, Equatable {
    /// The clear winner, when there is one.
    public var winner: MatchCandidate?
    /// The best candidates, best first (at most five).
    public var candidates: [MatchCandidate]
    /// Why there is or is not a winner.
    public var explanation: String
    /// Every open school whose name holds each distinctive word of the query and otherwise only
    /// omissible words (church, phase, kind: the query could be a shortened form of any of
    /// them), best first. Two or more: the name alone does not
    /// say which school is meant, e.g. "St Andrew's" for St Andrew's School and St Andrew's CE
    /// Primary School.
    public var covering: [MatchCandidate] = []
}

/// Thresholds of a "clear winner".
public struct MatchThresholds: Codable, Sendable, Equatable {
    /// The winner's score must reach this.
    public var minimumScore: Double
    /// And beat the runner-up by this much.
    public var minimumMargin: Double

    public init(minimumScore: Double = 0.8, minimumMargin: Double = 0.1) {
        self.minimumScore = minimumScore
        self.minimumMargin = minimumMargin
    }
}

/// Matches officers' free-text school names ("St Marys CE Prim, Reading") against the register.
///
/// Names are normalised (case, accents, punctuation, Saint/St, C of E/CE, Catholic/RC,
/// Prim/Primary, Sch/School, Inf/Infant, Jun/Junior, Acad/Academy …) into tokens. A school's
/// score is a weighted soft Jaccard: tokens are weighted by rarity (IDF, so "Burghfield" counts
/// far more than "School"), each query token is credited with its best Jaro-Winkler match among
/// the school's tokens (typos), and the school's unmatched name tokens count against it. An
/// optional town after the last comma narrows the candidates to schools whose town, locality or
/// name matches it. Candidates come from an inverted index of tokens, never a full scan.
public struct SchoolMatcher: Sendable {
    struct Entry: Sendable {
        var school: RegisteredSchool
        var nameTokens: [String]
        var placeTokens: Set<String>
        var normalisedName: String
    }

    let entries: [String: Entry]
    let index: [String: [String]]
    let vocabulary: [String]
    let weights: [String: Double]
    let documentCount: Int
    /// Postcode district (outward code) → local authority code → schools of that LA there.
    let districtAuthorities: [String: [String: Int]]
    /// Outcomes already computed, when the matcher remembers them (`remembering()`).
    private var memo: MatchMemo?

    /// The same matcher, remembering each outcome: children of one school carry the same
    /// recorded names, and matching each costs a sixth of school resolution's time (pipeline
    /// benchmark). The register cache keeps one per register generation, so a changed
    /// register starts afresh.
    public func remembering(capacity: Int = 20_000) -> SchoolMatcher {
        var copy = self
        copy.memo = MatchMemo(capacity: capacity)
        return copy
    }

    public init(schools: [RegisteredSchool]) {
        var entries: [String: Entry] = [:]
        var index: [String: [String]] = [:]
        var districts: [String: [String: Int]] = [:]
        for school in schools {
            if let district = Self.district(school.postcode) { districts[district, default: [:]][school.localAuthorityCode, default: 0] += 1 }
            let tokens = Self.tokens(school.name)
            var place = Set<String>()
            for text in [school.town, school.locality].compactMap({ $0 }) { place.formUnion(Self.tokens(text)) }
            entries[school.urn] = Entry(school: school, nameTokens: tokens, placeTokens: place, normalisedName: tokens.joined(separator: " "))
            for token in Set(tokens).union(place) { index[token, default: []].append(school.urn) }
        }
        let n = Double(max(schools.count, 1))
        var weights: [String: Double] = [:]
        for (token, urns) in index { weights[token] = max(0.05, log((n + 1) / Double(urns.count))) }
        self.entries = entries
        self.index = index
        self.vocabulary = index.keys.sorted()
        self.weights = weights
        self.documentCount = schools.count
        self.districtAuthorities = districts
    }

    /// The outward code of a UK postcode ("OX3 7LH" → "OX3"), upper-cased.
    public static func district(_ postcode: String?) -> String? {
        guard let postcode else { return nil }
        let compact = postcode.uppercased().filter { $0.isLetter || $0.isNumber }
        guard compact.count >= 5, compact.count <= 7 else { return nil }
        return String(compact.dropLast(3))
    }

    /// The local authority most of the register's schools in `postcode`'s district belong to
    /// (nil when the register has no school there): where a child living there most likely
    /// goes to school.
    public func localAuthority(ofPostcode postcode: String?) -> String? {
        guard let district = Self.district(postcode), let counts = districtAuthorities[district] else { return nil }
        return counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
    }

    /// The name the register gives local authority `code` (a scan: for the rare caller).
    public func localAuthorityName(_ code: String) -> String? {
        entries.values.first { $0.school.localAuthorityCode == code }?.school.localAuthorityName
    }

    /// The local authorities with schools in `postcode`'s district.
    public func localAuthorities(inDistrictOf postcode: String?) -> Set<String> {
        guard let district = Self.district(postcode) else { return [] }
        return Set(districtAuthorities[district].map { Array($0.keys) } ?? [])
    }

    public var count: Int { entries.count }

    public func school(_ urn: String) -> RegisteredSchool? { entries[urn]?.school }

    // MARK: - Normalisation

    static let phrases: [([String], [String])] = [
        (["church", "of", "england"], ["ce"]), (["c", "of", "e"], ["ce"]), (["c", "e"], ["ce"]),
        (["roman", "catholic"], ["rc"]), (["r", "c"], ["rc"]), (["voluntary", "aided"], []), (["voluntary", "controlled"], []),
    ]
    static let synonyms: [String: [String]] = [
        "saint": ["st"], "cofe": ["ce"], "coe": ["ce"], "catholic": ["rc"],
        "prim": ["primary"], "pri": ["primary"], "pry": ["primary"], "prmy": ["primary"],
        "sch": ["school"], "schl": ["school"], "schools": ["school"],
        "inf": ["infant"], "infants": ["infant"], "jun": ["junior"], "jnr": ["junior"], "juniors": ["junior"],
        "acad": ["academy"], "sec": ["secondary"], "nurs": ["nursery"], "coll": ["college"], "comm": ["community"],
        "ps": ["primary", "school"], "cp": ["community", "primary"], "jmi": ["junior", "mixed", "infant"],
        "c": [], "a": [], "the": [], "aided": [], "controlled": [], "va": [], "vc": [],
    ]

    /// The normalised tokens of a name.
    public static func tokens(_ text: String) -> [String] {
        var s = text.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: Locale(identifier: "en_GB")).lowercased()
        s = s.replacingOccurrences(of: "&", with: " and ")
        for mark in ["'", "\u{2019}", "\u{2018}", "`", "."] { s = s.replacingOccurrences(of: mark, with: "") }
        var raw = s.split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
        var out: [String] = []
        var i = 0
        outer: while i < raw.count {
            for (phrase, replacement) in phrases where i + phrase.count <= raw.count && Array(raw[i..<(i + phrase.count)]) == phrase {
                out.append(contentsOf: replacement)
                i += phrase.count
                continue outer
            }
            if let replacement = synonyms[raw[i]] { out.append(contentsOf: replacement) } else { out.append(raw[i]) }
            i += 1
        }
        raw = out
        return raw
    }

    // MARK: - Matching

    /// - Parameter fullScan: score every school instead of the index's candidates (the benchmark's baseline).
    public func match(_ text: String, thresholds: MatchThresholds = MatchThresholds(), fullScan: Bool = false) -> MatchOutcome {
        guard let memo else { return compute(text, thresholds: thresholds, fullScan: fullScan) }
        let key = MatchMemo.Key(text: text, thresholds: thresholds, fullScan: fullScan)
        if let known = memo.outcome(for: key) { return known }
        let outcome = compute(text, thresholds: thresholds, fullScan: fullScan)
        memo.remember(outcome, for: key)
        return outcome
    }

    private func compute(_ text: String, thresholds: MatchThresholds, fullScan: Bool) -> MatchOutcome {
        var nameTokens = Self.tokens(text)
        var townTokens: [String] = []
        var pool: Set<String>?
        if let comma = text.lastIndex(of: ",") {
            let town = Self.tokens(String(text[text.index(after: comma)...]))
            let name = Self.tokens(String(text[..<comma]))
            if !town.isEmpty, !name.isEmpty {
                let inTown = schools(matchingAll: town)
                if !inTown.isEmpty {
                    townTokens = town
                    nameTokens = name
                    pool = inTown
                }
            }
        }
        guard !nameTokens.isEmpty else {
            return MatchOutcome(winner: nil, candidates: [], explanation: "the recorded name \"\(text)\" has no usable words")
        }
        var candidates = fullScan ? Set(entries.keys) : candidateURNs(for: nameTokens)
        if candidates.isEmpty {
            return MatchOutcome(
                winner: nil, candidates: [],
                explanation: "the recorded name \"\(text)\" has only generic words (e.g. \"primary school\") or none the register knows")
        }
        if let pool { candidates.formIntersection(pool) }
        var scored: [MatchCandidate] = []
        var covers = Set<String>()
        for urn in candidates {
            guard let entry = entries[urn] else { continue }
            let (score, covered) = assess(query: nameTokens, town: townTokens, entry: entry)
            if score > 0.3 { scored.append(MatchCandidate(urn: urn, name: entry.school.name, town: entry.school.town, score: score)) }
            if covered, score > 0.3 { covers.insert(urn) }
        }
        scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.urn < $1.urn }
        // A closed school superseded by an open one among the candidates (an academy conversion
        // keeps the name under a new URN) is the same school: it does not compete.
        let open = scored.filter { entries[$0.urn]?.school.isOpen == true }
        var superseded: [String] = []
        scored.removeAll { candidate in
            guard let school = entries[candidate.urn]?.school, !school.isOpen else { return false }
            let replaced = open.contains { o in
                guard let other = entries[o.urn]?.school else { return false }
                return other.linkedURN == school.urn || school.linkedURN == other.urn
                    || (other.postcode != nil && other.postcode == school.postcode && abs(o.score - candidate.score) < 0.15)
            }
            if replaced { superseded.append(candidate.urn) }
            return replaced
        }
        let top = Array(scored.prefix(5))
        let covering = scored.filter { covers.contains($0.urn) && entries[$0.urn]?.school.isOpen == true }
        let townNote = townTokens.isEmpty ? "" : " in \"\(townTokens.joined(separator: " "))\""
        guard let best = top.first else {
            return MatchOutcome(winner: nil, candidates: [], explanation: "no school in the register resembles \"\(text)\"\(townNote)")
        }
        func outcome(_ winner: MatchCandidate?, _ explanation: String) -> MatchOutcome {
            MatchOutcome(winner: winner, candidates: top, explanation: explanation, covering: covering)
        }
        let supersededNote = superseded.isEmpty ? "" : "; closed predecessor(s) \(superseded.joined(separator: ", ")) set aside"
        if best.score < thresholds.minimumScore {
            return outcome(
                nil, String(format: "best match %@ scores %.2f, below %.2f", best.summary, best.score, thresholds.minimumScore) + supersededNote)
        }
        if top.count > 1, best.score - top[1].score < thresholds.minimumMargin {
            return outcome(
                nil, String(format: "ambiguous: %@ and %@ are within %.2f", best.summary, top[1].summary, thresholds.minimumMargin) + supersededNote)
        }
        let runner = top.count > 1 ? String(format: ", runner-up %.2f", top[1].score) : ""
        return outcome(best, String(format: "name \"%@\" matched URN %@ %@ (%.2f%@)", text, best.urn, best.name, best.score, runner) + supersededNote)
    }

    /// How well `text` fits one school (0...1), ignoring the other schools.
    public func score(_ text: String, urn: String) -> Double {
        guard let entry = entries[urn] else { return 0 }
        var name = Self.tokens(text), town: [String] = []
        if let comma = text.lastIndex(of: ",") {
            let after = Self.tokens(String(text[text.index(after: comma)...])), before = Self.tokens(String(text[..<comma]))
            if !after.isEmpty, !before.isEmpty {
                name = before
                town = after
            }
        }
        return name.isEmpty ? 0 : assess(query: name, town: town, entry: entry).score
    }

    /// Schools whose town, locality or name has every token of `town` (fuzzily).
    func schools(matchingAll town: [String]) -> Set<String> {
        var result: Set<String>?
        for token in town {
            var urns = Set<String>()
            for word in similarTokens(token) { urns.formUnion(index[word] ?? []) }
            result = result.map { $0.intersection(urns) } ?? urns
        }
        return result ?? []
    }

    /// Vocabulary tokens equal or close (Jaro-Winkler) to `token`.
    func similarTokens(_ token: String) -> [String] {
        var found: [String] = index[token] != nil ? [token] : []
        let singular = token.hasSuffix("s") && token.count > 3 ? String(token.dropLast()) : nil
        for variant in [token + "s", singular].compactMap({ $0 }) where index[variant] != nil { found.append(variant) }
        guard index[token] == nil, token.count >= 4 else { return found }
        for word in vocabulary where word != token && abs(word.count - token.count) <= 2 {
            if Self.tokenSimilarity(token, word) >= 0.9 { found.append(word) }
        }
        return found
    }

    /// Schools sharing a distinctive word with the query. Words in more than an eighth of the
    /// register ("primary", "school") bring no candidates: a name made only of them is not matched.
    func candidateURNs(for tokens: [String]) -> Set<String> {
        let cap = max(200, documentCount / 8)
        var result = Set<String>()
        for token in tokens {
            for word in similarTokens(token) {
                let urns = index[word] ?? []
                if urns.count <= cap { result.formUnion(urns) }
            }
        }
        return result
    }

    func weight(_ token: String) -> Double {
        weights[token] ?? log(Double(documentCount + 1))
    }

    /// The school's score for the query, and whether the query covers it: each query word (but
    /// `generic` ones such as School) found its match among the school's
    /// words or places, and the school's words left over are all `omissible`.
    func assess(query: [String], town: [String], entry: Entry) -> (score: Double, covers: Bool) {
        var covers = true
        var matchedSchool = Set<Int>()
        var numerator = 0.0
        var denominator = 0.0
        for q in query {
            var best = 0.0
            var bestIndex: Int?
            var bestToken = q
            let known = index[q] != nil
            for (i, s) in entry.nameTokens.enumerated() where !matchedSchool.contains(i) {
                let sim = Self.tokenSimilarity(q, s, fuzzy: !known)
                if sim > best {
                    best = sim
                    bestIndex = i
                    bestToken = s
                }
            }
            var placeSim = 0.0
            for p in entry.placeTokens { placeSim = max(placeSim, Self.tokenSimilarity(q, p, fuzzy: !known)) }
            let w = weights[q] ?? weight(bestToken)
            denominator += w
            if best >= placeSim, let i = bestIndex, best > 0 {
                matchedSchool.insert(i)
                numerator += w * best
            } else if placeSim > 0 {
                numerator += w * placeSim
            } else if !Self.generic.contains(q) {
                covers = false
            }
        }
        // The town narrowed the pool; where it also appears in the school's name, that word is not missing.
        for t in town {
            for (i, s) in entry.nameTokens.enumerated() where !matchedSchool.contains(i) && Self.tokenSimilarity(t, s) >= 0.9 {
                matchedSchool.insert(i)
            }
        }
        for (i, s) in entry.nameTokens.enumerated() where !matchedSchool.contains(i) {
            denominator += weight(s) * (Self.descriptors.contains(s) ? 0.25 : 1)
            if !Self.omissible.contains(s) { covers = false }
        }
        return (denominator > 0 ? numerator / denominator : 0, covers)
    }

    /// Words that describe rather than name a school: when the officer leaves them out
    /// ("St Josephs Primary" for "St Joseph's Catholic Primary School") they count for little.
    static let descriptors: Set<String> = ["ce", "rc", "school", "and", "academy", "community", "church", "nursery", "c", "of"]

    /// Query words that say nothing about which school is meant: a school without them can
    /// still be the one written ("St Mary's School" for St Mary's Academy).
    static let generic: Set<String> = ["school", "and", "of", "c", "academy", "community"]

    /// Words an officer leaves out of a school's name without naming another school: its
    /// church, phase and kind ("St Andrew's" for "St Andrew's CE Primary School"). A school whose
    /// name holds every word of the query and, beyond it, only such words is a reading of it;
    /// one with another naming word ("Caversham Park Primary" for "Caversham Primary") is not.
    static let omissible: Set<String> = descriptors.union([
        "st", "primary", "infant", "junior", "secondary", "first", "middle", "upper", "lower", "high", "college",
        "mixed", "voluntary", "foundation", "free", "preparatory", "prep", "federation", "trust", "early", "years", "centre",
    ])

    /// 1 for equal tokens, 0.95 for a plural or possessive variant ("mary"/"marys"); with
    /// `fuzzy` (the query word is unknown to the register: a typo), Jaro-Winkler when close.
    static func tokenSimilarity(_ a: String, _ b: String, fuzzy: Bool = true) -> Double {
        if a == b { return 1 }
        if a.count >= 3, b.count >= 3, a + "s" == b || b + "s" == a { return 0.95 }
        guard fuzzy, a.count >= 4, b.count >= 4 else { return 0 }
        let jw = jaroWinkler(a, b)
        return jw >= 0.88 ? jw : 0
    }

    /// Jaro-Winkler over the words' unicode scalars.
    static func jaroWinkler(_ s1: String, _ s2: String) -> Double {
        TextSimilarity.jaroWinkler(Array(s1.unicodeScalars), Array(s2.unicodeScalars))
    }
}

/// Match outcomes by query, bounded: forgotten all at once when full (the working set of
/// recorded school names is far smaller than the capacity).
final class MatchMemo: Sendable {
    struct Key: Hashable {
        var text: String
        var minimumScore: Double
        var minimumMargin: Double
        var fullScan: Bool

        init(text: String, thresholds: MatchThresholds, fullScan: Bool) {
            self.text = text
            minimumScore = thresholds.minimumScore
            minimumMargin = thresholds.minimumMargin
            self.fullScan = fullScan
        }
    }

    private let capacity: Int
    private let table = Mutex<[Key: MatchOutcome]>([:])

    init(capacity: Int) { self.capacity = max(1, capacity) }

    func outcome(for key: Key) -> MatchOutcome? { table.withLock { $0[key] } }

    func remember(_ outcome: MatchOutcome, for key: Key) {
        table.withLock { table in
            if table.count >= capacity { table.removeAll(keepingCapacity: true) }
            table[key] = outcome
        }
    }
}
