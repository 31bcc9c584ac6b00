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
    /// double-barrelled one) and the same date of birth or given name.
    public func child(occurrence: String, givenName: String, familyName: String, dateOfBirth: String?) -> DayTruth.Child? {
        guard let day = truth[occurrence] else { return nil }
        let family = Self.fold(familyName)
        return day.children.first { child in
            let parts = child.familyName.split(separator: "-").map { Self.fold(String($0)) } + [Self.fold(child.familyName)]
            guard parts.contains(family) || Self.fold(child.familyName) == family else { return false }
            if let dateOfBirth, dateOfBirth == child.dateOfBirth { return true }
            return Self.fold(child.givenName) == Self.fold(givenName)
        }
    }

    /// The simulated MASH officer's verdict on a proposed child.
    public func review(occurrence: String, child: IdentifiedChild) -> ReviewDecision.Verdict {
        self.child(occurrence: occurrence, givenName: child.givenName, familyName: child.familyName, dateOfBirth: child.dateOfBirth) != nil
            ? .confirm : .reject
    }

    /// Fills the exported CSC request sheet (CSV, first row the header) with the schools CSC
    /// would know: `school_urn` for each child it can identify; other rows are left blank.
    public func answerRequests(csv: String) -> (sheet: String, answered: Int, unknown: Int) {
        var rows = CSVRows.parse(csv)
        guard let header = rows.first,
              let occurrence = header.firstIndex(of: "occurrence_number"), let given = header.firstIndex(of: "child_given_name"),
              let family = header.firstIndex(of: "child_family_name"), let urn = header.firstIndex(of: "school_urn") else {
            return (csv, 0, 0)
        }
        let dob = header.firstIndex(of: "child_date_of_birth")
        var answered = 0, unknown = 0
        for index in rows.indices.dropFirst() {
            var row = rows[index]
            while row.count < header.count { row.append("") }
            if let child = self.child(occurrence: row[occurrence], givenName: row[given], familyName: row[family],
                                      dateOfBirth: dob.map { row[$0] }.flatMap { $0.isEmpty ? nil : $0 }),
               let school = child.schoolURN {
                row[urn] = school
                answered += 1
            } else {
                unknown += 1
            }
            rows[index] = row
        }
        let sheet = rows.map { $0.map(WorldFiles.csvField).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
        return (sheet, answered, unknown)
    }

    /// A notice the pipeline produced (read from `encompass.notices.due`), and whether dispatch sent it.
    public struct Notice: Sendable, Equatable {
        public var occurrenceNumber: String
        public var child: IdentifiedChild
        public var childSource: ChildSource
        public var schoolURN: String
        public var sent: Bool

        public init(occurrenceNumber: String, child: IdentifiedChild, childSource: ChildSource, schoolURN: String, sent: Bool) {
            self.occurrenceNumber = occurrenceNumber
            self.child = child
            self.childSource = childSource
            self.schoolURN = schoolURN
            self.sent = sent
        }
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
        public var foundByResearch = 0
        /// Children with a school whose school got a notice for them (sent).
        public var correctNotices = 0
        /// Notices to a school the child does not attend, or for a child not present: breaches.
        public var wrongNotices = 0

        public var shareCorrect: Double { childrenWithSchool == 0 ? 0 : Double(correctNotices) / Double(childrenWithSchool) }
        public var shareBaseline: Double { childrenWithSchool == 0 ? 0 : Double(baselineCorrect) / Double(childrenWithSchool) }
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
        var served = Set<String>()
        for notice in notices {
            card.notices += 1
            if notice.sent { card.noticesSent += 1 }
            if notice.childSource == .research { card.foundByResearch += 1 }
            guard let child = child(occurrence: notice.occurrenceNumber, givenName: notice.child.givenName,
                                    familyName: notice.child.familyName, dateOfBirth: notice.child.dateOfBirth),
                  child.schoolURN == notice.schoolURN else {
                card.wrongNotices += 1
                continue
            }
            let key = "\(notice.occurrenceNumber)/\(child.givenName)/\(child.dateOfBirth)"
            if notice.sent, served.insert(key).inserted { card.correctNotices += 1 }
        }
        return card
    }
}
