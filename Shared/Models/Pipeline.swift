import Foundation

// The messages between child research, school resolution, scheduling and dispatch.
// docs/ARCHITECTURE.md shows which topic carries which, and with which key.

/// A child linked to an incident, as child research passes it on: recorded by the officer,
/// or found in earlier records and confirmed by a MASH officer.
public struct IdentifiedChild: Codable, Sendable, Equatable {
    /// Stable id of the child (the person in child research's index): the same child in two
    /// incidents keeps one id where the records match.
    public var childId: String
    public var givenName: String
    public var familyName: String
    /// ISO date (YYYY-MM-DD), when known (recorded, or filled from history).
    public var dateOfBirth: String?
    /// Age in whole years when no date of birth is known.
    public var ageYears: Int?
    public var homeAddress: PostalAddress?
    public var presence: ChildPresence
    /// The school as recorded by the officer or as last held in earlier records; unverified.
    public var recordedSchool: RecordedSchool?
    /// How the child relates to the incident's adults, e.g. `child of victim`, when known.
    public var relationship: String?
    /// Where `recordedSchool` came from when it was carried over from an earlier record (nil:
    /// recorded with this incident). School resolution treats such a school as old evidence.
    public var schoolOrigin: SchoolRecordOrigin?

    public init(
        childId: String, givenName: String, familyName: String, dateOfBirth: String? = nil, ageYears: Int? = nil,
        homeAddress: PostalAddress? = nil, presence: ChildPresence = .present, recordedSchool: RecordedSchool? = nil,
        relationship: String? = nil, schoolOrigin: SchoolRecordOrigin? = nil
    ) {
        self.childId = childId
        self.givenName = givenName
        self.familyName = familyName
        self.dateOfBirth = dateOfBirth
        self.ageYears = ageYears
        self.homeAddress = homeAddress
        self.presence = presence
        self.recordedSchool = recordedSchool
        self.relationship = relationship
        self.schoolOrigin = schoolOrigin
    }

    /// Whole years on `date` (Europe/London calendar), from the date of birth or the recorded age.
    public func age(on date: Date) -> Int? {
        guard let dateOfBirth, let birth = CalendarDate(iso: dateOfBirth) else { return ageYears }
        let day = CalendarDate(date)
        var years = day.year - birth.year
        if (day.month, day.day) < (birth.month, birth.day) { years -= 1 }
        return years
    }
}

/// The earlier record a child's school was carried over from.
public struct SchoolRecordOrigin: Codable, Sendable, Equatable, Hashable {
    /// Occurrence number of the earlier record.
    public var occurrenceNumber: String
    /// The day of that record (ISO `YYYY-MM-DD`).
    public var recordedOn: String
    /// The child's home postcode in that record, when it had one.
    public var homePostcode: String?

    public init(occurrenceNumber: String, recordedOn: String, homePostcode: String? = nil) {
        self.occurrenceNumber = occurrenceNumber
        self.recordedOn = recordedOn
        self.homePostcode = homePostcode
    }
}

/// How a child came to be linked to the incident.
public enum ChildSource: String, Codable, Sendable, CaseIterable {
    /// Linked by the attending officer.
    case officer
    /// Found by child research in earlier records and confirmed by a MASH officer (or above
    /// the force's confident-match threshold).
    case research
}

/// Why child research proposed a child: the score and what matched.
public struct ResearchEvidence: Codable, Sendable, Equatable {
    /// 0...1.
    public var score: Double
    /// Human-readable reasons, e.g. `address: same flat and postcode as 43190000123 (2024-03-02)`.
    public var explanation: [String]
    /// Occurrence numbers of the earlier records the child was found in.
    public var sourceOccurrences: [String]
    /// The reviewing officer, or `auto` when the force's protocol turned automatic confirmation on
    /// and the score reached its threshold.
    public var confirmedBy: String?
    public var confirmedAt: Date?

    public init(score: Double, explanation: [String], sourceOccurrences: [String], confirmedBy: String? = nil, confirmedAt: Date? = nil) {
        self.score = score
        self.explanation = explanation
        self.sourceOccurrences = sourceOccurrences
        self.confirmedBy = confirmedBy
        self.confirmedAt = confirmedAt
    }
}

