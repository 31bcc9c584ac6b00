import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// A force's `research` section of its protocol file.
///
/// Found children wait for a MASH officer's decision unless the protocol turns automatic
/// confirmation on (`"autoConfirm": {"enabled": true, "threshold": 0.97}`): off by default and
/// in both shipped protocols. An older file's `confidentThreshold` is read as the automatic
/// confirmation threshold but does not turn it on.
public struct ResearchProtocol: Codable, Sendable, Equatable {
    /// Automatic confirmation of found children: off unless the protocol turns it on.
    public struct AutoConfirm: Codable, Sendable, Equatable {
        /// Whether candidates at or above `threshold` are confirmed without a reviewer.
        public var enabled: Bool
        /// Candidates at or above this are confirmed automatically (confirmedBy `auto`) when enabled.
        public var threshold: Double

        public init(enabled: Bool = false, threshold: Double = 0.95) {
            self.enabled = enabled
            self.threshold = threshold
        }

        /// Off: every found child waits for a MASH officer.
        public static let off = AutoConfirm()
    }

    /// Candidates scoring below this are not proposed.
    public var proposalThreshold: Double
    /// Automatic confirmation (off by default).
    public var autoConfirm: AutoConfirm
    /// Two person records are the same person at or above this matcher score.
    public var personMatchThreshold: Double
    /// How far back earlier records count.
    public var lookbackYears: Int
    /// At most this many children proposed per incident.
    public var maxProposals: Int

    public init(
        proposalThreshold: Double = 0.5, autoConfirm: AutoConfirm = .off, personMatchThreshold: Double = 0.6,
        lookbackYears: Int = 10, maxProposals: Int = 10
    ) {
        self.proposalThreshold = proposalThreshold
        self.autoConfirm = autoConfirm
        self.personMatchThreshold = personMatchThreshold
        self.lookbackYears = lookbackYears
        self.maxProposals = maxProposals
    }

    public static let standard = ResearchProtocol()

    /// Whether a candidate with this score is confirmed without a reviewer.
    public func confirmsAutomatically(score: Double) -> Bool {
        autoConfirm.enabled && score >= autoConfirm.threshold
    }

    enum CodingKeys: String, CodingKey {
        case proposalThreshold, autoConfirm, confidentThreshold, personMatchThreshold, lookbackYears, maxProposals
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let standard = ResearchProtocol.standard
        proposalThreshold = try c.decodeIfPresent(Double.self, forKey: .proposalThreshold) ?? standard.proposalThreshold
        personMatchThreshold = try c.decodeIfPresent(Double.self, forKey: .personMatchThreshold) ?? standard.personMatchThreshold
        lookbackYears = try c.decodeIfPresent(Int.self, forKey: .lookbackYears) ?? standard.lookbackYears
        maxProposals = try c.decodeIfPresent(Int.self, forKey: .maxProposals) ?? standard.maxProposals
        if let auto = try c.decodeIfPresent(AutoConfirm.self, forKey: .autoConfirm) {
            autoConfirm = auto
        } else {
            // A protocol file without `autoConfirm` gives only `confidentThreshold`: that threshold, off.
            autoConfirm = AutoConfirm(
                enabled: false, threshold: try c.decodeIfPresent(Double.self, forKey: .confidentThreshold) ?? AutoConfirm.off.threshold)
        }
        for (name, value) in [
            ("proposalThreshold", proposalThreshold), ("personMatchThreshold", personMatchThreshold),
            ("autoConfirm.threshold", autoConfirm.threshold),
        ] where !(0...1).contains(value) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: c.codingPath,
                    debugDescription: "\(name) is \(value); set a number from 0 to 1"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(proposalThreshold, forKey: .proposalThreshold)
        try c.encode(autoConfirm, forKey: .autoConfirm)
        try c.encode(personMatchThreshold, forKey: .personMatchThreshold)
        try c.encode(lookbackYears, forKey: .lookbackYears)
        try c.encode(maxProposals, forKey: .maxProposals)
    }
}

/// A child found in earlier records for an incident without recorded children.
public struct Candidate: Sendable, Equatable {
    public var child: IdentifiedChild
    public var evidence: ResearchEvidence
}

