import EncompassModels
import EncompassSecrets
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import ServiceRuntime
import Spreadsheets

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
        summaries.sort {
            ($0.releaseAt ?? $0.events.first?.at ?? .distantPast, $0.noticeId) < ($1.releaseAt ?? $1.events.first?.at ?? .distantPast, $1.noticeId)
        }
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
            mail: mail.map {
                NotificationSummary.Mail(
                    state: $0.state.rawValue, attempts: $0.attempts,
                    nextAttemptAt: $0.state == .pending ? $0.nextAttemptAt : nil,
                    relayReply: $0.relayReply, lastError: $0.lastError)
            },
            events: events.map { NotificationSummary.Event(kind: $0.kind, at: $0.at, detail: $0.detail, producer: $0.producer) })
    }
}

/// MASH's API (bearer ENCOMPASS_API_TOKEN): the audit listing, school passwords (one or a file's
/// worth), notices held for want of a password, readiness warnings, telephone tasks, resends.
struct DispatchAPI: Sendable {
    let settings: DispatchService.Settings
    let environment: ServiceEnvironment

    func register(on router: Router<BasicRequestContext>) {
        let api = router.guarded(by: environment.configuration.apiAuth)
        api.get("v1/notifications") { request, _ -> Response in
            return try await list(request)
        }
        api.post("v1/notifications/:id/resend") { request, context -> Response in
            return try await resend(request, id: context.parameters.get("id") ?? "")
        }
        api.put("v1/schools/:urn/password") { request, context -> Response in
            return try await setPassword(request, account: context.parameters.get("urn") ?? "")
        }
        api.put("v1/schools/passwords") { request, _ -> Response in
            return try await setPasswords(request)
        }
        api.get("v1/notifications/export") { request, _ -> Response in
            return try await export(request)
        }
        api.get("v1/held") { request, _ -> Response in
            let now = environment.clock.now()
            return Self.wireJSON(.ok, try await environment.store.pool.read { db in try HeldNotices.list(db, now: now) })
        }
        api.get("v1/readiness") { request, _ -> Response in
            let now = environment.clock.now()
            let listing = try await environment.store.pool.read { db in try HeldNotices.list(db, now: now) }
            let warnings = HeldNotices.warnings(listing)
            return Self.wireJSON(
                .ok,
                Readiness(
                    instance: environment.configuration.instanceId, status: warnings.isEmpty ? "ready" : "warning", warnings: warnings,
                    accountsWithoutPassword: listing.accountsWithoutPassword, heldNotices: listing.held.count))
        }
        api.get("v1/telephone-tasks") { request, _ -> Response in
            return try await tasks(request)
        }
        api.post("v1/telephone-tasks/:id/done") { request, context -> Response in
            return try await taskDone(request, id: context.parameters.get("id") ?? "")
        }
    }

