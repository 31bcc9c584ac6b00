import EncompassModels
import Foundation

/// The "schools" section of a force protocol (Shared/Models/Resources/protocols/*.json).
public struct SchoolsProtocol: Codable, Sendable, Equatable {
    /// What to do with a verified school outside the force's local authorities.
    public enum OutOfArea: String, Codable, Sendable {
        /// The default, as section 49A of the Domestic Abuse Act 2021 requires (any relevant
        /// educational establishment in England or Wales): notified like any school, through
        /// the school's contacts, else its local authority's Operation Encompass contact, else
        /// a telephone task for the MASH with the reason. Never silently dropped.
        case notify
        /// Legacy (before s49A; Cambridgeshire's "out of county not shared"): not notified; the
        /// outcome is recorded. Only where a force's protocol still asks for it.
        case record
        /// Legacy: notified only when the MASH holds contacts for the school, else recorded.
        case notifyWhenContacts = "notify-when-contacts"
    }

    /// DfE LA code → name: the local authorities the force covers.
    public var localAuthorities: [String: String]
    public var outOfArea: OutOfArea
    /// How early years settings are told.
    public var earlyYearsChannel: NoticeChannel
    /// A setting whose statutory age range tops out at or below this is early years.
    public var earlyYearsMaximumAge: Int
    public var match: MatchThresholds

    /// `outOfArea` may be left out: `notify`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        localAuthorities = try container.decode([String: String].self, forKey: .localAuthorities)
        outOfArea = try container.decodeIfPresent(OutOfArea.self, forKey: .outOfArea) ?? .notify
        earlyYearsChannel = try container.decode(NoticeChannel.self, forKey: .earlyYearsChannel)
        earlyYearsMaximumAge = try container.decode(Int.self, forKey: .earlyYearsMaximumAge)
        match = try container.decode(MatchThresholds.self, forKey: .match)
    }

    public init(
        localAuthorities: [String: String], outOfArea: OutOfArea, earlyYearsChannel: NoticeChannel,
        earlyYearsMaximumAge: Int = 5, match: MatchThresholds = MatchThresholds()
    ) {
        self.localAuthorities = localAuthorities
        self.outOfArea = outOfArea
        self.earlyYearsChannel = earlyYearsChannel
        self.earlyYearsMaximumAge = earlyYearsMaximumAge
        self.match = match
    }

    /// Every force's section, by force code.
    public static func loadAll(_ protocols: ForceProtocols) throws(ForceProtocolError) -> [String: SchoolsProtocol] {
        var result: [String: SchoolsProtocol] = [:]
        for (code, force) in protocols.byCode { result[code] = try force.section("schools", as: SchoolsProtocol.self) }
        return result
    }
}

/// Where resolving a child's school led.
public enum Resolution: Sendable, Equatable {
    /// A verified school to notify.
    case notice(ResolvedSchool, reasons: [String])
    /// A verified school that the protocol says is not notified (out of area); recorded.
    case notNotified(urn: String, reasons: [String])
    /// No verified school: a request to Children's Social Care.
    case request(reason: String, candidates: [MatchCandidate], reasons: [String])

    /// The verified school's URN (nil for a request).
    public var urn: String? {
        switch self {
        case .notice(let school, _): school.urn
        case .notNotified(let urn, _): urn
        case .request: nil
        }
    }
}

/// A school held for a child from before this incident: the one verified for it at an earlier
/// incident (`childSchool`), with where that evidence came from.
public struct HeldSchool: Sendable, Equatable {
    public var urn: String
    /// The earlier incident (its day and the child's home postcode then); nil when not known.
    public var origin: SchoolRecordOrigin?

    public init(urn: String, origin: SchoolRecordOrigin? = nil) {
        self.urn = urn
        self.origin = origin
    }
}

/// What resolution knows of where the child is now.
public struct ChildPlace: Sendable, Equatable {
    /// The child's home postcode now (the recorded home, else the incident's address).
    public var homePostcode: String?
    /// The incident's postcode.
    public var incidentPostcode: String?

    public init(homePostcode: String?, incidentPostcode: String?) {
        self.homePostcode = homePostcode
        self.incidentPostcode = incidentPostcode
    }