/// `encompass.children` (key: child id): one message per (incident, child).
/// A later revision of the incident re-sends its children with a higher `incidentRevision`.
public struct ChildIdentified: MessagePayload {
    public static let schema = "encompass.child-identified"
    public static let schemaVersion = 1

    public var incident: Incident
    /// The intake revision of the incident this was derived from.
    public var incidentRevision: Int
    public var child: IdentifiedChild
    public var source: ChildSource
    public var evidence: ResearchEvidence?

    public init(incident: Incident, incidentRevision: Int, child: IdentifiedChild, source: ChildSource, evidence: ResearchEvidence? = nil) {
        self.incident = incident
        self.incidentRevision = incidentRevision
        self.child = child
        self.source = source
        self.evidence = evidence
    }

    /// Stable id of the notice for this (incident, child): the key downstream.
    public var noticeKey: String { NoticeID.make(forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber, childId: child.childId) }
}

/// A MASH officer's decision on a proposed child.
/// `encompass.review.decisions` (key: occurrence number).
public struct ReviewDecision: MessagePayload {
    public static let schema = "encompass.review-decision"
    public static let schemaVersion = 1

    public enum Verdict: String, Codable, Sendable, CaseIterable { case confirm, reject }

    public var forceCode: String
    public var occurrenceNumber: String
    /// The proposal's id, as listed by `encompass review list`.
    public var proposalId: String
    public var verdict: Verdict
    public var reviewer: String
    public var decidedAt: Date
    public var note: String?

    public init(
        forceCode: String, occurrenceNumber: String, proposalId: String, verdict: Verdict, reviewer: String, decidedAt: Date, note: String? = nil
    ) {
        self.forceCode = forceCode
        self.occurrenceNumber = occurrenceNumber
        self.proposalId = proposalId
        self.verdict = verdict
        self.reviewer = reviewer
        self.decidedAt = decidedAt
        self.note = note
    }
}

/// The latest state of one proposed child on the review queue.
/// `encompass.review.proposals` (key: proposal id, compacted). Published by the instance that
/// owns the occurrence whenever the proposal changes; every child-research instance keeps the
/// highest `version` of each, so any instance lists the whole queue and accepts any decision.
public struct ReviewProposalState: MessagePayload {
    public static let schema = "encompass.review-proposal"
    public static let schemaVersion = 1

    public var proposalId: String
    public var forceCode: String
    public var occurrenceNumber: String
    public var child: IdentifiedChild
    public var evidence: ResearchEvidence
    /// `pending`, `confirmed`, `rejected` or `withdrawn` (no longer applies after an amendment).
    public var status: String
    public var createdAt: Date
    public var decidedBy: String?
    public var decidedAt: Date?
    /// The reviewer's note, or why the proposal was withdrawn.
    public var note: String?
    /// Increases with every change; a replica ignores a state older than the one it holds.
    public var version: Int

    public init(
        proposalId: String, forceCode: String, occurrenceNumber: String, child: IdentifiedChild, evidence: ResearchEvidence,
        status: String, createdAt: Date, decidedBy: String? = nil, decidedAt: Date? = nil, note: String? = nil, version: Int
    ) {
        self.proposalId = proposalId
        self.forceCode = forceCode
        self.occurrenceNumber = occurrenceNumber
        self.child = child
        self.evidence = evidence
        self.status = status
        self.createdAt = createdAt
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
        self.note = note
        self.version = version
    }
}

/// One safeguarding contact of a school, kept by the MASH.
public struct SchoolContact: Codable, Sendable, Equatable, Hashable {
    /// `dsl` (designated safeguarding lead), `deputy-dsl`, `da-lead`, `office`, `esm` …
    public var role: String
    public var name: String?
    public var email: String?
    public var phone: String?

    public init(role: String, name: String? = nil, email: String? = nil, phone: String? = nil) {
        self.role = role
        self.name = name
        self.email = email
        self.phone = phone
    }

    /// What makes the contact a placeholder, e.g. `email x@la.example`, `phone 01223 000000`
    /// (shipped files and demos carry reserved example domains and 000000 numbers until the
    /// real contact is put in); empty when it looks real.
    public var placeholders: [String] {
        var problems: [String] = []
        if let email, Self.isPlaceholder(email: email) { problems.append("email \(email)") }
        if let phone, phone.filter(\.isNumber).contains("000000") { problems.append("phone \(phone)") }
        return problems
    }

