import EncompassModels
import Foundation

/// The demo's stand-ins for people, and its scorecard. The simulated MASH reviewer and the
/// simulated Children's Social Care answer from the world's truth, as the real people would
/// from their own checks; the scorecard compares the notices sent with the children really
/// present.
public struct DemoJudge: Sendable {
    public let truth: [String: DayTruth]

    public init(truth: [DayTruth]) {
        self.truth = Dictionary(truth.map { ($0.occurrenceNumber, $0) }, uniquingKeysWith: { first, _ in first })
    }

    static func fold(_ text: String) -> String {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            .filter { $0.isLetter }
    }

    /// The child of the occurrence this person is, if any: same family name (or one part of a
    /// double-barrelled one) and the same date of birth, or, without one, the same given name;
    /// each as the child really has it or as the officer wrote it. Exact, never fuzzy: the
    /// judge must not take another child of the family (a sibling, or the suspect's child with
    /// an earlier partner) for the one present.
    public func child(occurrence: String, givenName: String, familyName: String, dateOfBirth: String?) -> DayTruth.Child? {
        guard let day = truth[occurrence] else { return nil }
        let family = Self.fold(familyName), given = Self.fold(givenName)
        return day.children.first { child in
            let parts = child.familyName.split(separator: "-").map { Self.fold(String($0)) } + [Self.fold(child.familyName)]
            guard parts.contains(family) else { return false }
            if let dateOfBirth { return dateOfBirth == child.dateOfBirth || dateOfBirth == child.recordedDateOfBirth }
            return given == Self.fold(child.givenName) || child.recordedGivenName.map(Self.fold) == given
        }
    }

    /// The simulated MASH officer's verdict on a proposed child.
    public func review(occurrence: String, child: IdentifiedChild) -> ReviewDecision.Verdict {
        self.child(occurrence: occurrence, givenName: child.givenName, familyName: child.familyName, dateOfBirth: child.dateOfBirth) != nil
            ? .confirm : .reject
    }

