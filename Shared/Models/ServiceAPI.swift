import Foundation

// Request and response bodies of the services' HTTP APIs, shared by the service that serves
// them, the operator CLI and the MASH console, so that renaming a field breaks the build rather
// than a call in production. They live here, not in each service's library, because the
// console may import no service library (and the CLI does not import dispatch's): this module
// is the one all three already depend on. Field names are the JSON keys on the wire
// (docs/schemas and the services' tests pin them).

// MARK: refusals

/// A refusal with one sentence that says what to do: `{"error": "…"}`.
public struct APIError: Codable, Sendable, Equatable {
    public var error: String

    public init(_ error: String) { self.error = error }
}

/// A refusal naming each field at fault: `{"errors": [{"field": …, "message": …}]}`.
public struct APIFieldErrors: Codable, Sendable, Equatable {
    public var errors: [FieldError]

    public init(_ errors: [FieldError]) { self.errors = errors }

    /// `field: message; field: message`.
    public var description: String { errors.map(\.description).joined(separator: "; ") }
}

// MARK: child research: the review queue

/// `GET /v1/review`: the proposals with the status asked for.
public struct ReviewListing: Codable, Sendable, Equatable {
    public var proposals: [ReviewProposalState]

    public init(proposals: [ReviewProposalState]) { self.proposals = proposals }
}

/// `POST /v1/review/{id}/confirm` and `/reject`: who decided, and an optional note. The service
/// refuses a missing or blank reviewer with a field error, so both are optional here.
public struct ReviewDecisionRequest: Codable, Sendable, Equatable {
    public var reviewer: String?
    public var note: String?

    public init(reviewer: String? = nil, note: String? = nil) {
        self.reviewer = reviewer
        self.note = note
    }
}

// MARK: school resolution: requests to Children's Social Care

/// `GET /v1/requests`: the open requests, each a row of the requests sheet as column → value
/// (the columns of `CSCRequestRows.header`, e.g. `request_id`, `lpa`, `occurrence_number`).
public struct CSCOpenRequests: Codable, Sendable, Equatable {
    public var requests: [[String: String]]

    public init(requests: [[String: String]]) { self.requests = requests }
}

/// `POST /v1/requests/import`: what became of each row of the sheet Children's Social Care
/// returned (422 with this answer when a row was rejected).
public struct CSCImportAnswer: Codable, Sendable, Equatable {
    /// The answer for one returned row.
    public struct Row: Codable, Sendable, Equatable {
        /// `notice` (school verified, notice requested), `not-notified` (verified, out of area per
        /// protocol), `open` (no school given yet), `unchanged` (already resolved to it), `review`
        /// (the school conflicts with the child's age: held for a MASH officer), `rejected`, or
        /// `not-held` (only the rows an instance holds were asked for: another instance holds the
        /// request, or none does).
        public var outcome: String
        public var row: Int
        public var requestId: String?
        public var urn: String?
        public var reasons: [String]
        /// A rejected row's possible schools, when the name given matched several.
        public var candidates: [String]?

        public init(outcome: String, row: Int, requestId: String?, urn: String? = nil, reasons: [String], candidates: [String]? = nil) {
            self.outcome = outcome
            self.row = row
            self.requestId = requestId
            self.urn = urn
            self.reasons = reasons
            self.candidates = candidates
        }
    }

    public var file: String
    public var rows: Int
    public var answers: [Row]
    /// What the reader noticed about the file (e.g. a sheet other than the first ignored).
    public var notices: [String]
    public var error: String?

    public init(file: String, rows: Int, answers: [Row], notices: [String] = [], error: String? = nil) {
        self.file = file
        self.rows = rows
        self.answers = answers
        self.notices = notices
        self.error = error
    }

    public var rejected: Int { answers.filter { $0.outcome == "rejected" }.count }
    public var review: Int { answers.filter { $0.outcome == "review" }.count }
}

// MARK: scheduling: readiness and the notices held

