import Foundation

/// `encompass.school-resolution.changelog` (compacted, key: child id, like
/// `encompass.children`): a child's open requests to Children's Social Care and the CSC answers
/// held for a MASH officer, as the school resolution instance that owns the child holds them.
/// A child with nothing open has a tombstone instead (answered, closed or purged), so
/// compaction drops the child's record. Every instance keeps the latest record per child; the
/// next owner of the child's partition restores them (docs/ARCHITECTURE.md, "Rebalance").
public struct SchoolRequestsChangelog: MessagePayload {
    public static let schema = "encompass.school-requests-changelog"
    public static let schemaVersion = 1

    /// One open request (status `open`) or held answer (status `review`).
    public struct Request: Codable, Sendable, Equatable {
        /// The notice id of the (incident, child).
        public var requestId: String
        public var forceCode: String
        public var occurrenceNumber: String
        public var lpa: String
        public var reason: String
        /// The candidate schools, as the request keeps them (a JSON array of match candidates).
        public var candidates: String
        /// The child as identified (names, date of birth, address): what CSC is asked about.
        public var child: ChildIdentified
        public var causationId: String
        /// `open` (waiting for Children's Social Care) or `review` (CSC's answer held for a MASH officer).
        public var status: String
        public var createdAt: Date
        public var updatedAt: Date
        public var exportedAt: Date?
        public var note: String?
        /// With status `review`: the school Children's Social Care named, and why it is held.
        public var reviewSchool: RecordedSchool?
        public var reviewReason: String?
        /// A redirect: the notice whose school said the pupil no longer attends.
        public var redirectOf: String?

        public init(
            requestId: String, forceCode: String, occurrenceNumber: String, lpa: String, reason: String, candidates: String,
            child: ChildIdentified, causationId: String, status: String, createdAt: Date, updatedAt: Date, exportedAt: Date?,
            note: String?, reviewSchool: RecordedSchool?, reviewReason: String?, redirectOf: String?
        ) {
            self.requestId = requestId
            self.forceCode = forceCode
            self.occurrenceNumber = occurrenceNumber
            self.lpa = lpa
            self.reason = reason
            self.candidates = candidates
            self.child = child
            self.causationId = causationId
            self.status = status
            self.createdAt = createdAt
            self.updatedAt = updatedAt
            self.exportedAt = exportedAt
            self.note = note
            self.reviewSchool = reviewSchool
            self.reviewReason = reviewReason
            self.redirectOf = redirectOf
        }
    }

    public var childId: String
    public var requests: [Request]

    public init(childId: String, requests: [Request]) {
        self.childId = childId
        self.requests = requests
    }

    public func validationErrors() -> [FieldError] {
        var errors: [FieldError] = []
        if childId.isEmpty { errors.append(FieldError("childId", "empty")) }
        if requests.isEmpty { errors.append(FieldError("requests", "empty: a child with nothing open has a tombstone")) }
        for (i, request) in requests.enumerated() {
            if !["open", "review"].contains(request.status) {
                errors.append(FieldError("requests[\(i)].status", "\(request.status): only open requests and held answers are kept"))
            }
            if request.child.child.childId != childId {
                errors.append(FieldError("requests[\(i)].child.child.childId", "not the record's child \(childId)"))
            }
        }
        return errors
    }
}

/// `encompass.dispatch.changelog` (compacted, key: notice id, like `encompass.notices.due`): a
/// notice dispatch has not finished with (not yet sent, or sent and not acknowledged, or with
/// an open telephone task), as the dispatch instance that took it holds it. A notice finished
/// with (acknowledged, no open task; or its contents purged) has a tombstone instead. Every
/// instance keeps the latest record per notice; the next owner of the notice's partition
/// restores it (docs/DISPATCH.md, "Running more than one instance").
public struct DispatchNoticeChangelog: MessagePayload {
    public static let schema = "encompass.dispatch-notice-changelog"
    public static let schemaVersion = 1

    public struct Notice: Codable, Sendable, Equatable {
        public var noticeId: String
        public var forceCode: String
        public var occurrenceNumber: String
        public var childId: String
        public var schoolURN: String
        public var schoolName: String
        /// The account whose notice password opens it (`NoticeAccount`: school URN, `LA<code>` or `ESM<force code>`).
        public var account: String
        /// `email` or `telephone`.
        public var channel: String
        public var recipient: String?
        public var escalation: Bool
        /// The `NoticeDue` as dispatch keeps it (without the incident's parties and other children).
        public var due: NoticeDue
        /// The rendered notice (JSON text), as the signed-in page shows it.
        public var content: String
        /// `pending`, `sent`, `failed` or `uncertain`; `acknowledged` only with an open telephone task.
        public var state: String
        /// SHA-256 of the link's token (the token itself is only in the email).
        public var linkTokenHash: String?
        public var linkExpiresAt: Date?
        public var releaseAt: Date
        public var acknowledgeBy: Date
        public var receivedAt: Date
        public var sentAt: Date?
        public var acknowledgedAt: Date?
        public var acknowledgedBy: String?
        /// When the school said the pupil no longer attends (the page then offers it no more).
        public var feedbackAt: Date?
        public var flaggedAt: Date?
        public var flagReason: String?