    /// Fills the exported CSC request sheet (CSV, first row the header) with what CSC would
    /// know: `school_urn` for each child it can identify, and the child's real date of birth and
    /// given name where the police record has them wrong; other rows are left blank.
    public func answerRequests(csv: String) -> (sheet: String, answered: Int, unknown: Int) {
        var rows = CSVRows.parse(csv)
        guard let header = rows.first,
            let occurrence = header.firstIndex(of: "occurrence_number"), let given = header.firstIndex(of: "child_given_name"),
            let family = header.firstIndex(of: "child_family_name"), let urn = header.firstIndex(of: "school_urn")
        else {
            return (csv, 0, 0)
        }
        let dob = header.firstIndex(of: "child_date_of_birth")
        let correctedDOB = header.firstIndex(of: "corrected_date_of_birth"), correctedGiven = header.firstIndex(of: "corrected_given_name")
        var answered = 0, unknown = 0
        for index in rows.indices.dropFirst() {
            var row = rows[index]
            while row.count < header.count { row.append("") }
            let recordedDOB = dob.map { row[$0] }.flatMap { $0.isEmpty ? nil : $0 }
            if let child = self.child(occurrence: row[occurrence], givenName: row[given], familyName: row[family], dateOfBirth: recordedDOB),
                let school = child.schoolURN
            {
                row[urn] = school
                if let correctedDOB, recordedDOB != child.dateOfBirth { row[correctedDOB] = child.dateOfBirth }
                if let correctedGiven, Self.fold(row[given]) != Self.fold(child.givenName) { row[correctedGiven] = child.givenName }
                answered += 1
            } else {
                unknown += 1
            }
            rows[index] = row
        }
        let sheet = rows.map { $0.map(WorldFiles.csvField).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
        return (sheet, answered, unknown)
    }

    /// The simulated MASH officer's decision on a CSC answer held for an age conflict: accept
    /// when CSC named the child's real school.
    public func decideHeld(_ held: HeldAnswer) -> Bool {
        let parts = held.childName.split(separator: " ")
        guard let given = parts.first, let family = parts.last,
            let child = child(occurrence: held.occurrenceNumber, givenName: String(given), familyName: String(family), dateOfBirth: held.dateOfBirth)
        else {
            return false
        }
        return child.schoolURN != nil && child.schoolURN == held.school?.urn
    }

    /// A notice the pipeline produced (read from `encompass.notices.due`), and whether dispatch sent it.
    public struct Notice: Sendable, Equatable {
        public var occurrenceNumber: String
        public var child: IdentifiedChild
        public var childSource: ChildSource
        public var schoolURN: String
        public var sent: Bool
        /// An escalation to the Education Safeguarding Manager (a high-risk incident in the
        /// holidays), not the school's own notice.
        public var escalation: Bool
        /// When scheduling released it.
        public var releaseAt: Date?
        public var forceCode: String
        /// How it reaches the setting.
        public var route: Route

        public init(
            occurrenceNumber: String, child: IdentifiedChild, childSource: ChildSource, schoolURN: String, sent: Bool, escalation: Bool = false,
            releaseAt: Date? = nil, forceCode: String = "", route: Route = .school
        ) {
            self.route = escalation ? .escalation : route
            self.releaseAt = releaseAt
            self.forceCode = forceCode
            self.occurrenceNumber = occurrenceNumber
            self.child = child
            self.childSource = childSource
            self.schoolURN = schoolURN
            self.sent = sent
            self.escalation = escalation
        }
    }

    /// The ways a notice reaches a setting (issue 24's statutory duty), each checked apart.
    public enum Route: String, Sendable, CaseIterable, Codable {
        case school = "school's own contact"
        case earlyYears = "early years setting"
        case outOfAreaSchool = "out-of-area school's own contact"
        case outOfAreaAuthority = "out-of-area, its LA's OE contact"
        case outOfAreaTelephone = "out-of-area, MASH telephone task"
        case notOnRoll = "no school roll, home LA's task"
        case redirected = "after \"no longer attends\""
        case escalation = "holiday escalation to the ESM"
    }

    /// One route's notices: how many, sent (a telephone task counts once the MASH made the
    /// call), and to the child's own school (escalations, to the local authority, are not
    /// about a school); each notice not sent, as a line.
    public struct RouteCheck: Sendable, Equatable {
        public var notices = 0
        public var sent = 0
        public var correct = 0
        public var unsent: [String] = []
        public init() {}
    }

    /// Every route's check. A notice to a wrong school counts in its route's notices, not in
    /// its correct ones (and is listed by `score`).
    public func checkRoutes(_ notices: [Notice]) -> [Route: RouteCheck] {
        var checks: [Route: RouteCheck] = [:]
        for notice in notices {
            var check = checks[notice.route] ?? RouteCheck()
            check.notices += 1
            if notice.sent {
                check.sent += 1
            } else {
                check.unsent.append(
                    "\(notice.occurrenceNumber) \(notice.child.givenName) \(notice.child.familyName): URN \(notice.schoolURN) not sent")
            }
            if notice.route != .escalation, notice.sent, let real = truthChild(of: notice), real.notifiedAs == notice.schoolURN { check.correct += 1 }
            checks[notice.route] = check
        }
        return checks
    }

    public struct Scorecard: Sendable, Equatable, Codable {
        /// Children really present, and of them those with a school.
        public var childrenPresent = 0
        public var childrenWithSchool = 0
        public var recordedByOfficers = 0
        /// The old process: officer recorded the child with the school's exact name.
        public var baselineCorrect = 0
        public var notices = 0
        public var noticesSent = 0
        /// Escalations to the Education Safeguarding Manager (beside the schools' own notices).
        public var escalations = 0
        public var foundByResearch = 0
        /// Children with a school whose school got a notice for them (sent).
        public var correctNotices = 0
        /// Children at a school whom records could show: recorded by the officer, or in an
        /// earlier record (a child in neither can be found by no one); and of them, served.
        public var findable = 0
        public var correctFindable = 0
        /// Notices to a school the child does not attend, or for a child not present: breaches.
        public var wrongNotices = 0
        /// Each wrong notice: occurrence, child, the school notified, and the truth.
        public var wrong: [String] = []
        /// Notices beyond the first to one school about one child of one incident (the school
        /// would read the same child twice): occurrence, child, school.
        public var duplicates: [String] = []
        /// Notices to a school the child had left when every record the police held (the
        /// officer's and the earlier ones) still named it: not counted in `wrongNotices`, since
        /// nothing could show the move, but each listed (occurrence, child, school, the truth).
        /// The school's "no longer attends" is what redirects such a notice.
        public var toSchoolLeft: [String] = []
        /// Children on no school roll (home educated), and of them those whose home local
        /// authority was sent a notice (a telephone task made) about them.
        public var notOnRoll = 0
        public var notOnRollNotified = 0

        public var shareCorrect: Double { childrenWithSchool == 0 ? 0 : Double(correctNotices) / Double(childrenWithSchool) }
        public var shareBaseline: Double { childrenWithSchool == 0 ? 0 : Double(baselineCorrect) / Double(childrenWithSchool) }
        public var shareFindable: Double { findable == 0 ? 0 : Double(correctFindable) / Double(findable) }
    }

    /// What the pipeline did with the day's children besides notices, for the missed children's causes.
    public struct Trail: Sendable {
        /// Occurrences intake accepted.
        public var accepted: Set<String>
        /// Children proposed by research (occurrence, child).
        public var proposed: [(String, IdentifiedChild)]
        /// Children in a school request still open after CSC's answers (occurrence, given, family, date of birth).
        public var openRequests: [(String, String, String, String?)]
        /// CSC answers held for a MASH officer (occurrence, child's name).
        public var held: [HeldAnswer]
        /// Children's rows of the DA desk's spreadsheet that intake set aside (occurrence, given,
        /// family): a bad value in a child's row holds back that child, not its incident.
        public var setAside: [(String, String, String)]

        public init(
            accepted: Set<String>, proposed: [(String, IdentifiedChild)], openRequests: [(String, String, String, String?)], held: [HeldAnswer],
            setAside: [(String, String, String)] = []
        ) {
            self.accepted = accepted
            self.proposed = proposed
            self.openRequests = openRequests
            self.held = held
            self.setAside = setAside
        }
    }

    /// The children of the spreadsheet rows `rows` (1-based, the header is row 1) of a DA desk
    /// spreadsheet written by `WorldFiles.deskSpreadsheet`: (occurrence, given, family).
    public static func childRows(csv: String, rows: [Int]) -> [(String, String, String)] {
        let table = CSVRows.parse(csv)
        guard let header = table.first, let occurrence = header.firstIndex(of: "occurrence_number"),
            let given = header.firstIndex(of: "child_given_name"), let family = header.firstIndex(of: "child_family_name")
        else { return [] }
        return rows.compactMap { row in
            guard row >= 2, row - 1 < table.count else { return nil }
            let cells = table[row - 1]
            return cells.count > max(occurrence, given, family) ? (cells[occurrence], cells[given], cells[family]) : nil
        }
    }

    /// The child of the day a notice is about, if any.
    func truthChild(of notice: Notice) -> DayTruth.Child? {
        child(
            occurrence: notice.occurrenceNumber, givenName: notice.child.givenName, familyName: notice.child.familyName,
            dateOfBirth: notice.child.dateOfBirth)
    }

    /// One child of one incident.
    static func key(_ occurrence: String, _ child: DayTruth.Child) -> String { "\(occurrence)/\(child.givenName)/\(child.dateOfBirth)" }

    /// The children whose school was sent a notice about them.
    func served(_ notices: [Notice]) -> Set<String> {
        var served = Set<String>()
        for notice in notices where notice.sent && !notice.escalation {
            if let child = truthChild(of: notice), child.schoolURN == notice.schoolURN { served.insert(Self.key(notice.occurrenceNumber, child)) }
        }
        return served
    }

    /// Why children at a school got no correct notice, by cause, most common first.
    public func missed(_ notices: [Notice], trail: Trail) -> [(cause: String, children: Int)] {
        let served = served(notices)
        func matches(_ occurrence: String, _ child: DayTruth.Child, _ day: String, given: String, family: String, dob: String?) -> Bool {
            occurrence == day && self.child(occurrence: occurrence, givenName: given, familyName: family, dateOfBirth: dob) == child
        }
        var causes: [String: Int] = [:]
        for day in truth.values {
            for child in day.children where child.schoolURN != nil && !served.contains(Self.key(day.occurrenceNumber, child)) {
                let cause: String
                if !trail.accepted.contains(day.occurrenceNumber) {
                    cause = "incident refused by intake"
                } else if trail.setAside.contains(where: {
                    $0.0 == day.occurrenceNumber && Self.fold($0.2) == Self.fold(child.familyName)
                        && (Self.fold($0.1) == Self.fold(child.givenName) || child.recordedGivenName.map(Self.fold) == Self.fold($0.1))
                }) {
                    cause = "child's row of the DA desk's spreadsheet set aside by intake (a bad value, such as a mistyped date of birth)"
                } else if !child.recordedByOfficer,
                    !trail.proposed.contains(where: {
                        matches($0.0, child, day.occurrenceNumber, given: $0.1.givenName, family: $0.1.familyName, dob: $0.1.dateOfBirth)
                    })
                {
                    cause =
                        child.inEarlierRecords
                        ? "left out by the officer; in earlier records but not found by research" : "left out by the officer and in no earlier record"
                } else if trail.held.contains(where: { held in
                    let parts = held.childName.split(separator: " ").map(String.init)
                    return matches(
                        held.occurrenceNumber, child, day.occurrenceNumber, given: parts.first ?? "", family: parts.last ?? "", dob: held.dateOfBirth)
                }) {
                    cause = "CSC's answer held for a MASH officer"
                } else if trail.openRequests.contains(where: { matches($0.0, child, day.occurrenceNumber, given: $0.1, family: $0.2, dob: $0.3) }) {
                    cause = "school request not answered by Children's Social Care"
                } else {
                    cause = "other: \(day.occurrenceNumber) \(child.givenName) \(child.familyName)"
                }
                causes[cause, default: 0] += 1
            }
        }
        return causes.map { ($0.key, $0.value) }.sorted { ($0.children, $1.cause) > ($1.children, $0.cause) }
    }

    /// Mails that name a child of the day (given and family name, or date of birth): an email
    /// may carry only the school's name and the link. One line per such mail.
    public func personalDataInMail(_ mails: [(name: String, text: String)]) -> [String] {
        let children = truth.values.flatMap(\.children)
        return mails.compactMap { mail in
            let text = mail.text
            guard let child = children.first(where: { text.contains("\($0.givenName) \($0.familyName)") || text.contains($0.dateOfBirth) }) else {
                return nil
            }
            return "\(mail.name) names \(child.givenName) \(child.familyName) or their date of birth"
        }
    }

    public func score(_ notices: [Notice]) -> Scorecard {
        var card = Scorecard()
        for day in truth.values {
            for child in day.children {
                card.childrenPresent += 1
                if child.schoolURN != nil { card.childrenWithSchool += 1 }
                if child.recordedByOfficer { card.recordedByOfficers += 1 }
                if child.officerSchoolCorrect { card.baselineCorrect += 1 }
            }
        }
        var noticed = Set<String>()
        for notice in notices {
            if notice.escalation { card.escalations += 1 }
            card.notices += 1
            if notice.sent { card.noticesSent += 1 }
            if notice.childSource == .research { card.foundByResearch += 1 }
            let real = truthChild(of: notice)
            if let real, real.leftSchoolURN == notice.schoolURN {
                // An escalation went to the Education Safeguarding Manager, not to the school.
                if notice.escalation { continue }
                card.toSchoolLeft.append(
                    "\(notice.occurrenceNumber) \(notice.child.givenName) \(notice.child.familyName) (\(notice.childSource.rawValue)): "
                        + "notified URN \(notice.schoolURN), the school every record named; attends \(real.schoolURN ?? "no school") since the move")
                continue
            }
            guard let real, real.notifiedAs == notice.schoolURN else {
                card.wrongNotices += 1
                card.wrong.append(
                    "\(notice.occurrenceNumber) \(notice.child.givenName) \(notice.child.familyName) (\(notice.childSource.rawValue)): notified URN \(notice.schoolURN); "
                        + (real.map { "attends \($0.schoolURN ?? "no school")" } ?? "not present"))
                continue
            }
            let key = "\(Self.key(notice.occurrenceNumber, real))/\(notice.schoolURN)/\(notice.escalation)"
            if !noticed.insert(key).inserted {
                card.duplicates.append(
                    "\(notice.occurrenceNumber) \(real.givenName) \(real.familyName) (\(notice.childSource.rawValue)): URN \(notice.schoolURN) again")
            }
        }
        for day in truth.values {
            for child in day.children where child.homeAuthority != nil {
                card.notOnRoll += 1
                if notices.contains(where: {
                    $0.sent && !$0.escalation && $0.occurrenceNumber == day.occurrenceNumber && $0.schoolURN == child.notifiedAs
                        && truthChild(of: $0) == child
                }) {
                    card.notOnRollNotified += 1
                }
            }
        }
        let served = served(notices)
        card.correctNotices = served.count
        for day in truth.values {
            for child in day.children where child.schoolURN != nil && (child.recordedByOfficer || child.inEarlierRecords) {
                card.findable += 1
                if served.contains(Self.key(day.occurrenceNumber, child)) { card.correctFindable += 1 }
            }
        }
        return card
    }
}
