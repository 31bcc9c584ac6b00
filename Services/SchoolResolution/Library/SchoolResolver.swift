import EncompassModels
import Foundation

/// The "schools" section of a force protocol (Shared/Models/Resources/protocols/*.json).
public struct SchoolsProtocol: Codable, Sendable, Equatable {
    /// What to do with a verified school outside the force's local authorities.
    public enum OutOfArea: String, Codable, Sendable {
        /// Not notified; the outcome is recorded (Cambridgeshire).
        case record
        /// Notified when the MASH holds safeguarding contacts for the school (a cross-border
        /// arrangement), else recorded as not notified.
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

    public init(localAuthorities: [String: String], outOfArea: OutOfArea, earlyYearsChannel: NoticeChannel,
                earlyYearsMaximumAge: Int = 5, match: MatchThresholds = MatchThresholds()) {
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

    /// - Parameters:
    ///   - recorded: the school as recorded (officer, history, or returned by Children's Social Care).
    ///   - previousURN: the school verified for this child before.
    ///   - blocked: URNs that reported the pupil no longer attends.
    public func resolve(
        child: IdentifiedChild, incident: Incident, recorded: RecordedSchool?, recordedLabel: String = "recorded",
        previousURN: String?, blocked: Set<String>, contacts: (String) -> [SchoolContact]
    ) -> Resolution {
        guard let policy = protocols[incident.forceCode] else {
            return .request(reason: "no schools protocol for force \(incident.forceCode)", candidates: [], reasons: [])
        }
        var attempts: [(String, RecordedSchool)] = []
        if let recorded, recorded.urn?.isEmpty == false || recorded.name?.trimmingCharacters(in: .whitespaces).isEmpty == false {
            attempts.append((recordedLabel, recorded))
        }
        if let previousURN, recorded?.urn != previousURN {
            attempts.append(("previously held for this child", RecordedSchool(urn: previousURN)))
        }
        guard !attempts.isEmpty else {
            return .request(reason: "no school recorded and none held for this child", candidates: [], reasons: [])
        }
        var reasons: [String] = []
        var firstFailure: (String, [MatchCandidate])?
        var recordedNamePointsElsewhere = false
        for (index, (label, school)) in attempts.enumerated() {
            // The previously held school stands in for an unclear recorded name only when that
            // name fits it too; a recorded name resembling only other schools suggests the child
            // has moved, and a guess could send the notice to the wrong school.
            if index > 0, recordedNamePointsElsewhere, let name = attempts[0].1.name, let urn = school.urn,
               matcher.score(name, urn: urn) < 0.5 {
                reasons.append("the school previously held for this child (URN \(urn)) does not fit the recorded name \"\(name)\": not used")
                continue
            }
            switch identify(school, label: label, thresholds: policy.match) {
            case .failed(let why, let candidates):
                reasons.append(why)
                if index == 0, !candidates.isEmpty { recordedNamePointsElsewhere = true }
                if firstFailure == nil { firstFailure = (why, candidates) }
            case .found(let found, let notes):
                reasons.append(contentsOf: notes)
                switch verify(found, child: child, incident: incident, policy: policy, blocked: blocked, contacts: contacts) {
                case .failure(let problem):
                    reasons.append(problem.description)
                    if firstFailure == nil { firstFailure = (problem.description, []) }
                case .success(let outcome):
                    if label != attempts[0].0 { reasons.append("used the school \(label) instead") }
                    switch outcome {
                    case .notice(let resolved, let more): return .notice(resolved, reasons: reasons + more)
                    case .notNotified(let urn, let more): return .notNotified(urn: urn, reasons: reasons + more)
                    case .request: return outcome
                    }
                }
            }
        }
        let (why, candidates) = firstFailure ?? ("no verified school", [])
        return .request(reason: why, candidates: candidates, reasons: reasons)
    }

    func identify(_ recorded: RecordedSchool, label: String, thresholds: MatchThresholds) -> Identified {
        let name = recorded.name?.trimmingCharacters(in: .whitespaces).nilIfEmpty
        if let urn = recorded.urn?.trimmingCharacters(in: .whitespaces).nilIfEmpty {
            if let school = matcher.school(urn) {
                guard let name else { return .found(school, ["\(label) URN \(urn) is \(school.name)"]) }
                let outcome = matcher.match(name, thresholds: thresholds)
                if let winner = outcome.winner, winner.urn != urn, !sameSchool(winner.urn, urn) {
                    return .failed("\(label) URN \(urn) (\(school.name)) disagrees with the \(label) name \"\(name)\", which matches \(winner.summary)",
                                   [MatchCandidate(urn: urn, name: school.name, town: school.town, score: 0)] + outcome.candidates)
                }
                return .found(school, ["\(label) URN \(urn) is \(school.name); the \(label) name \"\(name)\" agrees or is unclear"])
            }
            guard let name else { return .failed("\(label) URN \(urn) is not in the register", []) }
            let outcome = matcher.match(name, thresholds: thresholds)
            guard let winner = outcome.winner, let school = matcher.school(winner.urn) else {
                return .failed("\(label) URN \(urn) is not in the register and \(outcome.explanation)", outcome.candidates)
            }
            return .found(school, ["\(label) URN \(urn) is not in the register; amended to URN \(school.urn): \(outcome.explanation)"])
        }
        guard let name else { return .failed("no \(label) school", []) }
        let outcome = matcher.match(name, thresholds: thresholds)
        guard let winner = outcome.winner, let school = matcher.school(winner.urn) else {
            return .failed("\(label) school \"\(name)\": \(outcome.explanation)", outcome.candidates)
        }
        return .found(school, ["\(label) \(outcome.explanation)"])
    }

    func sameSchool(_ a: String, _ b: String) -> Bool {
        matcher.school(a)?.linkedURN == b || matcher.school(b)?.linkedURN == a
    }

    struct Problem: Error, CustomStringConvertible { let description: String }

    func verify(
        _ found: RegisteredSchool, child: IdentifiedChild, incident: Incident, policy: SchoolsProtocol,
        blocked: Set<String>, contacts: (String) -> [SchoolContact]
    ) -> Result<Resolution, Problem> {
        var school = found
        var reasons: [String] = []
        if !school.isOpen {
            let closed = "URN \(school.urn) \(school.name) is \(school.status.lowercased())\(school.closeDate.map { " (closed \($0))" } ?? "")"
            if let next = school.linkedURN.flatMap(matcher.school), next.isOpen,
               next.openDate == nil || school.closeDate == nil || next.openDate! >= school.closeDate! {
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
        if let age = child.age(on: incident.occurredAt) {
            if rangeKnown, let high, age < (low ?? 0) || age > high {
                return .failure(Problem(description: "child aged \(age) is outside the age range \(low ?? 0)-\(high) of URN \(school.urn) \(school.name)"))
            }
            if !rangeKnown { reasons.append("URN \(school.urn) has no age range in the register: age not checked") }
        } else {
            reasons.append("the child's age is unknown: age range not checked")
        }
        let phase = school.phase?.lowercased() ?? ""
        let type = school.type?.lowercased() ?? ""
        let earlyYears = phase.contains("nursery") || type.contains("nursery") || type.contains("early years")
            || (rangeKnown && (high ?? 99) <= policy.earlyYearsMaximumAge)
        let held = contacts(school.urn)
        if policy.localAuthorities[school.localAuthorityCode] == nil {
            let where_ = "URN \(school.urn) is in \(school.localAuthorityName) (LA \(school.localAuthorityCode)), outside force \(incident.forceCode)'s local authorities"
            switch policy.outOfArea {
            case .record:
                return .success(.notNotified(urn: school.urn, reasons: reasons + [where_ + ": not notified (force protocol); recorded"]))
            case .notifyWhenContacts where held.isEmpty:
                return .success(.notNotified(urn: school.urn, reasons: reasons + [where_ + " and the MASH holds no contacts for it: not notified; recorded for referral"]))
            case .notifyWhenContacts:
                reasons.append(where_ + "; notified through the contacts the MASH holds for it")
            }
        }
        var channel = NoticeChannel.email
        if earlyYears {
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
        return .success(.notice(ResolvedSchool(
            urn: school.urn, name: school.name, localAuthorityCode: school.localAuthorityCode,
            localAuthorityName: school.localAuthorityName, phase: school.phase, earlyYears: earlyYears,
            postcode: school.postcode, contacts: held, channel: channel
        ), reasons: reasons))
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