    /// Reserved example domains (RFC 2606 / 6761): never a real mailbox.
    public static func isPlaceholder(email: String) -> Bool {
        let domain = email.split(separator: "@").last.map { $0.lowercased() } ?? ""
        return ["example", "example.com", "example.org", "example.net"].contains(domain)
            || [".example", ".invalid", ".test", ".localhost"].contains { domain.hasSuffix($0) }
    }
}

/// How a notice reaches the setting.
public enum NoticeChannel: String, Codable, Sendable, CaseIterable {
    /// An email with a link to the notice page (no personal data in the email).
    case email
    /// A task for MASH staff to telephone the setting (e.g. early years in Cambridgeshire).
    case telephone
}

/// A school verified against the register.
public struct ResolvedSchool: Codable, Sendable, Equatable {
    /// The words school resolution puts in a notice's resolution when the school is out of the
    /// force's area and no contact is held for it nor for its local authority: dispatch makes
    /// the MASH a telephone task to reach the school.
    public static let unroutedOutOfArea = "out of area, no contact held"

    public var urn: String
    public var name: String
    /// DfE local authority code, e.g. `871` (Slough).
    public var localAuthorityCode: String
    public var localAuthorityName: String
    /// DfE phase, e.g. `Primary`, `Secondary`, `Nursery`, `All-through`.
    public var phase: String?
    public var earlyYears: Bool
    public var postcode: String?
    public var contacts: [SchoolContact]
    public var channel: NoticeChannel

    public init(
        urn: String, name: String, localAuthorityCode: String, localAuthorityName: String, phase: String? = nil,
        earlyYears: Bool = false, postcode: String? = nil, contacts: [SchoolContact] = [], channel: NoticeChannel = .email
    ) {
        self.urn = urn
        self.name = name
        self.localAuthorityCode = localAuthorityCode
        self.localAuthorityName = localAuthorityName
        self.phase = phase
        self.earlyYears = earlyYears
        self.postcode = postcode
        self.contacts = contacts
        self.channel = channel
    }
}

/// `encompass.notice.requests` (key: notice id): a child whose school is verified, to be
/// scheduled. Re-sent with the same notice id when the incident is amended.
public struct NoticeRequested: MessagePayload {
    public static let schema = "encompass.notice-requested"
    public static let schemaVersion = 1

    public var noticeId: String
    public var incident: Incident
    public var incidentRevision: Int
    public var child: IdentifiedChild
    public var childSource: ChildSource
    public var school: ResolvedSchool
    /// How the school was found and verified, e.g. `recorded name "St Marys CE Prim" matched URN 109955 (0.93)`.
    public var resolution: [String]

    public init(
        noticeId: String, incident: Incident, incidentRevision: Int, child: IdentifiedChild, childSource: ChildSource, school: ResolvedSchool,
        resolution: [String]
    ) {
        self.noticeId = noticeId
        self.incident = incident
        self.incidentRevision = incidentRevision
        self.child = child
        self.childSource = childSource
        self.school = school
        self.resolution = resolution
    }
}

/// `encompass.notices.due` (key: notice id): released by scheduling at the release time.
public struct NoticeDue: MessagePayload {
    public static let schema = "encompass.notice-due"
    public static let schemaVersion = 1

    public var request: NoticeRequested
    /// The planned release time.
    public var releaseAt: Date
    /// Sent to the education safeguarding manager now instead of the school later
    /// (high risk during a school holiday).
    public var escalation: Bool
    /// Whom to notify instead of the school's contacts when `escalation`.
    public var escalationContact: SchoolContact?
    /// The rules that decided the release time, in order.
    public var rules: [String]

    public init(request: NoticeRequested, releaseAt: Date, escalation: Bool = false, escalationContact: SchoolContact? = nil, rules: [String]) {
        self.request = request
        self.releaseAt = releaseAt
        self.escalation = escalation
        self.escalationContact = escalationContact
        self.rules = rules
    }

    public var noticeId: String { request.noticeId }
}

/// `encompass.notice.events` (key: notice id): a notice's life, for audit.
public struct NoticeEvent: MessagePayload {
    public static let schema = "encompass.notice-event"
    public static let schemaVersion = 1