    /// An officer-recorded child lives where the officer recorded (else at the incident); a
    /// child found by research was present at the incident, so that is where it is now: its
    /// home in an earlier record may be out of date.
    public static func of(_ child: IdentifiedChild, incident: Incident, source: ChildSource) -> ChildPlace {
        let home = source == .officer ? (child.homeAddress?.postcode ?? incident.incidentAddress.postcode) : incident.incidentAddress.postcode
        return ChildPlace(homePostcode: home, incidentPostcode: incident.incidentAddress.postcode)
    }
}

/// Finds and verifies a child's school against the register and the force protocol.
/// Pure: the caller supplies the register (matcher), what is known of the child, and contacts.
public struct SchoolResolver: Sendable {
    public let matcher: SchoolMatcher
    public let protocols: [String: SchoolsProtocol]

    public init(matcher: SchoolMatcher, protocols: [String: SchoolsProtocol]) {
        self.matcher = matcher
        self.protocols = protocols
    }

    enum Identified {
        case found(RegisteredSchool, [String])
        case failed(String, [MatchCandidate])
    }

    /// One source of a school to try, in order.
    struct Attempt {
        var label: String
        var school: RecordedSchool
        var origin: SchoolRecordOrigin?
    }

    /// - Parameters:
    ///   - recorded: the school as recorded (officer, history, or returned by Children's Social Care).
    ///   - recordedOrigin: the earlier record `recorded` was carried over from (nil: recorded now).
    ///   - previous: the school verified for this child before.
    ///   - blocked: URNs that reported the pupil no longer attends.
    ///   - place: where the child is now (the child's home and the incident's postcode).
    ///   - checkAge: false only when a MASH officer has accepted a school despite an age-range
    ///     conflict (Children's Social Care named it, and CSC is the authority on school).
    public func resolve(
        child: IdentifiedChild, incident: Incident, recorded: RecordedSchool?, recordedLabel: String = "recorded",
        recordedOrigin: SchoolRecordOrigin? = nil, previous: HeldSchool?, blocked: Set<String>, place: ChildPlace? = nil,
        checkAge: Bool = true, contacts: (String) -> [SchoolContact]
    ) -> Resolution {
        guard let policy = protocols[incident.forceCode] else {
            return .request(reason: "no schools protocol for force \(incident.forceCode)", candidates: [], reasons: [])
        }
        let place = place ?? ChildPlace.of(child, incident: incident, source: .officer)
        // Recorded now (by the officer, or in Children's Social Care's answer) as not on a
        // school roll: the notice goes to the child's home local authority instead.
        if recordedOrigin == nil, recorded?.urn?.isEmpty != false, let name = recorded?.name, let kind = NotOnRoll(recorded: name) {
            return notOnRoll(kind, recorded: name, label: recordedLabel, incident: incident, place: place, policy: policy, contacts: contacts)
        }
        var attempts: [Attempt] = []
        if let recorded, recorded.urn?.isEmpty == false || recorded.name?.trimmingCharacters(in: .whitespaces).isEmpty == false {
            attempts.append(Attempt(label: recordedLabel, school: recorded, origin: recordedOrigin))
        }
        if let previous, recorded?.urn != previous.urn {
            attempts.append(Attempt(label: "previously held for this child", school: RecordedSchool(urn: previous.urn), origin: previous.origin))
        }
        guard !attempts.isEmpty else {
            return .request(reason: "no school recorded and none held for this child", candidates: [], reasons: [])
        }
        var reasons: [String] = []
        var firstFailure: (String, [MatchCandidate])?
        var recordedNamePointsElsewhere = false
        for (index, attempt) in attempts.enumerated() {
            let label = attempt.label
            // The previously held school stands in for an unclear recorded name only when that
            // name fits it too; a recorded name resembling only other schools suggests the child
            // has moved, and a guess could send the notice to the wrong school.
            if index > 0, recordedNamePointsElsewhere, let name = attempts[0].school.name, let urn = attempt.school.urn,
                matcher.score(name, urn: urn) < 0.5
            {
                reasons.append("the school previously held for this child (URN \(urn)) does not fit the recorded name \"\(name)\": not used")
                continue
            }
            switch identify(attempt.school, label: label, thresholds: policy.match, place: place) {
            case .failed(let why, let candidates):
                reasons.append(why)
                if index == 0, !candidates.isEmpty { recordedNamePointsElsewhere = true }
                if firstFailure == nil { firstFailure = (why, candidates) }
            case .found(let found, let notes):
                reasons.append(contentsOf: notes)
                var outcome = verify(
                    found, child: child, incident: incident, policy: policy, blocked: blocked, checkAge: checkAge, contacts: contacts)
                if case .success(let resolution) = outcome, let origin = attempt.origin,
                    let doubt = staleness(
                        of: resolution.urn.flatMap(matcher.school) ?? found, from: origin, child: child, incident: incident, place: place)
                {
                    outcome = .failure(Problem(description: doubt))
                }
                switch outcome {
                case .failure(let problem):
                    reasons.append(problem.description)
                    if firstFailure == nil { firstFailure = (problem.description, []) }
                case .success(let resolution):
                    if label != attempts[0].label { reasons.append("used the school \(label) instead") }
                    if let origin = attempt.origin {
                        reasons.append(
                            "URN \(resolution.urn ?? found.urn) was recorded for the child in \(origin.occurrenceNumber) (\(origin.recordedOn)); still in range this school year, no change of phase since, and the child still lives at \(origin.homePostcode ?? "the same postcode")"
                        )
                    }
                    switch resolution {
                    case .notice(let resolved, let more): return .notice(resolved, reasons: reasons + more)
                    case .notNotified(let urn, let more): return .notNotified(urn: urn, reasons: reasons + more)
                    case .request: return resolution
                    }
                }
            }
        }
        let (why, candidates) = firstFailure ?? ("no verified school", [])
        return .request(reason: why, candidates: candidates, reasons: reasons)
    }