/// `GET /v1/readiness` of scheduling: its warnings and every local authority's term dates.
public struct SchedulingReadiness: Codable, Sendable, Equatable {
    /// The state of one local authority's term dates, for the console and the metrics.
    public struct Calendar: Codable, Sendable, Equatable {
        public var la: String
        public var name: String?
        /// Where the dates came from: the document's `source`, else the file or import it was read from.
        public var source: String
        /// The first and last day the dates cover (whole school years, August to August).
        public var firstDay: String
        public var lastDay: String
        /// Days from today to the last day covered (negative once it has passed).
        public var daysLeft: Int
        /// School years (the current one or later) whose dates are approximate.
        public var approximateYears: [String]
        /// True when a warning names this LA.
        public var warning: Bool

        public init(
            la: String, name: String?, source: String, firstDay: String, lastDay: String, daysLeft: Int, approximateYears: [String],
            warning: Bool
        ) {
            self.la = la
            self.name = name
            self.source = source
            self.firstDay = firstDay
            self.lastDay = lastDay
            self.daysLeft = daysLeft
            self.approximateYears = approximateYears
            self.warning = warning
        }
    }

    public var instance: String?
    /// `ready`, or `warning` when `warnings` has a line (the service still runs: `/readyz` stays ready).
    public var status: String
    public var warnings: [String]
    public var calendars: [Calendar]

    public init(instance: String?, status: String, warnings: [String], calendars: [Calendar]) {
        self.instance = instance
        self.status = status
        self.warnings = warnings
        self.calendars = calendars
    }
}

/// The answer to `GET /v1/pending` of scheduling: the notices this instance holds (its own
/// partitions' and its standby copies), without personal data.
public struct PendingList: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var noticeId: String
        public var forceCode: String
        public var occurrenceNumber: String
        public var schoolURN: String
        public var laCode: String
        public var incidentRevision: Int
        /// ISO 8601, e.g. `2026-11-24T08:00:00.000Z`.
        public var releaseAt: String
        /// Released to the force's Education Safeguarding Manager (`ESM<forceCode>`), not the school.
        public var escalate: Bool
        public var state: String
        public var partition: Int
        /// The instance owns the notice's partition (else it is a standby copy).
        public var ownedHere: Bool
        public var releasedAt: String?

        public init(
            noticeId: String, forceCode: String, occurrenceNumber: String, schoolURN: String, laCode: String, incidentRevision: Int,
            releaseAt: String, escalate: Bool, state: String, partition: Int, ownedHere: Bool, releasedAt: String?
        ) {
            self.noticeId = noticeId
            self.forceCode = forceCode
            self.occurrenceNumber = occurrenceNumber
            self.schoolURN = schoolURN
            self.laCode = laCode
            self.incidentRevision = incidentRevision
            self.releaseAt = releaseAt
            self.escalate = escalate
            self.state = state
            self.partition = partition
            self.ownedHere = ownedHere
            self.releasedAt = releasedAt
        }
    }

    public var instance: String
    public var notices: [Item]

    public init(instance: String, notices: [Item]) {
        self.instance = instance
        self.notices = notices
    }
}

// MARK: every service: dead letters

/// `POST /v1/dead-letters/{id}/replay`: who, and optionally an edited message to publish
/// instead of the original (validated first).
public struct DeadLetterReplayRequest: Codable, Sendable, Equatable {
    /// The edit: the message's text as it would be published (what `encompass dlq replay
    /// --payload FILE` sends), or the message as JSON.
    public enum Edit: Codable, Sendable, Equatable {
        case text(String)
        case json(JSONValue)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) { self = .text(text) } else { self = .json(try container.decode(JSONValue.self)) }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .json(let value): try container.encode(value)
            }
        }

        /// The bytes to publish.
        public func bytes() throws -> [UInt8] {
            switch self {
            case .text(let text): Array(text.utf8)
            case .json(let value): Array(try WireFormat.data(value))
            }
        }
    }

    public var by: String?
    public var payload: Edit?
    /// Set when another copy of the same record, one a second instance of the service
    /// dead-lettered too, has been published: this copy is marked replayed as that one and
    /// nothing is published (a record is replayed once, whichever instances hold it).
    public var replayedAs: DeadLetterReplayedCopy?

    public init(by: String?, payload: Edit? = nil, replayedAs: DeadLetterReplayedCopy? = nil) {
        self.by = by
        self.payload = payload
        self.replayedAs = replayedAs
    }
}