    public enum Kind: String, Codable, Sendable, CaseIterable {
        case scheduled, rescheduled, escalated, released, sent, deliveredToRelay = "delivered-to-relay"
        case telephoneTask = "telephone-task", viewed, acknowledged, feedback, failed, cancelled, flagged
        /// A dispatch instance took the notice (`claimant`). Dispatch instances agree on the
        /// first claim in the topic's order: only that instance sends (docs/DISPATCH.md).
        case claimed
        /// School resolution, after the school said the pupil no longer attends: a request to
        /// Children's Social Care for the child's current school is open (its id in `detail`).
        case redirectRequested = "redirect-requested"
        /// School resolution: the child's current school is verified and the notice goes there,
        /// under the redirect's own notice id (in `detail`).
        case redirected
    }

    public var noticeId: String
    public var kind: Kind
    public var at: Date
    public var forceCode: String
    public var occurrenceNumber: String
    public var schoolURN: String?
    /// Plain words, no personal data (e.g. `release 2026-11-24T08:00:00Z: next school day`).
    public var detail: String?
    /// For `claimed`: the identity of the dispatch store that took the notice (made once per
    /// store, so it survives restarts; the instance's name is in `detail`).
    public var claimant: String?
    /// For `claimed`: the claimant this claim takes over from (a notice restored from the
    /// changelog after its store was lost, resent by the MASH). It wins only if that claimant
    /// is the notice's winner when the claim is read, in the topic's order; a plain claim
    /// (without it) wins only as the first.
    public var supersedes: String?

    public init(
        noticeId: String, kind: Kind, at: Date, forceCode: String, occurrenceNumber: String, schoolURN: String? = nil,
        detail: String? = nil, claimant: String? = nil, supersedes: String? = nil
    ) {
        self.supersedes = supersedes
        self.noticeId = noticeId
        self.kind = kind
        self.at = at
        self.forceCode = forceCode
        self.occurrenceNumber = occurrenceNumber
        self.schoolURN = schoolURN
        self.detail = detail
        self.claimant = claimant
    }

    public func validationErrors() -> [FieldError] {
        var errors: [FieldError] = []
        if noticeId.isEmpty { errors.append(FieldError("noticeId", "is empty")) }
        if kind == .claimed && (claimant ?? "").isEmpty {
            errors.append(FieldError("claimant", "is required for a claimed event (the dispatch store that took the notice)"))
        }
        return errors
    }
}

/// Whose notice password opens a notice page (`NoticeRow.account` in dispatch, the key of
/// `encompass.dispatch.accounts`): a school's URN or Ofsted `EY` reference; `LA<code>` for a
/// local authority (a child on no school roll, notified to its home LA); `ESM<force code>` for
/// a force's Education Safeguarding Manager, who receives the force's holiday escalations
/// whichever local authority the child's school is in (a school across the border included).
public enum NoticeAccount {
    /// `ESM43`: the account of force 43's Education Safeguarding Manager.
    public static func educationSafeguardingManager(forceCode: String) -> String { "ESM" + forceCode }

    /// The force code of an `ESM<force code>` account (two digits), nil for any other account.
    public static func educationSafeguardingManagerForce(_ account: String) -> String? {
        guard account.hasPrefix("ESM") else { return nil }
        let code = account.dropFirst(3)
        return code.count == 2 && code.allSatisfy { $0.isASCII && $0.isNumber } ? String(code) : nil
    }
}

/// `encompass.dispatch.accounts` (key: account, compacted): a school's (or a local authority's,
/// or a force's Education Safeguarding Manager's) notice password, set through one dispatch instance's API and read by every instance, so a
/// notice page signs in whichever instance sent the notice. Carries the PBKDF2 hash only.
public struct AccountPassword: MessagePayload {
    public static let schema = "encompass.account-password"
    public static let schemaVersion = 1

    /// A school URN or EY reference, `LA<code>` for a local authority, or `ESM<force code>` for
    /// a force's Education Safeguarding Manager (`NoticeAccount`).
    public var account: String
    /// `pbkdf2-sha256$<iterations>$<salt>$<hash>` as dispatch stores it.
    public var hash: String
    public var setAt: Date
    /// Who set it (the MASH user named in the API call).
    public var setBy: String

    public init(account: String, hash: String, setAt: Date, setBy: String) {
        self.account = account
        self.hash = hash
        self.setAt = setAt
        self.setBy = setBy
    }