    /// Why a school known only from an earlier record is no longer evidence of where the child
    /// goes to school now (nil: it still is). Children change school at phase transfers
    /// (nursery to Reception, Year 6 to 7, Year 11 to post-16) and when their family moves, so a
    /// school from an earlier school year is trusted only when the child has crossed no transfer
    /// since, and a school from any earlier record only while the child lives where it did then.
    func staleness(of school: RegisteredSchool, from origin: SchoolRecordOrigin, child: IdentifiedChild, incident: Incident, place: ChildPlace)
        -> String?
    {
        let prefix = "URN \(school.urn) \(school.name) is known only from \(origin.occurrenceNumber) (\(origin.recordedOn))"
        let today = CalendarDate(incident.occurredAt)
        if let then = homeKey(origin.homePostcode), let now = homeKey(place.homePostcode), then != now {
            return
                "\(prefix), when the child lived at \(origin.homePostcode ?? ""); the child now lives at \(place.homePostcode ?? ""): a moved household makes an old school doubtful"
        }
        if origin.homePostcode == nil || place.homePostcode == nil {
            return "\(prefix), and that record does not say where the child lived then: whether the child has moved is unknown"
        }
        guard let recordedDay = CalendarDate(iso: origin.recordedOn) else { return "\(prefix): the record's date is unreadable" }
        guard SchoolYear.startYear(of: recordedDay) < SchoolYear.startYear(of: today) else { return nil }
        guard let dob = child.dateOfBirth.flatMap(CalendarDate.init(iso:)) else {
            return
                "\(prefix), an earlier school year, and the child's date of birth is unknown: whether the child has changed phase since cannot be checked"
        }
        let ageThen = SchoolYear.age(born: dob, during: recordedDay), ageNow = SchoolYear.age(born: dob, during: today)
        let low = school.statutoryLowAge ?? 0, high = school.statutoryHighAge ?? 99
        if let transfer = SchoolYear.transfers(low: low, high: high).first(where: { ageThen < $0 && $0 <= ageNow }) {
            let stage = transfer == 4 ? "nursery to Reception" : transfer == 11 ? "Year 6 to Year 7" : "Year 11 to post-16"
            return
                "\(prefix), an earlier school year: the child has since moved from \(stage) (school-year age \(ageThen) then, \(ageNow) now), where most children change school"
        }
        return nil
    }

    /// A postcode folded for comparison (case and spaces).
    func homeKey(_ postcode: String?) -> String? {
        guard let postcode else { return nil }
        let key = postcode.uppercased().filter { $0.isLetter || $0.isNumber }
        return key.isEmpty ? nil : key
    }