/// `DeadLetterReplayRequest.replayedAs`: the copy of a record that was published, and the record
/// (a service refuses to mark a dead letter of another record).
public struct DeadLetterReplayedCopy: Codable, Sendable, Equatable {
    /// The published copy as `encompass dlq list` names it, e.g. `intake/1:5`.
    public var address: String
    public var originalTopic: String
    public var originalPartition: Int32
    public var originalOffset: Int64
    /// Where it was published, and as which message.
    public var topic: String
    public var messageId: String?

    public init(address: String, originalTopic: String, originalPartition: Int32, originalOffset: Int64, topic: String, messageId: String?) {
        self.address = address
        self.originalTopic = originalTopic
        self.originalPartition = originalPartition
        self.originalOffset = originalOffset
        self.topic = topic
        self.messageId = messageId
    }
}

/// Any JSON value: an operator's edit of a dead letter's message, checked against the message's
/// schema only when it is replayed. Whole numbers keep 64-bit precision.
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// `POST /v1/dead-letters/{id}/discard`: who, and why (every discard is recorded).
public struct DeadLetterDiscardRequest: Codable, Sendable, Equatable {
    public var by: String?
    public var reason: String?

    public init(by: String?, reason: String?) {
        self.by = by
        self.reason = reason
    }
}

// MARK: dispatch: the audit listing

/// One notice in dispatch's audit listing (`GET /v1/notifications`), with its whole trail.
public struct NotificationSummary: Codable, Sendable, Equatable {
    public struct Event: Codable, Sendable, Equatable {
        public var kind: String
        public var at: Date
        public var detail: String?
        public var producer: String

        public init(kind: String, at: Date, detail: String?, producer: String) {
            self.kind = kind
            self.at = at
            self.detail = detail
            self.producer = producer
        }
    }

    public struct Mail: Codable, Sendable, Equatable {
        public var state: String
        public var attempts: Int
        public var nextAttemptAt: Date?
        public var relayReply: String?
        public var lastError: String?

        public init(state: String, attempts: Int, nextAttemptAt: Date?, relayReply: String?, lastError: String?) {
            self.state = state
            self.attempts = attempts
            self.nextAttemptAt = nextAttemptAt
            self.relayReply = relayReply
            self.lastError = lastError
        }
    }

    public var noticeId: String
    public var forceCode: String
    public var occurrenceNumber: String
    public var schoolURN: String?
    public var schoolName: String?
    /// `email` or `telephone`; nil while dispatch has only scheduling's events.
    public var channel: String?
    public var recipient: String?
    /// Dispatch's state, or `scheduled` when only scheduling's events are known.
    public var state: String
    public var escalation: Bool?
    public var releaseAt: Date?
    public var sentAt: Date?
    public var acknowledgeBy: Date?
    public var acknowledgedAt: Date?
    public var acknowledgedBy: String?
    public var feedbackAt: Date?
    /// Needs a call: not acknowledged by its acknowledge-by time, or delivery uncertain or failed.
    /// Only the dispatch instance that took the notice flags it.
    public var flagged: Bool
    public var flagReason: String?
    public var linkExpiresAt: Date?
    public var mail: Mail?
    public var events: [Event]

    public init(
        noticeId: String, forceCode: String, occurrenceNumber: String, schoolURN: String?, schoolName: String?, channel: String?,
        recipient: String? = nil, state: String, escalation: Bool? = nil, releaseAt: Date?, sentAt: Date?, acknowledgeBy: Date?,
        acknowledgedAt: Date?, acknowledgedBy: String?, feedbackAt: Date? = nil, flagged: Bool, flagReason: String?,
        linkExpiresAt: Date? = nil, mail: Mail? = nil, events: [Event] = []
    ) {
        self.noticeId = noticeId
        self.forceCode = forceCode
        self.occurrenceNumber = occurrenceNumber
        self.schoolURN = schoolURN
        self.schoolName = schoolName
        self.channel = channel
        self.recipient = recipient
        self.state = state
        self.escalation = escalation
        self.releaseAt = releaseAt
        self.sentAt = sentAt
        self.acknowledgeBy = acknowledgeBy
        self.acknowledgedAt = acknowledgedAt
        self.acknowledgedBy = acknowledgedBy
        self.feedbackAt = feedbackAt
        self.flagged = flagged
        self.flagReason = flagReason
        self.linkExpiresAt = linkExpiresAt
        self.mail = mail
        self.events = events
    }
}