    public func validationErrors() -> [FieldError] {
        var errors: [FieldError] = []
        if account.isEmpty { errors.append(FieldError("account", "is empty")) }
        if !hash.hasPrefix("pbkdf2-sha256$") { errors.append(FieldError("hash", "is not a pbkdf2-sha256 hash")) }
        return errors
    }
}

/// `encompass.school.feedback` (key: child id): what a school told dispatch about a child.
public struct SchoolFeedback: MessagePayload {
    public static let schema = "encompass.school-feedback"
    public static let schemaVersion = 1

    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The pupil no longer attends this school: unlink and stop notices to it.
        case noLongerAttends = "no-longer-attends"
    }

    public var childId: String
    public var noticeId: String
    public var schoolURN: String
    public var kind: Kind
    public var reportedAt: Date
    /// Who reported it (the school's signed-in user), for the audit.
    public var reportedBy: String
    public var note: String?

    public init(childId: String, noticeId: String, schoolURN: String, kind: Kind, reportedAt: Date, reportedBy: String, note: String? = nil) {
        self.childId = childId
        self.noticeId = noticeId
        self.schoolURN = schoolURN
        self.kind = kind
        self.reportedAt = reportedAt
        self.reportedBy = reportedBy
        self.note = note
    }
}

/// `encompass.notice.requests` (key: notice id), beside `NoticeRequested`: a pending notice is
/// to be withdrawn because its school said the pupil no longer attends. On the requests topic
/// so that it reaches the scheduling instance holding the notice, after the notice's request.
/// Scheduling cancels the notice only while it is pending and still for `schoolURN`.
public struct NoticeCancelled: MessagePayload {
    public static let schema = "encompass.notice-cancelled"
    public static let schemaVersion = 1

    public var noticeId: String
    public var forceCode: String
    public var occurrenceNumber: String
    /// The school the notice must no longer go to.
    public var schoolURN: String
    /// Plain words, no personal data, e.g. `URN 110001 reported on 2026-11-24 that the pupil no longer attends`.
    public var reason: String
    public var requestedAt: Date
    /// The notice that replaces this one (the redirect to the child's current school), when one is open.
    public var replacedBy: String?

    public init(
        noticeId: String, forceCode: String, occurrenceNumber: String, schoolURN: String, reason: String, requestedAt: Date,
        replacedBy: String? = nil
    ) {
        self.noticeId = noticeId
        self.forceCode = forceCode
        self.occurrenceNumber = occurrenceNumber
        self.schoolURN = schoolURN
        self.reason = reason
        self.requestedAt = requestedAt
        self.replacedBy = replacedBy
    }

    public func validationErrors() -> [FieldError] {
        var errors: [FieldError] = []
        if noticeId.isEmpty { errors.append(FieldError("noticeId", "is empty")) }
        if schoolURN.isEmpty { errors.append(FieldError("schoolURN", "is empty: name the school the notice must not go to")) }
        if reason.isEmpty { errors.append(FieldError("reason", "is empty: say why the notice is cancelled (it goes to the audit)")) }
        return errors
    }
}

/// Notice ids: stable per (force, occurrence, child), so re-processing and amendments keep one
/// notice per child per incident.
public enum NoticeID {
    public static func make(forceCode: String, occurrenceNumber: String, childId: String) -> String {
        "n-" + String(StableHash.hex128("\(forceCode)\u{1F}\(occurrenceNumber)\u{1F}\(childId)").prefix(24))
    }

    /// The notice that replaces `noticeId` once the school `urn` said the pupil no longer
    /// attends: its own id (dispatch and scheduling keep one notice per id, and the first one
    /// was sent), stable so a re-delivered report opens the same redirect.
    public static func redirect(of noticeId: String, awayFrom urn: String) -> String {
        noticeId + "-r" + String(StableHash.hex128("\(noticeId)\u{1F}\(urn)").prefix(8))
    }
}