/// Finds children for incidents from the history index.
///
/// Two person records are compared with the learned Fellegi-Sunter model where one is given
/// (`learned`: the model stored for the incident's day): they are the same person at or above
/// the model's match probability threshold, and every adult link carries the model's evidence
/// (each field's level and weight). Without one (a fresh install, too few people yet, or
/// `ENCOMPASS_RESEARCH_MATCHER=hand`) the hand-weighted `PersonMatcher` and the protocol's
/// `personMatchThreshold` decide.
public struct Researcher: Sendable {
    public var settings: ResearchProtocol
    public var matcher: PersonMatcher
    public var learned: LearnedMatcher?

    public init(settings: ResearchProtocol, learned: LearnedMatcher? = nil) {
        self.settings = settings
        self.matcher = PersonMatcher(threshold: settings.personMatchThreshold)
        self.learned = learned
    }

    /// A scored pair: 0...1 (the model's match probability, or the matcher's score), whether
    /// that makes them one person, and why (the model's per-field evidence, or the matcher's reasons).
    struct PairScore {
        var score: Double
        var same: Bool
        var why: () -> String
    }

    /// With the model, `address` says how the address counts: `.anotherHomeUnknown` leaves it
    /// out when it shows another home, no shared postcode (`ComparisonVector.withoutAnotherHome`), `.ignored` always
    /// (`personOnly`).
    func score(_ a: PersonFeatures, _ b: PersonFeatures, address: AddressUse = .compared) -> PairScore {
        if let learned {
            var vector = ComparisonVector.compare(a, b)
            switch address {
            case .compared: break
            case .anotherHomeUnknown: vector = vector.withoutAnotherHome
            case .ignored: vector = vector.personOnly
            }
            let p = learned.scorer.probability(vector, a)
            return PairScore(score: p, same: p >= learned.model.threshold, why: { [vector] in learned.model.evidence(vector, a, b).description })
        }
        let match = matcher.compare(a, b)
        return PairScore(
            score: match.score, same: match.score >= settings.personMatchThreshold,
            why: { "\(FixedText.text(match.score, digits: 2)): \(match.reasons.joined(separator: ", "))" })
    }

    /// A child's record as children are compared: its features, and the age recorded with it
    /// (officers often record an age instead of a date of birth) and the day it was recorded.
    struct ChildRecord {
        var features: PersonFeatures
        var ageYears: Int?
        var recordedOn: CalendarDate?

        init(_ features: PersonFeatures, ageYears: Int?, recordedOn: CalendarDate?) {
            self.features = features
            self.ageYears = ageYears
            self.recordedOn = recordedOn
        }

        init(_ row: HistoryIndex.PersonRow, features: PersonFeatures) {
            self.init(features, ageYears: row.ageYears, recordedOn: CalendarDate(iso: row.occurredDay))
        }
    }

    /// Whether two children of the linked records are one child. With the model: on names and
    /// date of birth alone (siblings share the household's address, which would otherwise
    /// outweigh their different given names and dates of birth); and where a date of birth is
    /// missing on one side, the same given name (or a nickname of it) and family name with an
    /// age that agrees (`agesAgree`). The model knows nothing of ages: on names alone a child
    /// recorded once with an age and once with a date of birth stays below its threshold, and
    /// was proposed twice (two groups, two notices to its school). Among the children of the
    /// household the records were linked to, the same name at the same age is one child.
    func sameChild(_ a: ChildRecord, _ b: ChildRecord) -> Bool {
        guard learned != nil else { return matcher.matches(a.features, b.features) }
        let vector = ComparisonVector.compare(a.features, b.features)
        if let learned, learned.scorer.probability(vector.personOnly, a.features) >= learned.model.threshold {
            return true
        }
        return vector[.dateOfBirth] == 0 && (1...2).contains(vector[.given]) && (1...2).contains(vector[.family]) && Self.agesAgree(a, b)
    }

