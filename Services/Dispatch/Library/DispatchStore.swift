import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// Dispatch's tables: one `notice` row per notice id (the send-once state), its `outgoingMail`
/// (the idempotency record of the SMTP hand-over), `telephoneTask`s, the `noticeAudit` trail,
/// `schoolPassword`s, sign-in `noticeSession`s and the sign-in throttle; `noticeClaim` (which
/// dispatch instance sends each notice).
public enum DispatchStore {
    /// Every migration, in order.
    public static let migrations = [migration, claims, claimTimes, publishPasswords, pageGuards]

    /// The notice page's guards (docs/SECURITY.md): each session gets the CSRF token its forms
    /// must carry (a session from before has none, so its forms are refused and the school signs
    /// in again), and the sign-in throttle counts per account (the school, or `LA<code>`) and
    /// client instead of per link, so several links to one school share their 5 tries. Throttles
    /// last 15 minutes; the old ones are dropped.
    public static let pageGuards = StoreMigration("dispatch-v5-page-guards") { db in
        try db.alter(table: NoticeSession.databaseTableName) { t in
            t.add(column: "csrfToken", .text).notNull().defaults(to: "")
        }
        try db.drop(table: SignInThrottle.databaseTableName)
        try db.create(table: SignInThrottle.databaseTableName) { t in
            t.column("account", .text).notNull()
            t.column("client", .text).notNull()
            t.column("failures", .integer).notNull()
            t.column("lockedUntil", .datetime)
            t.column("updatedAt", .datetime).notNull()
            t.primaryKey(["account", "client"])
        }
    }

    /// Passwords set before they were shared (`encompass.dispatch.accounts`) were kept only on
    /// the instance that took them. Queues every password the store holds on that topic, once,
    /// so every instance gets it. Harmless for one published before: each instance keeps the
    /// latest `setAt`, and the same password again changes nothing (`AccountPasswords.apply`).
    public static let publishPasswords = StoreMigration("dispatch-v4-publish-passwords") { db in
        let outbox = Outbox(db: db, producer: ServiceName.dispatch.rawValue)
        for row in try SchoolPassword.order(Column("account")).fetchAll(db) {
            try outbox.publish(
                AccountPassword(account: row.account, hash: row.hash, setAt: row.setAt, setBy: row.setBy),
                to: Topics.dispatchAccounts.name, key: row.account,
                id: MessageID.derived(from: row.account, "password-set-" + Timestamp.format(row.setAt)), now: Date())
        }
    }

    /// `noticeClaim` by claim time, for the unsent-claims watch (`UnsentClaimsWatch`).
    public static let claimTimes = StoreMigration("dispatch-v3-claim-times") { db in
        try db.create(index: "noticeClaimClaimedAt", on: NoticeClaim.databaseTableName, columns: ["claimedAt"])
    }

    /// `noticeClaim`: the first `claimed` event of each notice in `encompass.notice.events`
    /// order, which every instance reads the same (docs/DISPATCH.md, "Running more than one
    /// instance"). No personal data; kept, like the audit trail, so a notice re-delivered long
    /// after is still known. `dispatchIdentity`: this store's claimant name, made once here, so
    /// that it survives restarts and a change of `ENCOMPASS_INSTANCE_ID` (the process id in the
    /// default instance id changes at every start).
    public static let claims = StoreMigration("dispatch-v2-claims") { db in
        try db.create(table: NoticeClaim.databaseTableName) { t in
            t.primaryKey("noticeId", .text)
            t.column("claimant", .text).notNull()
            t.column("claimedAt", .datetime).notNull()
            t.column("observedAt", .datetime).notNull()
        }
        try db.create(table: "dispatchIdentity") { t in
            t.column("id", .integer).primaryKey().check { $0 == 1 }
            t.column("claimant", .text).notNull()
        }
        let random = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let claimant = "d-" + random.prefix(16)
        try db.execute(sql: "INSERT INTO dispatchIdentity (id, claimant) VALUES (1, ?)", arguments: [claimant])
        // A store from before claims (one instance) owns every notice it already holds, so its
        // queued mail still goes out after the upgrade.
        try db.execute(
            sql: """
                INSERT INTO noticeClaim (noticeId, claimant, claimedAt, observedAt)
                SELECT noticeId, ?, receivedAt, receivedAt FROM notice
                """, arguments: [claimant])
    }

