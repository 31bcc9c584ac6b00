import EncompassModels
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import ServiceRuntime

/// One notice in the audit listing.
public struct NotificationSummary: Codable, Sendable, Equatable {
    public struct Event: Codable, Sendable, Equatable {
        public var kind: String
        public var at: Date
        public var detail: String?
        public var producer: String
    }

    public struct Mail: Codable, Sendable, Equatable {
        public var state: String
        public var attempts: Int
        public var nextAttemptAt: Date?
        public var relayReply: String?
        public var lastError: String?
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
    public var flagged: Bool
    public var flagReason: String?
    public var linkExpiresAt: Date?
    public var mail: Mail?
    public var events: [Event]
}

public struct NotificationList: Codable, Sendable, Equatable {
    public var date: String
    public var notifications: [NotificationSummary]
    public var flagged: Int
}

/// Queries over dispatch's store (also used by tests).
public enum NotificationQuery {
    /// Every notice with an event on `date` (London) or released that day, with its whole trail.
    public static func list(on date: CalendarDate, db: Database) throws -> NotificationList {
        let start = date.at(hour: 0)
        let end = date.adding(days: 1).at(hour: 0)
        let fromEvents = try String.fetchAll(db, sql: "SELECT DISTINCT noticeId FROM noticeAudit WHERE at >= ? AND at < ?", arguments: [start, end])
        let fromRelease = try String.fetchAll(db, sql: "SELECT noticeId FROM notice WHERE releaseAt >= ? AND releaseAt < ?", arguments: [start, end])
        var summaries: [NotificationSummary] = []
        for id in Set(fromEvents + fromRelease).sorted() {
            if let summary = try summary(id, db: db) { summaries.append(summary) }
        }
        summaries.sort { ($0.releaseAt ?? $0.events.first?.at ?? .distantPast, $0.noticeId) < ($1.releaseAt ?? $1.events.first?.at ?? .distantPast, $1.noticeId) }
        return NotificationList(date: date.description, notifications: summaries, flagged: summaries.filter(\.flagged).count)
    }

    public static func summary(_ noticeId: String, db: Database) throws -> NotificationSummary? {
        let events = try AuditEntry.filter(Column("noticeId") == noticeId).order(Column("at"), Column("id")).fetchAll(db)
        let notice = try NoticeRow.fetchOne(db, key: noticeId)
        guard notice != nil || !events.isEmpty else { return nil }
        let mail = try OutgoingMail.fetchOne(db, key: noticeId)
        let first = events.first
        return NotificationSummary(
            noticeId: noticeId, forceCode: notice?.forceCode ?? first?.forceCode ?? "",
            occurrenceNumber: notice?.occurrenceNumber ?? first?.occurrenceNumber ?? "",
            schoolURN: notice?.schoolURN ?? events.compactMap(\.schoolURN).first, schoolName: notice?.schoolName,
            channel: notice?.channel, recipient: notice?.recipient, state: notice?.state.rawValue ?? "scheduled",
            escalation: notice?.escalation, releaseAt: notice?.releaseAt, sentAt: notice?.sentAt, acknowledgeBy: notice?.acknowledgeBy,
            acknowledgedAt: notice?.acknowledgedAt, acknowledgedBy: notice?.acknowledgedBy, feedbackAt: notice?.feedbackAt,
            flagged: notice?.flaggedAt != nil && notice?.acknowledgedAt == nil, flagReason: notice?.flagReason,
            linkExpiresAt: notice?.linkExpiresAt,
            mail: mail.map { NotificationSummary.Mail(state: $0.state.rawValue, attempts: $0.attempts,
                                                      nextAttemptAt: $0.state == .pending ? $0.nextAttemptAt : nil,
                                                      relayReply: $0.relayReply, lastError: $0.lastError) },
            events: events.map { NotificationSummary.Event(kind: $0.kind, at: $0.at, detail: $0.detail, producer: $0.producer) })
    }
}

/// MASH's API (bearer ENCOMPASS_API_TOKEN): the audit listing, school passwords, telephone tasks, resends.
struct DispatchAPI: Sendable {
    let settings: DispatchService.Settings
    let environment: ServiceEnvironment