    func identify(_ recorded: RecordedSchool, label: String, thresholds: MatchThresholds, place: ChildPlace) -> Identified {
        let name = recorded.name?.trimmingCharacters(in: .whitespaces).nilIfEmpty
        if let urn = recorded.urn?.trimmingCharacters(in: .whitespaces).nilIfEmpty {
            if let school = matcher.school(urn) {
                guard let name else { return .found(school, ["\(label) URN \(urn) is \(school.name)"]) }
                let outcome = matcher.match(name, thresholds: thresholds)
                if let winner = outcome.winner, winner.urn != urn, !sameSchool(winner.urn, urn) {
                    return .failed(
                        "\(label) URN \(urn) (\(school.name)) disagrees with the \(label) name \"\(name)\", which matches \(winner.summary)",
                        [MatchCandidate(urn: urn, name: school.name, town: school.town, score: 0)] + outcome.candidates)
                }
                return .found(school, ["\(label) URN \(urn) is \(school.name); the \(label) name \"\(name)\" agrees or is unclear"])
            }
            guard let name else { return .failed("\(label) URN \(urn) is not in the register", []) }
            switch named(name, label: label, thresholds: thresholds, place: place) {
            case .found(let school, let notes):
                return .found(school, ["\(label) URN \(urn) is not in the register; amended to URN \(school.urn)"] + notes)
            case .failed(let why, let candidates):
                return .failed("\(label) URN \(urn) is not in the register and \(why)", candidates)
            }
        }
        guard let name else { return .failed("no \(label) school", []) }
        return named(name, label: label, thresholds: thresholds, place: place)
    }

    /// Lowest name score at which the one school of a shared name in the child's area is taken,
    /// and at which a local school of a similar name stops a distant winner.
    static let localFloor = 0.6
    /// A local school scoring within this of a distant winner has "a similar name".
    static let rivalGap = 0.15

    /// A school named in free text, with where the child is. The name's clear winner is taken
    /// unless the name fits several schools (a partial or shared name, e.g. "St Andrew's"), when
    /// only the one of them in the child's area will do; and never a school of another area
    /// while a school of a similar name is in the child's area. Anything else is a request.
    func named(_ name: String, label: String, thresholds: MatchThresholds, place: ChildPlace) -> Identified {
        let outcome = matcher.match(name, thresholds: thresholds)
        let area = localAuthorities(place)
        let areaName = area.isEmpty ? "unknown (no school in the register shares its postcode district)" : area.sorted().joined(separator: ", ")
        func isLocal(_ candidate: MatchCandidate) -> Bool {
            matcher.school(candidate.urn).map { area.contains($0.localAuthorityCode) } ?? false
        }
        if outcome.covering.count >= 2 {
            let nearby = outcome.covering.filter(isLocal)
            let listed = outcome.covering.prefix(5).map(\.summary).joined(separator: "; ")
            if nearby.count == 1, nearby[0].score >= Self.localFloor, let school = matcher.school(nearby[0].urn) {
                return .found(
                    school,
                    [
                        "\(label) school \"\(name)\" fits \(outcome.covering.count) schools (\(listed)); URN \(school.urn) \(school.name) is the only one in the child's area (LA \(areaName))"
                    ])
            }
            return .failed(
                "\(label) school \"\(name)\" fits \(outcome.covering.count) schools (\(listed)); \(nearby.isEmpty ? "none" : "\(nearby.count)") in the child's area (LA \(areaName)): not guessed",
                Array(outcome.covering.prefix(5)))
        }
        guard let winner = outcome.winner, let school = matcher.school(winner.urn) else {
            return .failed("\(label) school \"\(name)\": \(outcome.explanation)", outcome.candidates)
        }
        if !isLocal(winner),
            let rival = outcome.candidates.first(where: {
                $0.urn != winner.urn && isLocal($0) && $0.score >= max(Self.localFloor, winner.score - Self.rivalGap)
            })
        {
            return .failed(
                "\(label) school \"\(name)\" best matches \(winner.summary) in \(school.localAuthorityName), outside the child's area, while \(rival.summary) of a similar name is in it: not guessed",
                outcome.candidates)
        }
        return .found(school, ["\(label) \(outcome.explanation)"])
    }

    /// The local authorities of the child's area: those most of the register's schools in the
    /// home and incident postcode districts belong to.
    func localAuthorities(_ place: ChildPlace) -> Set<String> {
        Set([place.homePostcode, place.incidentPostcode].compactMap { matcher.localAuthority(ofPostcode: $0) })
    }

    func sameSchool(_ a: String, _ b: String) -> Bool {
        matcher.school(a)?.linkedURN == b || matcher.school(b)?.linkedURN == a
    }

    struct Problem: Error, CustomStringConvertible { let description: String }