/// `GET /v1/notifications?date=`: every notice with an event on the day or released that day.
public struct NotificationList: Codable, Sendable, Equatable {
    public var date: String
    public var notifications: [NotificationSummary]
    public var flagged: Int

    public init(date: String, notifications: [NotificationSummary], flagged: Int) {
        self.date = date
        self.notifications = notifications
        self.flagged = flagged
    }

    /// The listings of every instance of a scaled dispatch group as one: every instance lists
    /// every notice (the audit is replicated) but only the one that took a notice flags it and
    /// holds its mail, so of a notice listed several times the flagged one is kept, else the one
    /// with the most events; notices keep the order they were first listed in.
    public static func merged(_ parts: [NotificationList], date: String) -> NotificationList {
        var byId: [String: NotificationSummary] = [:]
        var order: [String] = []
        for line in parts.flatMap(\.notifications) {
            if let held = byId[line.noticeId] {
                if (line.flagged && !held.flagged) || (line.flagged == held.flagged && line.events.count > held.events.count) {
                    byId[line.noticeId] = line
                }
            } else {
                byId[line.noticeId] = line
                order.append(line.noticeId)
            }
        }
        let notices = order.compactMap { byId[$0] }
        return NotificationList(date: date, notifications: notices, flagged: notices.filter(\.flagged).count)
    }
}

// MARK: dispatch: notice passwords, telephone tasks, resends, held mail

/// `PUT /v1/schools/{urn}/password`.
public struct SchoolPasswordRequest: Codable, Sendable, Equatable {
    public var password: String
    public var setBy: String?

    public init(password: String, setBy: String?) {
        self.password = password
        self.setBy = setBy
    }
}

/// The answer to `PUT /v1/schools/{urn}/password` (never the password).
public struct SchoolPasswordAnswer: Codable, Sendable, Equatable {
    public var account: String
    /// ISO 8601, e.g. `2026-11-23T09:00:00.000Z`.
    public var setAt: String
    public var scheme: String

    public init(account: String, setAt: String, scheme: String) {
        self.account = account
        self.setAt = setAt
        self.scheme = scheme
    }
}

/// `PUT /v1/schools/passwords`: a file's worth, each row with its number in the file.
public struct SchoolPasswordsRequest: Codable, Sendable, Equatable {
    public struct Row: Codable, Sendable, Equatable {
        public var row: Int
        public var account: String
        public var password: String

        public init(row: Int, account: String, password: String) {
            self.row = row
            self.account = account
            self.password = password
        }
    }

    public var rows: [Row]
    public var setBy: String?

    public init(rows: [Row], setBy: String?) {
        self.rows = rows
        self.setBy = setBy
    }
}

/// The answer to `PUT /v1/schools/passwords`: the rows set and each refused row with why.
public struct SchoolPasswordsAnswer: Codable, Sendable, Equatable {
    public struct Stored: Codable, Sendable, Equatable {
        public var row: Int
        public var account: String

        public init(row: Int, account: String) {
            self.row = row
            self.account = account
        }
    }

    public struct Refused: Codable, Sendable, Equatable {
        public var row: Int
        public var account: String
        public var field: String
        public var message: String

        public init(row: Int, account: String, field: String, message: String) {
            self.row = row
            self.account = account
            self.field = field
            self.message = message
        }
    }

    public var set: [Stored]
    public var refused: [Refused]
    public var setAt: String

    public init(set: [Stored], refused: [Refused], setAt: String) {
        self.set = set
        self.refused = refused
        self.setAt = setAt
    }
}

/// `POST /v1/telephone-tasks/{id}/done`: who made the call, when (default: now), a note.
public struct TelephoneTaskDoneRequest: Codable, Sendable, Equatable {
    public var by: String
    public var at: Date?
    public var note: String?

    public init(by: String, at: Date? = nil, note: String? = nil) {
        self.by = by
        self.at = at
        self.note = note
    }
}

/// The answer to `POST /v1/telephone-tasks/{id}/done`.
public struct TelephoneTaskDoneAnswer: Codable, Sendable, Equatable {
    public var id: String
    public var doneBy: String
    public var doneAt: String