    public static let migration = StoreMigration("dispatch-v1") { db in
        try db.create(table: NoticeRow.databaseTableName) { t in
            t.primaryKey("noticeId", .text)
            t.column("forceCode", .text).notNull()
            t.column("occurrenceNumber", .text).notNull()
            t.column("childId", .text).notNull()
            t.column("schoolURN", .text).notNull().indexed()
            t.column("schoolName", .text).notNull()
            t.column("account", .text).notNull()
            t.column("channel", .text).notNull()
            t.column("recipient", .text)
            t.column("escalation", .boolean).notNull()
            t.column("payload", .blob).notNull()
            t.column("content", .blob).notNull()
            t.column("state", .text).notNull()
            t.column("linkTokenHash", .text).unique()
            t.column("linkExpiresAt", .datetime)
            t.column("releaseAt", .datetime).notNull()
            t.column("acknowledgeBy", .datetime).notNull()
            t.column("receivedAt", .datetime).notNull().indexed()
            t.column("sentAt", .datetime)
            t.column("acknowledgedAt", .datetime)
            t.column("acknowledgedBy", .text)
            t.column("feedbackAt", .datetime)
            t.column("flaggedAt", .datetime)
            t.column("flagReason", .text)
        }
        try db.create(table: OutgoingMail.databaseTableName) { t in
            t.primaryKey("noticeId", .text).references(NoticeRow.databaseTableName, onDelete: .cascade)
            t.column("idempotencyKey", .text).notNull().unique()
            t.column("recipient", .text).notNull()
            t.column("message", .blob)
            t.column("state", .text).notNull().indexed()
            t.column("attempts", .integer).notNull()
            t.column("nextAttemptAt", .datetime).notNull()
            t.column("lastAttemptAt", .datetime)
            t.column("lastError", .text)
            t.column("relayReply", .text)
            t.column("createdAt", .datetime).notNull()
            t.column("sentAt", .datetime)
        }
        try db.create(table: TelephoneTask.databaseTableName) { t in
            t.primaryKey("id", .text)
            t.column("noticeId", .text).notNull().unique().references(NoticeRow.databaseTableName, onDelete: .cascade)
            t.column("schoolURN", .text).notNull()
            t.column("schoolName", .text).notNull()
            t.column("contacts", .blob).notNull()
            t.column("reason", .text).notNull()
            t.column("createdAt", .datetime).notNull()
            t.column("doneAt", .datetime)
            t.column("doneBy", .text)
            t.column("note", .text)
        }
        try db.create(table: AuditEntry.databaseTableName) { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("eventId", .text).notNull().unique(onConflict: .ignore)
            t.column("noticeId", .text).notNull().indexed()
            t.column("kind", .text).notNull()
            t.column("at", .datetime).notNull().indexed()
            t.column("forceCode", .text).notNull()
            t.column("occurrenceNumber", .text).notNull()
            t.column("schoolURN", .text)
            t.column("detail", .text)
            t.column("producer", .text).notNull()
        }
        try db.create(table: SchoolPassword.databaseTableName) { t in
            t.primaryKey("account", .text)
            t.column("hash", .text).notNull()
            t.column("setAt", .datetime).notNull()
            t.column("setBy", .text).notNull()
        }
        try db.create(table: NoticeSession.databaseTableName) { t in
            t.primaryKey("sessionHash", .text)
            t.column("noticeId", .text).notNull().references(NoticeRow.databaseTableName, onDelete: .cascade)
            t.column("signedInAs", .text).notNull()
            t.column("createdAt", .datetime).notNull()
            t.column("expiresAt", .datetime).notNull().indexed()
        }
        try db.create(table: SignInThrottle.databaseTableName) { t in
            t.column("linkTokenHash", .text).notNull()
            t.column("client", .text).notNull()
            t.column("failures", .integer).notNull()
            t.column("lockedUntil", .datetime)
            t.column("updatedAt", .datetime).notNull()
            t.primaryKey(["linkTokenHash", "client"])
        }
    }
}