    func verify(
        _ found: RegisteredSchool, child: IdentifiedChild, incident: Incident, policy: SchoolsProtocol,
        blocked: Set<String>, checkAge: Bool = true, contacts: (String) -> [SchoolContact]
    ) -> Result<Resolution, Problem> {
        var school = found
        var reasons: [String] = []
        if !school.isOpen {
            let closed = "URN \(school.urn) \(school.name) is \(school.status.lowercased())\(school.closeDate.map { " (closed \($0))" } ?? "")"
            if let next = school.linkedURN.flatMap(matcher.school), next.isOpen,
                next.openDate == nil || school.closeDate == nil || next.openDate! >= school.closeDate!
            {
                reasons.append("\(closed); amended to its successor URN \(next.urn) \(next.name)")
                school = next
            } else {
                return .failure(Problem(description: closed))
            }
        }
        if blocked.contains(school.urn) {
            return .failure(Problem(description: "URN \(school.urn) \(school.name) reported that the pupil no longer attends"))
        }
        let low = school.statutoryLowAge, high = school.statutoryHighAge
        let rangeKnown = (high ?? 0) > 0 && (high ?? 0) < 30
        if !checkAge {
            reasons.append("age range not checked: accepted by the MASH on Children's Social Care's answer")
        } else if let ages = schoolYearAges(child, on: CalendarDate(incident.occurredAt)) {
            if rangeKnown, let high, !ages.contains(where: { SchoolYear.fits(age: $0, low: low ?? 0, high: high) }) {
                let age = ages.lowerBound == ages.upperBound ? "\(ages.lowerBound)" : "\(ages.lowerBound) or \(ages.upperBound)"
                return .failure(
                    Problem(
                        description:
                            "child of school-year age \(age) (age on 31 August before this school year) is outside the age range \(low ?? 0)-\(high) of URN \(school.urn) \(school.name), which takes school-year ages \(max(0, SchoolYear.youngest(low: low ?? 0)))-\(high - 1)"
                    ))
            }
            if !rangeKnown { reasons.append("URN \(school.urn) has no age range in the register: age not checked") }
        } else {
            reasons.append("the child's age is unknown: age range not checked")
        }
        let phase = school.phase?.lowercased() ?? ""
        let type = school.type?.lowercased() ?? ""
        let earlyYears =
            school.isOfstedEarlyYears || phase.contains("nursery") || type.contains("nursery") || type.contains("early years")
            || (rangeKnown && (high ?? 99) <= policy.earlyYearsMaximumAge)
        var held = contacts(school.urn)
        var unrouted = false
        if policy.localAuthorities[school.localAuthorityCode] == nil {
            let outside =
                "URN \(school.urn) is in \(school.localAuthorityName) (LA \(school.localAuthorityCode)), outside force \(incident.forceCode)'s local authorities"
            switch policy.outOfArea {
            case .notify where !held.isEmpty:
                reasons.append(outside + "; notified like any school, through the contacts the MASH holds for it")
            case .notify:
                let la = contacts(LocalAuthorityContacts.key(school.localAuthorityCode)).filter { $0.role == LocalAuthorityContacts.encompassRole }
                if la.isEmpty {
                    unrouted = true
                    reasons.append(
                        outside + "; " + Self.unroutedOutOfArea
                            + " for the school nor for \(school.localAuthorityName): a telephone task for the MASH to reach the school's safeguarding lead (add the LA's Operation Encompass contact with `encompass schools la-contacts import`)"
                    )
                } else {
                    held = la
                    reasons.append(
                        outside + "; no contacts held for the school: notified through \(school.localAuthorityName)'s Operation Encompass contact")
                }
            case .record:
                return .success(.notNotified(urn: school.urn, reasons: reasons + [outside + ": not notified (force protocol); recorded"]))
            case .notifyWhenContacts where held.isEmpty:
                return .success(
                    .notNotified(
                        urn: school.urn, reasons: reasons + [outside + " and the MASH holds no contacts for it: not notified; recorded for referral"])
                )
            case .notifyWhenContacts:
                reasons.append(outside + "; notified through the contacts the MASH holds for it")
            }
        }
        var channel = NoticeChannel.email
        if unrouted {
            channel = .telephone
        } else if earlyYears {
            channel = policy.earlyYearsChannel
            reasons.append("early years setting: \(channel.rawValue) (force protocol)")
        } else if !held.contains(where: { $0.email?.isEmpty == false }) {
            if held.contains(where: { $0.phone?.isEmpty == false }) {
                channel = .telephone
                reasons.append("no safeguarding email held for URN \(school.urn): telephone")
            } else {
                reasons.append("no safeguarding contacts held for URN \(school.urn): add them with `encompass schools contacts set`")
            }
        }
        return .success(
            .notice(
                ResolvedSchool(
                    urn: school.urn, name: school.name, localAuthorityCode: school.localAuthorityCode,
                    localAuthorityName: school.localAuthorityName, phase: school.phase, earlyYears: earlyYears,
                    postcode: school.postcode, contacts: held, channel: channel
                ), reasons: reasons))
    }
}