    public init(id: String, doneBy: String, doneAt: String) {
        self.id = id
        self.doneBy = doneBy
        self.doneAt = doneAt
    }
}

/// `POST /v1/notifications/{id}/resend`: who asked (after checking with the school).
public struct ResendRequest: Codable, Sendable, Equatable {
    public var by: String

    public init(by: String) { self.by = by }
}

/// The answer to a resend: the notice is queued again.
public struct ResendAnswer: Codable, Sendable, Equatable {
    public var noticeId: String
    public var state: String

    public init(noticeId: String, state: String) {
        self.noticeId = noticeId
        self.state = state
    }
}

/// What a notice shows: only its force protocol's fields, in the protocol's order, plus its
/// standard wording (dispatch renders it; a telephone task carries it to be read out).
public struct NoticeContent: Codable, Sendable, Equatable {
    public struct Line: Codable, Sendable, Equatable {
        public var field: String
        public var label: String
        public var value: String

        public init(field: String, label: String, value: String) {
            self.field = field
            self.label = label
            self.value = value
        }
    }

    public var title: String
    public var senderName: String
    public var schoolName: String
    public var schoolURN: String
    public var lines: [Line]
    public var wording: [String]

    public init(title: String, senderName: String, schoolName: String, schoolURN: String, lines: [Line], wording: [String]) {
        self.title = title
        self.senderName = senderName
        self.schoolName = schoolName
        self.schoolURN = schoolURN
        self.lines = lines
        self.wording = wording
    }
}

/// One telephone task (a setting to call instead of email) in `GET /v1/telephone-tasks`.
public struct TelephoneTaskView: Codable, Sendable, Equatable {
    public var id: String
    public var noticeId: String
    public var schoolURN: String
    public var schoolName: String
    public var contacts: [SchoolContact]
    public var reason: String
    public var createdAt: Date
    public var doneAt: Date?
    public var doneBy: String?
    public var note: String?
    /// What to tell the setting: the protocol's fields only.
    public var notice: NoticeContent

    public init(
        id: String, noticeId: String, schoolURN: String, schoolName: String, contacts: [SchoolContact], reason: String, createdAt: Date,
        doneAt: Date?, doneBy: String?, note: String?, notice: NoticeContent
    ) {
        self.id = id
        self.noticeId = noticeId
        self.schoolURN = schoolURN
        self.schoolName = schoolName
        self.contacts = contacts
        self.reason = reason
        self.createdAt = createdAt
        self.doneAt = doneAt
        self.doneBy = doneBy
        self.note = note
        self.notice = notice
    }
}

/// `GET /v1/telephone-tasks[?all=true]`: the open tasks of this dispatch instance (all with `all`).
public struct TelephoneTaskListing: Codable, Sendable, Equatable {
    public var tasks: [TelephoneTaskView]

    public init(tasks: [TelephoneTaskView]) { self.tasks = tasks }
}

/// `GET /v1/held`: notice mail held because its account (a school's URN or EY reference, or
/// `LA<code>`) has no notice-page password yet.
public struct HeldNoticeListing: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var noticeId: String
        public var account: String
        public var schoolURN: String
        public var schoolName: String
        public var forceCode: String
        public var occurrenceNumber: String
        /// When the mail was queued (and found no password).
        public var heldSince: Date
        public var ageSeconds: Int

        public init(
            noticeId: String, account: String, schoolURN: String, schoolName: String, forceCode: String, occurrenceNumber: String,
            heldSince: Date, ageSeconds: Int
        ) {
            self.noticeId = noticeId
            self.account = account
            self.schoolURN = schoolURN
            self.schoolName = schoolName
            self.forceCode = forceCode
            self.occurrenceNumber = occurrenceNumber
            self.heldSince = heldSince
            self.ageSeconds = ageSeconds
        }
    }

    public var held: [Item]
    /// The accounts the held notices wait for, sorted.
    public var accountsWithoutPassword: [String]
    public var oldestAgeSeconds: Int

    public init(held: [Item], accountsWithoutPassword: [String], oldestAgeSeconds: Int) {
        self.held = held
        self.accountsWithoutPassword = accountsWithoutPassword
        self.oldestAgeSeconds = oldestAgeSeconds
    }
}