        public init(
            noticeId: String, forceCode: String, occurrenceNumber: String, childId: String, schoolURN: String, schoolName: String,
            account: String, channel: String, recipient: String?, escalation: Bool, due: NoticeDue, content: String, state: String,
            linkTokenHash: String?, linkExpiresAt: Date?, releaseAt: Date, acknowledgeBy: Date, receivedAt: Date, sentAt: Date?,
            acknowledgedAt: Date?, acknowledgedBy: String?, feedbackAt: Date? = nil, flaggedAt: Date?, flagReason: String?
        ) {
            self.noticeId = noticeId
            self.forceCode = forceCode
            self.occurrenceNumber = occurrenceNumber
            self.childId = childId
            self.schoolURN = schoolURN
            self.schoolName = schoolName
            self.account = account
            self.channel = channel
            self.recipient = recipient
            self.escalation = escalation
            self.due = due
            self.content = content
            self.state = state
            self.linkTokenHash = linkTokenHash
            self.linkExpiresAt = linkExpiresAt
            self.releaseAt = releaseAt
            self.acknowledgeBy = acknowledgeBy
            self.receivedAt = receivedAt
            self.sentAt = sentAt
            self.acknowledgedAt = acknowledgedAt
            self.acknowledgedBy = acknowledgedBy
            self.feedbackAt = feedbackAt
            self.flaggedAt = flaggedAt
            self.flagReason = flagReason
        }
    }

    /// The notice's email: its text (no personal data: a link to the signed-in page) and where
    /// its sending stands.
    public struct Mail: Codable, Sendable, Equatable {
        public var idempotencyKey: String
        public var recipient: String
        /// The message as handed to the relay (kept for a resend); nil once purged.
        public var message: String?
        /// `pending`, `sending`, `sent`, `failed` or `uncertain`.
        public var state: String
        public var attempts: Int
        public var createdAt: Date
        public var sentAt: Date?
        public var lastError: String?

        public init(
            idempotencyKey: String, recipient: String, message: String?, state: String, attempts: Int, createdAt: Date, sentAt: Date?,
            lastError: String?
        ) {
            self.idempotencyKey = idempotencyKey
            self.recipient = recipient
            self.message = message
            self.state = state
            self.attempts = attempts
            self.createdAt = createdAt
            self.sentAt = sentAt
            self.lastError = lastError
        }
    }

    /// A telephone task for the MASH.
    public struct TelephoneTask: Codable, Sendable, Equatable {
        public var id: String
        public var schoolURN: String
        public var schoolName: String
        public var contacts: [SchoolContact]
        public var reason: String
        public var createdAt: Date
        public var doneAt: Date?
        public var doneBy: String?
        public var note: String?

        public init(
            id: String, schoolURN: String, schoolName: String, contacts: [SchoolContact], reason: String, createdAt: Date,
            doneAt: Date?, doneBy: String?, note: String?
        ) {
            self.id = id
            self.schoolURN = schoolURN
            self.schoolName = schoolName
            self.contacts = contacts
            self.reason = reason
            self.createdAt = createdAt
            self.doneAt = doneAt
            self.doneBy = doneBy
            self.note = note
        }
    }

    public var notice: Notice
    public var mail: Mail?
    public var telephoneTask: TelephoneTask?

    public init(notice: Notice, mail: Mail?, telephoneTask: TelephoneTask?) {
        self.notice = notice
        self.mail = mail
        self.telephoneTask = telephoneTask
    }

    public func validationErrors() -> [FieldError] {
        var errors: [FieldError] = []
        if notice.noticeId.isEmpty { errors.append(FieldError("notice.noticeId", "empty")) }
        if notice.due.noticeId != notice.noticeId { errors.append(FieldError("notice.due.noticeId", "not the notice's id \(notice.noticeId)")) }
        if mail == nil && telephoneTask == nil {
            errors.append(FieldError("mail", "a notice goes by email or by a telephone task: neither is given"))
        }
        return errors
    }
}