/// A day of the Europe/London calendar (what "school day" and "date of birth" mean).
public struct CalendarDate: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// `YYYY-MM-DD`, when it is a real calendar date.
    public init?(iso text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2])
        else { return nil }
        var components = DateComponents(year: y, month: m, day: d)
        components.calendar = CalendarDate.london
        guard components.isValidDate else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// `DD/MM/YYYY` (the UK's order, as spreadsheets often hold dates), when a real date.
    public init?(dayMonthYear text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, (1...2).contains(parts[0].count), (1...2).contains(parts[1].count), parts[2].count == 4,
            let d = Int(parts[0]), let m = Int(parts[1]), let y = Int(parts[2])
        else { return nil }
        self.init(iso: CalendarDate(year: y, month: m, day: d).description)
    }

    /// The London calendar day of an instant.
    public init(_ date: Date) {
        let c = CalendarDate.london.dateComponents([.year, .month, .day], from: date)
        self.init(year: c.year!, month: c.month!, day: c.day!)
    }

    public static let london: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/London")!
        calendar.locale = Locale(identifier: "en_GB_POSIX")
        return calendar
    }()

    public var description: String {
        Self.padded(year, 4) + "-" + Self.padded(month, 2) + "-" + Self.padded(day, 2)
    }

    /// `value` in decimal with leading zeros to `width` digits (`String(format:)` costs
    /// microseconds, and scheduling formats dates for every notice).
    public static func padded(_ value: Int, _ width: Int) -> String {
        let digits = String(value.magnitude)
        let zeros = String(repeating: "0", count: max(0, width - digits.count))
        return (value < 0 ? "-" : "") + zeros + digits
    }

    public static func < (lhs: CalendarDate, rhs: CalendarDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    /// The instant of `hour:minute` London time on this day (DST-aware).
    public func at(hour: Int, minute: Int = 0) -> Date {
        CalendarDate.london.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute))!
    }

    public func adding(days: Int) -> CalendarDate {
        CalendarDate(CalendarDate.london.date(byAdding: .day, value: days, to: at(hour: 12))!)
    }

    /// 1 = Monday … 7 = Sunday.
    public var isoWeekday: Int {
        let weekday = CalendarDate.london.component(.weekday, from: at(hour: 12)) // 1 = Sunday
        return weekday == 1 ? 7 : weekday - 1
    }
}

/// English school years: a year runs from 1 September to 31 August, and a child's year group
/// follows the age on the 31 August before the year starts (Reception 4, Year 6 10, Year 7 11,
/// Year 11 15, Year 12 16). A school's statutory age range `low`-`high` takes the children whose
/// school-year age is `low` to `high - 1` (a child turns `high` during the last year).
public enum SchoolYear {
    /// The calendar year in which the school year containing `day` began.
    public static func startYear(of day: CalendarDate) -> Int { day.month >= 9 ? day.year : day.year - 1 }

    /// Age on 31 August before the school year containing `day` starts.
    public static func age(born birth: CalendarDate, during day: CalendarDate) -> Int {
        var age = startYear(of: day) - birth.year
        if (birth.month, birth.day) > (8, 31) { age -= 1 }
        return age
    }

    /// The school-year ages a child could have when only its age in whole years on `day` is
    /// known: that age, or one less when the birthday fell since 1 September.
    public static func possibleAges(ageOn day: CalendarDate, age: Int) -> ClosedRange<Int> {
        day.month == 8 && day.day == 31 ? age...age : (age - 1)...age
    }

    /// Whether a school with the statutory range `low`-`high` takes a child of school-year age
    /// `age` (from `youngest(low:)` to `high - 1`).
    public static func fits(age: Int, low: Int, high: Int) -> Bool {
        age >= youngest(low: low) && age <= high - 1
    }

    /// The youngest school-year age a school of statutory low age `low` takes: `low`, but a
    /// nursery class (a low age of 3 or under) also takes the year of the third birthday, from
    /// the term after it, and a primary listed from 5 (compulsory school age, as many are)
    /// takes Reception, the year children turn 5.
    public static func youngest(low: Int) -> Int {
        low <= 3 ? low - 1 : low == 5 ? 4 : low
    }

    /// Where most children change school in England: nursery to Reception (4), Year 6 to Year 7
    /// (11), Year 11 to post-16 (16). A first or middle school (its whole range within 4-14)
    /// is not left at 11; its own range marks its transfers.
    public static func transfers(low: Int, high: Int) -> [Int] {
        let middleSystem = low >= 4 && high <= 14 && high != 11
        return [4, 11, 16].filter { !(middleSystem && $0 == 11) }
    }
}