/// A child recorded as on no school roll, as officers and Children's Social Care write it.
public enum NotOnRoll: String, Sendable, CaseIterable {
    case homeEducated = "home-educated"
    case missingEducation = "missing education"
    case awaitingPlace = "awaiting a school place"

    /// Phrases (lower case, punctuation as spaces) that say so, whole words, alone in the field.
    static let phrases: [(NotOnRoll, [String])] = [
        (
            .homeEducated,
            ["home educated", "home education", "elective home education", "electively home educated", "ehe", "home schooled", "home schooling"]
        ),
        (
            .missingEducation,
            [
                "missing education", "child missing education", "cme", "not on roll", "not on a school roll", "no school", "not in school",
                "not attending school",
            ]
        ),
        (.awaitingPlace, ["awaiting place", "awaiting a place", "awaiting school place", "awaiting a school place", "no school place"]),
    ]

    /// The kind a recorded school name says, when it says the child is on no school roll.
    public init?(recorded name: String) {
        let words = String(name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : " " }).split(separator: " ").joined(separator: " ")
        guard let found = Self.phrases.first(where: { $0.1.contains(words) }) else { return nil }
        self = found.0
    }
}

extension SchoolResolver {
    /// The notice for a child on no school roll: a telephone task for the MASH to tell the
    /// child's home local authority (its `education-otherwise` contact, when held), under the
    /// account `LA<code>`. The home LA is the one with most schools in the home postcode's
    /// district (the incident's, when the home is unknown); with neither, a request to CSC.
    func notOnRoll(
        _ kind: NotOnRoll, recorded: String, label: String, incident: Incident, place: ChildPlace,
        policy: SchoolsProtocol, contacts: (String) -> [SchoolContact]
    ) -> Resolution {
        let said = "\(label) \"\(recorded)\": the child is \(kind.rawValue), on no school roll"
        guard
            let code = matcher.localAuthority(ofPostcode: place.homePostcode) ?? matcher.localAuthority(ofPostcode: incident.incidentAddress.postcode)
        else {
            return .request(
                reason: "\(said); the child's home local authority cannot be told from the postcode: name it, or the school", candidates: [],
                reasons: [])
        }
        let name = policy.localAuthorities[code] ?? matcher.localAuthorityName(code) ?? "LA \(code)"
        let held = contacts(LocalAuthorityContacts.key(code)).filter { $0.role == LocalAuthorityContacts.educationOtherwiseRole }
        let route =
            held.isEmpty
            ? "none held for \(name): add it with `encompass schools la-contacts import`"
            : "\(held.compactMap { $0.name ?? $0.email }.joined(separator: ", "))"
        return .notice(
            ResolvedSchool(
                urn: LocalAuthorityContacts.key(code), name: "\(name) local authority (child \(kind.rawValue))", localAuthorityCode: code,
                localAuthorityName: name, contacts: held, channel: .telephone
            ),
            reasons: [
                said, "home local authority \(name) (LA \(code)) from the postcode \(place.homePostcode ?? incident.incidentAddress.postcode)",
                "a telephone task for the MASH to tell the local authority's education-otherwise contact (\(route))",
            ])
    }

    /// The words that mark an out-of-area notice with no contact to send it to (counted by
    /// `encompass_school_resolution_out_of_area_unrouted`).
    public static let unroutedOutOfArea = ResolvedSchool.unroutedOutOfArea

    /// The child's possible school-year ages (age on 31 August before the school year of `day`):
    /// exact from a date of birth, else one of two from an age in whole years.
    func schoolYearAges(_ child: IdentifiedChild, on day: CalendarDate) -> ClosedRange<Int>? {
        if let dob = child.dateOfBirth.flatMap(CalendarDate.init(iso:)) {
            let age = SchoolYear.age(born: dob, during: day)
            return age...age
        }
        return child.ageYears.map { SchoolYear.possibleAges(ageOn: day, age: $0) }
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