    func register(on router: Router<BasicRequestContext>) {
        router.get("v1/notifications") { request, _ -> Response in
            if let refusal = environment.configuration.apiAuth.refusal(request) { return refusal }
            return try await list(request)
        }
        router.post("v1/notifications/:id/resend") { request, context -> Response in
            if let refusal = environment.configuration.apiAuth.refusal(request) { return refusal }
            return try await resend(request, id: context.parameters.get("id") ?? "")
        }
        router.put("v1/schools/:urn/password") { request, context -> Response in
            if let refusal = environment.configuration.apiAuth.refusal(request) { return refusal }
            return try await setPassword(request, account: context.parameters.get("urn") ?? "")
        }
        router.get("v1/telephone-tasks") { request, _ -> Response in
            if let refusal = environment.configuration.apiAuth.refusal(request) { return refusal }
            return try await tasks(request)
        }
        router.post("v1/telephone-tasks/:id/done") { request, context -> Response in
            if let refusal = environment.configuration.apiAuth.refusal(request) { return refusal }
            return try await taskDone(request, id: context.parameters.get("id") ?? "")
        }
    }

    static func wireJSON(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let data = (try? WireFormat.data(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    struct Errors: Encodable { var errors: [FieldError] }

    struct BodyError: Error { var field: FieldError }

    static func fieldError(_ status: HTTPResponse.Status, _ field: String, _ message: String) -> Response {
        wireJSON(status, Errors(errors: [FieldError(field, message)]))
    }

    func body<T: Decodable>(_ request: Request, as type: T.Type) async -> Result<T, BodyError> {
        guard let buffer = try? await request.body.collect(upTo: 64 * 1024) else { return .failure(BodyError(field: FieldError("(body)", "larger than 64 KiB"))) }
        do {
            return .success(try WireFormat.decoder().decode(T.self, from: Data(buffer.readableBytesView)))
        } catch {
            return .failure(BodyError(field: FieldError("(body)", WireFormat.describe(error))))
        }
    }

    func list(_ request: Request) async throws -> Response {
        let date: CalendarDate
        if let text = request.uri.queryParameters.get("date") {
            guard let parsed = CalendarDate(iso: text) else { return Self.fieldError(.badRequest, "date", "'\(text)' is not a date; use YYYY-MM-DD") }
            date = parsed
        } else {
            date = CalendarDate(environment.clock.now())
        }
        let answer = try await environment.store.pool.read { db in try NotificationQuery.list(on: date, db: db) }
        return Self.wireJSON(.ok, answer)
    }

    struct PasswordBody: Decodable { var password: String; var setBy: String? }

    /// An account is a school URN (6 digits) or `LA<code>` for a local authority's education
    /// safeguarding manager (escalated notices).
    static func validAccount(_ account: String) -> Bool {
        let digits = account.hasPrefix("LA") ? account.dropFirst(2) : Substring(account)
        let count = account.hasPrefix("LA") ? 3 : 6
        return digits.count == count && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber)
    }

    func setPassword(_ request: Request, account: String) async throws -> Response {
        guard Self.validAccount(account) else {
            return Self.fieldError(.badRequest, "urn", "'\(account)' is neither a 6-digit URN nor LA followed by a 3-digit local authority code")
        }
        let parsed: PasswordBody
        switch await body(request, as: PasswordBody.self) {
        case .success(let value): parsed = value
        case .failure(let error): return Self.wireJSON(.badRequest, Errors(errors: [error.field]))
        }
        do { try Secrets.checkStrength(parsed.password) } catch {
            return Self.fieldError(.unprocessableContent, "password", error.description)
        }
        let hash = try await Secrets.hashPassword(parsed.password)
        let now = environment.clock.now()
        let row = SchoolPassword(account: account, hash: hash, setAt: now, setBy: parsed.setBy ?? "api")
        try await environment.write { db, outbox in
            // Here at once; every other dispatch instance through `encompass.dispatch.accounts`.
            try AccountPasswords.apply(row, db: db)
            _ = try outbox.publish(AccountPassword(account: row.account, hash: row.hash, setAt: row.setAt, setBy: row.setBy),
                               to: Topics.dispatchAccounts.name, key: account, id: MessageID.fresh(), causationId: nil, now: now)
        }
        environment.logger.notice("school password set", metadata: ["account": .string(account), "by": .string(row.setBy)])
        return Self.wireJSON(.ok, ["account": account, "setAt": Timestamp.format(now), "scheme": "pbkdf2-sha256"])
    }

    struct TaskView: Codable, Sendable {
        var id: String
        var noticeId: String
        var schoolURN: String
        var schoolName: String
        var contacts: [SchoolContact]
        var reason: String
        var createdAt: Date
        var doneAt: Date?
        var doneBy: String?
        var note: String?
        /// What to tell the setting: the protocol's fields only.
        var notice: NoticeContent
    }

    func tasks(_ request: Request) async throws -> Response {
        let includeDone = request.uri.queryParameters.get("all") == "true"
        let views = try await environment.store.pool.read { db -> [TaskView] in
            var query = TelephoneTask.order(Column("createdAt"))
            if !includeDone { query = query.filter(Column("doneAt") == nil) }
            return try query.fetchAll(db).compactMap { task in
                // A notice purged after the retention period has no content left to read out.
                guard let notice = try NoticeRow.fetchOne(db, key: task.noticeId), !notice.content.isEmpty else { return nil }
                return TaskView(id: task.id, noticeId: task.noticeId, schoolURN: task.schoolURN, schoolName: task.schoolName,
                                contacts: (try? JSONDecoder().decode([SchoolContact].self, from: task.contacts)) ?? [], reason: task.reason,
                                createdAt: task.createdAt, doneAt: task.doneAt, doneBy: task.doneBy, note: task.note,
                                notice: try notice.decodedContent())
            }
        }
        return Self.wireJSON(.ok, ["tasks": views])
    }

    struct DoneBody: Decodable { var by: String; var at: Date?; var note: String? }

    func taskDone(_ request: Request, id: String) async throws -> Response {
        let parsed: DoneBody
        switch await body(request, as: DoneBody.self) {
        case .success(let value): parsed = value
        case .failure(let error): return Self.wireJSON(.badRequest, Errors(errors: [error.field]))
        }
        guard !parsed.by.trimmingCharacters(in: .whitespaces).isEmpty else { return Self.fieldError(.unprocessableContent, "by", "must name who made the call") }
        let now = environment.clock.now()
        let at = parsed.at ?? now
        guard at <= now.addingTimeInterval(300) else { return Self.fieldError(.unprocessableContent, "at", "is in the future") }
        let found = try await environment.write { db, outbox -> Bool in
            guard var task = try TelephoneTask.fetchOne(db, key: id), var notice = try NoticeRow.fetchOne(db, key: task.noticeId) else { return false }
            guard task.doneAt == nil else { return true }
            task.doneAt = at
            task.doneBy = parsed.by
            task.note = parsed.note
            try task.update(db)
            notice.acknowledgedAt = at
            notice.acknowledgedBy = parsed.by
            notice.sentAt = notice.sentAt ?? at
            notice.state = .acknowledged
            try notice.update(db)
            try Audit.record(.acknowledged, notice: notice, detail: "telephoned by \(parsed.by)\(parsed.note.map { ": \($0)" } ?? "")",
                             eventId: MessageID.derived(from: notice.noticeId, "telephoned"), db: db, outbox: outbox, now: at)
            return true
        }
        guard found else { return Self.wireJSON(.notFound, ["error": "no telephone task \(id)"]) }
        return Self.wireJSON(.ok, ["id": id, "doneBy": parsed.by, "doneAt": Timestamp.format(at)])
    }

    struct ResendBody: Decodable { var by: String }

    /// Puts an `uncertain` or `failed` mail back in the queue (after MASH checked with the school).
    func resend(_ request: Request, id: String) async throws -> Response {
        let parsed: ResendBody
        switch await body(request, as: ResendBody.self) {
        case .success(let value): parsed = value
        case .failure(let error): return Self.wireJSON(.badRequest, Errors(errors: [error.field]))
        }
        let now = environment.clock.now()
        let outcome = try await environment.write { db, _ -> String? in
            guard var mail = try OutgoingMail.fetchOne(db, key: id), var notice = try NoticeRow.fetchOne(db, key: id) else { return "no email notice \(id)" }
            guard mail.state == .uncertain || mail.state == .failed else { return "mail is \(mail.state.rawValue); only uncertain or failed mail can be resent" }
            guard mail.message != nil else { return "the mail text is no longer kept" }
            mail.state = .pending
            mail.attempts = 0
            mail.nextAttemptAt = now
            try mail.update(db)
            notice.state = .pending
            try notice.update(db)
            try Audit.recordLocal("resend-requested", notice: notice, detail: "resend requested by \(parsed.by)", db: db, now: now)
            return nil
        }
        // Not here: the notice is another dispatch instance's (the CLI asks each in turn).
        if outcome == "no email notice \(id)" { return Self.wireJSON(.notFound, ["error": "no email notice \(id) on this dispatch instance"]) }
        if let outcome { return Self.wireJSON(.conflict, ["error": outcome]) }
        return Self.wireJSON(.accepted, ["noticeId": id, "state": "pending"])
    }
}