    static func wireJSON(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let data = (try? WireFormat.data(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    struct BodyError: Error { var field: FieldError }

    static func fieldError(_ status: HTTPResponse.Status, _ field: String, _ message: String) -> Response {
        wireJSON(status, APIFieldErrors([FieldError(field, message)]))
    }

    func body<T: Decodable>(_ request: Request, as type: T.Type) async -> Result<T, BodyError> {
        guard let buffer = try? await request.body.collect(upTo: 64 * 1024) else {
            return .failure(BodyError(field: FieldError("(body)", "larger than 64 KiB")))
        }
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

    /// `GET /v1/notifications/export?from=D&to=D[&la=CODE][&format=xlsx|csv]`: the Navigator's
    /// audit spreadsheet (`NoticeExport`), as a download.
    func export(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        guard let fromText = parameters.get("from"), let from = CalendarDate(iso: fromText) else {
            return Self.fieldError(.badRequest, "from", "is required as YYYY-MM-DD (the first release day, London)")
        }
        guard let toText = parameters.get("to"), let to = CalendarDate(iso: toText) else {
            return Self.fieldError(.badRequest, "to", "is required as YYYY-MM-DD (the last release day, London, inclusive)")
        }
        guard from <= to else { return Self.fieldError(.badRequest, "to", "\(to) is before from \(from)") }
        guard from.adding(days: NoticeExport.maximumDays) > to else {
            return Self.fieldError(.badRequest, "to", "the range is longer than \(NoticeExport.maximumDays) days; export it in parts")
        }
        let la = parameters.get("la").flatMap { $0.isEmpty ? nil : $0 }
        if let la, !(la.count == 3 && la.allSatisfy { $0.isASCII && $0.isNumber }) {
            return Self.fieldError(.badRequest, "la", "'\(la)' is not a 3-digit local authority code")
        }
        let format = parameters.get("format") ?? "xlsx"
        guard ["xlsx", "csv"].contains(format) else { return Self.fieldError(.badRequest, "format", "must be xlsx or csv") }
        let query = NoticeExport.Query(from: from, to: to, localAuthority: la)
        let rows = try await environment.store.pool.read { db in try NoticeExport.rows(query, db: db) }
        let name = "encompass-notices-\(from)-to-\(to)\(la.map { "-la\($0)" } ?? "").\(format)"
        let data: Data
        let type: String
        if format == "csv" {
            data = SheetWriter.csv(header: NoticeExport.header, rows: rows)
            type = "text/csv; charset=utf-8"
        } else {
            data = try SheetWriter.xlsx(sheetName: "Notices", header: NoticeExport.header, rows: rows)
            type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }
        return Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-store", .contentDisposition: "attachment; filename=\"\(name)\""],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    struct Readiness: Codable {
        var instance: String
        /// `ready`, or `warning` when `warnings` has a line (`/readyz` stays ready: the instance works).
        var status: String
        var warnings: [String]
        var accountsWithoutPassword: [String]
        var heldNotices: Int
    }

    /// An account is a school's reference (a DfE URN, or an Ofsted `EY` reference for an early
    /// years setting), `LA<code>` for a local authority (a child on no school roll) or
    /// `ESM<force code>` for a force's Education Safeguarding Manager (escalated notices).
    static func validAccount(_ account: String) -> Bool {
        if account.hasPrefix("ESM") { return NoticeAccount.educationSafeguardingManagerForce(account) != nil }
        if account.hasPrefix("LA") {
            let digits = account.dropFirst(2)
            return digits.count == 3 && digits.allSatisfy { $0.isASCII && $0.isNumber }
        }
        return SchoolReference.isValid(account)
    }

    static let accountProblem =
        "is neither a school URN (5 to 8 digits), an Ofsted EY reference (EY and 6 digits), LA followed by a 3-digit local authority code nor ESM followed by a 2-digit force code"

    func setPassword(_ request: Request, account: String) async throws -> Response {
        guard Self.validAccount(account) else {
            return Self.fieldError(.badRequest, "urn", "'\(account)' \(Self.accountProblem)")
        }
        let parsed: SchoolPasswordRequest
        switch await body(request, as: SchoolPasswordRequest.self) {
        case .success(let value): parsed = value
        case .failure(let error): return Self.wireJSON(.badRequest, APIFieldErrors([error.field]))
        }
        do { try Secrets.checkStrength(parsed.password) } catch {
            return Self.fieldError(.unprocessableContent, "password", error.description)
        }
        let now = environment.clock.now()
        try await store(account: account, password: parsed.password, setBy: parsed.setBy ?? "api", now: now)
        return Self.wireJSON(.ok, SchoolPasswordAnswer(account: account, setAt: Timestamp.format(now), scheme: "pbkdf2-sha256"))
    }

    /// Hashes and stores one password: here at once, every other dispatch instance through
    /// `encompass.dispatch.accounts`. Mail held for the account goes out on the sender's next pass.
    func store(account: String, password: String, setBy: String, now: Date) async throws {
        let hash = try await Secrets.hashPassword(password)
        let row = SchoolPassword(account: account, hash: hash, setAt: now, setBy: setBy)
        try await environment.write { db, outbox in
            try AccountPasswords.apply(row, db: db)
            _ = try outbox.publish(
                AccountPassword(account: row.account, hash: row.hash, setAt: row.setAt, setBy: row.setBy),
                to: Topics.dispatchAccounts.name, key: account, id: MessageID.fresh(), causationId: nil, now: now)
        }
        environment.logger.notice("school password set", metadata: ["account": .string(account), "by": .string(setBy)])
    }

    /// A file's worth of passwords (`encompass notifications set-password --file`): each row is
    /// checked on its own and the good ones are stored; the answer names each bad row by its
    /// number in the file and never repeats a password.
    static let bulkMaximumBody = 4 * 1024 * 1024
    static let bulkMaximumRows = 20_000

    func setPasswords(_ request: Request) async throws -> Response {
        guard let buffer = try? await request.body.collect(upTo: Self.bulkMaximumBody) else {
            return Self.fieldError(.contentTooLarge, "(body)", "larger than \(Self.bulkMaximumBody / 1024 / 1024) MiB; split the file")
        }
        let parsed: SchoolPasswordsRequest
        do { parsed = try WireFormat.decoder().decode(SchoolPasswordsRequest.self, from: Data(buffer.readableBytesView)) } catch {
            return Self.fieldError(.badRequest, "(body)", WireFormat.describe(error))
        }
        guard parsed.rows.count <= Self.bulkMaximumRows else {
            return Self.fieldError(.contentTooLarge, "rows", "\(parsed.rows.count) rows; at most \(Self.bulkMaximumRows) in one file, split it")
        }
        let now = environment.clock.now()
        let setBy = parsed.setBy ?? "api"
        var answer = SchoolPasswordsAnswer(set: [], refused: [], setAt: Timestamp.format(now))
        var seen: [String: Int] = [:]
        var accepted: [(row: Int, account: String, password: String)] = []
        for row in parsed.rows {
            let account = SchoolReference.clean(row.account)
            if !Self.validAccount(account) {
                answer.refused.append(.init(row: row.row, account: row.account, field: "urn", message: "'\(row.account)' \(Self.accountProblem)"))
                continue
            }
            if let first = seen[account] {
                answer.refused.append(
                    .init(
                        row: row.row, account: account, field: "urn",
                        message: "\(account) is also on row \(first); one password per school, remove one of the rows"))
                continue
            }
            seen[account] = row.row
            do { try Secrets.checkStrength(row.password) } catch {
                // `checkStrength` describes the rule broken, never the password itself.
                answer.refused.append(.init(row: row.row, account: account, field: "password", message: error.description))
                continue
            }
            accepted.append((row.row, account, row.password))
        }
        // PBKDF2 is slow on purpose: hash on every core, a few rows at a time.
        var hashes = [String](repeating: "", count: accepted.count)
        let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
        for start in stride(from: 0, to: accepted.count, by: width) {
            let slice = start..<min(start + width, accepted.count)
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for index in slice {
                    let password = accepted[index].password
                    group.addTask { (index, try await Secrets.hashPassword(password)) }
                }
                for try await (index, hash) in group { hashes[index] = hash }
            }
        }
        let rows = accepted.indices.map { SchoolPassword(account: accepted[$0].account, hash: hashes[$0], setAt: now, setBy: setBy) }
        try await environment.write { db, outbox in
            for row in rows {
                try AccountPasswords.apply(row, db: db)
                _ = try outbox.publish(
                    AccountPassword(account: row.account, hash: row.hash, setAt: row.setAt, setBy: row.setBy),
                    to: Topics.dispatchAccounts.name, key: row.account, id: MessageID.fresh(), causationId: nil, now: now)
            }
        }
        answer.set = accepted.map { .init(row: $0.row, account: $0.account) }
        answer.refused.sort { $0.row < $1.row }
        if !rows.isEmpty {
            environment.logger.notice(
                "school passwords set from a file",
                metadata: [
                    "accounts": "\(rows.count)", "refusedRows": "\(answer.refused.count)", "by": .string(setBy),
                ])
        }
        return Self.wireJSON(answer.set.isEmpty && !answer.refused.isEmpty ? .unprocessableContent : .ok, answer)
    }

    func tasks(_ request: Request) async throws -> Response {
        let includeDone = request.uri.queryParameters.get("all") == "true"
        let views = try await environment.store.pool.read { db -> [TelephoneTaskView] in
            var query = TelephoneTask.order(Column("createdAt"))
            if !includeDone { query = query.filter(Column("doneAt") == nil) }
            return try query.fetchAll(db).compactMap { task in
                // A notice purged after the retention period has no content left to read out.
                guard let notice = try NoticeRow.fetchOne(db, key: task.noticeId), !notice.content.isEmpty else { return nil }
                return TelephoneTaskView(
                    id: task.id, noticeId: task.noticeId, schoolURN: task.schoolURN, schoolName: task.schoolName,
                    contacts: (try? JSONDecoder().decode([SchoolContact].self, from: task.contacts)) ?? [], reason: task.reason,
                    createdAt: task.createdAt, doneAt: task.doneAt, doneBy: task.doneBy, note: task.note,
                    notice: try notice.decodedContent())
            }
        }
        return Self.wireJSON(.ok, TelephoneTaskListing(tasks: views))
    }

    func taskDone(_ request: Request, id: String) async throws -> Response {
        let parsed: TelephoneTaskDoneRequest
        switch await body(request, as: TelephoneTaskDoneRequest.self) {
        case .success(let value): parsed = value
        case .failure(let error): return Self.wireJSON(.badRequest, APIFieldErrors([error.field]))
        }
        guard !parsed.by.trimmingCharacters(in: .whitespaces).isEmpty else {
            return Self.fieldError(.unprocessableContent, "by", "must name who made the call")
        }
        let now = environment.clock.now()
        let at = parsed.at ?? now
        guard at <= now.addingTimeInterval(300) else { return Self.fieldError(.unprocessableContent, "at", "is in the future") }
        let found = try await environment.write { db, outbox -> Bool in
            guard var task = try TelephoneTask.fetchOne(db, key: id), var notice = try NoticeRow.fetchOne(db, key: task.noticeId) else {
                return false
            }
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
            try Audit.record(
                .acknowledged, notice: notice, detail: "telephoned by \(parsed.by)\(parsed.note.map { ": \($0)" } ?? "")",
                eventId: MessageID.derived(from: notice.noticeId, "telephoned"), db: db, outbox: outbox, now: at)
            return true
        }
        guard found else { return Self.wireJSON(.notFound, APIError("no telephone task \(id)")) }
        return Self.wireJSON(.ok, TelephoneTaskDoneAnswer(id: id, doneBy: parsed.by, doneAt: Timestamp.format(at)))
    }

    /// Puts an `uncertain` or `failed` mail back in the queue (after MASH checked with the school).
    func resend(_ request: Request, id: String) async throws -> Response {
        let parsed: ResendRequest
        switch await body(request, as: ResendRequest.self) {
        case .success(let value): parsed = value
        case .failure(let error): return Self.wireJSON(.badRequest, APIFieldErrors([error.field]))
        }
        let now = environment.clock.now()
        let outcome = try await environment.write { db, outbox -> String? in
            guard var mail = try OutgoingMail.fetchOne(db, key: id), var notice = try NoticeRow.fetchOne(db, key: id) else {
                return "no email notice \(id)"
            }
            // A notice restored from a lost store's changelog record is still that store's
            // claim, and its email's link names that store's instance: this one takes the claim
            // over and sends a new link to its own page (also for a mail the lost store sent,
            // whose link no longer opens).
            let me = try NoticeClaims.claimant(db)
            let previous = try NoticeClaims.winner(of: id, db: db).flatMap { $0 == me ? nil : $0 }
            guard mail.state == .uncertain || mail.state == .failed || (previous != nil && mail.state == .sent) else {
                return "mail is \(mail.state.rawValue); only uncertain or failed mail can be resent"
            }
            if previous != nil {
                guard let rules = settings.protocols[notice.forceCode] else {
                    return "force \(notice.forceCode) has no \"dispatch\" protocol section"
                }
                guard !notice.payload.isEmpty else { return "the notice's contents are no longer kept" }
                let due = try WireFormat.value(NoticeDue.self, from: notice.payload)
                // Same Message-ID: to the school it is the notice's email again, with a new link.
                let (_, _, message) = try NoticeIntake.linkMail(
                    due, notice: &notice, recipient: mail.recipient, rules: rules, settings: settings,
                    idempotencyKey: mail.idempotencyKey, now: now)
                mail.message = Data(message.data.utf8)
            }
            guard mail.message != nil else { return "the mail text is no longer kept" }
            mail.state = .pending
            mail.attempts = 0
            mail.nextAttemptAt = now
            try mail.update(db)
            notice.state = .pending
            try notice.update(db)
            try Audit.recordLocal("resend-requested", notice: notice, detail: "resend requested by \(parsed.by)", db: db, now: now)
            if let previous {
                try NoticeClaims.takeOver(notice, from: previous, claimant: me, instanceId: settings.instanceId, db: db, outbox: outbox, now: now)
            }
            return nil
        }
        // Not here: the notice is another dispatch instance's (the CLI asks each in turn).
        if outcome == "no email notice \(id)" { return Self.wireJSON(.notFound, APIError("no email notice \(id) on this dispatch instance")) }
        if let outcome { return Self.wireJSON(.conflict, APIError(outcome)) }
        return Self.wireJSON(.accepted, ResendAnswer(noticeId: id, state: "pending"))
    }
}