/// The lifecycle of a notice in dispatch.
public enum NoticeState: String, Codable, Sendable {
    /// Mail queued (or telephone task open).
    case pending
    /// Handed to the relay / mail folder.
    case sent
    /// The school acknowledged it.
    case acknowledged
    /// The school said the pupil no longer attends (fed back to school resolution).
    case noLongerAttends = "no-longer-attends"
    /// Mail refused permanently (dead letter).
    case failed
    /// The process stopped between "sending" and the relay's answer: not re-sent, MASH follows up.
    case uncertain
    /// Withdrawn before it was sent (the school said the pupil no longer attends, or the notice
    /// was cancelled after release): never sent; the reason is in its audit.
    case cancelled
}

public struct NoticeRow: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "notice"
    public var noticeId: String
    public var forceCode: String
    public var occurrenceNumber: String
    public var childId: String
    public var schoolURN: String
    public var schoolName: String
    /// Whose password opens the notice (`NoticeAccount`): the school's URN (or EY reference),
    /// `LA<code>` for a child's home local authority (no school roll), `ESM<force code>` for the
    /// force's Education Safeguarding Manager (escalations).
    public var account: String
    public var channel: String
    public var recipient: String?
    public var escalation: Bool
    /// The NoticeDue as received (JSON) minus the incident's parties and other children; never shown to a school.
    public var payload: Data
    /// The rendered NoticeContent (JSON): only the protocol's fields.
    public var content: Data
    public var state: NoticeState
    public var linkTokenHash: String?
    public var linkExpiresAt: Date?
    public var releaseAt: Date
    public var acknowledgeBy: Date
    public var receivedAt: Date
    public var sentAt: Date?
    public var acknowledgedAt: Date?
    public var acknowledgedBy: String?
    public var feedbackAt: Date?
    public var flaggedAt: Date?
    public var flagReason: String?

    public func decodedContent() throws -> NoticeContent { try JSONDecoder().decode(NoticeContent.self, from: content) }
}

/// The store that sends a notice: the first claim seen on `encompass.notice.events`.
public struct NoticeClaim: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "noticeClaim"
    public var noticeId: String
    /// The winning store's claimant name (`dispatchIdentity`).
    public var claimant: String
    /// When the winning instance took it (the event's `at`).
    public var claimedAt: Date
    /// When this instance read the claim.
    public var observedAt: Date
}

public enum MailState: String, Codable, Sendable {
    case pending, sending, sent, failed, uncertain
    /// Its notice was withdrawn before the mail went: never sent.
    case cancelled
}

public struct OutgoingMail: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "outgoingMail"
    public var noticeId: String
    /// Derived from the notice id: one mail per notice, also the Message-ID.
    public var idempotencyKey: String
    public var recipient: String
    /// The RFC 5322 text while unsent; cleared once sent (it holds the link token).
    public var message: Data?
    public var state: MailState
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastAttemptAt: Date?
    public var lastError: String?
    public var relayReply: String?
    public var createdAt: Date
    public var sentAt: Date?
}

public struct TelephoneTask: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "telephoneTask"
    public var id: String
    public var noticeId: String
    public var schoolURN: String
    public var schoolName: String
    /// JSON [SchoolContact].
    public var contacts: Data
    public var reason: String
    public var createdAt: Date
    public var doneAt: Date?
    public var doneBy: String?
    public var note: String?
}

/// One event of a notice's life: dispatch's own and those scheduling publishes.
/// Written by `insertRow` (a statement prepared once: every notice event passes here); the
/// unique `eventId` (`ON CONFLICT IGNORE`) drops an event seen before.
public struct AuditEntry: Codable, FetchableRecord, MutablePersistableRecord, ReplaceableRecord, Sendable, Equatable {
    public static let databaseTableName = "noticeAudit"
    public var id: Int64?
    public var eventId: String
    public var noticeId: String
    /// A NoticeEvent kind, or a local-only one (`sign-in-refused`, `sign-in-locked`).
    public var kind: String
    public var at: Date
    public var forceCode: String
    public var occurrenceNumber: String
    public var schoolURN: String?
    public var detail: String?
    public var producer: String

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public static let replacementColumns = [
        "id", "eventId", "noticeId", "kind", "at", "forceCode", "occurrenceNumber", "schoolURN", "detail", "producer",
    ]
    public var replacementValues: [(any DatabaseValueConvertible)?] {
        [id, eventId, noticeId, kind, at.stored, forceCode, occurrenceNumber, schoolURN, detail, producer]
    }
}