    /// Whether two records' ages agree where a date of birth is missing on one side: an age
    /// recorded on a day equals the other's age that day from its date of birth; two ages,
    /// each carried forward by the years since it was recorded, are at most a year apart (a
    /// birthday may fall between). False when either has neither.
    static func agesAgree(_ a: ChildRecord, _ b: ChildRecord) -> Bool {
        func years(_ dob: PartialDate, on day: CalendarDate) -> Int? {
            guard let y = dob.year else { return nil }
            guard let m = dob.month, let d = dob.day else { return day.year - y }
            return day.year - y - ((day.month, day.day) < (m, d) ? 1 : 0)
        }
        func fromBirth(_ x: ChildRecord, _ y: ChildRecord) -> Bool? {
            guard let dob = x.features.dateOfBirth, let age = y.ageYears, let day = y.recordedOn, let then = years(dob, on: day) else { return nil }
            return dob.isComplete ? then == age : abs(then - age) <= 1
        }
        if let agree = fromBirth(a, b) ?? fromBirth(b, a) { return agree }
        guard let x = a.ageYears, let dx = a.recordedOn, let y = b.ageYears, let dy = b.recordedOn else { return false }
        return abs((x - dx.year) - (y - dy.year)) <= 1
    }

    enum AddressUse { case compared, anotherHomeUnknown, ignored }

    /// Whether two records are the same person (the model's threshold, or the matcher's).
    func samePerson(_ a: PersonFeatures, _ b: PersonFeatures) -> Bool {
        if let learned { return learned.scorer.matches(a, b) }
        return matcher.matches(a, b)
    }

    /// Whether an adult recorded beside a matched adult is one of this incident's adults. With
    /// the model also on names alone when a date of birth is missing on one side: the partner
    /// of an adult already matched, under the same given (or nickname) and family name, is that
    /// partner; the model, on names alone, stays below its threshold, and the children of such
    /// a couple were taken for a partner's earlier children and lowered below the proposal threshold.
    func sameCompanion(_ a: PersonFeatures, _ b: PersonFeatures) -> Bool {
        if samePerson(a, b) { return true }
        guard learned != nil else { return false }
        let vector = ComparisonVector.compare(a, b)
        return vector[.dateOfBirth] == 0 && (1...2).contains(vector[.given]) && (1...2).contains(vector[.family])
    }

    /// Why an earlier occurrence is linked to this incident.
    struct Link {
        var forceCode: String
        var occurrenceNumber: String
        var occurredDay: String
        /// 0...1 strength of the link.
        var strength: Double
        var reason: String
        /// The person row of the earlier record an adult of this incident matched (nil: linked by the dwelling).
        var matchedAdult: Int64? = nil
        /// The role in this incident of the adult that matched (nil: linked by the dwelling).
        var partyRole: PartyRole? = nil
    }

    /// Children recorded in earlier occurrences at the incident's address or with its adults,
    /// still under 18 on the incident date, ranked by score. `excluded` are child ids never to propose.
    /// Only the incident's own force's records count: where one pipeline serves several forces,
    /// one force's records never surface in another's review queue or notices.
    public func research(_ incident: Incident, db: Database, excluded: Set<String> = []) throws -> [Candidate] {
        let day = CalendarDate(incident.occurredAt)
        let earliest = CalendarDate(year: day.year - settings.lookbackYears, month: day.month, day: min(day.day, 28)).description
        var links: [String: [Link]] = [:] // occurrence key -> links
        var places: [String: PersonFeatures] = [:]
        var atDwelling: [HistoryIndex.IncidentRow] = []
        func link(_ l: Link) {
            guard l.forceCode == incident.forceCode, l.occurrenceNumber != incident.occurrenceNumber,
                l.occurredDay >= earliest, l.occurredDay < day.description
            else { return }
            links["\(l.forceCode)/\(l.occurrenceNumber)", default: []].append(l)
        }
        // Only records of earlier days link: every instance holds all of them, whereas the day's
        // other incidents are still arriving, in an order that depends on the partitions an
        // instance holds, so counting them would make the answer depend on the instance count.
        // 1. The same dwelling.
        let place = PersonFeatures(
            given: "", family: "", dateOfBirth: nil, addressLines: incident.incidentAddress.lines,
            town: incident.incidentAddress.town, postcode: incident.incidentAddress.postcode)
        if let dwelling = place.dwellingKey {
            atDwelling = try HistoryIndex.incidents(atDwelling: dwelling, before: day.description, db: db)
            for row in atDwelling {
                link(
                    Link(
                        forceCode: row.forceCode, occurrenceNumber: row.occurrenceNumber, occurredDay: row.occurredDay, strength: 0.6,
                        reason: "address: same address as \(row.occurrenceNumber) (\(row.occurredDay))"))
            }
        }
        // 2. The incident's adults, matched by name, date of birth and address.
        for party in incident.parties {
            let home = party.address ?? incident.incidentAddress
            let features = PersonFeatures(
                givenName: party.givenName, familyName: party.familyName, dateOfBirth: party.dateOfBirth,
                addressLines: home.lines, town: home.town, postcode: home.postcode)
            for row in try HistoryIndex.candidates(for: features, db: db, kind: .adults, before: day.description) {
                // Households move: an adult's earlier record at another home still links (the
                // model's address disagreement would outweigh an exact name and date of birth).
                let match = score(features, row.features(cache: &places), address: .anotherHomeUnknown)
                guard match.same else { continue }
                link(
                    Link(
                        forceCode: row.forceCode, occurrenceNumber: row.occurrenceNumber, occurredDay: row.occurredDay,
                        strength: 0.8 * match.score,
                        reason:
                            "adult: \(party.role.rawValue) \(party.givenName) \(party.familyName) matched \(row.role) \(row.givenName) \(row.familyName) in "
                            + "\(row.occurrenceNumber) (\(row.occurredDay); \(match.why()))", matchedAdult: row.row, partyRole: party.role))
            }
        }
        // 3. The children of the linked occurrences, grouped into persons (single linkage): a
        // child's record joins every group holding a record it matches — the same stable id, or
        // the matcher on names and date of birth against each record of the group, not only its
        // first — and the groups it joins become one. A child's records need not all match each
        // other (one carries an age, another a date of birth, a third a nickname), and matching
        // only a group's first record split one child into two proposals, two notices to its school.
        // Never in one group: two children recorded in one occurrence under different given names
        // (siblings such as Evie and Evelyn, nickname forms, would otherwise merge into one). The
        // same name twice in one record is more often one child entered twice: it still groups.
        struct Found {
            var rows: [HistoryIndex.PersonRow]
            var members: [ChildRecord]
            var features: PersonFeatures
            var links: [Link]

            mutating func absorb(_ other: Found) {
                rows += other.rows
                members += other.members
                links += other.links
                if features.dateOfBirth?.isComplete != true, other.features.dateOfBirth?.isComplete == true { features = other.features }
            }

            /// Whether `row` was recorded beside a child of this group under another given name.
            func hasSibling(of row: HistoryIndex.PersonRow) -> Bool {
                let given = NameText.normalise(row.givenName)
                return rows.contains {
                    $0.forceCode == row.forceCode && $0.occurrenceNumber == row.occurrenceNumber && NameText.normalise($0.givenName) != given
                }
            }

            func canMerge(_ other: Found) -> Bool { !other.rows.contains(where: hasSibling(of:)) }
        }
        var found: [Found] = []
        var residence = ResidenceContext(incident: incident, dwelling: place.dwellingKey, earliest: earliest, atDwelling: atDwelling)
        // In occurrence order, so the groups (and the proposals' order) do not depend on the order links were found.
        for (_, occurrenceLinks) in links.sorted(by: { $0.key < $1.key }) {
            guard let first = occurrenceLinks.first else { continue }
            for row in try residence.people(first.forceCode, first.occurrenceNumber, db: db) where row.role == "child" {
                guard let age = Self.age(of: row, on: day), age >= 0, age < 18 else { continue }
                let features = row.features(cache: &places)
                let record = ChildRecord(row, features: features)
                var joined = Found(rows: [row], members: [record], features: features, links: occurrenceLinks)
                var kept: [Found] = []
                var merged = false
                for group in found {
                    let same =
                        group.rows.contains { $0.personId == row.personId }
                        || (!group.hasSibling(of: row) && group.members.contains { sameChild($0, record) })
                    guard same, group.canMerge(joined) else {
                        kept.append(group)
                        continue
                    }
                    // The earliest group leads (its features stand for the person unless a later one has a full date of birth).
                    if merged {
                        joined.absorb(group)
                    } else {
                        var lead = group
                        lead.absorb(joined)
                        joined = lead
                        merged = true
                    }
                }
                found = kept + [joined]
            }
        }
        // 4. Score: independent pieces of evidence combine (1 - product of (1 - strength)).
        var candidates: [Candidate] = []
        for person in found {
            let rows = person.rows.sorted { $0.occurredDay > $1.occurredDay }
            guard let latest = rows.first else { continue }
            let childId = rows.first(where: { PartialDate($0.dateOfBirth)?.isComplete == true })?.personId ?? latest.personId
            if excluded.contains(childId) { continue }
            var seen = Set<String>()
            var miss = 1.0
            var explanation: [String] = []
            for l in person.links.sorted(by: { $0.strength > $1.strength }) where seen.insert(l.reason).inserted {
                miss *= 1 - l.strength
                explanation.append(l.reason)
            }
            let occurrences = Array(Set(rows.map(\.occurrenceNumber))).sorted()
            explanation.append("child: \(latest.givenName) \(latest.familyName) recorded in \(occurrences.joined(separator: ", "))")
            if let learned {
                explanation.append(
                    "matcher: learned model (\(learned.stored.people) people of days before \(learned.stored.beforeDay)), "
                        + "same person at probability >= \(FixedText.text(learned.model.threshold, digits: 2))")
            }
            var score = min(0.99, 1 - miss)
            guard score >= settings.proposalThreshold else { continue }
            // Evidence that the child does not live at the address now lowers the score.
            for doubt in try residenceDoubts(
                rows: person.rows, features: person.features, links: person.links, context: &residence,
                places: &places, db: db)
            {
                score *= doubt.factor
                explanation.append(doubt.line + " (score × \(FixedText.text(doubt.factor, digits: 1)))")
            }
            guard score >= settings.proposalThreshold else { continue }
            let dob = rows.compactMap(\.dateOfBirth).first { PartialDate($0)?.isComplete == true }
            let age = Self.age(of: latest, on: day)
            let school = rows.first { $0.schoolName != nil || $0.schoolURN != nil }
            let child = IdentifiedChild(
                childId: childId, givenName: latest.givenName, familyName: latest.familyName, dateOfBirth: dob,
                ageYears: dob == nil ? age : nil, homeAddress: latest.address, presence: .present,
                recordedSchool: school.map { RecordedSchool(name: $0.schoolName, urn: $0.schoolURN) },
                relationship: "found in earlier records", schoolOrigin: school.map(\.schoolOrigin))
            candidates.append(
                Candidate(
                    child: child,
                    evidence: ResearchEvidence(
                        score: (score * 1000).rounded() / 1000, explanation: explanation, sourceOccurrences: occurrences)))
        }
        candidates.sort { ($0.evidence.score, $1.child.childId) > ($1.evidence.score, $0.child.childId) }
        return Array(candidates.prefix(settings.maxProposals))
    }