public struct SchoolPassword: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "schoolPassword"
    public var account: String
    public var hash: String
    public var setAt: Date
    public var setBy: String

    public init(account: String, hash: String, setAt: Date, setBy: String) {
        self.account = account
        self.hash = hash
        self.setAt = setAt
        self.setBy = setBy
    }
}

/// Every dispatch instance's copy of the notice passwords (`encompass.dispatch.accounts`).
public enum AccountPasswords {
    /// Stores `row` unless the account already has a password set later (or this same one: the
    /// instance's own record read back). A new password ends every open session on that
    /// account's notices here. Returns whether anything changed.
    @discardableResult
    public static func apply(_ row: SchoolPassword, db: Database) throws -> Bool {
        if let stored = try SchoolPassword.fetchOne(db, key: row.account),
            stored.setAt > row.setAt || (stored.setAt == row.setAt && stored.hash == row.hash)
        {
            return false
        }
        try row.save(db)
        try db.execute(sql: "DELETE FROM noticeSession WHERE noticeId IN (SELECT noticeId FROM notice WHERE account = ?)", arguments: [row.account])
        return true
    }

    /// The replicated handler's work for one record.
    static func apply(_ password: AccountPassword, db: Database) throws {
        try apply(SchoolPassword(account: password.account, hash: password.hash, setAt: password.setAt, setBy: password.setBy), db: db)
    }
}

public struct NoticeSession: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "noticeSession"
    public var sessionHash: String
    public var noticeId: String
    public var signedInAs: String
    public var createdAt: Date
    public var expiresAt: Date
    /// The token every form of this session carries (compared in constant time); empty for a
    /// session from before the token, whose forms are refused.
    public var csrfToken: String
}

public struct SignInThrottle: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "signInThrottle"
    /// The notice's account: the school's URN, or `LA<code>`: every link to one school counts together.
    public var account: String
    public var client: String
    public var failures: Int
    public var lockedUntil: Date?
    public var updatedAt: Date
}

/// Writes the audit trail: a local row, and for the contract's kinds a NoticeEvent on
/// `encompass.notice.events` in the same transaction.
public enum Audit {
    /// Kinds kept only in dispatch's own trail (never published).
    public static let localKinds: Set<String> = [
        "mail-queued", "retry-scheduled", "link-opened", "link-expired", "sign-in-refused", "sign-in-locked", "resend-requested", "form-refused",
        "claim-lost", "held-no-password", "restored", "released",
    ]

    public static func record(
        _ kind: NoticeEvent.Kind, notice: NoticeRow, detail: String?, eventId: String, causationId: String? = nil,
        claimant: String? = nil, db: Database, outbox: Outbox, now: Date
    ) throws {
        let event = NoticeEvent(
            noticeId: notice.noticeId, kind: kind, at: now, forceCode: notice.forceCode,
            occurrenceNumber: notice.occurrenceNumber, schoolURN: notice.schoolURN, detail: detail, claimant: claimant)
        try insert(event, eventId: eventId, producer: ServiceName.dispatch.rawValue, db: db)
        try outbox.publish(event, to: Topics.noticeEvents.name, key: notice.noticeId, id: eventId, causationId: causationId, now: now)
    }

    /// A local-only audit row (not published), e.g. a refused sign-in.
    public static func recordLocal(_ kind: String, notice: NoticeRow, detail: String?, db: Database, now: Date) throws {
        let row = AuditEntry(
            eventId: MessageID.fresh(), noticeId: notice.noticeId, kind: kind, at: now, forceCode: notice.forceCode,
            occurrenceNumber: notice.occurrenceNumber, schoolURN: notice.schoolURN, detail: detail,
            producer: ServiceName.dispatch.rawValue)
        try row.insertRow(db)
    }

    /// Stores an event (own or consumed); an event id seen before is ignored.
    public static func insert(_ event: NoticeEvent, eventId: String, producer: String, db: Database) throws {
        let row = AuditEntry(
            eventId: eventId, noticeId: event.noticeId, kind: event.kind.rawValue, at: event.at,
            forceCode: event.forceCode, occurrenceNumber: event.occurrenceNumber, schoolURN: event.schoolURN,
            detail: event.detail, producer: producer)
        try row.insertRow(db)
    }
}