    /// Whole years on `day`: from the date of birth, else the age recorded then plus the years since.
    static func age(of row: HistoryIndex.PersonRow, on day: CalendarDate) -> Int? {
        if let dob = PartialDate(row.dateOfBirth), let y = dob.year {
            var years = day.year - y
            if let m = dob.month, (day.month, day.day) < (m, dob.day ?? 1) { years -= 1 }
            return years
        }
        if let age = row.ageYears, let then = CalendarDate(iso: row.occurredDay) {
            return age + (day.year - then.year)
        }
        return nil
    }

    /// An officer-recorded child as recorded, with an id of its own from its details.
    public func unmatched(_ child: RecordedChild, in incident: Incident) -> IdentifiedChild {
        let home = child.homeAddress ?? incident.incidentAddress
        return IdentifiedChild(
            childId: HistoryIndex.personId(given: child.givenName, family: child.familyName, dateOfBirth: child.dateOfBirth, postcode: home.postcode),
            givenName: child.givenName, familyName: child.familyName, dateOfBirth: child.dateOfBirth, ageYears: child.ageYears,
            homeAddress: child.homeAddress, presence: child.presence, recordedSchool: child.school)
    }

    /// Whether two children an officer listed for one incident, matched to the same earlier
    /// record, are the same child listed twice (a nickname, a second line): yes unless their
    /// dates of birth, or else their ages, differ; with neither, when their given names agree.
    public static func sameChild(_ a: RecordedChild, _ b: RecordedChild, on date: Date) -> Bool {
        if let x = a.dateOfBirth, let y = b.dateOfBirth { return x == y }
        func age(_ c: RecordedChild) -> Int? {
            IdentifiedChild(childId: "", givenName: "", familyName: "", dateOfBirth: c.dateOfBirth, ageYears: c.ageYears).age(on: date)
        }
        if let x = age(a), let y = age(b) { return x == y }
        func fold(_ s: String) -> String {
            s.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).trimmingCharacters(in: .whitespaces)
        }
        return fold(a.givenName) == fold(b.givenName)
    }

    /// An officer-recorded child as passed on: matched to earlier records for a stable id and
    /// to fill a missing date of birth or school.
    public func identify(_ child: RecordedChild, in incident: Incident, db: Database) throws -> (IdentifiedChild, [String]) {
        let home = child.homeAddress ?? incident.incidentAddress
        let features = PersonFeatures(
            givenName: child.givenName, familyName: child.familyName, dateOfBirth: child.dateOfBirth,
            addressLines: home.lines, town: home.town, postcode: home.postcode)
        var best: (HistoryIndex.PersonRow, PairScore)?
        var places: [String: PersonFeatures] = [:]
        // Only records of earlier days: every instance has those, so the same incident gets the
        // same ids however often it is processed. Today's other incidents are still arriving, and
        // an instance that re-processes this one after a rebalance would otherwise see more of
        // them and could match the child to a different record (found by `faults broker`).
        let calendarDay = CalendarDate(incident.occurredAt)
        let incidentDay = PartialDate(year: calendarDay.year, month: calendarDay.month, day: calendarDay.day).description
        for row in try HistoryIndex.candidates(for: features, db: db, kind: .children, before: incidentDay)
        where row.forceCode == incident.forceCode && row.occurrenceNumber != incident.occurrenceNumber {
            // On the person alone, as children are grouped: a sibling's record shares the address.
            let other = row.features(cache: &places)
            let match = score(features, other, address: .ignored)
            if match.same, match.score > (best?.1.score ?? 0) { best = (row, match) }
            // With the model, a date of birth missing on one side: the same name at an age that
            // agrees, at the same postcode (the index holds every household's children), when
            // nothing matched on the model alone.
            if best == nil || best?.1.same == false, learned != nil, !match.same,
                !features.postcode.isEmpty, features.postcode == other.postcode,
                sameChild(ChildRecord(features, ageYears: child.ageYears, recordedOn: calendarDay), ChildRecord(row, features: other)),
                match.score > (best?.1.score ?? 0)
            {
                best = (row, PairScore(score: match.score, same: false, why: { "\(match.why()); the same name, postcode and age" }))
            }
        }
        var identified = unmatched(child, in: incident)
        var notes: [String] = []
        if let (row, match) = best {
            identified.childId = row.personId
            notes.append("matched \(row.givenName) \(row.familyName) in \(row.occurrenceNumber) (\(match.why()))")
            if identified.dateOfBirth == nil, let dob = row.dateOfBirth, PartialDate(dob)?.isComplete == true {
                identified.dateOfBirth = dob
                identified.ageYears = nil
                notes.append("date of birth filled from \(row.occurrenceNumber)")
            }
            if identified.recordedSchool == nil, row.schoolName != nil || row.schoolURN != nil {
                identified.recordedSchool = RecordedSchool(name: row.schoolName, urn: row.schoolURN)
                identified.schoolOrigin = row.schoolOrigin
                notes.append("school filled from \(row.occurrenceNumber)")
            }
        }
        return (identified, notes)
    }
}
